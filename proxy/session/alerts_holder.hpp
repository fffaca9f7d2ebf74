#pragma once
/// The alert dispatcher in force. A reload that changes the alerts section
/// swaps in a new Dispatcher; a session raising an alert takes whichever is
/// current (alerts are rare: a lock and a pointer copy each).

#include <memory>
#include <mutex>

#include "alerts/dispatcher.hpp"

namespace pgwarden::proxy {

class AlertsHolder {
 public:
  /// Hands `a` to the current dispatcher; nothing when alerts are off.
  void raise(alerts::Alert a) const {
    std::shared_ptr<alerts::Dispatcher> d;
    {
      std::lock_guard lock(mutex_);
      d = current_;
    }
    if (d) d->raise(std::move(a));
  }
  /// Installs `next` (null: alerts off) and returns the one it replaces,
  /// for the caller to stop.
  std::shared_ptr<alerts::Dispatcher> replace(std::shared_ptr<alerts::Dispatcher> next) {
    std::lock_guard lock(mutex_);
    current_.swap(next);
    return next;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<alerts::Dispatcher> current_;
};

}  // namespace pgwarden::proxy
