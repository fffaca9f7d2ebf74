#pragma once
/// The files of one audit log: the active file (Options::file) and the
/// rotated files beside it, named `<stem>-YYYYMMDDTHHMMSS.ffffffZ<ext>` by
/// the time they were closed, so that sorting names sorts them by time and
/// every rotated name sorts before the active one ('-' < '.'). Also finds
/// where an existing file's chain ends, to continue it after a restart.

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "audit/chain.hpp"
#include "audit/time_format.hpp"

namespace pgwarden::audit {

class LogFiles {
 public:
  explicit LogFiles(const std::string& active_path);

  const std::string& active_path() const { return active_; }
  const std::string& directory() const { return dir_; }
  /// The active file's name without the directory.
  std::string active_name() const;

  /// Whether `name` (no directory) is one of this log's rotated files,
  /// compressed (`.gz`) or not.
  bool is_rotated(const std::string& name) const;
  /// Full paths of the rotated files, oldest first.
  std::vector<std::string> rotated() const;
  /// A name (no directory) for a file rotated at `t`, later than every
  /// existing rotated name and than `after`.
  std::string rotated_name(Clock::time_point t, const std::string& after) const;
  /// Deletes the oldest rotated files beyond `keep` (0 = keep all); returns
  /// the paths it deleted.
  std::vector<std::string> apply_retention(std::uint32_t keep) const;

 private:
  std::string active_;
  std::string dir_;
  std::string stem_;
  std::string ext_;
};

/// Where a file's chain ends.
struct LastRecord {
  bool found = false;  ///< false: the file holds no complete record
  ChainHead head;
  std::uint64_t torn_bytes = 0;  ///< bytes after the last complete record
};

/// Reads the end of `path` (plain or .gz). A torn last line (no newline, or
/// not a record) is skipped; any other line that is not a record where the
/// last one should be is std::errc::bad_message.
std::error_code find_last_record(const std::string& path, LastRecord& out);

/// Cuts the unwritten tail off `path` and makes the cut durable; a file
/// without one is left untouched. The tail is the NUL bytes after the last
/// other byte: a synced active file is preallocated with zeros ahead of its
/// records (FileSink), so what a crash leaves of one ends in such a tail;
/// records themselves never contain a NUL byte (JSON escapes it).
/// find_last_record skips the tail too.
std::error_code trim_unwritten_tail(const std::string& path);

/// Reads the seq and hash of a line, without parsing the rest; false when the
/// line does not have the writer's shape.
bool read_record_head(std::string_view line, ChainHead& out);

}  // namespace pgwarden::audit
