#include "audit/log_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>

#include "audit/line_reader.hpp"

namespace pgwarden::audit {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view gz_suffix = ".gz";
constexpr std::size_t stamp_size = 23;  // YYYYMMDDTHHMMSS.ffffffZ

bool digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_stamp(std::string_view s) {
  return s.size() == stamp_size && digits(s.substr(0, 8)) && s[8] == 'T' && digits(s.substr(9, 6)) && s[15] == '.' &&
         digits(s.substr(16, 6)) && s[22] == 'Z';
}

/// "20240701T120000.123456Z" for `t`.
std::string stamp(Clock::time_point t) {
  std::string iso;
  append_rfc3339(iso, t);  // 2024-07-01T12:00:00.123456Z
  std::string s;
  for (char c : iso)
    if (c != '-' && c != ':') s.push_back(c);
  return s;
}

std::string without_gz(std::string name) {
  if (name.ends_with(gz_suffix)) name.resize(name.size() - gz_suffix.size());
  return name;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::error_code pread_all(int fd, std::string& buf, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {errno, std::system_category()};
    if (n == 0) break;  // shrank meanwhile
    done += static_cast<std::size_t>(n);
  }
  buf.resize(done);
  return {};
}

/// Looks for the last record in the tail `buf` of a file. Returns false when
/// the tail is too short to decide (read more); true when `out` is settled or
/// `ec` says the file is damaged.
bool last_record_in(std::string_view buf, bool whole_file, LastRecord& out, std::error_code& ec) {
  std::size_t nl = buf.rfind('\n');
  if (nl == std::string_view::npos) {
    out.torn_bytes = buf.size();
    return whole_file;
  }
  out.torn_bytes = buf.size() - (nl + 1);
  bool may_skip = out.torn_bytes == 0;  // a torn line is the last line, whatever its ending
  for (;;) {
    const std::size_t prev = nl == 0 ? std::string_view::npos : buf.rfind('\n', nl - 1);
    if (prev == std::string_view::npos && !whole_file) return false;
    const std::size_t begin = prev == std::string_view::npos ? 0 : prev + 1;
    if (read_record_head(buf.substr(begin, nl - begin), out.head)) {
      out.found = true;
      return true;
    }
    if (!may_skip) {
      ec = std::make_error_code(std::errc::bad_message);
      return true;
    }
    may_skip = false;
    out.torn_bytes += nl + 1 - begin;
    if (prev == std::string_view::npos) return true;  // the only line was torn
    nl = prev;
  }
}

/// The size of the file open as `fd` (`file_size`) and where its written
/// part ends (`end`): after its last byte that is not NUL.
std::error_code written_end(int fd, std::uint64_t& file_size, std::uint64_t& end) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {errno, std::system_category()};
  file_size = static_cast<std::uint64_t>(st.st_size);
  constexpr std::uint64_t block = 64u << 10;
  std::string buf;
  for (std::uint64_t size = file_size; size > 0;) {
    const std::uint64_t start = size > block ? size - block : 0;
    buf.resize(size - start);
    if (auto ec = pread_all(fd, buf, start)) return ec;
    const std::size_t last = buf.find_last_not_of('\0');
    if (last != std::string::npos) {
      end = start + last + 1;
      return {};
    }
    size = start;
  }
  end = 0;
  return {};
}

std::error_code last_record_plain(const std::string& path, LastRecord& out) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return {errno, std::system_category()};
  std::uint64_t file_size = 0, size = 0;
  if (auto ec = written_end(f.fd, file_size, size)) return ec;
  std::string buf;
  for (std::uint64_t chunk = 64u << 10;; chunk *= 2) {
    const std::uint64_t start = size > chunk ? size - chunk : 0;
    buf.resize(size - start);
    if (auto ec = pread_all(f.fd, buf, start)) return ec;
    out = {};
    std::error_code ec;
    if (last_record_in(buf, start == 0, out, ec)) return ec;
  }
}

/// Compressed files are read forward; they are rotated files, read once at startup.
std::error_code last_record_gz(const std::string& path, LastRecord& out) {
  LineReader reader;
  std::string error;
  if (!reader.open(path, error)) return std::make_error_code(std::errc::io_error);
  std::string_view line;
  bool terminated = false;
  out = {};
  while (reader.next(line, terminated)) {
    ChainHead head;
    if (terminated && read_record_head(line, head)) {
      out.found = true;
      out.head = head;
      out.torn_bytes = 0;
    } else {
      out.torn_bytes += line.size() + (terminated ? 1 : 0);
    }
  }
  return {};
}

}  // namespace

LogFiles::LogFiles(const std::string& active_path) : active_(active_path) {
  const fs::path p(active_path);
  dir_ = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  stem_ = p.stem().string();
  ext_ = p.extension().string();
}

std::string LogFiles::active_name() const { return fs::path(active_).filename().string(); }

bool LogFiles::is_rotated(const std::string& name) const {
  const std::string base = without_gz(name);
  if (base.size() != stem_.size() + 1 + stamp_size + ext_.size()) return false;
  return base.starts_with(stem_) && base[stem_.size()] == '-' && base.ends_with(ext_) &&
         is_stamp(std::string_view(base).substr(stem_.size() + 1, stamp_size));
}

std::vector<std::string> LogFiles::rotated() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_rotated(name)) names.push_back(name);
  }
  // Same stamp, compressed or not: the plain name sorts first.
  std::sort(names.begin(), names.end());
  for (auto& n : names) n = (fs::path(dir_) / n).string();
  return names;
}

std::string LogFiles::rotated_name(Clock::time_point t, const std::string& after) const {
  std::string newest = after;
  for (const auto& path : rotated()) newest = std::max(newest, without_gz(fs::path(path).filename().string()));
  for (;; t += std::chrono::microseconds(1)) {
    std::string name = stem_ + "-" + stamp(t) + ext_;
    std::error_code ec;
    if (name > newest && !fs::exists(fs::path(dir_) / name, ec)) return name;
  }
}

std::vector<std::string> LogFiles::apply_retention(std::uint32_t keep) const {
  std::vector<std::string> deleted;
  if (keep == 0) return deleted;
  const std::vector<std::string> files = rotated();
  for (std::size_t i = 0; i + keep < files.size(); ++i) {
    std::error_code ec;
    if (fs::remove(files[i], ec)) deleted.push_back(files[i]);
  }
  return deleted;
}

std::error_code find_last_record(const std::string& path, LastRecord& out) {
  return path.ends_with(gz_suffix) ? last_record_gz(path, out) : last_record_plain(path, out);
}

std::error_code trim_unwritten_tail(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDWR | O_CLOEXEC)};
  if (f.fd < 0) return {errno, std::system_category()};
  std::uint64_t file_size = 0, end = 0;
  if (auto ec = written_end(f.fd, file_size, end)) return ec;
  if (end == file_size) return {};
  if (::ftruncate(f.fd, static_cast<off_t>(end)) != 0 || ::fdatasync(f.fd) != 0) return {errno, std::system_category()};
  return {};
}

bool read_record_head(std::string_view line, ChainHead& out) {
  constexpr std::string_view seq_key = "{\"seq\":";
  LineParts parts;
  if (!line.starts_with(seq_key) || !split_line(line, parts)) return false;
  const char* begin = line.data() + seq_key.size();
  const char* end = line.data() + line.size();
  std::uint64_t seq = 0;
  const auto r = std::from_chars(begin, end, seq);
  if (r.ec != std::errc() || r.ptr == begin || r.ptr == end || *r.ptr != ',') return false;
  if (!from_hex(parts.hash_hex, out.hash)) return false;
  out.seq = seq;
  return true;
}

}  // namespace pgwarden::audit
