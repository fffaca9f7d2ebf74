#include "alerts/payload.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "audit/json_writer.hpp"
#include "audit/time_format.hpp"

namespace pgwarden::alerts {
namespace {

namespace json = boost::json;

std::string time_of(const Alert& a) {
  std::string out;
  audit::append_rfc3339(out, a.time);
  return out;
}

// Sets `key` only when `value` says something.
void put_if(json::object& o, std::string_view key, std::string_view value) {
  if (!value.empty()) o[key] = value;
}

// RFC 5424 PARAM-VALUE: '"', '\' and ']' are escaped with a backslash.
void append_param(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  out += ' ';
  out += name;
  out += "=\"";
  for (char c : value) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  out += '"';
}

unsigned syslog_severity(Severity s) {
  switch (s) {
    case Severity::Critical: return 2;
    case Severity::Warning: return 4;
    case Severity::Info: return 6;
  }
  return 5;
}

}  // namespace

std::string webhook_json(const Alert& a) {
  json::object o;
  o["source"] = "pgwarden";
  o["kind"] = to_string(a.kind);
  o["severity"] = to_string(severity(a));
  o["summary"] = summary(a);
  o["time"] = time_of(a);
  o["count"] = a.count;
  o["person"] = a.person;
  o["user"] = a.user;
  o["database"] = a.database;
  o["client_addr"] = a.client_addr;
  o["application_name"] = a.application_name;
  o["statement"] = a.statement;
  o["rule"] = a.rule;
  o["decision"] = decision(a);
  o["dry_run"] = a.dry_run;
  o["session_id"] = a.session_id;
  o["record_hash"] = a.record_hash;
  o["detail"] = a.detail;
  return json::serialize(o);
}

std::string slack_json(const Alert& a) {
  std::string text = "*" + summary(a) + "*";
  auto line = [&](std::string_view name, std::string_view value) {
    if (value.empty()) return;
    text += "\n";
    text += name;
    text += ": ";
    text += value;
  };
  line("severity", to_string(severity(a)));
  line("person", a.person);
  line("role", a.user);
  line("database", a.database);
  line("client", a.client_addr);
  line("application", a.application_name);
  line("rule", a.rule);
  line("decision", std::string(decision(a)) + (a.dry_run ? " (dry run)" : ""));
  if (!a.statement.empty()) text += "\nstatement: ```" + a.statement + "```";
  line("detail", a.detail);
  line("time", time_of(a));
  line("session", a.session_id);
  line("audit record", a.record_hash);
  json::object o;
  o["text"] = text;
  return json::serialize(o);
}

std::string alertmanager_json(const Alert& a) {
  json::object labels;
  labels["alertname"] = "pgwarden_" + std::string(to_string(a.kind));
  labels["severity"] = to_string(severity(a));
  labels["kind"] = to_string(a.kind);
  put_if(labels, "rule", a.rule);
  put_if(labels, "user", a.user);
  put_if(labels, "person", a.person);
  put_if(labels, "database", a.database);
  put_if(labels, "client", a.client_addr);
  if (a.kind == AlertKind::Rule) labels["decision"] = decision(a);
  if (a.dry_run) labels["dry_run"] = "true";
  json::object annotations;
  annotations["summary"] = summary(a);
  put_if(annotations, "statement", a.statement);
  put_if(annotations, "application_name", a.application_name);
  put_if(annotations, "session_id", a.session_id);
  put_if(annotations, "record_hash", a.record_hash);
  put_if(annotations, "detail", a.detail);
  annotations["count"] = std::to_string(a.count);
  annotations["time"] = time_of(a);
  json::object alert;
  alert["labels"] = std::move(labels);
  alert["annotations"] = std::move(annotations);
  alert["startsAt"] = time_of(a);
  json::array body;
  body.push_back(std::move(alert));
  return json::serialize(body);
}

std::string syslog_message(const Alert& a, unsigned facility, std::string_view hostname) {
  std::string out = "<" + std::to_string(facility * 8 + syslog_severity(severity(a))) + ">1 ";
  audit::append_rfc3339(out, a.time);
  out += ' ';
  out += hostname.empty() ? std::string_view("-") : hostname;
  out += " pgwarden " + std::to_string(::getpid()) + " ";
  out += to_string(a.kind);
  out += " [pgwarden@32473";
  append_param(out, "severity", to_string(severity(a)));
  append_param(out, "person", a.person);
  append_param(out, "user", a.user);
  append_param(out, "database", a.database);
  append_param(out, "client", a.client_addr);
  append_param(out, "application", a.application_name);
  append_param(out, "rule", a.rule);
  if (a.kind == AlertKind::Rule) append_param(out, "decision", decision(a));
  if (a.dry_run) append_param(out, "dry_run", "true");
  append_param(out, "session_id", a.session_id);
  append_param(out, "record_hash", a.record_hash);
  append_param(out, "count", std::to_string(a.count));
  append_param(out, "statement", a.statement);
  out += "] ";
  out += summary(a);
  if (!a.detail.empty()) out += ": " + a.detail;
  return out;
}

std::string octet_counted(std::string_view message) {
  return std::to_string(message.size()) + " " + std::string(message);
}

std::string signature_header(std::string_view key, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &size);
  std::string out = "sha256=";
  audit::append_hex(out, std::string_view(reinterpret_cast<const char*>(mac), size));
  return out;
}

}  // namespace pgwarden::alerts
