#pragma once
/// Webhook, Slack and Alertmanager sinks: one JSON POST per alert over
/// HTTP or HTTPS (Boost.Beast, OpenSSL), a 2xx answer being delivery.

#include <functional>
#include <optional>

#include <boost/asio/ssl/context.hpp>

#include "alerts/sink.hpp"

namespace pgwarden::alerts {

class HttpSink final : public Sink {
 public:
  /// The request body for an alert.
  using Encoder = std::function<std::string(const Alert&)>;

  /// Posts `encode(alert)` to `url`; with `hmac_key`, signs the body in
  /// X-Pgwarden-Signature. For https, `ca` ("" = the system's trust store)
  /// verifies the receiver's certificate and its name.
  HttpSink(config::HttpUrl url, Encoder encode, std::string hmac_key, const std::string& ca);

  boost::asio::awaitable<std::string> deliver(const Alert& a, std::chrono::milliseconds timeout) override;

 private:
  config::HttpUrl url_;
  Encoder encode_;
  std::string hmac_key_;
  std::optional<boost::asio::ssl::context> tls_;
};

/// Alertmanager's v2 endpoint under `base` (".../api/v2/alerts").
config::HttpUrl alertmanager_url(config::HttpUrl base);

}  // namespace pgwarden::alerts
