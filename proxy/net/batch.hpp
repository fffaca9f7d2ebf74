#pragma once
/// The bytes one relay step sends on: runs of the input buffer forwarded
/// as they are, interleaved with bytes the proxy substitutes (a rewritten
/// BackendKeyData, an error in place of a denied statement). Written with one
/// gathered write; nothing is copied unless it is substituted.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

namespace pgwarden::proxy {

class Batch {
 public:
  /// Marks where forwarded input starts (the caller's buffer front).
  void reset(const char* input) {
    input_ = input;
    run_begin_ = run_end_ = 0;
    segments_.clear();
    scratch_.clear();
  }
  /// Forwards the `n` input bytes at `offset` (contiguous runs merge).
  void forward(std::size_t offset, std::size_t n) {
    if (n == 0) return;
    if (run_end_ != run_begin_ && offset != run_end_) close_run();
    if (run_end_ == run_begin_) run_begin_ = run_end_ = offset;
    run_end_ += n;
  }
  /// Room to append substituted bytes (valid until the next call).
  std::string& substitute_begin() {
    close_run();
    sub_begin_ = scratch_.size();
    return scratch_;
  }
  void substitute_end() {
    if (scratch_.size() > sub_begin_) segments_.push_back({false, sub_begin_, scratch_.size() - sub_begin_});
  }
  bool empty() const { return segments_.empty() && run_end_ == run_begin_; }
  /// The gathered buffers, valid until the next reset.
  std::span<const boost::asio::const_buffer> buffers();

 private:
  struct Segment {
    bool from_input;
    std::size_t offset;
    std::size_t size;
  };
  void close_run() {
    if (run_end_ != run_begin_) segments_.push_back({true, run_begin_, run_end_ - run_begin_});
    run_begin_ = run_end_ = 0;
  }

  const char* input_ = nullptr;
  std::size_t run_begin_ = 0, run_end_ = 0;
  std::size_t sub_begin_ = 0;
  std::vector<Segment> segments_;
  std::string scratch_;
  std::vector<boost::asio::const_buffer> out_;
};

}  // namespace pgwarden::proxy
