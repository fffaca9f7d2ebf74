#include "policy/explain.hpp"

#include <cstdio>
#include <string_view>

#include "policy/evaluator.hpp"

namespace pgwarden::policy {
namespace {

// A minimal JSON writer: objects and arrays with two-space indentation.
class Json {
 public:
  std::string take() { return std::move(out_); }
  void open(char c) { out_ += c; first_ = true; ++depth_; }
  void close(char c) { --depth_; newline(); out_ += c; first_ = false; }
  void key(std::string_view k) { item(); str(k); out_ += ": "; keyed_ = true; }
  void str(std::string_view s) { item(); escape(s); }
  void boolean(bool b) { item(); out_ += b ? "true" : "false"; }
  void number(unsigned long n) { item(); out_ += std::to_string(n); }
  void null() { item(); out_ += "null"; }

 private:
  void item() {
    if (keyed_) { keyed_ = false; return; }
    if (!first_) out_ += ',';
    first_ = false;
    if (depth_ > 0) newline();
  }
  void newline() { out_ += '\n'; out_.append(std::size_t(depth_) * 2, ' '); }
  void escape(std::string_view s) {
    out_ += '"';
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') { out_ += '\\'; out_ += char(c); }
      else if (c == '\n') out_ += "\\n";
      else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out_ += b; }
      else out_ += char(c);
    }
    out_ += '"';
  }
  std::string out_;
  int depth_ = 0;
  bool first_ = true;
  bool keyed_ = false;
};

void write_session(Json& j, const SessionFacts& s) {
  j.key("session");
  j.open('{');
  j.key("user"); j.str(s.user);
  j.key("database"); j.str(s.database);
  j.key("application_name"); j.str(s.application_name);
  j.key("client");
  if (s.client) j.str(s.client->to_string()); else j.str("local");
  j.key("environment"); j.str(s.environment);
  j.key("protocol"); j.str(to_string(s.protocol));
  j.close('}');
}

void write_strings(Json& j, std::string_view key, const std::vector<std::string>& v) {
  j.key(key);
  j.open('[');
  for (const auto& s : v) j.str(s);
  j.close(']');
}

void write_facts(Json& j, const StatementFacts& f) {
  j.key("command_tag"); j.str(f.command_tag);
  write_strings(j, "effective_tags", f.effective_tags);
  j.key("classes");
  j.open('[');
  for (std::size_t c = 0; c < statement_class_count; ++c)
    if (f.classes.contains(StatementClass(c))) j.str(to_string(StatementClass(c)));
  j.close(']');
  j.key("objects");
  j.open('[');
  for (const auto& o : f.objects) {
    j.open('{');
    j.key("schema"); j.str(o.schema);
    j.key("name"); j.str(o.name);
    j.key("access"); j.str(to_string(o.access));
    j.close('}');
  }
  j.close(']');
  write_strings(j, "functions", f.functions);
  j.key("update_or_delete_without_where"); j.boolean(f.update_or_delete_without_where);
  j.key("dynamic_sql"); j.boolean(f.dynamic_sql);
  j.key("role_change"); j.boolean(f.role_change);
  j.key("hidden_write"); j.boolean(f.hidden_write);
  j.key("unparseable"); j.boolean(f.unparseable);
  if (f.unparseable) { j.key("parse_error"); j.str(f.parse_error); }
}

void write_matches(Json& j, const MatchTrace& trace, std::uint32_t statement) {
  j.key("matched_rules");
  j.open('[');
  for (const auto& m : trace) {
    if (m.statement != statement) continue;
    j.open('{');
    j.key("name"); j.str(m.rule->name);
    j.key("action"); j.str(to_string(m.rule->action));
    j.key("enforce"); j.boolean(m.rule->enforce);
    j.key("alert"); j.boolean(m.rule->alert);
    j.key("fail_closed"); j.boolean(m.fail_closed);
    j.close('}');
  }
  j.close(']');
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
  }
  return "";
}

void write_decision(Json& j, const Decision& d, const RuleSet& rules) {
  j.open('{');
  j.key("action"); j.str(to_string(d.action));
  j.key("reason"); j.str(to_string(d.reason));
  j.key("rule"); if (d.rule) j.str(d.rule->name); else j.null();
  j.key("why"); j.str(why(d, rules));
  if (d.denied()) {
    j.key("sqlstate"); j.str(d.sqlstate);
    j.key("message"); j.str(d.message);
    j.key("statement"); j.number(d.statement);
  }
  j.key("dry_run"); j.boolean(d.dry_run);
  j.key("dry_run_rule"); if (d.dry_run_rule) j.str(d.dry_run_rule->name); else j.null();
  j.key("alert"); j.boolean(d.alert);
  j.close('}');
}

}  // namespace

std::string explain_json(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text) {
  MatchTrace trace;
  const Decision overall = evaluate(rules, session, text, &trace);
  Json j;
  j.open('{');
  write_session(j, session);
  j.key("statements");
  j.open('[');
  for (std::uint32_t i = 0; i < text.statements.size(); ++i) {
    const StatementFacts& f = text.statements[i];
    j.open('{');
    j.key("index"); j.number(i);
    write_facts(j, f);
    write_matches(j, trace, i);
    j.key("decision");
    write_decision(j, evaluate(rules, session, f), rules);
    j.close('}');
  }
  j.close(']');
  j.key("decision");
  write_decision(j, overall, rules);
  j.close('}');
  return j.take() + "\n";
}

}  // namespace pgwarden::policy
