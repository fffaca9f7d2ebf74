#include "audit/tools/record_filter.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "audit/record.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c; }

std::string_view string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

/// Whether the string array `key` of `o` has an element matching `pred`.
template <typename Pred>
bool any_element(const json::object& o, std::string_view key, Pred pred) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_array()) return false;
  return std::any_of(v->get_array().begin(), v->get_array().end(),
                     [&](const json::value& e) { return e.is_string() && pred(std::string_view(e.get_string())); });
}

bool parse_address(std::string_view text, std::array<unsigned char, 16>& out) {
  const std::string s(text);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out = {};
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, s.c_str(), out.data()) == 1;
}

}  // namespace

bool AddressBlock::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (!parse_address(text.substr(0, slash), bytes_)) return false;
  const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  prefix_ = 128;
  if (slash == std::string_view::npos) return true;
  const std::string_view bits = text.substr(slash + 1);
  unsigned n = 0;
  const auto r = std::from_chars(bits.data(), bits.data() + bits.size(), n);
  if (r.ec != std::errc() || r.ptr != bits.data() + bits.size() || n > (v4 ? 32u : 128u)) return false;
  prefix_ = v4 ? n + 96 : n;
  return true;
}

bool AddressBlock::contains(std::string_view address) const {
  std::array<unsigned char, 16> a{};
  if (!parse_address(address, a)) return false;
  const unsigned whole = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(a.data(), bytes_.data(), whole) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (bytes_[whole] & mask);
}

bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && lower(pattern[p]) == lower(text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool RecordFilter::parse(const SearchRequest& r, std::string& error) {
  user_ = r.user;
  person_ = r.person;
  database_ = r.database;
  session_ = r.session;
  class_ = r.class_name;
  command_ = r.command;
  rule_ = r.rule;
  event_ = r.event;
  if (!r.decision.empty() && r.decision != "allow" && r.decision != "deny") {
    error = "--decision: expected allow or deny, not " + r.decision;
    return false;
  }
  decision_ = r.decision;
  if (!r.client.empty() && !client_.emplace().parse(r.client)) {
    error = "--client: not an address or CIDR block: " + r.client;
    return false;
  }
  for (auto [text, slot, name] : {std::tuple{&r.since, &since_, "--since"}, std::tuple{&r.until, &until_, "--until"}}) {
    if (text->empty()) continue;
    if (!parse_rfc3339(*text, slot->emplace())) {
      error = std::string(name) + ": expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], not " + *text;
      return false;
    }
  }
  return true;
}

bool RecordFilter::has_statement_criteria() const {
  return !decision_.empty() || !class_.empty() || !command_.empty() || !rule_.empty();
}

bool RecordFilter::matches_session(const json::object& o) const {
  const std::string_view event = string_at(o, "event");
  if (event_.empty() ? event == event::checkpoint : !glob_match(event_, event)) return false;
  if (!user_.empty() && string_at(o, "user") != user_) return false;
  if (!person_.empty() && string_at(o, "person") != person_) return false;
  if (!database_.empty() && string_at(o, "database") != database_) return false;
  if (!session_.empty() && string_at(o, "session_id") != session_) return false;
  if (client_ && !client_->contains(string_at(o, "client_addr"))) return false;
  if (since_ || until_) {
    Micros t;
    if (!parse_rfc3339(string_at(o, "time"), t)) return false;
    if ((since_ && t < *since_) || (until_ && t > *until_)) return false;
  }
  return true;
}

bool RecordFilter::matches(const json::object& o) const {
  if (!matches_session(o)) return false;
  if (!decision_.empty() && string_at(o, "decision") != decision_) return false;
  if (!rule_.empty() && string_at(o, "rule") != rule_) return false;
  if (!class_.empty() && !any_element(o, "classes", [&](std::string_view c) { return glob_match(class_, c); }))
    return false;
  if (!command_.empty() && !any_element(o, "command_tags", [&](std::string_view c) { return glob_match(command_, c); }))
    return false;
  return true;
}

}  // namespace pgwarden::audit
