#include "proxy/ops/log_setup.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <charconv>
#include <ctime>

#include "audit/json_writer.hpp"

namespace pgwarden::proxy {

namespace {

/// Fields of the line being logged on this thread. spdlog's synchronous
/// logger formats on the calling thread, inside log_event's call.
thread_local std::span<const LogField> current_fields;

void append_hex_escape(std::string& out, unsigned char c) {
  const char byte = static_cast<char>(c);
  out += "\\x";
  audit::append_hex(out, std::string_view(&byte, 1));
}

/// Text: control characters escaped so a value never breaks the line.
void append_text_escaped(std::string& out, std::string_view s, bool quote) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) append_hex_escape(out, c);
    else if (quote && (c == '"' || c == '\\')) (out += '\\') += ch;
    else out += ch;
  }
}

bool plain_text_value(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '/' || c == '@' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_value(std::string& out, const LogField& f, config::LogFormat format) {
  if (const auto* s = std::get_if<std::string_view>(&f.value)) {
    if (format == config::LogFormat::Json) {
      audit::append_json_string(out, *s);
    } else if (plain_text_value(*s)) {
      out += *s;
    } else {
      out += '"';
      append_text_escaped(out, *s, true);
      out += '"';
    }
  } else if (const auto* i = std::get_if<std::int64_t>(&f.value)) {
    append_int(out, *i);
  } else if (const auto* u = std::get_if<std::uint64_t>(&f.value)) {
    append_int(out, *u);
  } else {
    out += std::get<bool>(f.value) ? "true" : "false";
  }
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

/// "2024-05-01T12:00:00.123Z"
void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  const int milli = static_cast<int>(((ms % 1000) + 1000) % 1000);
  out += '.';
  out += static_cast<char>('0' + milli / 100);
  out += static_cast<char>('0' + milli / 10 % 10);
  out += static_cast<char>('0' + milli % 10);
  out += 'Z';
}

/// spdlog's hook: every line of the logger goes through format_log_line.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(config::LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    line_.clear();
    format_log_line(line_, format_, msg.time, msg.level, std::string_view(msg.payload.data(), msg.payload.size()),
                    current_fields);
    if (format_ == config::LogFormat::Text) {
      // The level, after "<time> ", is what a terminal shows in colour.
      msg.color_range_start = dest.size() + 25;
      msg.color_range_end = msg.color_range_start + level_name(msg.level).size();
    }
    dest.append(line_.data(), line_.data() + line_.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(format_); }

 private:
  config::LogFormat format_;
  std::string line_;
};

spdlog::level::level_enum to_spdlog(config::LogLevel l) {
  switch (l) {
    case config::LogLevel::Trace: return spdlog::level::trace;
    case config::LogLevel::Debug: return spdlog::level::debug;
    case config::LogLevel::Info: return spdlog::level::info;
    case config::LogLevel::Warn: return spdlog::level::warn;
    case config::LogLevel::Error: return spdlog::level::err;
    case config::LogLevel::Critical: return spdlog::level::critical;
    case config::LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

void format_log_line(std::string& out, config::LogFormat format, std::chrono::system_clock::time_point time,
                     spdlog::level::level_enum level, std::string_view message, std::span<const LogField> fields) {
  if (format == config::LogFormat::Json) {
    out += "{\"time\":\"";
    append_time(out, time);
    out += "\",\"level\":\"";
    out += level_name(level);
    out += "\",\"message\":";
    audit::append_json_string(out, message);
    for (const LogField& f : fields) {
      out += ',';
      audit::append_json_string(out, f.key);
      out += ':';
      append_value(out, f, format);
    }
    out += "}\n";
    return;
  }
  append_time(out, time);
  out += ' ';
  out += level_name(level);
  out += ' ';
  append_text_escaped(out, message, false);
  for (const LogField& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    append_value(out, f, format);
  }
  out += '\n';
}

void setup_logging() {
  if (!spdlog::get("pgwarden")) spdlog::set_default_logger(spdlog::stderr_color_mt("pgwarden"));
  spdlog::set_formatter(std::make_unique<LineFormatter>(config::LogFormat::Text));
  spdlog::set_level(spdlog::level::info);
}

void configure_logging(const config::LogConfig& log) {
  spdlog::set_formatter(std::make_unique<LineFormatter>(log.format));
  spdlog::set_level(to_spdlog(log.level));
}

void log_event(spdlog::level::level_enum level, std::string_view message, std::initializer_list<LogField> fields) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  struct Reset {
    ~Reset() { current_fields = {}; }
  } reset;
  current_fields = std::span<const LogField>(fields.begin(), fields.size());
  logger->log(level, spdlog::string_view_t(message.data(), message.size()));
}

}  // namespace pgwarden::proxy
