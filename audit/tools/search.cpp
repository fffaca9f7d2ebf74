#include "audit/tools/search.hpp"

#include <boost/json.hpp>

#include <deque>
#include <functional>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

#include "audit/tools/file_order.hpp"
#include "audit/line_reader.hpp"
#include "audit/record.hpp"
#include "audit/tools/record_filter.hpp"
#include "audit/tools/record_table.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;

/// Rows held back for a result still to come, at most; older ones are shown without it.
constexpr std::size_t max_held_rows = 100000;

std::string session_of(const json::object& o) {
  const json::value* v = o.if_contains("session_id");
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::uint64_t statement_of(const json::object& o) {
  const json::value* v = o.if_contains("statement_id");
  return v && v->is_uint64() ? v->get_uint64() : v && v->is_int64() ? static_cast<std::uint64_t>(v->get_int64()) : 0;
}

bool result_follows(const json::object& o) {
  const json::value* v = o.if_contains("result_follows");
  return v && v->is_bool() && v->get_bool();
}

/// Puts the outcome of `result` into its `statement`.
void merge(json::object& statement, const json::object& result) {
  statement.erase("result_follows");
  for (std::string_view key : {"rows", "sqlstate", "message", "duration_us"})
    if (const json::value* v = result.if_contains(key)) statement[key] = *v;
  if (const json::value* v = result.if_contains("seq")) statement["result_seq"] = *v;
  if (const json::value* v = result.if_contains("time")) statement["result_time"] = *v;
}

/// Emits matching records in file order, each statement logged before it ran
/// held back until its statement.result (or its session's end) arrives.
class Joiner {
 public:
  using Emit = std::function<void(const json::object&)>;
  Joiner(const RecordFilter& filter, Emit emit) : filter_(filter), emit_(std::move(emit)) {}

  void add(json::object record);
  void finish() { flush(true); }

 private:
  struct Row {
    json::object record;
    bool complete = true;
  };
  void add_result(json::object result);
  void end_session(const std::string& session);
  void flush(bool all);

  const RecordFilter& filter_;
  Emit emit_;
  std::deque<Row> rows_;
  std::uint64_t front_ = 0;  ///< absolute index of rows_.front()
  /// session -> statement_id -> absolute row index, for rows awaiting a result.
  std::unordered_map<std::string, std::unordered_map<std::uint64_t, std::uint64_t>> waiting_;
  /// Statements that did not match, whose results must not be shown alone.
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> unmatched_;
};

void Joiner::add(json::object o) {
  const json::value* ev = o.if_contains("event");
  const std::string_view event = ev && ev->is_string() ? std::string_view(ev->get_string()) : std::string_view{};
  if (event == event::statement_result) return add_result(std::move(o));
  if (event == event::session_end) end_session(session_of(o));
  const bool follows = event == event::statement && result_follows(o);
  if (!filter_.matches(o)) {
    if (follows) unmatched_[session_of(o)].insert(statement_of(o));
    return;
  }
  if (follows) waiting_[session_of(o)][statement_of(o)] = front_ + rows_.size();
  rows_.push_back({std::move(o), !follows});
  flush(false);
}

void Joiner::add_result(json::object r) {
  const std::string session = session_of(r);
  const std::uint64_t id = statement_of(r);
  if (auto s = waiting_.find(session); s != waiting_.end()) {
    if (auto it = s->second.find(id); it != s->second.end()) {
      Row& row = rows_[it->second - front_];
      merge(row.record, r);
      row.complete = true;
      s->second.erase(it);
      return flush(false);
    }
  }
  if (auto s = unmatched_.find(session); s != unmatched_.end() && s->second.erase(id)) return;
  // The statement is in a file not read: show the result alone if it can match.
  if (filter_.has_statement_criteria() || !filter_.matches_session(r)) return;
  rows_.push_back({std::move(r), true});
  flush(false);
}

/// No result comes for a session's statements after its end.
void Joiner::end_session(const std::string& session) {
  if (auto s = waiting_.find(session); s != waiting_.end()) {
    for (auto& [id, index] : s->second) rows_[index - front_].complete = true;
    waiting_.erase(s);
  }
  unmatched_.erase(session);
}

void Joiner::flush(bool all) {
  while (!rows_.empty() && (all || rows_.front().complete || rows_.size() > max_held_rows)) {
    Row& row = rows_.front();
    if (!row.complete)
      if (auto s = waiting_.find(session_of(row.record)); s != waiting_.end()) s->second.erase(statement_of(row.record));
    emit_(row.record);
    rows_.pop_front();
    ++front_;
  }
}

/// Reads every line of `files` into `joiner`; false when a file could not be read.
bool read_files(const std::vector<std::string>& files, Joiner& joiner, std::ostream& err) {
  bool ok = true;
  std::uint64_t skipped = 0;
  for (const auto& path : files) {
    LineReader reader;
    std::string error;
    if (!reader.open(path, error)) {
      err << "error: " << error << "\n";
      ok = false;
      continue;
    }
    std::string_view line;
    bool terminated = false;
    while (reader.next(line, terminated)) {
      std::error_code ec;
      json::value v = json::parse(line, ec);
      if (ec || !v.is_object()) ++skipped;
      else joiner.add(std::move(v.get_object()));
    }
    if (!reader.error().empty()) {
      err << "error: " << path << ": cannot read to the end: " << reader.error() << "\n";
      ok = false;
    }
  }
  if (skipped > 0) err << "note: " << skipped << " lines were not records (torn or damaged) and were skipped\n";
  return ok;
}

}  // namespace

int run_search(const SearchRequest& request, std::ostream& out, std::ostream& err) {
  RecordFilter filter;
  std::string error;
  if (!filter.parse(request, error)) {
    err << "error: " << error << "\n";
    return 2;
  }
  if (request.format != "table" && request.format != "jsonl") {
    err << "error: --format: expected table or jsonl, not " << request.format << "\n";
    return 2;
  }
  std::vector<std::string> files;
  if (!order_audit_files(request.files, files, error)) {
    err << "error: " << error << "\n";
    return 2;
  }
  RecordTable table(out);
  Joiner::Emit emit;
  if (request.format == "table") {
    table.header();
    emit = [&table](const json::object& o) { table.row(o); };
  } else {
    emit = [&out](const json::object& o) { out << json::serialize(o) << "\n"; };
  }
  Joiner joiner(filter, std::move(emit));
  const bool ok = read_files(files, joiner, err);
  joiner.finish();
  return ok ? 0 : 1;
}

}  // namespace pgwarden::audit
