#pragma once
/// pgwarden logging in to the upstream as a role of its own, for a request
/// of its own (auth_query's auth_user, catalog_lookup's user): the login
/// exchange, answered with what pgwarden holds for that role.

#include <string>
#include <string_view>

#include "auth/scram.hpp"
#include "protocol/framer.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/net/message_reader.hpp"
#include "proxy/net/stream.hpp"

namespace pgwarden::proxy {

/// What pgwarden holds for a role it logs in as: a password (answers
/// cleartext, md5 and SCRAM-SHA-256), or only an md5 secret (answers md5).
/// Neither: the server must trust the role or take upstream.cert.
struct ServiceCredential {
  std::string password;
  std::string md5_secret;  ///< "md5..." as PostgreSQL stores it; derived from the password when empty
};

/// Reads the server's answers to the StartupMessage already sent, answering
/// each authentication request `credential` can, until ReadyForQuery.
/// Returns "" once logged in, else why not. `who` names the role in the
/// reasons ("auth_user app").
awaitable<std::string> log_in_service_role(Stream& s, MessageReader& reader, const std::string& user,
                                           std::string_view who, const ServiceCredential& credential,
                                           const auth::UpstreamChannel& channel);

/// An ErrorResponse as "message (SQLSTATE xxxxx)".
std::string describe_server_error(const protocol::Frame& f);

}  // namespace pgwarden::proxy
