#pragma once
/// `audit search --format table`: one aligned line per record. Columns have
/// fixed widths (the output streams; a long value is cut with `~`), the last
/// column holds the statement text or the event's details. Control
/// characters from the log never reach the terminal.

#include <iosfwd>
#include <string>

#include <boost/json/object.hpp>

namespace pgwarden::audit {

class RecordTable {
 public:
  explicit RecordTable(std::ostream& out) : out_(out) {}
  void header();
  void row(const boost::json::object& record);

 private:
  std::ostream& out_;
  std::string line_;
};

/// `text` with control characters (C0, DEL, C1) replaced: whitespace by a
/// space, the rest by `?`; cut to `max` bytes (at a character boundary) with `…`.
std::string printable(std::string_view text, std::size_t max);

}  // namespace pgwarden::audit
