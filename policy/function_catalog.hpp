#pragma once
/// What calling a function by name means for policy. The classifier has no
/// catalog, so it knows built-ins by name: a short list of side-effect-free
/// ones that do not make a statement a FUNCTION statement, and the risky ones
/// (dynamic SQL, server files, set_config) that need a flag of their own.

#include <cstdint>
#include <string_view>

namespace pgwarden::policy {

/// How a function call is classified.
enum class FunctionRisk : std::uint8_t {
  Harmless,    ///< a pure built-in (count, lower, now ...): no FUNCTION class
  Ordinary,    ///< any other function: FUNCTION class, as pgaudit logs it
  DynamicSql,  ///< runs SQL text or opaque queries (dblink_exec, query_to_xml ...)
  ServerFile,  ///< reads or writes server files (lo_import, pg_read_file ...)
  SetConfig,   ///< set_config(): a SET, possibly of role
};

/// The risk of calling `schema.name` (schema empty when unqualified); names
/// as the parser produced them (unquoted identifiers already lower-cased).
FunctionRisk function_risk(std::string_view schema, std::string_view name) noexcept;

/// True when `schema.name` names one of PostgreSQL's own operators. Any other
/// operator is a function someone created (CREATE OPERATOR ... FUNCTION = f),
/// so using it is a call of f.
bool builtin_operator(std::string_view schema, std::string_view name) noexcept;

}  // namespace pgwarden::policy
