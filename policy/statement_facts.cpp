#include "policy/statement_facts.hpp"

#include <algorithm>
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

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace

void add_touched(StatementFacts& outer, const StatementFacts& inner) {
  for (const ObjectRef& o : inner.objects) {
    if (std::find(outer.objects.begin(), outer.objects.end(), o) == outer.objects.end()) outer.objects.push_back(o);
  }
  for (const std::string& fn : inner.functions) add_unique(outer.functions, fn);
}

void add_ran(StatementFacts& outer, const StatementFacts& inner) {
  add_touched(outer, inner);
  for (const std::string& t : inner.effective_tags) add_unique(outer.effective_tags, t);
  for (std::size_t c = 0; c < statement_class_count; ++c) {
    if (inner.classes.contains(static_cast<StatementClass>(c))) outer.classes.insert(static_cast<StatementClass>(c));
  }
  for (const CatalogCall& c : inner.catalog_calls) {
    if (std::find(outer.catalog_calls.begin(), outer.catalog_calls.end(), c) == outer.catalog_calls.end())
      outer.catalog_calls.push_back(c);
  }
  outer.function_settled |= inner.function_settled;
  outer.update_or_delete_without_where |= inner.update_or_delete_without_where;
  outer.dynamic_sql |= inner.dynamic_sql;
  outer.hidden_write |= inner.hidden_write || inner.classes.contains(StatementClass::Write);
  outer.runs_program |= inner.runs_program;
  outer.server_file_access |= inner.server_file_access;
  outer.signals_backends |= inner.signals_backends;
  outer.large_objects |= inner.large_objects;
  outer.remote_database |= inner.remote_database;
  outer.locks |= inner.locks;
  outer.notify |= inner.notify;
  outer.maintenance |= inner.maintenance;
  outer.read_only_off |= inner.read_only_off;
  if (inner.role_change) {
    outer.role_change = true;
    outer.role_target = inner.role_target;
  }
}

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
