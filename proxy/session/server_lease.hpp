#pragma once
/// The server connection a session holds: who the backend is (its own
/// BackendKeyData, and the key the client got in its place) and what a
/// pooled connection's next client must be told.

#include <cstdint>
#include <string>

#include "proxy/session/cancel_registry.hpp"
#include "proxy/session/upstream_pool.hpp"

namespace pgwarden::proxy {

struct ServerLease {
  ServerParameters parameters;  ///< ParameterStatus, current
  std::string pool_key;         ///< the StartupMessage the connection was logged in with
  bool held_for_pool = false;   ///< the client's Terminate was kept from the server
  std::int32_t process_id = 0;  ///< the backend's own BackendKeyData
  std::string secret_key;
  CancelRegistry::ClientKey client_key;  ///< the BackendKeyData the client got; empty key until issued
};

}  // namespace pgwarden::proxy
