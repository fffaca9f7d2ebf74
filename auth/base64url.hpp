#pragma once
/// base64url (RFC 4648 section 5) without padding, as JOSE writes it
/// (RFC 7515 section 2): the encoding of every JWS segment and JWK number.

#include <optional>
#include <string>
#include <string_view>

namespace pgwarden::auth {

/// The unpadded base64url text of `bytes`.
std::string base64url_encode(std::string_view bytes);
/// Strict decoding: the URL-safe alphabet only, no padding, no blanks, and
/// the unused low bits of the last digit zero, so one byte string has one
/// text. nullopt for anything else.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace pgwarden::auth
