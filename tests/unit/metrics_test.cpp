// The metrics registry: what a Prometheus server scraping /metrics reads.

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <thread>

#include "metrics/registry.hpp"
#include "proxy/session/proxy_metrics.hpp"

namespace pgwarden::metrics {
namespace {

std::string exposition(const Registry& r) { return serialize(r.collect()); }

// A labelled counter renders HELP, TYPE and one sample per label set, with
// labels in declared order whatever order add() was given them in.
TEST(MetricsExposition, CounterWithLabelsRendersInDeclaredLabelOrder) {
  Registry r;
  auto& requests = r.add_counter("test_requests_total", "Requests served.", {"method", "code"});
  requests.add({{"code", "200"}, {"method", "GET"}}).increment(3);
  requests.add({{"method", "POST"}, {"code", "500"}}).increment();
  EXPECT_EQ(exposition(r),
            "# HELP test_requests_total Requests served.\n"
            "# TYPE test_requests_total counter\n"
            "test_requests_total{method=\"GET\",code=\"200\"} 3\n"
            "test_requests_total{method=\"POST\",code=\"500\"} 1\n");
}

// A gauge without labels has a bare sample line; fractions and negative
// values print as Prometheus parses them.
TEST(MetricsExposition, GaugeWithoutLabels) {
  Registry r;
  auto& g = r.add_gauge("test_temperature_celsius", "Temperature.").add({});
  g.set(-1.5);
  g.increment(0.25);
  EXPECT_EQ(exposition(r),
            "# HELP test_temperature_celsius Temperature.\n"
            "# TYPE test_temperature_celsius gauge\n"
            "test_temperature_celsius -1.25\n");
}

// Histogram buckets are cumulative, an observation equal to a bound counts
// in that bucket, +Inf equals the count, and labels come before `le`.
TEST(MetricsExposition, HistogramBucketsAreCumulativeWithInclusiveBounds) {
  Registry r;
  auto& h = r.add_histogram("test_latency_seconds", "Latency.", {"path"}, {0.5, 1}).add({{"path", "/a"}});
  for (double v : {0.25, 0.5, 0.75, 2.0}) h.observe(v);
  EXPECT_EQ(exposition(r),
            "# HELP test_latency_seconds Latency.\n"
            "# TYPE test_latency_seconds histogram\n"
            "test_latency_seconds_bucket{path=\"/a\",le=\"0.5\"} 2\n"
            "test_latency_seconds_bucket{path=\"/a\",le=\"1\"} 3\n"
            "test_latency_seconds_bucket{path=\"/a\",le=\"+Inf\"} 4\n"
            "test_latency_seconds_sum{path=\"/a\"} 3.5\n"
            "test_latency_seconds_count{path=\"/a\"} 4\n");
}

// A histogram without labels has only `le` on its buckets.
TEST(MetricsExposition, HistogramWithoutLabels) {
  Registry r;
  r.add_histogram("test_sync_seconds", "Sync.", {}, {0.001}).add({}).observe(0.0005);
  EXPECT_EQ(exposition(r),
            "# HELP test_sync_seconds Sync.\n"
            "# TYPE test_sync_seconds histogram\n"
            "test_sync_seconds_bucket{le=\"0.001\"} 1\n"
            "test_sync_seconds_bucket{le=\"+Inf\"} 1\n"
            "test_sync_seconds_sum 0.0005\n"
            "test_sync_seconds_count 1\n");
}

// Label values escape backslash, double quote and newline; HELP escapes
// backslash and newline, so no value can end a line or a label early.
TEST(MetricsExposition, LabelValuesAndHelpAreEscaped) {
  Registry r;
  auto& f = r.add_counter("test_denials_total", "Denials by rule \\ name\nsecond line.", {"rule"});
  f.add({{"rule", "a\"b\\c\nd"}}).increment();
  EXPECT_EQ(exposition(r),
            "# HELP test_denials_total Denials by rule \\\\ name\\nsecond line.\n"
            "# TYPE test_denials_total counter\n"
            "test_denials_total{rule=\"a\\\"b\\\\c\\nd\"} 1\n");
}

// A family nobody added a child to has no sample and is left out.
TEST(MetricsExposition, FamilyWithoutChildrenIsLeftOut) {
  Registry r;
  r.add_counter("test_unused_total", "Unused.", {"rule"});
  r.add_counter("test_used_total", "Used.").add({}).increment();
  EXPECT_EQ(exposition(r),
            "# HELP test_used_total Used.\n"
            "# TYPE test_used_total counter\n"
            "test_used_total 1\n");
}

// add() with the same label values returns the same child, so a reference
// resolved once counts into what the scrape shows.
TEST(MetricsFamily, SameLabelsGiveTheSameChild) {
  Registry r;
  auto& f = r.add_counter("test_x_total", "X.", {"a", "b"});
  Counter& one = f.add({{"a", "1"}, {"b", "2"}});
  Counter& again = f.add({{"b", "2"}, {"a", "1"}});
  EXPECT_EQ(&one, &again);
  EXPECT_NE(&one, &f.add({{"a", "1"}, {"b", "3"}}));
}

// Declaration mistakes are caught when the metric is declared or used:
// a missing, unknown or repeated label, an empty value, a duplicate or
// malformed name, `le` on a histogram, unsorted buckets.
TEST(MetricsFamily, DeclarationMistakesThrow) {
  Registry r;
  auto& f = r.add_counter("test_y_total", "Y.", {"a"});
  EXPECT_THROW(f.add({}), std::invalid_argument);
  EXPECT_THROW(f.add({{"b", "1"}}), std::invalid_argument);
  EXPECT_THROW(f.add({{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(f.add({{"a", ""}}), std::invalid_argument);
  EXPECT_THROW(r.add_gauge("test_y_total", "again"), std::invalid_argument);
  EXPECT_THROW(r.add_gauge("9starts_with_digit", "bad"), std::invalid_argument);
  EXPECT_THROW(r.add_gauge("test_z", "bad label", {"bad-label"}), std::invalid_argument);
  EXPECT_THROW(r.add_histogram("test_h", "le is reserved", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.add_histogram("test_h2", "unsorted", {}, {1, 0.5}), std::invalid_argument);
}

// A callback child is read at each scrape; adding it again replaces the
// callback (how the audit log takes over a metric that read 0 before).
TEST(MetricsFamily, CallbackChildIsReadAtScrapeAndCanBeReplaced) {
  Registry r;
  auto& f = r.add_gauge("test_queue_depth", "Depth.");
  double depth = 7;
  f.add_callback({}, [&] { return depth; });
  EXPECT_NE(exposition(r).find("test_queue_depth 7\n"), std::string::npos);
  depth = 9;
  EXPECT_NE(exposition(r).find("test_queue_depth 9\n"), std::string::npos);
  f.add_callback({}, [] { return 42.0; });
  EXPECT_NE(exposition(r).find("test_queue_depth 42\n"), std::string::npos);
  EXPECT_THROW(f.add({}), std::invalid_argument);  // the labels are taken by a callback
}

// A histogram fed by callback shows the snapshot it returns, cumulated.
TEST(MetricsFamily, CallbackHistogram) {
  Registry r;
  auto& f = r.add_histogram("test_cb_seconds", "Cb.", {}, {1, 2});
  f.add_callback({}, [] { return HistogramSnapshot{{1, 2, 3}, 9.5}; });
  const std::string text = exposition(r);
  EXPECT_NE(text.find("test_cb_seconds_bucket{le=\"2\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("test_cb_seconds_bucket{le=\"+Inf\"} 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("test_cb_seconds_count 6\n"), std::string::npos) << text;
}

// Two threads updating the same children lose no update.
TEST(MetricsConcurrency, TwoThreadsSumExactly) {
  Registry r;
  Counter& c = r.add_counter("test_c_total", "C.").add({});
  Gauge& g = r.add_gauge("test_g", "G.").add({});
  Histogram& h = r.add_histogram("test_h_seconds", "H.", {}, {1}).add({});
  constexpr int n = 200000;
  auto work = [&] {
    for (int i = 0; i < n; ++i) {
      c.increment();
      g.increment();
      h.observe(i % 2 == 0 ? 0.5 : 2.0);
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(c.value(), 2u * n);
  EXPECT_EQ(g.value(), 2.0 * n);
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.count(), 2u * n);
  EXPECT_EQ(s.buckets[0], std::uint64_t{n});
  EXPECT_EQ(s.sum, n * 0.5 + n * 2.0);
}

}  // namespace
}  // namespace pgwarden::metrics

namespace pgwarden::proxy {
namespace {

// pgwarden's own list renders: every declared metric appears once, with the
// audit metrics at 0 before the audit log exists.
TEST(ProxyMetricsList, EveryMetricIsDeclaredAndAuditReadsZero) {
  metrics::Registry r;
  ProxyMetrics m(r);
  m.client_connections.add_callback({}, [] { return 3.0; });
  const std::string text = metrics::serialize(r.collect());
  for (const char* name :
       {"pgwarden_client_connections", "pgwarden_client_connections_total", "pgwarden_connections_closed_total",
        "pgwarden_statements_total", "pgwarden_denials_total", "pgwarden_statement_duration_seconds",
        "pgwarden_bytes_total", "pgwarden_upstream_connect_errors_total", "pgwarden_tls_handshakes_total",
        "pgwarden_config_reloads_total", "pgwarden_config_last_reload_success_timestamp_seconds",
        "pgwarden_audit_records_total", "pgwarden_audit_write_errors_total", "pgwarden_audit_queue_depth",
        "pgwarden_audit_sync_seconds", "pgwarden_audit_durable_wait_seconds", "pgwarden_build_info"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
  EXPECT_NE(text.find("pgwarden_audit_records_total 0\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_audit_sync_seconds_count 0\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_client_connections 3\n"), std::string::npos);
}

// The data path's children count into the labels a dashboard queries.
TEST(ProxyMetricsList, PreResolvedChildrenCountUnderTheirLabels) {
  metrics::Registry r;
  ProxyMetrics m(r);
  policy::ClassSet read_with_write;
  read_with_write.insert(policy::StatementClass::Read);
  read_with_write.insert(policy::StatementClass::Write);  // a SELECT with a data-modifying CTE
  m.statement(read_with_write, false).increment();
  m.statement(policy::ClassSet{}, true).increment();
  m.closed(CloseReason::IdleTimeout).increment();
  m.connection_result(ConnectionResult::RefusedLimit).increment();
  m.count_tls_handshake(TlsSide::Upstream, TlsResult::Error);
  m.rule_denial("no-drop").increment(2);
  m.bytes_from_client.increment(100);
  const std::string text = metrics::serialize(r.collect());
  EXPECT_NE(text.find("pgwarden_statements_total{class=\"WRITE\",decision=\"allow\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_statements_total{class=\"UNKNOWN\",decision=\"deny\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_connections_closed_total{reason=\"idle_timeout\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_client_connections_total{result=\"refused_limit\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_tls_handshakes_total{side=\"upstream\",result=\"error\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_denials_total{rule=\"no-drop\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_bytes_total{direction=\"from_client\"} 100\n"), std::string::npos);
}

// Every reason a connection can close and every startup outcome has a child
// of its own under its own label: none shares a slot, none writes past its
// array, none is exposed as "unknown".
TEST(ProxyMetricsList, EveryCloseReasonAndConnectionResultHasItsOwnLabel) {
  metrics::Registry r;
  ProxyMetrics m(r);
  std::set<std::string> reasons, results;
  for (std::size_t i = 1; i < close_reason_count; ++i) {  // 0 is None: never a reason to close
    const auto reason = static_cast<CloseReason>(i);
    m.closed(reason).increment(i);
    reasons.emplace(to_string(reason));
  }
  for (std::size_t i = 0; i < connection_result_count; ++i) {
    const auto result = static_cast<ConnectionResult>(i);
    m.connection_result(result).increment(i + 1);
    results.emplace(to_string(result));
  }
  EXPECT_EQ(reasons.size(), close_reason_count - 1);
  EXPECT_EQ(results.size(), connection_result_count);
  EXPECT_FALSE(reasons.contains("unknown"));
  EXPECT_FALSE(results.contains("unknown"));
  const std::string text = metrics::serialize(r.collect());
  for (std::size_t i = 1; i < close_reason_count; ++i) {
    const std::string line = "pgwarden_connections_closed_total{reason=\"" +
                             std::string(to_string(static_cast<CloseReason>(i))) + "\"} " + std::to_string(i) + "\n";
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  for (std::size_t i = 0; i < connection_result_count; ++i) {
    const std::string line = "pgwarden_client_connections_total{result=\"" +
                             std::string(to_string(static_cast<ConnectionResult>(i))) + "\"} " +
                             std::to_string(i + 1) + "\n";
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

// Each *_count constant that sizes an enum-indexed array covers every value:
// one past the last value has no name of its own. A value appended to an
// enum without moving its count fails here, not past the end of an array.
TEST(ProxyMetricsList, EnumCountsCoverEveryValue) {
  EXPECT_EQ(to_string(static_cast<CloseReason>(close_reason_count)), "unknown");
  EXPECT_EQ(to_string(static_cast<ConnectionResult>(connection_result_count)), "unknown");
  EXPECT_EQ(policy::to_string(static_cast<policy::DecisionReason>(policy::decision_reason_count)), "unknown");
  std::set<std::string_view> reasons;
  for (std::size_t i = 0; i < policy::decision_reason_count; ++i) {
    reasons.insert(policy::to_string(static_cast<policy::DecisionReason>(i)));
  }
  EXPECT_EQ(reasons.size(), policy::decision_reason_count);
  EXPECT_FALSE(reasons.contains("unknown"));
}

// A reload counts by result; only a successful one moves the timestamp.
TEST(ProxyMetricsList, ReloadsCountByResultAndSuccessSetsTheTimestamp) {
  metrics::Registry r;
  ProxyMetrics m(r);
  m.count_config_reload(true, std::chrono::system_clock::time_point(std::chrono::seconds(1000)));
  m.count_config_reload(false, std::chrono::system_clock::time_point(std::chrono::seconds(2000)));
  const std::string text = metrics::serialize(r.collect());
  EXPECT_NE(text.find("pgwarden_config_reloads_total{result=\"success\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_config_reloads_total{result=\"error\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_config_last_reload_success_timestamp_seconds 1000\n"), std::string::npos);
}

}  // namespace
}  // namespace pgwarden::proxy
