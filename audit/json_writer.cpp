#include "audit/json_writer.hpp"

#include <array>
#include <algorithm>
#include <charconv>
#include <cstring>

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

/// Writes the escape for ASCII byte `c` at `p`; returns the end.
char* write_escape(char* p, unsigned char c) {
  static constexpr char digits[] = "0123456789abcdef";
  char short_form = 0;
  switch (c) {
    case '"': short_form = '"'; break;
    case '\\': short_form = '\\'; break;
    case '\n': short_form = 'n'; break;
    case '\r': short_form = 'r'; break;
    case '\t': short_form = 't'; break;
    case '\b': short_form = 'b'; break;
    case '\f': short_form = 'f'; break;
    default: break;
  }
  *p++ = '\\';
  if (short_form) {
    *p++ = short_form;
    return p;
  }
  const char u[5] = {'u', '0', '0', digits[c >> 4], digits[c & 15]};
  std::memcpy(p, u, sizeof u);
  return p + sizeof u;
}

constexpr std::uint64_t ones = 0x0101010101010101ull;
constexpr std::uint64_t highs = 0x8080808080808080ull;

/// Whether any byte of `v` is below `n` (n <= 128).
constexpr bool has_less(std::uint64_t v, std::uint64_t n) { return ((v - ones * n) & ~v & highs) != 0; }
constexpr bool has_byte(std::uint64_t v, std::uint64_t b) { return has_less(v ^ (ones * b), 1); }

/// Whether all eight bytes of `v` are plain (see `plain`): the common case,
/// checked a word at a time.
constexpr bool all_plain(std::uint64_t v) {
  return (v & highs) == 0 && !has_less(v, 0x20) && !has_byte(v, '"') && !has_byte(v, '\\') && !has_byte(v, 0x7f);
}

/// Escapes s[i..end) (a sequence that starts before `end` may run past it)
/// to `p`, which has room for six bytes per input byte; returns the new end
/// of output and sets `i` to the first byte not consumed.
char* escape_chunk(std::string_view s, std::size_t& i, std::size_t end, char* p) {
  while (i < end) {
    if (i + 8 <= end) {
      std::uint64_t v = 0;
      std::memcpy(&v, s.data() + i, 8);
      if (all_plain(v)) {
        std::memcpy(p, s.data() + i, 8);
        p += 8;
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (plain[c]) {
      *p++ = static_cast<char>(c);
      ++i;
    } else if (c < 0x80) {
      p = write_escape(p, c);
      ++i;
    } else if (std::size_t n = utf8_sequence(s.substr(i)); n != 0) {
      std::memcpy(p, s.data() + i, n);
      p += n;
      i += n;
    } else {
      std::memcpy(p, "\\ufffd", 6);  // one replacement per invalid byte
      p += 6;
      ++i;
    }
  }
  return p;
}

}  // namespace

void append_json_string(RecordBuffer& out, std::string_view s) {
  constexpr std::size_t chunk = 4096;  // bounds the room reserved for the worst case
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t end = i + std::min(chunk, s.size() - i);
    char* p = out.prepare(6 * (end - i) + 4);
    out.commit_to(escape_chunk(s, i, end, p));
  }
  out.push_back('"');
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  const std::size_t at = out.size();
  out.resize(at + 6 * s.size());  // the worst case: every byte escaped
  char* const begin = out.data() + at;
  std::size_t i = 0;
  const char* end = escape_chunk(s, i, s.size(), begin);
  out.resize(at + static_cast<std::size_t>(end - begin));
  out.push_back('"');
}

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void write_hex(char* p, std::string_view bytes) {
  for (unsigned char c : bytes) {
    *p++ = hex_digits[c >> 4];
    *p++ = hex_digits[c & 15];
  }
}

}  // namespace

void append_hex(RecordBuffer& out, std::string_view bytes) {
  char* p = out.prepare(2 * bytes.size());
  write_hex(p, bytes);
  out.commit_to(p + 2 * bytes.size());
}

void append_hex(std::string& out, std::string_view bytes) {
  const std::size_t at = out.size();
  out.resize(at + 2 * bytes.size());
  write_hex(out.data() + at, bytes);
}

void JsonWriter::value(std::uint64_t n) {
  comma();
  char* p = out_.prepare(20);
  out_.commit_to(std::to_chars(p, p + 20, n).ptr);
}

void JsonWriter::value(std::int64_t n) {
  comma();
  char* p = out_.prepare(20);
  out_.commit_to(std::to_chars(p, p + 20, n).ptr);
}

}  // namespace pgwarden::audit
