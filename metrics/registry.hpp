#pragma once
/// A small Prometheus registry: counters, gauges and histograms with labels,
/// grouped in families and rendered in the text exposition format 0.0.4.
/// Names follow prometheus-cpp (Registry, Family, Counter, Gauge, Histogram,
/// add, collect, serialize) so the code reads like the library it stands in for.
///
/// Children are made off the hot path (add() locks its family); updating one
/// is a relaxed atomic add, so the data path resolves the children it needs
/// once and then pays one atomic instruction per event. Values owned
/// elsewhere are read at scrape time through callback children, so the
/// module that owns them does not depend on this registry.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgwarden::metrics {

enum class MetricType : std::uint8_t { Counter, Gauge, Histogram };
/// "counter", "gauge", "histogram": the word of the exposition's TYPE line.
std::string_view to_string(MetricType t) noexcept;

/// Label name/value pairs, as in prometheus-cpp's Add({{"class", "READ"}}).
/// Every label name the family declares must be given, in any order.
using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

/// A count that only goes up. Integer, since pgwarden counts events and bytes.
class alignas(64) Counter {
 public:
  /// Reads a counter owned elsewhere at scrape time.
  using Callback = std::function<double()>;
  static constexpr MetricType type = MetricType::Counter;

  /// Adds `n`: one relaxed atomic add, safe from any thread.
  void increment(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  /// The count now (for scrapes and tests).
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down.
class alignas(64) Gauge {
 public:
  /// Reads a gauge owned elsewhere at scrape time.
  using Callback = std::function<double()>;
  static constexpr MetricType type = MetricType::Gauge;

  /// Each is one relaxed atomic operation, safe from any thread.
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void increment(double d = 1) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void decrement(double d = 1) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
  /// The value now (for scrapes and tests).
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A histogram at one moment.
struct HistogramSnapshot {
  /// Observations per bucket, not cumulative: one per upper bound, then +Inf.
  std::vector<std::uint64_t> buckets;
  double sum = 0;
  /// The total of `buckets`.
  std::uint64_t count() const noexcept;
};

/// Observations counted in buckets with fixed upper bounds, plus their sum.
/// The count is the total of the buckets, so a scrape always sees the +Inf
/// bucket equal to the count.
class alignas(64) Histogram {
 public:
  /// Reads a histogram owned elsewhere at scrape time; its buckets must
  /// follow the family's bounds (missing ones read as 0).
  using Callback = std::function<HistogramSnapshot()>;
  static constexpr MetricType type = MetricType::Histogram;

  /// `bounds` (ascending) must outlive the histogram; the family owns them.
  explicit Histogram(std::span<const double> bounds);

  /// Counts `v` in the first bucket whose upper bound is >= v and adds it
  /// to the sum: two relaxed atomic adds, safe from any thread.
  void observe(double v) noexcept {
    std::size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }
  /// The buckets and sum now (for scrapes and tests).
  HistogramSnapshot snapshot() const;

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

/// One child as collected: its label values (in the family's label order)
/// and its value, or its histogram.
struct CollectedChild {
  std::vector<std::string> label_values;
  double value = 0;
  HistogramSnapshot histogram;
};

/// One family as collected, ready to serialize.
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::Counter;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  ///< histograms only
  std::vector<CollectedChild> children;
};

/// What every family is to the registry.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
             std::vector<double> bounds);
  virtual ~FamilyBase();
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  /// The metric name, e.g. "pgwarden_statements_total".
  const std::string& name() const noexcept { return name_; }
  /// The family and the current value of every child.
  MetricFamily collect() const;

 protected:
  /// Label values of `labels` in declared order; throws std::invalid_argument
  /// when a name is missing, repeated or not declared, or a value is empty.
  std::vector<std::string> ordered_values(Labels labels) const;
  virtual void collect_children(std::vector<CollectedChild>& out) const = 0;

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
};

/// All children of one metric name, one per distinct set of label values.
template <class T>
class Family final : public FamilyBase {
 public:
  using FamilyBase::FamilyBase;

  /// The child with these label values, made on first use. The reference
  /// stays valid as long as the registry: resolve it once, keep it.
  T& add(Labels labels);
  /// A child whose value `read` returns at each scrape (a later call with
  /// the same labels replaces the callback). `read` runs under the family's
  /// lock and must not call back into this family.
  void add_callback(Labels labels, typename T::Callback read);

 private:
  struct Child {
    std::vector<std::string> label_values;
    std::unique_ptr<T> metric;      // null for a callback child
    typename T::Callback read;
  };
  Child* find(const std::vector<std::string>& values);
  void collect_children(std::vector<CollectedChild>& out) const override;

  std::deque<Child> children_;
  std::map<std::vector<std::string>, std::size_t> index_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

/// The set of families one /metrics endpoint serves, in registration order.
class Registry {
 public:
  /// Each throws std::invalid_argument for an invalid or duplicate metric
  /// name or an invalid label name: declarations are fixed at build time, so
  /// that is a bug to find at startup.
  Family<Counter>& add_counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Gauge>& add_gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Histogram>& add_histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                   std::vector<double> bounds);

  /// Every family and child as they are now.
  std::vector<MetricFamily> collect() const;

 private:
  void check_new_family(const std::string& name, const std::vector<std::string>& label_names, MetricType type) const;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
};

/// The Content-Type of the text exposition format 0.0.4.
inline constexpr std::string_view text_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// `families` in the text exposition format 0.0.4. A family without children
/// is left out (there is no sample to show).
std::string serialize(const std::vector<MetricFamily>& families);

}  // namespace pgwarden::metrics
