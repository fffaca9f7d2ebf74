#pragma once
/// The HMAC key file (audit.hmac_key_file, `audit verify --hmac-key-file`):
/// its bytes are the key, less one trailing newline, so that
/// `openssl rand -hex 32 > key` makes a usable key. Read the same way by the
/// proxy and by verify, so both use the same key.

#include <string>

namespace pgwarden::audit {

/// Keys shorter than this are refused: too easy to guess.
inline constexpr std::size_t min_hmac_key_bytes = 16;

/// Reads `path` into `key`; false with `error` set when it cannot be read or
/// holds fewer than min_hmac_key_bytes.
bool read_hmac_key(const std::string& path, std::string& key, std::string& error);

}  // namespace pgwarden::audit
