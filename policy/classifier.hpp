#pragma once
/// The statement classifier: SQL text in, one StatementFacts per statement
/// out, using PostgreSQL's own grammar (libpg_query). Pure and thread-safe:
/// libpg_query gives every thread its own parser memory and frees it when the
/// thread exits (do not call pg_query_exit() as well: that frees it twice).

#include <string>
#include <string_view>

#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// How the server's lexer reads string literals, from the session's
/// ParameterStatus: with standard_conforming_strings off a backslash in
/// '...' escapes the next character, so `'a\'' ; DROP TABLE t; --'` holds a
/// DROP that a reader with it on takes for part of a string.
struct LexerSettings {
  bool standard_conforming_strings = true;
};

/// Classifies every statement of `sql` (UTF-8: a simple-protocol query
/// string or the text of one Parse message) as PostgreSQL reads it with
/// `settings`. Text that does not parse yields one statement with
/// `unparseable` set and the parser's message; it never throws.
ClassifiedText classify(std::string_view sql, LexerSettings settings = {});

/// What classify() says of a text it cannot read: one statement with
/// `unparseable` set, tag "???", `message` as the parse error. Rules fail
/// closed on it.
StatementFacts unparseable_statement(std::string message, std::size_t length);
ClassifiedText unparseable_text(std::string message, std::size_t length);

}  // namespace pgwarden::policy
