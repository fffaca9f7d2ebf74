#pragma once
/// Record bodies stored back to back in one buffer: the queue between the
/// sessions and the writer thread. Two of them are swapped each time the
/// writer takes the pending records, so in steady state appending a record
/// copies its bytes and allocates nothing.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgwarden::audit {

class BodyBatch {
 public:
  void append(std::string_view body) {
    data_.append(body);
    ends_.push_back(data_.size());
  }
  /// Appends every body of `other`, in order.
  void append(const BodyBatch& other) {
    for (std::size_t i = 0; i < other.size(); ++i) append(other[i]);
  }
  std::size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::size_t bytes() const { return data_.size(); }
  std::string_view operator[](std::size_t i) const {
    const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(data_).substr(begin, ends_[i] - begin);
  }
  /// Bytes of the first `n` bodies.
  std::size_t bytes_before(std::size_t n) const { return n == 0 ? 0 : ends_[n - 1]; }
  /// Removes the first `n` bodies (keeps capacity).
  void drop_front(std::size_t n) {
    if (n >= size()) return clear();
    const std::size_t cut = bytes_before(n);
    data_.erase(0, cut);
    ends_.erase(ends_.begin(), ends_.begin() + static_cast<std::ptrdiff_t>(n));
    for (auto& e : ends_) e -= cut;
  }
  void clear() {
    data_.clear();
    ends_.clear();
  }
  void swap(BodyBatch& other) noexcept {
    data_.swap(other.data_);
    ends_.swap(other.ends_);
  }

 private:
  std::string data_;
  std::vector<std::size_t> ends_;
};

}  // namespace pgwarden::audit
