// Session pooling: with auth: scram, a server connection this session
// logged into goes back to its event loop's pool when the client leaves
// cleanly, and a new client of the same user, database and startup
// parameters takes one from there instead of connecting and logging in.
//
// The new client gets what the server told the first one at startup, as
// current as the connection's own ParameterStatus messages made it, a
// BackendKeyData of its own (mapped to the backend's), and ReadyForQuery.

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_pool.hpp"

namespace pgwarden::proxy {

using namespace asio::experimental::awaitable_operators;
namespace pq = protocol;

bool Session::pooling() const {
  return login_.proxy_auth && ctx_.pools && policy_.config().upstream.pool_size > 0 && !drain_;
}

bool Session::poolable() const {
  // Idle outside a transaction with every request answered, nothing the
  // server still owes, and no denial or audit record waiting on it.
  return pooling() && server_ && gate_.at_boundary() && from_server_.in.empty() && gate_.no_denials_pending() &&
         audit_.idle() && lease_.process_id != 0;
}

awaitable<CloseReason> Session::adopt_pooled(PooledServer pooled) {
  server_.emplace(std::move(pooled.stream));
  upstream_tls_ = std::move(pooled.tls);
  lease_.parameters = std::move(pooled.parameters);
  for (const auto& [name, value] : lease_.parameters) {
    if (name == "client_encoding" || name == "standard_conforming_strings") note_parameter(name, value);
  }
  lease_.process_id = pooled.process_id;
  lease_.secret_key = std::move(pooled.secret_key);
  if (const CloseReason admitted = co_await admit_client(); admitted != CloseReason::None) co_return admitted;
  std::string out;
  for (const auto& [name, value] : lease_.parameters) pq::encode(pq::ParameterStatus{name, value}, out);
  out += issue_backend_key(lease_.process_id, lease_.secret_key);
  pq::encode(pq::ReadyForQuery{'I'}, out);
  auto [ec, n] = co_await client_.write(asio::buffer(out));
  if (ec) co_return CloseReason::ClientWriteError;
  // As if the server had sent these: the startup's sync point is answered.
  poke_watchdog();  // from startup timeout to idle timeout
  on_ready_for_query('I');
  co_return CloseReason::None;
}

awaitable<CloseReason> Session::relay() {
  auto result = co_await (relay_client() || relay_server());
  CloseReason reason = std::visit([](CloseReason r) { return r; }, result);
  // A startup the server refused ends the same way whichever side closed
  // first after its error.
  const auto startup = counters_.startup_result();
  if (gate_.ready_seen() == 0 &&
      (startup == ConnectionResult::RefusedServer || startup == ConnectionResult::AuthenticationFailed)) {
    reason = CloseReason::ServerRefused;
  }
  // lease_.held_for_pool: its Terminate was kept from the server; otherwise only a
  // client that closed without one leaves the server connection usable.
  const bool client_left = lease_.held_for_pool || (reason == CloseReason::ClientClosed && !terminated_);
  if (client_left && poolable()) return_to_pool();
  co_return reason;
}

void Session::return_to_pool() {
  PooledServer s{std::move(*server_), std::move(upstream_tls_), std::move(lease_.parameters), lease_.process_id,
                 std::move(lease_.secret_key), {}};
  server_.reset();
  ctx_.pools->give_back(std::move(lease_.pool_key), std::move(s), UpstreamPool::settings_of(policy_.config().upstream));
}

}  // namespace pgwarden::proxy
