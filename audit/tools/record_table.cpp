#include "audit/tools/record_table.hpp"

#include <ostream>

#include "audit/record.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;

constexpr std::size_t detail_max = 240;

std::string_view string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

/// A number member as text ("" when absent).
std::string number_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_uint64()) return std::to_string(v->get_uint64());
  if (v && v->is_int64()) return std::to_string(v->get_int64());
  return {};
}

bool bool_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_bool() && v->get_bool();
}

/// Characters (code points) in UTF-8 text.
std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

/// `text` padded or cut (with `~`) to `width` characters, and a space.
void cell(std::string& line, std::string_view text, std::size_t width, bool right = false) {
  std::string s = printable(text.empty() ? "-" : text, std::string::npos);
  if (columns(s) > width) {
    std::size_t i = 0;
    for (std::size_t n = 0; i < s.size(); ++i)
      if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && n++ == width - 1) break;
    s.resize(i);
    s += '~';
  }
  const std::string pad(width - columns(s), ' ');
  line += right ? pad + s : s + pad;
  line += ' ';
}

/// "2024-07-01 12:00:00.123" from the record time.
std::string short_time(std::string_view t) {
  std::string s(t.substr(0, 23));
  if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
  return s;
}

std::string duration_ms(const json::object& o) {
  const std::string us = number_at(o, "duration_us");
  if (us.empty()) return {};
  const std::uint64_t v = std::stoull(us);
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 100) + std::to_string(v % 100 / 10) + " ms";
}

std::string decision(const json::object& o) {
  std::string d(string_at(o, "decision"));
  if (d.empty()) return d;
  if (bool_at(o, "dry_run")) d += " (dry run)";
  if (bool_at(o, "alert")) d += " !";
  const std::string_view rule = string_at(o, "rule");
  if (!rule.empty()) d += " " + std::string(rule);
  return d;
}

/// The role, or "person as role" when a person logged in as a role of another name.
std::string who(const json::object& o) {
  const std::string_view user = string_at(o, "user"), person = string_at(o, "person");
  if (person.empty() || person == user) return std::string(user);
  return std::string(person) + " as " + std::string(user);
}

std::string result(const json::object& o) {
  if (bool_at(o, "result_follows")) return "(no result)";
  std::string r;
  if (const std::string_view state = string_at(o, "sqlstate"); !state.empty()) r = "ERROR " + std::string(state);
  else if (const std::string rows = number_at(o, "rows"); !rows.empty()) r = rows + (rows == "1" ? " row" : " rows");
  const std::string ms = duration_ms(o);
  if (!ms.empty()) r += (r.empty() ? "" : " ") + ms;
  return r;
}

std::string detail(const json::object& o) {
  const std::string_view event = string_at(o, "event");
  const std::string_view message = string_at(o, "message");
  if (event == event::statement || event == event::statement_result) {
    std::string d(string_at(o, "text"));
    if (!message.empty()) d += (d.empty() ? "" : "  -- ") + std::string(message);
    return d;
  }
  if (event == event::session_start) return "application " + std::string(string_at(o, "application_name")) +
                                            (bool_at(o, "tls") ? ", tls" : "");
  if (event == event::auth_ok) {
    const std::string_view mechanism = string_at(o, "auth_mechanism"), grant = string_at(o, "grant");
    return std::string(string_at(o, "auth_method")) + (mechanism.empty() ? "" : " (" + std::string(mechanism) + ")") +
           (grant.empty() ? "" : ", grant " + std::string(grant));
  }
  if (event == event::auth_fail) return std::string(string_at(o, "sqlstate")) + " " + std::string(message);
  if (event == event::session_end)
    return std::string(string_at(o, "close_reason")) + ", " + number_at(o, "statements") + " statements, " +
           number_at(o, "bytes_from_client") + " bytes in, " + number_at(o, "bytes_to_client") + " bytes out";
  if (event == event::cancel) return "from " + std::string(string_at(o, "requester_addr")) +
                                     (bool_at(o, "matched") ? ", forwarded" : ", no such session");
  if (event == event::config_reload)
    return (bool_at(o, "ok") ? "applied " : "rejected ") + std::string(string_at(o, "config_file")) +
           (message.empty() ? "" : ": " + std::string(message));
  if (event == event::statement_refusals)
    return number_at(o, "count") + " statements denied (" + std::string(string_at(o, "reason")) + ", statement_id " +
           number_at(o, "first_statement_id") + ".." + number_at(o, "last_statement_id") + ") since " +
           std::string(string_at(o, "first_time"));
  if (event == event::checkpoint)
    return std::string(string_at(o, "reason")) + " after seq " + number_at(o, "previous_seq") + " of " +
           std::string(string_at(o, "previous_file"));
  return {};
}

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && out.size() < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (c < 0x20 || c == 0x7f) out += '?';
    else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      out += '?';  // C1 control (U+0080..U+009F)
      ++i;
    } else out += static_cast<char>(c);
  }
  if (out.size() >= max && out.size() < text.size()) {
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xc0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xc0) out.pop_back();
    out += "…";
  }
  return out;
}

void RecordTable::header() {
  line_.clear();
  for (auto [name, width, right] : {std::tuple{"TIME", 23, false}, {"SEQ", 7, true}, {"EVENT", 16, false},
                                    {"USER", 24, false}, {"DATABASE", 12, false}, {"CLIENT", 15, false},
                                    {"SESSION", 8, false}, {"DECISION", 28, false}, {"RESULT", 20, false}})
    cell(line_, name, static_cast<std::size_t>(width), right);
  out_ << line_ << "DETAIL\n";
}

void RecordTable::row(const json::object& o) {
  line_.clear();
  cell(line_, short_time(string_at(o, "time")), 23);
  cell(line_, number_at(o, "seq"), 7, true);
  cell(line_, string_at(o, "event"), 16);
  cell(line_, who(o), 24);
  cell(line_, string_at(o, "database"), 12);
  cell(line_, string_at(o, "client_addr"), 15);
  cell(line_, string_at(o, "session_id"), 8);
  cell(line_, decision(o), 28);
  cell(line_, result(o), 20);
  line_ += printable(detail(o), detail_max);
  out_ << line_ << "\n";
}

}  // namespace pgwarden::audit
