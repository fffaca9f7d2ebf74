#pragma once
/// The hash chain. A record body `{...}` becomes the line
///
///   {"seq":N,<body members>,"prev_hash":"<hex>","hash":"<hex>"[,"hmac":"<hex>"]}\n
///
/// Its canonical bytes are the line up to (not including) `,"hash":` followed
/// by `}`: the record with its seq and the previous record's hash, without
/// its own hash and HMAC. hash = SHA-256(canonical bytes), so each hash
/// covers the one before it; hmac = HMAC-SHA256(key, the 32 bytes of hash),
/// which someone without the key cannot recompute after editing a record.
/// The first record of a chain has prev_hash = 64 zeros.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgwarden::audit {

/// A SHA-256 digest.
using Digest = std::array<unsigned char, 32>;

/// Hex form of a digest (64 lowercase hex digits).
std::string to_hex(const Digest& d);
/// Reads 64 hex digits; false when `hex` is anything else.
bool from_hex(std::string_view hex, Digest& out);

/// Where a chain stands: the last record's seq and hash (zeros before the first).
struct ChainHead {
  std::uint64_t seq = 0;
  Digest hash{};
};

/// The parts of a chained line a verifier needs, found without parsing JSON.
struct LineParts {
  std::string_view canonical_prefix;  ///< line up to `,"hash":` (add `}` for the canonical bytes)
  std::string_view hash_hex;
  std::string_view hmac_hex;          ///< empty when the line has no hmac
};
/// Splits a line (without its newline); false when it does not end the way
/// the writer ends every line.
bool split_line(std::string_view line, LineParts& out);

/// SHA-256 and HMAC-SHA256 through OpenSSL EVP, with contexts reused from
/// record to record. One per thread.
class RecordHasher {
 public:
  /// `hmac_key` raw bytes; empty = no HMAC.
  explicit RecordHasher(std::string_view hmac_key = {});
  ~RecordHasher();
  RecordHasher(const RecordHasher&) = delete;
  RecordHasher& operator=(const RecordHasher&) = delete;

  bool has_key() const { return mac_ctx_ != nullptr; }
  /// SHA-256 of `canonical_prefix` followed by `}`.
  Digest hash(std::string_view canonical_prefix);
  /// HMAC-SHA256(key, digest); requires has_key().
  Digest hmac(const Digest& digest);

  /// Appends the chained line for `body` (a JSON object with at least one
  /// member) to `out` as record head.seq + 1, and advances `head`.
  void append_line(std::string_view body, ChainHead& head, std::string& out);

 private:
  struct EvpState;
  EvpState* md_ = nullptr;
  void* mac_ctx_ = nullptr;  ///< EVP_MAC_CTX*, initialised with the key
};

}  // namespace pgwarden::audit
