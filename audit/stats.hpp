#pragma once
/// Counters an AuditLog keeps for /metrics and /readyz: written by the writer
/// thread and by submit(), read by anyone.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace pgwarden::audit {

struct Stats {
  /// Upper bounds (microseconds) of the fdatasync latency histogram buckets;
  /// one more bucket counts everything above the last bound.
  static constexpr std::array<std::uint64_t, 14> sync_bounds_us = {
      50, 100, 150, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

  std::atomic<std::uint64_t> records_written{0};  ///< lines written, checkpoints included
  std::atomic<std::uint64_t> bytes_written{0};
  std::atomic<std::uint64_t> batches_written{0};  ///< write(2) calls that succeeded
  std::atomic<std::uint64_t> write_errors{0};     ///< failed writes, syncs, opens and renames
  std::atomic<std::uint64_t> records_dropped{0};  ///< on_failure: continue only
  std::atomic<std::uint64_t> submits_full{0};     ///< submit() answered Full
  std::atomic<std::uint64_t> submits_refused{0};  ///< submit() answered Refused
  std::atomic<std::uint64_t> refusals_counted{0}; ///< denied statements counted in statement.refusals records
  std::atomic<std::uint64_t> rotations{0};        ///< new files begun after the first
  std::atomic<std::uint64_t> queue_depth{0};      ///< gauge: records accepted, not yet written

  std::atomic<std::uint64_t> sync_count{0};
  std::atomic<std::uint64_t> sync_sum_us{0};
  /// Per-bucket (not cumulative) counts; index sync_bounds_us.size() = above the last bound.
  std::array<std::atomic<std::uint64_t>, sync_bounds_us.size() + 1> sync_buckets{};

  /// Records one fdatasync of duration `d`.
  void observe_sync(std::chrono::microseconds d) {
    const auto us = static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count());
    std::size_t i = 0;
    while (i < sync_bounds_us.size() && us > sync_bounds_us[i]) ++i;
    sync_buckets[i].fetch_add(1, std::memory_order_relaxed);
    sync_count.fetch_add(1, std::memory_order_relaxed);
    sync_sum_us.fetch_add(us, std::memory_order_relaxed);
  }
};

}  // namespace pgwarden::audit
