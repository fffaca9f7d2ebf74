// `auth: scram`: pgwarden authenticates the client itself, then logs into
// the upstream as the same user.
//
// The client proves its password with SCRAM-SHA-256 (-PLUS when its hop is
// TLS, bound to pgwarden's certificate) or md5, against the secret from the
// auth_file or auth_query; a wrong password or an unknown user gets 28P01
// from pgwarden and never reaches the server. The upstream login reuses the
// ClientKey recovered from the client's proof (or the stored md5 secret), and
// the server must prove it knows the user's ServerKey. Only once the server
// says AuthenticationOk does the client get its SASLFinal and
// AuthenticationOk, so a client is never told it is in when the server
// refused the user.

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "policy/startup_settings.hpp"
#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/net/message_reader.hpp"
#include "proxy/session/secret_store.hpp"
#include "proxy/session/session.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

/// Authentication messages are small (PostgreSQL's own limit is 64 KiB too).
constexpr std::size_t max_auth_message = 64 * 1024;

std::string_view type_name(char t) {
  static thread_local char buf[2];
  buf[0] = t;
  return {buf, 1};
}

}  // namespace

void Session::prepare_upstream_startup(const pq::StartupMessage& startup, std::string_view original) {
  if (!login_.proxy_auth && !policy_.facts().read_only) {
    login_.startup_packet.assign(original);  // passthrough: the server negotiates with the client itself
    return;
  }
  if (!login_.proxy_auth) {  // the client's own StartupMessage, opened read-only at the server
    pq::StartupMessage upstream = startup;
    upstream.parameters.push_back(policy::read_only_startup_parameter);
    pq::encode(upstream, login_.startup_packet);
    return;
  }
  // pgwarden answers the client itself, as PostgreSQL would: protocol 3.0,
  // and no `_pq_.` options (it knows none). The upstream gets a plain 3.0
  // startup, so it has nothing left to negotiate.
  pq::StartupMessage upstream{3u << 16, {}};
  pq::NegotiateProtocolVersion negotiation{static_cast<std::int32_t>(3u << 16), {}};
  for (const auto& [name, value] : startup.parameters) {
    if (name.starts_with("_pq_.")) negotiation.unrecognized_options.push_back(name);
    else upstream.parameters.emplace_back(name, value);
  }
  if (policy_.facts().read_only) upstream.parameters.push_back(policy::read_only_startup_parameter);
  pq::encode(upstream, login_.startup_packet);
  login_.negotiate_reply.clear();
  if ((startup.protocol_version & 0xffff) != 0 || !negotiation.unrecognized_options.empty()) {
    pq::encode(negotiation, login_.negotiate_reply);
  }
}

CloseReason Session::fail_auth(const auth::AuthFailure& failure) {
  spdlog::info("authentication of user {} from {} failed: {}{}{}", policy_.facts().user, peer_.address().to_string(),
               failure.message, failure.log_detail.empty() ? "" : ": ", failure.log_detail);
  if (fatal_.empty()) pq::append_error(fatal_, "FATAL", failure.sqlstate(), failure.message, failure.detail);
  audit_.event(audit::event::auth_fail, login_.method(), failure.sqlstate(), failure.message);
  return CloseReason::AuthenticationFailed;
}

awaitable<CloseReason> Session::authenticate_client() {
  // Arguments are named first: GCC 12 destroys temporaries of a co_await
  // full-expression twice.
  std::shared_ptr<UpstreamTls> upstream_tls = ctx_.tls ? ctx_.tls->upstream() : nullptr;
  SecretLookup found = co_await ctx_.secrets->find(policy_.facts().user, policy_.facts().database, ctx_.upstream, std::move(upstream_tls));
  if (!found.error.empty()) {
    spdlog::error("cannot look up the secret of user {}: {}", policy_.facts().user, found.error);
    co_return fail(pq::sqlstate::connection_failure, "pgwarden could not look up the credentials of user \"" + policy_.facts().user +
                                "\": " + found.error,
                   CloseReason::UpstreamUnavailable);
  }
  MessageReader reader(from_client_.in, max_auth_message);
  CloseReason result;
  if (const auto* md5 = found.secret ? std::get_if<auth::Md5Secret>(&*found.secret) : nullptr) {
    login_.md5_secret = md5->hash;
    result = co_await authenticate_md5(reader);
  } else {
    const auth::ServerChannel channel{client_.is_tls(), client_.is_tls() && client_tls_ ? client_tls_->end_point_hash : ""};
    if (found.secret) {
      login_.scram = std::make_unique<auth::ScramServer>(policy_.facts().user, std::get<auth::ScramVerifier>(*found.secret), channel);
    } else {
      login_.scram = std::make_unique<auth::ScramServer>(auth::ScramServer::for_unknown_user(policy_.facts().user, channel));
    }
    result = co_await authenticate_scram(reader);
  }
  reader.release();
  counters_.from_client(reader.bytes_read());
  co_return result;
}

awaitable<std::optional<pq::Frame>> Session::read_password_message(MessageReader& reader) {
  auto r = co_await reader.next(client_);
  if (r.closed) {
    fail(pq::sqlstate::connection_failure, "the client closed the connection during authentication", CloseReason::ClientClosed);
    co_return std::nullopt;
  }
  if (r.frame.ec) {
    fail(pq::sqlstate::protocol_violation, "invalid frontend message during authentication: " + r.frame.ec.message());
    co_return std::nullopt;
  }
  if (r.frame.type != 'p') {
    fail(pq::sqlstate::protocol_violation, "expected password response, got message type " + std::string(type_name(r.frame.type)));
    co_return std::nullopt;
  }
  co_return r.frame;
}

awaitable<CloseReason> Session::authenticate_scram(MessageReader& reader) {
  std::string out = login_.negotiate_reply;
  pq::encode(pq::AuthenticationSASL{login_.scram->mechanisms()}, out);
  bool first = true;
  for (;;) {
    auto [ec, n] = co_await client_.write(asio::buffer(out));
    counters_.to_client(n);
    if (ec) co_return CloseReason::ClientWriteError;
    out.clear();
    auto frame = co_await read_password_message(reader);
    if (!frame) co_return fatal_.empty() ? CloseReason::ClientClosed : CloseReason::ClientProtocolError;
    auth::AuthResult<auth::ServerReply> reply = auth::AuthFailure{};
    if (first) {
      pq::SaslInitialResponse initial;
      if (auto perr = pq::parse(frame->bytes, initial)) co_return fail(pq::sqlstate::protocol_violation, "malformed SASL message: " + perr.message());
      reply = login_.scram->initial_response(initial.mechanism, initial.data);
      first = false;
    } else {
      pq::SaslResponse response;
      if (auto perr = pq::parse(frame->bytes, response)) co_return fail(pq::sqlstate::protocol_violation, "malformed SASL message: " + perr.message());
      reply = login_.scram->response(response.data);
    }
    if (!reply) co_return fail_auth(reply.error());
    if (reply->kind == auth::ServerReply::Kind::Final) {
      login_.server_final = std::move(reply->data);
      co_return CloseReason::None;
    }
    pq::encode(pq::AuthenticationSASLContinue{reply->data}, out);
  }
}

awaitable<CloseReason> Session::authenticate_md5(MessageReader& reader) {
  char salt[4];
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt), sizeof salt) != 1) {
    co_return fail(pq::sqlstate::internal_error, "could not generate an md5 salt");
  }
  std::string out = login_.negotiate_reply;
  pq::encode(pq::AuthenticationMD5Password{std::string_view(salt, 4)}, out);
  auto [ec, n] = co_await client_.write(asio::buffer(out));
  counters_.to_client(n);
  if (ec) co_return CloseReason::ClientWriteError;
  auto frame = co_await read_password_message(reader);
  if (!frame) co_return fatal_.empty() ? CloseReason::ClientClosed : CloseReason::ClientProtocolError;
  pq::PasswordMessage password;
  if (auto perr = pq::parse(frame->bytes, password)) co_return fail(pq::sqlstate::protocol_violation, "malformed password message: " + perr.message());
  if (auto ok = auth::verify_md5_response(policy_.facts().user, login_.md5_secret, std::string_view(salt, 4), password.password); !ok) {
    co_return fail_auth(ok.error());
  }
  co_return CloseReason::None;
}

CloseReason Session::upstream_login_failed(std::string_view why) {
  spdlog::warn("login of user {} into the upstream {} failed: {}", policy_.facts().user, ctx_.upstream.describe(), why);
  audit_.event(audit::event::auth_fail, login_.method(), pq::sqlstate::connection_failure, why);
  return fail(pq::sqlstate::connection_failure, "pgwarden could not log into the upstream server at " + ctx_.upstream.describe() +
                           " as user \"" + policy_.facts().user + "\": " + std::string(why),
              CloseReason::UpstreamLoginFailed);
}

awaitable<CloseReason> Session::login_upstream(std::shared_ptr<X509> server_certificate) {
  MessageReader reader(from_server_.in, max_auth_message);
  std::unique_ptr<auth::ScramClient> client;
  for (bool done = false; !done;) {
    auto r = co_await reader.next(*server_);
    if (r.closed) {
      counters_.set_startup_result(ConnectionResult::UpstreamUnavailable);
      co_return upstream_login_failed("the server closed the connection during authentication");
    }
    if (r.frame.ec) co_return upstream_login_failed("the server sent an invalid message: " + r.frame.ec.message());
    const pq::Frame& f = r.frame;
    if (f.type == 'E') {
      // The server's own refusal (no such database, pg_hba, too many
      // connections ...) reaches the client as the server sent it.
      if (fatal_.empty()) fatal_.assign(f.bytes);
      audit_auth_failure(f);
      co_return CloseReason::UpstreamLoginFailed;
    }
    if (f.type != 'R' || f.body().size() < 4) continue;  // NoticeResponse, NegotiateProtocolVersion
    const auto code = static_cast<std::int32_t>(pq::read_u32(f.body().data()));
    std::string out;
    switch (code) {
      case pq::AuthenticationOk::code:
        if (client && !client->authenticated()) {
          co_return upstream_login_failed("the server accepted the login without proving it knows the user's secret");
        }
        done = true;
        continue;
      case pq::AuthenticationSASL::code: {
        if (!login_.scram) co_return upstream_login_failed("the server asks for SCRAM, but pgwarden holds only an md5 secret for this user; store its SCRAM secret (pg_authid.rolpassword) in auth_file");
        pq::AuthenticationSASL sasl;
        if (pq::parse(f.bytes, sasl)) co_return upstream_login_failed("malformed AuthenticationSASL");
        auth::UpstreamChannel channel{server_->is_tls(), {}, auth::ChannelBinding::Prefer};
        if (server_certificate) {
          if (auto hash = auth::tls_server_end_point(server_certificate.get())) channel.end_point_hash = *hash;
        }
        client = std::make_unique<auth::ScramClient>(policy_.facts().user, login_.scram->client_key(), login_.scram->verifier(), channel);
        auto initial = client->start(sasl.mechanisms);
        if (!initial) co_return upstream_login_failed(initial.error().message);
        pq::encode(pq::SaslInitialResponse{initial->mechanism, std::string_view(initial->data)}, out);
        break;
      }
      case pq::AuthenticationSASLContinue::code: {
        if (!client) co_return upstream_login_failed("unexpected SASL message from the server");
        auto final_message = client->respond(f.body().substr(4));
        if (!final_message) co_return upstream_login_failed(final_message.error().message);
        pq::encode(pq::SaslResponse{*final_message}, out);
        break;
      }
      case pq::AuthenticationSASLFinal::code: {
        if (!client) co_return upstream_login_failed("unexpected SASL message from the server");
        if (auto ok = client->finish(f.body().substr(4)); !ok) co_return upstream_login_failed(ok.error().message);
        continue;
      }
      case pq::AuthenticationMD5Password::code:
        if (login_.md5_secret.empty() || f.body().size() != 8) {
          co_return upstream_login_failed("the server asks for md5, but pgwarden holds a SCRAM secret for this user "
                                          "(the ClientKey it recovers cannot answer md5); use scram-sha-256 in the "
                                          "server's pg_hba.conf for this user");
        }
        pq::encode(pq::PasswordMessage{auth::md5_response(login_.md5_secret, f.body().substr(4, 4))}, out);
        break;
      case pq::AuthenticationCleartextPassword::code:
        co_return upstream_login_failed("the server asks for a cleartext password, which pgwarden does not have "
                                        "(it stores none); use scram-sha-256 in the server's pg_hba.conf");
      default:
        co_return upstream_login_failed("the server asks for an authentication method pgwarden does not support (" +
                                        std::to_string(code) + ")");
    }
    auto [ec, n] = co_await server_->write(asio::buffer(out));
    if (ec) co_return CloseReason::ServerWriteError;
  }
  reader.release();
  counters_.from_server(reader.bytes_read());
  co_return co_await admit_client();
}

awaitable<CloseReason> Session::admit_client() {
  std::string out;
  if (login_.scram) pq::encode(pq::AuthenticationSASLFinal{login_.server_final}, out);
  pq::encode(pq::AuthenticationOk{}, out);
  auto [ec, n] = co_await client_.write(asio::buffer(out));
  counters_.to_client(n);
  if (ec) co_return CloseReason::ClientWriteError;
  login_.authenticated = true;
  from_client_.framer = pq::Framer(pq::TypeSet::all_except({'d'}), ctx_.max_message_bytes);
  audit_.event(audit::event::auth_ok, login_.method());
  co_return CloseReason::None;
}

}  // namespace pgwarden::proxy
