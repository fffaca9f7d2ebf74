// base64 in its two strict forms: padded standard (SCRAM) and base64url as
// JOSE writes it (unpadded, URL-safe, one text per byte string).

#include <gtest/gtest.h>

#include <string>

#include "auth/base64.hpp"

namespace {

using pgwarden::auth::base64_decode;
using pgwarden::auth::base64_encode;
using pgwarden::auth::base64url_decode;
using pgwarden::auth::base64url_encode;

// Every length round-trips, with no padding and the URL-safe digits.
TEST(Base64url, RoundTripsWithoutPadding) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes);
    EXPECT_EQ(base64url_encode(bytes).find('='), std::string::npos);
    bytes += static_cast<char>(0xfb + i);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_encode("{\"alg\":\"RS256\"}"), "eyJhbGciOiJSUzI1NiJ9");
}

// Padding, the standard alphabet's + and /, blanks, an impossible length
// and non-zero unused bits are refused, so a signature has one spelling.
TEST(Base64url, StrictDecoding) {
  EXPECT_EQ(base64url_decode("AQAB"), std::string("\x01\x00\x01", 3));
  EXPECT_FALSE(base64url_decode("AQ=="));
  EXPECT_FALSE(base64url_decode("+/8"));
  EXPECT_FALSE(base64url_decode("AQ AB"));
  EXPECT_FALSE(base64url_decode("AQABC"));
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
  EXPECT_FALSE(base64url_decode("-_9"));  // the last digit's two unused bits set
  EXPECT_FALSE(base64url_decode("QR"));   // "A" is "QQ"; "QR" sets unused bits
  EXPECT_EQ(base64url_decode(""), "");
}

// The standard form pads to whole quads (RFC 4648's test vectors) and reads
// back what it wrote; unlike base64url it uses + and /.
TEST(Base64, PaddedStandardForm) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
    bytes += static_cast<char>(0xfb + i);
  }
}

// Whole quads only, padding only at the end, no blanks, no URL-safe digits.
TEST(Base64, StrictPaddedDecoding) {
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_FALSE(base64_decode("Zm8"));
  EXPECT_FALSE(base64_decode("Zg==Zg=="));
  EXPECT_FALSE(base64_decode("Z==="));
  EXPECT_FALSE(base64_decode("Zm 9"));
  EXPECT_FALSE(base64_decode("-_8="));
}

}  // namespace
