#include "policy/function_catalog.hpp"

#include <algorithm>
#include <array>
#include <span>

namespace pgwarden::policy {
namespace {

/// One function name of PostgreSQL's catalog and how all its overloads are marked.
struct BuiltinFunction {
  std::string_view name;
  bool side_effect_free;
};

#include "policy/pg_catalog_15.inc"

// The lists below are the built-ins whose effect is a fact of its own,
// whatever pg_proc says (pg_terminate_backend and pg_read_file are VOLATILE
// but PARALLEL SAFE; pg_advisory_lock and pg_notify PARALLEL RESTRICTED).
// Matched by name in any schema: a function of the same name elsewhere gets
// the flag too, which can only deny more. Each sorted.

// Run SQL text or read relations named by a value.
constexpr std::string_view dynamic_sql_functions[] = {
    "cursor_to_xml", "cursor_to_xmlschema", "database_to_xml", "database_to_xml_and_xmlschema",
    "database_to_xmlschema", "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema",
    "schema_to_xml", "schema_to_xml_and_xmlschema", "schema_to_xmlschema", "table_to_xml",
    "table_to_xml_and_xmlschema", "table_to_xmlschema", "ts_rewrite", "ts_stat", "xpath_table"};

// Touch the database server's file system (adminpack's pg_file_* too).
constexpr std::string_view server_file_functions[] = {
    "lo_export", "lo_import", "pg_current_logfile", "pg_file_rename", "pg_file_sync", "pg_file_unlink",
    "pg_file_write", "pg_hba_file_rules", "pg_ident_file_mappings", "pg_logdir_ls", "pg_ls_archive_statusdir",
    "pg_ls_dir", "pg_ls_logdir", "pg_ls_logicalmapdir", "pg_ls_logicalsnapdir", "pg_ls_replslotdir",
    "pg_ls_tmpdir", "pg_ls_waldir", "pg_read_binary_file", "pg_read_file", "pg_read_file_old",
    "pg_show_all_file_settings", "pg_stat_file"};

// Signal other backends or the postmaster.
constexpr std::string_view signal_functions[] = {
    "pg_cancel_backend", "pg_log_backend_memory_contexts", "pg_promote", "pg_reload_conf",
    "pg_rotate_logfile", "pg_rotate_logfile_old", "pg_terminate_backend"};

// Large objects: each of these creates, opens, reads, writes or unlinks one.
constexpr std::string_view large_object_functions[] = {
    "lo_close", "lo_creat", "lo_create", "lo_export", "lo_from_bytea", "lo_get", "lo_import", "lo_lseek",
    "lo_lseek64", "lo_open", "lo_put", "lo_tell", "lo_tell64", "lo_truncate", "lo_truncate64", "lo_unlink",
    "loread", "lowrite"};

// Advisory locks outlive the statement (session-level ones the transaction).
constexpr std::string_view advisory_lock_functions[] = {
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_all",
    "pg_advisory_unlock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared"};

// Change the server's state outside the database, though not marked so:
// backups, WAL, statistics, replication origins, binary upgrade.
constexpr std::string_view server_state_functions[] = {
    "binary_upgrade_set_next_array_pg_type_oid", "binary_upgrade_set_next_heap_pg_class_oid",
    "binary_upgrade_set_next_index_pg_class_oid", "binary_upgrade_set_next_multirange_array_pg_type_oid",
    "binary_upgrade_set_next_multirange_pg_type_oid", "binary_upgrade_set_next_pg_authid_oid",
    "binary_upgrade_set_next_pg_enum_oid", "binary_upgrade_set_next_pg_type_oid",
    "binary_upgrade_set_next_toast_pg_class_oid", "binary_upgrade_set_record_init_privs",
    "pg_backup_start", "pg_backup_stop", "pg_create_restore_point", "pg_replication_origin_xact_reset",
    "pg_replication_origin_xact_setup", "pg_stat_reset", "pg_stat_reset_replication_slot",
    "pg_stat_reset_shared", "pg_stat_reset_single_function_counters", "pg_stat_reset_single_table_counters",
    "pg_stat_reset_slru", "pg_switch_wal"};

template <class T>
constexpr bool sorted(std::span<const T> a, auto key) {
  for (std::size_t i = 1; i < a.size(); ++i)
    if (key(a[i]) < key(a[i - 1])) return false;
  return true;
}
constexpr auto self = [](std::string_view s) { return s; };
constexpr auto by_name = [](const BuiltinFunction& f) { return f.name; };
static_assert(sorted<BuiltinFunction>(pg_catalog_functions, by_name) &&
              sorted<BuiltinFunction>(information_schema_functions, by_name));
static_assert(sorted<std::string_view>(pg_catalog_types, self) &&
              sorted<std::string_view>(information_schema_types, self) &&
              sorted<std::string_view>(pg_catalog_operators, self));
static_assert(sorted<std::string_view>(dynamic_sql_functions, self) &&
              sorted<std::string_view>(server_file_functions, self) &&
              sorted<std::string_view>(signal_functions, self) &&
              sorted<std::string_view>(large_object_functions, self) &&
              sorted<std::string_view>(advisory_lock_functions, self) &&
              sorted<std::string_view>(server_state_functions, self));

bool contains(std::span<const std::string_view> a, std::string_view name) noexcept {
  return std::binary_search(a.begin(), a.end(), name);
}

const BuiltinFunction* find(std::span<const BuiltinFunction> a, std::string_view name) noexcept {
  auto it = std::lower_bound(a.begin(), a.end(), name,
                             [](const BuiltinFunction& f, std::string_view n) { return f.name < n; });
  return it != a.end() && it->name == name ? &*it : nullptr;
}

std::uint16_t effects_of(std::string_view name) noexcept {
  namespace fx = function_effect;
  std::uint16_t e = 0;
  if (name == "set_config") e |= fx::set_config;
  if (name == "pg_notify") e |= fx::notify;
  if (contains(dynamic_sql_functions, name)) e |= fx::dynamic_sql;
  if (contains(server_file_functions, name)) e |= fx::server_file;
  if (contains(signal_functions, name)) e |= fx::signals;
  if (contains(large_object_functions, name)) e |= fx::large_object;
  if (contains(advisory_lock_functions, name)) e |= fx::advisory_lock;
  // dblink's every function holds or uses a connection to another database,
  // and dblink/dblink_exec/dblink_open/dblink_send_query run SQL text there.
  if (name.starts_with("dblink")) e |= fx::remote_database | fx::dynamic_sql;
  if (name.starts_with("postgres_fdw_")) e |= fx::remote_database;
  return e;
}

}  // namespace

FunctionInfo function_info(std::string_view schema, std::string_view name) noexcept {
  FunctionInfo info;
  info.effects = effects_of(name);
  const BuiltinFunction* f = nullptr;
  if (schema.empty() || schema == "pg_catalog")
    f = find(pg_catalog_functions, name);
  else if (schema == "information_schema")
    f = find(information_schema_functions, name);
  info.builtin = f != nullptr;
  info.side_effect_free =
      f != nullptr && f->side_effect_free && info.effects == 0 && !contains(server_state_functions, name);
  return info;
}

bool builtin_operator(std::string_view schema, std::string_view name) noexcept {
  return (schema.empty() || schema == "pg_catalog") && contains(pg_catalog_operators, name);
}

bool builtin_type(std::string_view schema, std::string_view name) noexcept {
  if (schema.empty() || schema == "pg_catalog") return contains(pg_catalog_types, name);
  return schema == "information_schema" && contains(information_schema_types, name);
}

}  // namespace pgwarden::policy
