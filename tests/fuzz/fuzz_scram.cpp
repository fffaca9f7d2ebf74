// libFuzzer target: the SASL/SCRAM-SHA-256(-PLUS) messages pgwarden parses,
// as the server its clients log into (ScramServer: client-first and
// client-final) and as the client it logs into the upstream with
// (ScramClient: server-first and server-final), plus stored secrets and md5
// answers.
//
// Input: Byte1 selector, then the bytes. Selector bits 0-1 choose the mode:
//   0  a real exchange for user "user" with password "pencil" (RFC 7677's,
//      nonces fixed) up to the client-final, which is the fuzzed bytes;
//   1  Byte1 n, then a client-first of n bytes and a client-final (the rest);
//   2  ScramClient: Byte1 n, then a server-first of n bytes and a
//      server-final (the rest);
//   3  the bytes as a stored SCRAM secret and as an md5 answer.
// Bit 2: pgwarden's hop is TLS with a certificate hash (PLUS offered); bit 3:
// the client side can bind as well; bit 4: the user is unknown to pgwarden;
// bits 5-6 (mode 1): the mechanism named in SASLInitialResponse; bit 7
// (mode 1): it carries no data, so the client-first comes as a SASLResponse.
//
// Invariants: nothing crashes. ScramServer accepts a client-final only when
// it is the genuine one of the exchange; the only other bytes it accepts are
// that message with the two unused low bits of the proof's last base64 digit
// changed (strict base64 as PostgreSQL reads it ignores them; the proof decodes
// to the same 32 bytes), and the genuine final is always accepted. An
// unknown user is never authenticated. ScramClient finishes only on the
// server-final whose signature is HMAC(ServerKey, AuthMessage) of its own
// exchange (same padding-bit latitude). A stored secret that parses prints
// back to a secret that parses to the same value; an md5 answer is accepted
// only when it is the expected one.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "auth/scram.hpp"

namespace px = pgwarden::auth;
namespace fz = pgwarden::protocol::fuzz;

namespace {

// RFC 7677 section 3.
constexpr std::string_view user = "user";
constexpr std::string_view password = "pencil";
constexpr std::string_view client_nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr unsigned char rfc_salt[] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                      0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
constexpr std::string_view md5_user = "md5_user2";
constexpr std::string_view md5_secret = "md5f4ba8d67593aeb8647e2161ea8800afd";

px::ScramKey hmac(std::string_view key, std::string_view data) {
  px::ScramKey out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &length);
  return out;
}

std::string_view view(const px::ScramKey& key) { return {reinterpret_cast<const char*>(key.data()), key.size()}; }

struct Secrets {
  px::ScramKey client_key{};
  px::ScramVerifier verifier;
};

/// The secret PostgreSQL stores for "pencil" with RFC 7677's salt, and its ClientKey.
const Secrets& secrets() {
  static const Secrets s = [] {
    Secrets out;
    const std::string salt(reinterpret_cast<const char*>(rfc_salt), sizeof rfc_salt);
    unsigned char salted[32];
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), rfc_salt, sizeof rfc_salt, 4096,
                      EVP_sha256(), sizeof salted, salted);
    const std::string_view salted_view(reinterpret_cast<const char*>(salted), sizeof salted);
    out.client_key = hmac(salted_view, "Client Key");
    EVP_Digest(out.client_key.data(), out.client_key.size(), out.verifier.stored_key.data(), nullptr, EVP_sha256(),
               nullptr);
    out.verifier.server_key = hmac(salted_view, "Server Key");
    out.verifier.iterations = 4096;
    out.verifier.salt = salt;
    return out;
  }();
  return s;
}

const std::string end_point_hash(32, '\x5a');

int base64_digit(char c) {
  constexpr std::string_view digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::size_t at = digits.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

/// `got` is `genuine` (which ends in the base64 of 32 bytes: 43 digits and
/// one '=') up to the two unused low bits of that last digit.
bool same_up_to_padding_bits(std::string_view got, std::string_view genuine) {
  if (got == genuine) return true;
  const std::size_t n = genuine.size();
  if (got.size() != n || n < 2 || genuine.back() != '=') return false;
  if (got.substr(0, n - 2) != genuine.substr(0, n - 2) || got.back() != '=') return false;
  const int a = base64_digit(got[n - 2]), b = base64_digit(genuine[n - 2]);
  return a >= 0 && b >= 0 && (a >> 2) == (b >> 2);
}

px::NonceSource fixed(std::string_view nonce) {
  return [nonce] { return std::string(nonce); };
}

px::ServerChannel server_channel(std::uint8_t selector) {
  if (!(selector & 4)) return {};
  return {true, end_point_hash};
}

px::UpstreamChannel upstream_channel(std::uint8_t selector) {
  if (!(selector & 8)) return {};
  return {true, end_point_hash, px::ChannelBinding::Prefer};
}

px::ScramServer make_server(std::uint8_t selector) {
  if (selector & 16)
    return px::ScramServer::for_unknown_user(std::string(user), server_channel(selector), fixed(server_nonce));
  return px::ScramServer(std::string(user), secrets().verifier, server_channel(selector), fixed(server_nonce));
}

/// Mode 0: a genuine exchange, then `final_message` as the client-final.
void fuzz_client_final(std::uint8_t selector, std::string_view final_message) {
  px::ScramServer server = make_server(selector);
  // Bit 3: the client binds when it can (flag 'y' without PLUS on offer).
  // Without it, a client offered PLUS is on TLS but will not bind (flag 'n').
  px::UpstreamChannel channel = upstream_channel(selector);
  if ((selector & 12) == 4) channel = {true, end_point_hash, px::ChannelBinding::Disable};
  // For an unknown user the client holds the real key under the salt the mock exchange shows.
  px::ScramVerifier verifier = secrets().verifier;
  verifier.salt = server.verifier().salt;
  verifier.iterations = server.verifier().iterations;
  px::ScramClient client(std::string(user), secrets().client_key, verifier, channel, fixed(client_nonce));
  const auto mechanisms = server.mechanisms();
  auto initial = client.start(mechanisms);
  fz::check(initial.ok(), "the client refuses pgwarden's mechanisms");
  auto server_first = server.initial_response(initial->mechanism, initial->data);
  fz::check(server_first.ok(), "the server refuses a genuine client-first");
  auto genuine = client.respond(server_first->data);
  fz::check(genuine.ok(), "the client refuses a genuine server-first");
  if (!(selector & 24)) fz::check(*genuine == rfc_client_final, "the exchange is not RFC 7677's");

  auto reply = server.response(final_message);
  fz::check(reply.ok() == server.authenticated(), "a reply to client-final without authentication");
  if (selector & 16) {
    fz::check(!server.authenticated(), "an unknown user authenticated");
    return;
  }
  fz::check(!server.authenticated() || same_up_to_padding_bits(final_message, *genuine),
            "a client-final other than the genuine one was accepted");
  if (final_message == *genuine) {
    fz::check(server.authenticated(), "the genuine client-final was refused");
    fz::check(client.finish(reply->data).ok(), "the client refuses the genuine server-final");
    fz::check(server.client_key() == secrets().client_key, "the recovered ClientKey is not the user's");
  }
}

/// Mode 1: a fuzzed client-first, then a fuzzed client-final.
void fuzz_client_messages(std::uint8_t selector, std::string_view bytes) {
  if (bytes.empty()) return;
  const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(bytes[0]), bytes.size() - 1);
  const std::string_view first = bytes.substr(1, n), final_message = bytes.substr(1 + n);
  px::ScramServer server = make_server(selector);
  static constexpr std::array<std::string_view, 4> names = {px::scram_sha_256_name, px::scram_sha_256_plus_name,
                                                            "SCRAM-SHA-1", ""};
  const std::string_view mechanism = names[(selector >> 5) & 3];
  auto reply = server.initial_response(mechanism, (selector & 0x80) ? std::nullopt : std::optional(first));
  if (reply.ok() && reply->data.empty()) reply = server.response(first);  // client-first after an empty challenge
  if (reply.ok()) reply = server.response(final_message);
  fz::check(reply.ok() == server.authenticated(), "a reply to client-final without authentication");
  // The fuzzer cannot compute a proof; only the genuine exchange may pass.
  if (server.authenticated()) {
    fz::check(!(selector & 16), "an unknown user authenticated");
    fz::check(first == "n,,n=user,r=" + std::string(client_nonce) &&
                  same_up_to_padding_bits(final_message, rfc_client_final),
              "a made-up exchange authenticated");
  }
  fz::check(!server.response("x").ok(), "a SASL message after the end of the exchange was accepted");
}

/// Mode 2: pgwarden logging into a fuzzed upstream.
void fuzz_server_messages(std::uint8_t selector, std::string_view bytes) {
  if (bytes.empty()) return;
  const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(bytes[0]), bytes.size() - 1);
  const std::string_view server_first = bytes.substr(1, n), server_final = bytes.substr(1 + n);
  px::ScramClient client(std::string(user), secrets().client_key, secrets().verifier, upstream_channel(selector),
                         fixed(client_nonce));
  std::array<std::string_view, 2> offered = {px::scram_sha_256_plus_name, px::scram_sha_256_name};
  auto initial = client.start(std::span(offered).subspan((selector & 4) ? 0 : 1));
  if (!initial.ok()) return;
  auto final_message = client.respond(server_first);
  if (!final_message.ok()) {
    fz::check(!client.finish(server_final).ok(), "finished after a refused server-first");
    return;
  }
  fz::check(server_first.starts_with("r=" + std::string(client_nonce)), "a server nonce that does not extend ours");
  const bool finished = client.finish(server_final).ok();
  fz::check(finished == client.authenticated(), "finish() and authenticated() disagree");
  if (!finished) return;
  const std::string_view bare = std::string_view(initial->data).substr(initial->data.find(",,") + 2);
  const std::string_view without_proof = std::string_view(*final_message).substr(0, final_message->rfind(",p="));
  const std::string auth_message =
      std::string(bare) + ',' + std::string(server_first) + ',' + std::string(without_proof);
  const px::ScramKey signature = hmac(view(secrets().verifier.server_key), auth_message);
  unsigned char b64[64];
  const int length = EVP_EncodeBlock(b64, signature.data(), static_cast<int>(signature.size()));
  const std::string expected = "v=" + std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(length));
  fz::check(same_up_to_padding_bits(server_final, expected), "a server-final with a wrong signature was accepted");
}

/// Mode 3: a stored secret, and an answer to AuthenticationMD5Password.
void fuzz_secrets(std::string_view bytes) {
  if (auto v = px::ScramVerifier::parse(bytes)) {
    auto again = px::ScramVerifier::parse(v->to_string());
    fz::check(again.ok() && *again == *v, "a parsed secret does not print back to itself");
  }
  const bool accepted = px::verify_md5_response(md5_user, md5_secret, "salt", bytes).ok();
  fz::check(accepted == (bytes == px::md5_response(md5_secret, "salt")), "md5 answer check is wrong");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (selector & 3) {
    case 0: fuzz_client_final(selector, bytes); break;
    case 1: fuzz_client_messages(selector, bytes); break;
    case 2: fuzz_server_messages(selector, bytes); break;
    default: fuzz_secrets(bytes); break;
  }
  return 0;
}
