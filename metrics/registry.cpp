#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace pgwarden::metrics {

namespace {

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  auto ok = [&](char c, bool first) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
    if (c == ':') return allow_colon;
    return !first && c >= '0' && c <= '9';
  };
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!ok(name[i], i == 0)) return false;
  }
  return true;
}

/// Text format escaping: HELP escapes backslash and newline; label values
/// also escape the double quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    // Shortest round-trip digits in %g style: 0.0005, 1796139907.019, 5e-05.
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    out.append(buf, end);
  }
}

void append_value(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// `{a="x",b="y"}` (with `le` last for a histogram bucket), or nothing.
void append_labels(std::string& out, const MetricFamily& f, const CollectedChild& c, const double* le) {
  if (f.label_names.empty() && !le) return;
  out += '{';
  for (std::size_t i = 0; i < f.label_names.size(); ++i) {
    if (i) out += ',';
    out += f.label_names[i];
    out += "=\"";
    append_escaped(out, c.label_values[i], true);
    out += '"';
  }
  if (le) {
    if (!f.label_names.empty()) out += ',';
    out += "le=\"";
    append_value(out, *le);
    out += '"';
  }
  out += '}';
}

void append_histogram(std::string& out, const MetricFamily& f, const CollectedChild& c) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= f.bounds.size(); ++i) {
    if (i < c.histogram.buckets.size()) cumulative += c.histogram.buckets[i];
    const double le = i < f.bounds.size() ? f.bounds[i] : HUGE_VAL;
    out += f.name;
    out += "_bucket";
    append_labels(out, f, c, &le);
    out += ' ';
    append_value(out, cumulative);
    out += '\n';
  }
  out += f.name;
  out += "_sum";
  append_labels(out, f, c, nullptr);
  out += ' ';
  append_value(out, c.histogram.sum);
  out += '\n';
  out += f.name;
  out += "_count";
  append_labels(out, f, c, nullptr);
  out += ' ';
  append_value(out, cumulative);
  out += '\n';
}

}  // namespace

std::string_view to_string(MetricType t) noexcept {
  switch (t) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
  }
  return "untyped";
}

std::uint64_t HistogramSnapshot::count() const noexcept {
  return std::accumulate(buckets.begin(), buckets.end(), std::uint64_t{0});
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.buckets.reserve(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) s.buckets.push_back(buckets_[i].load(std::memory_order_relaxed));
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
                       std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

FamilyBase::~FamilyBase() = default;

MetricFamily FamilyBase::collect() const {
  MetricFamily f{name_, help_, type_, label_names_, bounds_, {}};
  std::lock_guard lock(mutex_);
  collect_children(f.children);
  return f;
}

std::vector<std::string> FamilyBase::ordered_values(Labels labels) const {
  std::vector<std::string> values(label_names_.size());
  std::vector<bool> seen(label_names_.size());
  for (const auto& [name, value] : labels) {
    auto it = std::find(label_names_.begin(), label_names_.end(), name);
    const auto i = static_cast<std::size_t>(it - label_names_.begin());
    if (it == label_names_.end() || seen[i]) {
      throw std::invalid_argument(name_ + ": unexpected or repeated label " + std::string(name));
    }
    if (value.empty()) throw std::invalid_argument(name_ + ": empty value for label " + std::string(name));
    seen[i] = true;
    values[i] = value;
  }
  if (labels.size() != label_names_.size()) throw std::invalid_argument(name_ + ": a declared label is missing");
  return values;
}

template <class T>
typename Family<T>::Child* Family<T>::find(const std::vector<std::string>& values) {
  auto it = index_.find(values);
  return it == index_.end() ? nullptr : &children_[it->second];
}

template <class T>
T& Family<T>::add(Labels labels) {
  auto values = ordered_values(labels);
  std::lock_guard lock(mutex_);
  if (Child* c = find(values)) {
    if (!c->metric) throw std::invalid_argument(name_ + ": these labels already have a callback");
    return *c->metric;
  }
  std::unique_ptr<T> metric;
  if constexpr (std::is_same_v<T, Histogram>) metric = std::make_unique<T>(bounds_);
  else metric = std::make_unique<T>();
  T& ref = *metric;
  index_.emplace(values, children_.size());
  children_.push_back(Child{std::move(values), std::move(metric), {}});
  return ref;
}

template <class T>
void Family<T>::add_callback(Labels labels, typename T::Callback read) {
  auto values = ordered_values(labels);
  std::lock_guard lock(mutex_);
  if (Child* c = find(values)) {
    if (c->metric) throw std::invalid_argument(name_ + ": these labels already have a value");
    c->read = std::move(read);
    return;
  }
  index_.emplace(values, children_.size());
  children_.push_back(Child{std::move(values), nullptr, std::move(read)});
}

template <class T>
void Family<T>::collect_children(std::vector<CollectedChild>& out) const {
  out.reserve(children_.size());
  for (const Child& c : children_) {
    CollectedChild collected{c.label_values, 0, {}};
    if constexpr (std::is_same_v<T, Histogram>) {
      collected.histogram = c.metric ? c.metric->snapshot() : c.read();
    } else {
      collected.value = c.metric ? static_cast<double>(c.metric->value()) : c.read();
    }
    out.push_back(std::move(collected));
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::check_new_family(const std::string& name, const std::vector<std::string>& label_names,
                                MetricType type) const {
  if (!valid_name(name, true)) throw std::invalid_argument("invalid metric name: " + name);
  for (const auto& l : label_names) {
    const bool reserved = l.starts_with("__") || (type == MetricType::Histogram && l == "le");
    if (!valid_name(l, false) || reserved) throw std::invalid_argument(name + ": invalid label name " + l);
  }
  for (const auto& f : families_) {
    if (f->name() == name) throw std::invalid_argument("metric declared twice: " + name);
  }
}

Family<Counter>& Registry::add_counter(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  check_new_family(name, label_names, MetricType::Counter);
  auto f = std::make_unique<Family<Counter>>(std::move(name), std::move(help), MetricType::Counter,
                                             std::move(label_names), std::vector<double>{});
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

Family<Gauge>& Registry::add_gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  check_new_family(name, label_names, MetricType::Gauge);
  auto f = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), MetricType::Gauge,
                                           std::move(label_names), std::vector<double>{});
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

Family<Histogram>& Registry::add_histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                           std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  check_new_family(name, label_names, MetricType::Histogram);
  if (bounds.empty() || !std::is_sorted(bounds.begin(), bounds.end()) ||
      std::adjacent_find(bounds.begin(), bounds.end()) != bounds.end() || !std::isfinite(bounds.back())) {
    throw std::invalid_argument(name + ": bucket bounds must be finite and strictly ascending");
  }
  auto f = std::make_unique<Family<Histogram>>(std::move(name), std::move(help), MetricType::Histogram,
                                               std::move(label_names), std::move(bounds));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

std::vector<MetricFamily> Registry::collect() const {
  std::lock_guard lock(mutex_);
  std::vector<MetricFamily> out;
  out.reserve(families_.size());
  for (const auto& f : families_) out.push_back(f->collect());
  return out;
}

std::string serialize(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const MetricFamily& f : families) {
    if (f.children.empty()) continue;
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += to_string(f.type);
    out += '\n';
    for (const CollectedChild& c : f.children) {
      if (f.type == MetricType::Histogram) {
        append_histogram(out, f, c);
        continue;
      }
      out += f.name;
      append_labels(out, f, c, nullptr);
      out += ' ';
      append_value(out, c.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace pgwarden::metrics
