#include "alerts/dispatcher.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "alerts/io.hpp"

namespace pgwarden::alerts {

/// One sink: its queue, the alert in flight, and its metric children.
struct Dispatcher::Lane {
  Lane(SinkSettings s, std::unique_ptr<Sink> k, asio::io_context& io, AlertMetrics& m)
      : settings(std::move(s)), sink(std::move(k)), wake(io), retry(io),
        delivered(m.result(settings.name, DeliveryResult::Delivered)),
        retried(m.result(settings.name, DeliveryResult::Retried)),
        undelivered(m.result(settings.name, DeliveryResult::Undelivered)),
        dropped(m.result(settings.name, DeliveryResult::Dropped)),
        aggregated(m.result(settings.name, DeliveryResult::Aggregated)), depth(m.queue_depth(settings.name)) {
    depth.set(0);
  }

  SinkSettings settings;
  std::unique_ptr<Sink> sink;
  asio::steady_timer wake;   // waits while the queue is empty
  asio::steady_timer retry;  // waits out a backoff
  mutable std::mutex mutex;  // guards queue and in_flight
  std::deque<Alert> queue;
  std::optional<Alert> in_flight;
  metrics::Counter &delivered, &retried, &undelivered, &dropped, &aggregated;
  metrics::Gauge& depth;
};

SinkSettings settings_of(const config::AlertSinkConfig& c) {
  return {c.name, c.timeout, c.queue_size, std::max(1u, c.attempts), c.initial_backoff, c.max_backoff};
}

Dispatcher::Dispatcher(std::chrono::milliseconds aggregation_window, UndeliveredHandler undelivered,
                       AlertMetrics* metrics)
    : metrics_(metrics), undelivered_(std::move(undelivered)), aggregator_(aggregation_window), flush_timer_(io_),
      rng_(std::random_device{}()) {
  if (!metrics_) {
    own_registry_ = std::make_unique<metrics::Registry>();
    own_metrics_ = std::make_unique<AlertMetrics>(*own_registry_);
    metrics_ = own_metrics_.get();
  }
}

Dispatcher::~Dispatcher() { stop(); }

std::unique_ptr<Dispatcher> Dispatcher::create(const config::AlertsConfig& c, AlertMetrics* metrics,
                                               UndeliveredHandler undelivered, std::string& error) {
  auto d = std::make_unique<Dispatcher>(c.aggregation_window, std::move(undelivered), metrics);
  for (const auto& s : c.sinks) {
    auto sink = make_sink(s, error);
    if (!sink) {
      error = "alert sink " + s.name + ": " + error;
      return nullptr;
    }
    d->add_sink(settings_of(s), std::move(sink));
  }
  d->start();
  return d;
}

void Dispatcher::add_sink(SinkSettings settings, std::unique_ptr<Sink> sink) {
  lanes_.push_back(std::make_unique<Lane>(std::move(settings), std::move(sink), io_, *metrics_));
}

void Dispatcher::start() {
  if (started_) return;
  started_ = true;
  for (auto& lane : lanes_) asio::co_spawn(io_, work(*lane), asio::detached);
  asio::co_spawn(io_, flush_windows(), asio::detached);
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
}

void Dispatcher::raise(Alert a) noexcept {
  if (lanes_.empty() || stopping_.load(std::memory_order_relaxed)) {
    for (auto& lane : lanes_) report(*lane, a, "pgwarden is stopping");
    return;
  }
  try {
    bool now;
    {
      std::lock_guard lock(aggregator_mutex_);
      now = aggregator_.offer(a, Aggregator::Clock::now());
    }
    if (!now) {
      for (auto& lane : lanes_) lane->aggregated.increment(a.count);
      return;
    }
    // A new window may end before the flush timer's current deadline.
    if (aggregator_.enabled()) asio::post(io_, [this] { flush_timer_.cancel(); });
    enqueue(std::move(a));
  } catch (const std::exception&) {  // out of memory: nothing sensible is left to do
  }
}

void Dispatcher::enqueue(Alert a) {
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = *lanes_[i];
    bool full;
    {
      std::lock_guard lock(lane.mutex);
      full = lane.queue.size() >= lane.settings.queue_size;
      if (!full) {
        lane.queue.push_back(i + 1 == lanes_.size() ? std::move(a) : a);
        lane.depth.set(static_cast<double>(lane.queue.size()));
      }
    }
    if (full) {
      lane.dropped.increment();
      report(lane, a, "queue full (" + std::to_string(lane.settings.queue_size) + " alerts waiting)");
      continue;
    }
    asio::post(io_, [&lane] { lane.wake.cancel(); });
  }
}

void Dispatcher::report(Lane& lane, const Alert& a, std::string_view why) {
  lane.undelivered.increment();
  if (undelivered_) undelivered_(a, lane.settings.name, why);
}

asio::awaitable<void> Dispatcher::work(Lane& lane) {
  while (!stopping_) {
    bool have = false;
    {
      std::lock_guard lock(lane.mutex);
      if (!lane.queue.empty()) {
        lane.in_flight = std::move(lane.queue.front());
        lane.queue.pop_front();
        lane.depth.set(static_cast<double>(lane.queue.size()));
        have = true;
      }
    }
    if (!have) {
      lane.wake.expires_at(asio::steady_timer::time_point::max());
      co_await lane.wake.async_wait(use_nothrow);
      continue;
    }
    co_await deliver(lane, *lane.in_flight);
    std::lock_guard lock(lane.mutex);
    lane.in_flight.reset();
  }
}

asio::awaitable<void> Dispatcher::deliver(Lane& lane, const Alert& a) {
  std::string why;
  for (unsigned attempt = 1;; ++attempt) {
    why = co_await lane.sink->deliver(a, lane.settings.timeout);
    if (why.empty()) {
      lane.delivered.increment();
      co_return;
    }
    if (attempt >= lane.settings.attempts || stopping_) {
      why += " (attempt " + std::to_string(attempt) + " of " + std::to_string(lane.settings.attempts) + ")";
      break;
    }
    lane.retried.increment();
    lane.retry.expires_after(backoff(lane, attempt));
    co_await lane.retry.async_wait(use_nothrow);
  }
  report(lane, a, why);
}

std::chrono::milliseconds Dispatcher::backoff(const Lane& lane, unsigned failed_attempts) {
  // initial * 2^(n-1), capped, then a uniform jitter over its upper half so
  // that sinks failing together do not retry in step.
  auto base = lane.settings.initial_backoff;
  for (unsigned i = 1; i < failed_attempts && base < lane.settings.max_backoff; ++i) base *= 2;
  base = std::min(base, lane.settings.max_backoff);
  std::uniform_int_distribution<long long> jitter(base.count() / 2, std::max<long long>(base.count(), 1));
  return std::chrono::milliseconds(jitter(rng_));
}

asio::awaitable<void> Dispatcher::flush_windows() {
  while (!stopping_) {
    {
      std::lock_guard lock(aggregator_mutex_);
      flush_timer_.expires_at(aggregator_.next_deadline());
    }
    co_await flush_timer_.async_wait(use_nothrow);
    std::vector<Alert> due;
    {
      std::lock_guard lock(aggregator_mutex_);
      due = aggregator_.flush(Aggregator::Clock::now());
    }
    for (auto& a : due) enqueue(std::move(a));
  }
}

bool Dispatcher::idle() const {
  for (const auto& lane : lanes_) {
    std::lock_guard lock(lane->mutex);
    if (!lane->queue.empty() || lane->in_flight) return false;
  }
  return true;
}

void Dispatcher::stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  std::vector<Alert> held;
  {
    std::lock_guard lock(aggregator_mutex_);
    held = aggregator_.flush(Aggregator::Clock::time_point::max());
  }
  if (started_) {
    for (auto& a : held) enqueue(std::move(a));
    held.clear();
    const auto until = std::chrono::steady_clock::now() + grace;
    while (!idle() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopping_ = true;
  io_.stop();
  if (thread_.joinable()) thread_.join();
  for (auto& lane : lanes_) {
    std::deque<Alert> left;
    std::optional<Alert> in_flight;
    {
      std::lock_guard lock(lane->mutex);
      left.swap(lane->queue);
      in_flight.swap(lane->in_flight);
      lane->depth.set(0);
    }
    if (in_flight) report(*lane, *in_flight, "pgwarden stopped during delivery");
    for (const auto& a : left) report(*lane, a, "pgwarden stopped before delivery");
    for (const auto& a : held) report(*lane, a, "pgwarden stopped before delivery");
  }
}

std::size_t Dispatcher::queue_depth(std::size_t i) const {
  std::lock_guard lock(lanes_[i]->mutex);
  return lanes_[i]->queue.size();
}

}  // namespace pgwarden::alerts
