#pragma once
/// A forward-only JSON object writer that appends to a RecordBuffer, so
/// encoding a record reuses one buffer and allocates nothing once it has
/// grown. Strings are always emitted as valid JSON: quotes, backslashes and
/// control characters are escaped, and bytes that are not valid UTF-8
/// become U+FFFD, whatever the client sent.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "audit/record_buffer.hpp"

namespace pgwarden::audit {

/// Appends `s` to `out` as a quoted JSON string (see the file comment).
void append_json_string(RecordBuffer& out, std::string_view s);
void append_json_string(std::string& out, std::string_view s);

/// Appends the lowercase hex form of `bytes`.
void append_hex(RecordBuffer& out, std::string_view bytes);
void append_hex(std::string& out, std::string_view bytes);

/// Writes the members of JSON objects and arrays in order. The writer does
/// not check nesting; the encoders that use it are short and fixed.
class JsonWriter {
 public:
  explicit JsonWriter(RecordBuffer& out) : out_(out) {}

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  /// Starts a member; follow with exactly one value (or begin_object/array).
  /// `name` is one of the schema's own member names and is written as it is
  /// (plain ASCII that needs no escaping).
  void key(std::string_view name) {
    char* p = out_.prepare(name.size() + 4);
    if (need_comma_) *p++ = ',';
    *p++ = '"';
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    *p++ = '"';
    *p++ = ':';
    out_.commit_to(p);
    need_comma_ = false;
  }

  void value(std::string_view s) {
    comma();
    append_json_string(out_, s);
  }
  void value(const char* s) { value(std::string_view(s)); }
  void value(bool b) {
    comma();
    out_.append(b ? std::string_view("true") : std::string_view("false"));
  }
  void value(std::uint64_t n);
  void value(std::int64_t n);
  void value(std::uint32_t n) { value(std::uint64_t{n}); }
  void value(int n) { value(std::int64_t{n}); }
  void null() {
    comma();
    out_.append("null");
  }
  /// A string value that needs no escaping by construction (names of the
  /// schema's own enumerations, hex digests).
  void plain_value(std::string_view s) {
    comma();
    char* p = out_.prepare(s.size() + 2);
    *p++ = '"';
    std::memcpy(p, s.data(), s.size());
    p += s.size();
    *p++ = '"';
    out_.commit_to(p);
  }
  /// A string value the caller appends itself with `fill(RecordBuffer&)`, for
  /// values that need no escaping by construction (timestamps, hex).
  template <typename F>
  void plain_fill(F&& fill) {
    comma();
    out_.push_back('"');
    fill(out_);
    out_.push_back('"');
  }

  /// Members written earlier by another JsonWriter (`"a":1,"b":2`), as they are.
  void raw_members(std::string_view members) {
    if (members.empty()) return;
    comma();
    out_.append(members);
  }

  /// key + value in one call.
  template <typename T>
  void member(std::string_view name, const T& v) {
    key(name);
    value(v);
  }
  /// A string member omitted when `s` is empty.
  void optional(std::string_view name, std::string_view s) {
    if (!s.empty()) member(name, s);
  }

  RecordBuffer& buffer() { return out_; }

 private:
  void comma() {
    if (need_comma_) out_.push_back(',');
    need_comma_ = true;
  }
  void open(char c) {
    comma();
    out_.push_back(c);
    need_comma_ = false;
  }
  void close(char c) {
    out_.push_back(c);
    need_comma_ = true;
  }

  RecordBuffer& out_;
  bool need_comma_ = false;
};

}  // namespace pgwarden::audit
