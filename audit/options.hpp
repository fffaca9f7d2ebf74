#pragma once
/// How an AuditLog writes: its own settings type, so audit/ does not depend on
/// config/ (the proxy maps config::AuditConfig onto it).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "audit/time_format.hpp"

namespace pgwarden::audit {

/// buffered: records are written in batches every flush_interval. synced: a
/// record a session waits for is fdatasync'ed first (group commit).
enum class Durability : std::uint8_t { Buffered, Synced };

/// block: while the file cannot be written, new records are refused (the
/// proxy refuses the statement) and accepted ones are kept and retried.
/// continue: traffic goes on; records that cannot be written are counted,
/// logged once per failure episode and declared in the file on recovery.
enum class OnFailure : std::uint8_t { Block, Continue };

enum class LogLevel : std::uint8_t { Info, Warning, Error };

/// Operational messages (failure episodes, recovery, rotation); called from
/// the writer thread. audit/ has no logger of its own.
using LogFunction = std::function<void(LogLevel, std::string_view message)>;

struct Options {
  /// The active file (JSON Lines). Rotated files go beside it as
  /// `<stem>-<UTC time>Z<ext>`, which sort before it and chronologically.
  std::string file;
  Durability durability = Durability::Buffered;
  OnFailure on_failure = OnFailure::Block;
  std::string hmac_key;  ///< raw bytes; empty = no HMAC
  std::uint64_t rotate_bytes = 0;                ///< 0 = never by size
  std::chrono::milliseconds rotate_interval{0};  ///< 0 = never by time
  std::uint32_t retention = 0;                   ///< rotated files kept; 0 = all
  /// Synced durability only: the active file is extended with zeros this far
  /// ahead of its records, so the fdatasync after a batch writes data blocks
  /// and no change of the file's size through the filesystem journal (as
  /// PostgreSQL preallocates its WAL). The zeros are cut off when the file is
  /// closed, rotated or found after a crash. 0 = off.
  std::uint64_t preallocate = 0;
  /// Backpressure: records (and bytes) accepted but not yet written. Beyond
  /// either, submit() answers Full; a single record larger than queue_bytes
  /// is still accepted into an empty queue.
  std::size_t queue_records = 65536;
  std::size_t queue_bytes = 64u << 20;
  /// How often the writer writes what is pending (buffered), and how much
  /// pending data wakes it early.
  std::chrono::milliseconds flush_interval{10};
  std::size_t flush_bytes = 256u << 10;
  /// How often a failed file is retried.
  std::chrono::milliseconds retry_interval{200};
  LogFunction log;
  /// Wall clock for checkpoint times and time-based rotation; tests move it.
  std::function<Clock::time_point()> clock;
};

}  // namespace pgwarden::audit
