#include "proxy/net/byte_buffer.hpp"

#include <algorithm>

namespace pgwarden::proxy {

boost::asio::mutable_buffer ByteBuffer::prepare(std::size_t min_free) {
  if (capacity_ - end_ < min_free) {
    const std::size_t used = end_ - begin_;
    if (capacity_ - used >= min_free && begin_ != 0) {
      std::memmove(data_.get(), data_.get() + begin_, used);
    } else {
      std::size_t grown = std::max(capacity_ ? capacity_ : initial_, initial_);
      while (grown - used < min_free) grown *= 2;
      auto fresh = std::make_unique_for_overwrite<char[]>(grown);
      if (used) std::memcpy(fresh.get(), data_.get() + begin_, used);
      data_ = std::move(fresh);
      capacity_ = grown;
    }
    begin_ = 0;
    end_ = used;
  }
  return {data_.get() + end_, capacity_ - end_};
}

void ByteBuffer::shrink_if_idle(std::size_t limit) {
  if (empty() && capacity_ > limit) {
    data_.reset();
    capacity_ = 0;
    begin_ = end_ = 0;
  }
}

}  // namespace pgwarden::proxy
