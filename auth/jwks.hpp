#pragma once
/// The public keys that sign the tokens people log in with: a JSON Web Key
/// Set (RFC 7517) read from a file, as an identity provider publishes it at
/// its jwks_uri. pgwarden reads it offline; fetching it is the operator's job.
///
/// Accepted keys: RSA keys of at least 2048 bits (for RS256) and EC keys on
/// P-256 (for ES256), public parts only. Anything else in the set is an
/// error, not silently skipped, so that a token never fails for a reason the
/// operator could have seen at load time:
///   - a `kty` other than "RSA" or "EC" (e.g. "oct", "OKP"), a `crv` other
///     than "P-256", an `alg` other than RS256/ES256 or not matching the key
///     type, a `use` other than "sig";
///   - private key members (`d`, `p`, `q`, ...): a key set for pgwarden holds
///     public keys only;
///   - two keys with the same `kid`, or an empty set.
/// Each error names the key by index and kid, at the file:line:col where its
/// object starts.
///
/// A Jwks is immutable: a reload parses the file again into a new one and
/// the caller swaps a std::shared_ptr<const Jwks>. A token carrying the kid
/// of a key the new set dropped is then refused.

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace pgwarden::auth {

/// The kind of public key, and so the one JWS algorithm it verifies.
enum class JwkType {
  Rsa,   ///< "RSA", verifies RS256
  EcP256 ///< "EC" on "P-256", verifies ES256
};

/// One verification key of the set.
struct Jwk {
  std::string kid;                 ///< empty when the key has none
  JwkType type = JwkType::Rsa;
  std::shared_ptr<EVP_PKEY> key;   ///< the public key, never null in a loaded set
};

/// A loaded key set. Immutable once loaded.
class Jwks {
 public:
  const std::vector<Jwk>& keys() const noexcept { return keys_; }
  /// The key with this kid, or null.
  const Jwk* find(std::string_view kid) const noexcept;
  std::size_t size() const noexcept { return keys_.size(); }

 private:
  friend class JwksParser;
  std::vector<Jwk> keys_;
};

/// The loaded set, or every error found.
struct JwksLoad {
  std::shared_ptr<const Jwks> jwks;  ///< null when errors is not empty
  std::vector<config::Diagnostic> errors;
  bool ok() const noexcept { return jwks != nullptr; }
};

/// Files larger than this are refused unread (a JWKS is a few KiB).
inline constexpr std::size_t max_jwks_bytes = 1024 * 1024;

/// Parses JWKS `text`; `name` is the file name used in diagnostics.
JwksLoad parse_jwks(std::string_view text, std::string_view name);
/// Reads and parses the file at `path`.
JwksLoad load_jwks_file(const std::string& path);

/// The JWS name of the algorithm a key type verifies: "RS256" or "ES256".
std::string_view jws_algorithm(JwkType type) noexcept;

}  // namespace pgwarden::auth
