#include "policy/explain.hpp"

#include <string_view>

#include <boost/json.hpp>

#include "policy/evaluator.hpp"

namespace pgwarden::policy {
namespace {

namespace json = boost::json;

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object session_json(const SessionFacts& s, const GrantDecision* grant) {
  json::object j{{"user", s.user},
          {"person", s.person},
          {"person_groups", strings(s.person_groups)},
          {"auth_method", to_string(s.auth_method)},
          {"database", s.database},
          {"application_name", s.application_name},
          {"client", s.client ? json::value(s.client->to_string()) : json::value("local")},
          {"environment", s.environment},
          {"protocol", to_string(s.protocol)},
          {"read_only", s.read_only}};
  if (grant) j["grant"] = grant->grant ? json::value(grant->grant->name) : json::value(nullptr);
  return j;
}

json::object facts_json(const StatementFacts& f) {
  json::array classes;
  for (std::size_t c = 0; c < statement_class_count; ++c) {
    if (f.classes.contains(StatementClass(c))) classes.emplace_back(to_string(StatementClass(c)));
  }
  json::array objects;
  for (const auto& o : f.objects) {
    objects.emplace_back(json::object{{"schema", o.schema}, {"name", o.name}, {"access", to_string(o.access)}});
  }
  json::object j{{"command_tag", f.command_tag},
                 {"effective_tags", strings(f.effective_tags)},
                 {"classes", std::move(classes)},
                 {"objects", std::move(objects)},
                 {"functions", strings(f.functions)},
                 {"update_or_delete_without_where", f.update_or_delete_without_where},
                 {"dynamic_sql", f.dynamic_sql},
                 {"role_change", f.role_change},
                 {"hidden_write", f.hidden_write},
                 {"runs_program", f.runs_program},
                 {"server_file_access", f.server_file_access},
                 {"signals_backends", f.signals_backends},
                 {"large_objects", f.large_objects},
                 {"remote_database", f.remote_database},
                 {"locks", f.locks},
                 {"notify", f.notify},
                 {"maintenance", f.maintenance},
                 {"read_only_off", f.read_only_off},
                 {"location", f.location},
                 {"length", f.length},
                 {"unparseable", f.unparseable}};
  if (f.role_change) j["role_target"] = f.role_target;
  if (f.unparseable) j["parse_error"] = f.parse_error;
  return j;
}

json::array matches_json(const MatchTrace& trace, std::uint32_t statement) {
  json::array a;
  for (const auto& m : trace) {
    if (m.statement != statement) continue;
    a.emplace_back(json::object{{"name", m.rule->name},
                                {"action", to_string(m.rule->action)},
                                {"enforce", m.rule->enforce},
                                {"alert", m.rule->alert},
                                {"fail_closed", m.fail_closed}});
  }
  return a;
}

std::string why(const Decision& d, const RuleSet& rules) {
  switch (d.reason) {
    case DecisionReason::Rule:
      return std::string(d.denied() ? "denied" : "allowed") + " by rule \"" + d.rule->name + "\"" +
             (d.denied() ? " (any matching deny wins)" : " (no enforced deny rule matched)");
    case DecisionReason::Default:
      return "no enforced rule matched; default: " + std::string(to_string(rules.default_action()));
    case DecisionReason::EmptyQuery: return "empty query";
    case DecisionReason::FunctionCallNotAllowed: return "FunctionCall path without a rule allowing protocol function_call";
    case DecisionReason::ReplicationNotAllowed: return "replication connection without a rule allowing protocol replication";
    case DecisionReason::UnreadableText: return "text not valid in the session's client_encoding";
    case DecisionReason::ReadOnlySession: return "the session is read-only and this statement could turn that off";
    case DecisionReason::AuditUnavailable: return "its audit record could not be written (audit.on_failure: block)";
  }
  return "";
}

json::object decision_json(const Decision& d, const RuleSet& rules) {
  json::object j{{"action", to_string(d.action)},
                 {"reason", to_string(d.reason)},
                 {"rule", d.rule ? json::value(d.rule->name) : json::value(nullptr)},
                 {"why", why(d, rules)},
                 {"dry_run", d.dry_run},
                 {"dry_run_rule", d.dry_run_rule ? json::value(d.dry_run_rule->name) : json::value(nullptr)},
                 {"alert", d.alert}};
  if (d.denied()) {
    j["sqlstate"] = d.sqlstate;
    j["message"] = d.message;
  }
  return j;
}

}  // namespace

std::string explain_json(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                         const GrantDecision* grant) {
  if (grant && grant->refused()) {
    json::object refused{{"action", "deny"}, {"reason", "no_grant"}, {"rule", nullptr},
                         {"why", "the connection is refused at startup: " + grant->refusal},
                         {"sqlstate", "28000"}, {"message", grant->refusal}};
    json::object out{{"session", session_json(session, grant)}, {"statements", json::array()},
                     {"decision", std::move(refused)}};
    return json::serialize(out) + "\n";
  }
  MatchTrace trace;
  const Decision overall = evaluate(rules, session, text, &trace);
  json::array statements;
  for (std::uint32_t i = 0; i < text.statements.size(); ++i) {
    json::object s = facts_json(text.statements[i]);
    s["index"] = i;
    s["matched_rules"] = matches_json(trace, i);
    s["decision"] = decision_json(evaluate(rules, session, text.statements[i]), rules);
    statements.emplace_back(std::move(s));
  }
  json::object out{{"session", session_json(session, grant)},
                   {"statements", std::move(statements)},
                   {"decision", decision_json(overall, rules)}};
  if (overall.denied()) out["decision"].as_object()["statement"] = overall.statement;
  return json::serialize(out) + "\n";
}

}  // namespace pgwarden::policy
