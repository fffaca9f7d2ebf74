// libFuzzer target: tokens people present as passwords (auth/jwt) and the
// JWKS files their keys come from (auth/jwks).
//
// Input: Byte1 selector, then the bytes. Selector bits 0-1 choose the mode:
//   0  the bytes are a token, verified against a fixed key set (one RSA and
//      one P-256 key of an identity provider) whose private keys nobody
//      here has;
//   1  the bytes are a JWKS; a set that loads is then used to verify a
//      token signed by this target's own key;
//   2  Byte1 n, then a JWS header of n bytes and a payload (the rest), both
//      JSON text: the target encodes them, signs them with its own key (bit
//      2: the P-256 key, else the RSA key) and verifies the token against
//      its own key set.
// Bit 3 (modes 0 and 2): the rules read groups from "roles", not "groups".
//
// Invariants: nothing crashes. In mode 0 nothing verifies: a token is
// accepted only with a signature by a key of the set. In mode 1 a loaded
// set holds only keys OpenSSL built. In mode 2 a token that verifies says
// what the rules demand, checked again here from the payload: iss is the
// issuer, aud holds the audience, exp lies after now minus the skew, the
// person claim is a non-empty string.

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <boost/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "auth/base64.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"

namespace px = pgwarden::auth;
namespace json = boost::json;

namespace {

using Clock = std::chrono::system_clock;
const Clock::time_point now = Clock::from_time_t(1796637600);  // 2026-12-07T10:00:00Z

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// An identity provider's public keys; the private halves were never kept.
constexpr std::string_view foreign_jwks =
    R"({"keys": [{"kty": "RSA", "kid": "idp-rsa", "n": "qqruOmiW_kEMyInpfm77YtM1ERNyKfhVms3rgyV0sDSRIKRT9LM)"
    R"(5uxeXonvlcNnf73Pc2FLdqXDTDA6dOXLcUqikMqBD1vU3AJRzv2lv6wHBWCTTteN-n_cv0aj0TugHuoQ5qkF9RWmzIWzR07ziY6B)"
    R"(ZKtHOIf5uA1-HN6ItjSSl89WPa9-qowviH5bIt1dFYBARLH6vuXLkqX7T_jnHtE_s9qMTsI9Fp8iMfYbu1zFeJ3Lk4OpL5TmdjNn)"
    R"(9w3d2258S2mErTm0eoJxL6stN9LPh2xxkYdIOmFEUJ5Cbrt6YtFNhie5jyxPHSC1Lo2Ymqqyij2BcXjm8DxVtzHntmQ", "e": ")"
    R"(AQAB"}, {"kty": "EC", "crv": "P-256", "kid": "idp-ec", "x": "DQwJNU3x7Wq9SH2nB-RjSxLKZn5RdNcmGmqmQaj)"
    R"(E22M", "y": "QIx4DEwtQ-Vw0eyDN_YwO68jpKFaDz9EtyC9S7YpoC4"}]})";

std::shared_ptr<const px::Jwks> load(std::string_view text) {
  px::JwksLoad l = px::parse_jwks(text, "fuzz");
  check(l.ok(), "a fixed key set does not load");
  return l.jwks;
}

const px::Jwks& foreign_keys() {
  static auto keys = load(foreign_jwks);
  return *keys;
}

/// This target's own keys, and the key set of their public halves.
struct Own {
  std::shared_ptr<EVP_PKEY> rsa{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), &EVP_PKEY_free};
  std::shared_ptr<EVP_PKEY> ec{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free};
  std::shared_ptr<const px::Jwks> keys;

  static std::string param(EVP_PKEY* key, const char* name, int pad) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key, name, &bn);
    std::string out(pad ? pad : BN_num_bytes(bn), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
    BN_free(bn);
    return px::base64url_encode(out);
  }

  Own() {
    json::object r{{"kty", "RSA"}, {"kid", "own-rsa"}, {"n", param(rsa.get(), OSSL_PKEY_PARAM_RSA_N, 0)},
                   {"e", param(rsa.get(), OSSL_PKEY_PARAM_RSA_E, 0)}};
    json::object e{{"kty", "EC"}, {"crv", "P-256"}, {"kid", "own-ec"},
                   {"x", param(ec.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)},
                   {"y", param(ec.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)}};
    keys = load(json::serialize(json::object{{"keys", json::array{r, e}}}));
  }
};

const Own& own() {
  static const Own o;
  return o;
}

/// A JWS signature of `input` by `key` (ES256 as r || s).
std::string sign(EVP_PKEY* key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  check(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx.get(), nullptr, &length, data, input.size()) == 1,
        "signing failed");
  std::string sig(length, '\0');
  check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &length, data, input.size()) == 1,
        "signing failed");
  sig.resize(length);
  if (!EVP_PKEY_is_a(key, "EC")) return sig;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  return raw;
}

px::TokenRules rules(bool roles) {
  px::TokenRules r;
  r.issuer = "https://idp.example";
  r.audience = "pgwarden";
  if (roles) r.groups_claim = "roles";
  return r;
}

/// What a verified token's payload must say, read again independently.
void check_claims(std::string_view payload, const px::TokenRules& r, const px::TokenIdentity& id) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  check(!ec && v.is_object(), "a token whose payload is no JSON object verified");
  const json::object& c = v.get_object();
  const json::value* iss = c.if_contains("iss");
  check(iss && iss->is_string() && iss->get_string() == r.issuer, "a token of another issuer verified");
  const json::value* aud = c.if_contains("aud");
  bool has_audience = aud && aud->is_string() && aud->get_string() == r.audience;
  if (aud && aud->is_array())
    for (const auto& a : aud->get_array()) has_audience |= a.is_string() && a.get_string() == r.audience;
  check(has_audience, "a token for another audience verified");
  const json::value* exp = c.if_contains("exp");
  check(exp && exp->is_number(), "a token without exp verified");
  check(exp->to_number<double>(ec) > 1796637600.0 - 60, "an expired token verified");
  const json::value* person = c.if_contains(r.person_claim);
  check(person && person->is_string() && person->get_string() == id.person && !id.person.empty(),
        "the person is not the person claim");
}

void verify_foreign(std::string_view token, bool roles) {
  auto v = px::verify_token(token, foreign_keys(), rules(roles), now);
  check(!v, "a token verified against keys nobody here can sign with");
  check(v.error().code == px::AuthError::TokenRefused, "a refusal without TokenRefused");
}

void load_and_use(std::string_view text) {
  px::JwksLoad l = px::parse_jwks(text, "fuzz");
  check(l.ok() == l.errors.empty(), "a key set both loaded and failed");
  if (!l.ok()) return;
  for (const auto& k : l.jwks->keys()) check(k.key != nullptr, "a loaded key has no OpenSSL key");
  static const std::string token = [] {
    const std::string input = px::base64url_encode(R"({"alg":"ES256"})") + "." +
                              px::base64url_encode(R"({"iss":"https://idp.example","aud":"pgwarden","sub":"a","exp":1796640000})");
    return input + "." + px::base64url_encode(sign(own().ec.get(), input));
  }();
  (void)px::verify_token(token, *l.jwks, rules(false), now);
}

void sign_and_verify(std::string_view data, bool ec_key, bool roles) {
  if (data.empty()) return;
  const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(data[0]), data.size() - 1);
  const std::string_view header = data.substr(1, n);
  const std::string_view payload = data.substr(1 + n);
  const std::string input = px::base64url_encode(header) + "." + px::base64url_encode(payload);
  const std::string token = input + "." + px::base64url_encode(sign(ec_key ? own().ec.get() : own().rsa.get(), input));
  const px::TokenRules r = rules(roles);
  auto v = px::verify_token(token, *own().keys, r, now);
  if (v) check_claims(payload, r, *v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool roles = selector & 8;
  switch (selector & 3) {
    case 0: verify_foreign(bytes, roles); break;
    case 1: load_and_use(bytes); break;
    default: sign_and_verify(bytes, selector & 4, roles); break;
  }
  return 0;
}
