#include "policy/session_facts.hpp"

#include <array>

namespace pgwarden::policy {
namespace {

constexpr std::array<std::string_view, protocol_path_count> kPathNames = {
    "simple", "extended", "function_call", "copy", "replication"};
constexpr std::array<std::string_view, auth_method_count> kMethodNames = {
    "passthrough", "scram", "md5", "certificate", "token", "people"};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

template <class E, std::size_t N>
bool parse_name(const std::array<std::string_view, N>& names, std::string_view name, E& out) noexcept {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (iequals(name, names[i])) {
      out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view to_string(ProtocolPath p) noexcept { return kPathNames[static_cast<std::size_t>(p)]; }

bool parse_protocol_path(std::string_view name, ProtocolPath& out) noexcept {
  return parse_name(kPathNames, name, out);
}

std::string_view to_string(AuthMethod m) noexcept { return kMethodNames[static_cast<std::size_t>(m)]; }

bool parse_auth_method(std::string_view name, AuthMethod& out) noexcept { return parse_name(kMethodNames, name, out); }

}  // namespace pgwarden::policy
