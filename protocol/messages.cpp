#include "protocol/messages.hpp"

namespace pgwarden::protocol {
namespace {

std::string_view find_field(const std::vector<ErrorField>& fields, char code) {
  for (const ErrorField& f : fields) {
    if (f.code == code) return f.value;
  }
  return {};
}

}  // namespace

std::string_view StartupMessage::parameter(std::string_view name) const {
  for (const auto& [key, value] : parameters) {
    if (key == name) return value;
  }
  return {};
}

std::string_view ErrorResponse::field(char code) const { return find_field(fields, code); }

std::string_view NoticeResponse::field(char code) const { return find_field(fields, code); }

}  // namespace pgwarden::protocol
