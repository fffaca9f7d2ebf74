#pragma once
/// The configuration in force. A reload swaps in a new immutable Config;
/// sessions notice through a generation counter (one relaxed atomic load per
/// message batch) and pick up the new pointer from their next statement on.

#include <atomic>
#include <cstdint>
#include <mutex>

#include "config/config.hpp"

namespace pgwarden::proxy {

class ConfigHolder {
 public:
  explicit ConfigHolder(config::ConfigPtr initial) : current_(std::move(initial)) {}

  config::ConfigPtr current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  void replace(config::ConfigPtr next) {
    {
      std::lock_guard lock(mutex_);
      current_ = std::move(next);
    }
    generation_.fetch_add(1, std::memory_order_release);
  }

 private:
  mutable std::mutex mutex_;
  config::ConfigPtr current_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace pgwarden::proxy
