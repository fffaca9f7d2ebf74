#pragma once
/// The operational log (not the audit log): spdlog to stderr, one line per
/// event, as text or as one JSON object per line. Events that carry data
/// (a closed connection, a denial) log it as fields, which the text format
/// prints as key=value and the JSON format as members, escaped so that no
/// client-chosen value (a user name with a newline, invalid UTF-8) can
/// break a line or forge one.

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"

namespace pgwarden::proxy {

/// One field of a structured log line.
struct LogField {
  std::string_view key;  ///< a plain identifier ("user", "duration_ms")
  std::variant<std::string_view, std::int64_t, std::uint64_t, bool> value;
};

/// Installs the default logger (stderr, text, info), for the time before the
/// configuration is read.
void setup_logging();

/// Applies the configuration's log level and format; also on reload.
void configure_logging(const config::LogConfig& log);

/// Logs `message` with `fields`, formatted for the configured format.
void log_event(spdlog::level::level_enum level, std::string_view message, std::initializer_list<LogField> fields);

/// One whole line (with its newline) as the log prints it. Time in UTC with
/// milliseconds. Text: `time level message key=value ...`, a value quoted and
/// escaped when it holds anything but [A-Za-z0-9._:/@+-]; JSON: {"time",
/// "level", "message", then the fields}, always valid JSON (invalid UTF-8 is
/// replaced by U+FFFD).
void format_log_line(std::string& out, config::LogFormat format, std::chrono::system_clock::time_point time,
                     spdlog::level::level_enum level, std::string_view message, std::span<const LogField> fields);

}  // namespace pgwarden::proxy
