#pragma once
/// How a session's client logged in, and what pgwarden owes the server and
/// the client for it: with auth: scram pgwarden verifies the client itself
/// (SCRAM or md5) and logs in to the server with what the client proved;
/// with passthrough it relays the server's own exchange and notes only which
/// method the server asked for.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "auth/scram.hpp"

namespace pgwarden::proxy {

struct ClientLogin {
  bool proxy_auth = false;        ///< auth: scram (pgwarden authenticates the client)
  bool authenticated = false;     ///< AuthenticationOk seen
  std::string startup_packet;     ///< what the upstream gets as StartupMessage
  std::string negotiate_reply;    ///< NegotiateProtocolVersion pgwarden owes the client
  std::unique_ptr<auth::ScramServer> scram;  ///< the client's verified SCRAM exchange
  std::string md5_secret;         ///< or the md5 secret it proved
  std::string server_final;       ///< SASLFinal the client gets once the server let us in
  std::int32_t auth_request = -1;   ///< the server's last Authentication* code
  bool server_offered_plus = false;  ///< its AuthenticationSASL listed SCRAM-SHA-256-PLUS

  /// The method the audit record names: "scram-sha-256", "md5", "trust" ...
  std::string_view method() const;
};

}  // namespace pgwarden::proxy
