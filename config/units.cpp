#include "config/units.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace pgwarden::config {
namespace {

// Splits "<digits><unit>" (spaces allowed between); false without digits.
bool split_number(std::string_view text, std::uint64_t& value, std::string_view& unit) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end == text.data()) return false;
  unit = text.substr(std::size_t(end - text.data()));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return true;
}

template <std::size_t N>
std::optional<std::uint64_t> scale(std::uint64_t value, std::string_view unit,
                                   const std::array<std::pair<std::string_view, std::uint64_t>, N>& units) {
  for (const auto& [name, factor] : units) {
    if (unit != name) continue;
    if (factor != 0 && value > UINT64_MAX / factor) return std::nullopt;
    return value * factor;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> units = {{
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};
  std::uint64_t value = 0;
  std::string_view unit;
  if (!split_number(text, value, unit)) return std::nullopt;
  if (unit.empty()) return value == 0 ? std::optional(std::chrono::milliseconds(0)) : std::nullopt;
  auto ms = scale(value, unit, units);
  if (!ms || *ms > std::uint64_t(INT64_MAX)) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 10> units = {{
      {"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
      {"KB", 1000}, {"MB", 1000'000}, {"GB", 1000'000'000}, {"TB", 1000'000'000'000}}};
  std::uint64_t value = 0;
  std::string_view unit;
  if (!split_number(text, value, unit)) return std::nullopt;
  return scale(value, unit, units);
}

}  // namespace pgwarden::config
