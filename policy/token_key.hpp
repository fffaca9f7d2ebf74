#pragma once
/// A literal-free key for a simple-protocol query: the text with comments and
/// whitespace runs reduced to one space, unquoted words lower-cased, and
/// string and number constants replaced by markers. Two texts with the same
/// key differ only in constant values, so PostgreSQL parses them alike.

#include <cstdint>
#include <string>
#include <string_view>

namespace pgwarden::policy {

/// The key of one text and the length of its single statement.
struct TokenKey {
  std::string key;
  /// Length of the statement (up to a trailing semicolon), as classify() reports it.
  std::uint32_t statement_length = 0;
};

/// Builds the key of `sql`. False when the text holds anything the key could
/// not represent faithfully, which then must be classified by exact text:
/// more than one statement, dollar quotes, escape/Unicode/bit strings,
/// backslashes in strings, adjacent string constants, unterminated quotes or
/// comments, a number glued to a letter or dot, a zero byte.
bool make_token_key(std::string_view sql, TokenKey& out);

}  // namespace pgwarden::policy
