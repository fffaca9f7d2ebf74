// libFuzzer target: SQL text in every client encoding, as the proxy reads
// it before classifying. Input: Byte1 selector (the encoding), then the text.
// Invariants: every structural reading is valid UTF-8 and keeps the text's
// ASCII bytes in order (all of them where characters are single bytes); a
// conversion that succeeds gives valid UTF-8 whose ASCII bytes are those of
// the structural reading with the same character boundaries.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "policy/client_encoding.hpp"

namespace fz = pgwarden::protocol::fuzz;
namespace pl = pgwarden::policy;

namespace {

constexpr std::array<std::string_view, 12> names = {"UTF8",   "LATIN1", "WIN1252", "EUC_JP", "KOI8R",  "SJIS",
                                                    "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030", "SQL_ASCII"};

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

std::string ascii_of(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x80) out += c;
  }
  return out;
}

bool is_subsequence(std::string_view part, std::string_view whole) {
  std::size_t j = 0;
  for (char c : whole) {
    if (j < part.size() && part[j] == c) ++j;
  }
  return j == part.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto encoding = pl::ClientEncoding::named(names[data[0] % names.size()]);
  fz::check(encoding.has_value(), "a PostgreSQL encoding name is unknown");
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string ascii = ascii_of(text);
  for (const pl::EncodingFamily family : pl::encoding_families) {
    const std::string r = pl::structural_reading(text, family);
    fz::check(valid_utf8(r), "structural reading is not valid UTF-8");
    const std::string kept = ascii_of(r);
    if (family == pl::EncodingFamily::AsciiSafe) fz::check(kept == ascii, "single-byte reading lost ASCII bytes");
    else fz::check(is_subsequence(kept, ascii), "structural reading invented ASCII bytes");
  }
  std::string out;
  if (!encoding->to_utf8(text, out)) return 0;
  if (encoding->family() == pl::EncodingFamily::Utf8) {
    fz::check(out == text, "UTF8 and SQL_ASCII text is used as it is");
    return 0;
  }
  fz::check(valid_utf8(out), "conversion is not valid UTF-8");
  // GB18030 and the pair encodings: the conversion splits characters where
  // the family's structural reading does (SJIS too; JOHAB is not listed).
  fz::check(ascii_of(out) == ascii_of(pl::structural_reading(text, encoding->family())),
            "conversion and structural reading disagree on the ASCII characters");
  return 0;
}
