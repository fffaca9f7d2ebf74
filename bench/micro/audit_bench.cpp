// The audit record's cost: encoding a pgbench-sized statement record on the
// session thread, chaining it (SHA-256, optionally HMAC) on the writer
// thread, submit() from one and two session threads while the writer
// writes the batches to a file (tmpfs when available), and the disk's
// fdatasync that bounds synced durability.

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/chain.hpp"
#include "audit/record.hpp"

namespace {

using namespace pgwarden::audit;
namespace fs = std::filesystem;

const std::vector<std::string> kTags = {"SELECT"};
const std::vector<std::string_view> kClasses = {"READ"};
const std::vector<ObjectName> kObjects = {{"", "pgbench_accounts", "read"}};

SessionFields session() {
  SessionFields s;
  s.session_id = "5f1c2a9e0b7d4c31";
  s.user = "bench";
  s.database = "pgbench";
  s.application_name = "pgbench";
  s.client_addr = "127.0.0.1";
  s.client_port = 51234;
  return s;
}

/// `pgbench -S`'s statement, allowed, with its outcome.
StatementRecord pgbench_statement(std::uint64_t id) {
  static const Outcome outcome{1, "", "", 87};
  StatementRecord r;
  r.statement_id = id;
  r.protocol = Protocol::Extended;
  r.text = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
  r.command_tags = kTags;
  r.classes = kClasses;
  r.objects = kObjects;
  r.outcome = &outcome;
  return r;
}

void encode_pgbench_statement(std::uint64_t id, RecordBuffer& out) {
  encode(session(), pgbench_statement(id), EncodeOptions{}, out);
}

// Session thread: one statement record into a reused buffer.
void BM_AuditEncodeStatement(benchmark::State& state) {
  RecordBuffer body;
  std::uint64_t id = 0;
  for (auto _ : state) {
    encode_pgbench_statement(++id, body);
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_AuditEncodeStatement);

// The same record as a session encodes it: its own members and the
// statement's classification encoded once, copied into each record.
void BM_AuditEncodeStatementEncodedMembers(benchmark::State& state) {
  RecordBuffer body, session_json, classification;
  encode_members(session(), session_json);
  encode_classification(pgbench_statement(0), classification);
  SessionFields copied;
  copied.encoded = session_json.view();
  std::uint64_t id = 0;
  for (auto _ : state) {
    StatementRecord r = pgbench_statement(++id);
    r.encoded_classification = classification.view();
    encode(copied, r, EncodeOptions{}, body);
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_AuditEncodeStatementEncodedMembers);

// Writer thread: seq, prev_hash, SHA-256 (and HMAC-SHA256 with Arg 1) of one body.
void BM_AuditChainRecord(benchmark::State& state) {
  RecordBuffer body;
  std::string out;
  encode_pgbench_statement(1, body);
  RecordHasher hasher(state.range(0) ? "a benchmark key of thirty-two by" : "");
  ChainHead head;
  for (auto _ : state) {
    out.clear();
    hasher.append_line(body.view(), head, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_AuditChainRecord)->Arg(0)->Arg(1)->ArgName("hmac");

/// A log in a fresh directory, shared by the threads of one benchmark run.
struct SharedLog {
  std::string dir;
  std::unique_ptr<AuditLog> log;
  std::atomic<std::uint64_t> full{0};

  SharedLog() {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string tmpl = (base / "pgwarden-audit-bench-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    Options o;
    o.file = dir + "/bench.jsonl";
    o.rotate_bytes = 64u << 20;  // keep the tmpfs small: old files are removed
    o.retention = 1;
    std::string error;
    log = AuditLog::open(o, error);
    if (!log) std::abort();
  }
  ~SharedLog() {
    log.reset();
    fs::remove_all(dir);
  }
};
std::unique_ptr<SharedLog> shared_log;

// Session threads: encode + submit while the writer thread writes batches.
// A Full answer (the writer behind) is retried after a yield and counted.
void BM_AuditSubmit(benchmark::State& state) {
  if (state.thread_index() == 0) shared_log = std::make_unique<SharedLog>();
  RecordBuffer body;
  std::uint64_t id = 0;
  for (auto _ : state) {
    encode_pgbench_statement(++id, body);
    while (shared_log->log->submit(body.view()) == Admission::Full) {
      shared_log->full.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::yield();
    }
  }
  // After the loop only thread 0 touches the log: the others may already be gone.
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  if (state.thread_index() == 0) {
    shared_log->log->flush();
    state.counters["full_retries"] = static_cast<double>(shared_log->full.load());
    state.counters["batches"] = static_cast<double>(shared_log->log->stats().batches_written.load());
    shared_log.reset();
  }
}
BENCHMARK(BM_AuditSubmit)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

namespace {

// What one group commit of synced durability costs the disk: write a few
// records (2 KB), then fdatasync. Appending grows the file, so each sync
// also commits the file system's journal (the new size); overwriting a file
// zero-filled in advance, as PostgreSQL does with WAL segments, syncs the
// data alone. The file goes to PGWARDEN_BENCH_SYNC_DIR or /var/tmp (a real
// disk: on tmpfs fdatasync does nothing).
constexpr std::size_t kSyncRecordBytes = 2048;
constexpr std::size_t kPrezeroedBytes = 16 << 20;

std::string sync_path() {
  const char* dir = getenv("PGWARDEN_BENCH_SYNC_DIR");
  return std::string(dir && *dir ? dir : "/var/tmp") + "/pgwarden-bench-sync." + std::to_string(getpid());
}

void BM_AuditFdatasync(benchmark::State& state) {
  const bool prezeroed = state.range(0) != 0;
  const std::string path = sync_path();
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    state.SkipWithError(("cannot create " + path).c_str());
    return;
  }
  const std::string zeros(1 << 16, '\0');
  if (prezeroed) {
    for (std::size_t done = 0; done < kPrezeroedBytes; done += zeros.size()) {
      if (::write(fd, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) {
        state.SkipWithError("cannot zero-fill the file");
        break;
      }
    }
    ::fsync(fd);
  }
  const std::string records(kSyncRecordBytes, 'x');
  off_t at = 0;
  for (auto _ : state) {
    if (prezeroed && at + static_cast<off_t>(records.size()) > static_cast<off_t>(kPrezeroedBytes)) at = 0;
    const ssize_t n = prezeroed ? ::pwrite(fd, records.data(), records.size(), at)
                                : ::write(fd, records.data(), records.size());
    if (n != static_cast<ssize_t>(records.size()) || ::fdatasync(fd) != 0) {
      state.SkipWithError("write or fdatasync failed");
      break;
    }
    at += n;
  }
  ::close(fd);
  ::unlink(path.c_str());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuditFdatasync)->Arg(0)->Arg(1)->ArgName("prezeroed")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
