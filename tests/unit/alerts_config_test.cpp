// The alerts: section: sinks of every type load with their settings, and
// each mistake is reported at its line:col so `pgwarden check` can show it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"

namespace pgwarden::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

const std::string kHead = "listen: 127.0.0.1:6432\nupstream: { host: 127.0.0.1, port: 5432, tls: disable }\n";

std::vector<std::string> errors_of(const std::string& yaml) {
  auto r = load_config_string(kHead + yaml, "t.yaml");
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

// Four sinks, one of each type, with their settings read as written.
TEST(AlertsConfig, EverySinkTypeLoadsWithItsSettings) {
  auto r = load_config_string(kHead + R"(
alerts:
  aggregation_window: 30s
  sinks:
    - { name: hook, type: webhook, url: "https://hooks.example.com:8443/pg?x=1", timeout: 2s, queue_size: 50,
        retry: { attempts: 3, initial_backoff: 100ms, max_backoff: 1s } }
    - { name: chat, type: slack, url: "http://chat.example.com" }
    - { name: am, type: alertmanager, url: "http://[::1]:9093/" }
    - { name: log, type: syslog, address: "127.0.0.1:514", transport: tcp, facility: 4 }
)",
                              "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& a = r.config->alerts;
  EXPECT_EQ(a.aggregation_window, 30s);
  ASSERT_EQ(a.sinks.size(), 4u);
  EXPECT_EQ(a.sinks[0].type, AlertSinkType::Webhook);
  EXPECT_TRUE(a.sinks[0].url.tls);
  EXPECT_EQ(a.sinks[0].url.host, "hooks.example.com");
  EXPECT_EQ(a.sinks[0].url.port, 8443);
  EXPECT_EQ(a.sinks[0].url.target, "/pg?x=1");
  EXPECT_EQ(a.sinks[0].timeout, 2s);
  EXPECT_EQ(a.sinks[0].queue_size, 50u);
  EXPECT_EQ(a.sinks[0].attempts, 3u);
  EXPECT_EQ(a.sinks[0].initial_backoff, 100ms);
  EXPECT_EQ(a.sinks[0].max_backoff, 1s);
  EXPECT_EQ(a.sinks[1].url.port, 80);
  EXPECT_EQ(a.sinks[1].url.target, "/");
  EXPECT_EQ(a.sinks[2].url.host, "::1");
  EXPECT_EQ(a.sinks[3].type, AlertSinkType::Syslog);
  EXPECT_EQ(a.sinks[3].transport, SyslogTransport::Tcp);
  EXPECT_EQ(a.sinks[3].address.port, 514);
  EXPECT_EQ(a.sinks[3].facility, 4);
}

// Mistakes point at the value that is wrong (kHead is lines 1-2).
TEST(AlertsConfig, MistakesAreReportedAtTheirPosition) {
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: webhook, url: \"ftp://x\" }\n"),
              ElementsAre("t.yaml:5:38: alerts.sinks[0].url: must start with http:// or https://, got 'ftp://x'"));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: pager, url: \"http://x\" }\n"),
              ElementsAre(::testing::StartsWith("t.yaml:5:24: alerts.sinks[0].type:")));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: syslog }\n"),
              ElementsAre("t.yaml:5:7: alerts.sinks[0]: a syslog sink needs address (host:port)"));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: slack, url: \"http://x\", key_file: k }\n"),
              ::testing::Contains("t.yaml:5:58: alerts.sinks[0].key_file: only a webhook sink signs its messages"));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: alertmanager, url: \"http://x:0\" }\n"),
              ElementsAre(::testing::HasSubstr("the port must be from 1 to 65535")));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: slack, url: \"http://x\", queue_size: 0 }\n"),
              ElementsAre("t.yaml:5:60: alerts.sinks[0].queue_size: must be at least 1"));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { name: a, type: slack, url: \"http://x\" }\n"
                        "    - { name: a, type: slack, url: \"http://y\" }\n"),
              ElementsAre("t.yaml:6:7: alerts.sinks[1].name: 'a' names another sink already"));
  EXPECT_THAT(errors_of("alerts:\n  sinks:\n    - { type: slack, url: \"http://x\" }\n"),
              ElementsAre(::testing::HasSubstr("name")));
  EXPECT_THAT(errors_of("alerts:\n  window: 1s\n"), ElementsAre(::testing::StartsWith("t.yaml:4:3: ")));
}

}  // namespace
}  // namespace pgwarden::config
