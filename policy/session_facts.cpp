#include "policy/session_facts.hpp"

#include <array>

namespace pgwarden::policy {
namespace {

constexpr std::array<std::string_view, protocol_path_count> kPathNames = {
    "simple", "extended", "function_call", "copy", "replication"};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(ProtocolPath p) noexcept { return kPathNames[static_cast<std::size_t>(p)]; }

bool parse_protocol_path(std::string_view name, ProtocolPath& out) noexcept {
  for (std::size_t i = 0; i < kPathNames.size(); ++i) {
    if (iequals(name, kPathNames[i])) {
      out = static_cast<ProtocolPath>(i);
      return true;
    }
  }
  return false;
}

}  // namespace pgwarden::policy
