#pragma once
/// The one place pgwarden reaches into libpg_query: PostgreSQL's raw parser
/// to a serialised protobuf tree, read as the server reads the text.
///
/// libpg_query keeps its own thread-local copy of the GUC
/// standard_conforming_strings, which its lexer reads but its API does not
/// set. This adapter is the only code that names it; pg_query_adapter_test
/// fails if a libpg_query upgrade renames it or stops reading it.

#include <string>
#include <string_view>

namespace pgwarden::policy {

/// The outcome of parsing one text. Owns libpg_query's result.
class RawParse {
 public:
  /// Parses `sql` (no zero byte; the caller checks) with the lexer reading
  /// backslashes in '...' as escapes unless `standard_conforming_strings`.
  RawParse(std::string_view sql, bool standard_conforming_strings);
  ~RawParse();
  RawParse(const RawParse&) = delete;
  RawParse& operator=(const RawParse&) = delete;

  bool ok() const { return error_.empty(); }
  /// The ParseResult message, serialised; empty when !ok().
  std::string_view tree() const { return tree_; }
  /// The parser's message and, from 1, the byte position it names (0: none).
  const std::string& error() const { return error_; }
  int error_position() const { return error_position_; }

 private:
  void* result_;  ///< PgQueryProtobufParseResult, heap-held so that pg_query.h stays out of this header
  std::string_view tree_;
  std::string error_;
  int error_position_ = 0;
};

}  // namespace pgwarden::policy
