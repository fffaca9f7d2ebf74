#pragma once
/// The proxy's side of the audit log: opens audit::AuditLog from the
/// configuration, logs through spdlog, and turns the log's writer-thread
/// callbacks into awaitables that resume on the session's own executor.

#include <memory>
#include <string>

#include "audit/audit_log.hpp"
#include "audit/record.hpp"
#include "config/config.hpp"
#include "proxy/net/asio.hpp"

namespace pgwarden::proxy {

class AuditTrail {
 public:
  /// Null with `error` set when the file or the HMAC key cannot be used;
  /// null without error when `cfg` turns the audit log off.
  static std::unique_ptr<AuditTrail> open(const config::AuditConfig& cfg, std::string& error);

  audit::AuditLog& log() { return *log_; }
  const audit::AuditLog& log() const { return *log_; }
  /// Statements wait for their record to be on disk before they are forwarded.
  bool synced() const { return synced_; }
  /// A failing file refuses statements (58030) instead of letting them run unaudited.
  bool blocks() const { return blocks_; }
  const audit::EncodeOptions& encode_options() const { return encode_; }
  /// The settings this log was opened with, to tell on reload whether a
  /// restart is needed for a change to take effect.
  const config::AuditConfig& settings() const { return settings_; }

  /// Resumes with true once every record up to `ticket` is durable, false
  /// when the log could not make it so.
  awaitable<bool> durable(audit::Ticket ticket);
  /// Resumes once the queue has room again.
  awaitable<void> space();

 private:
  AuditTrail() = default;
  std::unique_ptr<audit::AuditLog> log_;
  config::AuditConfig settings_;
  audit::EncodeOptions encode_;
  bool synced_ = false;
  bool blocks_ = true;
};

}  // namespace pgwarden::proxy
