#include "audit/file_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "audit/record.hpp"

namespace pgwarden::audit {
namespace {

namespace fs = std::filesystem;

std::error_code errno_code(int e = errno) { return {e, std::system_category()}; }

/// Makes a rename or creation in `dir` durable.
std::error_code sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_code();
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  return rc == 0 ? std::error_code{} : errno_code(e);
}

}  // namespace

FileSink::FileSink(const Options& options, Stats& stats)
    : options_(options), stats_(stats), files_(options.file), hasher_(options.hmac_key) {}

FileSink::~FileSink() { close_fd(); }

std::error_code FileSink::fail(std::error_code ec, std::string_view what, const std::string& path) {
  last_error_ = std::string(what) + " " + path + ": " + ec.message();
  last_errno_ = ec.category() == std::system_category() ? ec.value() : 0;
  broken_ = true;
  stats_.write_errors.fetch_add(1, std::memory_order_relaxed);
  return ec;
}

void FileSink::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::error_code FileSink::open() {
  std::error_code ec;
  fs::create_directories(files_.directory(), ec);
  if (ec) return fail(ec, "create directory", files_.directory());

  std::vector<std::string> candidates = files_.rotated();
  const bool active_exists = fs::exists(files_.active_path(), ec);
  if (active_exists) candidates.push_back(files_.active_path());
  LastRecord last;
  std::string source;
  for (auto it = candidates.rbegin(); it != candidates.rend() && !last.found; ++it) {
    if ((ec = find_last_record(*it, last))) {
      if (ec == std::errc::bad_message)
        return fail(ec, "continue the chain of", *it + " (its last line is not an audit record; check it with "
                                                    "`pgwarden audit verify`)");
      return fail(ec, "read", *it);
    }
    if (last.found) source = *it;
  }
  if (last.found) {
    head_ = last.head;
    head_file_ = fs::path(source).filename().string();
  }
  std::string moved;
  if (active_exists && (ec = move_aside_active(moved))) return ec;
  if (!moved.empty() && source == files_.active_path()) head_file_ = moved;
  if ((ec = begin_file(last.found ? CheckpointReason::Restart : CheckpointReason::Start, nullptr))) return ec;
  files_.apply_retention(options_.retention);
  return {};
}

/// Moves whatever is at the active path out of the way: an empty file is
/// removed, anything else gets the next rotated name (`moved`).
std::error_code FileSink::move_aside_active(std::string& moved) {
  // A file a crash left preallocated: its zeros would only be in the way.
  if (auto ec = trim_unwritten_tail(files_.active_path()); ec && ec != std::errc::no_such_file_or_directory)
    if (options_.log)
      options_.log(LogLevel::Warning, "audit: cannot cut the unwritten tail off " + files_.active_path() + ": " +
                                          ec.message() + " (readers skip it)");
  struct stat st {};
  if (::stat(files_.active_path().c_str(), &st) != 0)
    return errno == ENOENT ? std::error_code{} : fail(errno_code(), "stat", files_.active_path());
  if (st.st_size == 0) {
    if (::unlink(files_.active_path().c_str()) != 0) return fail(errno_code(), "remove", files_.active_path());
    return {};
  }
  const std::string name = files_.rotated_name(options_.clock(), last_rotated_);
  const std::string target = (fs::path(files_.directory()) / name).string();
  if (::rename(files_.active_path().c_str(), target.c_str()) != 0)
    return fail(errno_code(), "rename", files_.active_path());
  last_rotated_ = name;
  moved = name;
  return sync_directory(files_.directory());
}

/// Encodes the checkpoint that links a new file to head_; returns its time.
Clock::time_point FileSink::encode_checkpoint(CheckpointReason reason, const FailureEpisode* episode) {
  CheckpointRecord cp;
  cp.time = options_.clock();
  cp.reason = reason;
  cp.previous_seq = head_.seq;
  if (head_.seq != 0) cp.previous_file = head_file_;
  const std::string previous_hash = to_hex(head_.hash);
  cp.previous_hash = previous_hash;
  if (episode) {
    cp.error = episode->error;
    cp.failed_since = episode->since;
    cp.records_lost = episode->records_lost;
  }
  encode(cp, body_);
  return cp.time;
}

std::error_code FileSink::begin_file(CheckpointReason reason, const FailureEpisode* episode) {
  const Clock::time_point time = encode_checkpoint(reason, episode);
  const std::string& path = files_.active_path();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) return fail(errno_code(), "create", path);
  struct stat st {};
  ::fstat(fd, &st);
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  size_ = 0;
  allocated_ = 0;
  preallocating_ = options_.durability == Durability::Synced && options_.preallocate > 0;
  records_ = 0;
  out_.clear();
  ChainHead h = head_;
  hasher_.append_line(body_.view(), h, out_);
  std::size_t written = 0;
  std::error_code ec = write_out(true, written);
  if (!ec && (ec = sync_directory(files_.directory()))) fail(ec, "fsync directory", files_.directory());
  if (ec) {
    close_fd();
    ::unlink(path.c_str());  // holds no complete record
    return ec;
  }
  size_ = allocated_ = out_.size();
  head_ = h;
  head_file_ = files_.active_name();
  opened_at_ = time;
  stats_.records_written.fetch_add(1, std::memory_order_relaxed);
  return {};
}

std::error_code FileSink::rotate(CheckpointReason reason) {
  if (auto ec = cut_unwritten()) return ec;
  if (::fdatasync(fd_) != 0) return fail(errno_code(), "fdatasync", files_.active_path());
  std::string moved;
  if (auto ec = move_aside_active(moved)) return ec;
  if (!moved.empty()) head_file_ = moved;
  close_fd();
  if (auto ec = begin_file(reason, nullptr)) return ec;
  stats_.rotations.fetch_add(1, std::memory_order_relaxed);
  for (const auto& path : files_.apply_retention(options_.retention))
    if (options_.log) options_.log(LogLevel::Info, "audit: retention removed " + path);
  return {};
}

std::error_code FileSink::recover(const FailureEpisode& episode, std::size_t next_bytes) {
  if (!broken_) return {};
  std::error_code ec;
  if (!fs::is_directory(files_.directory(), ec)) {
    close_fd();
    return fail(ec ? ec : std::make_error_code(std::errc::no_such_file_or_directory), "open directory",
                files_.directory());
  }
  // The disk filled up again while this episode's backlog was being written:
  // go on in the same file, after its last complete record.
  if (recovered_file_ && resumable()) {
    broken_ = false;
    return {};
  }
  // After the disk filled up, wait until what must go first fits.
  if (out_of_space() && (ec = room_for_recovery(episode, next_bytes))) return ec;
  close_fd();
  struct stat st {};
  const bool ours = ::stat(files_.active_path().c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
  std::string moved;
  if ((ec = move_aside_active(moved))) return ec;
  if (ours && !moved.empty()) head_file_ = moved;
  if ((ec = begin_file(CheckpointReason::Recover, &episode))) return ec;
  broken_ = false;
  recovered_file_ = true;
  stats_.rotations.fetch_add(1, std::memory_order_relaxed);
  files_.apply_retention(options_.retention);
  return {};
}

/// Whether the active file can simply be written on: the last failure was
/// the disk filling up (not an I/O error, after which the file's pages are
/// in doubt), its torn bytes were cut off, and the path still names it.
bool FileSink::resumable() const { return fd_ >= 0 && out_of_space() && !still_ours(); }

bool FileSink::out_of_space() const {
  return last_errno_ == ENOSPC || last_errno_ == EDQUOT || last_errno_ == EFBIG;
}

/// Whether the filesystem can take a recover checkpoint and the first
/// waiting record (`next_bytes` of body); ENOSPC, without counting a write
/// error, when it cannot yet.
std::error_code FileSink::room_for_recovery(const FailureEpisode& episode, std::size_t next_bytes) {
  struct statvfs vfs {};
  if (::statvfs(files_.directory().c_str(), &vfs) != 0) return {};  // cannot tell: try it
  const std::uint64_t block = vfs.f_frsize != 0 ? vfs.f_frsize : 4096;
  // A checkpoint body is under 1 KiB besides its error text; chaining adds
  // at most 256 bytes to a line (seq, prev_hash, hash, hmac).
  const std::uint64_t need = 1024 + episode.error.size() + next_bytes + 2 * 256;
  const std::uint64_t blocks = ::geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail;  // root may use the reserve
  if (blocks * block >= (need + block - 1) / block * block) return {};
  last_error_ = "no room yet in " + files_.directory() + " for the recover checkpoint and the first waiting record (" +
                std::to_string(blocks * block) + " bytes free, " + std::to_string(need) + " needed)";
  return std::make_error_code(std::errc::no_space_on_device);
}

bool FileSink::rotation_due(CheckpointReason& reason) const {
  if (records_ == 0) return false;  // a file holds at least one record besides its checkpoint
  if (options_.rotate_bytes != 0 && size_ >= options_.rotate_bytes) {
    reason = CheckpointReason::RotateSize;
    return true;
  }
  if (options_.rotate_interval.count() > 0 && options_.clock() - opened_at_ >= options_.rotate_interval) {
    reason = CheckpointReason::RotateTime;
    return true;
  }
  return false;
}

bool FileSink::size_reached(std::size_t pending) const {
  return options_.rotate_bytes != 0 && size_ + pending >= options_.rotate_bytes;
}

std::size_t FileSink::append(const BodyBatch& bodies, std::size_t first, bool sync, std::error_code& ec) {
  ec.clear();
  std::size_t i = first;
  while (i < bodies.size()) {
    CheckpointReason reason{};
    if (rotation_due(reason) && (ec = rotate(reason))) return i;
    out_.clear();
    line_ends_.clear();
    ChainHead h = head_;
    std::size_t j = i;
    do {
      hasher_.append_line(bodies[j++], h, out_);
      line_ends_.emplace_back(out_.size(), h);
    } while (j < bodies.size() && !size_reached(out_.size()));
    reserve(out_.size());
    std::size_t written = 0;
    if ((ec = write_out(sync, written))) return i + keep_whole_lines(written, sync);
    size_ += out_.size();
    records_ += j - i;
    stats_.records_written.fetch_add(j - i, std::memory_order_relaxed);
    head_ = h;
    i = j;
  }
  return i;
}

/// After a failed write of out_ of which `written` bytes reached the file:
/// keeps the lines among them that are whole (synced first, with `sync`),
/// cuts the rest off and returns how many lines were kept. Nothing is kept
/// when cutting or syncing fails; should the cut fail, the torn bytes stay
/// and verify reports them as torn once recovery has moved the file aside.
std::size_t FileSink::keep_whole_lines(std::size_t written, bool sync) {
  std::size_t n = 0;
  while (n < line_ends_.size() && line_ends_[n].first <= written) ++n;
  const std::uint64_t keep = n == 0 ? 0 : line_ends_[n - 1].first;
  bool ok = fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(size_ + keep)) == 0;
  if (ok && n > 0 && sync) ok = ::fdatasync(fd_) == 0;
  if (ok && n > 0) ok = !still_ours();
  if (!ok) {
    if (fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) last_error_ += " (the partial write stays)";
    close_fd();
    return 0;
  }
  size_ += keep;
  allocated_ = size_;
  records_ += n;
  if (n > 0) head_ = line_ends_[n - 1].second;
  stats_.records_written.fetch_add(n, std::memory_order_relaxed);
  stats_.bytes_written.fetch_add(keep, std::memory_order_relaxed);
  return n;
}

std::error_code FileSink::write_out(bool sync, std::size_t& written) {
  const std::string& path = files_.active_path();
  const char* p = out_.data();
  std::size_t left = out_.size();
  auto at = static_cast<off_t>(size_);
  written = 0;
  while (left > 0) {
    const ssize_t n = ::pwrite(fd_, p, left, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      written = out_.size() - left;
      return fail(errno_code(), "write", path);
    }
    p += n;
    at += n;
    left -= static_cast<std::size_t>(n);
  }
  allocated_ = std::max(allocated_, static_cast<std::uint64_t>(at));
  if (sync) {
    const auto start = std::chrono::steady_clock::now();
    if (::fdatasync(fd_) != 0) return fail(errno_code(), "fdatasync", path);
    stats_.observe_sync(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start));
  }
  if (auto ec = still_ours()) return fail(ec, "write (the file was removed or replaced)", path);
  stats_.batches_written.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes_written.fetch_add(out_.size(), std::memory_order_relaxed);
  return {};
}

/// Whether the active path still names the file written to: a deleted file
/// or directory keeps accepting writes through the open descriptor.
std::error_code FileSink::still_ours() const {
  struct stat st {};
  if (::stat(files_.active_path().c_str(), &st) != 0) return errno_code();
  if (st.st_dev != dev_ || st.st_ino != ino_) return std::make_error_code(std::errc::no_such_file_or_directory);
  return {};
}

/// Ensures that `n` more bytes fit before the end of the preallocated zeros,
/// extending the file by Options::preallocate (or up to rotate_bytes) if
/// not. Best effort: when the filesystem cannot spare four times the
/// extension, or extending fails, the file goes on without preallocation
/// (what was added is cut off again) and its syncs also write its size.
void FileSink::reserve(std::size_t n) {
  if (!preallocating_ || size_ + n <= allocated_) return;
  constexpr std::uint64_t page = 4096;
  auto round_up = [](std::uint64_t v) { return (v + page - 1) / page * page; };
  std::uint64_t target = round_up(size_ + n + options_.preallocate);
  if (options_.rotate_bytes != 0) target = std::max(round_up(size_ + n), std::min(target, round_up(options_.rotate_bytes)));
  struct statvfs vfs {};
  if (::fstatvfs(fd_, &vfs) != 0) return stop_preallocating(std::string("statvfs: ") + std::strerror(errno));
  if (static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize < 4 * (target - allocated_))
    return stop_preallocating("the filesystem is nearly full");
  static const std::string zeros(256u << 10, '\0');
  for (std::uint64_t at = allocated_; at < target;) {
    const ssize_t w = ::pwrite(fd_, zeros.data(), std::min<std::uint64_t>(zeros.size(), target - at),
                               static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = errno;
      if (::ftruncate(fd_, static_cast<off_t>(allocated_)) != 0) allocated_ = at;  // the zeros stay; readers skip them
      return stop_preallocating(std::string("write: ") + std::strerror(e));
    }
    at += static_cast<std::uint64_t>(w);
  }
  if (::fdatasync(fd_) != 0) {
    const int e = errno;
    if (::ftruncate(fd_, static_cast<off_t>(allocated_)) != 0) allocated_ = target;
    return stop_preallocating(std::string("fdatasync: ") + std::strerror(e));
  }
  allocated_ = target;
}

void FileSink::stop_preallocating(const std::string& why) {
  preallocating_ = false;
  if (options_.log)
    options_.log(LogLevel::Info, "audit: not preallocating " + files_.active_path() + " (" + why +
                                     "); each sync also writes the file's size");
}

/// Cuts the preallocated zeros off the active file.
std::error_code FileSink::cut_unwritten() {
  if (allocated_ <= size_) return {};
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return fail(errno_code(), "truncate", files_.active_path());
  allocated_ = size_;
  return {};
}

std::error_code FileSink::close() {
  if (fd_ < 0) return {};
  std::error_code ec = cut_unwritten();
  if (!ec && ::fdatasync(fd_) != 0) ec = fail(errno_code(), "fdatasync", files_.active_path());
  close_fd();
  return ec;
}

}  // namespace pgwarden::audit
