// Tokens as passwords: real RSA 2048 and P-256 keys made here, real
// signatures, verified against a JWKS built from the same keys.

#include <gtest/gtest.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "auth/base64.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"

namespace {

using namespace pgwarden::auth;
namespace json = boost::json;
using Clock = std::chrono::system_clock;
using KeyPtr = std::shared_ptr<EVP_PKEY>;

constexpr std::int64_t t0 = 1796637600;  // 2026-12-07T10:00:00Z
const Clock::time_point now = Clock::from_time_t(t0);

KeyPtr keygen_rsa() {
  return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), &EVP_PKEY_free);
}
KeyPtr keygen_ec() { return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free); }

// Keys are slow to make: one of each kind (and a second RSA key) per run.
const KeyPtr& rsa1() { static KeyPtr k = keygen_rsa(); return k; }
const KeyPtr& rsa2() { static KeyPtr k = keygen_rsa(); return k; }
const KeyPtr& ec1() { static KeyPtr k = keygen_ec(); return k; }

std::string bn_param(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
  std::string out(pad ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

/// The public JWK of `key`.
json::object jwk(const KeyPtr& key, std::string kid) {
  json::object o;
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    o["kty"] = "RSA";
    o["n"] = base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N));
    o["e"] = base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E));
  } else {
    o["kty"] = "EC";
    o["crv"] = "P-256";
    o["x"] = base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32));
    o["y"] = base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
  }
  if (!kid.empty()) o["kid"] = kid;
  return o;
}

std::string jwks_text(std::initializer_list<json::object> keys) {
  json::array a;
  for (const auto& k : keys) a.push_back(k);
  return json::serialize(json::object{{"keys", a}});
}

std::shared_ptr<const Jwks> load(const std::string& text) {
  JwksLoad l = parse_jwks(text, "keys.json");
  EXPECT_TRUE(l.ok()) << (l.errors.empty() ? "" : l.errors[0].to_string());
  return l.jwks;
}

std::string sign(const KeyPtr& key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
  std::size_t length = 0;
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(input.data()), input.size()), 1);
  std::string sig(length, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &length,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()), 1);
  sig.resize(length);
  if (!EVP_PKEY_is_a(key.get(), "EC")) return sig;
  // DER -> r || s, as JWS ES256 writes it.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  return raw;
}

json::object claims() {
  return {{"iss", "https://idp.example"}, {"aud", "pgwarden"}, {"sub", "alice"},
          {"email", "alice@example.com"}, {"exp", t0 + 600}, {"iat", t0 - 10}, {"nbf", t0 - 10}};
}

json::object header(std::string alg, std::string kid) {
  json::object h{{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) h["kid"] = kid;
  return h;
}

std::string token(const KeyPtr& key, const json::object& h, const json::object& c) {
  const std::string input = base64url_encode(json::serialize(h)) + "." + base64url_encode(json::serialize(c));
  return input + "." + base64url_encode(sign(key, input));
}

TokenRules rules() {
  TokenRules r;
  r.issuer = "https://idp.example";
  r.audience = "pgwarden";
  return r;
}

/// The refusal message, or "verified".
std::string outcome(const std::string& tok, const Jwks& keys, TokenRules r = rules(), Clock::time_point at = now) {
  auto v = verify_token(tok, keys, r, at);
  if (v) return "verified";
  EXPECT_EQ(v.error().code, AuthError::TokenRefused);
  EXPECT_EQ(v.error().sqlstate(), "28000");
  EXPECT_EQ(v.error().message.find(tok), std::string::npos) << "the refusal echoes the token";
  return v.error().message;
}

class Jwt : public ::testing::Test {
 protected:
  std::shared_ptr<const Jwks> keys = load(jwks_text({jwk(rsa1(), "r1"), jwk(ec1(), "e1")}));
};

// A good RS256 token names its subject; the key is picked by kid.
TEST_F(Jwt, Rs256TokenVerifies) {
  auto v = verify_token(token(rsa1(), header("RS256", "r1"), claims()), *keys, rules(), now);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->person, "alice");
  EXPECT_EQ(v->key_id, "r1");
  EXPECT_EQ(v->algorithm, "RS256");
  EXPECT_EQ(v->expires_at, Clock::from_time_t(t0 + 600));
  EXPECT_TRUE(v->groups.empty());
}

// ES256 signatures are raw r || s in the token and verify too.
TEST_F(Jwt, Es256TokenVerifies) {
  EXPECT_EQ(outcome(token(ec1(), header("ES256", "e1"), claims()), *keys), "verified");
}

// The person can come from another claim, e.g. email.
TEST_F(Jwt, PersonFromConfiguredClaim) {
  TokenRules r = rules();
  r.person_claim = "email";
  auto v = verify_token(token(rsa1(), header("RS256", "r1"), claims()), *keys, r, now);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->person, "alice@example.com");
  r.person_claim = "preferred_username";
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), claims()), *keys, r),
            "token has no \"preferred_username\" claim to name the person");
  json::object c = claims();
  c["sub"] = "";
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token claim \"sub\" is not a non-empty string");
}

// Groups come as an array of strings or as one space-separated string.
TEST_F(Jwt, GroupsAsArrayOrString) {
  json::object c = claims();
  c["groups"] = json::array{"dba", "oncall"};
  auto v = verify_token(token(rsa1(), header("RS256", "r1"), c), *keys, rules(), now);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->groups, (std::vector<std::string>{"dba", "oncall"}));
  c["groups"] = "dba  oncall";
  v = verify_token(token(rsa1(), header("RS256", "r1"), c), *keys, rules(), now);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->groups, (std::vector<std::string>{"dba", "oncall"}));
  TokenRules r = rules();
  r.groups_claim = "roles";
  c["roles"] = json::array{"juniors"};
  v = verify_token(token(rsa1(), header("RS256", "r1"), c), *keys, r, now);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->groups, (std::vector<std::string>{"juniors"}));
  c["groups"] = json::array{"dba", 7};
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys),
            "token claim \"groups\" is neither an array of strings nor a space-separated string");
}

// aud may be an array; it must contain the configured audience.
TEST_F(Jwt, AudienceAsArray) {
  json::object c = claims();
  c["aud"] = json::array{"other", "pgwarden"};
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "verified");
  c["aud"] = json::array{"other", "pgwarden-staging"};
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token audience does not include \"pgwarden\"");
  c["aud"] = "other";
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token audience does not include \"pgwarden\"");
  c.erase("aud");
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token audience does not include \"pgwarden\"");
}

// The issuer must be the configured one.
TEST_F(Jwt, WrongIssuerIsRefused) {
  json::object c = claims();
  c["iss"] = "https://evil.example";
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys),
            "token issuer \"https://evil.example\" is not the accepted issuer \"https://idp.example\"");
  c.erase("iss");
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token has no issuer (\"iss\")");
}

// exp is required and honoured with the clock skew; the refusal gives the time.
TEST_F(Jwt, ExpiryWithSkew) {
  json::object c = claims();
  c["exp"] = t0;
  const std::string tok = token(rsa1(), header("RS256", "r1"), c);
  EXPECT_EQ(outcome(tok, *keys, rules(), now + std::chrono::seconds(59)), "verified");
  EXPECT_EQ(outcome(tok, *keys, rules(), now + std::chrono::seconds(60)), "token expired at 2026-12-07T10:00:00Z");
  TokenRules no_skew = rules();
  no_skew.clock_skew = std::chrono::seconds(0);
  EXPECT_EQ(outcome(tok, *keys, no_skew, now), "token expired at 2026-12-07T10:00:00Z");
  // The skew is bounded: an hour's worth is read as max_clock_skew.
  TokenRules wide = rules();
  wide.clock_skew = std::chrono::hours(1);
  EXPECT_EQ(outcome(tok, *keys, wide, now + max_clock_skew), "token expired at 2026-12-07T10:00:00Z");
  c.erase("exp");
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys),
            "token has no expiry (\"exp\"): pgwarden accepts only tokens that expire");
  c["exp"] = 1e19;  // past what system_clock can hold
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token claim \"exp\" is not a plausible time");
  c["exp"] = -1;
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token claim \"exp\" is not a plausible time");
  c["exp"] = "tomorrow";
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token claim \"exp\" is not a number of seconds");
}

// A token used before nbf (beyond the skew) or issued in the future is refused.
TEST_F(Jwt, NotYetValid) {
  json::object c = claims();
  c["nbf"] = t0 + 120;
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "token is not valid before 2026-12-07T10:02:00Z");
  c["nbf"] = t0 + 30;  // within the skew
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys), "verified");
  c["iat"] = t0 + 3600;
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "r1"), c), *keys),
            "token was issued in the future, at 2026-12-07T11:00:00Z: check the clocks of pgwarden and the identity "
            "provider");
}

// An unknown kid is refused, naming the kid.
TEST_F(Jwt, UnknownKidIsRefused) {
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "k2"), claims()), *keys), "unknown key id \"k2\"");
}

// The algorithm is pinned by the key: an RSA key never verifies ES256 and
// an EC key never RS256, whatever the header says.
TEST_F(Jwt, AlgorithmMustMatchKey) {
  EXPECT_EQ(outcome(token(ec1(), header("ES256", "r1"), claims()), *keys),
            "key \"r1\" is an RSA key and cannot verify an ES256 token");
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", "e1"), claims()), *keys),
            "key \"e1\" is an EC P-256 key and cannot verify an RS256 token");
}

// alg none and HMAC algorithms are refused (the classic key-confusion attack
// would sign HS256 with the RSA public key as the secret).
TEST_F(Jwt, NoneAndHmacAreRefused) {
  const std::string payload = base64url_encode(json::serialize(claims()));
  EXPECT_EQ(outcome(base64url_encode(R"({"alg":"none"})") + "." + payload + ".", *keys), "alg none is not accepted");
  EXPECT_EQ(outcome(base64url_encode(R"({"alg":"RS256","kid":"r1"})") + "." + payload + ".", *keys),
            "signature does not verify");
  EXPECT_EQ(outcome(base64url_encode(R"({"alg":"none"})") + "." + payload + ".AAAA", *keys), "alg none is not accepted");
  EXPECT_EQ(outcome(base64url_encode(R"({"alg":"HS256","kid":"r1"})") + "." + payload + ".AAAA", *keys),
            "alg \"HS256\" is not accepted: pgwarden verifies RS256 and ES256 tokens");
  EXPECT_EQ(outcome(base64url_encode(R"({"alg":"PS256","kid":"r1"})") + "." + payload + ".AAAA", *keys),
            "alg \"PS256\" is not accepted: pgwarden verifies RS256 and ES256 tokens");
  EXPECT_EQ(outcome(base64url_encode(R"({"kid":"r1"})") + "." + payload + ".AAAA", *keys),
            "token header has no \"alg\" string");
}

// A changed payload or signature never verifies.
TEST_F(Jwt, TamperingIsRefused) {
  const std::string good = token(rsa1(), header("RS256", "r1"), claims());
  json::object c = claims();
  c["sub"] = "root";
  const std::string forged_payload = base64url_encode(json::serialize(c));
  const std::size_t d1 = good.find('.'), d2 = good.rfind('.');
  const std::string forged = good.substr(0, d1 + 1) + forged_payload + good.substr(d2);
  EXPECT_EQ(outcome(forged, *keys), "signature does not verify");

  std::string sig = *base64url_decode(good.substr(d2 + 1));
  sig[10] ^= 1;
  EXPECT_EQ(outcome(good.substr(0, d2 + 1) + base64url_encode(sig), *keys), "signature does not verify");
  EXPECT_EQ(outcome(good.substr(0, d2 + 1) + base64url_encode(sig.substr(1)), *keys), "signature does not verify");

  const std::string es = token(ec1(), header("ES256", "e1"), claims());
  std::string es_sig = *base64url_decode(es.substr(es.rfind('.') + 1));
  es_sig[40] ^= 0x80;
  EXPECT_EQ(outcome(es.substr(0, es.rfind('.') + 1) + base64url_encode(es_sig), *keys), "signature does not verify");
  // A token signed by a key of the right type that is not in the set.
  EXPECT_EQ(outcome(token(rsa2(), header("RS256", "r1"), claims()), *keys), "signature does not verify");
}

// Malformed tokens are refused with a reason, never echoed.
TEST_F(Jwt, MalformedTokens) {
  const std::string not_a_token = "hunter2";
  EXPECT_EQ(outcome(not_a_token, *keys),
            "the password is not a token: expected three base64url segments separated by \".\"");
  EXPECT_EQ(outcome("a.b.c.d", *keys),
            "the password is not a token: expected three base64url segments separated by \".\"");
  const std::string good = token(rsa1(), header("RS256", "r1"), claims());
  EXPECT_EQ(outcome(good + "=", *keys), "token signature is not unpadded base64url");
  EXPECT_EQ(outcome("e30=" + good.substr(good.find('.')), *keys), "token header is not a base64url-encoded JSON object");
  EXPECT_EQ(outcome(base64url_encode("[1]") + good.substr(good.find('.')), *keys),
            "token header is not a base64url-encoded JSON object");
  const std::size_t d1 = good.find('.');
  EXPECT_EQ(outcome(good.substr(0, d1) + "." + base64url_encode("{\"sub\":") + good.substr(good.rfind('.')), *keys),
            "token payload is not a base64url-encoded JSON object");
  EXPECT_EQ(outcome(base64url_encode(R"({"alg":"RS256","kid":"r1","crit":["exp"]})") + good.substr(d1), *keys),
            "token header has \"crit\" extensions, which pgwarden does not understand");
}

// A token over the size limit is refused before any parsing, and the
// limit is configurable.
TEST_F(Jwt, OversizedTokenIsRefusedFirst) {
  const std::string huge(1024 * 1024, 'A');
  EXPECT_EQ(outcome(huge, *keys), "token is longer than 16384 bytes");
  json::object c = claims();
  c["padding"] = std::string(20000, 'x');
  const std::string big = token(rsa1(), header("RS256", "r1"), c);
  EXPECT_EQ(outcome(big, *keys), "token is longer than 16384 bytes");
  TokenRules r = rules();
  r.max_token_bytes = 64 * 1024;
  EXPECT_EQ(outcome(big, *keys, r), "verified");
}

// Without kid, the one key of the algorithm's type is used; with two
// candidates the token must name its key.
TEST_F(Jwt, TokenWithoutKid) {
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", ""), claims()), *keys), "verified");
  EXPECT_EQ(outcome(token(ec1(), header("ES256", ""), claims()), *keys), "verified");
  auto two = load(jwks_text({jwk(rsa1(), "r1"), jwk(rsa2(), "r2")}));
  EXPECT_EQ(outcome(token(rsa1(), header("RS256", ""), claims()), *two),
            "token has no key id (\"kid\") and the key set has 2 keys for RS256: the token must name its key");
  EXPECT_EQ(outcome(token(rsa2(), header("RS256", "r2"), claims()), *two), "verified");
}

// Key rotation: the reloaded set verifies tokens of the new kid and refuses
// the kid it dropped, while the old set object still works for whoever holds it.
TEST_F(Jwt, KeyRotationOnReload) {
  auto before = load(jwks_text({jwk(rsa1(), "2026-11")}));
  auto after = load(jwks_text({jwk(rsa2(), "2026-12")}));
  const std::string old_token = token(rsa1(), header("RS256", "2026-11"), claims());
  const std::string new_token = token(rsa2(), header("RS256", "2026-12"), claims());
  EXPECT_EQ(outcome(old_token, *before), "verified");
  EXPECT_EQ(outcome(new_token, *before), "unknown key id \"2026-12\"");
  EXPECT_EQ(outcome(new_token, *after), "verified");
  EXPECT_EQ(outcome(old_token, *after), "unknown key id \"2026-11\"");
}

// A JWKS file loads from a path too.
TEST(Jwks, LoadsFromFile) {
  const std::string path = ::testing::TempDir() + "/jwks_test_keys.json";
  std::ofstream(path) << jwks_text({jwk(ec1(), "e1")});
  JwksLoad l = load_jwks_file(path);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l.jwks->size(), 1u);
  EXPECT_EQ(l.jwks->keys()[0].type, JwkType::EcP256);
  std::remove(path.c_str());
  l = load_jwks_file(path);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.errors[0].message.find("cannot read the JWKS file"), std::string::npos);
}

std::string first_error(const std::string& text) {
  JwksLoad l = parse_jwks(text, "keys.json");
  EXPECT_FALSE(l.ok());
  return l.errors.empty() ? "" : l.errors[0].to_string();
}

// Unsupported key types and curves name the key and where it starts.
TEST(Jwks, UnsupportedKeysNameIndexKidAndPosition) {
  const std::string ec = json::serialize(jwk(ec1(), "e1"));
  EXPECT_EQ(first_error("{\"keys\": [\n  " + ec + ",\n  {\"kty\": \"oct\", \"kid\": \"h1\", \"use\": \"sig\"}\n]}"),
            "keys.json:3:3: keys[1] (kid \"h1\"): unsupported key type \"oct\": pgwarden verifies RS256 with \"RSA\" "
            "keys and ES256 with \"EC\" P-256 keys");
  EXPECT_EQ(first_error("{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"AAAA\"}]}"),
            "keys.json:1:11: keys[0]: unsupported key type \"OKP\": pgwarden verifies RS256 with \"RSA\" keys and "
            "ES256 with \"EC\" P-256 keys");
  json::object p384 = jwk(ec1(), "e384");
  p384["crv"] = "P-384";
  EXPECT_EQ(first_error(jwks_text({p384})),
            "keys.json:1:10: keys[0] (kid \"e384\"): unsupported curve \"P-384\": pgwarden accepts EC keys on \"P-256\" only");
}

// Other key set errors: private parts, duplicate kids, bad numbers, pinned
// alg mismatch, use other than sig, syntax errors with line and column.
TEST(Jwks, OtherErrors) {
  json::object priv = jwk(ec1(), "e1");
  priv["d"] = "AAAA";
  EXPECT_NE(first_error(jwks_text({priv})).find("has private key member \"d\""), std::string::npos);
  EXPECT_NE(first_error(jwks_text({jwk(ec1(), "same"), jwk(rsa1(), "same")}))
                .find("keys[1] (kid \"same\"): another key has the same kid"),
            std::string::npos);
  json::object bad_point = jwk(ec1(), "e1");
  bad_point["y"] = base64url_encode(std::string(32, '\x01'));
  EXPECT_NE(first_error(jwks_text({bad_point})).find("are not a point on P-256"), std::string::npos);
  json::object wrong_alg = jwk(rsa1(), "r1");
  wrong_alg["alg"] = "RS512";
  EXPECT_NE(first_error(jwks_text({wrong_alg})).find("\"alg\" is \"RS512\" but this key can only be used with RS256"),
            std::string::npos);
  json::object enc = jwk(rsa1(), "r1");
  enc["use"] = "enc";
  EXPECT_NE(first_error(jwks_text({enc})).find("pgwarden verifies signatures only"), std::string::npos);
  json::object small = jwk(rsa1(), "r1");
  small["n"] = base64url_encode(std::string(128, '\xc5'));
  EXPECT_NE(first_error(jwks_text({small})).find("RSA modulus of 1024 bits"), std::string::npos);
  json::object padded = jwk(rsa1(), "r1");
  padded["e"] = "AQAB==";
  EXPECT_NE(first_error(jwks_text({padded})).find("\"e\" is not non-empty unpadded base64url"), std::string::npos);
  EXPECT_EQ(first_error("{\"keys\": [\n{\"kty\": \"RSA\",\n \"n\": }]}"), "keys.json:3:7: not valid JSON: syntax error");
  EXPECT_EQ(first_error("{\"keys\": []}"), "keys.json:1:1: the key set has no keys");
  EXPECT_EQ(first_error("[]"), "keys.json:1:1: a JWKS is a JSON object with a \"keys\" array (RFC 7517 section 5)");
  EXPECT_EQ(first_error(std::string(max_jwks_bytes + 1, ' ')),
            "keys.json:1:1: the key set is larger than 1048576 bytes");
}

// Every error of a set is reported, not only the first.
TEST(Jwks, ReportsEveryBadKey) {
  JwksLoad l = parse_jwks(R"({"keys":[{"kty":"oct"},{"kty":"OKP"}]})", "k.json");
  ASSERT_EQ(l.errors.size(), 2u);
  EXPECT_EQ(l.errors[0].column, 10);
  EXPECT_EQ(l.errors[1].column, 24);
}

}  // namespace
