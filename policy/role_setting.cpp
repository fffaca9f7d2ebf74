#include "policy/role_setting.hpp"

#include <cctype>

#include "policy/startup_settings.hpp"

namespace pgwarden::policy {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// The value of `NAME=VALUE` when NAME is pgwarden.role.
std::optional<std::string> role_of(std::string_view assignment) {
  const std::size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || !iequals(assignment.substr(0, eq), role_setting_name)) return std::nullopt;
  return std::string(assignment.substr(eq + 1));
}

// A word escaped so that the server's split reads it back unchanged.
void append_word(std::string& out, std::string_view word) {
  if (!out.empty()) out += ' ';
  for (char c : word) {
    if (c == '\\' || std::isspace(static_cast<unsigned char>(c))) out += '\\';
    out += c;
  }
}

// `options` without the role's switches; true when it held one.
bool strip_options(std::string_view options, std::optional<std::string>& role, std::string& rest) {
  const std::vector<std::string> words = split_startup_options(options);
  bool found = false;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    std::optional<std::string> value;
    std::size_t used = 1;
    if (w == "-c" && i + 1 < words.size()) {
      value = role_of(words[i + 1]);
      used = 2;
    } else if (w.starts_with("-c")) {
      value = role_of(std::string_view(w).substr(2));
    } else if (w.starts_with("--")) {
      value = role_of(std::string_view(w).substr(2));
    }
    if (value) {
      role = std::move(value);
      found = true;
      i += used - 1;
      continue;
    }
    append_word(rest, w);
  }
  return found;
}

}  // namespace

RoleSetting take_role_setting(std::span<const std::pair<std::string_view, std::string_view>> parameters) {
  RoleSetting out;
  for (const auto& [name, value] : parameters) {
    if (iequals(name, role_setting_name)) {
      out.role = std::string(value);
      continue;
    }
    if (name == "options") {
      std::string rest;
      if (strip_options(value, out.role, rest)) {
        if (!rest.empty()) out.parameters.emplace_back(name, std::move(rest));
        continue;
      }
    }
    out.parameters.emplace_back(name, value);
  }
  return out;
}

}  // namespace pgwarden::policy
