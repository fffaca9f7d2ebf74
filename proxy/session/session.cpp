#include "proxy/session/session.hpp"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "audit/json_writer.hpp"
#include "policy/startup_settings.hpp"
#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"

namespace pgwarden::proxy {

using namespace asio::experimental::awaitable_operators;
namespace pq = protocol;

namespace {

/// Frontend messages arrive whole except CopyData, which streams.
constexpr pq::TypeSet client_whole_types = pq::TypeSet::all_except({'d'});
/// Backend messages the session must read; the rest (DataRow, RowDescription,
/// CopyData, notices ...) stream through in pieces.
constexpr pq::TypeSet server_whole_types = {'R', 'K', 'S', 'Z', 'C', 'E', 'G', 'H', 'W', 'v', 'I', 's'};
/// Largest message accepted from a client before it has authenticated.
constexpr std::size_t max_unauthenticated_message = 64 * 1024;
/// Largest backend message the session buffers whole (they are all small).
constexpr std::size_t max_backend_inspected_message = 64u << 20;
/// First byte of a TLS handshake record: a ClientHello sent without an
/// SSLRequest (direct TLS). No startup packet can begin with it, since its
/// length would exceed any packet PostgreSQL accepts.
constexpr char tls_handshake_record = 0x16;
}  // namespace

namespace {

/// `bytes` random bytes as lowercase hex.
std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  std::string out;
  audit::append_hex(out, raw);
  return out;
}

SessionAudit::Peer peer_of(const tcp::endpoint& peer) {
  return {random_hex(8), peer.address().to_string(), peer.port()};
}

}  // namespace

Session::Session(Stream client, tcp::endpoint peer, const SessionContext& ctx)
    : client_(std::move(client)),
      peer_(std::move(peer)),
      ctx_(ctx),
      client_tls_(ctx.tls ? ctx.tls->client() : nullptr),
      watchdog_timer_(client_.executor()),
      from_client_{ByteBuffer(8 * 1024),
                   pq::Framer(client_whole_types, std::min(ctx.max_message_bytes, max_unauthenticated_message)), {}},
      from_server_{ByteBuffer(16 * 1024), pq::Framer(server_whole_types, max_backend_inspected_message), {}},
      policy_(*ctx.config),
      counters_(*ctx.metrics),
      audit_(ctx.audit, *ctx.metrics, policy_.facts(), peer_of(peer_)),
      gate_(policy_, *ctx.classify_cache, *this, "pgwarden_denied_" + random_hex(8), audit_.gate_options()) {}

Session::~Session() {
  ctx_.cancels->remove(lease_.client_key);
}

void Session::refresh_config() {
  if (policy_.refresh()) counters_.rules_changed();
}

awaitable<void> Session::run() {
  auto result = co_await (serve() || watchdog());
  const CloseReason reason = std::visit([](CloseReason r) { return r; }, result);
  if (reason == CloseReason::StartupTimeout) {
    fail(pq::sqlstate::query_canceled, "canceling authentication due to timeout");
  }
  // A write cut off part-way leaves the client mid-message: no error after it.
  if (!fatal_.empty() && !writing_to_client_) co_await send_fatal();
  // The end is recorded before the client can see the close, so a client
  // that reconnects at once finds its next session after this one in the log.
  audit_.session_end(to_string(reason), {std::chrono::steady_clock::now() - started_, counters_.bytes_from_client(),
                                         counters_.bytes_to_client()});  // nothing for a CancelRequest
  client_.close();
  if (server_) server_->close();
  counters_.count_close(reason);
  if (reason != CloseReason::CancelRequest && audit_.has_backlog()) co_await audit_.settle();
  log_close(reason);
}

awaitable<CloseReason> Session::watchdog() {
  using clock = std::chrono::steady_clock;
  for (;;) {
    if (drain_now()) co_return shut_down();
    if (drain_due()) stop_reading_client();  // relay_client ends the session
    if (gate_.ready_seen() == 0) {
      if (clock::now() - started_ >= ctx_.startup_timeout) co_return CloseReason::StartupTimeout;
      watchdog_timer_.expires_at(started_ + ctx_.startup_timeout);
    } else if (!arm_idle_timer()) {
      fail(pq::sqlstate::idle_session_timeout, "terminating connection due to idle-session timeout", CloseReason::IdleTimeout);
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
  const auto timeout = std::chrono::duration_cast<clock::duration>(policy_.config().limits.idle_timeout);
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
  if (login_.proxy_auth) {
    const CloseReason authenticated = co_await authenticate_client();
    if (authenticated != CloseReason::None) co_return authenticated;
  }
  if (pooling()) {
    const auto settings = UpstreamPool::settings_of(policy_.config().upstream);
    if (auto pooled = ctx_.pools->take(login_.startup_packet, settings, client_.executor())) {
      lease_.pool_key = std::move(login_.startup_packet);
      const CloseReason adopted = co_await adopt_pooled(std::move(*pooled));
      if (adopted != CloseReason::None) co_return adopted;
      counters_.count_connection(ConnectionResult::Accepted);
      co_return co_await relay();
    }
  }

  upstream_tls_ = ctx_.tls ? ctx_.tls->upstream() : nullptr;
  UpstreamConnection conn = co_await connect_upstream(ctx_.upstream, upstream_tls_);
  if (conn.handshake != UpstreamConnection::Handshake::None) {
    ctx_.metrics->count_tls_handshake(TlsSide::Upstream, conn.handshake == UpstreamConnection::Handshake::Ok
                                                             ? TlsResult::Ok
                                                             : TlsResult::Error);
  }
  if (!conn.stream) {
    ctx_.metrics->upstream_connect_errors.increment();
    spdlog::warn("upstream {} unavailable: {}", ctx_.upstream.describe(), conn.error);
    co_return fail(pq::sqlstate::connection_failure, "pgwarden could not connect to the upstream server at " +
                                ctx_.upstream.describe() + ": " + conn.error,
                   CloseReason::UpstreamUnavailable);
  }
  server_.emplace(std::move(*conn.stream));

  auto [ec, n] = co_await server_->write(asio::buffer(login_.startup_packet));
  if (ec) co_return CloseReason::ServerWriteError;
  if (pooling()) lease_.pool_key = std::move(login_.startup_packet);
  std::string().swap(login_.startup_packet);
  if (login_.proxy_auth) {
    const CloseReason login = co_await login_upstream(std::move(conn.server_certificate));
    if (login != CloseReason::None) co_return login;
  }
  co_return co_await relay();  // the connection counts as accepted at its first ReadyForQuery
}

awaitable<bool> Session::read_client(std::size_t min_free) {
  auto [ec, n] = co_await client_.read_some(from_client_.in.prepare(min_free));
  if (ec) co_return false;
  from_client_.in.commit(n);
  counters_.from_client(n);
  co_return true;
}

awaitable<CloseReason> Session::negotiate() {
  // SSLRequest and GSSENCRequest may each precede the StartupMessage once;
  // a TLS ClientHello in place of the first packet is direct TLS.
  for (int round = 0; round < 3; ++round) {
    pq::StartupFrame packet;
    for (;;) {
      if (round == 0 && !from_client_.in.empty() && from_client_.in.data()[0] == tls_handshake_record) {
        const CloseReason tls = co_await start_tls(true);
        if (tls != CloseReason::None) co_return tls;
        break;
      }
      packet = pq::frame_startup(from_client_.in.data());
      if (packet.ec || packet.complete) break;
      if (!co_await read_client(64)) co_return CloseReason::ClientClosed;
    }
    if (client_.is_tls() && round == 0) continue;  // direct TLS: the startup packet follows inside
    if (packet.ec) co_return refuse_startup_packet(packet.ec);
    switch (packet.kind) {
      case pq::StartupKind::SslRequest:
      case pq::StartupKind::GssEncRequest: {
        if (client_.is_tls()) co_return fail(pq::sqlstate::protocol_violation, "unsupported frontend protocol: encryption was already negotiated");
        from_client_.in.consume(packet.bytes.size());
        // Bytes sent before our answer could not have been encrypted: a
        // client that pipelines them is injecting (CVE-2021-23214).
        if (!from_client_.in.empty()) {
          co_return fail(pq::sqlstate::protocol_violation, "received unencrypted data after SSL request", CloseReason::StartupRefused);
        }
        if (packet.kind == pq::StartupKind::SslRequest && client_tls_) {
          const CloseReason tls = co_await start_tls(false);
          if (tls != CloseReason::None) co_return tls;
          continue;
        }
        auto [ec, n] = co_await client_.write(asio::buffer("N", 1));
        counters_.to_client(n);
        if (ec) co_return CloseReason::ClientWriteError;
        if (!from_client_.in.empty()) {
          co_return fail(pq::sqlstate::protocol_violation, "received unencrypted data after SSL request", CloseReason::StartupRefused);
        }
        continue;
      }
      case pq::StartupKind::Cancel:
        co_await cancel_upstream(packet.bytes);
        co_return CloseReason::CancelRequest;
      case pq::StartupKind::Startup:
        break;
    }
    if (client_tls_ && client_tls_->required && !client_.is_tls()) {
      co_return fail(pq::sqlstate::invalid_authorization_specification, "pgwarden accepts only TLS connections (tls.required); connect with sslmode=require "
                     "or stronger", CloseReason::StartupRefused);
    }
    pq::StartupMessage startup;
    if (auto ec = pq::parse(packet.bytes, startup)) {
      co_return fail(pq::sqlstate::protocol_violation, "invalid startup packet: " + ec.message());
    }
    if (const CloseReason refused = check_connect(startup); refused != CloseReason::None) co_return refused;
    login_.proxy_auth = policy_.config().auth.mode == config::AuthMode::Scram;
    prepare_upstream_startup(startup, packet.bytes);
    from_client_.in.consume(packet.bytes.size());
    co_return CloseReason::None;
  }
  co_return fail(pq::sqlstate::protocol_violation, "too many negotiation requests before the startup packet");
}

CloseReason Session::refuse_startup_packet(std::error_code ec) {
  // As PostgreSQL's ProcessStartupPacket: a protocol it does not speak gets
  // FATAL 0A000; a length it cannot accept is reported in its own log only
  // and the connection closed without a reply. So a client that sends
  // Terminate or anything else before its startup packet sees a clean close.
  if (ec == pq::Error::UnsupportedProtocol && from_client_.in.size() >= 8) {
    const std::uint32_t version = pq::read_u32(from_client_.in.data().data() + 4);
    return fail(pq::sqlstate::feature_not_supported, "unsupported frontend protocol " + std::to_string(version >> 16) + "." +
                             std::to_string(version & 0xffff) + ": server supports 3.0 to 3.2",
                CloseReason::StartupRefused);
  }
  spdlog::info("client {}:{} sent an invalid startup packet: {}", peer_.address().to_string(), peer_.port(),
               ec == pq::Error::BadLength || ec == pq::Error::MessageTooLarge ? "invalid length of startup packet"
                                                                              : ec.message());
  return CloseReason::ClientProtocolError;
}

awaitable<CloseReason> Session::start_tls(bool direct) {
  if (!client_tls_) {
    // Direct TLS to a pgwarden without a certificate: nothing can answer it.
    co_return CloseReason::StartupRefused;
  }
  if (!direct) {
    auto [ec, n] = co_await client_.write(asio::buffer("S", 1));
    counters_.to_client(n);
    if (ec) co_return CloseReason::ClientWriteError;
  }
  tcp::socket* socket = client_.tcp_socket();
  if (!socket) co_return CloseReason::StartupRefused;
  TlsStream tls(std::move(*socket), client_tls_->context);
  // Direct TLS: the ClientHello is already in our buffer; hand it over.
  const std::string_view early = direct ? from_client_.in.data() : std::string_view{};
  auto [ec, used] = co_await tls.async_handshake(asio::ssl::stream_base::server,
                                                 asio::buffer(early.data(), early.size()), use_nothrow);
  from_client_.in.consume(from_client_.in.size());
  ctx_.metrics->count_tls_handshake(TlsSide::Client, ec ? TlsResult::Error : TlsResult::Ok);
  if (ec) {
    spdlog::info("TLS handshake with client {}:{} failed: {}", peer_.address().to_string(), peer_.port(),
                 describe_tls_failure(ec, tls.native_handle()));
    client_ = Stream(std::move(tls));
    co_return CloseReason::TlsHandshakeFailed;
  }
  client_ = Stream(std::move(tls));
  if (direct) {
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(client_.tls()->native_handle(), &alpn, &alpn_len);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != alpn_postgresql) {
      co_return fail(pq::sqlstate::protocol_violation, "received direct SSL connection request without ALPN protocol negotiation extension",
                     CloseReason::StartupRefused);
    }
  }
  co_return CloseReason::None;
}

awaitable<void> Session::cancel_upstream(std::string_view packet) {
  pq::CancelRequest request;
  if (pq::parse(packet, request)) co_return;
  auto target = ctx_.cancels->find(static_cast<std::uint32_t>(request.process_id), request.secret_key);
  audit_.cancel(target ? &target->session : nullptr);
  if (!target) {
    spdlog::debug("cancel request for unknown session {}", request.process_id);
    co_return;
  }
  std::shared_ptr<UpstreamTls> tls = ctx_.tls ? ctx_.tls->upstream() : nullptr;  // named: see authenticate_client
  UpstreamConnection conn = co_await connect_upstream(target->upstream, std::move(tls));
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
  policy::SessionFacts& facts = policy_.edit_facts();
  bool replication = false;
  for (const auto& [name, value] : startup.parameters) {
    if (name == "user") facts.user = value;
    else if (name == "database") facts.database = value;
    else if (name == "application_name") facts.application_name = value;
    else if (name == "replication") replication = value != "false" && value != "off" && value != "0" && value != "no";
  }
  if (refusal_) {
    counters_.set_startup_result(ConnectionResult::RefusedLimit);
    return fail(refusal_->sqlstate, refusal_->message, CloseReason::StartupRefused);
  }
  if (facts.user.empty()) return fail(pq::sqlstate::invalid_authorization_specification, "no PostgreSQL user name specified in startup packet");
  if (facts.database.empty()) facts.database = facts.user;
  facts.client = policy::IpAddress::parse(peer_.address().to_string());
  facts.protocol = replication ? policy::ProtocolPath::Replication : policy::ProtocolPath::Simple;
  facts.now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  policy_.facts_changed();
  audit_.set_tls(client_.is_tls());
  audit_.event(audit::event::session_start);
  const policy::Decision d = policy::evaluate_connect(policy_.rules(), facts);
  decided(d);
  if (d.denied()) {
    const std::string_view sqlstate = d.sqlstate.empty() ? pq::sqlstate::invalid_authorization_specification : d.sqlstate;
    counters_.set_startup_result(ConnectionResult::RefusedPolicy);
    counters_.count_denial(policy_.rules(), d);
    audit_.event(audit::event::auth_fail, "connect_rule", sqlstate, d.message);
    if (d.alert) raise_alert(nullptr, d.rule_name(), true, d.dry_run);
    return fail(sqlstate, d.message, CloseReason::StartupRefused);
  }
  facts.read_only = d.read_only;  // decided before the startup settings, which must not undo it
  // The settings the StartupMessage makes (`role=admin`, `options=-c
  // role=admin`) are decided as the SETs they are, so a session cannot start
  // as what it could not SET to.
  for (const policy::StartupSetting& setting : policy::startup_settings(startup.parameters)) {
    const policy::Decision s = policy_.evaluate(policy::classify(setting));
    decided(s);
    if (!s.denied()) continue;
    counters_.set_startup_result(ConnectionResult::RefusedPolicy);
    counters_.count_denial(policy_.rules(), s);
    const std::string message = std::string(s.message) + " (startup parameter " + setting.source + ")";
    const std::string_view sqlstate = s.sqlstate.empty() ? pq::sqlstate::insufficient_privilege : s.sqlstate;
    audit_.event(audit::event::auth_fail, "startup_setting", sqlstate, message);
    return fail(sqlstate, message, CloseReason::StartupRefused);
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
  auto written = co_await (client_.write(asio::buffer(fatal_)) || timer.async_wait(use_nothrow));
  if (written.index() == 0) counters_.to_client(std::get<1>(std::get<0>(written)));
}

}  // namespace pgwarden::proxy
