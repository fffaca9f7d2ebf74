#pragma once
/// `pgwarden explain`: the decision for one SQL text as JSON, with each
/// statement's facts, every rule that matched it and why the outcome is what
/// it is. Takes the RuleSet (Config::policy) rather than the Config so that
/// policy/ stays below config/.

#include <string>

#include "policy/grants.hpp"
#include "policy/rules.hpp"
#include "policy/session_facts.hpp"
#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// A JSON object: {"session", "statements": [{facts..., "matched_rules",
/// "decision"}], "decision": {action, reason, rule, sqlstate, message,
/// dry_run, dry_run_rule, alert, statement, why}}. With `grant` (a person's
/// connection) the session shows the grant used; a refused grant is the
/// decision (reason "no_grant", 28000) and no statement is evaluated.
std::string explain_json(const RuleSet& rules, const SessionFacts& session, const ClassifiedText& text,
                         const GrantDecision* grant = nullptr);

}  // namespace pgwarden::policy
