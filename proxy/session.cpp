#include "proxy/session.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"

namespace pgwarden::proxy {

using namespace asio::experimental::awaitable_operators;
namespace pq = protocol;

namespace {

/// Frontend messages arrive whole except CopyData, which streams.
constexpr pq::TypeSet client_whole_types = pq::TypeSet::all_except({'d'});
/// Backend messages the session must read; the rest (DataRow, RowDescription,
/// CopyData, notices ...) stream through in pieces.
constexpr pq::TypeSet server_whole_types = {'R', 'K', 'S', 'Z', 'C', 'E', 'G', 'H', 'W', 'v', 'I'};
/// Largest message accepted from a client before it has authenticated.
constexpr std::size_t max_unauthenticated_message = 64 * 1024;
/// Largest backend message the session buffers whole (they are all small).
constexpr std::size_t max_backend_inspected_message = 64u << 20;
}  // namespace

Session::Session(Stream client, tcp::endpoint peer, const SessionContext& ctx)
    : client_(std::move(client)),
      peer_(std::move(peer)),
      ctx_(ctx),
      watchdog_timer_(client_.executor()),
      client_framer_(client_whole_types, std::min(ctx.max_message_bytes, max_unauthenticated_message)),
      server_framer_(server_whole_types, max_backend_inspected_message) {
  unsigned char nonce[8];
  RAND_bytes(nonce, sizeof nonce);
  static constexpr char hex[] = "0123456789abcdef";
  marker_ = "pgwarden_denied_";
  for (unsigned char b : nonce) {
    marker_ += hex[b >> 4];
    marker_ += hex[b & 15];
  }
  marker_statement_ = "SELECT " + marker_;
  refresh_config();
}

Session::~Session() {
  if (client_process_id_ != 0) ctx_.cancels->remove(client_process_id_);
}

awaitable<void> Session::run() {
  auto result = co_await (serve() || watchdog());
  const CloseReason reason = std::visit([](CloseReason r) { return r; }, result);
  if (reason == CloseReason::StartupTimeout) {
    fail("57014", "canceling authentication due to timeout");
  }
  // A write cut off part-way leaves the client mid-message: no error after it.
  if (!fatal_.empty() && !writing_to_client_) co_await send_fatal();
  client_.close();
  if (server_) server_->close();
  count_close(reason);
  if (reason == CloseReason::CancelRequest) co_return;
  log_close(reason);
}

awaitable<CloseReason> Session::watchdog() {
  using clock = std::chrono::steady_clock;
  for (;;) {
    if (drain_due()) co_return shut_down();
    if (ready_seen_ == 0) {
      if (clock::now() - started_ >= ctx_.startup_timeout) co_return CloseReason::StartupTimeout;
      watchdog_timer_.expires_at(started_ + ctx_.startup_timeout);
    } else if (!arm_idle_timer()) {
      fail("57P05", "terminating connection due to idle-session timeout", CloseReason::IdleTimeout);
      co_return CloseReason::IdleTimeout;
    }
    auto [ec] = co_await watchdog_timer_.async_wait(use_nothrow);
    if (ec && !watchdog_poked_) co_return CloseReason::Shutdown;
    watchdog_poked_ = false;
  }
}

bool Session::arm_idle_timer() {
  // Like PostgreSQL's idle_session_timeout: only a session idle outside a
  // transaction (last ReadyForQuery 'I', nothing sent since) times out.
  using clock = std::chrono::steady_clock;
  const auto timeout = std::chrono::duration_cast<clock::duration>(config_->limits.idle_timeout);
  if (timeout.count() <= 0) {
    watchdog_timer_.expires_at(clock::time_point::max());
    return true;
  }
  const bool idle = idle_since_ != clock::time_point::max();
  if (idle && clock::now() - idle_since_ >= timeout) return false;
  watchdog_timer_.expires_at((idle ? idle_since_ : clock::now()) + timeout);
  return true;
}

void Session::poke_watchdog() {
  watchdog_poked_ = true;
  watchdog_timer_.cancel();
}

awaitable<CloseReason> Session::serve() {
  const CloseReason negotiated = co_await negotiate();
  if (negotiated != CloseReason::None) co_return negotiated;

  UpstreamConnection conn = co_await connect_upstream(ctx_.upstream);
  if (!conn.stream) {
    ctx_.metrics->upstream_connect_errors.increment();
    spdlog::warn("upstream {} unavailable: {}", ctx_.upstream.describe(), conn.error);
    co_return fail("08006", "pgwarden could not connect to the upstream server at " +
                                ctx_.upstream.describe() + ": " + conn.error,
                   CloseReason::UpstreamUnavailable);
  }
  server_.emplace(std::move(*conn.stream));

  // Forward the StartupMessage exactly as the client sent it.
  const auto packet = pq::frame_startup(client_in_.data());
  auto [ec, n] = co_await server_->write(asio::buffer(packet.bytes.data(), packet.bytes.size()));
  if (ec) co_return CloseReason::ServerWriteError;
  client_in_.consume(packet.bytes.size());
  count_connection(ConnectionResult::Accepted);

  auto result = co_await (relay_client() || relay_server());
  co_return std::visit([](CloseReason r) { return r; }, result);
}

awaitable<bool> Session::read_client(std::size_t min_free) {
  auto [ec, n] = co_await client_.read_some(client_in_.prepare(min_free));
  if (ec) co_return false;
  client_in_.commit(n);
  bytes_from_client_ += n;
  ctx_.metrics->bytes_from_client.increment(n);
  co_return true;
}

awaitable<CloseReason> Session::negotiate() {
  // SSLRequest and GSSENCRequest may each precede the StartupMessage once.
  for (int round = 0; round < 3; ++round) {
    pq::StartupFrame packet;
    for (;;) {
      packet = pq::frame_startup(client_in_.data());
      if (packet.ec || packet.complete) break;
      if (!co_await read_client(64)) co_return CloseReason::ClientClosed;
    }
    if (packet.ec) {
      co_return fail("08P01", "invalid startup packet: " + packet.ec.message());
    }
    switch (packet.kind) {
      case pq::StartupKind::SslRequest:
      case pq::StartupKind::GssEncRequest: {
        client_in_.consume(packet.bytes.size());
        auto [ec, n] = co_await client_.write(asio::buffer("N", 1));
        if (ec) co_return CloseReason::ClientWriteError;
        // Bytes sent before our answer could not have been encrypted: a
        // client that pipelines them is injecting (CVE-2021-23214).
        if (!client_in_.empty()) {
          co_return fail("08P01", "received unencrypted data after SSL request",
                         CloseReason::StartupRefused);
        }
        continue;
      }
      case pq::StartupKind::Cancel:
        co_await cancel_upstream(packet.bytes);
        co_return CloseReason::CancelRequest;
      case pq::StartupKind::Startup:
        break;
    }
    pq::StartupMessage startup;
    if (auto ec = pq::parse(packet.bytes, startup)) {
      co_return fail("08P01", "invalid startup packet: " + ec.message());
    }
    co_return check_connect(startup);
  }
  co_return fail("08P01", "too many negotiation requests before the startup packet");
}

awaitable<void> Session::cancel_upstream(std::string_view packet) {
  pq::CancelRequest request;
  if (pq::parse(packet, request)) co_return;
  auto target = ctx_.cancels->find(static_cast<std::uint32_t>(request.process_id), request.secret_key);
  if (!target) {
    spdlog::debug("cancel request for unknown session {}", request.process_id);
    co_return;
  }
  UpstreamConnection conn = co_await connect_upstream(target->upstream);
  if (!conn.stream) {
    ctx_.metrics->upstream_connect_errors.increment();
    spdlog::warn("could not forward cancel to {}: {}", target->upstream.describe(), conn.error);
    co_return;
  }
  std::string out;
  pq::encode(pq::CancelRequest{static_cast<std::int32_t>(target->process_id), target->secret_key}, out);
  co_await conn.stream->write(asio::buffer(out));
  // PostgreSQL answers a cancel by closing; wait for that so the request is
  // processed before our client sees its own connection close.
  char byte;
  co_await conn.stream->read_some(asio::buffer(&byte, 1));
}

CloseReason Session::check_connect(const pq::StartupMessage& startup) {
  bool replication = false;
  for (const auto& [name, value] : startup.parameters) {
    if (name == "user") facts_.user = value;
    else if (name == "database") facts_.database = value;
    else if (name == "application_name") facts_.application_name = value;
    else if (name == "replication") replication = value != "false" && value != "off" && value != "0" && value != "no";
  }
  if (!refusal_sqlstate_.empty()) {
    startup_result_ = ConnectionResult::RefusedLimit;
    return fail(refusal_sqlstate_, refusal_message_, CloseReason::StartupRefused);
  }
  if (facts_.user.empty()) return fail("28000", "no PostgreSQL user name specified in startup packet");
  if (facts_.database.empty()) facts_.database = facts_.user;
  facts_.client = policy::IpAddress::parse(peer_.address().to_string());
  facts_.protocol = replication ? policy::ProtocolPath::Replication : policy::ProtocolPath::Simple;
  facts_.now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  rule_mask_ = policy::session_mask(config_->policy, facts_);
  const policy::Decision d = policy::evaluate_connect(config_->policy, facts_);
  note_decision(d);
  if (d.denied()) {
    startup_result_ = ConnectionResult::RefusedPolicy;
    count_denial(d);
    return fail(d.sqlstate.empty() ? "28000" : d.sqlstate, d.message, CloseReason::StartupRefused);
  }
  return CloseReason::None;
}

CloseReason Session::fail(std::string_view sqlstate, std::string_view message, CloseReason reason) {
  if (fatal_.empty()) pq::append_error(fatal_, "FATAL", sqlstate, message);
  return reason;
}

awaitable<void> Session::send_fatal() {
  using namespace std::chrono_literals;
  // The client may not be reading; give the error a moment, not forever.
  asio::steady_timer timer(co_await asio::this_coro::executor, 1s);
  co_await (client_.write(asio::buffer(fatal_)) || timer.async_wait(use_nothrow));
}

}  // namespace pgwarden::proxy
