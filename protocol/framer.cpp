#include "protocol/framer.hpp"

#include <algorithm>

namespace pgwarden::protocol {

Frame Framer::put(std::string_view input) {
  Frame f;
  if (remaining_ != 0) {  // continue a streamed message
    if (input.empty()) return f;
    const std::size_t n = std::min(remaining_, input.size());
    remaining_ -= n;
    f.kind = FrameKind::Streamed;
    f.type = streamed_type_;
    f.bytes = input.substr(0, n);
    f.ends_message = remaining_ == 0;
    return f;
  }
  if (input.size() < header_size) return f;

  const char type = input[0];
  const std::uint32_t length = read_u32(input.data() + 1);
  f.type = type;
  if (length < 4 || length > 0x7fffffff) {
    f.ec = Error::BadLength;
    return f;
  }
  const std::size_t total = std::size_t{length} + 1;
  if (whole_types_.contains(type)) {
    if (total > max_message_bytes_ || length > max_protocol_message) {
      f.ec = Error::MessageTooLarge;
      return f;
    }
    if (input.size() < total) return f;
    f.kind = FrameKind::Whole;
    f.bytes = input.substr(0, total);
    return f;
  }
  if (length > max_protocol_message) {
    f.ec = Error::MessageTooLarge;
    return f;
  }
  const std::size_t n = std::min(total, input.size());
  remaining_ = total - n;
  streamed_type_ = type;
  f.kind = FrameKind::Streamed;
  f.bytes = input.substr(0, n);
  f.starts_message = true;
  f.ends_message = remaining_ == 0;
  return f;
}

StartupFrame frame_startup(std::string_view input) {
  StartupFrame f;
  if (input.size() < 4) return f;
  const std::uint32_t length = read_u32(input.data());
  if (length < 8 || length > max_startup_packet) {
    f.ec = length < 8 ? Error::BadLength : Error::MessageTooLarge;
    return f;
  }
  if (input.size() < length) return f;
  f.bytes = input.substr(0, length);
  const std::uint32_t code = read_u32(input.data() + 4);
  switch (code) {
    case negotiate_ssl_code: f.kind = StartupKind::SslRequest; break;
    case negotiate_gss_code: f.kind = StartupKind::GssEncRequest; break;
    case cancel_request_code: f.kind = StartupKind::Cancel; break;
    default:
      if ((code >> 16) != 3) {
        f.ec = Error::UnsupportedProtocol;
        return f;
      }
      f.kind = StartupKind::Startup;
  }
  if (f.kind != StartupKind::Startup && f.kind != StartupKind::Cancel && length != 8) {
    f.ec = Error::BadLength;
    return f;
  }
  if (f.kind == StartupKind::Cancel && (length < 16 || length > 8 + 4 + 256)) {
    f.ec = Error::BadLength;
    return f;
  }
  f.complete = true;
  return f;
}

}  // namespace pgwarden::protocol
