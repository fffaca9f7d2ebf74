#pragma once
/// base64 (RFC 4648), strict in both forms pgwarden reads:
/// - standard, padded: SCRAM's messages and stored secrets;
/// - base64url without padding, as JOSE writes it (RFC 7515 section 2): the
///   encoding of every JWS segment and JWK number.

#include <optional>
#include <string>
#include <string_view>

namespace pgwarden::auth {

/// The padded standard base64 text of `bytes`.
std::string base64_encode(std::string_view bytes);
/// Strict decoding: whole quads, padding only at the very end, no blanks.
/// The unused low bits of a final digit are ignored, as PostgreSQL's
/// decoder ignores them. nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text);

/// The unpadded base64url text of `bytes`.
std::string base64url_encode(std::string_view bytes);
/// Strict decoding: the URL-safe alphabet only, no padding, no blanks, and
/// the unused low bits of the last digit zero, so one byte string has one
/// text. nullopt for anything else.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace pgwarden::auth
