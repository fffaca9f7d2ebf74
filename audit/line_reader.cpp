#include "audit/line_reader.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace pgwarden::audit {
namespace {

constexpr std::size_t read_size = 256u << 10;

gzFile gz(void* f) { return static_cast<gzFile>(f); }

}  // namespace

LineReader::~LineReader() {
  if (file_) gzclose(gz(file_));
}

bool LineReader::open(const std::string& path, std::string& error) {
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    error = path + ": " + (errno ? std::strerror(errno) : "cannot open");
    return false;
  }
  gzbuffer(f, read_size);
  file_ = f;
  return true;
}

/// Reads more bytes after the unread ones; false at the end or on an error.
bool LineReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    buffer_.erase(0, begin_);
    begin_ = 0;
  }
  const std::size_t have = buffer_.size();
  buffer_.resize(have + read_size);
  const int n = gzread(gz(file_), buffer_.data() + have, static_cast<unsigned>(read_size));
  buffer_.resize(have + (n > 0 ? static_cast<std::size_t>(n) : 0));
  if (n <= 0) {
    eof_ = true;
    int code = Z_OK;
    const char* message = gzerror(gz(file_), &code);
    if (n < 0 || (code != Z_OK && code != Z_STREAM_END)) error_ = message ? message : "read error";
    return false;
  }
  return true;
}

bool LineReader::next(std::string_view& line, bool& terminated) {
  if (!file_) return false;
  std::size_t scanned = begin_;
  for (;;) {
    const char* base = buffer_.data();
    const void* nl = std::memchr(base + scanned, '\n', buffer_.size() - scanned);
    if (nl) {
      const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
      line = std::string_view(base + begin_, end - begin_);
      begin_ = end + 1;
      terminated = true;
      ++line_number_;
      return true;
    }
    scanned = buffer_.size() - begin_;  // offset relative to begin_ after fill() compacts
    if (!fill()) break;
    scanned += begin_;
  }
  // An unwritten tail (NUL bytes preallocated ahead of the records) ends the file.
  const std::size_t end = buffer_.find_last_not_of('\0');
  if (end == std::string::npos || end < begin_) return false;
  line = std::string_view(buffer_).substr(begin_, end + 1 - begin_);
  begin_ = buffer_.size();
  terminated = false;
  ++line_number_;
  return true;
}

}  // namespace pgwarden::audit
