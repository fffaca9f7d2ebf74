#include "policy/classifier.hpp"

#include <gtest/gtest.h>
#include <pg_query/pg_query.pb-c.h>

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
