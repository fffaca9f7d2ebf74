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
  return proxy_auth_ && ctx_.pools && config_->upstream.pool_size > 0 && !drain_;
}

bool Session::poolable() const {
  // Idle outside a transaction with every request answered, nothing the
  // server still owes, and no denial or audit record waiting on it.
  return pooling() && server_ && ready_status_ == 'I' && ready_seen_ == sync_points_sent_ && !unsynced_ &&
         server_in_.empty() && denials_.empty() && pending_.empty() && server_process_id_ != 0;
}

awaitable<CloseReason> Session::adopt_pooled(PooledServer pooled) {
  server_.emplace(std::move(pooled.stream));
  upstream_tls_ = std::move(pooled.tls);
  server_params_ = std::move(pooled.parameters);
  for (const auto& [name, value] : server_params_) {
    if (name == "client_encoding" || name == "standard_conforming_strings") note_parameter(name, value);
  }
  server_process_id_ = pooled.process_id;
  server_secret_key_ = std::move(pooled.secret_key);
  if (const CloseReason admitted = co_await admit_client(); admitted != CloseReason::None) co_return admitted;
  std::string out;
  for (const auto& [name, value] : server_params_) pq::encode(pq::ParameterStatus{name, value}, out);
  out += issue_backend_key(server_process_id_, server_secret_key_);
  pq::encode(pq::ReadyForQuery{'I'}, out);
  auto [ec, n] = co_await client_.write(asio::buffer(out));
  if (ec) co_return CloseReason::ClientWriteError;
  // As if the server had sent these: the startup's sync point is answered.
  ready_status_ = 'I';
  poke_watchdog();  // from startup timeout to idle timeout
  on_ready_for_query();
  co_return CloseReason::None;
}

awaitable<CloseReason> Session::relay() {
  auto result = co_await (relay_client() || relay_server());
  CloseReason reason = std::visit([](CloseReason r) { return r; }, result);
  // A startup the server refused ends the same way whichever side closed
  // first after its error.
  if (ready_seen_ == 0 && (startup_result_ == ConnectionResult::RefusedServer ||
                           startup_result_ == ConnectionResult::AuthenticationFailed)) {
    reason = CloseReason::ServerRefused;
  }
  // held_for_pool_: its Terminate was kept from the server; otherwise only a
  // client that closed without one leaves the server connection usable.
  const bool client_left = held_for_pool_ || (reason == CloseReason::ClientClosed && !terminated_);
  if (client_left && poolable()) return_to_pool();
  co_return reason;
}

void Session::return_to_pool() {
  PooledServer s{std::move(*server_), std::move(upstream_tls_), std::move(server_params_), server_process_id_,
                 std::move(server_secret_key_), {}};
  server_.reset();
  ctx_.pools->give_back(std::move(pool_key_), std::move(s), UpstreamPool::settings_of(config_->upstream));
}

}  // namespace pgwarden::proxy
