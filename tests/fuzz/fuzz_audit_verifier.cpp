// libFuzzer target: `pgwarden audit verify` (verify_files, the Verifier and
// the LineReader, plain and gzip) over audit files an attacker edited.
//
// Input: Byte1 selector, then the bytes. Selector bit 2 clear: the bytes are
// edits to a genuine chain of five records the project's own writer made
// (RecordHasher::append_line): a rotated file `pgwarden.1.jsonl` (checkpoint
// start, two statements) and `pgwarden.jsonl` (checkpoint rotate_size
// linking to it, a statement). Each edit is Byte1 op (bit 0-1: XOR, overwrite,
// insert, erase; bit 2: the second file), Int16 offset, Byte1 n, Byte[n]
// data (erase uses n only). Bit 0: the rotated file is gzip-compressed and
// the edits apply to its compressed bytes; bit 1: the chain carries HMACs and
// verify checks them. Selector bit 2 set: the bytes are one whole file
// (bit 1: verified with the key; bit 3: read from disk by the LineReader,
// otherwise split in memory as it splits, followed by an empty file).
//
// Invariants: nothing crashes. The unedited chain verifies intact. The
// canonical bytes a record's hash covers are its line byte for byte up to
// `,"hash":`, and hash and HMAC are compared as 64 lowercase hex digits, so
// no change inside a line verify counts as a record goes unnoticed. What
// verify may accept from edited files (by design, see audit/verifier.hpp)
// is the loss of records at the ends of the chain, which no verifier can
// see from the files alone, a torn last line in a file, and NUL bytes
// after the last line (unwritten space). So when verify reports an edited
// chain intact: the records it counted are original records first_seq ..
// last_seq, byte for byte and in order among the lines read; any other line
// read is the last of its file, and then a torn line is noted; a chain that
// no longer starts at seq 1 is noted; last_hash is the original record's.
// The line reader returns a plain file's bytes exactly, minus a tail of NULs.

#include <zlib.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.hpp"
#include "audit/line_reader.hpp"
#include "audit/record.hpp"
#include "audit/tools/verifier.hpp"
#include "fuzz_common.hpp"

namespace au = pgwarden::audit;
namespace fz = pgwarden::protocol::fuzz;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view hmac_key = "0123456789abcdef0123456789abcdef";
constexpr std::string_view rotated_name = "pgwarden.1.jsonl";
constexpr std::string_view active_name = "pgwarden.jsonl";

/// The genuine chain: its lines (without newlines) and where file two begins.
struct Chain {
  std::vector<std::string> lines;
  std::vector<au::Digest> hashes;
  std::size_t second_file_at = 3;
  std::string file(std::size_t which) const {
    std::string text;
    for (std::size_t i = which ? second_file_at : 0; i < (which ? lines.size() : second_file_at); ++i)
      text += lines[i] + '\n';
    return text;
  }
};

std::string statement_body(std::string_view text, std::uint64_t id, au::Clock::time_point time) {
  au::SessionFields s;
  s.session_id = "s-1";
  s.user = "alice";
  s.database = "app";
  s.application_name = "psql";
  s.client_addr = "10.10.0.5";
  s.client_port = 50123;
  static const std::vector<std::string> tags = {"SELECT"};
  static const std::vector<std::string_view> classes = {"READ"};
  au::Outcome outcome;
  outcome.rows = 1;
  outcome.duration_us = 120;
  au::StatementRecord r;
  r.time = time;
  r.statement_id = id;
  r.text = text;
  r.command_tags = tags;
  r.classes = classes;
  r.outcome = &outcome;
  au::RecordBuffer body;
  au::encode(s, r, au::EncodeOptions{}, body);
  return std::string(body.view());
}

Chain make_chain(std::string_view key) {
  au::RecordHasher hasher(key);
  au::ChainHead head;
  Chain chain;
  const au::Clock::time_point t{std::chrono::seconds(1'780'000'000)};
  auto append = [&](std::string_view body) {
    std::string line;
    hasher.append_line(body, head, line);
    line.pop_back();  // the newline
    chain.lines.push_back(std::move(line));
    chain.hashes.push_back(head.hash);
  };
  auto checkpoint = [&](au::CheckpointReason reason, std::string_view previous_file) {
    const std::string previous_hash = au::to_hex(head.hash);
    au::CheckpointRecord cp;
    cp.time = t;
    cp.reason = reason;
    cp.previous_file = previous_file;
    cp.previous_seq = head.seq;
    cp.previous_hash = previous_hash;
    au::RecordBuffer body;
    au::encode(cp, body);
    append(body.view());
  };
  checkpoint(au::CheckpointReason::Start, "");
  append(statement_body("SELECT 1", 1, t));
  append(statement_body("SELECT 'two'", 2, t));
  checkpoint(au::CheckpointReason::RotateSize, rotated_name);
  append(statement_body("DELETE FROM t WHERE id = 3", 3, t));
  return chain;
}

const Chain& chain(bool keyed) {
  static const Chain plain = make_chain({});
  static const Chain with_hmac = make_chain(hmac_key);
  return keyed ? with_hmac : plain;
}

std::string gzip(std::string_view text) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, text.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

/// A directory of this process's own, on tmpfs when there is one.
/// Never destroyed, so the exit handler that removes it can still name it.
const fs::path& work_dir() {
  static const fs::path* dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    auto* d = new fs::path(base / ("pgwarden-fuzz-audit-" + std::to_string(::getpid())));
    fs::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(work_dir(), ec);
    });
    return d;
  }();
  return *dir;
}

std::string write(std::string_view name, std::string_view bytes) {
  const fs::path p = work_dir() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p.string();
}

/// Applies the edits in `script` to the two files.
void apply_edits(std::string_view script, std::string (&files)[2]) {
  while (script.size() >= 4) {
    const auto op = static_cast<unsigned char>(script[0]);
    std::string& f = files[(op >> 2) & 1];
    const std::size_t offset =
        ((static_cast<unsigned char>(script[1]) << 8) | static_cast<unsigned char>(script[2])) % (f.size() + 1);
    const std::size_t n = static_cast<unsigned char>(script[3]);
    script.remove_prefix(4);
    const std::string_view data = script.substr(0, (op & 3) == 3 ? 0 : n);
    script.remove_prefix(data.size());
    switch (op & 3) {
      case 0:
        for (std::size_t i = 0; i < data.size() && offset + i < f.size(); ++i) f[offset + i] ^= data[i];
        break;
      case 1: f.replace(offset, data.size(), data); break;
      case 2: f.insert(offset, data); break;
      default: f.erase(offset, n); break;
    }
  }
}

struct FileLines {
  std::vector<std::string> terminated;
  std::string unterminated;
  bool has_unterminated = false;
};

FileLines read_lines(const std::string& path) {
  FileLines out;
  au::LineReader reader;
  std::string error;
  if (!reader.open(path, error)) return out;
  std::string_view line;
  bool terminated = false;
  while (reader.next(line, terminated)) {
    if (terminated) {
      out.terminated.emplace_back(line);
    } else {
      out.unterminated = line;
      out.has_unterminated = true;
    }
  }
  return out;
}

/// A plain file as the reader must return it: every line, and a last one
/// without newline unless it is all NULs (trailing NULs removed).
void check_plain_reading(const std::string& bytes, const FileLines& read) {
  if (bytes.starts_with("\x1f\x8b")) return;  // gzip magic: zlib decompresses it
  std::string joined;
  for (const auto& l : read.terminated) joined += l + '\n';
  std::string tail = bytes.substr(joined.size() <= bytes.size() ? joined.size() : bytes.size());
  fz::check(bytes.starts_with(joined), "the line reader changed the bytes of a line");
  const std::size_t end = tail.find_last_not_of('\0');
  tail.resize(end == std::string::npos ? 0 : end + 1);
  fz::check(tail.find('\n') == std::string::npos, "the line reader stopped before the last newline");
  fz::check(read.has_unterminated == !tail.empty() && read.unterminated == tail,
            "the line reader lost or changed the last line");
}

/// `bytes` split as LineReader splits a plain file.
FileLines split_lines(std::string_view bytes) {
  FileLines out;
  for (std::size_t nl = bytes.find('\n'); nl != std::string_view::npos; nl = bytes.find('\n')) {
    out.terminated.emplace_back(bytes.substr(0, nl));
    bytes.remove_prefix(nl + 1);
  }
  const std::size_t end = bytes.find_last_not_of('\0');
  if (end != std::string_view::npos) {
    out.unterminated = bytes.substr(0, end + 1);
    out.has_unterminated = true;
  }
  return out;
}

/// What verify_files does, over lines already read.
au::VerifyReport verify_lines(const FileLines (&files)[2], std::string_view key) {
  au::Verifier verifier(key);
  const std::string names[2] = {std::string(rotated_name), std::string(active_name)};
  for (int i = 0; i < 2; ++i) {
    verifier.begin_file(names[i]);
    std::uint64_t n = 0;
    for (const auto& line : files[i].terminated) verifier.line(line, true, ++n);
    if (files[i].has_unterminated) verifier.line(files[i].unterminated, false, ++n);
    verifier.end_file();
  }
  return verifier.finish();
}

bool has_note(const au::VerifyReport& report, std::string_view text) {
  for (const auto& note : report.notes)
    if (note.find(text) != std::string::npos) return true;
  return false;
}

/// The records verify counted are original records, unchanged and in order;
/// anything else it read is a file's noted torn last line.
void check_accepted(const Chain& c, const au::VerifyReport& report, const FileLines (&read)[2]) {
  if (report.records == 0) return;
  fz::check(report.first_seq >= 1 && report.last_seq <= c.lines.size() &&
                report.last_seq - report.first_seq + 1 == report.records,
            "verify counted records the chain does not have");
  fz::check(report.last_hash == au::to_hex(c.hashes[report.last_seq - 1]), "the last hash is not the record's");
  if (report.first_seq > 1) fz::check(has_note(report, "verified from there"), "leading records gone without a note");
  std::uint64_t next = report.first_seq;  // the next original record expected among the lines
  for (const FileLines& file : read) {
    for (std::size_t i = 0; i < file.terminated.size(); ++i) {
      const std::string& line = file.terminated[i];
      if (next <= report.last_seq && line == c.lines[next - 1]) {
        ++next;
        continue;
      }
      fz::check(i + 1 == file.terminated.size() && !file.has_unterminated,
                "verify accepted a line that is no record and not a file's last");
      fz::check(has_note(report, "torn last line"), "a file's last line is no record and not noted as torn");
    }
  }
  fz::check(next == report.last_seq + 1, "a record verify counted is not among the lines read");
}

void check_report(const Chain& c, const au::VerifyReport& report, const FileLines (&read)[2], bool edited) {
  if (!edited) {
    fz::check(report.intact() && report.records == c.lines.size() && report.notes.empty(),
              "the genuine chain does not verify");
    return;
  }
  if (report.intact()) check_accepted(c, report, read);
}

void fuzz_edits(std::uint8_t selector, std::string_view script) {
  const bool gz = selector & 1, keyed = selector & 2;
  const Chain& c = chain(keyed);
  std::string files[2] = {c.file(0), c.file(1)};
  if (gz) files[0] = gzip(files[0]);
  const std::string original[2] = {files[0], files[1]};
  apply_edits(script, files);
  const std::string_view key = keyed ? hmac_key : std::string_view{};
  const bool edited = files[0] != original[0] || files[1] != original[1];
  if (!gz) {
    // Plain files are verified in memory, split as the line reader splits
    // them (which the whole-file mode checks): a LineReader maps large
    // buffers, too slow to do for every input.
    const FileLines read[2] = {split_lines(files[0]), split_lines(files[1])};
    const au::VerifyReport report = verify_lines(read, key);
    check_report(c, report, read, edited);
    return;
  }
  const std::vector<std::string> paths = {write(std::string(rotated_name) + ".gz", files[0]),
                                          write(active_name, files[1])};
  const au::VerifyReport report = au::verify_files(paths, key);
  if (!edited || !report.intact()) return check_report(c, report, {}, edited);
  const FileLines read[2] = {read_lines(paths[0]), read_lines(paths[1])};
  check_plain_reading(files[1], read[1]);
  check_report(c, report, read, edited);
}

void fuzz_file(std::uint8_t selector, std::string_view bytes) {
  const std::string_view key = (selector & 2) ? hmac_key : std::string_view{};
  au::VerifyReport report;
  if (selector & 8) {
    const std::string path = write(active_name, bytes);
    report = au::verify_files({path}, key);
    check_plain_reading(std::string(bytes), read_lines(path));
    fz::check(split_lines(bytes).terminated.size() == read_lines(path).terminated.size() ||
                  bytes.starts_with("\x1f\x8b"),
              "the fuzzer splits lines unlike the line reader");
  } else {
    const FileLines read[2] = {split_lines(bytes), {}};
    report = verify_lines(read, key);
  }
  fz::check(report.files == 2 - ((selector >> 3) & 1), "verify did not read the file");
  if (report.intact() && report.records > 0)
    fz::check(report.last_seq - report.first_seq + 1 == report.records, "an intact chain with a gap");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 4) {
    fuzz_file(data[0], bytes);
  } else {
    fuzz_edits(data[0], bytes);
  }
  return 0;
}
