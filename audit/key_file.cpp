#include "audit/key_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace pgwarden::audit {

bool read_hmac_key(const std::string& path, std::string& key, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  key.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (key.ends_with("\r\n")) key.resize(key.size() - 2);
  else if (key.ends_with('\n')) key.pop_back();
  if (key.size() < min_hmac_key_bytes) {
    error = path + ": an HMAC key needs at least " + std::to_string(min_hmac_key_bytes) + " bytes";
    return false;
  }
  return true;
}

}  // namespace pgwarden::audit
