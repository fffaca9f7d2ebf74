#pragma once
/// What calling a function, using an operator or casting to a type means for
/// policy. The classifier has no catalog, so it knows PostgreSQL 15's own
/// functions, types and operators from a list generated from a real server's
/// pg_proc, pg_type and pg_operator (pg_catalog_15.inc, by
/// scripts/gen-function-catalog.sh), and keeps flags of its own for the
/// built-ins that act outside the database whatever their markings.

#include <cstdint>
#include <string_view>

namespace pgwarden::policy {

/// What a call can do beyond computing a value (bits of FunctionInfo::effects).
/// Each is a fact of its own, whatever pg_proc says about the function.
namespace function_effect {
inline constexpr std::uint16_t dynamic_sql = 1;       ///< runs SQL text (query_to_xml, ts_stat, dblink ...)
inline constexpr std::uint16_t server_file = 2;       ///< the server's files (pg_read_file, lo_import ...)
inline constexpr std::uint16_t set_config = 4;        ///< set_config(): a SET by another name
inline constexpr std::uint16_t signals = 8;           ///< signals other backends or the postmaster
inline constexpr std::uint16_t large_object = 16;     ///< creates, writes, reads or unlinks large objects
inline constexpr std::uint16_t remote_database = 32;  ///< reaches another database (dblink, postgres_fdw)
inline constexpr std::uint16_t advisory_lock = 64;    ///< takes or releases advisory locks
inline constexpr std::uint16_t notify = 128;          ///< pg_notify(): a NOTIFY by another name
}  // namespace function_effect

/// How a call of one function name is classified.
struct FunctionInfo {
  /// Every PostgreSQL 15 built-in of this name is STABLE or IMMUTABLE or not
  /// PARALLEL UNSAFE, and none has an effect: the call is no FUNCTION statement.
  bool side_effect_free = false;
  /// The name is one of PostgreSQL 15's own functions (in the schema written,
  /// or in pg_catalog when unqualified).
  bool builtin = false;
  std::uint16_t effects = 0;  ///< function_effect bits
};

/// What calling `schema.name` (schema empty when unqualified) does; names as
/// the parser produced them (unquoted identifiers already lower-cased). A
/// name PostgreSQL does not ship is an ordinary function call (fail closed).
FunctionInfo function_info(std::string_view schema, std::string_view name) noexcept;

/// True when `schema.name` names one of PostgreSQL's own operators. Any other
/// operator is a function someone created (CREATE OPERATOR ... FUNCTION = f),
/// so using it is a call of f.
bool builtin_operator(std::string_view schema, std::string_view name) noexcept;

/// True when `schema.name` names one of PostgreSQL 15's own types (pg_catalog,
/// or information_schema's domains). A cast to any other type may run a
/// function of its owner's (CREATE CAST ... WITH FUNCTION, a domain's CHECK).
bool builtin_type(std::string_view schema, std::string_view name) noexcept;

}  // namespace pgwarden::policy
