// The statement gate without sockets: client messages in, the bytes the
// server gets out; server messages in, the bytes the client gets out. What
// the server would answer is written here as PostgreSQL answers it (an
// unknown column fails at parse analysis with 42703 and skips the rest of an
// extended batch up to Sync; a Parse of a name that exists fails with 42P05).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "protocol/encoder.hpp"
#include "protocol/framer.hpp"
#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/session/statement_gate.hpp"

namespace pgwarden::proxy {
namespace {

namespace pq = protocol;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view marker = "pgwarden_denied_0123456789abcdef";

std::string config_text(std::string_view rules) {
  return "listen: 127.0.0.1:6432\nupstream: { host: 127.0.0.1, port: 5432 }\n" + std::string(rules);
}

const std::string deny_writes = config_text(R"(rules:
  - name: no-writes
    when: { class: [WRITE, DDL] }
    action: deny
    message: writes are not allowed here
)");

const std::string allow_all = config_text("rules: []\n");

config::ConfigPtr load(const std::string& text) {
  config::LoadResult r = config::load_config_string(text, "gate-test.yaml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? std::string() : r.errors.front().to_string());
  return r.config;
}

/// What the gate tells its session, kept for the assertions.
class RecordingObserver : public GateObserver {
 public:
  struct Seen {
    std::string sql;
    std::string statement_name, portal_name;
    std::string rule;
    std::uint64_t sync_point = 0;
  };
  std::vector<Seen> refusals, forwards;
  std::vector<std::uint64_t> sync_points;
  int counted_runs = 0;
  bool refuse_records = false;  // the audit log fails and blocks

  policy::DatabaseCatalogPtr catalog() override { return nullptr; }
  void decided(const policy::Decision&) override {}
  void counted(const policy::ClassifiedText&, const policy::Decision&) override { ++counted_runs; }
  void read(std::string_view, std::string_view, const policy::Decision&) override {}
  void refused(const GatedStatement& s, const policy::Decision& d) override {
    refusals.push_back({std::string(s.sql), std::string(s.statement_name), std::string(s.portal_name),
                        std::string(d.rule_name()), s.sync_point});
  }
  bool forwarding(const GatedStatement& s, const AuditedDecision& d) override {
    if (refuse_records) return false;
    forwards.push_back({std::string(s.sql), std::string(s.statement_name), std::string(s.portal_name),
                        std::string(d.rule), s.sync_point});
    return true;
  }
  void sync_point_begun(std::uint64_t n, std::optional<std::chrono::system_clock::time_point>) override {
    sync_points.push_back(n);
  }
};

/// One decoded message of a byte stream.
struct Message {
  char type = 0;
  std::string bytes;
};

std::vector<Message> split(std::string_view stream) {
  std::vector<Message> out;
  while (stream.size() >= pq::header_size) {
    const std::size_t n = std::size_t{pq::read_u32(stream.data() + 1)} + 1;
    out.push_back({stream[0], std::string(stream.substr(0, n))});
    stream.remove_prefix(n);
  }
  EXPECT_TRUE(stream.empty()) << "a partial message";
  return out;
}

std::string concat(Batch& batch) {
  std::string out;
  for (const auto& b : batch.buffers()) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

class GateTest : public ::testing::Test {
 protected:
  explicit GateTest(const std::string& rules = deny_writes) : holder_(load(rules)) { start(); }

  void start(GateOptions options = {true, true}) {
    policy_ = std::make_unique<SessionPolicy>(holder_);
    policy::SessionFacts& facts = policy_->edit_facts();
    facts.user = "app";
    facts.database = "app";
    policy_->facts_changed();
    gate_ = std::make_unique<StatementGate>(*policy_, cache_, observer_, std::string(marker), options);
  }

  /// The client sends `stream` (whole messages); returns what the server gets.
  std::string client_sends(const std::string& stream) {
    pq::Framer framer(pq::TypeSet::all_except({pq::frontend_type::CopyData}), 1 << 20);
    Batch out;
    out.reset(stream.data());
    std::size_t pos = 0;
    while (pos < stream.size()) {
      const pq::Frame f = framer.put(std::string_view(stream).substr(pos));
      EXPECT_FALSE(f.ec);
      if (f.kind == pq::FrameKind::NeedMore) break;
      const auto error = gate_->client_message(f, pos, out);
      EXPECT_FALSE(error) << *error;
      pos += f.bytes.size();
    }
    return concat(out);
  }

  /// The server answers `stream`; returns what the client gets. Each
  /// message goes to the gate as the session hands it over.
  std::string server_sends(const std::string& stream) {
    std::string to_client;
    for (const Message& m : split(stream)) {
      pq::Frame f;
      f.kind = pq::FrameKind::Whole;
      f.type = m.type;
      f.bytes = m.bytes;
      Batch out;
      out.reset(m.bytes.data());
      bool substituted = false;
      switch (m.type) {
        case pq::backend_type::ReadyForQuery: gate_->ready_for_query(m.bytes.back()); break;
        case pq::backend_type::ParseComplete:
        case pq::backend_type::CloseComplete: gate_->statement_answer(m.type); break;
        case pq::backend_type::ErrorResponse: substituted = gate_->error_response(f, out); break;
        default: break;
      }
      if (!substituted) out.forward(0, m.bytes.size());
      to_client += concat(out);
    }
    return to_client;
  }

  static std::string query(std::string_view sql) {
    std::string out;
    pq::append_query(out, sql);
    return out;
  }
  static std::string parse(std::string_view name, std::string_view sql) {
    std::string out;
    pq::encode(pq::Parse{name, sql, {}}, out);
    return out;
  }
  static std::string bind(std::string_view portal, std::string_view statement) {
    std::string out;
    pq::Bind b;
    b.portal = portal;
    b.statement = statement;
    pq::encode(b, out);
    return out;
  }
  static std::string execute(std::string_view portal) {
    std::string out;
    pq::encode(pq::Execute{portal, 0}, out);
    return out;
  }
  static std::string close_statement(std::string_view name) {
    std::string out;
    pq::encode(pq::Close{'S', name}, out);
    return out;
  }
  static std::string sync() {
    std::string out;
    pq::encode(pq::Sync{}, out);
    return out;
  }
  static std::string ready(char status) {
    std::string out;
    pq::encode(pq::ReadyForQuery{status}, out);
    return out;
  }
  static std::string message(char type) {  // a message without a body
    return std::string{type, 0, 0, 0, 4};
  }
  static std::string command_complete(std::string_view tag) {
    std::string out;
    pq::encode(pq::CommandComplete{tag}, out);
    return out;
  }
  static std::string error(std::string_view sqlstate, std::string_view text) {
    std::string out;
    pq::append_error(out, "ERROR", sqlstate, text);
    return out;
  }
  /// What PostgreSQL answers to the marker statement.
  static std::string marker_error() {
    return error(pq::sqlstate::undefined_column, "column \"" + std::string(marker) + "\" does not exist");
  }
  static std::string marker_query() { return query("SELECT " + std::string(marker)); }
  static std::string marker_parse(std::string_view name = "") { return parse(name, "SELECT " + std::string(marker)); }

  /// The ErrorResponses in `stream`, as (SQLSTATE, message).
  static std::vector<std::pair<std::string, std::string>> errors_in(const std::string& stream) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Message& m : split(stream)) {
      if (m.type != pq::backend_type::ErrorResponse) continue;
      pq::ErrorResponse e;
      EXPECT_FALSE(pq::parse(m.bytes, e));
      out.emplace_back(std::string(e.field(pq::pg_diag_sqlstate)), std::string(e.field(pq::pg_diag_message_primary)));
    }
    return out;
  }

  ConfigHolder holder_;
  policy::ClassifyCache cache_;
  RecordingObserver observer_;
  std::unique_ptr<SessionPolicy> policy_;
  std::unique_ptr<StatementGate> gate_;
};

TEST_F(GateTest, AllowedStatementsPassUnchanged) {
  server_sends(ready('I'));  // the startup
  const std::string batch = query("SELECT 1") + parse("s", "SELECT $1::int") + bind("", "s") + execute("") + sync();
  EXPECT_EQ(client_sends(batch), batch);
  ASSERT_EQ(observer_.forwards.size(), 2u);
  EXPECT_EQ(observer_.forwards[0].sql, "SELECT 1");
  EXPECT_EQ(observer_.forwards[1].sql, "SELECT $1::int");
  EXPECT_EQ(observer_.forwards[1].statement_name, "s");
  EXPECT_TRUE(observer_.refusals.empty());
  EXPECT_EQ(gate_->sync_points_sent(), 3u);
}

// Inside a block the marker fails the transaction exactly as a permission
// error would: the client sees the denial, and its transaction is aborted.
TEST_F(GateTest, DenialInsideTransactionBlock) {
  server_sends(ready('I'));
  EXPECT_EQ(client_sends(query("BEGIN")), query("BEGIN"));
  server_sends(command_complete("BEGIN") + ready('T'));
  EXPECT_EQ(gate_->transaction_status(), 'T');

  EXPECT_EQ(client_sends(query("DROP TABLE t")), marker_query());
  const std::string to_client = server_sends(marker_error() + ready('E'));
  const auto errors = errors_in(to_client);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, pq::sqlstate::insufficient_privilege);
  EXPECT_EQ(errors[0].second, "permission denied by pgwarden rule \"no-writes\": writes are not allowed here");
  EXPECT_THAT(to_client, Not(HasSubstr(marker)));
  EXPECT_EQ(gate_->transaction_status(), 'E');
  ASSERT_EQ(observer_.refusals.size(), 1u);
  EXPECT_EQ(observer_.refusals[0].sql, "DROP TABLE t");
  EXPECT_EQ(observer_.refusals[0].rule, "no-writes");

  // The client rolls back and goes on; the gate is back at a boundary.
  EXPECT_EQ(client_sends(query("ROLLBACK")), query("ROLLBACK"));
  server_sends(command_complete("ROLLBACK") + ready('I'));
  EXPECT_TRUE(gate_->at_boundary());
  EXPECT_TRUE(gate_->no_denials_pending());
}

// A denied Parse becomes a Parse that fails at analysis, and the server
// skips everything after it up to Sync; the denied statement's Bind is
// replaced too, and the refusal is recorded once.
TEST_F(GateTest, DenialInTheMiddleOfAnExtendedBatchSkipsToSync) {
  server_sends(ready('I'));
  const std::string first = parse("", "SELECT 1") + bind("", "") + execute("");
  const std::string denied = parse("", "DELETE FROM t") + bind("", "") + execute("");
  const std::string to_server = client_sends(first + denied + sync());
  EXPECT_EQ(to_server, first + marker_parse() + marker_parse() + execute("") + sync());
  ASSERT_EQ(observer_.refusals.size(), 1u);
  EXPECT_EQ(observer_.refusals[0].sql, "DELETE FROM t");

  // PostgreSQL: the first statement runs; the marker Parse fails; the rest
  // of the batch is skipped; ReadyForQuery answers the Sync.
  const std::string answer = message(pq::backend_type::ParseComplete) + message(pq::backend_type::BindComplete) +
                             command_complete("SELECT 1") + marker_error() + ready('I');
  const std::string to_client = server_sends(answer);
  const auto errors = errors_in(to_client);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, pq::sqlstate::insufficient_privilege);
  EXPECT_THAT(to_client, Not(HasSubstr(marker)));
  EXPECT_TRUE(gate_->at_boundary());
  EXPECT_TRUE(gate_->no_denials_pending());
}

// Several requests in flight at once: each denial is matched to its own
// marker error, in order, and allowed statements between them pass.
TEST_F(GateTest, PipelinedBatchOfMixedStatements) {
  server_sends(ready('I'));
  const std::string sent = query("SELECT 1") + query("INSERT INTO t VALUES (1)") + query("SELECT 2") +
                           parse("p", "UPDATE t SET a = 1") + bind("", "p") + execute("") + sync() +
                           parse("q", "SELECT 3") + bind("", "q") + execute("") + sync();
  const std::string expected = query("SELECT 1") + marker_query() + query("SELECT 2") + marker_parse("p") +
                               marker_parse() + execute("") + sync() + parse("q", "SELECT 3") + bind("", "q") +
                               execute("") + sync();
  EXPECT_EQ(client_sends(sent), expected);
  EXPECT_EQ(gate_->sync_points_sent(), 6u);
  ASSERT_EQ(observer_.refusals.size(), 2u);
  EXPECT_EQ(observer_.refusals[0].sql, "INSERT INTO t VALUES (1)");
  EXPECT_EQ(observer_.refusals[1].sql, "UPDATE t SET a = 1");
  ASSERT_EQ(observer_.forwards.size(), 3u);
  EXPECT_EQ(observer_.forwards[0].sync_point, 1u);
  EXPECT_EQ(observer_.forwards[1].sync_point, 3u);
  EXPECT_EQ(observer_.forwards[2].sync_point, 5u);

  const std::string answers = command_complete("SELECT 1") + ready('I') + marker_error() + ready('I') +
                              command_complete("SELECT 1") + ready('I') + marker_error() + ready('I') +
                              message(pq::backend_type::ParseComplete) + message(pq::backend_type::BindComplete) +
                              command_complete("SELECT 1") + ready('I');
  const std::string to_client = server_sends(answers);
  EXPECT_EQ(errors_in(to_client).size(), 2u);
  EXPECT_THAT(to_client, Not(HasSubstr(marker)));
  EXPECT_TRUE(gate_->at_boundary());
  EXPECT_TRUE(gate_->no_denials_pending());
}

// An error the server raises itself passes unchanged, also while a denial
// waits for its marker error.
TEST_F(GateTest, TheServersOwnErrorsPassUnchanged) {
  server_sends(ready('I'));
  client_sends(query("SELECT nope") + query("DROP TABLE t"));
  const std::string own = error(pq::sqlstate::undefined_column, "column \"nope\" does not exist");
  EXPECT_EQ(server_sends(own + ready('I')), own + ready('I'));
  const auto errors = errors_in(server_sends(marker_error() + ready('I')));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, pq::sqlstate::insufficient_privilege);
}

// A denial whose marker the server never ran (it was skipping to Sync after
// an earlier error) is dropped at ReadyForQuery, so a later error can
// never be mistaken for it.
TEST_F(GateTest, SkippedDenialIsForgottenAtReadyForQuery) {
  server_sends(ready('I'));
  client_sends(parse("", "SELECT nope") + parse("", "DELETE FROM t") + sync());
  const std::string own = error(pq::sqlstate::undefined_column, "column \"nope\" does not exist");
  EXPECT_EQ(server_sends(own + ready('I')), own + ready('I'));
  EXPECT_TRUE(gate_->no_denials_pending());
}

class GateReloadTest : public GateTest {
 protected:
  GateReloadTest() : GateTest(allow_all) {}
  void reload(const std::string& rules) {
    holder_.replace(load(rules));
    ASSERT_TRUE(policy_->refresh());
  }
};

// A Parse of a name the server holds already fails (42P05): the name keeps
// its first statement, and so must the gate, or a Bind after a reload would
// be decided on a text the server does not hold.
TEST_F(GateReloadTest, FailedParseIsUndone) {
  server_sends(ready('I'));
  client_sends(parse("s1", "SELECT 1") + sync());
  server_sends(message(pq::backend_type::ParseComplete) + ready('I'));
  client_sends(parse("s1", "DELETE FROM t") + sync());
  server_sends(error(pq::sqlstate::duplicate_pstatement, "prepared statement \"s1\" already exists") +
               ready('I'));

  reload(deny_writes);
  const std::string batch = bind("", "s1") + execute("") + sync();
  EXPECT_EQ(client_sends(batch), batch);  // decided as SELECT 1
  EXPECT_TRUE(observer_.refusals.empty());
  ASSERT_FALSE(observer_.forwards.empty());
  EXPECT_EQ(observer_.forwards.back().sql, "SELECT 1");
}

// A Close skipped by the server after an earlier error leaves the statement
// in place; the gate restores it, and its Execute is recorded with its text.
TEST_F(GateReloadTest, SkippedCloseIsUndone) {
  server_sends(ready('I'));
  client_sends(parse("s1", "SELECT 1") + sync());
  server_sends(message(pq::backend_type::ParseComplete) + ready('I'));
  client_sends(parse("", "SELECT nope") + close_statement("s1") + sync());
  server_sends(error(pq::sqlstate::undefined_column, "column \"nope\" does not exist") + ready('I'));

  client_sends(bind("", "s1") + execute("") + sync());
  ASSERT_FALSE(observer_.forwards.empty());
  EXPECT_EQ(observer_.forwards.back().sql, "SELECT 1");
  EXPECT_EQ(observer_.forwards.back().statement_name, "s1");
}

// A Close the server did answer stays done: a later Bind of the name is a
// statement PREPAREd in SQL as far as the gate knows.
TEST_F(GateReloadTest, AnsweredCloseStaysDone) {
  server_sends(ready('I'));
  client_sends(parse("s1", "SELECT 1") + sync());
  server_sends(message(pq::backend_type::ParseComplete) + ready('I'));
  client_sends(close_statement("s1") + sync());
  server_sends(message(pq::backend_type::CloseComplete) + ready('I'));
  client_sends(bind("", "s1") + execute("") + sync());
  ASSERT_FALSE(observer_.forwards.empty());
  EXPECT_EQ(observer_.forwards.back().sql, "EXECUTE \"s1\"");
}

// A statement prepared before a reload is decided again at each Bind with
// the rules in force then.
TEST_F(GateReloadTest, BindIsDecidedWithTheRulesInForceNow) {
  server_sends(ready('I'));
  client_sends(parse("w", "DELETE FROM t") + sync());
  server_sends(message(pq::backend_type::ParseComplete) + ready('I'));
  reload(deny_writes);
  EXPECT_EQ(client_sends(bind("", "w") + execute("") + sync()), marker_parse() + execute("") + sync());
  ASSERT_EQ(observer_.refusals.size(), 1u);
  EXPECT_EQ(observer_.refusals[0].statement_name, "w");
}

// The marker is this session's secret: a client that writes it cannot make
// the gate rewrite a genuine error, and nothing the client gets carries it.
TEST_F(GateTest, MarkerNeverReachesTheClient) {
  server_sends(ready('I'));
  const std::string to_server = client_sends(query("DROP TABLE a") + query("DROP TABLE b") + sync());
  EXPECT_THAT(to_server, HasSubstr(marker));
  const std::string to_client = server_sends(marker_error() + ready('I') + marker_error() + ready('I'));
  EXPECT_THAT(to_client, Not(HasSubstr(marker)));
  EXPECT_EQ(errors_in(to_client).size(), 2u);
  // With no denial pending, an error naming the marker passes as it is: the
  // gate rewrites only what it caused.
  const std::string stray = marker_error();
  EXPECT_EQ(server_sends(stray), stray);
}

// The audit log cannot take a statement's record and blocks: the statement
// is refused as if denied, with 58030, and never reaches the server.
TEST_F(GateTest, StatementWhoseRecordCannotBeWrittenIsNotForwarded) {
  server_sends(ready('I'));
  observer_.refuse_records = true;
  EXPECT_EQ(client_sends(query("SELECT 1")), marker_query());
  ASSERT_EQ(observer_.refusals.size(), 1u);
  const auto errors = errors_in(server_sends(marker_error() + ready('I')));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, pq::sqlstate::io_error);
}

// A malformed message is reported, never forwarded.
TEST_F(GateTest, MalformedMessageIsAnError) {
  std::string bad = query("SELECT 1");
  bad.pop_back();  // no terminating NUL
  bad[4] = static_cast<char>(bad.size() - 1);
  pq::Framer framer(pq::TypeSet::all_except({pq::frontend_type::CopyData}), 1 << 20);
  const pq::Frame f = framer.put(bad);
  ASSERT_EQ(f.kind, pq::FrameKind::Whole);
  Batch out;
  out.reset(bad.data());
  const auto error = gate_->client_message(f, 0, out);
  ASSERT_TRUE(error);
  EXPECT_THAT(*error, HasSubstr("invalid Query message"));
  EXPECT_TRUE(out.empty());
}

// Read-only sessions: once the server reports default_transaction_read_only
// off, nothing more runs.
TEST_F(GateTest, ReadOnlyLostRefusesEverything) {
  policy_->edit_facts().read_only = true;
  server_sends(ready('I'));
  EXPECT_TRUE(gate_->parameter_status("default_transaction_read_only", "on"));
  EXPECT_FALSE(gate_->read_only_lost());
  EXPECT_TRUE(gate_->parameter_status("default_transaction_read_only", "off"));
  EXPECT_TRUE(gate_->read_only_lost());
  EXPECT_EQ(client_sends(query("SELECT 1")), marker_query());
  EXPECT_FALSE(gate_->parameter_status("application_name", "x"));
}

}  // namespace
}  // namespace pgwarden::proxy
