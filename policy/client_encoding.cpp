#include "policy/client_encoding.hpp"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <map>

namespace pgwarden::policy {
namespace {

/// How PostgreSQL's pg_encoding_mblen() delimits a character that starts
/// with a byte from 0x80 (src/common/wchar.c).
enum class Boundary : std::uint8_t {
  Byte,      ///< single-byte encodings
  Euc,       ///< EUC_*, JOHAB, MULE_INTERNAL-like: 0x8e two bytes, 0x8f three, other two
  Sjis,      ///< 0xa1-0xdf one byte, any other two
  HighPair,  ///< two bytes
  Gb18030,   ///< four bytes when the second is 0x30-0x39, else two
};

struct Known {
  std::string_view name;  ///< as PostgreSQL reports it
  const char* iconv_name;
  EncodingFamily family;
  Boundary boundary;
};

constexpr std::array<Known, 42> known_encodings = {{
    {"SQL_ASCII", nullptr, EncodingFamily::Utf8, Boundary::Byte},
    {"UTF8", nullptr, EncodingFamily::Utf8, Boundary::Byte},
    {"EUC_JP", "EUC-JP", EncodingFamily::AsciiSafe, Boundary::Euc},
    {"EUC_CN", "EUC-CN", EncodingFamily::AsciiSafe, Boundary::Euc},
    {"EUC_KR", "EUC-KR", EncodingFamily::AsciiSafe, Boundary::Euc},
    {"EUC_TW", "EUC-TW", EncodingFamily::AsciiSafe, Boundary::Euc},
    {"EUC_JIS_2004", "EUC-JISX0213", EncodingFamily::AsciiSafe, Boundary::Euc},
    {"MULE_INTERNAL", nullptr, EncodingFamily::AsciiSafe, Boundary::Euc},
    {"LATIN1", "ISO-8859-1", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN2", "ISO-8859-2", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN3", "ISO-8859-3", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN4", "ISO-8859-4", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN5", "ISO-8859-9", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN6", "ISO-8859-10", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN7", "ISO-8859-13", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN8", "ISO-8859-14", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN9", "ISO-8859-15", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"LATIN10", "ISO-8859-16", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1256", "CP1256", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1258", "CP1258", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN866", "CP866", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN874", "CP874", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"KOI8R", "KOI8-R", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1251", "CP1251", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1252", "CP1252", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"ISO_8859_5", "ISO-8859-5", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"ISO_8859_6", "ISO-8859-6", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"ISO_8859_7", "ISO-8859-7", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"ISO_8859_8", "ISO-8859-8", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1250", "CP1250", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1253", "CP1253", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1254", "CP1254", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1255", "CP1255", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"WIN1257", "CP1257", EncodingFamily::AsciiSafe, Boundary::Byte},
    {"KOI8U", "KOI8-U", EncodingFamily::AsciiSafe, Boundary::Byte},
    // The client-only encodings: a character's later bytes may be ASCII.
    {"SJIS", "CP932", EncodingFamily::Sjis, Boundary::Sjis},
    {"SHIFT_JIS_2004", "SHIFT_JISX0213", EncodingFamily::Sjis, Boundary::Sjis},
    {"BIG5", "CP950", EncodingFamily::HighPair, Boundary::HighPair},
    {"GBK", "CP936", EncodingFamily::HighPair, Boundary::HighPair},
    {"UHC", "CP949", EncodingFamily::HighPair, Boundary::HighPair},
    {"GB18030", "GB18030", EncodingFamily::Gb18030, Boundary::Gb18030},
    // Client-only too, but PostgreSQL accepts only bytes from 0xa1 after the first.
    {"JOHAB", "JOHAB", EncodingFamily::HighPair, Boundary::Euc},
}};

/// PostgreSQL's clean_encoding_name(): letters and digits, lower case.
std::string cleaned(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

const Known* find_known(std::string_view name) {
  const std::string want = cleaned(name);
  for (const Known& k : known_encodings) {
    if (cleaned(k.name) == want) return &k;
  }
  return nullptr;
}

/// Bytes of the character at `s` (a byte from 0x80), at most `left`.
std::size_t char_length(const unsigned char* s, std::size_t left, Boundary b) {
  std::size_t n = 1;
  switch (b) {
    case Boundary::Byte: n = 1; break;
    case Boundary::Euc: n = *s == 0x8f ? 3 : 2; break;
    case Boundary::Sjis: n = *s >= 0xa1 && *s <= 0xdf ? 1 : 2; break;
    case Boundary::HighPair: n = 2; break;
    case Boundary::Gb18030: n = left >= 2 && s[1] >= 0x30 && s[1] <= 0x39 ? 4 : 2; break;
  }
  return std::min(n, left);
}

Boundary boundary_of(EncodingFamily family) {
  switch (family) {
    case EncodingFamily::Sjis: return Boundary::Sjis;
    case EncodingFamily::HighPair: return Boundary::HighPair;
    case EncodingFamily::Gb18030: return Boundary::Gb18030;
    case EncodingFamily::Utf8:
    case EncodingFamily::AsciiSafe: break;
  }
  return Boundary::Byte;
}

/// One converter to UTF-8 per encoding and thread (an iconv_t is not
/// thread-safe), opened on first use, closed when the thread ends.
class Converters {
 public:
  ~Converters() {
    for (auto& [name, cd] : open_) {
      if (cd != invalid()) iconv_close(cd);
    }
  }
  iconv_t get(const char* name) {
    auto it = open_.find(name);
    if (it == open_.end()) it = open_.emplace(name, iconv_open("UTF-8", name)).first;
    return it->second;
  }
  static iconv_t invalid() { return reinterpret_cast<iconv_t>(-1); }

 private:
  std::map<std::string, iconv_t, std::less<>> open_;
};

/// Appends `in` converted by `cd`; false when iconv rejects it.
bool convert_bytes(iconv_t cd, std::string_view in, std::string& out) {
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // initial shift state
  char* src = const_cast<char*>(in.data());
  std::size_t src_left = in.size();
  for (;;) {
    const std::size_t start = out.size();
    const std::size_t room = std::max<std::size_t>(16, src_left * 4);
    out.resize(start + room);
    char* dst = out.data() + start;
    std::size_t dst_left = room;
    const std::size_t r = src_left > 0 ? iconv(cd, &src, &src_left, &dst, &dst_left) : 0;
    const int e = errno;
    // Flush what a stateful converter may still hold (SHIFT_JISX0213 combining pairs).
    const std::size_t flushed = r == static_cast<std::size_t>(-1) ? 0 : iconv(cd, nullptr, nullptr, &dst, &dst_left);
    out.resize(out.size() - dst_left);
    if (r != static_cast<std::size_t>(-1) && flushed != static_cast<std::size_t>(-1)) return true;
    if (r == static_cast<std::size_t>(-1) && e == E2BIG) continue;
    return false;
  }
}

std::size_t ascii_bytes(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
}

/// Appends `in` converted by `cd`, which must give exactly `ascii` ASCII
/// characters: none for one character that is not ASCII, as many as `in`
/// has for a text of a single-byte encoding. False when iconv rejects it or
/// the count differs: iconv's tables and the server's may disagree there (a
/// full-width backslash, say), and an ASCII character one reader sees and
/// the other does not could move where a string ends.
bool convert(iconv_t cd, std::string_view in, std::string& out, std::size_t ascii) {
  const std::size_t before = out.size();
  if (!convert_bytes(cd, in, out)) return false;
  return ascii_bytes(std::string_view(out).substr(before)) == ascii;
}

}  // namespace

std::optional<ClientEncoding> ClientEncoding::named(std::string_view name) {
  const Known* k = find_known(name);
  if (!k) return std::nullopt;
  return ClientEncoding(k->name, k->iconv_name, k->family, static_cast<std::uint8_t>(k->boundary));
}

bool ClientEncoding::to_utf8(std::string_view text, std::string& out) const {
  out.clear();
  if (family_ == EncodingFamily::Utf8) {
    out.assign(text);
    return true;
  }
  if (!has_non_ascii(text)) {
    out.assign(text);
    return true;
  }
  if (iconv_name_ == nullptr) {  // no converter (MULE_INTERNAL): keep where its characters are
    out = structural_reading(text, family_);
    return true;
  }
  thread_local Converters converters;
  iconv_t cd = converters.get(iconv_name_);
  if (cd == Converters::invalid()) return false;
  const auto b = static_cast<Boundary>(boundary_);
  if (b == Boundary::Byte) return convert(cd, text, out, ascii_bytes(text));
  // Character by character, each delimited as PostgreSQL delimits it, so the
  // text ends up split where the server splits it whatever iconv's tables
  // say; a character iconv cannot map refuses the text.
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && s[j] < 0x80) ++j;
    out.append(text.substr(i, j - i));
    if (j == text.size()) break;
    const std::size_t n = char_length(s + j, text.size() - j, b);
    if (!convert(cd, text.substr(j, n), out, 0)) return false;
    i = j + n;
  }
  return true;
}

std::string structural_reading(std::string_view text, EncodingFamily family) {
  static constexpr std::string_view replacement = "\xef\xbf\xbd";
  const Boundary b = boundary_of(family);
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  std::size_t i = 0;
  while (i < text.size()) {
    if (s[i] < 0x80) {
      out += static_cast<char>(s[i++]);
      continue;
    }
    out += replacement;
    i += char_length(s + i, text.size() - i, b);
  }
  return out;
}

bool has_non_ascii(std::string_view text) noexcept {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

}  // namespace pgwarden::policy
