#pragma once
/// SQL text as the server reads it. PostgreSQL converts every Query and
/// Parse from the session's client_encoding before its lexer sees the text;
/// the classifier reads UTF-8. In most encodings that changes only which
/// non-ASCII characters a text holds, never where its strings, comments and
/// statements end: every byte below 0x80 is the ASCII character. Not so in
/// the client-only encodings (SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC,
/// GB18030): there the second byte of a character may be 0x5c, so text
/// read as UTF-8 has a backslash where the server sees part of a character,
/// and `E'<0x95 0x5c>'; DROP TABLE t; --'` is one SELECT to a reader that
/// assumes UTF-8 and a SELECT and a DROP to the server.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgwarden::policy {

/// How an encoding delimits characters: all a lexer needs to know of it.
enum class EncodingFamily : std::uint8_t {
  Utf8,       ///< UTF8 and SQL_ASCII: the server reads the bytes as they are
  AsciiSafe,  ///< every other server encoding: a byte below 0x80 is always ASCII
  Sjis,       ///< SJIS, SHIFT_JIS_2004: 0xa1-0xdf is one byte, any other byte from 0x80 starts two
  HighPair,   ///< BIG5, GBK, UHC: every byte from 0x80 starts a 2-byte character
  Gb18030,    ///< GB18030: 2 bytes, or 4 when the second is a digit
};

/// The families a lexer can tell apart, for reading a text in each.
inline constexpr EncodingFamily encoding_families[] = {EncodingFamily::AsciiSafe, EncodingFamily::Sjis,
                                                       EncodingFamily::HighPair, EncodingFamily::Gb18030};

/// A client encoding as PostgreSQL names it.
class ClientEncoding {
 public:
  /// UTF8.
  ClientEncoding() = default;
  /// The encoding PostgreSQL reports as `name` (ParameterStatus
  /// client_encoding; any case, '-' and '_' ignored as PostgreSQL does);
  /// nullopt for a name PostgreSQL does not know.
  static std::optional<ClientEncoding> named(std::string_view name);

  std::string_view name() const { return name_; }
  EncodingFamily family() const { return family_; }

  /// `text` as UTF-8, as the server converts it; false when its bytes are
  /// not valid in this encoding (the server refuses such a message too).
  bool to_utf8(std::string_view text, std::string& out) const;

 private:
  ClientEncoding(std::string_view name, const char* iconv_name, EncodingFamily family, std::uint8_t boundary)
      : name_(name), iconv_name_(iconv_name), family_(family), boundary_(boundary) {}
  std::string_view name_ = "UTF8";
  const char* iconv_name_ = nullptr;  ///< null: the bytes are used as they are
  EncodingFamily family_ = EncodingFamily::Utf8;
  std::uint8_t boundary_ = 0;  ///< how PostgreSQL delimits its characters (client_encoding.cpp)
};

/// `text` with each character that is not ASCII, delimited as `family`
/// delimits characters, replaced by U+FFFD: valid UTF-8 that PostgreSQL's
/// lexer splits into the same strings, comments and statements as the
/// server splits `text` in any encoding of that family. A character cut off
/// by the end of the text counts as one.
std::string structural_reading(std::string_view text, EncodingFamily family);

/// Whether `text` has a byte from 0x80.
bool has_non_ascii(std::string_view text) noexcept;

}  // namespace pgwarden::policy
