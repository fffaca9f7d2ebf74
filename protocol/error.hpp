#pragma once
/// Error codes of the sans-I/O PostgreSQL codec. Bytes from the network that
/// break the protocol are ordinary input: they produce one of these codes.

#include <string>
#include <system_error>

namespace pgwarden::protocol {

enum class Error {
  BadLength = 1,          ///< length field below its minimum or negative
  MessageTooLarge,        ///< length above the configured or protocol maximum
  Truncated,              ///< a field runs past the end of its message
  TrailingBytes,          ///< bytes left over after the last field
  MissingTerminator,      ///< a C string without its NUL
  BadValue,               ///< a field holds a value the protocol does not allow
  UnexpectedType,         ///< a message type byte that is not valid here
  UnsupportedProtocol,    ///< a startup packet with a protocol version we do not speak
};

/// The category of every protocol::Error ("pgwarden.protocol").
const std::error_category& protocol_category() noexcept;

inline std::error_code make_error_code(Error e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}

}  // namespace pgwarden::protocol

template <>
struct std::is_error_code_enum<pgwarden::protocol::Error> : std::true_type {};
