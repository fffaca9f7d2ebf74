#include "config/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace pgwarden::config {
namespace {

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The problem with an opened secret file, or "".
std::string stat_problem(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (st.st_uid != geteuid())
    return path + ": owned by uid " + std::to_string(st.st_uid) + ", not by the user pgwarden runs as (uid " +
           std::to_string(geteuid()) + ")";
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return path + ": mode " + octal_mode(st.st_mode) +
           " lets other users read or change it; a secret file must be 0600 or 0400 (chmod 600 " + path + ")";
  if (static_cast<std::size_t>(st.st_size) > max_secret_file_bytes)
    return path + ": larger than " + std::to_string(max_secret_file_bytes) + " bytes, not a secret file";
  return {};
}

// Opens `path` read-only; -1 with `error` set on failure.
int open_secret(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) error = path + ": cannot open: " + std::strerror(errno);
  return fd;
}

}  // namespace

std::string secret_file_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (auto problem = stat_problem(path, st); !problem.empty()) return problem;
  std::string error;
  const int fd = open_secret(path, error);
  if (fd >= 0) ::close(fd);
  return error;
}

bool read_secret_file(const std::string& path, std::string& out, std::string& error) {
  const int fd = open_secret(path, error);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) error = path + ": " + std::strerror(errno);
  else error = stat_problem(path, st);
  out.clear();
  char buf[4096];
  while (error.empty()) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = path + ": cannot read: " + std::strerror(errno);
    else if (out.size() + static_cast<std::size_t>(n) > max_secret_file_bytes)
      error = path + ": larger than " + std::to_string(max_secret_file_bytes) + " bytes, not a secret file";
    else out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!error.empty()) out.clear();
  return error.empty();
}

std::string password_of(std::string_view contents) {
  const std::size_t end = contents.find_first_of("\r\n");
  return std::string(contents.substr(0, end));
}

}  // namespace pgwarden::config
