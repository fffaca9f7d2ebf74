#pragma once
/// Record timestamps: RFC 3339 in UTC with microseconds
/// ("2024-07-01T12:00:00.123456Z"), written on the session thread for every
/// record (so the date part is cached per thread and second) and read back
/// by search.

#include <chrono>
#include <string>
#include <string_view>

namespace pgwarden::audit {

using Clock = std::chrono::system_clock;
using Micros = std::chrono::sys_time<std::chrono::microseconds>;

/// Bytes of a timestamp as written: "2024-07-01T12:00:00.123456Z".
inline constexpr std::size_t rfc3339_size = 27;

/// Writes `t` as RFC 3339 UTC with six fractional digits and a `Z` to the
/// rfc3339_size bytes at `out`; returns the end.
char* write_rfc3339(char* out, Clock::time_point t);
/// The same, appended to a string.
void append_rfc3339(std::string& out, Clock::time_point t);

/// Reads a timestamp: `YYYY-MM-DD`, or that followed by `T` or a space,
/// `HH:MM`, optional `:SS` and fraction, and an optional `Z` or `+HH:MM` /
/// `-HH:MM` offset (no offset means UTC). False when `text` is none of these.
bool parse_rfc3339(std::string_view text, Micros& out);

}  // namespace pgwarden::audit
