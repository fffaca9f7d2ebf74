#pragma once
/// PostgreSQL's command tag and pgaudit's statement class for a parse-tree
/// node, decided from the raw (not yet analysed) tree the way the server's
/// CreateCommandTag() and GetCommandLogLevel() do.

#include <string_view>

#include "policy/parse_node.hpp"
#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// The server's log_statement level of a command: what pgaudit classes by.
enum class LogLevel : std::uint8_t { All, Mod, Ddl };

/// The command tag ("DROP TABLE", "SET", ...) of a statement node of `kind`
/// whose serialised body is `body`; "???" for a node that is no statement.
std::string_view command_tag(NodeKind kind, std::string_view body) noexcept;

/// The log level of a statement that is not PREPARE or EXPLAIN (those take
/// the level of the statement they wrap; the classifier resolves them).
LogLevel log_level(NodeKind kind, std::string_view body) noexcept;

/// pgaudit's class for a statement of `kind` at `level` with tag `tag`.
StatementClass audit_class(NodeKind kind, LogLevel level, std::string_view tag) noexcept;

/// The tag PostgreSQL uses for ALTER of an object type ("ALTER TABLE" ...).
std::string_view alter_object_tag(ObjectType type) noexcept;

}  // namespace pgwarden::policy
