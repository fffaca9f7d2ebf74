#pragma once
/// What one database's own catalog says about the functions, operators and
/// cast target types the classifier does not know (policy/function_catalog
/// knows only PostgreSQL 15's built-ins). Built once from the rows a lookup
/// read, immutable after, and applied at decision time: classification is
/// cached by text across databases, so it never holds a database's answers.
///
/// A call is cleared (it no longer makes its statement FUNCTION) only when
/// the catalog shows it cannot change anything. Everything else stays
/// FUNCTION, as without a catalog:
/// - a function is side-effect free when it is one of PostgreSQL's own that
///   function_info() calls side-effect free, or when it is LANGUAGE sql,
///   STABLE or IMMUTABLE, not SECURITY DEFINER, with a body in `AS '...'`
///   (not BEGIN ATOMIC) whose every statement is a plain read whose calls
///   this same catalog clears. PostgreSQL refuses data-modifying statements
///   in a non-volatile SQL function's body but not in the functions that
///   body calls, hence the body is read. PL/pgSQL and every other language
///   stay FUNCTION: their bodies can call volatile functions (PERFORM,
///   EXECUTE) and a C function's markings are not enforced at all.
///   SECURITY DEFINER stays FUNCTION: it runs with its owner's rights.
/// - a name resolves to every function of that name: in the schema written,
///   or, unqualified, in every schema of the database (pgwarden does not
///   know the session's search_path, so every candidate must be safe).
///   Every overload must be side-effect free, and at least one must exist.
/// - an operator is cleared when every operator of that name (same
///   resolution) runs a side-effect free function.
/// - a cast to a type is cleared when the type is an enum, or a domain
///   without CHECK constraints over one of PostgreSQL's own types, and every
///   cast to it (pg_cast) is without a function or with a side-effect free
///   one. Composite, range and base types a user created stay FUNCTION
///   (their input functions and columns' domains can run anything).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// Rows of the lookup, as read from the database.
struct CatalogRows {
  /// pg_proc: every function a user created, and the built-ins behind the
  /// operators and casts below.
  struct Function {
    std::uint32_t oid = 0;
    std::string schema;
    std::string name;
    char volatility = 'v';      ///< provolatile: i, s, v
    std::string language;       ///< pg_language.lanname
    bool security_definer = true;
    bool atomic_body = true;    ///< BEGIN ATOMIC / RETURN (prosqlbody): not read
    bool builtin = false;       ///< created by initdb (oid below 16384)
    std::string body;           ///< prosrc
  };
  /// pg_operator: operators a user created, with the function they run.
  struct Operator {
    std::string schema;
    std::string name;
    std::uint32_t function = 0;  ///< oprcode; 0 for a shell operator
  };
  /// pg_type: types a user created (arrays excluded).
  struct Type {
    std::uint32_t oid = 0;
    std::string schema;
    std::string name;
    char kind = 'b';               ///< typtype: b, c, d, e, m, p, r
    bool has_checks = true;        ///< a domain with CHECK constraints
    bool builtin_base = false;     ///< a domain over one of PostgreSQL's own types
  };
  /// pg_cast: casts to the types above.
  struct Cast {
    std::uint32_t target = 0;    ///< casttarget
    std::uint32_t function = 0;  ///< castfunc; 0 for binary or I/O coercion
  };
  std::vector<Function> functions;
  std::vector<Operator> operators;
  std::vector<Type> types;
  std::vector<Cast> casts;
};

class DatabaseCatalog {
 public:
  /// Decides every name of `rows` once; the result never changes.
  static DatabaseCatalog build(const CatalogRows& rows);

  /// True when the catalog shows `call` cannot change anything.
  bool clears(const CatalogCall& call) const;
  /// True when `s` is FUNCTION only because of catalog calls, and this
  /// catalog clears every one of them.
  bool clears_function(const StatementFacts& s) const;

  /// How many names the catalog holds as side-effect free (for logs).
  std::size_t safe_names() const;

 private:
  /// Per name: true when every object of that name is side-effect free.
  /// Keys: "schema.name" and, for unqualified use, "\x01name" over all schemas.
  using Verdicts = std::map<std::string, bool, std::less<>>;
  Verdicts functions_;
  Verdicts operators_;
  Verdicts types_;
};

using DatabaseCatalogPtr = std::shared_ptr<const DatabaseCatalog>;

/// `text` as `catalog` sees it: FUNCTION removed from every statement the
/// catalog clears (everything else kept). Returns `text` itself when nothing
/// changes (catalog null, or no statement cleared), else `scratch` filled.
const ClassifiedText& apply_catalog(const DatabaseCatalog* catalog, const ClassifiedText& text,
                                    ClassifiedText& scratch);

/// True when some statement of `text` is FUNCTION only because of calls a
/// database's catalog may clear: the only case worth asking for one.
bool may_clear(const ClassifiedText& text) noexcept;

}  // namespace pgwarden::policy
