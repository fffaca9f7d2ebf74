#pragma once
/// A named IANA time zone for rule time windows. libstdc++ 12 has no
/// std::chrono::tzdb, so config/ reads the compiled zone file (TZif, RFC 8536)
/// from the system's zoneinfo directory and this type interprets its bytes:
/// the transition table, then the POSIX TZ rule in its footer for times after
/// the last transition. Pure: no I/O, no clock, no allocation when queried.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgwarden::policy {

/// A POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"): standard offset plus an
/// optional daylight-saving offset with its start and end rules.
struct PosixTzRule {
  /// A transition date: Julian day without Feb 29 (J1-J365), zero-based day
  /// (0-365) or month/week/weekday (Mm.w.d, week 5 = last).
  struct Date {
    enum class Kind : std::uint8_t { Julian1, Julian0, MonthWeekDay };
    Kind kind = Kind::MonthWeekDay;
    int day = 0, week = 0, month = 0;
    std::int32_t time = 7200;  ///< seconds after local midnight; default 02:00
  };
  std::int32_t std_offset = 0;  ///< seconds east of UTC
  std::int32_t dst_offset = 0;
  bool has_dst = false;
  Date start, end;

  /// Parses a POSIX TZ string; nullopt when malformed.
  static std::optional<PosixTzRule> parse(std::string_view text) noexcept;
  /// UTC offset in effect at `t` (seconds east of UTC).
  std::int32_t offset_at(std::int64_t t) const noexcept;
};

/// Maps UTC instants to the zone's local time.
class TimeZone {
 public:
  /// The UTC zone.
  static TimeZone utc();
  /// Interprets the contents of a TZif file. On failure returns nullopt and
  /// sets `error`.
  static std::optional<TimeZone> from_tzif(std::string name, std::string_view bytes, std::string* error = nullptr);

  /// Seconds east of UTC in effect at `t`.
  std::chrono::seconds utc_offset(std::chrono::sys_seconds t) const noexcept;
  /// Local wall-clock time at `t`, as seconds since 1970-01-01 00:00 local.
  std::int64_t local_seconds(std::chrono::sys_seconds t) const noexcept;
  /// The IANA name ("Europe/Berlin").
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  std::vector<std::int64_t> transitions_;  // UTC seconds, ascending
  std::vector<std::int32_t> offsets_;      // offset in effect from transitions_[i]
  std::int32_t initial_offset_ = 0;        // before the first transition
  std::optional<PosixTzRule> footer_;      // after the last transition
};

}  // namespace pgwarden::policy
