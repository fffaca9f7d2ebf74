// The audit log writer: records reach the file chained, a restart continues
// the chain in a new file, rotation and retention keep files linked and
// bounded, synced durability completes waiting sessions, a full queue is
// backpressure, and a failing file either blocks (nothing lost) or
// continues (the loss declared in the file).

#include <gtest/gtest.h>

#include <sys/mount.h>

#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <thread>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/log_files.hpp"
#include "audit_test_util.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;
using namespace testing;
using namespace std::chrono_literals;

json::object parse_line(const std::string& line) { return json::parse(line).as_object(); }

std::vector<json::object> records_in(const std::vector<std::string>& files) {
  std::vector<json::object> out;
  for (const auto& f : files)
    for (const auto& line : read_lines(f)) out.push_back(parse_line(line));
  return out;
}

/// The records of lines already ended by a newline: what a reader sees of
/// files the log is still writing, without the line being written.
std::vector<json::object> whole_records_in(const std::vector<std::string>& files) {
  std::vector<json::object> out;
  for (const auto& f : files) {
    const std::string text = read_file(f);
    for (std::size_t begin = 0, end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
      out.push_back(parse_line(text.substr(begin, end - begin)));
    }
  }
  return out;
}

// A first run begins the chain with a start checkpoint; records follow in
// order, each linked to the one before, and verify accepts the file.
TEST(AuditLog, WritesChainedRecordsAfterAStartCheckpoint) {
  TempDir dir;
  auto log = open_log(test_options(dir.file("pgwarden.jsonl")));
  ASSERT_TRUE(log);
  for (int i = 1; i <= 3; ++i) ASSERT_EQ(log->submit(statement_body("SELECT " + std::to_string(i), i)), Admission::Accepted);
  ASSERT_TRUE(log->flush());
  log->close();

  const auto records = records_in({dir.file("pgwarden.jsonl")});
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].at("event").as_string(), "checkpoint");
  EXPECT_EQ(records[0].at("reason").as_string(), "start");
  EXPECT_EQ(records[0].at("prev_hash").as_string(), std::string(64, '0'));
  for (std::size_t i = 1; i < records.size(); ++i) {
    EXPECT_EQ(records[i].at("seq").as_int64(), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(records[i].at("prev_hash"), records[i - 1].at("hash"));
  }
  EXPECT_EQ(records[3].at("text").as_string(), "SELECT 3");
  EXPECT_EQ(log->stats().records_written.load(), 4u);
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
  EXPECT_NE(out.find("ok: 4 records (seq 1..4) in 1 file"), std::string::npos) << out;
}

// A restart moves the previous file to a rotated name and continues its
// chain: the new file's checkpoint names it, its last seq and last hash.
TEST(AuditLog, RestartContinuesTheChainInANewFile) {
  TempDir dir;
  const Options o = test_options(dir.file("pgwarden.jsonl"));
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1")));
  }
  const std::string last_hash = parse_line(read_lines(dir.file("pgwarden.jsonl")).back()).at("hash").as_string().c_str();
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 2")));
  }
  const auto files = files_in(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(LogFiles(o.file).is_rotated(fs::path(files[0]).filename().string())) << files[0];
  const auto restarted = records_in({files[1]});
  EXPECT_EQ(restarted[0].at("reason").as_string(), "restart");
  EXPECT_EQ(restarted[0].at("previous_file").as_string(), fs::path(files[0]).filename().string());
  EXPECT_EQ(restarted[0].at("previous_seq").as_int64(), 2);
  EXPECT_EQ(restarted[0].at("previous_hash").as_string(), last_hash);
  EXPECT_EQ(restarted[0].at("seq").as_int64(), 3);
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
}

// After a crash mid-write the torn last line stays where it is; the next run
// links to the last complete record, and verify reports the tear, not tampering.
TEST(AuditLog, RestartAfterATornWriteLinksToTheLastCompleteRecord) {
  TempDir dir;
  const Options o = test_options(dir.file("pgwarden.jsonl"));
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1")));
  }
  std::string text = read_file(o.file);
  const std::string torn = statement_body("SELECT 2").substr(0, 40);
  write_file(o.file, text + "{\"seq\":3," + torn);  // what a crash during write(2) leaves
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 3")));
  }
  const auto files = files_in(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(files[0]).substr(text.size()), "{\"seq\":3," + torn) << "the torn bytes are kept";
  const auto restarted = records_in({files[1]});
  EXPECT_EQ(restarted[0].at("previous_seq").as_int64(), 2);
  EXPECT_EQ(restarted[0].at("seq").as_int64(), 3);
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
  EXPECT_NE(out.find("torn last line"), std::string::npos) << out;
}

// Rotation by size begins linked files; retention keeps only the newest
// rotated ones, and the files kept still verify from their first checkpoint.
TEST(AuditLog, RotatesBySizeAndKeepsTheConfiguredNumberOfFiles) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.rotate_bytes = 1500;
  o.retention = 2;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT " + std::to_string(i), i)));
  log->close();

  const auto files = files_in(dir.path());
  ASSERT_EQ(files.size(), 3u) << "two rotated files and the active one";
  for (const auto& f : files) {
    const auto records = records_in({f});
    EXPECT_EQ(records.front().at("event").as_string(), "checkpoint") << f;
    if (f != o.file) {
      EXPECT_LT(fs::file_size(f), 1500u + 600u) << "rotated at the first record past the size";
    }
  }
  EXPECT_EQ(records_in({files[2]}).front().at("reason").as_string(), "rotate_size");
  EXPECT_GE(log->stats().rotations.load(), 4u);
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
  EXPECT_NE(out.find("(not given); verified from there"), std::string::npos) << "older files were removed: " << out;
}

// Rotation by time: once the interval has passed, the next record begins a
// new file (an idle log is not rotated into empty files).
TEST(AuditLog, RotatesByTimeWhenTheIntervalHasPassed) {
  TempDir dir;
  auto now = std::make_shared<std::atomic<std::int64_t>>(1'700'000'000'000'000);
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.rotate_interval = std::chrono::minutes(60);
  o.clock = [now] { return Clock::time_point(std::chrono::microseconds(now->load())); };
  auto log = open_log(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1")));
  now->fetch_add(std::chrono::microseconds(59min).count());
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 2")));
  EXPECT_EQ(files_in(dir.path()).size(), 1u) << "not yet";
  now->fetch_add(std::chrono::microseconds(2min).count());
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 3")));
  log->close();
  const auto files = files_in(dir.path());
  ASSERT_EQ(files.size(), 2u);
  const auto active = records_in({files[1]});
  EXPECT_EQ(active[0].at("reason").as_string(), "rotate_time");
  EXPECT_EQ(active[1].at("text").as_string(), "SELECT 3");
  EXPECT_NE(files[0].find("pgwarden-20231114T"), std::string::npos) << "named by the time it was closed: " << files[0];
}

// Synced durability: a session waiting for its record is answered once the
// record is on disk, and concurrent sessions share fdatasync calls.
TEST(AuditLog, SyncedDurabilityCompletesEveryWaitingSession) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.durability = Durability::Synced;
  o.flush_interval = 1000ms;  // only a waiting session wakes the writer
  auto log = open_log(o);
  ASSERT_TRUE(log);
  constexpr int threads = 4, per_thread = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> sessions;
  for (int t = 0; t < threads; ++t)
    sessions.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) ok += submit_and_wait(*log, statement_body("SELECT 1", t * 1000 + i));
    });
  for (auto& s : sessions) s.join();
  EXPECT_EQ(ok.load(), threads * per_thread);
  EXPECT_EQ(records_in({o.file}).size(), 1u + threads * per_thread) << "every record is in the file when answered";
  EXPECT_GE(log->stats().sync_count.load(), 1u);
  EXPECT_LE(log->stats().sync_count.load(), 1u + threads * per_thread);
}

// Synced durability preallocates: the active file runs ahead of its records
// in zeros, which verify takes for unwritten space while the file is
// active, and closing cuts them off, leaving exactly the records.
TEST(AuditLog, SyncedFileIsPreallocatedAndClosingCutsTheZeros) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.durability = Durability::Synced;
  o.preallocate = 1u << 20;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1", i)));
  const std::string running = read_file(o.file);
  ASSERT_GE(running.size(), 1u << 20);
  const std::size_t written = running.find_last_not_of('\0') + 1;
  EXPECT_EQ(running[written - 1], '\n');
  EXPECT_EQ(running.find('\0'), written) << "records first, then only zeros";
  EXPECT_EQ(log->stats().bytes_written.load(), written);
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
  EXPECT_NE(out.find("ok: 21 records"), std::string::npos) << out;
  EXPECT_EQ(out.find("torn"), std::string::npos) << "zeros are not a torn line: " << out;

  log->close();
  EXPECT_EQ(read_file(o.file), running.substr(0, written));
}

// Rotation cuts the zeros off the file it closes, and a file stays within
// rotate_bytes of preallocation.
TEST(AuditLog, RotationCutsThePreallocatedZeros) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.durability = Durability::Synced;
  o.preallocate = 8u << 20;
  o.rotate_bytes = 16u << 10;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  for (int i = 1; i <= 200; ++i) ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1", i)));
  const auto files = files_in(dir.path());
  ASSERT_GE(files.size(), 3u);
  for (std::size_t i = 0; i + 1 < files.size(); ++i) {
    const std::string text = read_file(files[i]);
    EXPECT_EQ(text.find('\0'), std::string::npos) << files[i];
    EXPECT_EQ(text.back(), '\n') << files[i];
  }
  EXPECT_LE(fs::file_size(files.back()), (16u << 10) + (4u << 10)) << "preallocation stops at rotate_bytes";
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
}

// What a crash leaves of a preallocated file (records, a torn line, zeros)
// is read like any torn file: the restart cuts the zeros off, keeps the torn
// bytes for verify to report, and links to the last complete record.
TEST(AuditLog, RestartAfterACrashCutsTheZerosAndKeepsTheTornLine) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.durability = Durability::Synced;
  o.preallocate = 1u << 20;
  std::string crashed;
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1")));
    crashed = read_file(o.file);  // as a kill -9 leaves it: the zeros are still there
  }
  const std::size_t written = crashed.find_last_not_of('\0') + 1;
  const std::string torn = "{\"seq\":3," + statement_body("SELECT 2").substr(0, 40);
  write_file(o.file, crashed.substr(0, written) + torn + std::string(64u << 10, '\0'));
  std::string out;
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
  EXPECT_NE(out.find("torn last line (" + std::to_string(torn.size()) + " bytes"), std::string::npos) << out;
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 3")));
  }
  const auto files = files_in(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(files[0]), crashed.substr(0, written) + torn) << "zeros cut, torn bytes kept";
  const auto restarted = records_in({files[1]});
  EXPECT_EQ(restarted[0].at("reason").as_string(), "restart");
  EXPECT_EQ(restarted[0].at("previous_seq").as_int64(), 2);
  out.clear();
  EXPECT_EQ(verify({dir.path().string()}, out), 0) << out;
  EXPECT_NE(out.find("torn last line"), std::string::npos) << out;
}

// A filesystem that cannot spare the zeros gets none: records are appended
// as without preallocation.
TEST(AuditLog, NoPreallocationOnANearlyFullFilesystem) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.durability = Durability::Synced;
  o.preallocate = std::uint64_t{1} << 60;  // more than any disk
  std::vector<std::string> messages;
  o.log = [&](LogLevel, std::string_view m) { messages.emplace_back(m); };
  auto log = open_log(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 1")));
  const std::string text = read_file(o.file);
  EXPECT_EQ(text.find('\0'), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  log->close();
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].find("not preallocating"), std::string::npos) << messages[0];
}

// A full queue answers Full (never drops); when_space calls back once the
// writer has made room, and the record then goes in.
TEST(AuditLog, FullQueueIsBackpressureNotLoss) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.queue_records = 4;
  o.flush_interval = 60s;  // the writer comes only when the full queue calls it
  auto log = open_log(o);
  ASSERT_TRUE(log);
  int accepted = 0;
  while (log->submit(statement_body("SELECT 1", accepted + 1)) == Admission::Accepted) ++accepted;
  EXPECT_EQ(accepted, 4);
  EXPECT_GE(log->stats().submits_full.load(), 1u);
  std::promise<void> room;
  log->when_space([&room] { room.set_value(); });
  room.get_future().wait();
  EXPECT_EQ(log->submit(statement_body("SELECT 1", 5)), Admission::Accepted);
  ASSERT_TRUE(log->flush());
  EXPECT_EQ(records_in({o.file}).size(), 6u) << "checkpoint and all five records";
  EXPECT_EQ(log->stats().records_dropped.load(), 0u);
}

// on_failure: block. The directory disappears: the session waiting for its
// record hears "not durable", records that would let a statement run are
// refused while records of what already happened are kept, and once the
// directory is back the log recovers by itself and writes every record it
// had accepted; the new file verifies.
TEST(AuditLog, BlockModeRefusesWhileFailingAndLosesNothing) {
  TempDir dir;
  const fs::path logdir = dir.path() / "audit";
  Options o = test_options((logdir / "pgwarden.jsonl").string());
  auto log = open_log(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 'before'")));
  fs::remove_all(logdir);

  EXPECT_FALSE(submit_and_wait(*log, statement_body("SELECT 'accepted during the failure'")));
  EXPECT_FALSE(log->writable());
  EXPECT_EQ(log->submit(statement_body("SELECT 'refused'"), nullptr, Purpose::Gate), Admission::Refused);
  EXPECT_EQ(log->submit(statement_body("SELECT 'ran before the failure was known'")), Admission::Accepted);
  EXPECT_GE(log->stats().write_errors.load(), 1u);

  fs::create_directories(logdir);
  ASSERT_TRUE(log->flush()) << "the accepted record is written after recovery";
  EXPECT_TRUE(log->writable());
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 'after'")));
  log->close();

  const auto records = records_in(files_in(logdir));
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].at("reason").as_string(), "recover");
  EXPECT_EQ(records[0].at("records_lost").as_int64(), 0);
  EXPECT_EQ(records[1].at("text").as_string(), "SELECT 'accepted during the failure'");
  EXPECT_EQ(records[2].at("text").as_string(), "SELECT 'ran before the failure was known'");
  EXPECT_EQ(records[3].at("text").as_string(), "SELECT 'after'");
  EXPECT_EQ(log->stats().records_dropped.load(), 0u);
  std::string out;
  EXPECT_EQ(verify({logdir.string()}, out), 0) << out;
}

// on_failure: continue. Records that cannot be written are dropped and
// counted, traffic is never refused, and the recovery checkpoint declares
// the loss so verify shows a gap rather than tampering.
TEST(AuditLog, ContinueModeDropsCountsAndDeclaresTheGap) {
  TempDir dir;
  const fs::path logdir = dir.path() / "audit";
  Options o = test_options((logdir / "pgwarden.jsonl").string());
  o.on_failure = OnFailure::Continue;
  std::atomic<int> errors{0};
  o.log = [&errors](LogLevel level, std::string_view) { errors += level == LogLevel::Error; };
  auto log = open_log(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(submit_and_wait(*log, statement_body("SELECT 'before'")));
  fs::remove_all(logdir);
  EXPECT_FALSE(submit_and_wait(*log, statement_body("SELECT 'lost 1'")));
  EXPECT_FALSE(submit_and_wait(*log, statement_body("SELECT 'lost 2'")));
  EXPECT_EQ(log->stats().records_dropped.load(), 2u);
  EXPECT_EQ(errors.load(), 1) << "logged once per failure episode";

  fs::create_directories(logdir);
  while (!submit_and_wait(*log, statement_body("SELECT 'after'"))) {
  }  // accepted each time; written once the retry found the directory
  log->close();

  const auto records = records_in(files_in(logdir));
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records[0].at("reason").as_string(), "recover");
  const auto lost = records[0].at("records_lost").as_int64();
  EXPECT_EQ(static_cast<std::uint64_t>(lost), log->stats().records_dropped.load());
  EXPECT_EQ(records.back().at("text").as_string(), "SELECT 'after'");
  std::string out;
  EXPECT_EQ(verify({logdir.string()}, out), 0) << out;
  EXPECT_NE(out.find("records were lost while the file could not be written"), std::string::npos) << out;
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted at the end.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(const fs::path& where, const char* size) : path_(where) {
    fs::create_directories(path_);
    const std::string options = std::string("size=") + size;
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  fs::path path_;
  bool mounted_ = false;
};

// Disk full (ENOSPC on a small tmpfs), block mode: writes fail, statements
// are refused, and freeing space lets the log resume with no restart and
// every accepted record in the file.
TEST(AuditLog, DiskFullBlocksUntilSpaceIsFreed) {
  TempDir dir;
  SmallFilesystem disk(dir.path() / "disk", "64k");
  if (!disk.mounted()) GTEST_SKIP() << "mounting a tmpfs needs root";
  const fs::path filler = dir.path() / "disk" / "filler";
  Options o = test_options((dir.path() / "disk" / "pgwarden.jsonl").string());
  auto log = open_log(o);
  ASSERT_TRUE(log);
  write_file(filler, std::string(40 << 10, 'x'));
  const std::string padding(1000, 'p');
  int written = 0;
  while (submit_and_wait(*log, statement_body("SELECT '" + padding + "'", written + 1))) ++written;
  EXPECT_GT(written, 0);
  EXPECT_FALSE(log->writable());
  EXPECT_EQ(log->submit(statement_body("SELECT 'refused'"), nullptr, Purpose::Gate), Admission::Refused);

  fs::remove(filler);
  ASSERT_TRUE(log->flush());
  EXPECT_TRUE(log->writable());
  log->close();
  int statements = 0;
  for (const auto& r : records_in(files_in(dir.path() / "disk"))) statements += r.at("event").as_string() == "statement";
  EXPECT_EQ(statements, written + 1) << "the record accepted when the disk filled up was kept";
  std::string out;
  EXPECT_EQ(verify({(dir.path() / "disk").string()}, out), 0) << out;
}

/// Fills the filesystem holding `filler` until a write fails; returns its size.
std::uintmax_t fill(const fs::path& filler) {
  std::ofstream out(filler, std::ios::binary | std::ios::trunc);
  const std::string page(4096, 'f');
  while (out.write(page.data(), static_cast<std::streamsize>(page.size())) && out.flush()) {
  }
  out.close();
  return fs::file_size(filler);
}

/// A denied statement's body as a session submits it (outcome included).
std::string denied_body(std::string_view session_id, std::uint64_t id) {
  SessionFields s = alice_session();
  s.session_id = session_id;
  Outcome outcome;
  outcome.sqlstate = "58030";
  outcome.message = "pgwarden cannot write its audit log, so the statement was not run";
  StatementRecord r;
  r.statement_id = id;
  r.text = "SELECT 1";
  r.decision = Decision::Deny;
  r.reason = "audit_unavailable";
  r.outcome = &outcome;
  RecordBuffer body;
  encode(s, r, EncodeOptions{}, body);
  return std::string(body.view());
}

std::vector<json::object> events_in(const std::vector<json::object>& records, std::string_view event) {
  std::vector<json::object> out;
  for (const auto& r : records)
    if (r.at("event").as_string() == event) out.push_back(r);
  return out;
}

/// What the disk-full tests start from: an audit log on a 256 KiB tmpfs
/// that a filler file has filled to the last byte.
struct FullDisk {
  TempDir dir;
  SmallFilesystem disk{dir.path() / "disk", "256k"};
  fs::path audit_dir = dir.path() / "disk" / "audit";
  fs::path filler = dir.path() / "disk" / "filler";
  std::unique_ptr<AuditLog> log;
  std::uintmax_t filled = 0;

  /// Opens the log, then fills the disk; false if the log did not open.
  bool open() {
    fs::create_directories(audit_dir);
    log = open_log(test_options((audit_dir / "pgwarden.jsonl").string()));
    if (!log) return false;
    filled = fill(filler);
    return true;
  }
};

// Disk full, block mode, a backlog of large records: freeing a quarter of
// its size lets the log write the records that fit (progress, not an
// all-or-nothing retry), it stays refusing while the rest waits, and each
// later retry goes on in the same recovery file instead of beginning new
// ones. Once all is written the log is writable again, nothing is lost and
// the chain verifies.
TEST(AuditLog, DiskFullBacklogIsWrittenInPiecesThatFit) {
  FullDisk full;
  if (!full.disk.mounted()) GTEST_SKIP() << "mounting a tmpfs needs root";
  ASSERT_TRUE(full.open());
  const fs::path &audit_dir = full.audit_dir, &filler = full.filler;
  AuditLog* log = full.log.get();
  const std::uintmax_t filled = full.filled;
  const std::string padding(2000, 'p');
  EXPECT_FALSE(submit_and_wait(*log, statement_body("SELECT 'first " + std::string(8000, 'p') + "'", 1)));
  ASSERT_FALSE(log->writable());
  constexpr int backlog = 64;  // about 140 KiB
  for (int i = 2; i <= backlog; ++i) ASSERT_EQ(log->submit(statement_body("SELECT '" + padding + "'", i)), Admission::Accepted);

  fs::resize_file(filler, filled - 36 * 1024);  // a quarter of the backlog
  auto statements_written = [&] { return events_in(whole_records_in(files_in(audit_dir)), "statement").size(); };
  for (int i = 0; i < 200 && statements_written() == 0; ++i) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(100ms);  // 20 more retries
  const std::size_t partial = statements_written();
  EXPECT_GT(partial, 5u);
  EXPECT_LT(partial, static_cast<std::size_t>(backlog));
  EXPECT_FALSE(log->writable());
  EXPECT_EQ(files_in(audit_dir).size(), 2u) << "the failed file moved aside and one recovery file";

  fs::remove(filler);
  ASSERT_TRUE(log->flush());
  EXPECT_TRUE(log->writable());
  log->close();
  EXPECT_EQ(files_in(audit_dir).size(), 2u);
  EXPECT_EQ(statements_written(), static_cast<std::size_t>(backlog));
  EXPECT_EQ(events_in(records_in(files_in(audit_dir)), "checkpoint").size(), 2u);
  std::string out;
  EXPECT_EQ(verify({audit_dir.string()}, out), 0) << out;
}

// Disk full, block mode: space for a recover checkpoint but not for the
// first waiting record. Retrying must not move the file aside and begin a
// new file holding only a checkpoint (once per retry, eating the space
// freed); the directory stays as it was until the record fits.
TEST(AuditLog, NoCheckpointAloneIsWrittenWhileTheBacklogDoesNotFit) {
  FullDisk full;
  if (!full.disk.mounted()) GTEST_SKIP() << "mounting a tmpfs needs root";
  ASSERT_TRUE(full.open());
  const fs::path &audit_dir = full.audit_dir, &filler = full.filler;
  AuditLog* log = full.log.get();
  const std::uintmax_t filled = full.filled;
  EXPECT_FALSE(submit_and_wait(*log, statement_body("SELECT '" + std::string(20000, 'p') + "'")));
  const auto before = files_in(audit_dir);
  fs::resize_file(filler, filled - 8192);  // a checkpoint fits, the 20 KB record does not
  std::this_thread::sleep_for(200ms);       // 40 retries
  EXPECT_EQ(files_in(audit_dir), before);
  EXPECT_FALSE(log->writable());

  fs::remove(filler);
  ASSERT_TRUE(log->flush());
  log->close();
  EXPECT_EQ(files_in(audit_dir).size(), 2u);
  std::string out;
  EXPECT_EQ(verify({audit_dir.string()}, out), 0) << out;
}

// Block mode, file failing: records of denied statements are counted per
// session, rule and reason instead of queued one by one, so thousands of
// refusals take no room in the queue; a session's counts are written
// before its next record, the rest once the file is writable again, each
// refusal accounted for (count and statement_id range) in the chain.
TEST(AuditLog, DenialsWhileFailingAreCountedPerSession) {
  TempDir dir;
  const fs::path logdir = dir.path() / "audit";
  auto log = open_log(test_options((logdir / "pgwarden.jsonl").string()));
  ASSERT_TRUE(log);
  fs::remove_all(logdir);
  EXPECT_FALSE(submit_and_wait(*log, statement_body("SELECT 'accepted during the failure'")));
  ASSERT_FALSE(log->writable());
  for (std::uint64_t id = 1; id <= 3000; ++id) {
    ASSERT_EQ(log->submit(denied_body("s-a", id)), Admission::Accepted);
    ASSERT_EQ(log->submit(denied_body("s-b", id + 10)), Admission::Accepted);
  }
  EXPECT_EQ(log->stats().queue_depth.load(), 1u) << "counted, not queued";
  EXPECT_EQ(log->stats().refusals_counted.load(), 6000u);
  SessionFields a = alice_session();
  a.session_id = "s-a";
  RecordBuffer end;
  encode(a, SessionEndRecord{}, end);
  ASSERT_EQ(log->submit(end.view()), Admission::Accepted);

  fs::create_directories(logdir);
  ASSERT_TRUE(log->flush());
  std::this_thread::sleep_for(50ms);  // the rest of the counts follow the recovery
  log->close();
  const auto records = records_in(files_in(logdir));
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[1].at("event").as_string(), "statement");
  EXPECT_EQ(records[2].at("event").as_string(), "statement.refusals");
  EXPECT_EQ(records[2].at("session_id").as_string(), "s-a");
  EXPECT_EQ(records[3].at("event").as_string(), "session.end");
  EXPECT_EQ(records[4].at("session_id").as_string(), "s-b");
  for (const auto* r : {&records[2], &records[4]}) {
    EXPECT_EQ(r->at("count").as_int64(), 3000);
    EXPECT_EQ(r->at("reason").as_string(), "audit_unavailable");
    EXPECT_EQ(r->at("sqlstate").as_string(), "58030");
    EXPECT_EQ(r->at("decision").as_string(), "deny");
    EXPECT_EQ(r->at("last_statement_id").as_int64() - r->at("first_statement_id").as_int64(), 2999);
    EXPECT_EQ(r->at("user").as_string(), "alice");
  }
  std::string out;
  EXPECT_EQ(verify({logdir.string()}, out), 0) << out;
}

// Denials while the file is writable are ordinary records, one each.
TEST(AuditLog, DenialsAreWrittenOneByOneWhileTheFileWorks) {
  TempDir dir;
  auto log = open_log(test_options(dir.file("pgwarden.jsonl")));
  ASSERT_TRUE(log);
  for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_EQ(log->submit(denied_body("s-a", id)), Admission::Accepted);
  log->close();
  EXPECT_EQ(events_in(records_in({dir.file("pgwarden.jsonl")}), "statement").size(), 3u);
  EXPECT_EQ(log->stats().refusals_counted.load(), 0u);
}

// Closing flushes what was accepted; later submits are refused.
TEST(AuditLog, CloseWritesEverythingAndRefusesLaterRecords) {
  TempDir dir;
  Options o = test_options(dir.file("pgwarden.jsonl"));
  o.flush_interval = 10000ms;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(log->submit(statement_body("SELECT 1", i)), Admission::Accepted);
  log->close();
  EXPECT_EQ(read_lines(o.file).size(), 101u);
  EXPECT_EQ(log->submit(statement_body("SELECT 1")), Admission::Refused);
  EXPECT_EQ(log->submit(statement_body("SELECT 1"), nullptr, Purpose::Gate), Admission::Refused);
}

// A log whose last line was replaced by something that is not a record (not
// a crash: a crash leaves a torn tail) cannot be continued silently.
TEST(AuditLog, RefusesToContinueAChainItCannotRead) {
  TempDir dir;
  const Options o = test_options(dir.file("pgwarden.jsonl"));
  write_file(o.file, "{\"seq\":1,\"not\":\"a record\"}\n{\"seq\":2,\"not\":\"a record\"}\n");
  std::string error;
  EXPECT_FALSE(AuditLog::open(o, error));
  EXPECT_NE(error.find("not an audit record"), std::string::npos) << error;
}

}  // namespace
}  // namespace pgwarden::audit
