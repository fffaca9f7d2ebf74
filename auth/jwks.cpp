#include "auth/jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "auth/base64.hpp"

namespace pgwarden::auth {

namespace json = boost::json;

const Jwk* Jwks::find(std::string_view kid) const noexcept {
  for (const Jwk& k : keys_)
    if (k.kid == kid) return &k;
  return nullptr;
}

std::string_view jws_algorithm(JwkType type) noexcept {
  return type == JwkType::Rsa ? "RS256" : "ES256";
}

namespace {

constexpr int min_rsa_bits = 2048;
constexpr int max_rsa_bits = 16384;  // bounds the cost of one verification
constexpr std::size_t p256_coordinate_bytes = 32;
// Members that only a private JWK has (RFC 7518 section 6).
constexpr std::string_view private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using BldPtr = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;
using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;

/// 1-based line and column of byte `offset` in `text`.
std::pair<int, int> line_col(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  return {line, static_cast<int>(offset - line_start) + 1};
}

/// Where each element of the top-level "keys" array starts, in valid JSON
/// text (Boost.JSON keeps no positions; this walk recovers them).
std::vector<std::size_t> key_offsets(std::string_view text) {
  std::vector<std::size_t> out;
  int depth = 0;
  bool in_keys = false;      // inside the top-level "keys" array
  bool expect_element = false;
  std::string_view last_string;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      const std::size_t start = i + 1;
      for (++i; i < text.size() && text[i] != '"'; ++i)
        if (text[i] == '\\') ++i;
      if (in_keys && depth == 2 && expect_element) out.push_back(start - 1), expect_element = false;
      last_string = text.substr(start, i - start);
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':') continue;
    if (in_keys && depth == 2 && expect_element && c != ']') {
      out.push_back(i);
      expect_element = false;
    }
    if (c == '{' || c == '[') {
      if (c == '[' && depth == 1 && last_string == "keys" && out.empty()) in_keys = expect_element = true;
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
      if (depth == 1) in_keys = false;
    } else if (c == ',' && in_keys && depth == 2) {
      expect_element = true;
    }
    last_string = {};
  }
  return out;
}

/// The printable form of a kid for messages, cut to a sane length.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

/// Reads one JWK into a Jwk, or says what is wrong with it.
class KeyReader {
 public:
  explicit KeyReader(const json::object& jwk) : jwk_(jwk) {}

  /// The key, or nullopt with error() set.
  std::optional<Jwk> read() {
    Jwk out;
    if (auto kid = member_string("kid", false)) out.kid = std::string(*kid);
    if (!error_.empty()) return std::nullopt;
    for (std::string_view m : private_members)
      if (jwk_.contains(m))
        return fail("has private key member \"" + std::string(m) +
                    "\": a key set for pgwarden must hold public keys only");
    auto kty = member_string("kty", true);
    if (!kty) return std::nullopt;
    if (*kty == "RSA") {
      out.type = JwkType::Rsa;
    } else if (*kty == "EC") {
      out.type = JwkType::EcP256;
    } else {
      return fail("unsupported key type \"" + printable(*kty) +
                  "\": pgwarden verifies RS256 with \"RSA\" keys and ES256 with \"EC\" P-256 keys");
    }
    if (!check_use_and_alg(out.type)) return std::nullopt;
    out.key = out.type == JwkType::Rsa ? rsa_key() : ec_key();
    if (!out.key) return std::nullopt;
    return out;
  }

  const std::string& error() const noexcept { return error_; }

 private:
  std::nullopt_t fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return std::nullopt;
  }

  /// A string member; an error if it is not a string, or absent and required.
  std::optional<std::string_view> member_string(std::string_view name, bool required) {
    const json::value* v = jwk_.if_contains(name);
    if (!v) {
      if (required) fail("has no \"" + std::string(name) + "\"");
      return std::nullopt;
    }
    if (!v->is_string()) {
      fail("\"" + std::string(name) + "\" is not a string");
      return std::nullopt;
    }
    return std::string_view(v->get_string());
  }

  /// A base64url member, decoded.
  std::optional<std::string> member_bytes(std::string_view name) {
    auto text = member_string(name, true);
    if (!text) return std::nullopt;
    auto bytes = base64url_decode(*text);
    if (!bytes || bytes->empty()) {
      fail("\"" + std::string(name) + "\" is not non-empty unpadded base64url");
      return std::nullopt;
    }
    return bytes;
  }

  bool check_use_and_alg(JwkType type) {
    if (auto use = member_string("use", false); use && *use != "sig")
      return fail("\"use\" is \"" + printable(*use) + "\": pgwarden verifies signatures only (\"sig\")"), false;
    if (!error_.empty()) return false;
    if (auto alg = member_string("alg", false); alg && *alg != jws_algorithm(type))
      return fail("\"alg\" is \"" + printable(*alg) + "\" but this key can only be used with " +
                  std::string(jws_algorithm(type)) + " (pgwarden accepts RS256 and ES256)"),
             false;
    return error_.empty();
  }

  std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld) {
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld), &OSSL_PARAM_free);
    CtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr), &EVP_PKEY_CTX_free);
    EVP_PKEY* pkey = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
      return nullptr;
    std::shared_ptr<EVP_PKEY> key(pkey, &EVP_PKEY_free);
    CtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr), &EVP_PKEY_CTX_free);
    if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
    return key;
  }

  std::shared_ptr<EVP_PKEY> rsa_key() {
    auto n = member_bytes("n");
    auto e = n ? member_bytes("e") : std::nullopt;
    if (!n || !e) return nullptr;
    BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr), &BN_free);
    BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr), &BN_free);
    if (!bn_n || !bn_e) return fail("cannot read the RSA numbers"), nullptr;
    const int bits = BN_num_bits(bn_n.get());
    if (bits < min_rsa_bits || bits > max_rsa_bits)
      return fail("RSA modulus of " + std::to_string(bits) + " bits: pgwarden accepts " +
                  std::to_string(min_rsa_bits) + " to " + std::to_string(max_rsa_bits)),
             nullptr;
    if (e->size() > 8 || !BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()))
      return fail("RSA exponent \"e\" is not an odd number from 3 to 2^64-1"), nullptr;
    BldPtr bld(OSSL_PARAM_BLD_new(), &OSSL_PARAM_BLD_free);
    if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
      return fail("cannot build the RSA key"), nullptr;
    auto key = from_params("RSA", bld.get());
    if (!key) fail("not a valid RSA public key");
    return key;
  }

  std::shared_ptr<EVP_PKEY> ec_key() {
    auto crv = member_string("crv", true);
    if (!crv) return nullptr;
    if (*crv != "P-256")
      return fail("unsupported curve \"" + printable(*crv) + "\": pgwarden accepts EC keys on \"P-256\" only"),
             nullptr;
    auto x = member_bytes("x");
    auto y = x ? member_bytes("y") : std::nullopt;
    if (!x || !y) return nullptr;
    if (x->size() != p256_coordinate_bytes || y->size() != p256_coordinate_bytes)
      return fail("\"x\" and \"y\" of a P-256 key must be 32 bytes each"), nullptr;
    const std::string point = '\x04' + *x + *y;  // SEC 1 uncompressed point
    BldPtr bld(OSSL_PARAM_BLD_new(), &OSSL_PARAM_BLD_free);
    if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
      return fail("cannot build the EC key"), nullptr;
    auto key = from_params("EC", bld.get());
    if (!key) fail("\"x\" and \"y\" are not a point on P-256");
    return key;
  }

  const json::object& jwk_;
  std::string error_;
};

}  // namespace

/// Reads a whole key set, collecting every error with its position.
class JwksParser {
 public:
  JwksParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  JwksLoad parse() {
    JwksLoad out;
    if (text_.size() > max_jwks_bytes) {
      error(0, "the key set is larger than " + std::to_string(max_jwks_bytes) + " bytes");
    } else if (auto root = parse_json()) {
      read_set(*root);
    }
    out.errors = std::move(errors_);
    if (out.errors.empty()) out.jwks = std::move(set_);
    return out;
  }

 private:
  std::optional<json::value> parse_json() {
    json::stream_parser parser;
    boost::system::error_code ec;
    const std::size_t used = parser.write(text_.data(), text_.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec) {
      error(std::min(used, text_.size()), "not valid JSON: " + ec.message());
      return std::nullopt;
    }
    return parser.release();
  }

  void read_set(const json::value& root) {
    const json::value* keys = root.is_object() ? root.get_object().if_contains("keys") : nullptr;
    if (!keys || !keys->is_array())
      return error(0, "a JWKS is a JSON object with a \"keys\" array (RFC 7517 section 5)");
    const json::array& array = keys->get_array();
    if (array.empty()) return error(0, "the key set has no keys");
    const std::vector<std::size_t> offsets = key_offsets(text_);
    std::set<std::string, std::less<>> kids;
    for (std::size_t i = 0; i < array.size(); ++i) {
      const std::size_t at = i < offsets.size() ? offsets[i] : 0;
      std::string label = "keys[" + std::to_string(i) + "]";
      if (!array[i].is_object()) {
        error(at, label + " is not a JSON object");
        continue;
      }
      KeyReader reader(array[i].get_object());
      std::optional<Jwk> key = reader.read();
      if (const json::value* kid = array[i].get_object().if_contains("kid"); kid && kid->is_string())
        label += " (kid \"" + printable(kid->get_string()) + "\")";
      if (!key) {
        error(at, label + ": " + reader.error());
        continue;
      }
      if (!key->kid.empty() && !kids.insert(key->kid).second) {
        error(at, label + ": another key has the same kid; a kid must pick one key");
        continue;
      }
      set_->keys_.push_back(std::move(*key));
    }
  }

  void error(std::size_t offset, std::string message) {
    auto [line, column] = line_col(text_, offset);
    errors_.push_back(config::Diagnostic{name_, line, column, std::move(message)});
  }

  std::string_view text_;
  std::string name_;
  std::shared_ptr<Jwks> set_ = std::make_shared<Jwks>();
  std::vector<config::Diagnostic> errors_;
};

JwksLoad parse_jwks(std::string_view text, std::string_view name) {
  return JwksParser(text, name).parse();
}

JwksLoad load_jwks_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  JwksLoad out;
  if (!in) {
    out.errors.push_back(config::Diagnostic{path, 0, 0, std::string("cannot read the JWKS file: ") + std::strerror(errno)});
    return out;
  }
  std::string text(max_jwks_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse_jwks(text, path);
}

}  // namespace pgwarden::auth
