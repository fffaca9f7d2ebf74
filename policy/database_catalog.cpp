#include "policy/database_catalog.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "policy/classifier.hpp"
#include "policy/function_catalog.hpp"

namespace pgwarden::policy {
namespace {

/// The key of a name written qualified, or unqualified (every schema).
std::string qualified_key(std::string_view schema, std::string_view name) {
  std::string key(schema);
  key += '.';
  key += name;
  return key;
}
std::string any_schema_key(std::string_view name) { return "\x01" + std::string(name); }
std::string key_of(const CatalogCall& c) {
  return c.schema.empty() ? any_schema_key(c.name) : qualified_key(c.schema, c.name);
}

/// Decides the functions of `rows`, each once; a function whose body reaches
/// itself again (recursion) is not side-effect free.
class Builder {
 public:
  explicit Builder(const CatalogRows& rows) : rows_(rows), state_(rows.functions.size(), State::Open) {
    for (std::size_t i = 0; i < rows.functions.size(); ++i) {
      const CatalogRows::Function& f = rows.functions[i];
      by_oid_.emplace(f.oid, i);
      if (f.builtin) continue;  // the classifier knows these by name itself
      by_name_[qualified_key(f.schema, f.name)].push_back(i);
      by_name_[any_schema_key(f.name)].push_back(i);
    }
  }

  /// True when the function with `oid` is side-effect free; false when unknown.
  bool safe_oid(std::uint32_t oid) {
    const auto it = by_oid_.find(oid);
    return it != by_oid_.end() && safe(it->second);
  }

  /// True when at least one function has this name key and every one is safe.
  bool safe_name(const std::string& key) {
    const auto it = by_name_.find(key);
    if (it == by_name_.end() || it->second.empty()) return false;
    return std::all_of(it->second.begin(), it->second.end(), [&](std::size_t i) { return safe(i); });
  }

  const std::unordered_map<std::string, std::vector<std::size_t>>& names() const { return by_name_; }

  /// True when `s` is a plain read whose every call is cleared by this catalog.
  bool reads_only(const StatementFacts& s, const std::function<bool(const CatalogCall&)>& clears) {
    ClassSet allowed;
    allowed.insert(StatementClass::Read);
    allowed.insert(StatementClass::Function);
    if (s.unparseable || s.command_tag != "SELECT" || (s.classes.bits() & ~allowed.bits()) != 0) return false;
    if (s.update_or_delete_without_where || s.dynamic_sql || s.role_change || s.hidden_write || s.runs_program ||
        s.server_file_access || s.signals_backends || s.large_objects || s.remote_database || s.locks ||
        s.notify || s.maintenance || s.read_only_off)
      return false;
    if (!s.classes.contains(StatementClass::Function)) return true;
    if (s.function_settled || s.catalog_calls.empty()) return false;
    return std::all_of(s.catalog_calls.begin(), s.catalog_calls.end(), clears);
  }

  /// What the catalog being built says of `call` (functions decided so far or now).
  std::function<bool(const CatalogCall&)> clears;

 private:
  enum class State : std::uint8_t { Open, Deciding, Safe, Unsafe };

  bool safe(std::size_t i) {
    if (state_[i] == State::Safe) return true;
    if (state_[i] != State::Open) return false;  // Unsafe, or a cycle through its own body
    state_[i] = State::Deciding;
    const bool ok = decide(rows_.functions[i]);
    state_[i] = ok ? State::Safe : State::Unsafe;
    return ok;
  }

  bool decide(const CatalogRows::Function& f) {
    if (f.builtin) {
      const FunctionInfo info = function_info(f.schema, f.name);
      return info.builtin && info.side_effect_free && info.effects == 0;
    }
    if ((f.volatility != 'i' && f.volatility != 's') || f.language != "sql" || f.security_definer || f.atomic_body)
      return false;
    // The body is parsed when called, with the caller's
    // standard_conforming_strings: it must be a read either way.
    for (bool standard_strings : {true, false}) {
      const ClassifiedText body = classify(f.body, LexerSettings{standard_strings});
      if (body.unparseable || body.statements.empty()) return false;
      if (!std::all_of(body.statements.begin(), body.statements.end(),
                       [&](const StatementFacts& s) { return reads_only(s, clears); }))
        return false;
    }
    return true;
  }

  const CatalogRows& rows_;
  std::vector<State> state_;
  std::unordered_map<std::uint32_t, std::size_t> by_oid_;
  std::unordered_map<std::string, std::vector<std::size_t>> by_name_;
};

}  // namespace

DatabaseCatalog DatabaseCatalog::build(const CatalogRows& rows) {
  DatabaseCatalog catalog;
  Builder b(rows);

  // Operators and types, decided from the functions they run.
  std::unordered_map<std::string, bool> operators;
  for (const CatalogRows::Operator& o : rows.operators) {
    const bool ok = o.function != 0 && b.safe_oid(o.function);
    for (const std::string& key : {qualified_key(o.schema, o.name), any_schema_key(o.name)}) {
      auto [it, fresh] = operators.emplace(key, ok);
      if (!fresh) it->second = it->second && ok;
    }
  }
  std::unordered_map<std::string, bool> types;
  for (const CatalogRows::Type& t : rows.types) {
    bool ok = t.kind == 'e' || (t.kind == 'd' && !t.has_checks && t.builtin_base);
    for (const CatalogRows::Cast& c : rows.casts)
      if (ok && c.target == t.oid && c.function != 0) ok = b.safe_oid(c.function);
    for (const std::string& key : {qualified_key(t.schema, t.name), any_schema_key(t.name)}) {
      auto [it, fresh] = types.emplace(key, ok);
      if (!fresh) it->second = it->second && ok;
    }
  }
  auto verdict = [](const std::unordered_map<std::string, bool>& m, const std::string& key) {
    const auto it = m.find(key);
    return it != m.end() && it->second;
  };
  b.clears = [&](const CatalogCall& c) {
    switch (c.kind) {
      case CatalogCall::Kind::Function: return b.safe_name(key_of(c));
      case CatalogCall::Kind::Operator: return verdict(operators, key_of(c));
      case CatalogCall::Kind::Cast: return verdict(types, key_of(c));
    }
    return false;
  };
  for (const auto& [key, unused] : b.names()) catalog.functions_.emplace(key, b.safe_name(key));
  catalog.operators_.insert(operators.begin(), operators.end());
  catalog.types_.insert(types.begin(), types.end());
  return catalog;
}

bool DatabaseCatalog::clears(const CatalogCall& call) const {
  const Verdicts& v = call.kind == CatalogCall::Kind::Function   ? functions_
                      : call.kind == CatalogCall::Kind::Operator ? operators_
                                                                 : types_;
  const auto it = v.find(key_of(call));
  return it != v.end() && it->second;
}

bool DatabaseCatalog::clears_function(const StatementFacts& s) const {
  if (!s.classes.contains(StatementClass::Function) || s.function_settled || s.catalog_calls.empty()) return false;
  return std::all_of(s.catalog_calls.begin(), s.catalog_calls.end(),
                     [&](const CatalogCall& c) { return clears(c); });
}

std::size_t DatabaseCatalog::safe_names() const {
  std::size_t n = 0;
  for (const Verdicts* v : {&functions_, &operators_, &types_})
    for (const auto& [key, ok] : *v) n += ok && key[0] != '\x01';
  return n;
}

const ClassifiedText& apply_catalog(const DatabaseCatalog* catalog, const ClassifiedText& text,
                                    ClassifiedText& scratch) {
  if (catalog == nullptr) return text;
  const auto cleared = [&](const StatementFacts& s) { return catalog->clears_function(s); };
  if (std::none_of(text.statements.begin(), text.statements.end(), cleared)) return text;
  scratch = text;
  for (StatementFacts& s : scratch.statements)
    if (cleared(s)) s.classes.erase(StatementClass::Function);
  return scratch;
}

bool may_clear(const ClassifiedText& text) noexcept {
  for (const StatementFacts& s : text.statements)
    if (s.classes.contains(StatementClass::Function) && !s.function_settled && !s.catalog_calls.empty()) return true;
  return false;
}

}  // namespace pgwarden::policy
