#pragma once
/// The audit trail: sessions submit encoded record bodies; one writer thread
/// chains them (seq, prev_hash, hash, hmac) and writes them to the file.
///
/// On a session thread a record costs one short mutex-protected append to a
/// shared batch: no allocation once the buffers have grown, no system call,
/// and in buffered durability no wake-up of the writer, which wakes every
/// flush_interval (or early once flush_bytes are pending) and writes the
/// whole batch with one write(2). In synced durability a session that must
/// wait for its record registers with when_durable(), which wakes the writer
/// if it is idle; the writer then writes and fdatasyncs everything pending
/// at once (group commit) and completes every waiter it covered.
///
/// Backpressure, never a silent drop: a full queue answers Full and
/// when_space() says when to try again. While the file cannot be written,
/// on_failure decides: block refuses Gate records (so no statement runs
/// unaudited) and keeps every accepted record, retrying until the file is
/// writable again; continue drops records, counts them and declares the gap
/// in the file once it recovers.
///
/// In block mode the records of statements denied meanwhile (refused
/// because the file fails, or by a rule) are counted per session, rule and
/// reason (RefusalTally) rather than kept one by one, so the backlog stays
/// small however long clients keep retrying; once space is back it is
/// written in whatever pieces fit, and statements run again as soon as it
/// is all on disk.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "audit/body_batch.hpp"
#include "audit/file_sink.hpp"
#include "audit/options.hpp"
#include "audit/refusal_tally.hpp"
#include "audit/stats.hpp"

namespace pgwarden::audit {

/// Identifies an accepted record: the n-th record accepted (from 1).
using Ticket = std::uint64_t;

enum class Admission : std::uint8_t {
  Accepted,
  Full,     ///< the queue is at capacity: wait for when_space(), then submit again
  Refused,  ///< a Gate record while the file fails in block mode, or the log is closed
};

/// What a record stands for, which decides whether a failing file refuses it.
enum class Purpose : std::uint8_t {
  /// Reports what already happened (an outcome, a session's end, a statement
  /// that ran, in buffered durability): never refused because the file
  /// fails, since refusing would lose it; kept and retried in block mode.
  Fact,
  /// Lets something happen (a statement about to be forwarded, in synced
  /// durability): Refused while the file fails in block mode, so the proxy
  /// refuses the statement instead.
  Gate,
};

class AuditLog {
 public:
  /// Opens the log (creating its directory if needed, continuing the chain
  /// of the previous run in a new file) and starts the writer thread; null
  /// with `error` set when the file cannot be set up.
  static std::unique_ptr<AuditLog> open(Options options, std::string& error);
  /// close()s.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Queues one record body (a JSON object from one of the encode()
  /// functions). Never blocks; `ticket` (optional) receives the record's ticket.
  /// In block mode, while the file fails, the record of a denied statement
  /// submitted without a ticket is counted in a statement.refusals record
  /// (Accepted, taking no room in the queue).
  Admission submit(std::string_view body, Ticket* ticket = nullptr, Purpose purpose = Purpose::Fact);

  /// Calls `done(ok)` once the record `ticket` is written (buffered) or
  /// written and fdatasync'ed (synced); ok is false when it was dropped, or
  /// (on_failure: block) as soon as the file fails, since the record will be
  /// written only after recovery. Runs on the writer thread, or at once on
  /// the calling thread when the answer is already known; must not block.
  /// Wakes the writer if it is idle, so call it only when waiting is needed
  /// (synced durability); buffered sessions never wait for their records.
  void when_durable(Ticket ticket, std::function<void(bool ok)> done);

  /// Calls `ready()` once the queue has room (at once, on the calling
  /// thread, if it has room now); otherwise on the writer thread.
  void when_space(std::function<void()> ready);

  /// False while the file cannot be written (disk full, permission, deleted
  /// file or directory): for /readyz, and what a session checks before it
  /// forwards a statement in buffered durability and block mode.
  bool writable() const { return writable_.load(std::memory_order_acquire); }

  const Stats& stats() const { return stats_; }
  const Options& options() const { return options_; }

  /// Blocks until every record accepted so far is durable (or failed); true
  /// when all were written. For shutdown and tests; never on a session thread.
  bool flush();

  /// Writes everything accepted, syncs, stops the writer thread. In block
  /// mode a file that still fails gets one last attempt; what cannot be
  /// written then is counted as dropped and logged. Later submits are Refused.
  void close();

 private:
  explicit AuditLog(Options options);

  /// Tickets dropped (continue mode), as merged ranges; only the latest kept.
  class DroppedTickets {
   public:
    void add(Ticket first, Ticket last);
    bool contains(Ticket t) const;

   private:
    std::vector<std::pair<Ticket, Ticket>> ranges_;
  };
  struct DurableWaiter {
    Ticket ticket;
    std::function<void(bool)> done;
  };
  /// What one pass of the writer did with the batch.
  struct Progress {
    std::size_t written = 0;
    std::size_t dropped = 0;
  };
  using Callbacks = std::vector<std::function<void()>>;
  /// Callbacks the writer runs after releasing the lock.
  struct Completions {
    std::vector<std::pair<std::function<void(bool)>, bool>> durable;
    Callbacks space;
    bool empty() const { return durable.empty() && space.empty(); }
  };

  void run();
  void wait_for_work(std::unique_lock<std::mutex>& lock);
  Progress write_batch(bool stopping);
  void enter_failure(std::size_t progress, std::size_t written);
  void end_failure();
  void try_recover();
  /// Queues the tallies (of the session `body` belongs to, or all); under mu_.
  void take_tallies(std::string_view body);
  void take_all_tallies();
  void count_queued(std::size_t records, std::size_t bytes);
  void settle(const Progress& p);
  void run_completions();
  bool has_room() const;
  /// Sets the wake flag; true when the caller must notify the writer.
  bool request_wake();
  void log(LogLevel level, const std::string& message) const;

  Options options_;
  Stats stats_;

  // Shared with the sessions, under mu_.
  mutable std::mutex mu_;
  std::condition_variable wake_;     ///< wakes the writer
  std::condition_variable settled_;  ///< done_ advanced (flush)
  BodyBatch pending_;                 ///< accepted, not yet taken by the writer
  std::size_t queued_records_ = 0;    ///< pending_ plus batch_
  std::size_t queued_bytes_ = 0;
  Ticket accepted_ = 0;               ///< tickets handed out
  Ticket done_ = 0;                   ///< every ticket <= done_ is written or dropped
  DroppedTickets dropped_;
  std::vector<DurableWaiter> durable_waiters_;
  Callbacks space_waiters_;
  bool writer_idle_ = false;
  bool wake_requested_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  std::atomic<bool> writable_{true};
  RefusalTally tally_;  ///< block mode, while the file fails
  /// What the log reports of the tally once the file is back.
  struct TallyReport {
    std::uint64_t records = 0;         ///< statement.refusals records queued since the last report
    std::uint64_t counted_before = 0;  ///< tally_.counted() at the last report
  } tally_report_;

  // The writer thread's own.
  FileSink sink_;
  BodyBatch batch_;  ///< taken from pending_; tickets done_+1 ... in order
  Completions completions_;
  /// The file failed and is not writable yet (writer thread only).
  struct Outage {
    bool active = false;
    FailureEpisode episode;
    std::uint64_t written = 0;  ///< records written since the file failed
    std::chrono::steady_clock::time_point since{};
    std::chrono::steady_clock::time_point next_retry{};  ///< also paces retries after a failed recovery
  } outage_;
  std::thread thread_;
};

}  // namespace pgwarden::audit
