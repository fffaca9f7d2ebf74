// audit verify: an intact log passes, and each way of tampering with one is
// caught and named by the first bad seq: an edited field, a deleted line,
// swapped lines, a dropped rotated file, an edit re-hashed by someone
// without the HMAC key. A torn tail from a crash is reported, not failed.

#include <gtest/gtest.h>

#include <zlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "audit/chain.hpp"
#include "audit/tools/verifier.hpp"
#include "audit_test_util.hpp"

namespace pgwarden::audit {
namespace {

using namespace testing;

const std::string kKey = "0123456789abcdef0123456789abcdef";

/// A log of a checkpoint and `statements` statements (seq 2.. ), rotated at `rotate_bytes`.
std::vector<std::string> make_log(const TempDir& dir, int statements, const std::string& key = "",
                                  std::uint64_t rotate_bytes = 0) {
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.hmac_key = key;
  o.rotate_bytes = rotate_bytes;
  auto log = open_log(o);
  for (int i = 1; i <= statements; ++i) EXPECT_TRUE(submit_and_wait(*log, statement_body("SELECT " + std::to_string(i), i)));
  log->close();
  return files_in(dir.path());
}

/// Recomputes the hashes of lines[from..] as someone without the HMAC key
/// could: each line's prev_hash follows the line before; HMACs stay as they
/// were (or are removed with `strip_hmac`).
void rehash(std::vector<std::string>& lines, std::size_t from, bool strip_hmac = false) {
  RecordHasher hasher;
  std::string prev;
  for (std::size_t i = from; i < lines.size(); ++i) {
    LineParts parts;
    ASSERT_TRUE(split_line(lines[i], parts)) << lines[i];
    std::string prefix(parts.canonical_prefix);
    const std::string hmac(parts.hmac_hex);
    if (!prev.empty()) {
      const std::size_t at = prefix.rfind("\"prev_hash\":\"") + 13;
      prefix.replace(at, 64, prev);
    }
    prev = to_hex(hasher.hash(prefix));
    lines[i] = prefix + ",\"hash\":\"" + prev + "\"" + (hmac.empty() || strip_hmac ? "" : ",\"hmac\":\"" + hmac + "\"") + "}";
  }
}

std::string key_file(const TempDir& dir, const std::string& key) {
  const std::string path = dir.file("key");
  write_file(path, key + "\n");
  return path;
}

// An untouched log passes and says how many records it checked.
TEST(AuditVerify, IntactLogPasses) {
  TempDir dir;
  const auto files = make_log(dir, 5);
  std::string out;
  EXPECT_EQ(verify(files, out), 0) << out;
  EXPECT_NE(out.find("ok: 6 records (seq 1..6) in 1 file"), std::string::npos) << out;
}

// One edited field: the record's hash no longer matches; verify names its seq.
TEST(AuditVerify, EditedFieldIsNamedByItsSeq) {
  TempDir dir;
  const auto files = make_log(dir, 8);
  auto lines = read_lines(files[0]);
  const std::size_t at = lines[4].find("\"user\":\"alice\"");
  ASSERT_NE(at, std::string::npos);
  lines[4].replace(at, 14, "\"user\":\"carol\"");
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 1);
  EXPECT_NE(out.find(":5: seq 5: edited"), std::string::npos) << out;
}

// One deleted line: a gap in seq, named by the missing seq.
TEST(AuditVerify, DeletedLineIsAGapInSeq) {
  TempDir dir;
  const auto files = make_log(dir, 8);
  auto lines = read_lines(files[0]);
  lines.erase(lines.begin() + 4);  // seq 5
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 1);
  EXPECT_NE(out.find("seq 5: deleted: seq 6 where seq 5 was expected"), std::string::npos) << out;
}

// Two swapped lines: seq out of order, not a deletion.
TEST(AuditVerify, SwappedLinesAreReportedAsReordered) {
  TempDir dir;
  const auto files = make_log(dir, 8);
  auto lines = read_lines(files[0]);
  std::swap(lines[4], lines[5]);  // seq 5 and 6
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 1);
  EXPECT_NE(out.find("seq 6: reordered: seq 6 where seq 5 was expected; seq 5 comes later"), std::string::npos) << out;
}

// A rotated file missing from the sequence: the next file's checkpoint links
// to records no file given holds.
TEST(AuditVerify, DroppedRotatedFileIsAMissingFile) {
  TempDir dir;
  const auto files = make_log(dir, 12, "", 1200);
  ASSERT_GE(files.size(), 3u);
  std::string out;
  ASSERT_EQ(verify(files, out), 0) << out;
  EXPECT_EQ(verify({files[0], files[2]}, out), 1);
  EXPECT_NE(out.find("missing file"), std::string::npos) << out;
  EXPECT_NE(out.find(fs::path(files[1]).filename().string() + " (records"), std::string::npos)
      << "names the missing file: " << out;
}

// Files given in any order are read in chain order; the same files in a
// directory verify too.
TEST(AuditVerify, FilesInAnyOrderAreReadInChainOrder) {
  TempDir dir;
  auto files = make_log(dir, 12, "", 1200);
  std::reverse(files.begin(), files.end());
  std::string out;
  EXPECT_EQ(verify(files, out), 0) << out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
}

// Records deleted from the end of a rotated file are found by the next
// file's checkpoint.
TEST(AuditVerify, RecordsDeletedFromTheEndOfARotatedFileAreFound) {
  TempDir dir;
  const auto files = make_log(dir, 12, "", 1200);
  auto lines = read_lines(files[0]);
  lines.pop_back();
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 1);
  EXPECT_NE(out.find("was deleted from its end"), std::string::npos) << out;
}

// Without HMAC, an edit whose hash was recomputed still breaks the chain at
// the next record.
TEST(AuditVerify, RehashedEditBreaksTheChainAtTheNextRecord) {
  TempDir dir;
  const auto files = make_log(dir, 8);
  auto lines = read_lines(files[0]);
  std::vector<std::string> edited = {lines[4]};
  edited[0].replace(edited[0].find("SELECT 4"), 8, "SELECT 9");
  rehash(edited, 0);  // its own hash only: the records after it keep their prev_hash
  lines[4] = edited[0];
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 1);
  EXPECT_NE(out.find("seq 6: chain broken"), std::string::npos) << out;
}

// With an HMAC key, someone without it who edits a record and recomputes
// the whole SHA-256 chain is caught at the edited record; without the key
// verify cannot tell, and says the HMACs were not checked.
TEST(AuditVerify, EditRehashedWithoutTheKeyFailsTheHmac) {
  TempDir dir;
  const auto files = make_log(dir, 8, kKey);
  auto lines = read_lines(files[0]);
  lines[4].replace(lines[4].find("SELECT 4"), 8, "SELECT 9");
  rehash(lines, 4);
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 0) << out;
  EXPECT_NE(out.find("HMAC that was not checked"), std::string::npos) << out;
  EXPECT_EQ(verify(files, out, key_file(dir, kKey)), 1);
  EXPECT_NE(out.find("seq 5: hmac mismatch"), std::string::npos) << out;
}

// Stripping the HMACs and re-hashing does not help: with the key, a record
// without HMAC fails.
TEST(AuditVerify, StrippedHmacIsMissing) {
  TempDir dir;
  const auto files = make_log(dir, 4, kKey);
  auto lines = read_lines(files[0]);
  rehash(lines, 0, true);
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out, key_file(dir, kKey)), 1);
  EXPECT_NE(out.find("seq 1: hmac missing"), std::string::npos) << out;
}

// The right key passes; a wrong key fails at the first record.
TEST(AuditVerify, HmacChecksWithTheRightKeyOnly) {
  TempDir dir;
  const auto files = make_log(dir, 4, kKey);
  std::string out;
  EXPECT_EQ(verify(files, out, key_file(dir, kKey)), 0) << out;
  EXPECT_NE(out.find("HMAC verified"), std::string::npos) << out;
  EXPECT_EQ(verify(files, out, key_file(dir, "another key, long enough")), 1);
  EXPECT_NE(out.find("seq 1: hmac mismatch"), std::string::npos) << out;
  EXPECT_EQ(verify(files, out, key_file(dir, "short")), 2) << "a key too short to be a key";
}

// A torn last line (a crash during write) is reported as torn, exit 0:
// whether it lacks its newline or is not valid JSON.
TEST(AuditVerify, TornLastLineIsReportedNotFailed) {
  TempDir dir;
  const auto files = make_log(dir, 4);
  const std::string intact = read_file(files[0]);
  std::string out;
  write_file(files[0], intact + "{\"seq\":6,\"schema_version\":1,\"ti");
  EXPECT_EQ(verify(files, out), 0) << out;
  EXPECT_NE(out.find("torn last line"), std::string::npos) << out;
  write_file(files[0], intact + "{\"seq\":6,\"sch\n");
  EXPECT_EQ(verify(files, out), 0) << out;
  EXPECT_NE(out.find("torn last line"), std::string::npos) << out;
}

// A line that is not a record in the middle of a file is damage, not a tear.
TEST(AuditVerify, GarbageBeforeTheLastLineFails) {
  TempDir dir;
  const auto files = make_log(dir, 4);
  auto lines = read_lines(files[0]);
  lines.insert(lines.begin() + 2, "not a record");
  write_lines(files[0], lines);
  std::string out;
  EXPECT_EQ(verify(files, out), 1);
  EXPECT_NE(out.find(":3: malformed"), std::string::npos) << out;
}

// Compressed rotated files are read transparently.
TEST(AuditVerify, ReadsGzipCompressedFiles) {
  TempDir dir;
  auto files = make_log(dir, 12, "", 1200);
  const std::string text = read_file(files[0]);
  gzFile gz = gzopen((files[0] + ".gz").c_str(), "wb");
  ASSERT_TRUE(gz);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(gz);
  fs::remove(files[0]);
  files[0] += ".gz";
  std::string out;
  EXPECT_EQ(verify(files, out), 0) << out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
}

// Arguments that name no file are a usage error, not a verdict.
TEST(AuditVerify, MissingArgumentFileIsAUsageError) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(verify({dir.file("nope.jsonl")}, out), 2);
  EXPECT_NE(out.find("no such file"), std::string::npos) << out;
}

}  // namespace
}  // namespace pgwarden::audit
