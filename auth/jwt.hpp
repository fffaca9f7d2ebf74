#pragma once
/// A signed token (a compact JWS carrying JWT claims: an OIDC ID token or
/// access token) used as the password, verified offline against a Jwks, as
/// cloud IAM database authentication does. RFC 7519, RFC 7515, and the
/// practices of RFC 8725:
///   - size first: a token longer than max_token_bytes is refused before
///     any parsing work;
///   - three unpadded base64url segments, a JSON object header and payload;
///   - the algorithm is pinned by the key: RS256 with an RSA key, ES256 with
///     a P-256 key; "none", HS* and everything else are refused, as is a
///     `crit` header;
///   - `kid` picks the key; an unknown kid is refused. A token without kid
///     is accepted only when the set holds exactly one key of its algorithm's
///     type (a single-key set is common and unambiguous; with several, trying
///     each would let a token choose its key);
///   - the signature, then the claims: `iss` equals the configured issuer,
///     `aud` (a string or an array) contains the configured audience, `exp`
///     is required, `nbf` and `iat` are honoured; each time check allows the
///     configured clock skew (at most max_clock_skew).
/// Then the person comes from a configurable claim (default `sub`) and the
/// groups from another (default `groups`: an array of strings or one
/// space-separated string; absent means none).
///
/// Every refusal is an AuthFailure with code TokenRefused whose message says
/// what is wrong in words a user can act on; it never contains the token.
/// Claim values are only quoted after the signature verified, cut short and
/// with unprintable bytes replaced. A member named twice in the header or
/// the payload counts with its last value (Boost.JSON's reading, one of
/// the two RFC 7519 allows).

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwks.hpp"
#include "auth/scram.hpp"

namespace pgwarden::auth {

/// The largest clock skew a configuration may allow.
inline constexpr std::chrono::seconds max_clock_skew{300};

/// What a token must say to be accepted, and where the identity is.
struct TokenRules {
  std::string issuer;                  ///< `iss` must equal it (required)
  std::string audience;                ///< `aud` must contain it (required)
  std::string person_claim = "sub";    ///< e.g. "email", "preferred_username"
  std::string groups_claim = "groups"; ///< empty: tokens carry no groups
  std::chrono::seconds clock_skew{60}; ///< clamped to [0, max_clock_skew]
  std::size_t max_token_bytes = 16 * 1024;
};

/// Who a verified token names.
struct TokenIdentity {
  std::string person;
  std::vector<std::string> groups;
  std::string key_id;                              ///< the kid of the key that verified it (may be empty)
  std::string algorithm;                           ///< "RS256" or "ES256"
  std::chrono::system_clock::time_point expires_at;  ///< `exp`
};

/// Verifies `token` against `keys` under `rules` at time `now`.
AuthResult<TokenIdentity> verify_token(std::string_view token, const Jwks& keys, const TokenRules& rules,
                                       std::chrono::system_clock::time_point now);

/// "2026-12-07T10:00:00Z": how refusals print times.
std::string format_utc(std::chrono::system_clock::time_point t);

}  // namespace pgwarden::auth
