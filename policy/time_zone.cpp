#include "policy/time_zone.hpp"

#include <algorithm>
#include <cctype>

namespace pgwarden::policy {
namespace {

using namespace std::chrono;

bool parse_number(std::string_view& s, int& out, int max) {
  std::size_t i = 0;
  int v = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i < 4) v = v * 10 + (s[i++] - '0');
  if (i == 0 || v > max) return false;
  s.remove_prefix(i);
  out = v;
  return true;
}

// [+-]hh[:mm[:ss]] in seconds, sign as written.
bool parse_hms(std::string_view& s, std::int32_t& out) {
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  int h = 0, m = 0, sec = 0;
  if (!parse_number(s, h, 167)) return false;
  if (!s.empty() && s[0] == ':') {
    s.remove_prefix(1);
    if (!parse_number(s, m, 59)) return false;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      if (!parse_number(s, sec, 59)) return false;
    }
  }
  out = sign * (h * 3600 + m * 60 + sec);
  return true;
}

bool parse_abbreviation(std::string_view& s) {
  std::size_t i = 0;
  if (!s.empty() && s[0] == '<') {
    i = s.find('>');
    if (i == std::string_view::npos) return false;
    s.remove_prefix(i + 1);
    return true;
  }
  while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
  if (i < 3) return false;
  s.remove_prefix(i);
  return true;
}

bool parse_date(std::string_view& s, PosixTzRule::Date& d) {
  using Kind = PosixTzRule::Date::Kind;
  if (s.empty()) return false;
  if (s[0] == 'M') {
    s.remove_prefix(1);
    d.kind = Kind::MonthWeekDay;
    if (!parse_number(s, d.month, 12) || d.month < 1 || s.empty() || s[0] != '.') return false;
    s.remove_prefix(1);
    if (!parse_number(s, d.week, 5) || d.week < 1 || s.empty() || s[0] != '.') return false;
    s.remove_prefix(1);
    if (!parse_number(s, d.day, 6)) return false;
  } else if (s[0] == 'J') {
    s.remove_prefix(1);
    d.kind = Kind::Julian1;
    if (!parse_number(s, d.day, 365) || d.day < 1) return false;
  } else {
    d.kind = Kind::Julian0;
    if (!parse_number(s, d.day, 365)) return false;
  }
  d.time = 7200;
  if (!s.empty() && s[0] == '/') {
    s.remove_prefix(1);
    return parse_hms(s, d.time);
  }
  return true;
}

// Local seconds since the epoch at which `d` happens in `y`.
std::int64_t local_transition(const PosixTzRule::Date& d, int y) {
  using Kind = PosixTzRule::Date::Kind;
  sys_days day;
  const year yr{y};
  if (d.kind == Kind::Julian1) {
    day = sys_days{yr / January / 1} + days{d.day - 1 + (yr.is_leap() && d.day >= 60 ? 1 : 0)};
  } else if (d.kind == Kind::Julian0) {
    day = sys_days{yr / January / 1} + days{d.day};
  } else {
    const auto m = month{static_cast<unsigned>(d.month)};
    const auto wd = weekday{static_cast<unsigned>(d.day)};
    day = d.week == 5 ? sys_days{yr / m / wd[last]} : sys_days{yr / m / wd[static_cast<unsigned>(d.week)]};
  }
  return std::int64_t(day.time_since_epoch().count()) * 86400 + d.time;
}

std::uint32_t be32(const unsigned char* p) { return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
std::int64_t be64(const unsigned char* p) {
  return std::int64_t((std::uint64_t(be32(p)) << 32) | be32(p + 4));
}

}  // namespace

std::optional<PosixTzRule> PosixTzRule::parse(std::string_view s) noexcept {
  PosixTzRule r;
  std::int32_t west = 0;
  if (!parse_abbreviation(s) || !parse_hms(s, west)) return std::nullopt;
  r.std_offset = -west;
  if (s.empty()) return r;
  if (!parse_abbreviation(s)) return std::nullopt;
  r.has_dst = true;
  r.dst_offset = r.std_offset + 3600;
  if (!s.empty() && s[0] != ',') {
    if (!parse_hms(s, west)) return std::nullopt;
    r.dst_offset = -west;
  }
  if (s.empty()) {  // POSIX default: the US rule
    r.start = Date{Date::Kind::MonthWeekDay, 0, 2, 3, 7200};
    r.end = Date{Date::Kind::MonthWeekDay, 0, 1, 11, 7200};
    return r;
  }
  s.remove_prefix(1);
  if (!parse_date(s, r.start) || s.empty() || s[0] != ',') return std::nullopt;
  s.remove_prefix(1);
  if (!parse_date(s, r.end) || !s.empty()) return std::nullopt;
  return r;
}

std::int32_t PosixTzRule::offset_at(std::int64_t t) const noexcept {
  if (!has_dst) return std_offset;
  const auto local_day = sys_days{days{(t + std_offset) / 86400 - ((t + std_offset) % 86400 < 0 ? 1 : 0)}};
  const int y = int(year_month_day{local_day}.year());
  const std::int64_t start_utc = local_transition(start, y) - std_offset;
  const std::int64_t end_utc = local_transition(end, y) - dst_offset;
  const bool in_dst = start_utc < end_utc ? (t >= start_utc && t < end_utc) : !(t >= end_utc && t < start_utc);
  return in_dst ? dst_offset : std_offset;
}

TimeZone TimeZone::utc() {
  TimeZone z;
  z.name_ = "UTC";
  return z;
}

std::optional<TimeZone> TimeZone::from_tzif(std::string name, std::string_view bytes, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<TimeZone> {
    if (error) *error = why;
    return std::nullopt;
  };
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 44 || bytes.substr(0, 4) != "TZif") return fail("not a TZif time zone file");
  auto counts = [&](std::size_t at, std::uint32_t c[6]) {
    for (int i = 0; i < 6; ++i) c[i] = be32(p + at + 20 + 4 * i);
  };
  std::uint32_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  counts(0, c);
  const bool v2 = bytes[4] >= '2';
  std::size_t at = 44, tsize = 4;
  if (v2) {
    at += c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (bytes.size() < at + 44) return fail("truncated TZif file");
    counts(at, c);
    at += 44;
    tsize = 8;
  }
  const std::size_t need = c[3] * (tsize + 1) + c[4] * 6 + c[5] + c[2] * (tsize + 4) + c[1] + c[0];
  if (c[4] == 0 || bytes.size() < at + need) return fail("truncated TZif file");
  TimeZone z;
  z.name_ = std::move(name);
  const unsigned char* times = p + at;
  const unsigned char* idx = times + c[3] * tsize;
  const unsigned char* types = idx + c[3];
  auto type_offset = [&](std::uint32_t i) { return std::int32_t(be32(types + 6 * i)); };
  z.initial_offset_ = type_offset(0);
  for (std::uint32_t i = 0; i < c[3]; ++i) {
    if (idx[i] >= c[4]) return fail("corrupt TZif file");
    z.transitions_.push_back(tsize == 8 ? be64(times + 8 * i) : std::int32_t(be32(times + 4 * i)));
    z.offsets_.push_back(type_offset(idx[i]));
  }
  if (v2) {
    auto footer = bytes.substr(at + need);
    if (footer.size() > 2 && footer[0] == '\n') {
      auto tz = footer.substr(1, footer.find('\n', 1) - 1);
      if (!tz.empty() && !(z.footer_ = PosixTzRule::parse(tz))) return fail("unsupported TZ rule in TZif footer");
    }
  }
  return z;
}

std::chrono::seconds TimeZone::utc_offset(std::chrono::sys_seconds t) const noexcept {
  const std::int64_t s = t.time_since_epoch().count();
  if (transitions_.empty() || s < transitions_.front()) {
    return seconds{transitions_.empty() && footer_ ? footer_->offset_at(s) : initial_offset_};
  }
  if (footer_ && s >= transitions_.back()) return seconds{footer_->offset_at(s)};
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), s);
  return seconds{offsets_[std::size_t(it - transitions_.begin()) - 1]};
}

std::int64_t TimeZone::local_seconds(std::chrono::sys_seconds t) const noexcept {
  return t.time_since_epoch().count() + utc_offset(t).count();
}

}  // namespace pgwarden::policy
