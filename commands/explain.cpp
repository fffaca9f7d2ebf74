#include "commands/explain.hpp"

#include <chrono>
#include <optional>
#include <ostream>

#include "audit/redact.hpp"
#include "config/config.hpp"
#include "policy/classifier.hpp"
#include "policy/client_encoding.hpp"
#include "policy/evaluator.hpp"
#include "policy/explain.hpp"
#include "policy/grants.hpp"

namespace pgwarden::commands {
namespace {

// The person, their groups and method, and for a person the role their
// grant gives (session.user) as the session would resolve it at startup.
bool identify(const ExplainRequest& request, const policy::GrantSet& grants, policy::SessionFacts& session,
              std::optional<policy::GrantDecision>& grant, std::ostream& err) {
  if (!request.auth_method.empty() && !policy::parse_auth_method(request.auth_method, session.auth_method)) {
    err << "invalid --auth-method (passthrough, scram, md5, certificate, token or people): " << request.auth_method
        << "\n";
    return false;
  }
  session.person = request.person.empty() ? request.user : request.person;
  session.person_groups = request.person_groups;
  if (!policy::names_person(session.auth_method)) {
    if (session.person != request.user) {
      err << "--person differs from --user: with --auth-method " << policy::to_string(session.auth_method)
          << " the person is the role; give --auth-method certificate, token or people\n";
      return false;
    }
    return true;
  }
  policy::GrantRequest r{.person = session.person,
                         .person_groups = session.person_groups,
                         .auth_method = session.auth_method,
                         .user = request.user,
                         .role_setting = request.role_setting,
                         .database = session.database,
                         .client = session.client};
  grant = grants.resolve(r);
  if (!grant->refused()) session.user = grant->role;
  return true;
}

}  // namespace

int run_explain(const ExplainRequest& request, std::ostream& out, std::ostream& err) {
  config::LoadResult loaded = config::load_config_file(request.config_path);
  if (!loaded.config) {
    for (const auto& d : loaded.errors) err << d.to_string() << "\n";
    return 2;
  }
  policy::SessionFacts session;
  session.user = request.user;
  session.database = request.database.empty() ? request.user : request.database;
  session.application_name = request.application;
  session.environment = loaded.config->environment;
  if (!request.client.empty()) {
    session.client = policy::IpAddress::parse(request.client);
    if (!session.client) {
      err << "invalid --client address: " << request.client << "\n";
      return 2;
    }
  }
  if (!policy::parse_protocol_path(request.protocol, session.protocol)) {
    err << "invalid --protocol: " << request.protocol << "\n";
    return 2;
  }
  std::optional<policy::GrantDecision> grant;
  if (!identify(request, loaded.config->grants, session, grant, err)) return 2;
  session.now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  // As the session would be opened: read-only when a connect rule says so.
  session.read_only = policy::evaluate_connect(loaded.config->policy, session).read_only;

  const auto encoding = policy::ClientEncoding::named(request.client_encoding);
  if (!encoding) {
    err << "unknown --client-encoding: " << request.client_encoding << "\n";
    return 2;
  }
  if (request.standard_conforming_strings != "on" && request.standard_conforming_strings != "off") {
    err << "invalid --standard-conforming-strings (on or off): " << request.standard_conforming_strings << "\n";
    return 2;
  }
  // The text as a session in that encoding and string syntax reads it.
  std::string sql;
  if (!encoding->to_utf8(request.sql, sql)) {
    err << "the text is not valid " << encoding->name() << "; the server would refuse it (22021)\n";
    return 1;
  }
  policy::ClassifiedText text =
      policy::classify(sql, {.standard_conforming_strings = request.standard_conforming_strings == "on"});
  // The output quotes no statement text but parser errors, and those only
  // after the same redaction the audit record and the log apply.
  for (auto& s : text.statements)
    if (s.unparseable) s.parse_error = audit::redact_parse_error(sql, s.parse_error);
  out << policy::explain_json(loaded.config->policy, session, text, grant ? &*grant : nullptr) << "\n";
  if (grant && grant->refused()) return 1;
  return policy::evaluate(loaded.config->policy, session, text).denied() ? 1 : 0;
}

}  // namespace pgwarden::commands
