#include "auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <memory>
#include <optional>

#include "auth/base64.hpp"

namespace pgwarden::auth {

namespace json = boost::json;

namespace {

using Clock = std::chrono::system_clock;
constexpr std::size_t es256_signature_bytes = 64;  // r || s, 32 bytes each (RFC 7518 section 3.4)
constexpr std::size_t max_quoted = 64;
// NumericDate values from 2200 on are not times a token means (and past
// 2262 they would not fit system_clock's nanoseconds).
constexpr double max_numeric_date = 7258118400;  // 2200-01-01T00:00:00Z

AuthFailure refuse(std::string message) {
  return AuthFailure{AuthError::TokenRefused, std::move(message), {}, {}};
}

/// `s` fit to quote in a message: short, printable.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, max_quoted)) out += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  if (s.size() > max_quoted) out += "...";
  return out + '"';
}

/// The three segments of a compact JWS and the bytes the signature covers.
/// (An empty signature segment passes here, so that an unsigned "alg":"none"
/// token is refused for what it is.)
struct Parts {
  json::object header;
  json::object claims;
  std::string signature;
  std::string_view signing_input;  ///< header "." payload, as received
};

std::optional<json::object> decode_object(std::string_view segment) {
  auto bytes = base64url_decode(segment);
  if (!bytes) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

AuthResult<Parts> split(std::string_view token) {
  const std::size_t first = token.find('.');
  const std::size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos || first == 0 ||
      second == first + 1)
    return refuse("the password is not a token: expected three base64url segments separated by \".\"");
  Parts parts;
  auto header = decode_object(token.substr(0, first));
  if (!header) return refuse("token header is not a base64url-encoded JSON object");
  auto claims = decode_object(token.substr(first + 1, second - first - 1));
  if (!claims) return refuse("token payload is not a base64url-encoded JSON object");
  auto signature = base64url_decode(token.substr(second + 1));
  if (!signature) return refuse("token signature is not unpadded base64url");
  parts.header = std::move(*header);
  parts.claims = std::move(*claims);
  parts.signature = std::move(*signature);
  parts.signing_input = token.substr(0, second);
  return parts;
}

/// The key type `alg` needs; refuses every algorithm but RS256 and ES256.
AuthResult<JwkType> check_algorithm(const json::object& header) {
  const json::value* alg = header.if_contains("alg");
  if (!alg || !alg->is_string()) return refuse("token header has no \"alg\" string");
  const std::string_view name = alg->get_string();
  if (name == "RS256") return JwkType::Rsa;
  if (name == "ES256") return JwkType::EcP256;
  if (name == "none" || name == "None" || name == "NONE") return refuse("alg none is not accepted");
  return refuse("alg " + quoted(name) + " is not accepted: pgwarden verifies RS256 and ES256 tokens");
}

std::string_view type_name(JwkType type) { return type == JwkType::Rsa ? "an RSA" : "an EC P-256"; }

/// The key `kid` names, or the one key of the type when there is no kid.
AuthResult<const Jwk*> select_key(const json::object& header, const Jwks& keys, JwkType type) {
  const std::string_view alg = jws_algorithm(type);
  const json::value* kid = header.if_contains("kid");
  if (kid) {
    if (!kid->is_string()) return refuse("token header \"kid\" is not a string");
    const Jwk* key = keys.find(kid->get_string());
    if (!key) return refuse("unknown key id " + quoted(kid->get_string()));
    if (key->type != type)
      return refuse("key " + quoted(key->kid) + " is " + std::string(type_name(key->type)) +
                    " key and cannot verify an " + std::string(alg) + " token");
    return key;
  }
  const Jwk* only = nullptr;
  std::size_t count = 0;
  for (const Jwk& k : keys.keys())
    if (k.type == type) only = &k, ++count;
  if (count == 1) return only;
  return refuse("token has no key id (\"kid\") and the key set has " + std::to_string(count) + " keys for " +
                std::string(alg) + ": the token must name its key");
}

/// The DER form OpenSSL verifies, of a JWS ES256 signature (r || s).
std::optional<std::string> es256_to_der(std::string_view raw) {
  if (raw.size() != es256_signature_bytes) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), &ECDSA_SIG_free);
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig.get(), &der);
  if (length <= 0) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

bool signature_verifies(const Jwk& key, std::string_view signing_input, std::string_view signature) {
  std::string der;
  if (key.type == JwkType::EcP256) {
    auto converted = es256_to_der(signature);
    if (!converted) return false;
    der = std::move(*converted);
    signature = der;
  } else if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.key.get()))) {
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.key.get()) == 1 &&
                  EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                   signature.size(), reinterpret_cast<const unsigned char*>(signing_input.data()),
                                   signing_input.size()) == 1;
  ERR_clear_error();  // leave no failure behind for the thread's next TLS call
  return ok;
}

/// A NumericDate claim (seconds since the epoch, maybe fractional).
AuthResult<std::optional<double>> numeric_date(const json::object& claims, std::string_view name) {
  const json::value* v = claims.if_contains(name);
  if (!v) return std::optional<double>{};
  if (!v->is_number()) return refuse("token claim \"" + std::string(name) + "\" is not a number of seconds");
  boost::system::error_code ec;
  const double seconds = v->to_number<double>(ec);
  if (ec || !std::isfinite(seconds) || seconds < 0 || seconds > max_numeric_date)
    return refuse("token claim \"" + std::string(name) + "\" is not a plausible time");
  return std::optional<double>{seconds};
}

Clock::time_point from_seconds(double seconds) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
}

AuthResult<Clock::time_point> check_times(const json::object& claims, std::chrono::seconds skew,
                                          Clock::time_point now) {
  auto exp = numeric_date(claims, "exp");
  if (!exp) return std::move(exp).error();
  if (!*exp) return refuse("token has no expiry (\"exp\"): pgwarden accepts only tokens that expire");
  const Clock::time_point expires = from_seconds(**exp);
  if (now >= expires + skew) return refuse("token expired at " + format_utc(expires));
  auto nbf = numeric_date(claims, "nbf");
  if (!nbf) return std::move(nbf).error();
  if (*nbf && now + skew < from_seconds(**nbf))
    return refuse("token is not valid before " + format_utc(from_seconds(**nbf)));
  auto iat = numeric_date(claims, "iat");
  if (!iat) return std::move(iat).error();
  if (*iat && now + skew < from_seconds(**iat))
    return refuse("token was issued in the future, at " + format_utc(from_seconds(**iat)) +
                  ": check the clocks of pgwarden and the identity provider");
  return expires;
}

AuthResult<void> check_issuer_and_audience(const json::object& claims, const TokenRules& rules) {
  const json::value* iss = claims.if_contains("iss");
  if (!iss || !iss->is_string()) return refuse("token has no issuer (\"iss\")");
  if (iss->get_string() != rules.issuer)
    return refuse("token issuer " + quoted(iss->get_string()) + " is not the accepted issuer " + quoted(rules.issuer));
  const json::value* aud = claims.if_contains("aud");
  bool found = false;
  if (aud && aud->is_string()) {
    found = aud->get_string() == rules.audience;
  } else if (aud && aud->is_array()) {
    for (const json::value& a : aud->get_array()) found = found || (a.is_string() && a.get_string() == rules.audience);
  }
  if (!found) return refuse("token audience does not include " + quoted(rules.audience));
  return {};
}

AuthResult<std::string> read_person(const json::object& claims, const std::string& claim) {
  const json::value* v = claims.if_contains(claim);
  if (!v) return refuse("token has no " + quoted(claim) + " claim to name the person");
  if (!v->is_string() || v->get_string().empty())
    return refuse("token claim " + quoted(claim) + " is not a non-empty string");
  return std::string(v->get_string());
}

AuthResult<std::vector<std::string>> read_groups(const json::object& claims, const std::string& claim) {
  std::vector<std::string> groups;
  const json::value* v = claims.if_contains(claim);
  if (claim.empty() || !v) return groups;
  auto wrong = [&] {
    return refuse("token claim " + quoted(claim) + " is neither an array of strings nor a space-separated string");
  };
  if (v->is_string()) {
    std::string_view rest = v->get_string();
    while (!rest.empty()) {
      const std::size_t space = rest.find(' ');
      if (space != 0) groups.emplace_back(rest.substr(0, space));
      rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
    }
  } else if (v->is_array()) {
    for (const json::value& g : v->get_array()) {
      if (!g.is_string()) return wrong();
      if (!g.get_string().empty()) groups.emplace_back(g.get_string());
    }
  } else {
    return wrong();
  }
  return groups;
}

}  // namespace

std::string format_utc(Clock::time_point t) {
  const std::time_t seconds = Clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(text, n);
}

AuthResult<TokenIdentity> verify_token(std::string_view token, const Jwks& keys, const TokenRules& rules,
                                       Clock::time_point now) {
  if (token.size() > rules.max_token_bytes)
    return refuse("token is longer than " + std::to_string(rules.max_token_bytes) + " bytes");
  if (rules.issuer.empty() || rules.audience.empty())
    return refuse("no issuer and audience are configured for tokens");
  auto parts = split(token);
  if (!parts) return std::move(parts).error();
  if (parts->header.contains("crit"))
    return refuse("token header has \"crit\" extensions, which pgwarden does not understand");
  auto type = check_algorithm(parts->header);
  if (!type) return std::move(type).error();
  auto key = select_key(parts->header, keys, *type);
  if (!key) return std::move(key).error();
  if (!signature_verifies(**key, parts->signing_input, parts->signature))
    return refuse("signature does not verify");

  const std::chrono::seconds skew = std::clamp(rules.clock_skew, std::chrono::seconds{0}, max_clock_skew);
  auto expires = check_times(parts->claims, skew, now);
  if (!expires) return std::move(expires).error();
  if (auto checked = check_issuer_and_audience(parts->claims, rules); !checked) return std::move(checked).error();
  auto person = read_person(parts->claims, rules.person_claim);
  if (!person) return std::move(person).error();
  auto groups = read_groups(parts->claims, rules.groups_claim);
  if (!groups) return std::move(groups).error();
  return TokenIdentity{std::move(*person), std::move(*groups), (*key)->kid,
                       std::string(jws_algorithm(*type)), *expires};
}

}  // namespace pgwarden::auth
