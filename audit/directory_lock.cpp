#include "audit/directory_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "audit/log_files.hpp"

namespace pgwarden::audit {
namespace {

/// The pid text a lock file holds, or "" when it holds none.
std::string holder_of(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : std::string();
}

}  // namespace

std::unique_ptr<DirectoryLock> DirectoryLock::acquire(const std::string& audit_file, std::string& error) {
  const LogFiles files(audit_file);
  std::error_code ec;
  std::filesystem::create_directories(files.directory(), ec);
  if (ec) {
    error = "create directory " + files.directory() + ": " + ec.message();
    return nullptr;
  }
  const std::string path = (std::filesystem::path(files.directory()) / file_name).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    error = "open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    const std::string pid = e == EWOULDBLOCK ? holder_of(fd) : std::string();
    ::close(fd);
    error = e == EWOULDBLOCK ? "the audit directory " + files.directory() + " is in use by another pgwarden (" +
                                   (pid.empty() ? std::string("pid unknown") : "pid " + pid) + ", lock " + path +
                                   "); stop it first, or give this instance an audit directory of its own"
                             : "lock " + path + ": " + std::strerror(e);
    return nullptr;
  }
  // Ours now: record who holds it, for the message a second instance prints.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // Only informational; the lock itself is held.
  }
  return std::unique_ptr<DirectoryLock>(new DirectoryLock(fd, path));
}

DirectoryLock::~DirectoryLock() { ::close(fd_); }

}  // namespace pgwarden::audit
