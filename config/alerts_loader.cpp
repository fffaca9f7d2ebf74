#include "config/alerts_loader.hpp"

#include <algorithm>

namespace pgwarden::config {
namespace {

// The keys a sink was given (a default YAML::Node is a defined null, so it
// cannot say whether a key was there).
struct SinkKeys {
  std::optional<YAML::Node> url, address, transport, key_file, facility;
  bool has_type = false;
};

void read_retry(Reader& r, const YAML::Node& node, const std::string& what, AlertSinkConfig& s) {
  r.read_map(node, what, {
    {"attempts", [&](auto& v) {
       auto n = r.unsigned_int(v, what + ".attempts", 100);
       if (n == 0u) r.error(v, what + ".attempts: must be at least 1");
       else assign(s.attempts, n);
     }},
    {"initial_backoff", [&](auto& v) { assign(s.initial_backoff, r.duration(v, what + ".initial_backoff")); }},
    {"max_backoff", [&](auto& v) { assign(s.max_backoff, r.duration(v, what + ".max_backoff")); }},
  });
}

void read_url(Reader& r, const YAML::Node& v, const std::string& what, AlertSinkConfig& s) {
  auto text = r.string(v, what);
  if (!text) return;
  std::string error;
  if (auto u = parse_http_url(*text, error)) s.url = std::move(*u);
  else r.error(v, what + ": " + error + ", got '" + *text + "'");
}

// Checks what the sink's type needs and refuses what it cannot use.
void check_sink(Reader& r, const YAML::Node& node, const std::string& what, const SinkKeys& k, AlertSinkConfig& s) {
  const bool syslog = s.type == AlertSinkType::Syslog;
  if (syslog) {
    if (!k.address) r.error(node, what + ": a syslog sink needs address (host:port)");
    if (k.url) r.error(*k.url, what + ".url: a syslog sink takes address, not url");
    if (k.key_file) r.error(*k.key_file, what + ".key_file: only a webhook sink signs its messages");
  } else {
    if (!k.url) r.error(node, what + ": a " + std::string(to_string(s.type)) + " sink needs url");
    if (k.address) r.error(*k.address, what + ".address: only a syslog sink takes address; use url");
    if (k.transport) r.error(*k.transport, what + ".transport: only a syslog sink takes transport");
    if (k.facility) r.error(*k.facility, what + ".facility: only a syslog sink takes facility");
    if (k.key_file && s.type != AlertSinkType::Webhook)
      r.error(*k.key_file, what + ".key_file: only a webhook sink signs its messages");
  }
  if (s.initial_backoff > s.max_backoff)
    r.error(node, what + ": retry.initial_backoff must not exceed retry.max_backoff");
  if (s.timeout.count() == 0) r.error(node, what + ".timeout: must be more than 0");
}

void read_sink(Reader& r, const YAML::Node& node, const std::string& what, AlertSinkConfig& s) {
  SinkKeys k;
  r.read_map(node, what, {
    {"name", [&](auto& v) { assign(s.name, r.string(v, what + ".name")); }, true},
    {"type", [&](auto& v) {
       k.has_type = true;
       r.assign_enum(v, what + ".type", {"webhook", "slack", "alertmanager", "syslog"}, s.type);
     }, true},
    {"url", [&](auto& v) { k.url.emplace(v); read_url(r, v, what + ".url", s); }},
    {"address", [&](auto& v) {
       k.address.emplace(v);
       if (auto e = r.endpoint(v, what + ".address")) s.address = *e;
     }},
    {"transport", [&](auto& v) {
       k.transport.emplace(v);
       r.assign_enum(v, what + ".transport", {"udp", "tcp", "tls"}, s.transport);
     }},
    {"key_file", [&](auto& v) { k.key_file.emplace(v); assign(s.key_file, r.file_path(v, what + ".key_file", true)); }},
    {"ca", [&](auto& v) { assign(s.ca, r.file_path(v, what + ".ca", true)); }},
    {"facility", [&](auto& v) { k.facility.emplace(v); assign(s.facility, r.unsigned_int(v, what + ".facility", 23)); }},
    {"timeout", [&](auto& v) { assign(s.timeout, r.duration(v, what + ".timeout")); }},
    {"queue_size", [&](auto& v) {
       auto n = r.unsigned_int(v, what + ".queue_size", 10'000'000);
       if (n == 0u) r.error(v, what + ".queue_size: must be at least 1");
       else assign(s.queue_size, n);
     }},
    {"retry", [&](auto& v) { read_retry(r, v, what + ".retry", s); }},
  });
  if (k.has_type && node.IsMap()) check_sink(r, node, what, k, s);
}

}  // namespace

void read_alerts(Reader& r, const YAML::Node& node, AlertsConfig& out) {
  r.read_map(node, "alerts", {
    {"aggregation_window", [&](auto& v) { assign(out.aggregation_window, r.duration(v, "alerts.aggregation_window")); }},
    {"sinks", [&](auto& v) {
       std::size_t i = 0;
       for (const auto& item : r.list(v, "alerts.sinks")) {
         const std::string what = "alerts.sinks[" + std::to_string(i++) + "]";
         AlertSinkConfig s;
         read_sink(r, item, what, s);
         const bool repeated = std::any_of(out.sinks.begin(), out.sinks.end(),
                                           [&](const AlertSinkConfig& o) { return o.name == s.name; });
         if (repeated && !s.name.empty()) r.error(item, what + ".name: '" + s.name + "' names another sink already");
         out.sinks.push_back(std::move(s));
       }
     }},
  });
}

}  // namespace pgwarden::config
