#pragma once
/// Turns a storm of the same alert into one message per window, without I/O
/// or clocks of its own: alerts and the time in, what to send out.
///
/// The first alert of a key goes out at once (a person hears of it within a
/// second); repeats within the window are counted, and when the window ends
/// with repeats, the last of them goes out once with the count, and a new
/// window opens. A window that ends without repeats closes the key.

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "alerts/alert.hpp"

namespace pgwarden::alerts {

class Aggregator {
 public:
  using Clock = std::chrono::steady_clock;

  /// `window` 0 turns aggregation off: every alert goes out.
  explicit Aggregator(Clock::duration window) : window_(window) {}

  /// False when the window is 0: every alert goes out as it comes.
  bool enabled() const noexcept { return window_ > Clock::duration::zero(); }
  /// True when `a` must go out now; false when it was counted in a window.
  bool offer(const Alert& a, Clock::time_point now);
  /// The aggregated alerts of every window ended by `now`, each with its
  /// count of repeats.
  std::vector<Alert> flush(Clock::time_point now);
  /// When the earliest open window ends; nothing open: time_point::max().
  Clock::time_point next_deadline() const;
  /// Repeats counted in open windows, not yet sent.
  std::uint64_t pending() const;

 private:
  struct Window {
    Clock::time_point ends;
    std::uint64_t repeats = 0;
    Alert last;
  };
  Clock::duration window_;
  std::unordered_map<std::string, Window> open_;
};

}  // namespace pgwarden::alerts
