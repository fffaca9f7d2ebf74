// Policy evaluation over a 50-rule configuration on an already classified
// statement (a classification cache hit): the per-statement budget is 0.5 us.

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "config/config.hpp"
#include "policy/evaluator.hpp"

namespace {

using namespace pgwarden;

// 50 rules of every kind: groups, networks, globs, classes, objects, functions.
std::string fifty_rule_config() {
  std::string y = R"(listen: 127.0.0.1:6432
upstream: { host: 127.0.0.1, port: 5432, tls: disable }
environment: production
networks:
  dev_hosts: [10.20.0.0/16, 192.168.0.0/16, "fd00:20::/32"]
  admin_hosts: [10.10.0.0/24]
groups:
  admins: [alice, dba, postgres]
  juniors: [bob, carol, dave, erin, frank]
  analysts: [gina, hank, ivan]
rules:
  - { name: no-drop-for-non-admins, when: { command: ["DROP *", TRUNCATE], user_not_in: admins }, action: deny }
  - { name: prod-from-dev, when: { client_in: dev_hosts, class: [DDL, WRITE, ROLE] }, action: deny }
  - { name: juniors-read-only, when: { user_in: juniors, class: [WRITE, DDL, ROLE, FUNCTION] }, action: deny }
  - { name: files, when: { function: ["lo_*", "pg_read_*", "dblink*"], user_not_in: admins }, action: deny }
  - { name: where-less, when: { update_or_delete_without_where: true }, action: deny, enforce: false }
  - { name: no-set-role, when: { role_change: true, user_not_in: admins }, action: deny }
  - { name: analysts-app, when: { user_in: analysts, application_name: "psql*", class: WRITE }, action: deny }
  - { name: alert-on-ddl, when: { class: [DDL] }, action: allow, alert: true }
)";
  for (int i = 0; i < 42; ++i) {
    const std::string n = std::to_string(i);
    switch (i % 4) {
      case 0:
        y += "  - { name: table-" + n + ", when: { object: [{ name: \"s" + n + ".t*\", access: [write] }] }, action: deny }\n";
        break;
      case 1:
        y += "  - { name: user-" + n + ", when: { user: [\"svc_" + n + "*\"], command: [\"ALTER *\"] }, action: deny }\n";
        break;
      case 2:
        y += "  - { name: db-" + n + ", when: { database: [\"db" + n + "\"], class: [MISC], client_not_in: admin_hosts }, action: deny }\n";
        break;
      default:
        y += "  - { name: app-" + n + ", when: { application_name: [\"job-" + n + "\"], class: [READ] }, action: allow }\n";
    }
  }
  return y + "default: allow\n";
}

const config::ConfigPtr& bench_config() {
  static const config::ConfigPtr cfg = [] {
    auto r = config::load_config_string(fifty_rule_config(), "bench.yaml");
    if (!r.ok()) std::abort();
    return r.config;
  }();
  return cfg;
}

policy::SessionFacts bench_session() {
  policy::SessionFacts s;
  s.user = "bob";
  s.database = "app";
  s.application_name = "pgbench";
  s.client = policy::IpAddress::parse("10.10.0.7");
  s.environment = "production";
  s.now = std::chrono::sys_seconds{std::chrono::seconds{1'720'000'000}};
  return s;
}

policy::StatementFacts facts(const char* tag, policy::StatementClass cls, policy::Access access) {
  policy::StatementFacts f;
  f.command_tag = tag;
  f.effective_tags = {tag};
  f.classes.insert(cls);
  f.objects = {{"public", "pgbench_accounts", access}};
  return f;
}

void BM_PolicyEvaluate50RulesSelect(benchmark::State& state) {
  const auto& cfg = bench_config();
  const auto session = bench_session();
  const auto f = facts("SELECT", policy::StatementClass::Read, policy::Access::Read);
  for (auto _ : state) benchmark::DoNotOptimize(policy::evaluate(cfg->policy, session, f));
  state.counters["rules"] = double(cfg->policy.rules().size());
}
BENCHMARK(BM_PolicyEvaluate50RulesSelect);

void BM_PolicyEvaluate50RulesUpdateDenied(benchmark::State& state) {
  const auto& cfg = bench_config();
  const auto session = bench_session();
  const auto f = facts("UPDATE", policy::StatementClass::Write, policy::Access::Write);
  for (auto _ : state) benchmark::DoNotOptimize(policy::evaluate(cfg->policy, session, f));
}
BENCHMARK(BM_PolicyEvaluate50RulesUpdateDenied);

void BM_PolicyEvaluate50RulesAdminUpdate(benchmark::State& state) {
  const auto& cfg = bench_config();
  auto session = bench_session();
  session.user = "alice";
  policy::ClassifiedText text;
  text.statements = {facts("UPDATE", policy::StatementClass::Write, policy::Access::Write)};
  for (auto _ : state) benchmark::DoNotOptimize(policy::evaluate(cfg->policy, session, text));
}
BENCHMARK(BM_PolicyEvaluate50RulesAdminUpdate);

// What a session actually pays per statement: the session-level conditions
// were decided once for the session (session_mask), only the statement's
// own conditions are checked.
void BM_PolicyEvaluate50RulesSelectSessionMask(benchmark::State& state) {
  const auto& cfg = bench_config();
  const auto session = bench_session();
  const auto mask = policy::session_mask(cfg->policy, session);
  policy::ClassifiedText text;
  text.statements = {facts("SELECT", policy::StatementClass::Read, policy::Access::Read)};
  for (auto _ : state) benchmark::DoNotOptimize(policy::evaluate(cfg->policy, session, text, mask));
  state.counters["rules"] = double(cfg->policy.rules().size());
}
BENCHMARK(BM_PolicyEvaluate50RulesSelectSessionMask);

void BM_PolicyEvaluate50RulesUpdateDeniedSessionMask(benchmark::State& state) {
  const auto& cfg = bench_config();
  const auto session = bench_session();
  const auto mask = policy::session_mask(cfg->policy, session);
  policy::ClassifiedText text;
  text.statements = {facts("UPDATE", policy::StatementClass::Write, policy::Access::Write)};
  for (auto _ : state) benchmark::DoNotOptimize(policy::evaluate(cfg->policy, session, text, mask));
}
BENCHMARK(BM_PolicyEvaluate50RulesUpdateDeniedSessionMask);

}  // namespace
