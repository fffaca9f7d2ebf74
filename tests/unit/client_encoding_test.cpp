// SQL text as the server reads it: client encodings converted to UTF-8 with
// PostgreSQL's character boundaries, the structural readings used when the
// encoding in force is not yet known, and standard_conforming_strings.

#include "policy/client_encoding.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/classifier.hpp"

namespace pgwarden::policy {
namespace {

// 0x95 0x5c is one character in SJIS (U+8868); read as UTF-8 it is a stray
// byte and a backslash that escapes the quote after it.
constexpr std::string_view sjis_attack = "SELECT E'\x95\x5c'; DROP TABLE victim; --'";
constexpr std::string_view replacement = "\xef\xbf\xbd";

std::vector<std::string> tags(const ClassifiedText& t) {
  std::vector<std::string> out;
  for (const auto& s : t.statements) out.push_back(s.unparseable ? "unparseable" : s.command_tag);
  return out;
}

TEST(ClientEncoding, NamesAsPostgresqlReportsThemInAnyCase) {
  for (std::string_view name : {"SJIS", "sjis", "Shift_JIS_2004", "UTF8", "utf-8", "LATIN1", "win1252", "GB18030",
                                "JOHAB", "SQL_ASCII", "EUC_JIS_2004", "MULE_INTERNAL"}) {
    EXPECT_TRUE(ClientEncoding::named(name).has_value()) << name;
  }
  EXPECT_EQ(ClientEncoding::named("shiftjis2004")->name(), "SHIFT_JIS_2004");
  EXPECT_FALSE(ClientEncoding::named("UTF16").has_value());
  EXPECT_FALSE(ClientEncoding::named("").has_value());
  EXPECT_EQ(ClientEncoding::named("sql_ascii")->family(), EncodingFamily::Utf8);
  EXPECT_EQ(ClientEncoding::named("LATIN9")->family(), EncodingFamily::AsciiSafe);
  EXPECT_EQ(ClientEncoding::named("SJIS")->family(), EncodingFamily::Sjis);
  EXPECT_EQ(ClientEncoding::named("GBK")->family(), EncodingFamily::HighPair);
  EXPECT_EQ(ClientEncoding::named("UHC")->family(), EncodingFamily::HighPair);
  EXPECT_EQ(ClientEncoding::named("BIG5")->family(), EncodingFamily::HighPair);
}

TEST(ClientEncoding, ConvertsToUtf8AsTheServerDoes) {
  std::string out;
  ASSERT_TRUE(ClientEncoding::named("SJIS")->to_utf8(sjis_attack, out));
  EXPECT_EQ(out, "SELECT E'\xe8\xa1\xa8'; DROP TABLE victim; --'");
  ASSERT_TRUE(ClientEncoding::named("LATIN1")->to_utf8("SELECT 'caf\xe9'", out));
  EXPECT_EQ(out, "SELECT 'caf\xc3\xa9'");
  ASSERT_TRUE(ClientEncoding::named("GBK")->to_utf8("SELECT '\xd6\xd0'", out));  // U+4E2D
  EXPECT_EQ(out, "SELECT '\xe4\xb8\xad'");
  ASSERT_TRUE(ClientEncoding::named("GB18030")->to_utf8("'\x81\x30\x81\x30'", out));  // U+0080
  EXPECT_EQ(out, "'\xc2\x80'");
  ASSERT_TRUE(ClientEncoding::named("UTF8")->to_utf8("SELECT '\xff'", out));  // as it is: the server checks UTF-8
  EXPECT_EQ(out, "SELECT '\xff'");
  ASSERT_TRUE(ClientEncoding::named("SJIS")->to_utf8("SELECT 1", out));
  EXPECT_EQ(out, "SELECT 1");
}

TEST(ClientEncoding, RefusesBytesThatAreNotValidInTheEncoding) {
  std::string out;
  EXPECT_FALSE(ClientEncoding::named("SJIS")->to_utf8("SELECT '\x95", out));  // a lead byte cut off
  EXPECT_FALSE(ClientEncoding::named("EUC_JP")->to_utf8("SELECT '\xa4\x27'", out));  // ASCII cannot follow
  EXPECT_FALSE(ClientEncoding::named("GB18030")->to_utf8("'\x81\x30'", out));  // half of four bytes
  // iconv reads 0x80 as one character (the euro sign) and 0x5c as a
  // backslash; the server reads the two bytes as one character: no reading
  // may gain or lose an ASCII character.
  EXPECT_FALSE(ClientEncoding::named("GBK")->to_utf8("SELECT E'\x80\x5c'", out));
}

TEST(ClientEncoding, StructuralReadingsSplitCharactersAsEachFamilyDoes) {
  const std::string r = std::string(replacement);
  EXPECT_EQ(structural_reading(sjis_attack, EncodingFamily::Sjis), "SELECT E'" + r + "'; DROP TABLE victim; --'");
  EXPECT_EQ(structural_reading(sjis_attack, EncodingFamily::HighPair), "SELECT E'" + r + "'; DROP TABLE victim; --'");
  EXPECT_EQ(structural_reading(sjis_attack, EncodingFamily::AsciiSafe),
            "SELECT E'" + r + "\\'; DROP TABLE victim; --'");
  // SJIS half-width katakana is one byte: the backslash after it stays one.
  EXPECT_EQ(structural_reading("E'\xb1\\''", EncodingFamily::Sjis), "E'" + r + "\\''");
  EXPECT_EQ(structural_reading("'\x81\x30\x81\x30\\'", EncodingFamily::Gb18030), "'" + r + "\\'");
  EXPECT_EQ(structural_reading("'\x81\\'", EncodingFamily::Gb18030), "'" + r + "'");
  EXPECT_EQ(structural_reading("x\x95", EncodingFamily::Sjis), "x" + r);  // cut off at the end: one character
  EXPECT_EQ(structural_reading("SELECT 1", EncodingFamily::Sjis), "SELECT 1");
  EXPECT_TRUE(has_non_ascii("a\x80"));
  EXPECT_FALSE(has_non_ascii("SELECT 1; -- \\"));
}

// Why the proxy converts before it classifies: the same bytes hold one
// statement read as UTF-8 and two read as SJIS, as the server reads them.
TEST(ClientEncoding, TheServersReadingFindsTheHiddenStatement) {
  EXPECT_EQ(tags(classify(sjis_attack)), (std::vector<std::string>{"SELECT"}));
  std::string utf8;
  ASSERT_TRUE(ClientEncoding::named("SJIS")->to_utf8(sjis_attack, utf8));
  EXPECT_EQ(tags(classify(utf8)), (std::vector<std::string>{"SELECT", "DROP TABLE"}));
  EXPECT_EQ(tags(classify(structural_reading(sjis_attack, EncodingFamily::HighPair))),
            (std::vector<std::string>{"SELECT", "DROP TABLE"}));
}

TEST(LexerSettings, StandardConformingStringsOffMakesBackslashesEscape) {
  constexpr std::string_view text = "SELECT 'a\\'' ; DROP TABLE victim; --'";
  EXPECT_EQ(tags(classify(text)), (std::vector<std::string>{"SELECT"}));
  EXPECT_EQ(tags(classify(text, LexerSettings{false})), (std::vector<std::string>{"SELECT", "DROP TABLE"}));
  // The setting is per call: the next classification reads with it on again.
  EXPECT_EQ(tags(classify(text)), (std::vector<std::string>{"SELECT"}));
  // E'' strings escape either way.
  constexpr std::string_view escaped = "SELECT E'a\\'' ; DROP TABLE victim; --'";
  EXPECT_EQ(tags(classify(escaped)), (std::vector<std::string>{"SELECT", "DROP TABLE"}));
  EXPECT_EQ(tags(classify(escaped, LexerSettings{false})), (std::vector<std::string>{"SELECT", "DROP TABLE"}));
}

}  // namespace
}  // namespace pgwarden::policy
