#pragma once
/// Statements denied while the audit file cannot be written (on_failure:
/// block), counted per session, rule and reason instead of kept one record
/// each. A client retrying against a full disk is refused thousands of
/// times a minute; kept one by one, those records would grow a backlog
/// that must fit on the disk before anything may run again. Counted, the
/// backlog stays one `statement.refusals` record per session, rule and
/// reason, and every refusal is still accounted for in the hash chain.
///
/// Not thread-safe: the AuditLog uses it under its own lock.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "audit/body_batch.hpp"
#include "audit/time_format.hpp"

namespace pgwarden::audit {

class RefusalTally {
 public:
  /// Counts `body` (at `now`) when it is the record of a denied statement
  /// with its outcome, as the encoder writes it; false, counting nothing,
  /// for any other record.
  bool add(std::string_view body, Clock::time_point now);

  /// Appends a statement.refusals body for every tally of the session that
  /// `body` (any of its records) belongs to, and forgets them; returns how
  /// many. A session's counts so go before its next record.
  std::size_t take_session_of(std::string_view body, BodyBatch& out);
  /// Appends every tally's statement.refusals body and forgets them all.
  std::size_t take_all(BodyBatch& out);

  bool empty() const { return tallies_.empty(); }
  /// Refusals counted since construction.
  std::uint64_t counted() const { return counted_; }

 private:
  struct Tally {
    std::string session_members;  ///< `"session_id":...,"tls":...` as the refused records had them
    std::uint64_t count = 0;
    std::uint64_t first_statement_id = 0;
    std::uint64_t last_statement_id = 0;
    Clock::time_point first_time{};
    Clock::time_point last_time{};
  };
  /// session_id, then rule, reason and sqlstate.
  struct Key {
    std::string session_id;
    std::string rule;
    std::string reason;
    std::string sqlstate;
    auto operator<=>(const Key&) const = default;
  };

  static void append_record(const Key& key, const Tally& t, BodyBatch& out);

  std::map<Key, Tally> tallies_;
  std::uint64_t counted_ = 0;
};

}  // namespace pgwarden::audit
