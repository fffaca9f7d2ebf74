#pragma once
/// `pgwarden audit verify`: checks that audit files are exactly what the
/// writer wrote, and names the first record that is not: an edited record
/// (its hash no longer matches), a wrong or missing HMAC, a deleted record
/// (a gap in seq), records swapped or moved (seq out of order), a broken
/// chain (prev_hash is not the previous record's hash) and a missing file
/// (a checkpoint links to records the files given do not hold).
///
/// Not failures, but reported: a torn last line of a file (an interrupted
/// write), gaps the writer declared itself (records lost in on_failure:
/// continue), HMACs present but not checked for want of the key, and a
/// first file that continues a chain from a file not given. What no
/// verifier can see from the files alone is the loss of their newest
/// records; compare the last seq and hash it prints with an outside copy.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.hpp"

namespace pgwarden::audit {

/// What is wrong with the first bad record.
enum class Problem : std::uint8_t {
  Edited,        ///< hash does not match the record's bytes
  HmacMismatch,  ///< hash matches, HMAC does not: edited and re-hashed without the key
  HmacMissing,   ///< a key was given but the record has no HMAC
  Deleted,       ///< seq gap: records removed
  Reordered,     ///< seq out of order: records swapped, moved or duplicated
  ChainBroken,   ///< prev_hash is not the previous record's hash
  MissingFile,   ///< a checkpoint links to records that are not in the files given
  Malformed,     ///< a line that is not a record, other than a torn last line
  Unreadable,    ///< a file could not be read
};
std::string_view to_string(Problem p) noexcept;

struct Finding {
  Problem problem = Problem::Malformed;
  std::string file;
  std::uint64_t line = 0;
  std::uint64_t seq = 0;  ///< the seq named as first bad (0 = none, e.g. an unreadable file)
  std::string message;
};

struct VerifyReport {
  std::optional<Finding> failure;  ///< the first problem; empty = intact
  std::vector<std::string> notes;  ///< torn tails, declared gaps, ... (see the file comment)
  std::uint64_t records = 0;
  std::uint64_t files = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::string last_hash;
  bool intact() const { return !failure.has_value(); }
};

/// Checks lines fed in chain order. After the first failure it only reads
/// on to tell a swap from a deletion.
class Verifier {
 public:
  /// `hmac_key` raw bytes; empty = HMACs are not checked.
  explicit Verifier(std::string_view hmac_key = {});

  void begin_file(const std::string& path);
  /// One line without its newline; `terminated` false when the file ended without one.
  void line(std::string_view text, bool terminated, std::uint64_t line_number);
  void end_file();
  /// A file that could not be read to its end.
  void unreadable(const std::string& path, const std::string& error);
  VerifyReport finish();

 private:
  struct Record;
  struct Gap {
    std::uint64_t expected = 0, found = 0;
    std::string file;
    std::uint64_t line = 0;
  };

  bool check_integrity(const Record& r, std::uint64_t line);
  bool check_link(const Record& r, std::uint64_t line);
  bool check_file_link(const Record& r, std::uint64_t line);
  void note_checkpoint(const Record& r, std::uint64_t line);
  void watch_for_missing(std::string_view text, std::uint64_t line_number);
  void fail(Problem p, std::uint64_t line, std::uint64_t seq, std::string message);
  void torn(std::uint64_t bytes, std::uint64_t line);

  RecordHasher hasher_;
  bool check_hmac_;
  bool noted_unchecked_hmac_ = false;
  VerifyReport report_;
  std::string file_;       ///< path being read
  std::string prev_file_;  ///< path that holds prev_
  bool first_in_file_ = true;
  bool have_prev_ = false;
  ChainHead prev_;
  std::optional<Gap> gap_;
  /// A terminated line that is not a record: torn if it is the file's last.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> suspect_;  ///< line, bytes
};

/// Verifies `files` (already in chain order) with an optional HMAC key.
VerifyReport verify_files(const std::vector<std::string>& files, std::string_view hmac_key);

struct VerifyRequest {
  std::vector<std::string> files;  ///< files or directories, any order
  std::string hmac_key_file;       ///< "" = HMACs not checked
};

/// Prints the notes and `ok: ...` or the failure (`FILE:LINE: seq N: ...`).
/// Returns the exit code: 0 intact, 1 a problem found, 2 bad arguments or
/// unreadable key.
int run_verify(const VerifyRequest& request, std::ostream& out, std::ostream& err);

}  // namespace pgwarden::audit
