// Framer throughput on the byte streams the proxy relays: a server answering
// SELECTs (RowDescription, DataRow*, CommandComplete, ReadyForQuery) and a
// client pipelining extended-protocol batches. Reports bytes/s through put().

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "protocol/encoder.hpp"
#include "protocol/framer.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"

namespace pq = pgwarden::protocol;
using namespace std::string_view_literals;

namespace {

/// One SELECT result of `rows` rows like pgbench's accounts table.
std::string select_result(int rows) {
  std::string out;
  pq::encode(pq::RowDescription{{{"aid", 16396, 1, 23, 4, -1, 0},
                                 {"bid", 16396, 2, 23, 4, -1, 0},
                                 {"abalance", 16396, 3, 23, 4, -1, 0},
                                 {"filler", 16396, 4, 1042, -1, 88, 0}}},
             out);
  for (int i = 0; i < rows; ++i) {
    pq::encode(pq::DataRow{{"12345"sv, "1"sv, "-4711"sv, "                                            "sv}}, out);
  }
  pq::encode(pq::CommandComplete{"SELECT 10"}, out);
  pq::append_ready_for_query(out, 'I');
  return out;
}

/// Repeats `unit` up to about 64 KiB, a typical relay buffer.
std::string fill_64k(const std::string& unit) {
  std::string out;
  while (out.size() + unit.size() <= 64 * 1024) out += unit;
  return out;
}

/// What a pgbench -M extended client sends per statement, or -M prepared
/// (no Parse) when `prepared`.
std::string extended_batch(bool prepared) {
  std::string out;
  if (!prepared) pq::encode(pq::Parse{"", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", {}}, out);
  pq::encode(pq::Bind{"", prepared ? "P0_1" : "", {}, {"48213"sv}, {}}, out);
  if (!prepared) pq::encode(pq::Describe{'P', ""}, out);
  pq::encode(pq::Execute{"", 0}, out);
  pq::encode(pq::Sync{}, out);
  return out;
}

/// Frames `stream` in reads of `read_size` bytes, keeping a partial message
/// for the next read the way the relay does; returns the number of frames.
std::size_t frame_all(pq::Framer& framer, std::string_view stream, std::size_t read_size) {
  std::size_t frames = 0;
  std::size_t begin = 0;  // first unconsumed byte
  for (std::size_t end = 0; end < stream.size();) {
    end = std::min(stream.size(), end + read_size);
    std::string_view input = stream.substr(begin, end - begin);
    for (pq::Frame f = framer.put(input); f.kind != pq::FrameKind::NeedMore; f = framer.put(input)) {
      input.remove_prefix(f.bytes.size());
      ++frames;
    }
    begin = end - input.size();
  }
  return frames;
}

void run(benchmark::State& state, const std::string& stream, pq::TypeSet whole) {
  const auto read_size = static_cast<std::size_t>(state.range(0));
  pq::Framer framer(whole, 1 << 20);
  std::size_t frames = 0;
  for (auto _ : state) {
    frames += frame_all(framer, stream, read_size);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
}

// Server to client: every message whole (the proxy parses none of these but
// needs their boundaries).
void BM_FramerBackendSelectWhole(benchmark::State& state) {
  static const std::string stream = fill_64k(select_result(10));
  run(state, stream, pq::TypeSet::all_except({}));
}
BENCHMARK(BM_FramerBackendSelectWhole)->Arg(64 * 1024)->Arg(16 * 1024)->Arg(1460);

// Server to client with DataRow and CopyData streamed, as for a large result.
void BM_FramerBackendSelectRowsStreamed(benchmark::State& state) {
  static const std::string stream = fill_64k(select_result(10));
  run(state, stream, pq::TypeSet::all_except({'D', 'd'}));
}
BENCHMARK(BM_FramerBackendSelectRowsStreamed)->Arg(64 * 1024)->Arg(1460);

// Client to server: pgbench -M extended batches (Parse/Bind/Describe/Execute/Sync).
void BM_FramerFrontendExtendedBatch(benchmark::State& state) {
  static const std::string stream = fill_64k(extended_batch(false));
  run(state, stream, pq::TypeSet::all_except({'d'}));
}
BENCHMARK(BM_FramerFrontendExtendedBatch)->Arg(64 * 1024)->Arg(1460);

// Client to server: pgbench -M prepared batches (Bind/Execute/Sync).
void BM_FramerFrontendPreparedBatch(benchmark::State& state) {
  static const std::string stream = fill_64k(extended_batch(true));
  run(state, stream, pq::TypeSet::all_except({'d'}));
}
BENCHMARK(BM_FramerFrontendPreparedBatch)->Arg(64 * 1024);

// Parsing the Bind the policy gate inspects, into a reused struct (no allocation).
void BM_ParseBind(benchmark::State& state) {
  std::string wire;
  pq::encode(pq::Bind{"", "P0_1", {}, {"48213"sv, "7"sv, std::nullopt}, {}}, wire);
  pq::Bind bind;
  for (auto _ : state) {
    benchmark::DoNotOptimize(pq::parse(wire, bind));
    benchmark::DoNotOptimize(bind);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_ParseBind);

// Parsing a DataRow into a reused struct, for the audit's row inspection if ever needed.
void BM_ParseDataRow(benchmark::State& state) {
  std::string wire;
  pq::encode(pq::DataRow{{"12345"sv, "1"sv, "-4711"sv, "                                            "sv}}, wire);
  pq::DataRow row;
  for (auto _ : state) {
    benchmark::DoNotOptimize(pq::parse(wire, row));
    benchmark::DoNotOptimize(row);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_ParseDataRow);

}  // namespace
