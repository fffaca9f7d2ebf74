#include "proxy/session/cancel_registry.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace pgwarden::proxy {
namespace {

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
  return out;
}

}  // namespace

CancelRegistry::ClientKey CancelRegistry::add(CancelTarget target, std::size_t key_length) {
  ClientKey key{target.process_id, random_bytes(key_length)};
  std::lock_guard lock(mutex_);
  entries_.emplace(key.process_id, Entry{key.secret_key, std::move(target)});
  return key;
}

void CancelRegistry::remove(const ClientKey& key) {
  std::lock_guard lock(mutex_);
  auto [first, last] = entries_.equal_range(key.process_id);
  for (auto it = first; it != last; ++it) {
    if (it->second.client_key == key.secret_key) {
      entries_.erase(it);
      return;
    }
  }
}

std::optional<CancelTarget> CancelRegistry::find(std::uint32_t process_id,
                                                 std::string_view secret_key) const {
  std::lock_guard lock(mutex_);
  auto [first, last] = entries_.equal_range(process_id);
  for (auto it = first; it != last; ++it) {
    const std::string& expected = it->second.client_key;
    if (expected.size() == secret_key.size() &&
        CRYPTO_memcmp(expected.data(), secret_key.data(), expected.size()) == 0) {
      return it->second.target;
    }
  }
  return std::nullopt;
}

std::size_t CancelRegistry::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace pgwarden::proxy
