// What each receiver sees: the webhook's JSON and its signature, the
// Alertmanager v2 body, the Slack text, RFC 5424 syslog lines and RFC 6587
// octet counting, and how a storm of one alert is aggregated.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "alerts/aggregator.hpp"
#include "alerts/http_sink.hpp"
#include "alerts/payload.hpp"

namespace pgwarden::alerts {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace json = boost::json;

Alert denied_drop() {
  Alert a;
  a.kind = AlertKind::Rule;
  a.person = "alice";
  a.user = "app";
  a.database = "shop";
  a.client_addr = "10.0.0.7";
  a.application_name = "psql";
  a.statement = "DROP TABLE orders";
  a.rule = "no-drop";
  a.denied = true;
  a.time = std::chrono::sys_days{std::chrono::year{2026} / 12 / 8} + 1h + 2min + 3s;
  a.session_id = "s-42";
  a.record_hash = std::string(64, 'a');
  return a;
}

// The receiver recomputes HMAC-SHA256 over the body it got with the shared key.
TEST(AlertsPayload, WebhookSignatureVerifiesAgainstTheBody) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  const std::string body = webhook_json(denied_drop());
  unsigned char mac[32];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &n);
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", mac[i]);
    hex += b;
  }
  EXPECT_EQ(signature_header(key, body), "sha256=" + hex);
  EXPECT_NE(signature_header(key, body + " "), "sha256=" + hex);
}

// Every field a responder needs is in the webhook body by name.
TEST(AlertsPayload, WebhookCarriesEveryField) {
  const auto o = json::parse(webhook_json(denied_drop())).as_object();
  EXPECT_EQ(o.at("kind"), "rule");
  EXPECT_EQ(o.at("severity"), "critical");
  EXPECT_EQ(o.at("person"), "alice");
  EXPECT_EQ(o.at("user"), "app");
  EXPECT_EQ(o.at("database"), "shop");
  EXPECT_EQ(o.at("client_addr"), "10.0.0.7");
  EXPECT_EQ(o.at("application_name"), "psql");
  EXPECT_EQ(o.at("statement"), "DROP TABLE orders");
  EXPECT_EQ(o.at("rule"), "no-drop");
  EXPECT_EQ(o.at("decision"), "deny");
  EXPECT_EQ(o.at("dry_run"), false);
  EXPECT_EQ(o.at("time"), "2026-12-08T01:02:03.000000Z");
  EXPECT_EQ(o.at("session_id"), "s-42");
  EXPECT_EQ(o.at("record_hash").as_string(), std::string(64, 'a'));
  EXPECT_EQ(o.at("count"), 1);
}

// Alertmanager v2 takes an array of {labels, annotations, startsAt}; label
// values are the bounded facts, the statement is an annotation.
TEST(AlertsPayload, AlertmanagerBodyHasTheV2Shape) {
  const auto body = json::parse(alertmanager_json(denied_drop()));
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.as_array().size(), 1u);
  const auto& alert = body.as_array()[0].as_object();
  const auto& labels = alert.at("labels").as_object();
  EXPECT_EQ(labels.at("alertname"), "pgwarden_rule");
  EXPECT_EQ(labels.at("severity"), "critical");
  EXPECT_EQ(labels.at("rule"), "no-drop");
  EXPECT_EQ(labels.at("user"), "app");
  EXPECT_EQ(labels.at("person"), "alice");
  EXPECT_EQ(labels.at("client"), "10.0.0.7");
  EXPECT_EQ(labels.at("database"), "shop");
  EXPECT_EQ(labels.at("decision"), "deny");
  for (const auto& [k, v] : labels) EXPECT_FALSE(v.as_string().empty()) << k;
  const auto& ann = alert.at("annotations").as_object();
  EXPECT_EQ(ann.at("statement"), "DROP TABLE orders");
  EXPECT_EQ(ann.at("session_id"), "s-42");
  EXPECT_EQ(ann.at("record_hash").as_string(), std::string(64, 'a'));
  EXPECT_EQ(ann.at("application_name"), "psql");
  EXPECT_THAT(std::string(ann.at("summary").as_string()), HasSubstr("denied by rule no-drop"));
  EXPECT_EQ(alert.at("startsAt"), "2026-12-08T01:02:03.000000Z");
  EXPECT_EQ(alertmanager_url({false, "am", 9093, "/"}).target, "/api/v2/alerts");
  EXPECT_EQ(alertmanager_url({false, "am", 9093, "/prefix/"}).target, "/prefix/api/v2/alerts");
  EXPECT_EQ(alertmanager_url({false, "am", 9093, "/api/v2/alerts"}).target, "/api/v2/alerts");
}

TEST(AlertsPayload, SlackTextNamesWhoWhatAndWhere) {
  const auto o = json::parse(slack_json(denied_drop())).as_object();
  const std::string text(o.at("text").as_string());
  EXPECT_THAT(text, HasSubstr("alice (as app) denied by rule no-drop from 10.0.0.7 on shop"));
  EXPECT_THAT(text, HasSubstr("DROP TABLE orders"));
  EXPECT_THAT(text, HasSubstr("session: s-42"));
}

// RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
// MSGID SP STRUCTURED-DATA SP MSG, with '"', '\' and ']' escaped in values.
TEST(AlertsPayload, SyslogIsRfc5424WithStructuredData) {
  Alert a = denied_drop();
  a.statement = R"(DROP TABLE "x]y\z")";
  const std::string m = syslog_message(a, 10, "db1");
  // authpriv (10) * 8 + critical (2) = 82
  // gtest's POSIX regex: GCC 12 warns inside std::regex under the sanitizers.
  EXPECT_THAT(m, ::testing::MatchesRegex(
                     R"(<82>1 2026-12-08T01:02:03\.000000Z db1 pgwarden [0-9]+ rule \[pgwarden@32473 .*\] pgwarden: .*)"));
  EXPECT_THAT(m, HasSubstr(R"(statement="DROP TABLE \"x\]y\\z\"")"));
  EXPECT_THAT(m, HasSubstr(R"(user="app")"));
  EXPECT_THAT(m, HasSubstr(R"(session_id="s-42")"));
  EXPECT_EQ(octet_counted("abc"), "3 abc");
  EXPECT_EQ(octet_counted(m), std::to_string(m.size()) + " " + m);
}

// A storm: the first alert goes out at once, the next 99 within the window
// become one message with count 99 when it ends, and a quiet window closes
// the key so the next alert goes out at once again.
TEST(AlertsAggregator, StormBecomesOneMessageWithACount) {
  Aggregator agg(10s);
  const auto t0 = Aggregator::Clock::time_point{} + 1h;
  Alert a = denied_drop();
  EXPECT_TRUE(agg.offer(a, t0));
  for (int i = 1; i < 100; ++i) EXPECT_FALSE(agg.offer(a, t0 + std::chrono::milliseconds(i)));
  Alert other = a;
  other.client_addr = "10.0.0.8";
  EXPECT_TRUE(agg.offer(other, t0 + 1s));  // another client is another alert
  EXPECT_EQ(agg.pending(), 99u);
  EXPECT_TRUE(agg.flush(t0 + 9s).empty());
  auto out = agg.flush(t0 + 10s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].count, 99u);
  EXPECT_EQ(out[0].client_addr, "10.0.0.7");
  EXPECT_THAT(summary(out[0]), HasSubstr("(99 times)"));
  EXPECT_FALSE(agg.offer(a, t0 + 12s));  // still stormy: the new window counts it
  EXPECT_EQ(agg.flush(t0 + 20s).size(), 1u);
  EXPECT_TRUE(agg.flush(t0 + 30s).empty());  // a quiet window closes the key
  EXPECT_TRUE(agg.offer(a, t0 + 31s));
}

TEST(AlertsAggregator, ZeroWindowSendsEverything) {
  Aggregator agg(0s);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(agg.offer(denied_drop(), Aggregator::Clock::now()));
}

}  // namespace
}  // namespace pgwarden::alerts
