// docs/audit-record.schema.json describes what the writer really writes:
// records of every event, as chained lines, validate against it, and a
// record missing a field or with a wrong type does not.

// GCC 12 with sanitizers reports std::regex's internal std::function as
// maybe-uninitialized (a false positive in libstdc++'s headers); the pragma
// must precede the includes to cover them.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <regex>
#include <string>
#include <vector>

#include "audit/chain.hpp"
#include "audit/record.hpp"
#include "audit_test_util.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;
using namespace testing;

/// The JSON Schema keywords docs/audit-record.schema.json uses (type, enum,
/// const, pattern, minimum, maximum, required, properties,
/// additionalProperties, items, oneOf, allOf, if/then, $ref), checked as
/// draft 2020-12 defines them. Collects one message per violation.
class SchemaValidator {
 public:
  explicit SchemaValidator(const json::object& root) : root_(root) {}

  std::vector<std::string> validate(const json::value& v) {
    errors_.clear();
    check(root_, v, "");
    return errors_;
  }

 private:
  bool valid(const json::object& s, const json::value& v) {
    SchemaValidator inner(root_);
    inner.check(s, v, "");
    return inner.errors_.empty();
  }

  static bool has_type(const json::value& v, std::string_view type) {
    if (type == "integer") return v.is_int64() || v.is_uint64();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_bool();
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "null") return v.is_null();
    return false;
  }

  void check(const json::object& s, const json::value& v, const std::string& at) {
    if (auto* ref = s.if_contains("$ref")) {
      const std::string name(ref->as_string().subview().substr(std::string_view("#/$defs/").size()));
      return check(root_.at("$defs").at(name).as_object(), v, at);
    }
    if (auto* t = s.if_contains("type"); t && !has_type(v, t->as_string())) error(at, "is not " + std::string(t->as_string()));
    if (auto* c = s.if_contains("const"); c && *c != v) error(at, "is not " + json::serialize(*c));
    if (auto* e = s.if_contains("enum"); e && std::find(e->as_array().begin(), e->as_array().end(), v) == e->as_array().end())
      error(at, json::serialize(v) + " is not one of " + json::serialize(*e));
    if (auto* p = s.if_contains("pattern"); p && v.is_string() && !std::regex_search(std::string(v.as_string()), std::regex(std::string(p->as_string()))))
      error(at, json::serialize(v) + " does not match " + std::string(p->as_string()));
    if (auto* m = s.if_contains("minimum"); m && (v.is_int64() || v.is_uint64()) && v.to_number<double>() < m->to_number<double>())
      error(at, "is below the minimum");
    if (auto* m = s.if_contains("maximum"); m && (v.is_int64() || v.is_uint64()) && v.to_number<double>() > m->to_number<double>())
      error(at, "is above the maximum");
    if (v.is_object()) check_object(s, v.as_object(), at);
    if (auto* items = s.if_contains("items"); items && v.is_array())
      for (std::size_t i = 0; i < v.as_array().size(); ++i) check(items->as_object(), v.as_array()[i], at + "/" + std::to_string(i));
    check_combinations(s, v, at);
  }

  void check_object(const json::object& s, const json::object& o, const std::string& at) {
    if (auto* req = s.if_contains("required"))
      for (const auto& name : req->as_array())
        if (!o.contains(name.as_string())) error(at, "lacks required " + std::string(name.as_string()));
    const json::object* props = s.contains("properties") ? &s.at("properties").as_object() : nullptr;
    for (const auto& [key, value] : o) {
      if (props && props->contains(key)) check(props->at(key).as_object(), value, at + "/" + std::string(key));
      else if (auto* extra = s.if_contains("additionalProperties"); extra && *extra == false)
        error(at, "has unknown member " + std::string(key));
    }
  }

  void check_combinations(const json::object& s, const json::value& v, const std::string& at) {
    if (auto* all = s.if_contains("allOf"))
      for (const auto& sub : all->as_array()) check(sub.as_object(), v, at);
    if (auto* one = s.if_contains("oneOf")) {
      int n = 0;
      for (const auto& sub : one->as_array()) n += valid(sub.as_object(), v);
      if (n != 1) error(at, "matches " + std::to_string(n) + " of oneOf");
    }
    if (auto* cond = s.if_contains("if"); cond && s.contains("then") && valid(cond->as_object(), v))
      check(s.at("then").as_object(), v, at);
  }

  void error(const std::string& at, const std::string& what) { errors_.push_back((at.empty() ? "/" : at) + " " + what); }

  const json::object& root_;
  std::vector<std::string> errors_;
};

json::object load_schema() {
  return json::parse(read_file(fs::path(PGWARDEN_TEST_DATA).parent_path().parent_path() / "docs" /
                               "audit-record.schema.json"))
      .as_object();
}

/// One chained line of each kind of record the writer and the encoders produce.
std::vector<std::string> every_kind_of_record() {
  const SessionFields s = alice_session();
  std::vector<std::string> bodies;
  const auto add = [&bodies](const auto&... fields) {
    RecordBuffer body;
    encode(fields..., body);
    bodies.emplace_back(body.view());
  };
  static const std::vector<std::string> groups = {"dba"};
  SessionFields person = s;
  person.user = "app";
  person.person = "alice@example.com";
  person.person_groups = groups;
  person.auth_method = "certificate";
  person.grant = "dba-app";
  add(s, event::session_start, SessionEventRecord{});
  add(s, event::auth_ok, SessionEventRecord{{}, "passthrough", {}, {}});
  add(s, event::auth_fail, SessionEventRecord{{}, {}, "28P01", "password authentication failed"});
  bodies.push_back(statement_body("SELECT 1"));
  const std::vector<Parameter> params = {{"1", false, false}, {"", true, false}, {"\x01", false, true}};
  const std::vector<ObjectName> objects = {{"public", "t", "write"}};
  StatementRecord ext;
  ext.protocol = Protocol::Extended;
  ext.text = "INSERT INTO t VALUES ($1, $2, $3)";
  ext.parameters = params;
  ext.objects = objects;
  ext.decision = Decision::Deny;
  ext.rule = "r";
  ext.reason = "writes are not allowed";
  ext.dry_run = true;
  add(s, ext, EncodeOptions{ParameterMode::Full, false});
  add(s, StatementResultRecord{{}, 0, Outcome{-1, "23505", "duplicate key", 10}});
  add(person, event::auth_ok, SessionEventRecord{{}, "scram-sha-256-plus", {}, {}});
  add(person, SessionEndRecord{{}, 10, 1, 2, 3, "client_closed"});
  add(s, SessionEndRecord{{}, 10, 1, 2, 3, "client_closed"});
  add(s, CancelRecord{{}, "10.0.0.1", 4000, true});
  add(ConfigReloadRecord{{}, "/etc/pgwarden.yaml", true, ""});
  add(s, RefusalCountRecord{Clock::now(), Clock::now(), 3000, 4, 3003, "", "audit_unavailable", "58030"});
  const std::string zeros(64, '0');
  AlertUndeliveredRecord undelivered;
  undelivered.sink = "security";
  undelivered.error = "HTTP 500 (attempt 5 of 5)";
  undelivered.alert_kind = "rule";
  undelivered.alert_time = Clock::now();
  undelivered.session_id = "s1";
  undelivered.user = "alice";
  undelivered.client_addr = "10.0.0.1";
  undelivered.text = "DROP TABLE t";
  undelivered.rule = "no-drop";
  undelivered.decision = "deny";
  undelivered.count = 3;
  undelivered.alert_record_hash = zeros;
  add(undelivered);
  AlertUndeliveredRecord rejected;  // not about a statement: no session, no decision
  rejected.sink = "chat";
  rejected.error = "queue full";
  rejected.alert_kind = "config_rejected";
  add(rejected);
  add(CheckpointRecord{{}, CheckpointReason::Start, "", 0, zeros, "", {}, 0});
  add(CheckpointRecord{{}, CheckpointReason::Recover, "pgwarden.jsonl", 9, zeros, "write: ENOSPC", Clock::now(), 4});

  RecordHasher hasher("a key of sixteen bytes or more");
  ChainHead head;
  std::vector<std::string> lines;
  for (const auto& body : bodies) {
    std::string line;
    hasher.append_line(body, head, line);
    line.pop_back();  // the newline
    lines.push_back(line);
  }
  return lines;
}

// Every kind of record validates against the published schema.
TEST(AuditSchema, EveryKindOfRecordValidates) {
  const json::object schema = load_schema();
  SchemaValidator validator(schema);
  for (const auto& line : every_kind_of_record()) {
    const auto errors = validator.validate(json::parse(line));
    EXPECT_TRUE(errors.empty()) << line << "\n" << (errors.empty() ? "" : errors.front());
  }
}

// The schema rejects records that lack what their event requires, have a
// wrong type or an unknown member: it says something.
TEST(AuditSchema, RejectsIncompleteOrMistypedRecords) {
  const json::object schema = load_schema();
  SchemaValidator validator(schema);
  const std::vector<std::string> lines = every_kind_of_record();
  json::object statement = json::parse(lines[3]).as_object();
  statement.erase("decision");
  EXPECT_FALSE(validator.validate(statement).empty()) << "statement without decision";
  statement = json::parse(lines[3]).as_object();
  statement["rows"] = "many";
  EXPECT_FALSE(validator.validate(statement).empty()) << "rows as a string";
  statement = json::parse(lines[3]).as_object();
  statement["result_follows"] = true;
  EXPECT_FALSE(validator.validate(statement).empty()) << "an outcome and result_follows at once";
  statement = json::parse(lines[3]).as_object();
  statement["usr"] = "alice";
  EXPECT_FALSE(validator.validate(statement).empty()) << "a misspelt member";
  json::object people = json::parse(lines[7]).as_object();
  ASSERT_TRUE(people.contains("person")) << lines[7];
  people["auth_method"] = "kerberos";
  EXPECT_FALSE(validator.validate(people).empty()) << "a person with an unknown auth_method";
  people = json::parse(lines[7]).as_object();
  people.erase("person_groups");
  EXPECT_FALSE(validator.validate(people).empty()) << "a person without person_groups";
  json::object checkpoint = json::parse(lines.back()).as_object();
  checkpoint.erase("records_lost");
  EXPECT_FALSE(validator.validate(checkpoint).empty()) << "recover checkpoint without records_lost";
}

}  // namespace
}  // namespace pgwarden::audit
