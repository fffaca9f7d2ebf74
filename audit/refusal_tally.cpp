#include "audit/refusal_tally.hpp"

#include <boost/json.hpp>

#include "audit/record.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;

std::string_view string_member(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

/// The session members of a record body, `"session_id":...,"tls":...`.
/// Every value in them is a JSON string or literal, so the quote that opens
/// the next member's name cannot be inside one (quotes in strings are
/// escaped): the first `,"statement_id":` is where they end.
std::string_view session_members_of(std::string_view body) {
  const std::size_t begin = body.find("\"session_id\":");
  if (begin == std::string_view::npos) return {};
  const std::size_t end = body.find(",\"statement_id\":", begin);
  if (end == std::string_view::npos) return {};
  return body.substr(begin, end - begin);
}

/// The session_id of any session's record body ("" for none).
std::string_view session_id_of(std::string_view body) {
  constexpr std::string_view key = "\"session_id\":\"";
  const std::size_t begin = body.find(key);
  if (begin == std::string_view::npos) return {};
  const std::size_t end = body.find('"', begin + key.size());
  return end == std::string_view::npos ? std::string_view() : body.substr(begin + key.size(), end - begin - key.size());
}

}  // namespace

bool RefusalTally::add(std::string_view body, Clock::time_point now) {
  // Cheap test first: these bytes can only be the record's own member
  // (inside a string value its quotes would be escaped).
  if (body.find("\"decision\":\"deny\"") == std::string_view::npos) return false;
  json::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) return false;
  const json::object& o = parsed.get_object();
  const json::value* id = o.if_contains("statement_id");
  if (string_member(o, "event") != event::statement || o.contains("result_follows") || !id ||
      !(id->is_uint64() || (id->is_int64() && id->get_int64() >= 0)))
    return false;
  const std::string_view members = session_members_of(body);
  if (members.empty()) return false;
  Key key{std::string(string_member(o, "session_id")), std::string(string_member(o, "rule")),
          std::string(string_member(o, "reason")), std::string(string_member(o, "sqlstate"))};
  Tally& t = tallies_[std::move(key)];
  const std::uint64_t statement_id =
      id->is_uint64() ? id->get_uint64() : static_cast<std::uint64_t>(id->get_int64());
  if (t.count++ == 0) {
    t.session_members.assign(members);
    t.first_statement_id = statement_id;
    t.first_time = now;
  }
  t.last_statement_id = statement_id;
  t.last_time = now;
  ++counted_;
  return true;
}

void RefusalTally::append_record(const Key& key, const Tally& t, BodyBatch& out) {
  SessionFields s;
  s.encoded = t.session_members;
  RefusalCountRecord r;
  r.time = t.last_time;
  r.first_time = t.first_time;
  r.count = t.count;
  r.first_statement_id = t.first_statement_id;
  r.last_statement_id = t.last_statement_id;
  r.rule = key.rule;
  r.reason = key.reason;
  r.sqlstate = key.sqlstate;
  RecordBuffer body;
  encode(s, r, body);
  out.append(body.view());
}

std::size_t RefusalTally::take_session_of(std::string_view body, BodyBatch& out) {
  if (tallies_.empty()) return 0;
  const std::string_view session_id = session_id_of(body);
  if (session_id.empty()) return 0;
  std::size_t n = 0;
  auto it = tallies_.lower_bound(Key{std::string(session_id), {}, {}, {}});
  while (it != tallies_.end() && it->first.session_id == session_id) {
    append_record(it->first, it->second, out);
    it = tallies_.erase(it);
    ++n;
  }
  return n;
}

std::size_t RefusalTally::take_all(BodyBatch& out) {
  for (const auto& [key, tally] : tallies_) append_record(key, tally, out);
  const std::size_t n = tallies_.size();
  tallies_.clear();
  return n;
}

}  // namespace pgwarden::audit
