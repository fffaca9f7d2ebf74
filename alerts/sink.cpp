#include "alerts/sink.hpp"

#include <exception>

#include "alerts/http_sink.hpp"
#include "alerts/payload.hpp"
#include "alerts/syslog_sink.hpp"
#include "audit/key_file.hpp"

namespace pgwarden::alerts {

std::unique_ptr<Sink> make_sink(const config::AlertSinkConfig& c, std::string& error) {
  try {
    switch (c.type) {
      case config::AlertSinkType::Webhook: {
        std::string key;
        if (!c.key_file.empty() && !audit::read_hmac_key(c.key_file, key, error)) return nullptr;
        return std::make_unique<HttpSink>(c.url, webhook_json, std::move(key), c.ca);
      }
      case config::AlertSinkType::Slack: return std::make_unique<HttpSink>(c.url, slack_json, std::string(), c.ca);
      case config::AlertSinkType::Alertmanager:
        return std::make_unique<HttpSink>(alertmanager_url(c.url), alertmanager_json, std::string(), c.ca);
      case config::AlertSinkType::Syslog:
        return std::make_unique<SyslogSink>(c.address, c.transport, c.facility, c.ca);
    }
  } catch (const std::exception& e) {  // an unreadable CA file, from Asio's ssl::context
    error = c.ca + ": " + e.what();
    return nullptr;
  }
  error = "unknown sink type";
  return nullptr;
}

}  // namespace pgwarden::alerts
