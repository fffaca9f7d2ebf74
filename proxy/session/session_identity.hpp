#pragma once
/// Who a session is, as every audit record of it names it: an owned copy,
/// so a cancel request can name the session it stops after that session's
/// own state has moved on or gone.

#include <cstdint>
#include <string>

#include "audit/record.hpp"

namespace pgwarden::proxy {

struct SessionIdentity {
  std::string session_id;  ///< random, names the session in every record
  std::string user;
  std::string database;
  std::string application_name;
  std::string client_addr;  ///< the peer's address as text
  std::uint16_t client_port = 0;
  bool tls = false;

  /// Views of the members, valid while this identity lives.
  audit::SessionFields fields() const {
    audit::SessionFields f;
    f.session_id = session_id;
    f.user = user;
    f.database = database;
    f.application_name = application_name;
    f.client_addr = client_addr;
    f.client_port = client_port;
    f.tls = tls;
    return f;
  }
};

}  // namespace pgwarden::proxy
