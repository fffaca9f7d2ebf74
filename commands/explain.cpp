#include "commands/explain.hpp"

#include <chrono>
#include <ostream>

#include "audit/redact.hpp"
#include "config/config.hpp"
#include "policy/classifier.hpp"
#include "policy/client_encoding.hpp"
#include "policy/evaluator.hpp"
#include "policy/explain.hpp"

namespace pgwarden::commands {

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
  out << policy::explain_json(loaded.config->policy, session, text) << "\n";
  return policy::evaluate(loaded.config->policy, session, text).denied() ? 1 : 0;
}

}  // namespace pgwarden::commands
