#include "policy/database_catalog.hpp"

#include <gtest/gtest.h>

#include <string>

#include "policy/classifier.hpp"

namespace pgwarden::policy {
namespace {

constexpr std::uint32_t first_user_oid = 16384;

/// Rows a lookup could read, built up one object at a time.
struct Rows {
  CatalogRows rows;
  std::uint32_t next_oid = first_user_oid;

  std::uint32_t function(std::string schema, std::string name, char volatility, std::string language,
                         std::string body = "SELECT 1", bool security_definer = false) {
    CatalogRows::Function f;
    f.oid = next_oid++;
    f.schema = std::move(schema);
    f.name = std::move(name);
    f.volatility = volatility;
    f.language = std::move(language);
    f.security_definer = security_definer;
    f.atomic_body = false;
    f.body = std::move(body);
    rows.functions.push_back(f);
    return f.oid;
  }
  /// One of PostgreSQL's own functions, behind an operator or a cast.
  std::uint32_t builtin(std::string name, std::uint32_t oid) {
    CatalogRows::Function f;
    f.oid = oid;
    f.schema = "pg_catalog";
    f.name = std::move(name);
    f.language = "internal";
    f.builtin = true;
    rows.functions.push_back(f);
    return oid;
  }
  void op(std::string schema, std::string name, std::uint32_t function) {
    rows.operators.push_back({std::move(schema), std::move(name), function});
  }
  std::uint32_t type(std::string schema, std::string name, char kind, bool has_checks = false) {
    CatalogRows::Type t;
    t.oid = next_oid++;
    t.schema = std::move(schema);
    t.name = std::move(name);
    t.kind = kind;
    t.has_checks = has_checks;
    t.builtin_base = true;
    rows.types.push_back(t);
    return t.oid;
  }
};

/// The classes of each statement of `sql` once `rows`' catalog is applied.
std::string classes_with(const CatalogRows& rows, std::string_view sql) {
  const DatabaseCatalog catalog = DatabaseCatalog::build(rows);
  const ClassifiedText text = classify(sql);
  ClassifiedText scratch;
  const ClassifiedText& seen = apply_catalog(&catalog, text, scratch);
  std::string out;
  for (const StatementFacts& s : seen.statements) {
    if (!out.empty()) out += ';';
    for (std::size_t c = 0; c < statement_class_count; ++c)
      if (s.classes.contains(StatementClass(c))) out += std::string(to_string(StatementClass(c))) + ' ';
  }
  return out;
}

// A call of a function the database does not have stays FUNCTION.
TEST(DatabaseCatalog, UnknownFunctionStaysFunction) {
  Rows r;
  r.function("public", "report", 's', "sql");
  EXPECT_EQ(classes_with(r.rows, "SELECT no_such_function(1)"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT other.report()"), "READ FUNCTION ");
}

// A STABLE SQL function that only reads is no FUNCTION statement: the
// statement keeps its other classes.
TEST(DatabaseCatalog, StableSqlFunctionThatReadsIsCleared) {
  Rows r;
  r.function("public", "report", 's', "sql", "SELECT count(*) FROM orders WHERE id > $1");
  EXPECT_EQ(classes_with(r.rows, "SELECT report(1)"), "READ ");
  EXPECT_EQ(classes_with(r.rows, "SELECT public.report(1)"), "READ ");
  EXPECT_EQ(classes_with(r.rows, "UPDATE t SET a = report(1) WHERE id = 2"), "WRITE ");
}

// A VOLATILE PL/pgSQL function stays FUNCTION, and so does a STABLE one:
// its body may PERFORM a volatile function.
TEST(DatabaseCatalog, PlpgsqlFunctionStaysFunction) {
  Rows r;
  r.function("public", "audit_me", 'v', "plpgsql", "BEGIN INSERT INTO log VALUES (1); END");
  r.function("public", "peek", 's', "plpgsql", "BEGIN PERFORM audit_me(); END");
  EXPECT_EQ(classes_with(r.rows, "SELECT audit_me()"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT peek()"), "READ FUNCTION ");
}

// A C function's markings are not enforced: IMMUTABLE says nothing.
TEST(DatabaseCatalog, CLanguageImmutableStaysFunction) {
  Rows r;
  r.function("public", "fast_hash", 'i', "c", "fast_hash");
  EXPECT_EQ(classes_with(r.rows, "SELECT fast_hash('x')"), "READ FUNCTION ");
}

// A STABLE SQL function whose body calls a volatile one may write through
// it (PostgreSQL checks only the body's own statements).
TEST(DatabaseCatalog, StableSqlFunctionCallingAWriterStaysFunction) {
  Rows r;
  r.function("public", "writer", 'v', "plpgsql", "BEGIN INSERT INTO log VALUES (1); END");
  r.function("public", "wrapper", 's', "sql", "SELECT writer()");
  r.function("public", "reader", 'i', "sql", "SELECT 1");
  r.function("public", "outer_reader", 's', "sql", "SELECT reader() + 1");
  r.function("public", "files", 's', "sql", "SELECT pg_read_file('/etc/passwd')");
  EXPECT_EQ(classes_with(r.rows, "SELECT wrapper()"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT outer_reader()"), "READ ");
  EXPECT_EQ(classes_with(r.rows, "SELECT files()"), "READ FUNCTION ");
}

// A body is parsed at each call with the caller's standard_conforming_strings:
// one that is a read only when backslashes are not escapes is no read.
TEST(DatabaseCatalog, BodyMustReadUnderEitherStringSetting) {
  Rows r;
  const std::string tricky = "SELECT 'x\\', ';DELETE FROM t;--'";
  ASSERT_EQ(classify(tricky).statements.size(), 1u);  // a read as written (strings standard)
  ASSERT_EQ(classify(tricky, LexerSettings{false}).statements.size(), 2u);  // a DELETE with backslash escapes
  r.function("public", "tricky", 's', "sql", tricky);
  r.function("public", "plain", 's', "sql", "SELECT 'a\\b'");
  EXPECT_EQ(classes_with(r.rows, "SELECT tricky()"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT plain()"), "READ ");
}

// SECURITY DEFINER runs with its owner's rights; a recursive body is not
// decided; a body in BEGIN ATOMIC is not read.
TEST(DatabaseCatalog, SecurityDefinerRecursionAndAtomicBodiesStayFunction) {
  Rows r;
  r.function("public", "as_owner", 's', "sql", "SELECT 1", true);
  r.function("public", "loop", 's', "sql", "SELECT loop()");
  r.function("public", "atomic", 's', "sql", "");
  r.rows.functions.back().atomic_body = true;
  EXPECT_EQ(classes_with(r.rows, "SELECT as_owner()"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT loop()"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT atomic()"), "READ FUNCTION ");
}

// One volatile overload of a name is enough: pgwarden does not resolve
// argument types, so every overload must be safe.
TEST(DatabaseCatalog, OverloadedNameWithOneVolatileOverloadStaysFunction) {
  Rows r;
  r.function("public", "lookup", 's', "sql");
  r.function("public", "lookup", 'v', "sql", "INSERT INTO log VALUES (1)");
  EXPECT_EQ(classes_with(r.rows, "SELECT lookup(1)"), "READ FUNCTION ");
}

// Unqualified, a name may resolve to any schema on the session's
// search_path: a volatile function of that name in any schema keeps it FUNCTION.
TEST(DatabaseCatalog, UnqualifiedNameWithAVolatileNamesakeInAnotherSchemaStaysFunction) {
  Rows r;
  r.function("public", "lookup", 's', "sql");
  r.function("app", "lookup", 'v', "plpgsql", "BEGIN DELETE FROM t; END");
  EXPECT_EQ(classes_with(r.rows, "SELECT lookup(1)"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT public.lookup(1)"), "READ ");
}

// An operator runs its function: a volatile one keeps the statement FUNCTION,
// a safe one (here a built-in) clears it.
TEST(DatabaseCatalog, OperatorBackedByVolatileFunctionStaysFunction) {
  Rows r;
  const std::uint32_t bump = r.function("public", "bump", 'v', "plpgsql", "BEGIN UPDATE c SET n = n + 1; END");
  r.op("public", "<=+=>", bump);
  r.op("public", "===", r.builtin("texteq", 67));
  EXPECT_EQ(classes_with(r.rows, "SELECT 1 <=+=> 2"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT 'a' === 'b'"), "READ ");
  EXPECT_EQ(classes_with(r.rows, "SELECT 1 <<<>>> 2"), "READ FUNCTION ");
}

// Casts: an enum and a domain without CHECK are cleared; a domain with a
// CHECK, a composite type, and a type whose cast runs a volatile function are not.
TEST(DatabaseCatalog, CastsAreClearedOnlyForEnumsAndPlainDomains) {
  Rows r;
  r.type("public", "mood", 'e');
  r.type("public", "plain_text", 'd');
  r.type("public", "checked_text", 'd', true);
  r.type("public", "pair", 'c');
  const std::uint32_t tagged = r.type("public", "tagged", 'e');
  r.rows.casts.push_back({tagged, r.function("public", "to_tagged", 'v', "plpgsql", "BEGIN END")});
  EXPECT_EQ(classes_with(r.rows, "SELECT 'happy'::mood"), "READ ");
  EXPECT_EQ(classes_with(r.rows, "SELECT 'x'::plain_text"), "READ ");
  EXPECT_EQ(classes_with(r.rows, "SELECT 'x'::checked_text"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT '(1,2)'::pair"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT 'a'::tagged"), "READ FUNCTION ");
}

// A statement that is FUNCTION for a reason of its own (a built-in with an
// effect, a DO block) stays FUNCTION even when its other calls are cleared.
TEST(DatabaseCatalog, StatementFunctionForAnotherReasonStaysFunction) {
  Rows r;
  r.function("public", "report", 's', "sql");
  EXPECT_EQ(classes_with(r.rows, "SELECT report(), pg_terminate_backend(1)"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "SELECT report(), nextval('s')"), "READ FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "DO $$ BEGIN PERFORM report(); END $$"), "FUNCTION ");
  EXPECT_EQ(classes_with(r.rows, "CALL report()"), "FUNCTION MISC ");
}

// Each statement of a multi-statement text is cleared on its own.
TEST(DatabaseCatalog, EachStatementIsDecidedOnItsOwn) {
  Rows r;
  r.function("public", "report", 's', "sql");
  r.function("public", "writer", 'v', "plpgsql", "BEGIN END");
  EXPECT_EQ(classes_with(r.rows, "SELECT report(); SELECT writer()"), "READ ;READ FUNCTION ");
}

// Without a catalog, or when nothing is cleared, the text is returned as is.
TEST(DatabaseCatalog, NothingClearedReturnsTheSameText) {
  const ClassifiedText text = classify("SELECT report()");
  ClassifiedText scratch;
  EXPECT_EQ(&apply_catalog(nullptr, text, scratch), &text);
  const DatabaseCatalog empty = DatabaseCatalog::build({});
  EXPECT_EQ(&apply_catalog(&empty, text, scratch), &text);
  EXPECT_TRUE(text.statements[0].classes.contains(StatementClass::Function));
}

// What the classifier records for the catalog to reconsider.
TEST(DatabaseCatalog, ClassifierRecordsTheCallsItCouldNotVouchFor) {
  const ClassifiedText text = classify("SELECT app.f(x::mood) FROM t WHERE a <=+=> b");
  ASSERT_EQ(text.statements.size(), 1u);
  const StatementFacts& s = text.statements[0];
  EXPECT_FALSE(s.function_settled);
  const std::vector<CatalogCall> expected = {{CatalogCall::Kind::Function, "app", "f"},
                                             {CatalogCall::Kind::Cast, "", "mood"},
                                             {CatalogCall::Kind::Operator, "", "<=+=>"}};
  EXPECT_EQ(s.catalog_calls, expected);
  EXPECT_TRUE(classify("SELECT nextval('s')").statements[0].function_settled);
}

}  // namespace
}  // namespace pgwarden::policy
