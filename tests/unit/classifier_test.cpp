#include "policy/classifier.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "policy/parse_node.hpp"

namespace pgwarden::policy {
namespace {

// ---- corpus file --------------------------------------------------------

struct Expected {
  std::string tag;
  std::vector<std::string> classes;
  std::vector<std::string> effective;  // empty: just the tag
  bool check_objects = false;
  std::vector<std::string> objects;
  bool check_functions = false;
  std::vector<std::string> functions;
  std::vector<std::string> flags;
};

struct Case {
  int line = 0;
  std::string sql;
  std::vector<Expected> statements;
};

std::string trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(' ');
  std::size_t e = s.find_last_not_of(' ');
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  while (true) {
    std::size_t p = s.find(sep);
    std::string item = trim(s.substr(0, p));
    if (!item.empty()) out.push_back(item);
    if (p == std::string_view::npos) return out;
    s.remove_prefix(p + sep.size());
  }
}

Expected parse_expected(std::string_view line) {
  std::vector<std::string> parts = split(line, " | ");
  Expected e;
  e.tag = parts.at(0);
  if (parts.size() > 1 && parts[1] != "-") e.classes = split(parts[1], ", ");
  for (std::size_t i = 2; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    std::size_t colon = p.find(": ");
    std::string key(p.substr(0, colon));
    std::vector<std::string> items = split(p.substr(colon + 2), ", ");
    if (key == "eff") e.effective = items;
    if (key == "obj") e.check_objects = true, e.objects = items;
    if (key == "fn") e.check_functions = true, e.functions = items;
    if (key == "flags") e.flags = items;
  }
  return e;
}

std::vector<Case> load_corpus() {
  std::ifstream in(std::string(PGWARDEN_TEST_DATA) + "/classifier/corpus.txt");
  std::vector<Case> cases;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.rfind(">> ", 0) == 0 && !cases.empty())
      cases.back().sql += "\n" + line.substr(3);
    else if (line.rfind("> ", 0) == 0)
      cases.push_back(Case{n, line.substr(2), {}});
    else if (line.rfind("= ", 0) == 0 && !cases.empty())
      cases.back().statements.push_back(parse_expected(line.substr(2)));
  }
  return cases;
}

// ---- actual facts in the corpus notation ---------------------------------

std::vector<std::string> class_names(ClassSet set) {
  std::vector<std::string> out;
  for (std::size_t c = 0; c < statement_class_count; ++c)
    if (set.contains(static_cast<StatementClass>(c))) out.emplace_back(to_string(static_cast<StatementClass>(c)));
  return out;
}

std::vector<std::string> object_names(const std::vector<ObjectRef>& objects) {
  std::vector<std::string> out;
  for (const ObjectRef& o : objects)
    out.push_back((o.schema.empty() ? "" : o.schema + ".") + o.name + ":" + std::string(to_string(o.access)));
  return out;
}

std::vector<std::string> flag_names(const StatementFacts& f) {
  std::vector<std::string> out;
  if (f.update_or_delete_without_where) out.push_back("nowhere");
  if (f.dynamic_sql) out.push_back("dynamic");
  if (f.role_change) out.push_back("role=" + f.role_target);
  if (f.hidden_write) out.push_back("hidden");
  if (f.runs_program) out.push_back("program");
  if (f.server_file_access) out.push_back("file");
  if (f.signals_backends) out.push_back("signals");
  if (f.large_objects) out.push_back("lo");
  if (f.remote_database) out.push_back("remote");
  if (f.locks) out.push_back("locks");
  if (f.notify) out.push_back("notify");
  if (f.maintenance) out.push_back("maintenance");
  if (f.read_only_off) out.push_back("rw");
  if (f.unparseable) out.push_back("unparseable");
  if (!f.prepared_name.empty()) out.push_back("prepared=" + f.prepared_name);
  return out;
}

void expect_statement(const Expected& e, const StatementFacts& f) {
  EXPECT_EQ(f.command_tag, e.tag);
  EXPECT_EQ(class_names(f.classes), e.classes);
  EXPECT_EQ(f.effective_tags, e.effective.empty() ? std::vector<std::string>{e.tag} : e.effective);
  if (e.check_objects) {
    EXPECT_EQ(object_names(f.objects), e.objects);
  }
  if (e.check_functions) {
    EXPECT_EQ(f.functions, e.functions);
  }
  EXPECT_EQ(flag_names(f), e.flags);
}

// Every statement of the corpus (all command families and every evasion of
// issue 4) gets the tag, classes, objects and flags written next to it.
TEST(ClassifierCorpus, EveryStatementIsClassifiedAsExpected) {
  std::vector<Case> cases = load_corpus();
  ASSERT_GE(cases.size(), 250u);
  for (const Case& c : cases) {
    SCOPED_TRACE("corpus.txt:" + std::to_string(c.line) + ": " + c.sql);
    ClassifiedText t = classify(c.sql);
    ASSERT_EQ(t.statements.size(), c.statements.size());
    for (std::size_t i = 0; i < c.statements.size(); ++i) expect_statement(c.statements[i], t.statements[i]);
  }
}

// ---- every syntax that calls a function (issue 17) -------------------------

struct SyntaxCase {
  const char* syntax;    // the grammar's name for it
  const char* sql;
  const char* function;  // what the facts name the call
  bool function_class;   // whether the statement is a FUNCTION statement
};

// Each syntax PostgreSQL 15 resolves to a function call (a FuncCall of the
// grammar, with COERCE_SQL_SYNTAX or not, or one that parse analysis makes
// from another node) names the function; a FUNCTION statement when the
// function may change something.
const SyntaxCase syntax_cases[] = {
    {"call", "SELECT purge_all()", "purge_all", true},
    {"qualified call", "SELECT pg_catalog.pg_terminate_backend(1)", "pg_catalog.pg_terminate_backend", true},
    {"named arguments", "SELECT purge_all(1, x => 2)", "purge_all", true},
    {"VARIADIC", "SELECT purge_all(VARIADIC ARRAY[1])", "purge_all", true},
    {"aggregate with ORDER BY and FILTER", "SELECT string_agg(a, ',' ORDER BY a) FILTER (WHERE a > '') FROM t",
     "string_agg", false},
    {"window function", "SELECT rank() OVER (PARTITION BY a ORDER BY b) FROM t", "rank", false},
    {"function in FROM", "SELECT * FROM pg_ls_dir('.')", "pg_ls_dir", true},
    {"ROWS FROM", "SELECT * FROM ROWS FROM (purge_all()) AS x(a)", "purge_all", true},
    {"LATERAL function", "SELECT * FROM t, LATERAL purge_all(t.id)", "purge_all", true},
    {"field selection on a constant", "SELECT (1).pg_terminate_backend", "pg_terminate_backend", true},
    {"field selection on a constant, unknown name", "SELECT (42).purge_all", "purge_all", true},
    {"field selection on an expression", "SELECT (pg_backend_pid()).pg_cancel_backend", "pg_cancel_backend", true},
    {"attribute notation", "SELECT t.pg_terminate_backend FROM t", "pg_terminate_backend", true},
    {"attribute notation, schema-qualified row", "SELECT app.t.nextval FROM app.t", "nextval", true},
    {"cast to a type not PostgreSQL's", "SELECT x::money_t FROM t", "CAST(money_t)", true},
    {"CAST(... AS ...)", "SELECT CAST(x AS app.email) FROM t", "CAST(app.email)", true},
    {"typed literal", "SELECT app.point3 '1,2,3'", "CAST(app.point3)", true},
    {"cast to PostgreSQL's own type", "SELECT 'users'::regclass", "", false},
    {"function-style cast", "SELECT money_t(1)", "money_t", true},
    {"TREAT", "SELECT TREAT(x AS app_type) FROM t", "pg_catalog.app_type", true},
    {"operator not PostgreSQL's", "SELECT 1 !== 2", "OPERATOR(!==)", true},
    {"OPERATOR() in another schema", "SELECT 1 OPERATOR(app.+) 2", "OPERATOR(app.+)", true},
    {"operator with ANY", "SELECT * FROM t WHERE a !== ANY (ARRAY[1])", "OPERATOR(!==)", true},
    {"operator with a subquery", "SELECT * FROM t WHERE a !== ALL (SELECT b FROM u)", "OPERATOR(!==)", true},
    {"row comparison", "SELECT (1, 2) !== (3, 4)", "OPERATOR(!==)", true},
    {"ORDER BY USING", "SELECT * FROM t ORDER BY a USING !==", "OPERATOR(!==)", true},
    {"EXTRACT", "SELECT EXTRACT(year FROM now())", "pg_catalog.extract", false},
    {"AT TIME ZONE", "SELECT now() AT TIME ZONE 'UTC'", "pg_catalog.timezone", false},
    {"IS NORMALIZED", "SELECT 'a' IS NFC NORMALIZED", "pg_catalog.is_normalized", false},
    {"NORMALIZE", "SELECT NORMALIZE('a', NFKC)", "pg_catalog.normalize", false},
    {"COLLATION FOR", "SELECT COLLATION FOR ('x')", "pg_catalog.pg_collation_for", false},
    {"OVERLAPS", "SELECT (now(), now()) OVERLAPS (now(), now())", "pg_catalog.overlaps", false},
    {"SUBSTRING ... FROM ... FOR", "SELECT SUBSTRING('abc' FROM 1 FOR 2)", "pg_catalog.substring", false},
    {"SUBSTRING ... SIMILAR", "SELECT SUBSTRING('abc' SIMILAR 'a%' ESCAPE '#')", "pg_catalog.substring", false},
    {"SIMILAR TO", "SELECT 'a' SIMILAR TO 'b'", "pg_catalog.similar_to_escape", false},
    {"LIKE ... ESCAPE", "SELECT 'a' LIKE 'b' ESCAPE '#'", "pg_catalog.like_escape", false},
    {"TRIM", "SELECT TRIM(BOTH 'x' FROM 'xax')", "pg_catalog.btrim", false},
    {"POSITION", "SELECT POSITION('b' IN 'abc')", "pg_catalog.position", false},
    {"OVERLAY", "SELECT OVERLAY('abc' PLACING 'x' FROM 2)", "pg_catalog.overlay", false},
    {"XMLEXISTS", "SELECT XMLEXISTS('//x' PASSING '<x/>')", "pg_catalog.xmlexists", false},
    {"TABLESAMPLE method", "SELECT * FROM t TABLESAMPLE app_sampler (10)", "app_sampler", true},
    {"TABLESAMPLE built-in method", "SELECT * FROM t TABLESAMPLE system (10)", "system", false},
    {"in UPDATE ... SET", "UPDATE t SET a = purge_all() WHERE id = 1", "purge_all", true},
    {"in RETURNING", "DELETE FROM t WHERE id = 1 RETURNING purge_all()", "purge_all", true},
    {"in ON CONFLICT", "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = purge_all()", "purge_all", true},
    {"in a CTE", "WITH x AS (SELECT purge_all()) SELECT * FROM x", "purge_all", true},
    {"in COPY (query) TO", "COPY (SELECT purge_all()) TO STDOUT", "purge_all", true},
    {"in EXPLAIN ANALYZE", "EXPLAIN ANALYZE SELECT purge_all()", "purge_all", true},
    {"in GROUP BY and HAVING", "SELECT a FROM t GROUP BY a HAVING purge_all(a)", "purge_all", true},
    {"in a window frame", "SELECT sum(a) OVER (ORDER BY b ROWS purge_all() PRECEDING) FROM t", "purge_all", true},
    {"in LIMIT", "SELECT * FROM t LIMIT purge_all()", "purge_all", true},
    {"in CASE, COALESCE, NULLIF, GREATEST", "SELECT CASE WHEN COALESCE(NULLIF(GREATEST(purge_all()), 1)) THEN 1 END",
     "purge_all", true},
    {"in an array subscript", "SELECT (ARRAY[1])[purge_all()]", "purge_all", true},
    {"in a VALUES list", "VALUES (purge_all())", "purge_all", true},
};

TEST(ClassifierSyntax, EverySyntaxThatCallsAFunctionNamesIt) {
  for (const SyntaxCase& c : syntax_cases) {
    SCOPED_TRACE(std::string(c.syntax) + ": " + c.sql);
    ClassifiedText t = classify(c.sql);
    ASSERT_EQ(t.statements.size(), 1u);
    const StatementFacts& f = t.statements[0];
    EXPECT_FALSE(f.unparseable) << f.parse_error;
    if (*c.function != '\0') {
      EXPECT_NE(std::find(f.functions.begin(), f.functions.end(), c.function), f.functions.end());
    } else {
      EXPECT_TRUE(f.functions.empty());
    }
    EXPECT_EQ(f.classes.contains(StatementClass::Function), c.function_class);
  }
}

bool calls_function(std::string_view sql) {
  ClassifiedText t = classify(sql);
  return t.statements.size() == 1 && t.statements[0].classes.contains(StatementClass::Function);
}

// `(expr).name` on a value that is not composite runs name(expr): a read-only
// rule on FUNCTION must see pg_terminate_backend there.
TEST(ClassifierSecurity, FieldSelectionOnAScalarIsAFunctionCall) {
  EXPECT_TRUE(calls_function("SELECT (pid).pg_terminate_backend FROM pg_stat_activity"));
  EXPECT_TRUE(calls_function("SELECT (1).anything_at_all"));
}

// `t.f` is f(t) when f is no column of t; a built-in that can change
// something counts as the call.
TEST(ClassifierSecurity, AttributeNotationWithARiskyBuiltinIsAFunctionCall) {
  EXPECT_TRUE(calls_function("SELECT a.pg_terminate_backend FROM pg_stat_activity a"));
  EXPECT_TRUE(calls_function("SELECT t.lo_unlink FROM t"));
}

// The trade-off: a qualified column whose name is no risky built-in stays a
// column, even where it shares a name with a side-effect-free built-in.
TEST(ClassifierSecurity, QualifiedColumnsAreNotFunctionCalls) {
  EXPECT_FALSE(calls_function("SELECT u.email, u.name, u.date, u.length, c.oid FROM users u, pg_class c"));
  EXPECT_FALSE(calls_function("SELECT (c).street FROM customers c"));
}

// A cast to a type that is not PostgreSQL's own may run its owner's cast
// function or a domain's CHECK; a cast to a built-in type may not.
TEST(ClassifierSecurity, CastToAUserTypeIsAFunctionCall) {
  EXPECT_TRUE(calls_function("SELECT '1'::public.evil_domain"));
  EXPECT_FALSE(calls_function("SELECT '1'::int8, 'x'::text, 't'::regclass, '{}'::jsonb, 'a'::information_schema.yes_or_no"));
}

// Signalling, large objects, advisory locks, server files and SQL text are
// flagged whatever pg_proc says (pg_terminate_backend is PARALLEL SAFE).
TEST(ClassifierSecurity, RiskyBuiltinsKeepTheirFlagsWhateverTheirMarkings) {
  auto facts = [](std::string_view sql) { return classify(sql).statements.at(0); };
  EXPECT_TRUE(facts("SELECT pg_terminate_backend(1)").signals_backends);
  EXPECT_TRUE(facts("SELECT lo_unlink(1)").large_objects);
  EXPECT_TRUE(facts("SELECT pg_try_advisory_xact_lock(1)").locks);
  EXPECT_TRUE(facts("SELECT pg_read_binary_file('x')").server_file_access);
  EXPECT_TRUE(facts("SELECT query_to_xml('SELECT set_config(''role'', ''x'', false)', true, true, '')").dynamic_sql);
  EXPECT_TRUE(facts("SELECT dblink_connect('c', 'dbname=x')").remote_database);
  EXPECT_TRUE(facts("SELECT pg_notify('c', 'x')").notify);
  for (const char* sql : {"SELECT pg_terminate_backend(1)", "SELECT lo_unlink(1)", "SELECT pg_advisory_lock(1)",
                          "SELECT pg_read_file('x')", "SELECT pg_notify('c', 'x')", "SELECT pg_reload_conf()"})
    EXPECT_TRUE(calls_function(sql)) << sql;
}

// What psql's describe commands and analytic queries call is side-effect
// free by PostgreSQL's own markings, so a read-only user can run them.
TEST(ClassifierSecurity, SideEffectFreeBuiltinsAreNotFunctionCalls) {
  EXPECT_FALSE(calls_function(
      "SELECT pg_catalog.pg_table_is_visible(c.oid), pg_catalog.pg_get_userbyid(c.relowner), "
      "pg_catalog.obj_description(c.oid, 'pg_class'), pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) "
      "FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default"));
  EXPECT_FALSE(calls_function("SELECT ts_rank(to_tsvector('english', body), plainto_tsquery('x')) FROM docs"));
  EXPECT_FALSE(calls_function("SELECT jsonb_array_elements_text(j), date(now()), array_upper(a, 1) FROM t"));
  EXPECT_FALSE(calls_function("SELECT 'a' IS NORMALIZED, COLLATION FOR ('x'), date_trunc('day', now())"));
}

// An unknown function, or a built-in's name in another schema, is a call of
// code pgwarden cannot see (fail closed).
TEST(ClassifierSecurity, UnknownFunctionsAreFunctionCalls) {
  EXPECT_TRUE(calls_function("SELECT public.lower('x')"));
  EXPECT_TRUE(calls_function("SELECT my_report()"));
}

// set_config() is a SET: MISC_SET, a role change when it may be one; not a
// FUNCTION statement, so pg_dump's set_config('search_path', ...) runs.
TEST(ClassifierSecurity, SetConfigIsASetNotAFunction) {
  StatementFacts f = classify("SELECT pg_catalog.set_config('search_path', '', false)").statements.at(0);
  EXPECT_FALSE(f.classes.contains(StatementClass::Function));
  EXPECT_TRUE(f.classes.contains(StatementClass::MiscSet));
  EXPECT_FALSE(f.role_change);
  EXPECT_TRUE(classify("SELECT set_config(n, 'x', false) FROM t").statements.at(0).role_change);
}

// DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT: a role change.
TEST(ClassifierSecurity, DiscardAllIsARoleChange) {
  EXPECT_TRUE(classify("DISCARD ALL").statements.at(0).role_change);
  EXPECT_FALSE(classify("DISCARD PLANS").statements.at(0).role_change);
}

// A statement's facts depend on its text alone: classifying others first,
// or the same text twice, gives the same facts.
TEST(Classifier, FactsDoNotDependOnEarlierStatements) {
  const char* sql = "SELECT (1).pg_terminate_backend, t.lo_unlink, x::app_t FROM t FOR UPDATE";
  std::vector<std::string> before = flag_names(classify(sql).statements.at(0));
  classify("SET ROLE admin; NOTIFY c; SELECT set_config('role', 'x', false)");
  StatementFacts again = classify(sql).statements.at(0);
  EXPECT_EQ(flag_names(again), before);
  EXPECT_EQ(again.functions, (std::vector<std::string>{"pg_terminate_backend", "lo_unlink", "CAST(app_t)"}));
}

// ---- focused scenarios ---------------------------------------------------

// A multi-statement string reports where each statement is, so the audit
// record can quote exactly the statement that was denied.
TEST(Classifier, ReportsThePositionOfEachStatement) {
  std::string sql = "SELECT 1; DROP TABLE users;";
  ClassifiedText t = classify(sql);
  ASSERT_EQ(t.statements.size(), 2u);
  EXPECT_EQ(sql.substr(t.statements[0].location, t.statements[0].length), "SELECT 1");
  EXPECT_EQ(sql.substr(t.statements[1].location, t.statements[1].length), " DROP TABLE users");
}

// The last statement without a semicolon runs to the end of the text.
TEST(Classifier, LastStatementRunsToTheEndOfTheText) {
  std::string sql = "BEGIN; DELETE FROM t WHERE id = 1";
  ClassifiedText t = classify(sql);
  ASSERT_EQ(t.statements.size(), 2u);
  EXPECT_EQ(t.statements[1].location + t.statements[1].length, sql.size());
}

// A syntax error anywhere makes the whole text unparseable (the server runs
// none of it either), with the parser's message for the audit record.
TEST(Classifier, SyntaxErrorMakesTheWholeTextUnparseable) {
  ClassifiedText t = classify("SELECT 1; DROP TABLE users; SELEC 2");
  EXPECT_TRUE(t.unparseable);
  ASSERT_EQ(t.statements.size(), 1u);
  EXPECT_TRUE(t.statements[0].unparseable);
  EXPECT_NE(t.statements[0].parse_error.find("syntax error"), std::string::npos);
}

// A zero byte cannot reach the server inside a query string; text holding
// one is refused rather than cut short.
TEST(Classifier, ZeroByteIsUnparseable) {
  ClassifiedText t = classify(std::string_view("SELECT 1\0; DROP TABLE users", 27));
  EXPECT_TRUE(t.unparseable);
}

// Empty text and text of only comments are empty queries, not errors.
TEST(Classifier, EmptyTextHasNoStatements) {
  EXPECT_TRUE(classify("").statements.empty());
  EXPECT_TRUE(classify("  -- nothing\n /* at all */ ").statements.empty());
  EXPECT_FALSE(classify(";;").unparseable);
}

// Deeply nested input is either classified or refused, never a crash.
TEST(Classifier, DeepNestingDoesNotCrash) {
  std::string sql = "SELECT " + std::string(5000, '(') + "1" + std::string(5000, ')');
  ClassifiedText t = classify(sql);
  ASSERT_EQ(t.statements.size(), 1u);
  if (!t.unparseable) {
    EXPECT_EQ(t.statements[0].command_tag, "SELECT");
  }
}

// A long chain of operators is a deep tree: on a thread stack of a few
// MiB (sanitizer builds have much larger frames) it is classified or, past
// the walker's stack bound, refused as unparseable; never a stack overflow.
// Found by fuzz_classifier.
TEST(Classifier, DeepOperatorChainOnASmallStack) {
  struct Job {
    std::string sql;
    ClassifiedText result;
  } job{"SELECT " + std::string(3000, '+') + "purge_all()", {}};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 4u << 20);
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void* p) -> void* {
                  auto* j = static_cast<Job*>(p);
                  j->result = classify(j->sql);
                  return nullptr;
                },
                &job),
            0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  ASSERT_EQ(job.result.statements.size(), 1u);
  const StatementFacts& f = job.result.statements[0];
  // Either way the call of purge_all() cannot pass as a plain read.
  EXPECT_TRUE(f.unparseable || f.classes.contains(StatementClass::Function));
}

// Random bytes and truncated statements never crash the classifier, and
// whatever does not parse is marked unparseable.
TEST(Classifier, GarbageNeverCrashes) {
  std::mt19937 rng(42);
  const std::string seed = "WITH d AS (DELETE FROM users RETURNING *) SELECT $q$x$q$, 'a''b', \"Q\" FROM d;";
  for (int i = 0; i < 2000; ++i) {
    std::string sql = seed.substr(0, rng() % seed.size());
    for (int k = 0; k < 3; ++k)
      if (!sql.empty()) sql[rng() % sql.size()] = static_cast<char>(1 + rng() % 255);
    ClassifiedText t = classify(sql);
    for (const StatementFacts& f : t.statements)
      if (f.command_tag == "???") {
        EXPECT_TRUE(f.unparseable);
      }
  }
}

// Two threads classifying at once each use their own parser memory.
TEST(Classifier, IsSafeToCallFromSeveralThreads) {
  auto work = [] {
    for (int i = 0; i < 500; ++i) {
      ClassifiedText t = classify("UPDATE accounts SET balance = " + std::to_string(i) + " WHERE id = 7");
      if (t.statements.size() != 1 || t.statements[0].command_tag != "UPDATE") return false;
    }
    return true;
  };
  bool a = false, b = false;
  std::thread t1([&] { a = work(); });
  std::thread t2([&] { b = work(); });
  t1.join();
  t2.join();
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
}

// The node numbers the walker relies on match the protobuf schema compiled
// into libpg_query (a libpg_query upgrade that renumbers them fails here).
TEST(Classifier, NodeNumbersMatchLibpgQuery) {
  auto id = [](const char* name) {
    const ProtobufCFieldDescriptor* f =
        protobuf_c_message_descriptor_get_field_by_name(&pg_query__node__descriptor, name);
    return f == nullptr ? 0u : f->id;
  };
  EXPECT_EQ(id("range_var"), static_cast<unsigned>(NodeKind::RangeVar));
  EXPECT_EQ(id("select_stmt"), static_cast<unsigned>(NodeKind::SelectStmt));
  EXPECT_EQ(id("drop_stmt"), static_cast<unsigned>(NodeKind::DropStmt));
  EXPECT_EQ(id("variable_set_stmt"), static_cast<unsigned>(NodeKind::VariableSetStmt));
  EXPECT_EQ(id("call_stmt"), static_cast<unsigned>(NodeKind::CallStmt));
  EXPECT_EQ(id("func_call"), static_cast<unsigned>(NodeKind::FuncCall));
  EXPECT_EQ(id("string"), static_cast<unsigned>(NodeKind::String));
  EXPECT_EQ(id("a_const"), static_cast<unsigned>(NodeKind::AConst));
  EXPECT_EQ(id("list"), static_cast<unsigned>(NodeKind::List));
}

}  // namespace
}  // namespace pgwarden::policy
