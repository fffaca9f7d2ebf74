// The two relay directions of a Session: client -> server and server -> client.
// Each reads whatever is available, walks the frames in it, and forwards the
// original bytes in one gathered write. Only the messages the session must
// act on are looked at; the rest stream through untouched.

#include <spdlog/spdlog.h>

#include <algorithm>

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/session/session.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

constexpr std::size_t min_read = 2048;
constexpr std::size_t max_read = 256 * 1024;
constexpr std::size_t idle_buffer_limit = 256 * 1024;
/// SQLSTATE class 28, invalid_authorization_specification: 28000, 28P01.
constexpr std::string_view sqlstate_class_invalid_authorization = "28";

bool is_frontend_type(char t) {
  using namespace pq::frontend_type;
  switch (t) {
    case Query: case Parse: case Bind: case Execute: case Describe: case Close: case Sync: case Flush:
    case FunctionCall: case CopyData: case CopyDone: case CopyFail: case Terminate: case Password:
      return true;
    default:
      return false;
  }
}

/// How many more bytes the front message needs before it is whole (at least 1).
std::size_t bytes_needed(const pq::Framer& framer, std::string_view pending) {
  if (framer.in_message()) return 1;
  if (pending.size() < pq::header_size) return pq::header_size - pending.size();
  const std::size_t total = std::size_t{pq::read_u32(pending.data() + 1)} + 1;
  return total > pending.size() ? total - pending.size() : 1;
}

/// Read size adapts: a read that fills the buffer doubles the next request.
std::size_t next_read_hint(std::size_t hint, std::size_t got, std::size_t offered) {
  if (got == offered) return std::min(hint * 2, max_read);
  return hint;
}

}  // namespace

awaitable<CloseReason> Session::relay_client() {
  std::size_t hint = min_read;
  for (;;) {
    refresh_config();
    if (!catalog_.awaited && login_.authenticated) co_await await_catalog();
    const std::string_view pending = from_client_.in.data();
    from_client_.out.reset(pending.data());
    std::size_t pos = 0;
    CloseReason stop = CloseReason::None;
    while (stop == CloseReason::None) {
      const pq::Frame f = from_client_.framer.put(pending.substr(pos));
      if (f.ec) {
        spdlog::warn("client {}:{} sent a malformed message: {}", peer_.address().to_string(),
                     peer_.port(), f.ec.message());
        co_return fail(pq::sqlstate::protocol_violation, "invalid frontend message: " + f.ec.message());
      }
      if (f.kind == pq::FrameKind::NeedMore) break;
      if (f.kind == pq::FrameKind::Streamed) {
        from_client_.out.forward(pos, f.bytes.size());
      } else {
        stop = on_client_frame(f, pos, from_client_.out);
      }
      pos += f.bytes.size();
    }
    if (stop != CloseReason::None && stop != CloseReason::ClientTerminate) co_return stop;
    if (audit_.waiting() && !co_await audit_.settle()) {
      // Synced: this batch's records are on disk before it goes upstream, or
      // it does not go. Closing the connection rolls back whatever the
      // client had open, as a crash of the server would.
      co_return fail(pq::sqlstate::io_error,
                     "pgwarden could not write the audit records of these statements, so they were not run",
                     CloseReason::AuditUnavailable);
    }
    if (!from_client_.out.empty()) {
      auto [ec, n] = co_await server_->write(from_client_.out.buffers());
      if (ec) co_return CloseReason::ServerWriteError;
    }
    from_client_.in.consume(pos);
    if (stop != CloseReason::None) co_return stop;

    from_client_.in.shrink_if_idle(idle_buffer_limit);
    auto space = from_client_.in.prepare(std::max(bytes_needed(from_client_.framer, from_client_.in.data()), hint));
    if (drain_stop_ && drain_due()) co_return shut_down();  // nothing more came meanwhile
    auto [ec, n] = co_await client_.read_some(space);
    if (ec) co_return drain_stop_ && ec == asio::error::operation_aborted ? shut_down() : CloseReason::ClientClosed;
    from_client_.in.commit(n);
    counters_.from_client(n);
    idle_since_ = std::chrono::steady_clock::time_point::max();
    if (audit_.on()) audit_.batch_read(std::chrono::steady_clock::now());
    hint = next_read_hint(hint, n, space.size());
  }
}

CloseReason Session::on_client_frame(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (!is_frontend_type(f.type)) {
    return fail(pq::sqlstate::protocol_violation, std::string("invalid frontend message type ") + std::to_string(int(f.type)));
  }
  namespace frontend = pq::frontend_type;
  switch (f.type) {
    case frontend::Password:
      if (!login_.authenticated) {
        if (const CloseReason r = check_sasl_passthrough(f); r != CloseReason::None) return r;
      }
      break;
    case frontend::Terminate:
      terminated_ = true;
      // A connection that goes back to the pool must stay open: the server
      // does not see this client's Terminate.
      if (poolable()) {
        lease_.held_for_pool = true;
        return CloseReason::ClientTerminate;
      }
      out.forward(offset, f.bytes.size());
      return CloseReason::ClientTerminate;
    default:
      if (auto error = gate_.client_message(f, offset, out)) return fail(pq::sqlstate::protocol_violation, *error);
      return CloseReason::None;
  }
  out.forward(offset, f.bytes.size());
  return CloseReason::None;
}

awaitable<CloseReason> Session::relay_server() {
  std::size_t hint = 4 * min_read;
  for (;;) {
    const std::string_view pending = from_server_.in.data();
    from_server_.out.reset(pending.data());
    std::size_t pos = 0;
    for (;;) {
      const pq::Frame f = from_server_.framer.put(pending.substr(pos));
      if (f.ec) {
        spdlog::error("upstream {} sent a malformed message: {}", ctx_.upstream.describe(),
                      f.ec.message());
        co_return fail(pq::sqlstate::protocol_violation, "pgwarden received an invalid message from the upstream server",
                       CloseReason::ServerProtocolError);
      }
      if (f.kind == pq::FrameKind::NeedMore) break;
      if (f.kind == pq::FrameKind::Streamed) {
        from_server_.out.forward(pos, f.bytes.size());
      } else {
        on_server_frame(f, pos, from_server_.out);
      }
      pos += f.bytes.size();
    }
    if (!from_server_.out.empty()) {
      writing_to_client_ = true;
      auto [ec, n] = co_await client_.write(from_server_.out.buffers());
      counters_.to_client(n);
      if (ec) co_return CloseReason::ClientWriteError;
      writing_to_client_ = false;
    }
    from_server_.in.consume(pos);
    if (drain_due()) stop_reading_client();

    from_server_.in.shrink_if_idle(idle_buffer_limit);
    auto space = from_server_.in.prepare(std::max(bytes_needed(from_server_.framer, from_server_.in.data()), hint));
    auto [ec, n] = co_await server_->read_some(space);
    if (ec) co_return terminated_ ? CloseReason::ClientTerminate : server_closed(ec);
    from_server_.in.commit(n);
    counters_.from_server(n);
    hint = next_read_hint(hint, n, space.size());
  }
}

void Session::on_server_frame(const pq::Frame& f, std::size_t offset, Batch& out) {
  namespace backend = pq::backend_type;
  switch (f.type) {
    case backend::Authentication:
      if (f.body().size() >= 4 && static_cast<std::int32_t>(pq::read_u32(f.body().data())) == pq::auth_req_ok) {
        login_.authenticated = true;
        from_client_.framer = pq::Framer(pq::TypeSet::all_except({pq::frontend_type::CopyData}), ctx_.max_message_bytes);
        audit_.event(audit::event::auth_ok, login_.method());
      } else if (note_auth_request(f, out)) {
        return;
      }
      break;
    case backend::BackendKeyData:  // the client gets the server's pid with a key of pgwarden's
      if (rewrite_backend_key(f, out)) return;
      break;
    case backend::ReadyForQuery:  // Byte1 status 'I' idle, 'T' in transaction, 'E' failed
      if (gate_.ready_seen() == 0) {
        poke_watchdog();  // from startup timeout to idle timeout
        counters_.count_connection(ConnectionResult::Accepted);
      }
      on_ready_for_query(f.body().empty() ? 0 : f.body()[0]);
      break;
    case backend::ParameterStatus:  // rules on application_name follow SET application_name
      track_parameter(f);
      break;
    case backend::ParseComplete:  // the server did what the gate assumed
    case backend::CloseComplete:
      gate_.statement_answer(f.type);
      break;
    case backend::ErrorResponse:  // the one standing in for a denial is replaced
      if (gate_.ready_seen() == 0) note_startup_refusal(f);
      if (!login_.authenticated) {
        audit_auth_failure(f);
      } else if (gate_.error_response(f, out)) {
        return;
      }
      audit_.server_message(f, gate_.ready_seen());
      break;
    case backend::CommandComplete:  // a statement's outcome
      if (catalog_lookup_on()) note_command_complete(f);
      [[fallthrough]];
    case backend::EmptyQueryResponse:
    case backend::PortalSuspended:
      audit_.server_message(f, gate_.ready_seen());
      break;
    default:
      break;
  }
  out.forward(offset, f.bytes.size());
}

void Session::on_ready_for_query(char status) {
  gate_.ready_for_query(status);
  if (catalog_.changed) note_catalog_ready();
  counters_.sync_point_answered(gate_.ready_seen());
  audit_.ready(gate_.ready_seen());
  if (status == 'I' && policy_.config().limits.idle_timeout.count() > 0) {
    idle_since_ = std::chrono::steady_clock::now();
  }
}

void Session::audit_auth_failure(const pq::Frame& f) {
  if (!audit_.on()) return;
  pq::ErrorResponse e;
  if (pq::parse(f.bytes, e)) return;
  audit_.event(audit::event::auth_fail, login_.method(), e.field(pq::pg_diag_sqlstate),
               e.field(pq::pg_diag_message_primary));
}

void Session::note_startup_refusal(const pq::Frame& f) {
  pq::ErrorResponse error;
  if (pq::parse(f.bytes, error)) return;
  const std::string_view sqlstate = error.field(pq::pg_diag_sqlstate);
  counters_.set_startup_result(sqlstate.starts_with(sqlstate_class_invalid_authorization)
                                   ? ConnectionResult::AuthenticationFailed
                                   : ConnectionResult::RefusedServer);
}

CloseReason Session::server_closed(error_code ec) {
  // operation_aborted: the client side ended first and stopped this read.
  if (gate_.ready_seen() != 0 || ec == asio::error::operation_aborted) return CloseReason::ServerClosed;
  if (counters_.startup_result()) return CloseReason::ServerRefused;  // after its error, as PostgreSQL closes
  // Closed during startup without a word (a server shutting down, a
  // half-dead upstream): the client learns which hop failed.
  spdlog::warn("upstream {} closed the connection during startup", ctx_.upstream.describe());
  counters_.set_startup_result(ConnectionResult::UpstreamUnavailable);
  return fail(pq::sqlstate::connection_failure, "the upstream server at " + ctx_.upstream.describe() +
                           " closed the connection during startup",
              CloseReason::UpstreamUnavailable);
}

bool Session::note_auth_request(const pq::Frame& f, Batch& out) {
  if (f.body().size() < 4) return false;
  login_.auth_request = static_cast<std::int32_t>(pq::read_u32(f.body().data()));
  if (login_.auth_request != pq::AuthenticationSASL::code) return false;
  pq::AuthenticationSASL sasl;
  if (pq::parse(f.bytes, sasl)) return false;
  // Channel binding never crosses a relaying proxy: the server offers
  // SCRAM-SHA-256-PLUS for its TLS link with pgwarden, which the client's
  // hop is not. A plaintext client refuses an offer of -PLUS outright, and a
  // TLS client would bind to pgwarden's certificate, which the server
  // rejects. Relay only the mechanisms the client can complete.
  const auto plus = std::find(sasl.mechanisms.begin(), sasl.mechanisms.end(), auth::scram_sha_256_plus_name);
  login_.server_offered_plus = plus != sasl.mechanisms.end();
  if (!login_.server_offered_plus) return false;
  sasl.mechanisms.erase(plus);
  std::string& sub = out.substitute_begin();
  pq::encode(sasl, sub);
  out.substitute_end();
  return true;
}

CloseReason Session::check_sasl_passthrough(const pq::Frame& f) {
  // Relayed SCRAM over two TLS hops cannot succeed, and the server's own
  // error would not say why: a client binding to pgwarden's certificate
  // (SCRAM-SHA-256-PLUS) fails the server's binding check, and one saying
  // it could have bound but was not offered to (gs2 flag 'y') is refused by
  // the server as a downgrade. Say so before the server sees either.
  if (login_.auth_request != pq::AuthenticationSASL::code || !client_.is_tls() || !server_->is_tls()) {
    return CloseReason::None;
  }
  pq::SaslInitialResponse initial;
  if (pq::parse(f.bytes, initial)) return CloseReason::None;
  const bool binds_to_proxy = initial.mechanism == auth::scram_sha_256_plus_name;
  const bool downgrade = login_.server_offered_plus && initial.data && initial.data->starts_with("y,");
  if (!binds_to_proxy && !downgrade) return CloseReason::None;
  return fail(pq::sqlstate::invalid_authorization_specification,
              "pgwarden cannot relay SCRAM authentication when both the client and the server connection use TLS: "
              "the client's channel binding is bound to pgwarden's certificate, which the server rejects. Configure "
              "\"auth: scram\" in pgwarden (with auth_file or auth_query), or set upstream.tls: disable, or connect "
              "with channel_binding=disable",
              CloseReason::StartupRefused);
}

void Session::track_parameter(const pq::Frame& f) {
  pq::ParameterStatus status;
  if (pq::parse(f.bytes, status)) return;
  if (pooling()) set_parameter(lease_.parameters, status.name, status.value);
  note_parameter(status.name, status.value);
}

void Session::note_parameter(std::string_view name, std::string_view value) {
  if (gate_.parameter_status(name, value)) return;
  if (name != "application_name" || policy_.facts().application_name == value) return;
  policy_.edit_facts().application_name = value;
  policy_.facts_changed();
  audit_.facts_changed();  // the records from now on name the new one
}

bool Session::rewrite_backend_key(const pq::Frame& f, Batch& out) {
  pq::BackendKeyData upstream_key;
  if (pq::parse(f.bytes, upstream_key)) return false;
  lease_.process_id = upstream_key.process_id;
  lease_.secret_key.assign(upstream_key.secret_key);
  std::string& sub = out.substitute_begin();
  sub += issue_backend_key(upstream_key.process_id, upstream_key.secret_key);
  out.substitute_end();
  return true;
}

std::string Session::issue_backend_key(std::int32_t process_id, std::string_view secret_key) {
  ctx_.cancels->remove(lease_.client_key);
  CancelTarget target;
  target.upstream = ctx_.upstream;
  target.process_id = static_cast<std::uint32_t>(process_id);
  target.secret_key.assign(secret_key);
  if (audit_.on()) target.session = audit_.identity();
  lease_.client_key = ctx_.cancels->add(std::move(target), std::max<std::size_t>(4, secret_key.size()));
  std::string out;
  pq::encode(pq::BackendKeyData{process_id, lease_.client_key.secret_key}, out);
  return out;
}

}  // namespace pgwarden::proxy
