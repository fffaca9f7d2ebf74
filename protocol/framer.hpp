#pragma once
/// Splits a PostgreSQL v3 byte stream into messages without copying or doing
/// I/O. Bytes go in, views of whole messages (or of pieces of messages that
/// are forwarded as they arrive) come out; "need more" is not an error.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <system_error>

#include "protocol/error.hpp"

namespace pgwarden::protocol {

/// Typed message header: Byte1(type) Int32(length including itself).
inline constexpr std::size_t header_size = 5;
/// Largest message PostgreSQL itself accepts (MaxAllocSize - 1).
inline constexpr std::size_t max_protocol_message = 0x3fffffff;
/// Largest startup-phase packet PostgreSQL accepts (MAX_STARTUP_PACKET_LENGTH).
inline constexpr std::size_t max_startup_packet = 10000;

/// A set of message type bytes, for choosing which messages arrive whole.
class TypeSet {
 public:
  constexpr TypeSet() = default;
  constexpr TypeSet(std::initializer_list<char> types) {
    for (char t : types) insert(t);
  }
  /// Every type except the listed ones.
  static constexpr TypeSet all_except(std::initializer_list<char> types) {
    TypeSet s;
    for (auto& w : s.bits_) w = ~std::uint64_t{0};
    for (char t : types) s.erase(t);
    return s;
  }
  constexpr void insert(char t) { bits_[index(t) / 64] |= bit(t); }
  constexpr void erase(char t) { bits_[index(t) / 64] &= ~bit(t); }
  constexpr bool contains(char t) const { return (bits_[index(t) / 64] & bit(t)) != 0; }

 private:
  static constexpr unsigned index(char t) { return static_cast<unsigned char>(t); }
  static constexpr std::uint64_t bit(char t) { return std::uint64_t{1} << (index(t) % 64); }
  std::array<std::uint64_t, 4> bits_{};
};

/// What `Framer::put` found at the front of its input.
enum class FrameKind : std::uint8_t {
  NeedMore,  ///< not enough bytes to decide; keep them and read more
  Whole,     ///< `bytes` is one complete message, header included
  Streamed,  ///< `bytes` is a piece of a message that is forwarded as it arrives
};

struct Frame {
  FrameKind kind = FrameKind::NeedMore;
  char type = 0;             ///< type byte of the message `bytes` belongs to
  std::string_view bytes;    ///< the prefix of the input this result covers
  bool starts_message = false;  ///< Streamed: `bytes` begins with the header
  bool ends_message = false;    ///< Streamed: `bytes` completes the message
  std::error_code ec;        ///< set on malformed input; the stream is then unusable

  /// The message body (after the header) of a Whole frame.
  std::string_view body() const { return bytes.substr(header_size); }
};

/// Frames typed messages (everything after the startup packet) in one
/// direction. Messages whose type is in `whole_types` are returned whole and
/// are bounded by `max_message_bytes`; all others are streamed in pieces of
/// whatever size arrives, so a 1 GiB DataRow never has to be buffered.
class Framer {
 public:
  Framer(TypeSet whole_types, std::size_t max_message_bytes)
      : whole_types_(whole_types), max_message_bytes_(max_message_bytes) {}

  /// Examines the front of `input`. On Whole or Streamed the caller consumes
  /// `bytes.size()` bytes and calls again with the rest.
  Frame put(std::string_view input);

  /// True while a streamed message has body bytes still to come.
  bool in_message() const { return remaining_ != 0; }

 private:
  TypeSet whole_types_;
  std::size_t max_message_bytes_;
  std::size_t remaining_ = 0;  // body bytes of the current streamed message
  char streamed_type_ = 0;
};

/// The kind of packet a client may send before the typed-message phase.
enum class StartupKind : std::uint8_t {
  Startup,       ///< StartupMessage (protocol 3.x)
  SslRequest,    ///< SSLRequest
  GssEncRequest, ///< GSSENCRequest
  Cancel,        ///< CancelRequest
};

/// Int32 codes of the startup phase, under PostgreSQL's own names.
inline constexpr std::uint32_t protocol_version_3_0 = 196608;  // 3 << 16
inline constexpr std::uint32_t cancel_request_code = 80877102;  // 1234 << 16 | 5678
inline constexpr std::uint32_t negotiate_ssl_code = 80877103;   // 1234 << 16 | 5679
inline constexpr std::uint32_t negotiate_gss_code = 80877104;   // 1234 << 16 | 5680

struct StartupFrame {
  bool complete = false;     ///< false: need more bytes (when ec is clear)
  StartupKind kind = StartupKind::Startup;
  std::string_view bytes;    ///< the whole packet: Int32 length, Int32 code, payload
  std::error_code ec;

  std::string_view payload() const { return bytes.substr(8); }
};

/// Frames one untyped startup-phase packet: Int32(length) Int32(code) payload.
StartupFrame frame_startup(std::string_view input);

/// Reads a big-endian Int32 from the first four bytes of `p`.
inline std::uint32_t read_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | u[3];
}

}  // namespace pgwarden::protocol
