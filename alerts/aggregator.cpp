#include "alerts/aggregator.hpp"

#include <algorithm>

namespace pgwarden::alerts {

bool Aggregator::offer(const Alert& a, Clock::time_point now) {
  if (window_ <= Clock::duration::zero()) return true;
  auto [it, fresh] = open_.try_emplace(aggregation_key(a));
  Window& w = it->second;
  if (fresh || now >= w.ends) {
    // A window that ended unflushed with repeats still owes its message;
    // it is sent by the next flush, so only a fresh key goes out now.
    if (fresh || w.repeats == 0) {
      w.ends = now + window_;
      w.repeats = 0;
      return true;
    }
  }
  w.repeats += a.count;
  w.last = a;
  return false;
}

std::vector<Alert> Aggregator::flush(Clock::time_point now) {
  std::vector<Alert> out;
  for (auto it = open_.begin(); it != open_.end();) {
    Window& w = it->second;
    if (now < w.ends) {
      ++it;
      continue;
    }
    if (w.repeats == 0) {
      it = open_.erase(it);
      continue;
    }
    Alert a = std::move(w.last);
    a.count = w.repeats;
    out.push_back(std::move(a));
    w.repeats = 0;
    w.last = Alert{};
    w.ends = now + window_;
    ++it;
  }
  return out;
}

Aggregator::Clock::time_point Aggregator::next_deadline() const {
  auto t = Clock::time_point::max();
  for (const auto& [key, w] : open_) t = std::min(t, w.ends);
  return t;
}

std::uint64_t Aggregator::pending() const {
  std::uint64_t n = 0;
  for (const auto& [key, w] : open_) n += w.repeats;
  return n;
}

}  // namespace pgwarden::alerts
