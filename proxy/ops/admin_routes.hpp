#pragma once
/// pgwarden's admin endpoints on the generic AdminServer: /metrics (the
/// registry in the Prometheus text format 0.0.4), /healthz (200 "ok" while
/// the process runs) and /readyz (200 "ready", or 503 with the reasons).

#include "proxy/ops/admin_server.hpp"
#include "metrics/registry.hpp"
#include "proxy/ops/readiness.hpp"

namespace pgwarden::proxy {

/// Routes the three endpoints; `registry` and `readiness` must outlive `server`'s io_context work.
void add_admin_routes(AdminServer& server, const metrics::Registry& registry, Readiness& readiness);

}  // namespace pgwarden::proxy
