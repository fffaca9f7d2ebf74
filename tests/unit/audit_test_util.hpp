#pragma once
// Helpers shared by the audit tests: a temporary directory, whole-file
// reads and writes, records built from a few fields, and a log opened on a
// directory with test-friendly intervals.

#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/record.hpp"
#include "audit/tools/verifier.hpp"

namespace pgwarden::audit::testing {

namespace fs = std::filesystem;

/// A directory removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pgwarden-audit-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

/// The lines of a file, without their newlines (a torn tail included).
inline std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(p));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_file(p, text);
}

/// Every file of `dir`, sorted by name (rotated files first, then the active one).
inline std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

/// Options for a log at `file` that writes and retries quickly.
inline Options test_options(const std::string& file) {
  Options o;
  o.file = file;
  o.flush_interval = std::chrono::milliseconds(2);
  o.retry_interval = std::chrono::milliseconds(5);
  return o;
}

inline std::unique_ptr<AuditLog> open_log(const Options& o) {
  std::string error;
  auto log = AuditLog::open(o, error);
  EXPECT_TRUE(log) << error;
  return log;
}

inline SessionFields alice_session() {
  SessionFields s;
  s.session_id = "s-1";
  s.user = "alice";
  s.database = "app";
  s.application_name = "psql";
  s.client_addr = "10.10.0.5";
  s.client_port = 50123;
  return s;
}

/// A statement body with its outcome, as buffered durability writes it.
inline std::string statement_body(std::string_view text, std::uint64_t id = 1,
                                  Decision decision = Decision::Allow, std::string_view user = "alice") {
  SessionFields s = alice_session();
  s.user = user;
  static const std::vector<std::string> tags = {"SELECT"};
  static const std::vector<std::string_view> classes = {"READ"};
  Outcome outcome;
  outcome.rows = 1;
  outcome.duration_us = 120;
  StatementRecord r;
  r.statement_id = id;
  r.text = text;
  r.command_tags = tags;
  r.classes = classes;
  r.decision = decision;
  r.outcome = &outcome;
  RecordBuffer body;
  encode(s, r, EncodeOptions{}, body);
  return std::string(body.view());
}

/// Submits `body` and waits until the writer settled it; true when written.
inline bool submit_and_wait(AuditLog& log, std::string_view body) {
  Ticket t = 0;
  if (log.submit(body, &t) != Admission::Accepted) return false;
  std::promise<bool> done;
  log.when_durable(t, [&done](bool ok) { done.set_value(ok); });
  return done.get_future().get();
}

/// verify over `files` (or a directory), returning the exit code and output.
inline int verify(const std::vector<std::string>& files, std::string& output, const std::string& key_file = "") {
  std::ostringstream out, err;
  VerifyRequest request{files, key_file};
  const int rc = run_verify(request, out, err);
  output = out.str() + err.str();
  return rc;
}

}  // namespace pgwarden::audit::testing
