#pragma once
/// The rule evaluator: a pure function of (rule set, session, statement) to a
/// Decision. No I/O, no clock, no allocation unless a MatchTrace is asked for.
///
/// Semantics: every rule is checked; any matching enforced deny wins; else the
/// first matching enforced allow; else the rule set's default. The
/// FunctionCall path and replication connections are denied unless a matching
/// allow rule names that protocol path. Unparseable SQL matches every
/// statement-level condition of a deny rule whose session-level conditions
/// match (fail closed). Rules with `enforce: false` never change the outcome;
/// when one would have, the decision says so (dry_run).

#include <cstdint>
#include <string_view>
#include <vector>

#include "policy/rules.hpp"
#include "policy/session_facts.hpp"
#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// Why the decision came out as it did.
enum class DecisionReason : std::uint8_t {
  Rule,                    ///< `rule` decided
  Default,                 ///< no enforced rule matched; the default applied
  EmptyQuery,              ///< no statement at all (an empty Query)
  FunctionCallNotAllowed,  ///< FunctionCall path without a rule allowing it
  ReplicationNotAllowed,   ///< replication connection without a rule allowing it
  UnreadableText,          ///< SQL text not valid in the session's client_encoding
  ReadOnlySession,         ///< the statement may turn a read-only session read-write
  AuditUnavailable,        ///< its audit record could not be written (audit.on_failure: block)
};
/// How many DecisionReason values there are: arrays indexed by them are this long.
inline constexpr std::size_t decision_reason_count = static_cast<std::size_t>(DecisionReason::AuditUnavailable) + 1;
/// "rule", "default", "empty_query", "function_call_not_allowed", "replication_not_allowed",
/// "unreadable_text", "read_only_session", "audit_unavailable".
std::string_view to_string(DecisionReason r) noexcept;

/// One rule that matched one statement (for `pgwarden explain`).
struct RuleMatch {
  const Rule* rule = nullptr;
  std::uint32_t statement = 0;  ///< index into ClassifiedText::statements
  bool fail_closed = false;     ///< matched only because the statement is unparseable
};
using MatchTrace = std::vector<RuleMatch>;

/// The outcome. Views point into the RuleSet (or static text): keep the
/// RuleSet (its Config) alive while the decision is used.
struct Decision {
  Action action = Action::Allow;
  DecisionReason reason = DecisionReason::Default;
  const Rule* rule = nullptr;    ///< the deciding rule, when reason == Rule
  std::string_view sqlstate;     ///< when denied: "42501", "28000" or the rule's
  std::string_view message;      ///< when denied: the client's error message
  bool dry_run = false;          ///< a non-enforced rule would have changed the outcome
  const Rule* dry_run_rule = nullptr;
  bool alert = false;            ///< a matching rule (enforced or not) has alert: true
  std::uint32_t statement = 0;   ///< the statement that was denied (multi-statement text)
  /// Connect decisions: a matching enforced rule has read_only: true, so the
  /// session is opened read-only (SessionFacts::read_only).
  bool read_only = false;

  bool denied() const noexcept { return action == Action::Deny; }
  /// The deciding rule's name, or "" for the default and built-in denials.
  std::string_view rule_name() const noexcept;
};

/// Which statement rules' session-level conditions (user, groups, database,
/// application, client network, environment, person, person's groups,
/// authentication method) hold for one session. Those do
/// not change from statement to statement, so a session computes the mask
/// once (again after a reload or a change of application_name) and
/// evaluation skips the rules that cannot match it. Time windows and the
/// protocol path are still checked per statement.
class SessionMask {
 public:
  SessionMask() = default;
  bool empty() const noexcept { return bits_.empty(); }
  bool allows(std::size_t rule) const noexcept { return (bits_[rule / 64] >> (rule % 64)) & 1u; }

 private:
  friend SessionMask session_mask(const RuleSet&, const SessionFacts&);
  std::vector<std::uint64_t> bits_;
  std::size_t rules_ = 0;
 public:
  /// Number of statement rules the mask was computed for.
  std::size_t size() const noexcept { return rules_; }
};

/// Computes the mask of `rules` for `session`.
SessionMask session_mask(const RuleSet& rules, const SessionFacts& session);

/// Decides one statement.
Decision evaluate(const RuleSet& rules, const SessionFacts& session, const StatementFacts& statement,
                  MatchTrace* trace = nullptr) noexcept;

/// Decides a whole (possibly multi-statement) text: one denied statement
/// denies all of it. An empty text is allowed.
Decision evaluate(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                  MatchTrace* trace = nullptr) noexcept;

/// The same, skipping rules `mask` (computed by session_mask for these rules
/// and this session) rules out. Gives the same Decision as without the mask.
Decision evaluate(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                  const SessionMask& mask) noexcept;

/// Decides a connection attempt at startup against the connect-phase rules
/// (session.protocol is Replication for walsender connections).
Decision evaluate_connect(const RuleSet& rules, const SessionFacts& session, MatchTrace* trace = nullptr) noexcept;

}  // namespace pgwarden::policy
