#pragma once
/// The buffer a record body is encoded into. Appends are inline pointer
/// writes behind one capacity check (std::string's go through the shared
/// library for each call), which is most of the cost of encoding a record
/// on the session thread. Keep one per event-loop thread or per session and
/// reuse it: once grown it allocates nothing.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace pgwarden::audit {

class RecordBuffer {
 public:
  RecordBuffer() = default;
  RecordBuffer(RecordBuffer&&) noexcept = default;
  RecordBuffer& operator=(RecordBuffer&&) noexcept = default;

  std::string_view view() const { return {data_.get(), size_}; }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return capacity_; }
  void clear() { size_ = 0; }

  /// Room for at least `n` more bytes; write there, then commit_to(end).
  char* prepare(std::size_t n) {
    if (capacity_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  /// Marks the bytes up to `end` (a pointer into the room prepare() gave) written.
  void commit_to(const char* end) { size_ = static_cast<std::size_t>(end - data_.get()); }

  void append(std::string_view s) {
    char* p = prepare(s.size());
    std::memcpy(p, s.data(), s.size());
    size_ += s.size();
  }
  void push_back(char c) {
    *prepare(1) = c;
    ++size_;
  }

  /// Frees the memory of a buffer that once grew past `limit` (a huge
  /// statement), so an idle session does not keep it.
  void shrink_if_above(std::size_t limit) {
    if (capacity_ > limit && size_ == 0) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  void grow(std::size_t n) {
    std::size_t cap = capacity_ < 512 ? 512 : capacity_ * 2;
    while (cap - size_ < n) cap *= 2;
    auto bigger = std::make_unique_for_overwrite<char[]>(cap);
    if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = cap;
  }

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace pgwarden::audit
