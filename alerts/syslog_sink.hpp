#pragma once
/// Syslog sink: RFC 5424 messages over UDP (RFC 5426, one datagram each),
/// TCP (RFC 6587 octet counting) or TLS (RFC 5425). The stream transports
/// keep one connection open and reconnect on the next attempt after an error.

#include <memory>
#include <optional>

#include <boost/asio/ssl/context.hpp>

#include "alerts/sink.hpp"

namespace pgwarden::alerts {

class SyslogSink final : public Sink {
 public:
  /// `ca` ("" = the system's trust store) verifies a TLS collector.
  SyslogSink(config::Endpoint address, config::SyslogTransport transport, unsigned facility, const std::string& ca);
  ~SyslogSink() override;

  boost::asio::awaitable<std::string> deliver(const Alert& a, std::chrono::milliseconds timeout) override;

 private:
  struct Connection;
  boost::asio::awaitable<std::string> send_datagram(const std::string& message, std::chrono::milliseconds timeout);
  boost::asio::awaitable<std::string> send_framed(const std::string& frame, std::chrono::milliseconds timeout);

  config::Endpoint address_;
  config::SyslogTransport transport_;
  unsigned facility_;
  std::string hostname_;
  std::optional<boost::asio::ssl::context> tls_;
  std::unique_ptr<Connection> connection_;  ///< TCP or TLS, while it works
};

}  // namespace pgwarden::alerts
