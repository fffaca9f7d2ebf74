#include "policy/statement_facts.hpp"

#include <array>
#include <cctype>

namespace pgwarden::policy {
namespace {

constexpr std::array<std::string_view, statement_class_count> class_names = {
    "READ", "WRITE", "FUNCTION", "ROLE", "DDL", "MISC", "MISC_SET"};
constexpr std::array<std::string_view, 3> access_names = {"read", "write", "ddl"};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::string_view to_string(StatementClass c) noexcept {
  auto i = static_cast<std::size_t>(c);
  return i < class_names.size() ? class_names[i] : std::string_view("?");
}

bool parse_statement_class(std::string_view name, StatementClass& out) noexcept {
  for (std::size_t i = 0; i < class_names.size(); ++i) {
    if (iequals(name, class_names[i])) {
      out = static_cast<StatementClass>(i);
      return true;
    }
  }
  return false;
}

std::string_view to_string(Access a) noexcept {
  auto i = static_cast<std::size_t>(a);
  return i < access_names.size() ? access_names[i] : std::string_view("?");
}

bool parse_access(std::string_view name, Access& out) noexcept {
  for (std::size_t i = 0; i < access_names.size(); ++i) {
    if (iequals(name, access_names[i])) {
      out = static_cast<Access>(i);
      return true;
    }
  }
  return false;
}

}  // namespace pgwarden::policy
