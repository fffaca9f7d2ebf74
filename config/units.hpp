#pragma once
/// Durations ("15s", "500ms", "2m", "1h", "1d", "0") and sizes ("64MiB",
/// "512KiB", "10MB", "4096") as written in the configuration.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pgwarden::config {

/// A non-negative duration with unit ms, s, m, h or d ("0" needs none).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;
/// A byte count: plain, or with B, KiB, MiB, GiB, TiB (powers of 1024) or
/// KB, MB, GB, TB (powers of 1000). nullopt on bad syntax or overflow.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

}  // namespace pgwarden::config
