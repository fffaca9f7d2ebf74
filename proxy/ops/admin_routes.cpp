#include "proxy/ops/admin_routes.hpp"

namespace pgwarden::proxy {

void add_admin_routes(AdminServer& server, const metrics::Registry& registry, Readiness& readiness) {
  server.route("/metrics", [&registry]() -> awaitable<HttpResponse> {
    co_return HttpResponse{200, std::string(metrics::text_content_type), metrics::serialize(registry.collect())};
  });
  server.route("/healthz", []() -> awaitable<HttpResponse> {
    co_return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  });
  server.route("/readyz", [&readiness]() -> awaitable<HttpResponse> {
    std::string why = co_await readiness.check();
    if (why.empty()) co_return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
    co_return HttpResponse{503, "text/plain; charset=utf-8", std::move(why)};
  });
}

}  // namespace pgwarden::proxy
