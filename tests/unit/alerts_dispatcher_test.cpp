// Delivery against real receivers on loopback: a signed webhook arrives
// and verifies, syslog arrives over UDP and TCP, and a sink that is down,
// slow past its timeout, or answering 500 is retried and then reported
// undelivered: nothing is lost and raising an alert never waits.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "alerts/dispatcher.hpp"
#include "alerts/http_sink.hpp"
#include "alerts/payload.hpp"
#include "alerts/syslog_sink.hpp"
#include "alerts_receivers.hpp"

namespace pgwarden::alerts {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using namespace testing;

Alert alert_for(const std::string& user) {
  Alert a;
  a.user = user;
  a.client_addr = "127.0.0.1";
  a.statement = "DROP TABLE t";
  a.rule = "no-drop";
  a.denied = true;
  a.time = std::chrono::system_clock::now();
  a.session_id = "s-" + user;
  return a;
}

config::HttpUrl url_of(const std::string& text) {
  std::string error;
  return *config::parse_http_url(text, error);
}

struct Undelivered {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> items;  // session_id, why
  UndeliveredHandler handler() {
    return [this](const Alert& a, std::string_view, std::string_view why) {
      std::lock_guard lock(mutex);
      items.emplace_back(a.session_id, std::string(why));
    };
  }
  std::size_t wait_for(std::size_t n, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      {
        std::lock_guard lock(mutex);
        if (items.size() >= n) return items.size();
      }
      std::this_thread::sleep_for(5ms);
    }
    std::lock_guard lock(mutex);
    return items.size();
  }
};

SinkSettings quick(std::string name, std::chrono::milliseconds timeout = 2s) {
  return {std::move(name), timeout, 100, 3, 20ms, 100ms};
}

// The webhook receiver verifies the signature with the key file's key.
TEST(AlertsDispatcher, SignedWebhookArrivesAndVerifies) {
  HttpReceiver receiver;
  const std::string key = "0123456789abcdef0123456789abcdef";
  Undelivered undelivered;
  Dispatcher d(0ms, undelivered.handler());
  d.add_sink(quick("hook"), std::make_unique<HttpSink>(url_of(receiver.url()), webhook_json, key, ""));
  d.start();
  d.raise(alert_for("bob"));
  auto got = receiver.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/hook");
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[0].signature, signature_header(key, got[0].body));
  EXPECT_EQ(boost::json::parse(got[0].body).at("user"), "bob");
  d.stop(2s);
  EXPECT_TRUE(undelivered.items.empty());
}

// RFC 5426: one message per datagram; RFC 6587: "<len> <msg>" on one
// connection kept open for the next alert.
TEST(AlertsDispatcher, SyslogArrivesOverUdpAndTcp) {
  UdpReceiver udp;
  TcpReceiver tcp;
  Undelivered undelivered;
  Dispatcher d(0ms, undelivered.handler());
  d.add_sink(quick("udp"), std::make_unique<SyslogSink>(config::Endpoint{"127.0.0.1", udp.port()},
                                                        config::SyslogTransport::Udp, 10, ""));
  d.add_sink(quick("tcp"), std::make_unique<SyslogSink>(config::Endpoint{"127.0.0.1", tcp.port()},
                                                        config::SyslogTransport::Tcp, 10, ""));
  d.start();
  d.raise(alert_for("bob"));
  d.raise(alert_for("carol"));
  const std::string first = udp.next();
  EXPECT_THAT(first, ::testing::StartsWith("<82>1 "));
  EXPECT_THAT(first, HasSubstr(R"(user="bob")"));
  EXPECT_THAT(udp.next(), HasSubstr(R"(user="carol")"));
  // Two octet-counted frames, parsed back by their lengths from all the
  // bytes received so far, reading more until both are whole.
  auto parse = [](std::string stream, std::vector<std::string>& frames) {
    frames.clear();
    for (;;) {
      const auto space = stream.find(' ');
      if (space == std::string::npos) return stream;
      const std::size_t len = std::stoul(stream.substr(0, space));
      if (stream.size() < space + 1 + len) return stream;
      frames.push_back(stream.substr(space + 1, len));
      stream.erase(0, space + 1 + len);
    }
  };
  std::vector<std::string> frames;
  std::string received = tcp.read_at_least(1);
  std::string rest = parse(received, frames);
  for (auto limit = std::chrono::steady_clock::now() + 5s; frames.size() < 2 && std::chrono::steady_clock::now() < limit;) {
    received = tcp.read_at_least(received.size() + 1);
    rest = parse(received, frames);
  }
  ASSERT_EQ(frames.size(), 2u) << received;
  const std::string stream = rest;
  EXPECT_THAT(frames[0], ::testing::StartsWith("<82>1 "));
  EXPECT_THAT(frames[0], HasSubstr(R"(user="bob")"));
  EXPECT_THAT(frames[1], HasSubstr(R"(user="carol")"));
  EXPECT_TRUE(stream.empty());
  d.stop(2s);
  EXPECT_TRUE(undelivered.items.empty());
}

// Raises `n` alerts at a sink and checks that raising took no time, that
// every alert ended undelivered with `why`, after every attempt.
void expect_all_undelivered(Sink* sink_ptr, std::chrono::milliseconds timeout, const std::string& why, int n,
                            std::chrono::milliseconds limit) {
  std::unique_ptr<Sink> sink(sink_ptr);
  Undelivered undelivered;
  metrics::Registry registry;
  AlertMetrics metrics(registry);
  Dispatcher d(0ms, undelivered.handler(), &metrics);
  d.add_sink(quick("bad", timeout), std::move(sink));
  d.start();
  const auto before = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) d.raise(alert_for("u" + std::to_string(i)));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 50ms) << "raise() waited for the network";
  EXPECT_EQ(undelivered.wait_for(n, limit), static_cast<std::size_t>(n));
  std::lock_guard lock(undelivered.mutex);
  std::set<std::string> sessions;
  for (const auto& [session, reason] : undelivered.items) {
    sessions.insert(session);
    EXPECT_THAT(reason, HasSubstr(why));
    EXPECT_THAT(reason, HasSubstr("attempt 3 of 3"));
  }
  EXPECT_EQ(sessions.size(), static_cast<std::size_t>(n)) << "each alert reported once";
  EXPECT_EQ(metrics.result("bad", DeliveryResult::Undelivered).value(), static_cast<std::uint64_t>(n));
  EXPECT_EQ(metrics.result("bad", DeliveryResult::Retried).value(), static_cast<std::uint64_t>(2 * n));
  EXPECT_EQ(metrics.result("bad", DeliveryResult::Delivered).value(), 0u);
}

TEST(AlertsDispatcher, DownSinkIsRetriedThenUndelivered) {
  const auto port = closed_port();
  expect_all_undelivered(new HttpSink(url_of("http://127.0.0.1:" + std::to_string(port) + "/"), webhook_json, "", ""),
                         1s, "Connection refused", 3, 10s);
}

TEST(AlertsDispatcher, SinkAnswering500IsRetriedThenUndelivered) {
  HttpReceiver receiver(500);
  expect_all_undelivered(new HttpSink(url_of(receiver.url()), webhook_json, "", ""), 1s, "HTTP 500", 3, 10s);
  EXPECT_EQ(receiver.count(), 9u);  // 3 alerts x 3 attempts
}

// The receiver takes 10 s to answer; each attempt gives up at 200 ms.
TEST(AlertsDispatcher, SlowSinkTimesOutThenUndelivered) {
  HttpReceiver receiver(200, 10s);
  expect_all_undelivered(new HttpSink(url_of(receiver.url()), webhook_json, "", ""), 200ms, "timed out after 200ms", 2,
                         10s);
}

// A full queue reports the alert at once instead of waiting for room.
TEST(AlertsDispatcher, FullQueueIsUndeliveredAtOnce) {
  HttpReceiver receiver(200, 10s);
  Undelivered undelivered;
  Dispatcher d(0ms, undelivered.handler());
  d.add_sink({"slow", 5s, 2, 1, 10ms, 10ms}, std::make_unique<HttpSink>(url_of(receiver.url()), webhook_json, "", ""));
  d.start();
  receiver.wait_for(0);
  d.raise(alert_for("first"));
  receiver.wait_for(1);  // in flight, queue empty
  for (int i = 0; i < 5; ++i) d.raise(alert_for("q" + std::to_string(i)));
  EXPECT_EQ(undelivered.wait_for(3, 1s), 3u);
  EXPECT_EQ(d.queue_depth(0), 2u);
  {
    std::lock_guard lock(undelivered.mutex);
    for (const auto& [session, why] : undelivered.items) EXPECT_THAT(why, HasSubstr("queue full"));
  }
  d.stop();  // what is queued or in flight is reported, not lost
  EXPECT_EQ(undelivered.items.size(), 6u);
}

// A storm of the same alert reaches the receiver as the first alert and one
// message with the count; another user's alert is not folded into it.
TEST(AlertsDispatcher, StormIsAggregatedIntoOneMessageWithACount) {
  HttpReceiver receiver;
  Undelivered undelivered;
  Dispatcher d(300ms, undelivered.handler());
  d.add_sink(quick("hook"), std::make_unique<HttpSink>(url_of(receiver.url()), webhook_json, "", ""));
  d.start();
  for (int i = 0; i < 500; ++i) d.raise(alert_for("bob"));
  d.raise(alert_for("carol"));
  auto got = receiver.wait_for(3, 5s);
  ASSERT_EQ(got.size(), 3u);
  std::map<std::string, std::vector<std::int64_t>> counts;
  for (const auto& r : got) {
    auto o = boost::json::parse(r.body).as_object();
    counts[std::string(o.at("user").as_string())].push_back(o.at("count").as_int64());
  }
  EXPECT_EQ(counts["bob"], (std::vector<std::int64_t>{1, 499}));
  EXPECT_EQ(counts["carol"], (std::vector<std::int64_t>{1}));
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(receiver.count(), 3u);
  d.stop(1s);
  EXPECT_TRUE(undelivered.items.empty());
}

}  // namespace
}  // namespace pgwarden::alerts
