#pragma once
/// The alert families, declared once per process (a reload makes a new
/// Dispatcher, never new families): pgwarden_alerts_total{sink,result} and
/// pgwarden_alert_queue_depth{sink}.

#include <string_view>

#include "metrics/registry.hpp"

namespace pgwarden::alerts {

/// How one alert ended at one sink (the `result` label).
enum class DeliveryResult : std::uint8_t {
  Delivered,    ///< the receiver took it
  Retried,      ///< an attempt failed and another follows (counted per attempt)
  Undelivered,  ///< every attempt failed, or the process stopped first
  Dropped,      ///< the sink's queue was full
  Aggregated,   ///< counted into a later message of the same alert
};
std::string_view to_string(DeliveryResult r) noexcept;

struct AlertMetrics {
  explicit AlertMetrics(metrics::Registry& registry);

  metrics::Counter& result(std::string_view sink, DeliveryResult r) {
    return alerts_total.add({{"sink", sink}, {"result", to_string(r)}});
  }
  metrics::Gauge& queue_depth(std::string_view sink) { return alert_queue_depth.add({{"sink", sink}}); }

  metrics::Family<metrics::Counter>& alerts_total;
  metrics::Family<metrics::Gauge>& alert_queue_depth;
};

}  // namespace pgwarden::alerts
