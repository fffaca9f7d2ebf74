#include "proxy/session/client_login.hpp"

#include "protocol/messages.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

std::string_view ClientLogin::method() const {
  if (scram) return scram->channel_bound() ? "scram-sha-256-plus" : "scram-sha-256";
  if (!md5_secret.empty()) return "md5";
  switch (auth_request) {
    case pq::AuthenticationOk::code: return "trust";
    case pq::AuthenticationMD5Password::code: return "md5";
    case pq::AuthenticationCleartextPassword::code: return "password";
    case pq::AuthenticationSASL::code:
    case pq::AuthenticationSASLContinue::code:
    case pq::AuthenticationSASLFinal::code: return "scram-sha-256";
    case -1: return "trust";  // the server asked for nothing
    default: return "other";
  }
}

}  // namespace pgwarden::proxy
