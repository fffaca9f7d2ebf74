#include "policy/pg_query_adapter.hpp"

#include <pg_query.h>

// libpg_query's copy of the GUC its lexer reads (one per thread).
extern "C" thread_local bool standard_conforming_strings;

namespace pgwarden::policy {

RawParse::RawParse(std::string_view sql, bool standard) : result_(nullptr) {
  thread_local std::string buffer;  // libpg_query takes a C string
  buffer.assign(sql);
  standard_conforming_strings = standard;
  auto* result = new PgQueryProtobufParseResult(pg_query_parse_protobuf(buffer.c_str()));
  standard_conforming_strings = true;  // the server's default, for any other caller on this thread
  result_ = result;
  if (result->error != nullptr) {
    error_ = result->error->message != nullptr ? result->error->message : "syntax error";
    error_position_ = result->error->cursorpos;
    if (error_.empty()) error_ = "syntax error";
    return;
  }
  tree_ = std::string_view(result->parse_tree.data, result->parse_tree.len);
}

RawParse::~RawParse() {
  auto* result = static_cast<PgQueryProtobufParseResult*>(result_);
  pg_query_free_protobuf_parse_result(*result);
  delete result;
}

}  // namespace pgwarden::policy
