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
    if (!catalog_awaited_ && authenticated_) co_await await_catalog();
    const std::string_view pending = client_in_.data();
    client_out_.reset(pending.data());
    std::size_t pos = 0;
    CloseReason stop = CloseReason::None;
    while (stop == CloseReason::None) {
      const pq::Frame f = client_framer_.put(pending.substr(pos));
      if (f.ec) {
        spdlog::warn("client {}:{} sent a malformed message: {}", peer_.address().to_string(),
                     peer_.port(), f.ec.message());
        co_return fail(pq::sqlstate::protocol_violation, "invalid frontend message: " + f.ec.message());
      }
      if (f.kind == pq::FrameKind::NeedMore) break;
      if (f.kind == pq::FrameKind::Streamed) {
        client_out_.forward(pos, f.bytes.size());
      } else {
        stop = on_client_frame(f, pos, client_out_);
      }
      pos += f.bytes.size();
    }
    if (stop != CloseReason::None && stop != CloseReason::ClientTerminate) co_return stop;
    if (ctx_.audit && (gated_ != 0 || !audit_backlog_.empty())) {
      // Synced: this batch's records are on disk before it goes upstream.
      if (const CloseReason r = co_await audit_settle(); r != CloseReason::None) co_return r;
    }
    if (!client_out_.empty()) {
      auto [ec, n] = co_await server_->write(client_out_.buffers());
      if (ec) co_return CloseReason::ServerWriteError;
    }
    client_in_.consume(pos);
    if (stop != CloseReason::None) co_return stop;

    client_in_.shrink_if_idle(idle_buffer_limit);
    auto space = client_in_.prepare(std::max(bytes_needed(client_framer_, client_in_.data()), hint));
    if (drain_stop_ && drain_due()) co_return shut_down();  // nothing more came meanwhile
    auto [ec, n] = co_await client_.read_some(space);
    if (ec) co_return drain_stop_ && ec == asio::error::operation_aborted ? shut_down() : CloseReason::ClientClosed;
    client_in_.commit(n);
    bytes_from_client_ += n;
    ctx_.metrics->bytes_from_client.increment(n);
    idle_since_ = std::chrono::steady_clock::time_point::max();
    if (ctx_.audit) batch_time_ = std::chrono::steady_clock::now();
    hint = next_read_hint(hint, n, space.size());
  }
}

CloseReason Session::on_client_frame(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (!is_frontend_type(f.type)) {
    return fail(pq::sqlstate::protocol_violation, std::string("invalid frontend message type ") + std::to_string(int(f.type)));
  }
  // Whether the server has answered everything before this message, and
  // so reported any change to how it reads SQL text.
  reading_settled_ = ready_seen_ == sync_points_sent_ && !unsynced_;
  note_client_message(f.type);
  namespace frontend = pq::frontend_type;
  switch (f.type) {
    case frontend::Query: return gate_query(f, offset, out);
    case frontend::Parse: return gate_parse(f, offset, out);
    case frontend::Bind: return gate_bind(f, offset, out);
    case frontend::FunctionCall: return gate_function_call(f, offset, out);
    case frontend::Execute:
      if (ctx_.audit) return gate_execute(f, offset, out);
      break;
    case frontend::Close: forget_statement(f); break;
    case frontend::Password:
      if (!authenticated_) {
        if (const CloseReason r = check_sasl_passthrough(f); r != CloseReason::None) return r;
      }
      break;
    case frontend::Sync: begin_sync_point(); break;
    case frontend::Terminate:
      terminated_ = true;
      // A connection that goes back to the pool must stay open: the server
      // does not see this client's Terminate.
      if (poolable()) {
        held_for_pool_ = true;
        return CloseReason::ClientTerminate;
      }
      break;
    default: break;
  }
  out.forward(offset, f.bytes.size());
  return terminated_ ? CloseReason::ClientTerminate : CloseReason::None;
}

awaitable<CloseReason> Session::relay_server() {
  std::size_t hint = 4 * min_read;
  for (;;) {
    const std::string_view pending = server_in_.data();
    server_out_.reset(pending.data());
    std::size_t pos = 0;
    for (;;) {
      const pq::Frame f = server_framer_.put(pending.substr(pos));
      if (f.ec) {
        spdlog::error("upstream {} sent a malformed message: {}", ctx_.upstream.describe(),
                      f.ec.message());
        co_return fail(pq::sqlstate::protocol_violation, "pgwarden received an invalid message from the upstream server",
                       CloseReason::ServerProtocolError);
      }
      if (f.kind == pq::FrameKind::NeedMore) break;
      if (f.kind == pq::FrameKind::Streamed) {
        server_out_.forward(pos, f.bytes.size());
      } else {
        on_server_frame(f, pos, server_out_);
      }
      pos += f.bytes.size();
    }
    if (!server_out_.empty()) {
      writing_to_client_ = true;
      auto [ec, n] = co_await client_.write(server_out_.buffers());
      bytes_to_client_ += n;
      if (ec) co_return CloseReason::ClientWriteError;
      writing_to_client_ = false;
    }
    server_in_.consume(pos);
    if (drain_due()) stop_reading_client();

    server_in_.shrink_if_idle(idle_buffer_limit);
    auto space = server_in_.prepare(std::max(bytes_needed(server_framer_, server_in_.data()), hint));
    auto [ec, n] = co_await server_->read_some(space);
    if (ec) co_return terminated_ ? CloseReason::ClientTerminate : server_closed(ec);
    server_in_.commit(n);
    bytes_from_server_ += n;
    ctx_.metrics->bytes_from_server.increment(n);
    hint = next_read_hint(hint, n, space.size());
  }
}

void Session::on_server_frame(const pq::Frame& f, std::size_t offset, Batch& out) {
  namespace backend = pq::backend_type;
  switch (f.type) {
    case backend::Authentication:
      if (f.body().size() >= 4 && static_cast<std::int32_t>(pq::read_u32(f.body().data())) == pq::auth_req_ok) {
        authenticated_ = true;
        client_framer_ = pq::Framer(pq::TypeSet::all_except({'d'}), ctx_.max_message_bytes);
        audit_event(audit::event::auth_ok, auth_method());
      } else if (note_auth_request(f, out)) {
        return;
      }
      break;
    case backend::BackendKeyData:  // the client gets the server's pid with a key of pgwarden's
      if (rewrite_backend_key(f, out)) return;
      break;
    case backend::ReadyForQuery:  // Byte1 status 'I' idle, 'T' in transaction, 'E' failed
      if (ready_seen_ == 0) {
        poke_watchdog();  // from startup timeout to idle timeout
        count_connection(ConnectionResult::Accepted);
      }
      ready_status_ = f.body().empty() ? 0 : f.body()[0];
      on_ready_for_query();
      if (catalog_changed_) note_catalog_ready();
      if (ctx_.audit) audit_ready();
      if (f.body().size() == 1 && f.body()[0] == 'I' && config_->limits.idle_timeout.count() > 0) {
        idle_since_ = std::chrono::steady_clock::now();
      }
      break;
    case backend::ParameterStatus:  // rules on application_name follow SET application_name
      track_parameter(f);
      break;
    case backend::ParseComplete:  // the server did what statements_ assumed
    case backend::CloseComplete:
      on_statement_answer(f.type);
      break;
    case backend::ErrorResponse:  // the one standing in for a denial is replaced
      if (ready_seen_ == 0) note_startup_refusal(f);
      if (authenticated_) undo_statement_changes();
      if (rewrite_denial_error(f, out)) return;
      if (!authenticated_) audit_auth_failure(f);
      if (ctx_.audit) audit_server_frame(f);
      break;
    case backend::CommandComplete:  // a statement's outcome
      if (ctx_.catalogs) note_command_complete(f);
      [[fallthrough]];
    case backend::EmptyQueryResponse:
    case backend::PortalSuspended:
      if (ctx_.audit) audit_server_frame(f);
      break;
    default:
      break;
  }
  out.forward(offset, f.bytes.size());
}

void Session::note_startup_refusal(const pq::Frame& f) {
  pq::ErrorResponse error;
  if (pq::parse(f.bytes, error)) return;
  const std::string_view sqlstate = error.field(pq::pg_diag_sqlstate);
  startup_result_ = sqlstate.starts_with(sqlstate_class_invalid_authorization)
                        ? ConnectionResult::AuthenticationFailed
                        : ConnectionResult::RefusedServer;
}

CloseReason Session::server_closed(error_code ec) {
  // operation_aborted: the client side ended first and stopped this read.
  if (ready_seen_ != 0 || ec == asio::error::operation_aborted) return CloseReason::ServerClosed;
  if (startup_result_) return CloseReason::ServerRefused;  // after its error, as PostgreSQL closes
  // Closed during startup without a word (a server shutting down, a
  // half-dead upstream): the client learns which hop failed.
  spdlog::warn("upstream {} closed the connection during startup", ctx_.upstream.describe());
  startup_result_ = ConnectionResult::UpstreamUnavailable;
  return fail(pq::sqlstate::connection_failure, "the upstream server at " + ctx_.upstream.describe() +
                           " closed the connection during startup",
              CloseReason::UpstreamUnavailable);
}

bool Session::note_auth_request(const pq::Frame& f, Batch& out) {
  if (f.body().size() < 4) return false;
  auth_request_ = static_cast<std::int32_t>(pq::read_u32(f.body().data()));
  if (auth_request_ != pq::AuthenticationSASL::code) return false;
  pq::AuthenticationSASL sasl;
  if (pq::parse(f.bytes, sasl)) return false;
  // Channel binding never crosses a relaying proxy: the server offers
  // SCRAM-SHA-256-PLUS for its TLS link with pgwarden, which the client's
  // hop is not. A plaintext client refuses an offer of -PLUS outright, and a
  // TLS client would bind to pgwarden's certificate, which the server
  // rejects. Relay only the mechanisms the client can complete.
  const auto plus = std::find(sasl.mechanisms.begin(), sasl.mechanisms.end(), auth::scram_sha_256_plus_name);
  server_offered_plus_ = plus != sasl.mechanisms.end();
  if (!server_offered_plus_) return false;
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
  if (auth_request_ != pq::AuthenticationSASL::code || !client_.is_tls() || !server_->is_tls()) {
    return CloseReason::None;
  }
  pq::SaslInitialResponse initial;
  if (pq::parse(f.bytes, initial)) return CloseReason::None;
  const bool binds_to_proxy = initial.mechanism == auth::scram_sha_256_plus_name;
  const bool downgrade = server_offered_plus_ && initial.data && initial.data->starts_with("y,");
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
  if (pooling()) set_parameter(server_params_, status.name, status.value);
  note_parameter(status.name, status.value);
}

void Session::note_parameter(std::string_view name, std::string_view value) {
  if (name == "client_encoding") {
    client_encoding_ = policy::ClientEncoding::named(value);  // unknown: text with non-ASCII bytes is refused
    return;
  }
  if (name == "standard_conforming_strings") {
    standard_conforming_strings_ = value != "off";
    return;
  }
  if (name == "default_transaction_read_only") {  // reported since PostgreSQL 14
    read_only_lost_ = read_only_lost_ || (facts_.read_only && value != "on");
    return;
  }
  if (name != "application_name" || facts_.application_name == value) return;
  facts_.application_name = value;
  audit_session_json_.clear();  // the records from now on name the new one
  rule_mask_ = policy::session_mask(config_->policy, facts_);
}

bool Session::rewrite_backend_key(const pq::Frame& f, Batch& out) {
  pq::BackendKeyData upstream_key;
  if (pq::parse(f.bytes, upstream_key)) return false;
  server_process_id_ = upstream_key.process_id;
  server_secret_key_.assign(upstream_key.secret_key);
  std::string& sub = out.substitute_begin();
  sub += issue_backend_key(upstream_key.process_id, upstream_key.secret_key);
  out.substitute_end();
  return true;
}

std::string Session::issue_backend_key(std::int32_t process_id, std::string_view secret_key) {
  ctx_.cancels->remove(client_key_);
  CancelTarget target;
  target.upstream = ctx_.upstream;
  target.process_id = static_cast<std::uint32_t>(process_id);
  target.secret_key.assign(secret_key);
  if (ctx_.audit) {
    target.session_id = session_id_;
    target.user = facts_.user;
    target.database = facts_.database;
    target.application_name = facts_.application_name;
    target.client_addr = client_addr_;
    target.client_port = peer_.port();
    target.tls = client_.is_tls();
  }
  client_key_ = ctx_.cancels->add(std::move(target), std::max<std::size_t>(4, secret_key.size()));
  std::string out;
  pq::encode(pq::BackendKeyData{process_id, client_key_.secret_key}, out);
  return out;
}

}  // namespace pgwarden::proxy
