#include "proxy/net/message_reader.hpp"

namespace pgwarden::proxy {

awaitable<MessageReader::Result> MessageReader::next(Stream& stream) {
  release();
  for (;;) {
    Result r;
    r.frame = framer_.put(in_.data());
    if (r.frame.ec || r.frame.kind == protocol::FrameKind::Whole) {
      pending_ = r.frame.ec ? 0 : r.frame.bytes.size();
      co_return r;
    }
    auto [ec, n] = co_await stream.read_some(in_.prepare(1024));
    if (ec) {
      r.closed = true;
      co_return r;
    }
    in_.commit(n);
    bytes_read_ += n;
  }
}

}  // namespace pgwarden::proxy
