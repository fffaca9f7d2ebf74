#pragma once
/// The statement classifier: SQL text in, one StatementFacts per statement
/// out, using PostgreSQL's own grammar (libpg_query). Pure and thread-safe:
/// libpg_query gives every thread its own parser memory and frees it when the
/// thread exits (do not call pg_query_exit() as well: that frees it twice).

#include <string_view>

#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// Classifies every statement of `sql` (a simple-protocol query string or the
/// text of one Parse message). Text that does not parse yields one statement
/// with `unparseable` set and the parser's message; it never throws.
ClassifiedText classify(std::string_view sql);

}  // namespace pgwarden::policy
