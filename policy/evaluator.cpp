#include "policy/evaluator.hpp"

#include <algorithm>

namespace pgwarden::policy {
namespace {

constexpr std::string_view kDefaultDenied = "permission denied by pgwarden: no rule allows this (default: deny)";
constexpr std::string_view kFunctionCallDenied =
    "permission denied by pgwarden: the FunctionCall protocol is refused unless a rule allows protocol function_call";
constexpr std::string_view kReadOnlyDenied =
    "permission denied by pgwarden: this session is read-only (a connect rule with read_only: true) and stays so; "
    "default_transaction_read_only and transaction_read_only cannot be turned off";
constexpr std::string_view kReplicationDenied =
    "permission denied by pgwarden: replication connections are refused unless a rule allows protocol replication";

template <class List, class Text>
bool any_glob(const List& globs, const Text& text) noexcept {
  for (const auto& g : globs)
    if (g.matches(text)) return true;
  return false;
}

bool member(const std::vector<std::string>& sorted, const std::string& user) noexcept {
  return std::binary_search(sorted.begin(), sorted.end(), user);
}

// The person is in one of `groups`: by their credential's own groups, or by
// a pgwarden group (resolved into `members`) that lists them.
bool person_in(const std::vector<std::string>& groups, const std::vector<std::string>& members,
               const SessionFacts& s) noexcept {
  if (!s.person.empty() && member(members, s.person)) return true;
  for (const auto& g : s.person_groups)
    if (std::find(groups.begin(), groups.end(), g) != groups.end()) return true;
  return false;
}

// Session-level conditions other than the protocol path; `set` holds the
// session_cond_* bits of those the rule has.
bool session_matches(std::uint16_t set, const CompiledRule& c, const Conditions& w, const SessionFacts& s) noexcept {
  if ((set & session_cond_users) && !any_glob(w.who.users, s.user)) return false;
  if ((set & session_cond_user_in) && !member(c.in_members, s.user)) return false;
  if ((set & session_cond_user_not_in) && member(c.not_in_members, s.user)) return false;
  if ((set & session_cond_databases) && !any_glob(w.who.databases, s.database)) return false;
  if ((set & session_cond_applications) && !any_glob(w.who.applications, s.application_name)) return false;
  if ((set & session_cond_client_in) && !c.client_in.contains(s.client)) return false;
  if ((set & session_cond_client_not_in) && c.client_not_in.contains(s.client)) return false;
  if ((set & session_cond_environments) &&
      std::find(w.who.environments.begin(), w.who.environments.end(), s.environment) == w.who.environments.end())
    return false;
  if ((set & session_cond_persons) && !any_glob(w.who.persons, s.person)) return false;
  if ((set & session_cond_person_in) && !person_in(w.who.person_in, c.person_in_members, s)) return false;
  if ((set & session_cond_auth_methods) && (w.who.auth_methods & auth_method_bit(s.auth_method)) == 0) return false;
  return !(set & session_cond_time) || w.who.time->contains(s.now);
}

bool session_matches(const CompiledRule& c, const Conditions& w, const SessionFacts& s) noexcept {
  if (w.protocols != 0 && (w.protocols & protocol_bit(s.protocol)) == 0) return false;
  return session_matches(session_condition_bits(w), c, w, s);
}

std::uint16_t fact_flags(const StatementFacts& f) noexcept {
  std::uint16_t bits = 0;
  for (const auto& flag : statement_flags)
    if (f.*flag.fact) bits |= flag.bit;
  return bits;
}

bool function_matches(const std::vector<Glob>& globs, std::string_view fn) noexcept {
  const auto dot = fn.rfind('.');
  const std::string_view bare = dot == std::string_view::npos ? fn : fn.substr(dot + 1);
  for (const auto& g : globs)
    if (g.matches(fn) || g.matches(bare)) return true;
  return false;
}

// The glob-based statement conditions, checked after the cheap ones.
bool statement_globs_match(const Conditions& w, const StatementFacts& f) noexcept {
  if (!w.commands.empty()) {
    // effective_tags starts with command_tag; facts built without it still count.
    bool hit = f.effective_tags.empty() && any_glob(w.commands, f.command_tag);
    for (const auto& tag : f.effective_tags) hit = hit || any_glob(w.commands, tag);
    if (!hit) return false;
  }
  if (!w.objects.empty()) {
    bool hit = false;
    for (const auto& o : f.objects)
      for (const auto& p : w.objects) hit = hit || p.matches(o);
    if (!hit) return false;
  }
  if (!w.functions.empty()) {
    bool hit = false;
    for (const auto& fn : f.functions) hit = hit || function_matches(w.functions, fn);
    if (!hit) return false;
  }
  return true;
}

enum class Match : std::uint8_t { No, Yes, FailClosed };

Match rule_matches(const CompiledRule& c, const Rule& r, const SessionFacts& s, const StatementFacts* f,
                   std::uint16_t flags) noexcept {
  const Conditions& w = r.when;
  if (f != nullptr && f->unparseable && r.action == Action::Deny && !(c.flag_mask & statement_flag_unparseable)) {
    if (!session_matches(c, w, s)) return Match::No;
    return w.has_statement_conditions() ? Match::FailClosed : Match::Yes;
  }
  if (f != nullptr) {
    if (!w.classes.empty() && !w.classes.intersects(f->classes)) return Match::No;
    if ((flags & c.flag_mask) != c.flag_value) return Match::No;
  }
  if (!session_matches(c, w, s)) return Match::No;
  return f == nullptr || statement_globs_match(w, *f) ? Match::Yes : Match::No;
}

// rule_matches for a parseable statement whose guard passed: only the
// conditions the guard says are set are looked at.
Match guarded_match(const RuleGuard& g, const CompiledRule& c, const Rule& r, const SessionFacts& s,
                    const StatementFacts& f) noexcept {
  if (g.session != 0 && !session_matches(g.session, c, r.when, s)) return Match::No;
  return !g.statement_globs || statement_globs_match(r.when, f) ? Match::Yes : Match::No;
}

struct Tally {
  const CompiledRule* deny = nullptr;
  const CompiledRule* allow = nullptr;
  const Rule* dry = nullptr;
  bool alert = false;
  bool path_allowed = false;  // an enforced allow names the session's protocol path
  bool read_only = false;     // an enforced rule that matched has read_only: true
};

// True when the guard alone proves the rule cannot match a parseable statement.
bool guard_rejects(const RuleGuard& g, std::uint8_t classes, std::uint16_t flags, std::uint8_t path) noexcept {
  return (g.classes != 0 && (g.classes & classes) == 0) || (flags & g.flag_mask) != g.flag_value ||
         (g.protocols != 0 && (g.protocols & path) == 0);
}

Tally tally(const RuleSet& set, std::span<const CompiledRule> rules, const SessionFacts& s,
            const StatementFacts* f, std::uint32_t index, MatchTrace* trace,
            const SessionMask* mask = nullptr) noexcept {
  Tally t;
  const std::uint16_t flags = f ? fact_flags(*f) : 0;
  const bool guarded = f != nullptr && !f->unparseable;
  const std::uint8_t classes = f ? f->classes.bits() : 0;
  const std::uint8_t path = protocol_bit(s.protocol);
  const auto guards = set.statement_guards();
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (mask && !mask->allows(i)) continue;
    if (guarded && guard_rejects(guards[i], classes, flags, path)) continue;
    const CompiledRule& c = rules[i];
    const Rule& r = set.rule(c);
    const Match m = guarded ? guarded_match(guards[i], c, r, s, *f) : rule_matches(c, r, s, f, flags);
    if (m == Match::No) continue;
    if (trace) trace->push_back({&r, index, m == Match::FailClosed});
    t.alert = t.alert || r.alert;
    t.read_only = t.read_only || (r.enforce && r.read_only);
    if (!r.enforce) {
      if (!t.dry) t.dry = &r;
    } else if (r.action == Action::Deny) {
      if (!t.deny) t.deny = &c;
    } else {
      if (!t.allow) t.allow = &c;
      t.path_allowed = t.path_allowed || (r.when.protocols & protocol_bit(s.protocol)) != 0;
    }
  }
  return t;
}

Decision deny_by(const RuleSet& set, const CompiledRule& c) noexcept {
  Decision d;
  d.action = Action::Deny;
  d.reason = DecisionReason::Rule;
  d.rule = &set.rule(c);
  d.sqlstate = d.rule->sqlstate;
  d.message = c.denial_message;
  return d;
}

// A statement that may turn a read-only session read-write; text that does
// not parse could be one (fail closed).
bool ends_read_only(const SessionFacts& s, const StatementFacts* f) noexcept {
  return s.read_only && f != nullptr && (f->read_only_off || f->unparseable);
}

Decision decide(const RuleSet& set, const Tally& t, const SessionFacts& s, Phase phase,
                const StatementFacts* f = nullptr) noexcept {
  Decision d;
  const bool special_path = phase == Phase::Statement ? s.protocol == ProtocolPath::FunctionCall
                                                      : s.protocol == ProtocolPath::Replication;
  if (t.deny) {
    d = deny_by(set, *t.deny);
  } else if (ends_read_only(s, f)) {
    d.action = Action::Deny;
    d.reason = DecisionReason::ReadOnlySession;
    d.sqlstate = "42501";
    d.message = kReadOnlyDenied;
  } else if (special_path && !t.path_allowed) {
    d.action = Action::Deny;
    d.reason = phase == Phase::Statement ? DecisionReason::FunctionCallNotAllowed
                                         : DecisionReason::ReplicationNotAllowed;
    d.sqlstate = phase == Phase::Statement ? "42501" : "28000";
    d.message = phase == Phase::Statement ? kFunctionCallDenied : kReplicationDenied;
  } else if (t.allow) {
    d.reason = DecisionReason::Rule;
    d.rule = &set.rule(*t.allow);
  } else if (set.default_action() == Action::Deny) {
    d.action = Action::Deny;
    d.sqlstate = phase == Phase::Statement ? "42501" : "28000";
    d.message = kDefaultDenied;
  }
  d.alert = t.alert;
  d.read_only = phase == Phase::Connect && t.read_only && !d.denied();
  if (t.dry && t.dry->action != d.action) {
    d.dry_run = true;
    d.dry_run_rule = t.dry;
  }
  return d;
}

Decision evaluate_one(const RuleSet& set, const SessionFacts& s, const StatementFacts& f, std::uint32_t index,
                      MatchTrace* trace, const SessionMask* mask = nullptr) noexcept {
  Decision d = decide(set, tally(set, set.statement_rules(), s, &f, index, trace, mask), s, Phase::Statement, &f);
  d.statement = index;
  return d;
}

Decision evaluate_text(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                       MatchTrace* trace, const SessionMask* mask) noexcept {
  Decision result;
  result.reason = DecisionReason::EmptyQuery;
  bool denied = false;
  for (std::uint32_t i = 0; i < text.statements.size(); ++i) {
    Decision d = evaluate_one(rules, session, text.statements[i], i, trace, mask);
    const bool alert = result.alert || d.alert;
    const Rule* dry_rule = result.dry_run_rule ? result.dry_run_rule : d.dry_run_rule;
    if (!denied && (i == 0 || d.denied())) result = d;
    denied = denied || d.denied();
    result.alert = alert;
    result.dry_run_rule = dry_rule;
    result.dry_run = dry_rule != nullptr;
    if (denied && !trace) break;
  }
  return result;
}

}  // namespace

std::string_view to_string(DecisionReason r) noexcept {
  switch (r) {
    case DecisionReason::Rule: return "rule";
    case DecisionReason::Default: return "default";
    case DecisionReason::EmptyQuery: return "empty_query";
    case DecisionReason::FunctionCallNotAllowed: return "function_call_not_allowed";
    case DecisionReason::ReplicationNotAllowed: return "replication_not_allowed";
    case DecisionReason::UnreadableText: return "unreadable_text";
    case DecisionReason::ReadOnlySession: return "read_only_session";
    case DecisionReason::AuditUnavailable: return "audit_unavailable";
  }
  return "unknown";
}

std::string_view Decision::rule_name() const noexcept { return rule ? std::string_view(rule->name) : ""; }

Decision evaluate(const RuleSet& rules, const SessionFacts& session, const StatementFacts& statement,
                  MatchTrace* trace) noexcept {
  return evaluate_one(rules, session, statement, 0, trace);
}

Decision evaluate(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                  MatchTrace* trace) noexcept {
  return evaluate_text(rules, session, text, trace, nullptr);
}

Decision evaluate(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                  const SessionMask& mask) noexcept {
  const bool usable = !mask.empty() && mask.size() == rules.statement_rules().size();
  return evaluate_text(rules, session, text, nullptr, usable ? &mask : nullptr);
}

SessionMask session_mask(const RuleSet& rules, const SessionFacts& session) {
  SessionMask m;
  const auto statement_rules = rules.statement_rules();
  m.rules_ = statement_rules.size();
  m.bits_.assign((m.rules_ + 63) / 64 + 1, 0);
  for (std::size_t i = 0; i < statement_rules.size(); ++i) {
    const CompiledRule& c = statement_rules[i];
    const Conditions& w = rules.rule(c).when;
    // Time windows move with the clock: leave them to each evaluation.
    const std::uint16_t fixed = session_condition_bits(w) & ~session_cond_time;
    if (session_matches(fixed, c, w, session)) m.bits_[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  return m;
}

Decision evaluate_connect(const RuleSet& rules, const SessionFacts& session, MatchTrace* trace) noexcept {
  return decide(rules, tally(rules, rules.connect_rules(), session, nullptr, 0, trace), session, Phase::Connect);
}

}  // namespace pgwarden::policy
