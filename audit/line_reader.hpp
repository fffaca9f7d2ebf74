#pragma once
/// Reads an audit file line by line, plain or gzip-compressed (zlib reads
/// both transparently), for verify and search.

#include <cstdint>
#include <string>
#include <string_view>

namespace pgwarden::audit {

class LineReader {
 public:
  LineReader() = default;
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Opens `path`; false (with `error` set) when it cannot be read.
  bool open(const std::string& path, std::string& error);

  /// The next line without its newline, valid until the next call.
  /// `terminated` is false for a last line the file ends without a newline.
  /// NUL bytes at the end of the file are unwritten space, not a line.
  /// False at the end of the file or on a read error (see error()).
  bool next(std::string_view& line, bool& terminated);

  /// 1-based number of the line next() returned last.
  std::uint64_t line_number() const { return line_number_; }
  /// A read error (a damaged .gz) once next() returned false; "" at a clean end.
  const std::string& error() const { return error_; }

 private:
  bool fill();

  void* file_ = nullptr;  ///< gzFile
  std::string buffer_;
  std::size_t begin_ = 0;  ///< start of unread bytes in buffer_
  bool eof_ = false;
  std::uint64_t line_number_ = 0;
  std::string error_;
};

}  // namespace pgwarden::audit
