#include "audit/tools/verifier.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <ostream>

#include "audit/tools/file_order.hpp"
#include "audit/key_file.hpp"
#include "audit/line_reader.hpp"
#include "audit/log_files.hpp"
#include "audit/record.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;

std::string name_of(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  return name;
}

/// "record 5" or "records 5..7".
std::string records_text(std::uint64_t first, std::uint64_t last) {
  if (first == last) return "record " + std::to_string(first);
  return "records " + std::to_string(first) + ".." + std::to_string(last);
}

std::string_view string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

std::uint64_t uint_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_uint64()) return v->get_uint64();
  if (v && v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  return 0;
}

}  // namespace

std::string_view to_string(Problem p) noexcept {
  switch (p) {
    case Problem::Edited: return "edited";
    case Problem::HmacMismatch: return "hmac mismatch";
    case Problem::HmacMissing: return "hmac missing";
    case Problem::Deleted: return "deleted";
    case Problem::Reordered: return "reordered";
    case Problem::ChainBroken: return "chain broken";
    case Problem::MissingFile: return "missing file";
    case Problem::Malformed: return "malformed";
    case Problem::Unreadable: return "unreadable";
  }
  return "malformed";
}

/// The parts of a record verify looks at.
struct Verifier::Record {
  LineParts parts;
  ChainHead head;  ///< seq and hash as written
  Digest prev_hash{};
  bool checkpoint = false;
  std::uint64_t previous_seq = 0;
  Digest previous_hash{};
  std::string previous_file, reason, error, failed_since;
  std::uint64_t records_lost = 0;

  /// False when `text` is not a record the writer could have written.
  bool parse(std::string_view text) {
    if (!read_record_head(text, head) || !split_line(text, parts)) return false;
    std::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) return false;
    const json::object& o = v.get_object();
    if (!from_hex(string_at(o, "prev_hash"), prev_hash)) return false;
    checkpoint = string_at(o, "event") == event::checkpoint;
    if (!checkpoint) return true;
    previous_seq = uint_at(o, "previous_seq");
    if (!from_hex(string_at(o, "previous_hash"), previous_hash)) return false;
    previous_file = string_at(o, "previous_file");
    reason = string_at(o, "reason");
    error = string_at(o, "error");
    failed_since = string_at(o, "failed_since");
    records_lost = uint_at(o, "records_lost");
    return true;
  }
};

Verifier::Verifier(std::string_view hmac_key) : hasher_(hmac_key), check_hmac_(!hmac_key.empty()) {}

void Verifier::begin_file(const std::string& path) {
  file_ = path;
  first_in_file_ = true;
  ++report_.files;
}

void Verifier::fail(Problem p, std::uint64_t line, std::uint64_t seq, std::string message) {
  if (!report_.failure) report_.failure = Finding{p, file_, line, seq, std::move(message)};
}

void Verifier::torn(std::uint64_t bytes, std::uint64_t line) {
  report_.notes.push_back(file_ + ":" + std::to_string(line) + ": torn last line (" + std::to_string(bytes) +
                          " bytes, not a complete record): an interrupted write, not tampering");
}

void Verifier::line(std::string_view text, bool terminated, std::uint64_t line_number) {
  if (suspect_) {  // a line follows, so the one before was not a torn tail
    fail(Problem::Malformed, suspect_->first, 0, "not an audit record");
    suspect_.reset();
  }
  if (report_.failure) {
    if (gap_) watch_for_missing(text, line_number);
    return;
  }
  if (!terminated) {  // only the last line of a file can lack a newline
    torn(text.size(), line_number);
    return;
  }
  Record r;
  if (!r.parse(text)) {
    suspect_.emplace(line_number, text.size() + 1);
    return;
  }
  if (!check_integrity(r, line_number) || !check_link(r, line_number)) return;
  note_checkpoint(r, line_number);
  if (!have_prev_) report_.first_seq = r.head.seq;
  have_prev_ = true;
  prev_ = r.head;
  prev_file_ = file_;
  first_in_file_ = false;
  ++report_.records;
  report_.last_seq = r.head.seq;
}

void Verifier::end_file() {
  if (suspect_) torn(suspect_->second, suspect_->first);
  suspect_.reset();
}

void Verifier::unreadable(const std::string& path, const std::string& error) {
  const std::string keep = file_;
  file_ = path;
  fail(Problem::Unreadable, 0, 0, error);
  file_ = keep;
}

bool Verifier::check_integrity(const Record& r, std::uint64_t n) {
  const Digest h = hasher_.hash(r.parts.canonical_prefix);
  if (h != r.head.hash) {
    fail(Problem::Edited, n, r.head.seq, "the hash does not match the record: it was edited");
    return false;
  }
  if (!check_hmac_) {
    if (!r.parts.hmac_hex.empty() && !noted_unchecked_hmac_)
      report_.notes.push_back("records carry an HMAC that was not checked (no --hmac-key-file)");
    noted_unchecked_hmac_ = noted_unchecked_hmac_ || !r.parts.hmac_hex.empty();
    return true;
  }
  Digest m{};
  if (r.parts.hmac_hex.empty() || !from_hex(r.parts.hmac_hex, m)) {
    fail(Problem::HmacMissing, n, r.head.seq, "the record has no HMAC although a key was given");
    return false;
  }
  if (m != hasher_.hmac(h)) {
    fail(Problem::HmacMismatch, n, r.head.seq,
         "the HMAC does not match: the record was changed and re-hashed without the key (or the key is wrong)");
    return false;
  }
  return true;
}

bool Verifier::check_link(const Record& r, std::uint64_t n) {
  const std::uint64_t seq = r.head.seq;
  if (!have_prev_) {
    if (r.checkpoint && r.previous_seq != 0)
      report_.notes.push_back(file_ + ": begins at seq " + std::to_string(seq) + ", continuing from seq " +
                              std::to_string(r.previous_seq) + " in " + r.previous_file +
                              " (not given); verified from there");
    else if (!r.checkpoint && seq != 1)
      report_.notes.push_back(file_ + ": the first record given is seq " + std::to_string(seq) +
                              "; verified from there");
    return true;
  }
  const std::string last = std::to_string(prev_.seq);
  if (r.checkpoint && r.previous_seq != prev_.seq) return check_file_link(r, n);
  if (r.checkpoint && r.previous_hash != prev_.hash) {
    fail(Problem::ChainBroken, n, seq,
         "its checkpoint's previous_hash is not the hash of seq " + last + " in " + prev_file_ +
             ": that record was replaced and re-hashed");
    return false;
  }
  if (seq != prev_.seq + 1) {
    const std::string expected = std::to_string(prev_.seq + 1);
    if (seq < prev_.seq + 1) {
      fail(Problem::Reordered, n, seq, "seq " + std::to_string(seq) + " after seq " + last +
                                           ": records swapped, moved or duplicated");
    } else {
      gap_ = Gap{prev_.seq + 1, seq, file_, n};
      fail(Problem::Deleted, n, prev_.seq + 1,
           "seq " + std::to_string(seq) + " where seq " + expected + " was expected: " +
               records_text(prev_.seq + 1, seq - 1) + (seq - 1 == prev_.seq + 1 ? " is" : " are") +
               " missing (deleted)");
    }
    return false;
  }
  if (r.prev_hash != prev_.hash) {
    fail(Problem::ChainBroken, n, seq,
         "prev_hash is not the hash of seq " + last + ": a record before it was replaced and re-hashed");
    return false;
  }
  return true;
}

/// A checkpoint that continues from another seq than the records before it reach.
bool Verifier::check_file_link(const Record& r, std::uint64_t n) {
  const std::string last = std::to_string(prev_.seq);
  const std::string from = std::to_string(r.previous_seq);
  const std::string missing = records_text(prev_.seq + 1, r.previous_seq);
  if (r.previous_seq < prev_.seq)
    fail(Problem::Reordered, n, r.head.seq,
         "this file continues from seq " + from + " but the records before it reach seq " + last +
             ": files overlap (a file given twice, or records duplicated)");
  else if (r.previous_file == name_of(prev_file_))
    fail(Problem::Deleted, n, prev_.seq + 1,
         "this file continues from seq " + from + " of " + r.previous_file + ", which ends at seq " + last +
             ": " + missing + (prev_.seq + 1 == r.previous_seq ? " was" : " were") + " deleted from its end");
  else
    fail(Problem::MissingFile, n, prev_.seq + 1,
         "this file continues from seq " + from + " in " + r.previous_file + ", but the files before it end at seq " +
             last + " (" + prev_file_ + "): " + r.previous_file + " (" + missing + ") is missing from the sequence");
  return false;
}

void Verifier::note_checkpoint(const Record& r, std::uint64_t n) {
  if (!r.checkpoint || r.reason != to_string(CheckpointReason::Recover)) return;
  const std::string where = file_ + ":" + std::to_string(n) + ": seq " + std::to_string(r.head.seq) + ": ";
  if (r.records_lost > 0)
    report_.notes.push_back(where + std::to_string(r.records_lost) + " records were lost while the file could not be " +
                            "written (" + r.error + ", from " + r.failed_since +
                            "): a gap declared by the writer (on_failure: continue), not tampering");
  else
    report_.notes.push_back(where + "writing resumed after a failure (" + r.error + ", from " + r.failed_since +
                            "); no record was lost");
}

/// After a gap: if the missing seq turns up later, the records were moved, not deleted.
void Verifier::watch_for_missing(std::string_view text, std::uint64_t line_number) {
  ChainHead head;
  if (!read_record_head(text, head) || head.seq < gap_->expected || head.seq >= gap_->found) return;
  Finding& f = *report_.failure;
  f.problem = Problem::Reordered;
  f.seq = gap_->found;
  f.message = "seq " + std::to_string(gap_->found) + " where seq " + std::to_string(gap_->expected) +
              " was expected; seq " + std::to_string(head.seq) + " comes later, at " + file_ + ":" +
              std::to_string(line_number) + ": records swapped or moved";
  gap_.reset();
}

VerifyReport Verifier::finish() {
  if (suspect_) end_file();
  if (have_prev_) report_.last_hash = to_hex(prev_.hash);
  return std::move(report_);
}

VerifyReport verify_files(const std::vector<std::string>& files, std::string_view hmac_key) {
  Verifier v(hmac_key);
  for (const auto& path : files) {
    LineReader reader;
    std::string error;
    if (!reader.open(path, error)) {
      v.unreadable(path, error);
      continue;
    }
    v.begin_file(path);
    std::string_view line;
    bool terminated = false;
    while (reader.next(line, terminated)) v.line(line, terminated, reader.line_number());
    if (!reader.error().empty()) v.unreadable(path, "cannot read to the end: " + reader.error());
    v.end_file();
  }
  return v.finish();
}

int run_verify(const VerifyRequest& request, std::ostream& out, std::ostream& err) {
  std::string key, error;
  if (!request.hmac_key_file.empty() && !read_hmac_key(request.hmac_key_file, key, error)) {
    err << "error: " << error << "\n";
    return 2;
  }
  std::vector<std::string> files;
  if (!order_audit_files(request.files, files, error)) {
    err << "error: " << error << "\n";
    return 2;
  }
  const VerifyReport report = verify_files(files, key);
  for (const auto& note : report.notes) out << "note: " << note << "\n";
  if (const auto& f = report.failure) {
    out << "FAILED: " << f->file;
    if (f->line != 0) out << ":" << f->line;
    if (f->seq != 0) out << ": seq " << f->seq;
    out << ": " << to_string(f->problem) << ": " << f->message << "\n";
    return 1;
  }
  out << "ok: " << report.records << " records";
  if (report.records > 0) out << " (seq " << report.first_seq << ".." << report.last_seq << ")";
  out << " in " << report.files << (report.files == 1 ? " file" : " files");
  if (report.records > 0) out << "; last hash " << report.last_hash;
  out << (key.empty() ? "" : "; HMAC verified") << "\n";
  return 0;
}

}  // namespace pgwarden::audit
