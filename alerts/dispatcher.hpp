#pragma once
/// Takes alerts from any thread and delivers them on a thread of its own,
/// so that raising an alert never waits for a network: each sink has a
/// bounded queue, a timeout per attempt, retries with exponential backoff
/// and jitter, and what it cannot deliver goes to the `undelivered`
/// callback (the proxy writes it to the audit log), never silently away.
/// A storm of the same alert is aggregated into one message per window.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "alerts/aggregator.hpp"
#include "alerts/alert.hpp"
#include "alerts/alert_metrics.hpp"
#include "alerts/sink.hpp"
#include "config/config.hpp"

namespace pgwarden::alerts {

/// How one sink is driven.
struct SinkSettings {
  std::string name;
  std::chrono::milliseconds timeout{5000};
  std::size_t queue_size = 1000;
  unsigned attempts = 5;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10000};
};
/// The settings of a configured sink.
SinkSettings settings_of(const config::AlertSinkConfig& c);

/// Called with an alert a sink could not deliver, the sink's name and why.
/// Runs on the dispatcher's thread, or on the raising thread when a queue
/// is full: it must not block.
using UndeliveredHandler = std::function<void(const Alert&, std::string_view sink, std::string_view why)>;

class Dispatcher {
 public:
  /// `metrics` null: the dispatcher counts in a registry of its own.
  Dispatcher(std::chrono::milliseconds aggregation_window, UndeliveredHandler undelivered,
             AlertMetrics* metrics = nullptr);
  /// Stops (as stop() with no grace) and joins the thread.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// The dispatcher for `c`'s sinks, started; null with `error` set when a
  /// sink cannot be made.
  static std::unique_ptr<Dispatcher> create(const config::AlertsConfig& c, AlertMetrics* metrics,
                                            UndeliveredHandler undelivered, std::string& error);

  /// Adds a sink; only before start().
  void add_sink(SinkSettings settings, std::unique_ptr<Sink> sink);
  /// Starts the delivery thread.
  void start();

  /// Hands `a` to every sink, from any thread, without waiting: a full
  /// queue makes it undelivered for that sink at once.
  void raise(Alert a) noexcept;

  /// Sends what aggregation holds back, waits up to `grace` for the queues
  /// to empty, then stops: whatever is still queued or in flight is
  /// reported undelivered. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  /// Alerts waiting at sink `i` now (for tests and the gauge).
  std::size_t queue_depth(std::size_t i) const;

 private:
  struct Lane;
  boost::asio::awaitable<void> work(Lane& lane);
  boost::asio::awaitable<void> deliver(Lane& lane, const Alert& a);
  boost::asio::awaitable<void> flush_windows();
  void enqueue(Alert a);
  void report(Lane& lane, const Alert& a, std::string_view why);
  std::chrono::milliseconds backoff(const Lane& lane, unsigned failed_attempts);
  bool idle() const;

  boost::asio::io_context io_;  // first: destroyed after the lanes' timers
  std::unique_ptr<metrics::Registry> own_registry_;
  std::unique_ptr<AlertMetrics> own_metrics_;
  AlertMetrics* metrics_;
  UndeliveredHandler undelivered_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  mutable std::mutex aggregator_mutex_;
  Aggregator aggregator_;
  boost::asio::steady_timer flush_timer_;
  std::minstd_rand rng_;  // the delivery thread's
  std::atomic<bool> stopping_{false};
  bool started_ = false, stopped_ = false;
  std::thread thread_;
};

}  // namespace pgwarden::alerts
