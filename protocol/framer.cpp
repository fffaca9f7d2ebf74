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

namespace {

/// Classifies a startup packet by its code and checks that `length` suits it.
/// Needs only the first eight bytes, so a bad packet fails before its body.
std::error_code classify_startup(std::uint32_t length, std::uint32_t code, StartupKind& kind) {
  switch (code) {
    case negotiate_ssl_code: kind = StartupKind::SslRequest; break;
    case negotiate_gss_code: kind = StartupKind::GssEncRequest; break;
    case cancel_request_code: kind = StartupKind::Cancel; break;
    default:
      if ((code >> 16) != 3) return Error::UnsupportedProtocol;
      kind = StartupKind::Startup;
      return {};
  }
  if (kind == StartupKind::Cancel) {
    // Int32 pid and a 4-byte (3.0) to 256-byte (3.2) key.
    if (length < 16 || length > 8 + 4 + 256) return Error::BadLength;
  } else if (length != 8) {
    return Error::BadLength;
  }
  return {};
}

}  // namespace

StartupFrame frame_startup(std::string_view input) {
  StartupFrame f;
  if (input.size() < 4) return f;
  const std::uint32_t length = read_u32(input.data());
  if (length < 8 || length > 0x7fffffff) {
    f.ec = Error::BadLength;
    return f;
  }
  if (length > max_startup_packet) {
    f.ec = Error::MessageTooLarge;
    return f;
  }
  if (input.size() < 8) return f;
  if ((f.ec = classify_startup(length, read_u32(input.data() + 4), f.kind))) return f;
  if (input.size() < length) return f;
  f.bytes = input.substr(0, length);
  f.complete = true;
  return f;
}

}  // namespace pgwarden::protocol
