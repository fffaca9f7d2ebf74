#include "policy/function_catalog.hpp"

#include <algorithm>
#include <array>

namespace pgwarden::policy {
namespace {

// Side-effect-free built-ins common in application queries. Sorted. Not
// nextval or setval: PostgreSQL refuses both in a read-only transaction, and
// what they change is not rolled back.
constexpr std::array<std::string_view, 147> harmless_functions = {
    "abs", "age", "array_agg", "array_append", "array_cat", "array_length", "array_position",
    "array_remove", "array_to_json", "array_to_string", "avg", "bit_and", "bit_or", "bool_and",
    "bool_or", "btrim", "cardinality", "ceil", "ceiling", "char_length", "character_length",
    "clock_timestamp", "coalesce", "concat", "concat_ws", "corr", "count", "cume_dist",
    "current_database", "current_schema", "current_schemas", "current_setting", "currval",
    "date_part", "date_trunc", "decode", "dense_rank", "encode", "every", "exp", "extract",
    "first_value", "floor", "format", "gen_random_uuid", "generate_series", "greatest", "initcap",
    "isfinite", "json_agg", "json_array_elements", "json_array_length", "json_build_array",
    "json_build_object", "json_each", "json_extract_path", "json_extract_path_text",
    "json_object_agg", "jsonb_agg", "jsonb_array_elements", "jsonb_array_length",
    "jsonb_build_array", "jsonb_build_object", "jsonb_each", "jsonb_extract_path",
    "jsonb_extract_path_text", "jsonb_object_agg", "jsonb_object_keys", "jsonb_set",
    "jsonb_typeof", "lag", "last_value", "lastval", "lead", "least", "left", "length",
    "like_escape", "ln", "log", "lower", "lpad", "ltrim", "make_date", "make_interval",
    "make_timestamp", "max", "md5", "min", "mod", "mode", "now", "nth_value",
    "ntile", "octet_length", "overlaps", "overlay", "percent_rank", "percentile_cont",
    "percentile_disc", "pg_backend_pid", "pg_typeof", "pi", "position", "power", "random",
    "rank", "regexp_match", "regexp_matches", "regexp_replace", "regexp_split_to_array",
    "regexp_split_to_table", "repeat", "replace", "reverse", "right", "round", "row_number",
    "row_to_json", "rpad", "rtrim", "sign", "similar_to_escape", "split_part", "sqrt",
    "starts_with", "statement_timestamp", "stddev", "string_agg", "string_to_array", "strpos",
    "substr", "substring", "sum", "timezone", "to_char", "to_date", "to_json", "to_jsonb",
    "to_number", "to_timestamp", "transaction_timestamp", "trunc", "unnest", "upper",
    "variance", "version"};

// Built-ins that run SQL text or read relations named by a value.
constexpr std::array<std::string_view, 16> dynamic_sql_functions = {
    "cursor_to_xml", "database_to_xml", "database_to_xml_and_xmlschema", "dblink",
    "dblink_exec", "dblink_open", "dblink_send_query", "query_to_xml",
    "query_to_xml_and_xmlschema", "query_to_xmlschema", "schema_to_xml",
    "schema_to_xml_and_xmlschema", "table_to_xml", "table_to_xml_and_xmlschema",
    "table_to_xmlschema", "ts_stat"};

// Built-ins that touch the database server's file system.
constexpr std::array<std::string_view, 18> server_file_functions = {
    "lo_export", "lo_import", "pg_file_rename", "pg_file_sync", "pg_file_unlink",
    "pg_file_write", "pg_logdir_ls", "pg_ls_archive_statusdir", "pg_ls_dir",
    "pg_ls_logdir", "pg_ls_logicalmapdir", "pg_ls_logicalsnapdir", "pg_ls_replslotdir",
    "pg_ls_tmpdir", "pg_ls_waldir", "pg_read_binary_file", "pg_read_file", "pg_stat_file"};

// Every operator name in pg_catalog of PostgreSQL 15 (SELECT DISTINCT oprname
// FROM pg_operator). Sorted.
constexpr std::array<std::string_view, 74> builtin_operators = {
    "!!", "!~", "!~*", "!~~", "!~~*", "#", "##", "#-", "#>", "#>>", "%", "&", "&&", "&<", "&<|", "&>",
    "*", "*<", "*<=", "*<>", "*=", "*>", "*>=", "+", "-", "->", "->>", "-|-", "/", "<", "<->", "<<",
    "<<=", "<<|", "<=", "<>", "<@", "<^", "=", ">", ">=", ">>", ">>=", ">^", "?", "?#", "?&", "?-",
    "?-|", "?|", "?||", "@", "@-@", "@>", "@?", "@@", "@@@", "^", "^@", "|", "|&>", "|/", "|>>", "||",
    "||/", "~", "~*", "~<=~", "~<~", "~=", "~>=~", "~>~", "~~", "~~*"};

template <std::size_t N>
constexpr bool sorted(const std::array<std::string_view, N>& a) {
  for (std::size_t i = 1; i < N; ++i)
    if (!(a[i - 1] < a[i])) return false;
  return true;
}
static_assert(sorted(harmless_functions) && sorted(dynamic_sql_functions) && sorted(server_file_functions) &&
              sorted(builtin_operators));

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& a, std::string_view name) noexcept {
  return std::binary_search(a.begin(), a.end(), name);
}

}  // namespace

FunctionRisk function_risk(std::string_view schema, std::string_view name) noexcept {
  if (name == "set_config") return FunctionRisk::SetConfig;
  if (contains(dynamic_sql_functions, name)) return FunctionRisk::DynamicSql;
  if (contains(server_file_functions, name)) return FunctionRisk::ServerFile;
  bool builtin_schema = schema.empty() || schema == "pg_catalog";
  if (builtin_schema && contains(harmless_functions, name)) return FunctionRisk::Harmless;
  return FunctionRisk::Ordinary;
}

bool builtin_operator(std::string_view schema, std::string_view name) noexcept {
  return (schema.empty() || schema == "pg_catalog") && contains(builtin_operators, name);
}

}  // namespace pgwarden::policy
