// What the metrics cost on the data path: one counter increment, one
// histogram observation, from one thread and from two threads updating the
// same child (the proxy's two event loops), the clock read a duration would
// need, and one whole /metrics scrape of pgwarden's families.

#include <benchmark/benchmark.h>

#include <chrono>

#include "metrics/registry.hpp"
#include "proxy/session/proxy_metrics.hpp"

namespace {

using namespace pgwarden::proxy;
namespace metrics = pgwarden::metrics;

metrics::Registry& registry() {
  static metrics::Registry r;
  return r;
}
ProxyMetrics& proxy_metrics() {
  static ProxyMetrics m(registry());
  return m;
}

void BM_CounterIncrement(benchmark::State& state) {
  metrics::Counter& c = proxy_metrics().bytes_from_client;
  for (auto _ : state) c.increment(512);
  benchmark::DoNotOptimize(c.value());
}
BENCHMARK(BM_CounterIncrement);
BENCHMARK(BM_CounterIncrement)->Threads(2)->UseRealTime();

void BM_StatementCount(benchmark::State& state) {
  pgwarden::policy::ClassSet read;
  read.insert(pgwarden::policy::StatementClass::Read);
  for (auto _ : state) proxy_metrics().statement(read, false).increment();
}
BENCHMARK(BM_StatementCount);

void BM_HistogramObserve(benchmark::State& state) {
  metrics::Histogram& h = proxy_metrics().statement_duration;
  double v = 0.0003;
  for (auto _ : state) {
    h.observe(v);
    v = v < 1 ? v * 1.7 : 0.0003;
  }
}
BENCHMARK(BM_HistogramObserve);
BENCHMARK(BM_HistogramObserve)->Threads(2)->UseRealTime();

void BM_SystemClockNow(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(std::chrono::system_clock::now());
}
BENCHMARK(BM_SystemClockNow);

void BM_ScrapeAll(benchmark::State& state) {
  proxy_metrics();
  for (auto _ : state) benchmark::DoNotOptimize(metrics::serialize(registry().collect()));
}
BENCHMARK(BM_ScrapeAll);

}  // namespace
