#include "audit/time_format.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace pgwarden::audit {
namespace {

using namespace std::chrono;

void put_digits(char* p, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

/// "YYYY-MM-DDTHH:MM:SS" for the second `s`.
void format_second(char* p, sys_seconds s) {
  const auto day = floor<days>(s);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> hms{s - day};
  put_digits(p, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  p[4] = '-';
  put_digits(p + 5, static_cast<unsigned>(ymd.month()), 2);
  p[7] = '-';
  put_digits(p + 8, static_cast<unsigned>(ymd.day()), 2);
  p[10] = 'T';
  put_digits(p + 11, static_cast<unsigned>(hms.hours().count()), 2);
  p[13] = ':';
  put_digits(p + 14, static_cast<unsigned>(hms.minutes().count()), 2);
  p[16] = ':';
  put_digits(p + 17, static_cast<unsigned>(hms.seconds().count()), 2);
}

/// Reads exactly `width` digits at `pos`; advances `pos`.
bool read_fixed(std::string_view t, std::size_t& pos, int width, int& out) {
  if (pos + width > t.size()) return false;
  out = 0;
  for (int i = 0; i < width; ++i) {
    const char c = t[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += width;
  return true;
}

bool expect(std::string_view t, std::size_t& pos, char c) {
  if (pos >= t.size() || t[pos] != c) return false;
  ++pos;
  return true;
}

/// Reads `:SS[.ffffff]` if present.
bool read_seconds(std::string_view t, std::size_t& pos, microseconds& out) {
  int s = 0;
  if (pos >= t.size() || t[pos] != ':') return true;
  ++pos;
  if (!read_fixed(t, pos, 2, s) || s > 60) return false;
  out += seconds(s);
  if (pos < t.size() && (t[pos] == '.' || t[pos] == ',')) {
    ++pos;
    std::int64_t scale = 100000, frac = 0;
    const std::size_t start = pos;
    for (; pos < t.size() && t[pos] >= '0' && t[pos] <= '9'; ++pos, scale /= 10) frac += (t[pos] - '0') * scale;
    if (pos == start) return false;
    out += microseconds(frac);
  }
  return true;
}

/// Reads `Z`, `+HH:MM`, `-HH:MM` or nothing; the offset to subtract.
bool read_offset(std::string_view t, std::size_t& pos, minutes& out) {
  out = minutes(0);
  if (pos == t.size()) return true;
  if (t[pos] == 'Z' || t[pos] == 'z') return ++pos == t.size();
  if (t[pos] != '+' && t[pos] != '-') return false;
  const int sign = t[pos++] == '-' ? -1 : 1;
  int h = 0, m = 0;
  if (!read_fixed(t, pos, 2, h) || !expect(t, pos, ':') || !read_fixed(t, pos, 2, m)) return false;
  out = sign * (hours(h) + minutes(m));
  return pos == t.size();
}

}  // namespace

char* write_rfc3339(char* out, Clock::time_point t) {
  // Encoding happens for every record; the date and time of day change once a second.
  thread_local sys_seconds cached_second{seconds(-1)};
  thread_local char cached[19];
  const auto us = floor<microseconds>(t);
  const auto s = floor<seconds>(us);
  if (s != cached_second) {
    format_second(cached, s);
    cached_second = s;
  }
  std::memcpy(out, cached, sizeof cached);
  out[19] = '.';
  put_digits(out + 20, static_cast<unsigned>((us - s).count()), 6);
  out[26] = 'Z';
  return out + rfc3339_size;
}

void append_rfc3339(std::string& out, Clock::time_point t) {
  char buf[rfc3339_size];
  out.append(buf, write_rfc3339(buf, t));
}

bool parse_rfc3339(std::string_view t, Micros& out) {
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0;
  if (!read_fixed(t, pos, 4, y) || !expect(t, pos, '-') || !read_fixed(t, pos, 2, mo) || !expect(t, pos, '-') ||
      !read_fixed(t, pos, 2, d))
    return false;
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return false;
  microseconds time_of_day{0};
  minutes offset{0};
  if (pos < t.size() && (t[pos] == 'T' || t[pos] == 't' || t[pos] == ' ')) {
    ++pos;
    int h = 0, mi = 0;
    if (!read_fixed(t, pos, 2, h) || h > 23 || !expect(t, pos, ':') || !read_fixed(t, pos, 2, mi) || mi > 59)
      return false;
    time_of_day = hours(h) + minutes(mi);
    if (!read_seconds(t, pos, time_of_day) || !read_offset(t, pos, offset)) return false;
  } else if (pos != t.size()) {
    return false;
  }
  out = Micros(sys_days(ymd).time_since_epoch()) + time_of_day - offset;
  return true;
}

}  // namespace pgwarden::audit
