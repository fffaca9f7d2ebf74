#pragma once
/// A growable read buffer: bytes are appended at the back by reads and
/// consumed from the front by the relay. Unconsumed bytes stay in place
/// until the next read needs room, so views handed out stay valid until then.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

#include <boost/asio/buffer.hpp>

namespace pgwarden::proxy {

class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t initial_capacity) : initial_(initial_capacity) {}

  /// Unconsumed bytes.
  std::string_view data() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  /// Writable space of at least `min_free` bytes (compacting or growing as
  /// needed); also uses any extra room already available.
  boost::asio::mutable_buffer prepare(std::size_t min_free);
  void commit(std::size_t n) { end_ += n; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Returns to the initial capacity when empty and grown past `limit`, so a
  /// session that once read a large message does not keep its memory.
  void shrink_if_idle(std::size_t limit);
  std::size_t capacity() const { return capacity_; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t initial_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace pgwarden::proxy
