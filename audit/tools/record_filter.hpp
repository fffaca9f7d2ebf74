#pragma once
/// The criteria of `audit search` over parsed records.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "audit/tools/search.hpp"
#include "audit/time_format.hpp"

namespace pgwarden::audit {

/// An IPv4 or IPv6 address or CIDR block (IPv4 held as IPv4-mapped IPv6).
class AddressBlock {
 public:
  /// "10.20.0.5", "10.20.0.0/16", "fd00::/8"; false when none of these.
  bool parse(std::string_view text);
  bool contains(std::string_view address) const;

 private:
  std::array<unsigned char, 16> bytes_{};
  unsigned prefix_ = 128;
};

/// Case-insensitive match of `text` against `pattern`, where `*` matches any run.
bool glob_match(std::string_view pattern, std::string_view text);

class RecordFilter {
 public:
  /// False with `error` set when a criterion is malformed.
  bool parse(const SearchRequest& request, std::string& error);

  /// Whether `record` meets every criterion. A criterion on a field the
  /// record does not have fails (so --decision shows statements only).
  bool matches(const boost::json::object& record) const;
  /// Only the criteria every record's session fields can meet (user, person, database,
  /// client, session, time, event): for a statement.result whose statement is
  /// not in the files read.
  bool matches_session(const boost::json::object& record) const;
  /// Whether any statement-only criterion (decision, class, command, rule) is set.
  bool has_statement_criteria() const;

 private:
  std::string user_, person_, database_, session_, decision_, class_, command_, rule_, event_;
  std::optional<AddressBlock> client_;
  std::optional<Micros> since_, until_;
};

}  // namespace pgwarden::audit
