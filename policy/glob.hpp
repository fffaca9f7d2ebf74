#pragma once
/// Shell-style name patterns for rules: `*` any run of characters, `?` one
/// character, `\` escapes the next one. Compiled once at configuration load;
/// matching never allocates.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgwarden::policy {

/// How a pattern's letter case relates to the names it matches.
enum class GlobCase : std::uint8_t {
  /// Compare byte for byte (e.g. application_name).
  Exact,
  /// ASCII case-insensitive (command tags: "drop *" matches "DROP TABLE").
  Insensitive,
  /// As PostgreSQL identifiers: an unquoted pattern is folded to lower case,
  /// a double-quoted one ("MyTable") is kept as written; the names matched
  /// (already folded by PostgreSQL or the classifier) are compared exactly.
  Identifier,
};

/// A compiled glob pattern.
class Glob {
 public:
  /// Compiles `pattern`. On failure (empty pattern, trailing `\`, unbalanced
  /// double quote, control characters) returns nullopt and sets `error`.
  static std::optional<Glob> compile(std::string_view pattern, GlobCase mode, std::string* error = nullptr);

  /// True when the whole of `text` matches.
  bool matches(std::string_view text) const noexcept;
  /// The pattern as written in the configuration.
  const std::string& source() const noexcept { return source_; }
  /// True when the pattern has no wildcard (a plain name).
  bool is_literal() const noexcept { return literal_; }

 private:
  bool match_wild(std::string_view text) const noexcept;

  std::string source_;
  std::string pattern_;  // escapes resolved; kStar / kAny mark wildcards
  std::uint32_t prefix_ = 0;  // characters before the first wildcard
  bool insensitive_ = false;
  bool literal_ = true;
};

}  // namespace pgwarden::policy
