#include "protocol/error.hpp"

namespace pgwarden::protocol {
namespace {

class ProtocolCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pgwarden.protocol"; }

  std::string message(int ev) const override {
    switch (static_cast<Error>(ev)) {
      case Error::BadLength: return "invalid message length";
      case Error::MessageTooLarge: return "message exceeds the maximum size";
      case Error::Truncated: return "message truncated: a field runs past its end";
      case Error::TrailingBytes: return "unexpected bytes after the last field of a message";
      case Error::MissingTerminator: return "string field without terminator";
      case Error::BadValue: return "invalid field value";
      case Error::UnexpectedType: return "unexpected message type";
      case Error::UnsupportedProtocol: return "unsupported protocol version";
    }
    return "unknown protocol error";
  }
};

}  // namespace

const std::error_category& protocol_category() noexcept {
  static const ProtocolCategory category;
  return category;
}

}  // namespace pgwarden::protocol
