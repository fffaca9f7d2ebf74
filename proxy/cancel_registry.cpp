#include "proxy/cancel_registry.hpp"

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
  std::string key = random_bytes(key_length);
  std::lock_guard lock(mutex_);
  if (next_id_ == 0) {  // start at a random id so ids do not reveal the session count
    const std::string seed = random_bytes(4);
    next_id_ = (static_cast<std::uint32_t>(static_cast<unsigned char>(seed[0])) << 16 |
                static_cast<unsigned char>(seed[1]) << 8 | static_cast<unsigned char>(seed[2])) + 1;
  }
  std::uint32_t id;
  do {
    id = next_id_++ & 0x7fffffff;  // positive, as a real backend pid would be
  } while (id == 0 || entries_.contains(id));
  entries_.emplace(id, Entry{key, std::move(target)});
  return ClientKey{id, std::move(key)};
}

void CancelRegistry::remove(std::uint32_t process_id) {
  std::lock_guard lock(mutex_);
  entries_.erase(process_id);
}

std::optional<CancelTarget> CancelRegistry::find(std::uint32_t process_id,
                                                 std::string_view secret_key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(process_id);
  if (it == entries_.end()) return std::nullopt;
  const std::string& expected = it->second.client_key;
  if (expected.size() != secret_key.size() ||
      CRYPTO_memcmp(expected.data(), secret_key.data(), expected.size()) != 0) {
    return std::nullopt;
  }
  return it->second.target;
}

std::size_t CancelRegistry::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace pgwarden::proxy
