#pragma once
/// The writer thread's side of an AuditLog: the open file, the hash chain,
/// rotation, retention and recovery after a failure. Used by one thread
/// only; every method reports failure as an error code with last_error()
/// saying what failed on which file.
///
/// Every file begins with a checkpoint record linking it to the last record
/// of the previous file: at startup (the previous run's file is renamed to a
/// rotated name first), at rotation and after recovering from a failure. A
/// batch counts as written only when write(2) (and fdatasync in synced mode)
/// succeeded and the active path still names the file written to, so a
/// deleted file or directory is a failure, not a silent loss.
///
/// In synced durability with Options::preallocate, the active file runs
/// ahead of its records in zeros: readers (LineReader, find_last_record)
/// take a NUL tail for unwritten space, and every way a file stops being
/// active cuts the tail off again.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "audit/body_batch.hpp"
#include "audit/chain.hpp"
#include "audit/log_files.hpp"
#include "audit/options.hpp"
#include "audit/record.hpp"
#include "audit/stats.hpp"

namespace pgwarden::audit {

/// What a recovery checkpoint declares about the failure episode it ends.
struct FailureEpisode {
  std::string error;
  Clock::time_point since{};
  std::uint64_t records_lost = 0;
};

class FileSink {
 public:
  /// `options` and `stats` must outlive the sink.
  FileSink(const Options& options, Stats& stats);
  ~FileSink();
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  /// Creates the directory if needed, finds where the newest existing file's
  /// chain ends (a torn last line is left in place), moves that file to a
  /// rotated name and begins a new active file continuing the chain.
  std::error_code open();

  /// Writes bodies[first..] as chained lines, rotating by size and time on
  /// the way; with `sync` each write is fdatasync'ed. Returns the index after
  /// the last body written. On failure `ec` is set and the sink is broken();
  /// when the disk filled up part way, the records whose lines fit whole are
  /// kept (and count as written), and the torn rest is cut off again, so
  /// every retry makes progress with whatever space was freed.
  std::size_t append(const BodyBatch& bodies, std::size_t first, bool sync, std::error_code& ec);

  /// Whether the last operation failed; only recover() clears it.
  bool broken() const { return broken_; }
  /// Resumes writing after a failure. The first time in a failure episode
  /// it begins a new active file (the old one, if still there, is moved to a
  /// rotated name) with a `recover` checkpoint declaring `episode`, but only
  /// once the filesystem has room for that checkpoint and `next_bytes` of
  /// the first waiting record (when the disk was full), so a full disk gets
  /// no files holding a checkpoint alone. Should the disk fill up again
  /// before end_episode(), it goes on in that same file where its last
  /// complete record ends.
  /// Fails (and stays broken) while the directory is missing, there is no
  /// room, or the file cannot be written.
  std::error_code recover(const FailureEpisode& episode, std::size_t next_bytes);
  /// The failure episode is over (everything kept meanwhile is written): a
  /// later failure's recovery begins a new file again.
  void end_episode() { recovered_file_ = false; }

  /// fdatasync and close the active file.
  std::error_code close();

  const ChainHead& head() const { return head_; }
  /// "write /path/file: No space left on device" for the last failure.
  const std::string& last_error() const { return last_error_; }

 private:
  Clock::time_point encode_checkpoint(CheckpointReason reason, const FailureEpisode* episode);
  std::error_code begin_file(CheckpointReason reason, const FailureEpisode* episode);
  std::error_code rotate(CheckpointReason reason);
  std::error_code move_aside_active(std::string& moved);
  bool rotation_due(CheckpointReason& reason) const;
  bool size_reached(std::size_t pending) const;
  std::error_code write_out(bool sync, std::size_t& written);
  std::size_t keep_whole_lines(std::size_t written, bool sync);
  bool resumable() const;
  /// Whether the last failure was the disk (or a quota, or a size limit) running out.
  bool out_of_space() const;
  std::error_code room_for_recovery(const FailureEpisode& episode, std::size_t next_bytes);
  void reserve(std::size_t n);
  void stop_preallocating(const std::string& why);
  std::error_code cut_unwritten();
  std::error_code still_ours() const;
  std::error_code fail(std::error_code ec, std::string_view what, const std::string& path);
  void close_fd();

  const Options& options_;
  Stats& stats_;
  LogFiles files_;
  RecordHasher hasher_;

  ChainHead head_;
  std::string head_file_;     ///< name of the file holding head_.seq
  std::string last_rotated_;  ///< newest rotated name this sink chose
  int fd_ = -1;
  dev_t dev_ = 0;             ///< identity of the active file written to
  ino_t ino_ = 0;
  std::uint64_t size_ = 0;     ///< bytes of the active file known written
  std::uint64_t allocated_ = 0;  ///< its size on disk: size_ plus preallocated zeros
  bool preallocating_ = false;  ///< synced with Options::preallocate, until it fails for this file
  std::uint64_t records_ = 0;  ///< records after the active file's checkpoint
  Clock::time_point opened_at_{};
  bool broken_ = false;
  int last_errno_ = 0;           ///< errno of the last failure
  bool recovered_file_ = false;  ///< the active file began with this episode's recover checkpoint
  std::string last_error_;
  RecordBuffer body_;  ///< checkpoint body, reused
  std::string out_;   ///< lines of one write, reused
  /// Per line of out_: where it ends and the chain head after it, to keep
  /// the lines a short write completed.
  std::vector<std::pair<std::size_t, ChainHead>> line_ends_;
};

}  // namespace pgwarden::audit
