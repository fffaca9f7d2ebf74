#pragma once
/// One client connection and the upstream connection behind it (session
/// mode): startup negotiation, then one relay coroutine per direction that
/// forwards original bytes and inspects only the messages it must see.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/framer.hpp"
#include "proxy/asio.hpp"
#include "proxy/batch.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/close_reason.hpp"
#include "proxy/stream.hpp"
#include "proxy/upstream.hpp"

namespace pgwarden::proxy {

/// What every session of one server shares. Owned by the Server and
/// outliving every session.
struct SessionContext {
  UpstreamTarget upstream;
  std::size_t max_message_bytes = 64u << 20;
  std::chrono::milliseconds startup_timeout{15000};
  CancelRegistry* cancels = nullptr;
};

class Session {
 public:
  Session(Stream client, tcp::endpoint peer, const SessionContext& ctx);
  ~Session();

  /// Serves the connection until either side closes; never throws.
  awaitable<void> run();

 private:
  awaitable<CloseReason> serve();
  awaitable<CloseReason> negotiate();
  awaitable<bool> read_client(std::size_t min_free);
  awaitable<CloseReason> relay_client();
  awaitable<CloseReason> relay_server();
  awaitable<CloseReason> watchdog();
  awaitable<void> cancel_upstream(std::string_view packet);
  /// Records the FATAL error the client gets once both directions stopped.
  CloseReason fail(std::string_view sqlstate, std::string_view message,
                   CloseReason reason = CloseReason::ClientProtocolError);
  awaitable<void> send_fatal();

  CloseReason on_client_frame(const protocol::Frame& f, std::size_t offset, Batch& out);
  void on_server_frame(const protocol::Frame& f, std::size_t offset, Batch& out);
  bool rewrite_backend_key(const protocol::Frame& f, Batch& out);

  Stream client_;
  tcp::endpoint peer_;
  const SessionContext& ctx_;
  std::optional<Stream> server_;

  ByteBuffer client_in_{8 * 1024};
  ByteBuffer server_in_{16 * 1024};
  protocol::Framer client_framer_;
  protocol::Framer server_framer_;
  Batch client_out_;  // bytes going to the server
  Batch server_out_;  // bytes going to the client

  std::string fatal_;  // ErrorResponse to send before closing
  std::string user_, database_, application_;
  std::uint32_t client_process_id_ = 0;  // our BackendKeyData, once issued
  bool authenticated_ = false;  // AuthenticationOk seen
  bool ready_ = false;          // first ReadyForQuery seen
  bool terminated_ = false;     // client sent Terminate
  std::uint64_t bytes_from_client_ = 0;
  std::uint64_t bytes_from_server_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace pgwarden::proxy
