#include "audit/audit_log.hpp"

#include <pthread.h>

#include <algorithm>
#include <exception>

namespace pgwarden::audit {
namespace {

using namespace std::chrono_literals;

Options normalised(Options o) {
  if (!o.clock) o.clock = [] { return Clock::now(); };
  o.queue_records = std::max<std::size_t>(o.queue_records, 1);
  o.flush_interval = std::max(o.flush_interval, 1ms);
  o.retry_interval = std::max(o.retry_interval, 1ms);
  return o;
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

}  // namespace

void AuditLog::DroppedTickets::add(Ticket first, Ticket last) {
  if (!ranges_.empty() && ranges_.back().second + 1 == first) {
    ranges_.back().second = last;
    return;
  }
  ranges_.emplace_back(first, last);
  if (ranges_.size() > 1024) ranges_.erase(ranges_.begin());  // a late question about an old ticket is rare
}

bool AuditLog::DroppedTickets::contains(Ticket t) const {
  return std::any_of(ranges_.rbegin(), ranges_.rend(), [t](const auto& r) { return t >= r.first && t <= r.second; });
}

AuditLog::AuditLog(Options options) : options_(normalised(std::move(options))), sink_(options_, stats_) {}

AuditLog::~AuditLog() { close(); }

std::unique_ptr<AuditLog> AuditLog::open(Options options, std::string& error) {
  if (options.file.empty()) {
    error = "audit: no file configured";
    return nullptr;
  }
  std::unique_ptr<AuditLog> log;
  try {
    log.reset(new AuditLog(std::move(options)));
  } catch (const std::exception& e) {  // OpenSSL without SHA-256 or HMAC
    error = std::string("audit: ") + e.what();
    return nullptr;
  }
  if (log->sink_.open()) {
    error = "audit: " + log->sink_.last_error();
    return nullptr;
  }
  log->thread_ = std::thread([p = log.get()] { p->run(); });
  pthread_setname_np(log->thread_.native_handle(), "pgwarden-audit");
  return log;
}

bool AuditLog::request_wake() {
  if (wake_requested_) return false;
  wake_requested_ = true;
  return writer_idle_;
}

bool AuditLog::has_room() const {
  return queued_records_ < options_.queue_records && (queued_records_ == 0 || queued_bytes_ < options_.queue_bytes);
}

Admission AuditLog::submit(std::string_view body, Ticket* ticket, Purpose purpose) {
  std::unique_lock lock(mu_);
  const bool refuse_gates = options_.on_failure == OnFailure::Block && !writable_.load(std::memory_order_relaxed);
  if (stopping_ || (purpose == Purpose::Gate && refuse_gates)) {
    lock.unlock();
    stats_.submits_refused.fetch_add(1, std::memory_order_relaxed);
    return Admission::Refused;
  }
  if (refuse_gates && !ticket && purpose == Purpose::Fact && tally_.add(body, options_.clock())) {
    stats_.refusals_counted.fetch_add(1, std::memory_order_relaxed);
    return Admission::Accepted;
  }
  if (!tally_.empty()) take_tallies(body);  // a session's counts go before its next record
  if (queued_records_ >= options_.queue_records ||
      (queued_records_ > 0 && queued_bytes_ + body.size() > options_.queue_bytes)) {
    const bool notify = request_wake();
    lock.unlock();
    if (notify) wake_.notify_one();
    stats_.submits_full.fetch_add(1, std::memory_order_relaxed);
    return Admission::Full;
  }
  pending_.append(body);
  ++queued_records_;
  queued_bytes_ += body.size();
  const Ticket t = ++accepted_;
  stats_.queue_depth.store(queued_records_, std::memory_order_relaxed);
  // The writer comes by itself every flush_interval; wake it early only for a large backlog.
  const bool notify = pending_.bytes() >= options_.flush_bytes && request_wake();
  lock.unlock();
  if (notify) wake_.notify_one();
  if (ticket) *ticket = t;
  return Admission::Accepted;
}

void AuditLog::count_queued(std::size_t records, std::size_t bytes) {
  queued_records_ += records;
  queued_bytes_ += bytes;
  accepted_ += records;
  stats_.queue_depth.store(queued_records_, std::memory_order_relaxed);
}

void AuditLog::take_tallies(std::string_view body) {
  const std::size_t before = pending_.bytes();
  const std::size_t n = tally_.take_session_of(body, pending_);
  tally_report_.records += n;
  count_queued(n, pending_.bytes() - before);
}

void AuditLog::take_all_tallies() {
  const std::size_t before = pending_.bytes();
  const std::size_t n = tally_.take_all(pending_);
  count_queued(n, pending_.bytes() - before);
  tally_report_.records += n;
  if (tally_report_.records == 0) return;
  const std::uint64_t counted = tally_.counted() - tally_report_.counted_before;
  log(LogLevel::Warning, "audit: " + std::to_string(counted) +
                             " statements denied while the file could not be written are counted in " +
                             std::to_string(tally_report_.records) + " statement.refusals records");
  tally_report_.counted_before = tally_.counted();
  tally_report_.records = 0;
}

void AuditLog::when_durable(Ticket ticket, std::function<void(bool)> done) {
  std::unique_lock lock(mu_);
  if (ticket <= done_) {
    const bool ok = !dropped_.contains(ticket);
    lock.unlock();
    done(ok);
    return;
  }
  if (options_.on_failure == OnFailure::Block && !writable_.load(std::memory_order_relaxed)) {
    lock.unlock();
    done(false);
    return;
  }
  durable_waiters_.push_back({ticket, std::move(done)});
  const bool notify = request_wake();
  lock.unlock();
  if (notify) wake_.notify_one();
}

void AuditLog::when_space(std::function<void()> ready) {
  std::unique_lock lock(mu_);
  if (has_room() || stopping_) {
    lock.unlock();
    ready();
    return;
  }
  space_waiters_.push_back(std::move(ready));
  const bool notify = request_wake();
  lock.unlock();
  if (notify) wake_.notify_one();
}

bool AuditLog::flush() {
  std::unique_lock lock(mu_);
  const Ticket target = accepted_;
  const bool notify = done_ < target && request_wake();
  if (notify) wake_.notify_one();
  settled_.wait(lock, [&] { return done_ >= target; });
  return !dropped_.contains(target);
}

void AuditLog::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    stopping_ = true;
    take_all_tallies();
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (sink_.close()) log(LogLevel::Error, "audit: " + sink_.last_error());
}

void AuditLog::log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

void AuditLog::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (!stopping_) wait_for_work(lock);
    const bool stopping = stopping_;
    if (batch_.empty()) {
      batch_.swap(pending_);
    } else {  // records kept after a failure (block mode)
      batch_.append(pending_);
      pending_.clear();
    }
    lock.unlock();
    const Progress progress = write_batch(stopping);
    lock.lock();
    settle(progress);
    if (!completions_.empty()) {
      lock.unlock();
      run_completions();
      lock.lock();
    }
    if (stopping && pending_.empty() && batch_.empty()) break;
  }
}

void AuditLog::wait_for_work(std::unique_lock<std::mutex>& lock) {
  auto deadline = std::chrono::steady_clock::now() + options_.flush_interval;
  // Blocked on a failed file: nothing to do before the next retry.
  if (outage_.active && options_.on_failure == OnFailure::Block) deadline = std::max(deadline, outage_.next_retry);
  writer_idle_ = true;
  wake_.wait_until(lock, deadline, [&] { return stopping_ || wake_requested_; });
  writer_idle_ = false;
  wake_requested_ = false;
}

AuditLog::Progress AuditLog::write_batch(bool stopping) {
  Progress p;
  if (sink_.broken() && (stopping || std::chrono::steady_clock::now() >= outage_.next_retry)) try_recover();
  if (!sink_.broken() && !batch_.empty()) {
    std::error_code ec;
    const bool was_failing = outage_.active;
    p.written = sink_.append(batch_, 0, options_.durability == Durability::Synced, ec);
    if (was_failing) outage_.written += p.written;
    if (ec) enter_failure(was_failing ? p.written : 0, p.written);
  }
  if (outage_.active && !sink_.broken()) end_failure();
  if (sink_.broken() && (options_.on_failure == OnFailure::Continue || stopping)) {
    p.dropped = batch_.size() - p.written;
    outage_.episode.records_lost += p.dropped;
    if (stopping && p.dropped > 0)
      log(LogLevel::Error, "audit: " + std::to_string(p.dropped) + " records could not be written before shutdown (" +
                               sink_.last_error() + ")");
  }
  return p;
}

/// The file failed after `progress` records of this episode's backlog (and
/// `written` of the batch in all) reached it: says so, and what waits.
void AuditLog::enter_failure(std::size_t progress, std::size_t written) {
  outage_.next_retry = std::chrono::steady_clock::now() + options_.retry_interval;
  const bool block = options_.on_failure == OnFailure::Block;
  const std::string waiting = std::to_string(batch_.size() - written) + " records (" +
                              std::to_string(batch_.bytes() - batch_.bytes_before(written)) + " bytes) waiting";
  if (outage_.active) {
    if (progress > 0)
      log(LogLevel::Warning, "audit: wrote " + std::to_string(progress) + " of the records kept during the failure, then " +
                                 sink_.last_error() + "; " + waiting);
    return;
  }
  outage_.active = true;
  outage_.since = std::chrono::steady_clock::now();
  outage_.episode = {sink_.last_error(), options_.clock(), 0};
  outage_.written = 0;
  log(LogLevel::Error, "audit: " + outage_.episode.error +
                           (block ? "; refusing statements until the audit file can be written again; " + waiting
                                  : "; statements continue, their records are dropped and counted"));
}

/// Everything kept since the file failed is written (or, continue mode,
/// dropped): the episode is over.
void AuditLog::end_failure() {
  log(LogLevel::Warning, "audit: writing " + options_.file + " again after " +
                             seconds_text(std::chrono::steady_clock::now() - outage_.since) + "; wrote " +
                             std::to_string(outage_.written) + " records kept during the failure, " +
                             std::to_string(outage_.episode.records_lost) + " records lost");
  outage_.active = false;
  outage_.episode = {};
  outage_.written = 0;
  sink_.end_episode();
}

void AuditLog::try_recover() {
  if (sink_.recover(outage_.episode, batch_.empty() ? 0 : batch_[0].size()))
    outage_.next_retry = std::chrono::steady_clock::now() + options_.retry_interval;
}

void AuditLog::settle(const Progress& p) {
  const std::size_t n = p.written + p.dropped;
  if (n > 0) {
    if (p.dropped > 0) {
      dropped_.add(done_ + p.written + 1, done_ + n);
      stats_.records_dropped.fetch_add(p.dropped, std::memory_order_relaxed);
    }
    done_ += n;
    queued_records_ -= n;
    queued_bytes_ -= batch_.bytes_before(n);
    batch_.drop_front(n);
    stats_.queue_depth.store(queued_records_, std::memory_order_relaxed);
    settled_.notify_all();
  }
  // Writable again: the counts of what was denied meanwhile go first.
  if (!sink_.broken() && !writable_.load(std::memory_order_relaxed)) take_all_tallies();
  writable_.store(!sink_.broken(), std::memory_order_release);
  // Block mode: a session waiting for its record is answered now, not after recovery.
  const bool refuse = options_.on_failure == OnFailure::Block && sink_.broken();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < durable_waiters_.size(); ++i) {
    DurableWaiter& w = durable_waiters_[i];
    if (w.ticket <= done_) completions_.durable.emplace_back(std::move(w.done), !dropped_.contains(w.ticket));
    else if (refuse) completions_.durable.emplace_back(std::move(w.done), false);
    else if (kept++ != i) durable_waiters_[kept - 1] = std::move(w);
  }
  durable_waiters_.resize(kept);
  if (!space_waiters_.empty() && has_room()) completions_.space.swap(space_waiters_);
}

void AuditLog::run_completions() {
  for (auto& [done, ok] : completions_.durable) done(ok);
  for (auto& ready : completions_.space) ready();
  completions_.durable.clear();
  completions_.space.clear();
}

}  // namespace pgwarden::audit
