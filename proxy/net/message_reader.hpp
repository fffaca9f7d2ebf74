#pragma once
/// Reads whole typed messages from a stream, for the short exchanges pgwarden
/// conducts itself: authenticating a client, logging into the upstream,
/// running auth_query. The relay path does not use it; it frames in place.

#include <cstddef>
#include <cstdint>

#include "protocol/framer.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/net/byte_buffer.hpp"
#include "proxy/net/stream.hpp"

namespace pgwarden::proxy {

class MessageReader {
 public:
  /// Reads into `in` (which may already hold bytes); messages longer than
  /// `max_message_bytes` are an error, never an allocation.
  MessageReader(ByteBuffer& in, std::size_t max_message_bytes)
      : in_(in), framer_(protocol::TypeSet::all_except({}), max_message_bytes) {}

  /// The next whole message (valid until the next call or release()), after
  /// consuming the previous one. `closed` is set when the peer closed or the
  /// read failed; `frame.ec` when the bytes are not a valid message.
  struct Result {
    protocol::Frame frame;
    bool closed = false;
  };
  awaitable<Result> next(Stream& stream);

  /// Bytes read from the stream so far (for the session's byte counts).
  std::uint64_t bytes_read() const { return bytes_read_; }

  /// Consumes the message last returned, leaving `in` at the next one.
  void release() {
    in_.consume(pending_);
    pending_ = 0;
  }

 private:
  ByteBuffer& in_;
  protocol::Framer framer_;
  std::size_t pending_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace pgwarden::proxy
