#include "alerts/alert_metrics.hpp"

namespace pgwarden::alerts {

std::string_view to_string(DeliveryResult r) noexcept {
  switch (r) {
    case DeliveryResult::Delivered: return "delivered";
    case DeliveryResult::Retried: return "retried";
    case DeliveryResult::Undelivered: return "undelivered";
    case DeliveryResult::Dropped: return "dropped";
    case DeliveryResult::Aggregated: return "aggregated";
  }
  return "unknown";
}

AlertMetrics::AlertMetrics(metrics::Registry& registry)
    : alerts_total(registry.add_counter("pgwarden_alerts_total",
                                        "Alerts by sink and how they ended: delivered, retried (per failed attempt "
                                        "that is tried again), undelivered (written to the audit log as "
                                        "alert.undelivered), dropped (queue full, also undelivered), aggregated "
                                        "(counted into one message of a storm).",
                                        {"sink", "result"})),
      alert_queue_depth(registry.add_gauge("pgwarden_alert_queue_depth", "Alerts waiting to be delivered, by sink.",
                                           {"sink"})) {}

}  // namespace pgwarden::alerts
