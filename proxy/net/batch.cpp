#include "proxy/net/batch.hpp"

namespace pgwarden::proxy {

std::span<const boost::asio::const_buffer> Batch::buffers() {
  close_run();
  out_.clear();
  for (const Segment& s : segments_) {
    const char* base = s.from_input ? input_ : scratch_.data();
    out_.emplace_back(base + s.offset, s.size);
  }
  return out_;
}

}  // namespace pgwarden::proxy
