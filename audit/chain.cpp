#include "audit/chain.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cassert>
#include <charconv>
#include <stdexcept>

#include "audit/json_writer.hpp"

namespace pgwarden::audit {
namespace {

constexpr std::string_view hash_key = ",\"hash\":\"";
constexpr std::string_view hmac_key_text = ",\"hmac\":\"";
constexpr std::size_t member_size = 9 + 64 + 1;  // ,"hash":"<64 hex>"

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

/// The 64 hex digits of a `,"name":"<hex>"` member ending at `end`, or empty.
std::string_view member_before(std::string_view line, std::size_t end, std::string_view key) {
  if (end < member_size || line.substr(end - member_size, key.size()) != key || line[end - 1] != '"') return {};
  std::string_view hex = line.substr(end - 65, 64);
  return is_hex(hex) ? hex : std::string_view{};
}

void check(int ok, const char* what) {
  // Only fails when OpenSSL itself is broken (no SHA-256 provider): not recoverable.
  if (ok != 1) throw std::runtime_error(what);
}

}  // namespace

std::string to_hex(const Digest& d) {
  std::string s;
  append_hex(s, std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  return s;
}

bool from_hex(std::string_view hex, Digest& out) {
  if (hex.size() != 64 || !is_hex(hex)) return false;
  for (std::size_t i = 0; i < 32; ++i) std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, out[i], 16);
  return true;
}

bool split_line(std::string_view line, LineParts& out) {
  if (line.empty() || line.back() != '}') return false;
  std::size_t end = line.size() - 1;
  out.hmac_hex = member_before(line, end, hmac_key_text);
  if (!out.hmac_hex.empty()) end -= member_size;
  out.hash_hex = member_before(line, end, hash_key);
  if (out.hash_hex.empty()) return false;
  out.canonical_prefix = line.substr(0, end - member_size);
  return true;
}

struct RecordHasher::EvpState {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* ctx = nullptr;
};

RecordHasher::RecordHasher(std::string_view hmac_key) : md_(new EvpState) {
  md_->md = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // fetched once, not per record
  md_->ctx = EVP_MD_CTX_new();
  check(md_->md && md_->ctx, "OpenSSL: SHA-256 unavailable");
  if (hmac_key.empty()) return;
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  EVP_MAC_free(mac);  // the context holds its own reference
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                         OSSL_PARAM_construct_end()};
  check(ctx && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(hmac_key.data()), hmac_key.size(), params),
        "OpenSSL: HMAC-SHA256 unavailable");
  mac_ctx_ = ctx;
}

RecordHasher::~RecordHasher() {
  EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(mac_ctx_));
  EVP_MD_CTX_free(md_->ctx);
  EVP_MD_free(md_->md);
  delete md_;
}

Digest RecordHasher::hash(std::string_view canonical_prefix) {
  Digest d;
  unsigned int n = 0;
  check(EVP_DigestInit_ex(md_->ctx, md_->md, nullptr), "EVP_DigestInit_ex");
  check(EVP_DigestUpdate(md_->ctx, canonical_prefix.data(), canonical_prefix.size()), "EVP_DigestUpdate");
  check(EVP_DigestUpdate(md_->ctx, "}", 1), "EVP_DigestUpdate");
  check(EVP_DigestFinal_ex(md_->ctx, d.data(), &n), "EVP_DigestFinal_ex");
  return d;
}

Digest RecordHasher::hmac(const Digest& digest) {
  assert(has_key());
  auto* ctx = static_cast<EVP_MAC_CTX*>(mac_ctx_);
  Digest d;
  std::size_t n = 0;
  // A null key re-initialises with the key given at construction.
  check(EVP_MAC_init(ctx, nullptr, 0, nullptr), "EVP_MAC_init");
  check(EVP_MAC_update(ctx, digest.data(), digest.size()), "EVP_MAC_update");
  check(EVP_MAC_final(ctx, d.data(), &n, d.size()), "EVP_MAC_final");
  return d;
}

void RecordHasher::append_line(std::string_view body, ChainHead& head, std::string& out) {
  assert(body.size() > 2 && body.front() == '{' && body.back() == '}');
  const std::size_t start = out.size();
  char seq[24];
  const auto r = std::to_chars(seq, seq + sizeof seq, head.seq + 1);
  out.append("{\"seq\":");
  out.append(seq, r.ptr);
  out.push_back(',');
  out.append(body.substr(1, body.size() - 2));
  out.append(",\"prev_hash\":\"");
  append_hex(out, std::string_view(reinterpret_cast<const char*>(head.hash.data()), head.hash.size()));
  out.push_back('"');
  const Digest h = hash(std::string_view(out).substr(start));
  out.append(hash_key);
  append_hex(out, std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
  out.push_back('"');
  if (has_key()) {
    const Digest m = hmac(h);
    out.append(hmac_key_text);
    append_hex(out, std::string_view(reinterpret_cast<const char*>(m.data()), m.size()));
    out.push_back('"');
  }
  out.append("}\n");
  head.seq += 1;
  head.hash = h;
}

}  // namespace pgwarden::audit
