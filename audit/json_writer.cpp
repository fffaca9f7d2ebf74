#include "audit/json_writer.hpp"

#include <array>
#include <charconv>

namespace pgwarden::audit {
namespace {

/// 1 for bytes that can be copied as they are: printable ASCII except '"' and '\'.
constexpr std::array<std::uint8_t, 256> make_plain_table() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = 1;
  t['"'] = 0;
  t['\\'] = 0;
  return t;
}
constexpr auto plain = make_plain_table();

bool continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

/// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
/// no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c >= 0xc2 && c <= 0xdf) return s.size() >= 2 && continuation(b(1)) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (s.size() < 3 || !continuation(b(1)) || !continuation(b(2))) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
    if (c == 0xed && b(1) > 0x9f) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (s.size() < 4 || !continuation(b(1)) || !continuation(b(2)) || !continuation(b(3))) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xf4 && b(1) > 0x8f) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"': out.append("\\\""); return;
    case '\\': out.append("\\\\"); return;
    case '\n': out.append("\\n"); return;
    case '\r': out.append("\\r"); return;
    case '\t': out.append("\\t"); return;
    case '\b': out.append("\\b"); return;
    case '\f': out.append("\\f"); return;
    default: break;
  }
  static constexpr char digits[] = "0123456789abcdef";
  const char u[6] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 15]};
  out.append(u, sizeof u);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t run = i;
    while (run < s.size() && plain[static_cast<unsigned char>(s[run])]) ++run;
    out.append(s.data() + i, run - i);
    if (run == s.size()) break;
    const auto c = static_cast<unsigned char>(s[run]);
    if (c < 0x80) {
      append_escape(out, c);
      i = run + 1;
    } else if (std::size_t n = utf8_sequence(s.substr(run)); n != 0) {
      out.append(s.data() + run, n);
      i = run + n;
    } else {
      out.append("\\ufffd");  // one replacement per invalid byte
      i = run + 1;
    }
  }
  out.push_back('"');
}

void append_hex(std::string& out, std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  const std::size_t at = out.size();
  out.resize(at + 2 * bytes.size());
  char* p = out.data() + at;
  for (unsigned char c : bytes) {
    *p++ = digits[c >> 4];
    *p++ = digits[c & 15];
  }
}

void JsonWriter::key(std::string_view name) {
  comma();
  out_.push_back('"');
  out_.append(name);
  out_.append("\":", 2);
  need_comma_ = false;
}

void JsonWriter::value(std::uint64_t n) {
  comma();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out_.append(buf, r.ptr);
}

void JsonWriter::value(std::int64_t n) {
  comma();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out_.append(buf, r.ptr);
}

}  // namespace pgwarden::audit
