#pragma once
/// One owner per audit directory. Two processes writing one log would move
/// each other's active file aside and fork the hash chain; the lock makes
/// the second one stop before it changes any file.
///
/// An exclusive flock(2) on `pgwarden.lock` in the directory, held for the
/// life of the process. The kernel releases it when the process ends in any
/// way (kill -9 included), so a lock left behind never blocks a restart;
/// the pid written into the file only names the owner in the refusal.

#include <memory>
#include <string>

namespace pgwarden::audit {

class DirectoryLock {
 public:
  /// Name of the lock file inside the audit directory.
  static constexpr const char* file_name = "pgwarden.lock";

  /// Creates the directory of `audit_file` if needed and locks it; null
  /// with `error` set when that fails, naming the pid of the process that
  /// holds the lock when another one does. Changes no file but the lock
  /// file, and that only once the lock is held.
  static std::unique_ptr<DirectoryLock> acquire(const std::string& audit_file, std::string& error);

  /// Releases the lock (the file stays; its pid is only informational).
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  DirectoryLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace pgwarden::audit
