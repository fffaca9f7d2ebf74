#pragma once
/// Redaction of SQL text before it enters the audit log. Passwords never
/// reach the log: the literal after the keyword PASSWORD (CREATE/ALTER
/// ROLE|USER ... PASSWORD '...', OPTIONS (password '...') of user mappings)
/// and any literal holding a connection string with a password (CREATE
/// SUBSCRIPTION ... CONNECTION, dblink) become '***'. On request every
/// constant becomes `?` as well (audit.redact_literals).
///
/// This is a lexer over the text, not a parser: it knows PostgreSQL's
/// quoting (standard and E'' strings, B''/X''/N''/U&'' prefixes, dollar
/// quotes, quoted identifiers, nested comments), so a keyword inside a
/// literal or identifier is never mistaken for one, and vice versa.

#include <string>
#include <string_view>

namespace pgwarden::audit {

/// True when `sql` may hold a password (it contains "password" in any case);
/// a cheap test that spares the lexer for almost every statement.
bool may_contain_password(std::string_view sql) noexcept;

/// The text to log for `sql`: `sql` itself when nothing needs redacting,
/// otherwise a view of `scratch` holding the redacted copy. The one way
/// statement text reaches anything pgwarden writes: the audit record, the
/// operational log (`log.statements`), `pgwarden explain`.
std::string_view redact_sql(std::string_view sql, bool redact_literals, std::string& scratch);

/// A parser's message about `sql` as it may be shown. It quotes the text
/// where parsing stopped (`at or near "..."`), which in a text that may hold
/// a password (an unquoted one, or a literal left open) may be the
/// password itself; for such a text the quote is left out.
std::string redact_parse_error(std::string_view sql, std::string_view message);

}  // namespace pgwarden::audit
