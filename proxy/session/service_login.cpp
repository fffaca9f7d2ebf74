#include "proxy/session/service_login.hpp"

#include <memory>

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

std::string describe_server_error(const pq::Frame& f) {
  pq::ErrorResponse e;
  if (pq::parse(f.bytes, e)) return "the server sent an invalid error message";
  return std::string(e.field(pq::pg_diag_message_primary)) + " (SQLSTATE " +
         std::string(e.field(pq::pg_diag_sqlstate)) + ")";
}

awaitable<std::string> log_in_service_role(Stream& s, MessageReader& reader, const std::string& user,
                                           std::string_view who, const ServiceCredential& credential,
                                           const auth::UpstreamChannel& channel) {
  const std::string md5 =
      !credential.md5_secret.empty() ? credential.md5_secret
      : credential.password.empty()  ? std::string()
                                     : auth::md5_secret(credential.password, user);
  std::unique_ptr<auth::ScramClient> scram;
  for (;;) {
    auto r = co_await reader.next(s);
    if (r.closed) co_return "the server closed the connection during the login of " + std::string(who);
    if (r.frame.ec) co_return "the server sent an invalid message: " + r.frame.ec.message();
    const pq::Frame& f = r.frame;
    if (f.type == pq::backend_type::ErrorResponse)
      co_return std::string(who) + " could not log in: " + describe_server_error(f);
    if (f.type == pq::backend_type::ReadyForQuery)
      co_return scram && !scram->authenticated() ? "the server did not prove it knows the secret of " + std::string(who)
                                                 : std::string();
    if (f.type != pq::backend_type::Authentication || f.body().size() < 4) continue;  // ParameterStatus, notices ...
    const auto code = static_cast<std::int32_t>(pq::read_u32(f.body().data()));
    std::string out;
    if (code == pq::AuthenticationOk::code) {
      continue;
    } else if (code == pq::AuthenticationCleartextPassword::code && !credential.password.empty()) {
      pq::encode(pq::PasswordMessage{credential.password}, out);
    } else if (code == pq::AuthenticationMD5Password::code && !md5.empty() && f.body().size() == 8) {
      pq::encode(pq::PasswordMessage{auth::md5_response(md5, f.body().substr(4, 4))}, out);
    } else if (code == pq::AuthenticationSASL::code && !credential.password.empty()) {
      pq::AuthenticationSASL sasl;
      if (pq::parse(f.bytes, sasl)) co_return "malformed AuthenticationSASL";
      scram = std::make_unique<auth::ScramClient>(auth::ScramClient::with_password(user, credential.password, channel));
      auto initial = scram->start(sasl.mechanisms);
      if (!initial) co_return initial.error().message;
      pq::encode(pq::SaslInitialResponse{initial->mechanism, std::string_view(initial->data)}, out);
    } else if (code == pq::AuthenticationSASLContinue::code && scram) {
      auto final_message = scram->respond(f.body().substr(4));
      if (!final_message) co_return final_message.error().message;
      pq::encode(pq::SaslResponse{*final_message}, out);
    } else if (code == pq::AuthenticationSASLFinal::code && scram) {
      if (auto ok = scram->finish(f.body().substr(4)); !ok) co_return ok.error().message;
      continue;
    } else {
      co_return "the server asks " + std::string(who) + " for a kind of authentication pgwarden cannot answer " +
                (credential.password.empty()
                     ? std::string("with what it holds (trust, an md5 secret, or a client certificate through "
                                   "upstream.cert)")
                     : std::string("(it answers cleartext, md5 and SCRAM-SHA-256 with the password, or a client "
                                   "certificate through upstream.cert)"));
    }
    auto [ec, n] = co_await s.write(asio::buffer(out));
    if (ec) co_return "could not write to the server: " + ec.message();
  }
}

}  // namespace pgwarden::proxy
