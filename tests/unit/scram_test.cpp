// SCRAM-SHA-256(-PLUS) on both of pgwarden's hops: RFC 7677's exchange byte
// for byte, a secret made by PostgreSQL itself, the proxy's upstream login
// from the recovered ClientKey, every refusal PostgreSQL makes (downgrade,
// binding mismatch, bad proof, malformed messages), tls-server-end-point on
// generated certificates, and the md5 answers.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scram.hpp"

namespace pgwarden::auth {
namespace {

using ::testing::HasSubstr;

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view rfc_client_nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view rfc_salt_b64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view rfc_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view rfc_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Made by PostgreSQL 15.18 on a throwaway server (tests/integration/harness.py's
// PostgresServer): SET password_encryption = 'scram-sha-256'; CREATE ROLE
// verifier_user LOGIN PASSWORD 'correct horse battery staple'; then
// SELECT rolpassword FROM pg_authid WHERE rolname = 'verifier_user'.
constexpr std::string_view pg_verifier =
    "SCRAM-SHA-256$4096:d6bDZcR0M1uBrJjh/8fjcg==$K0QJUhOtkF3gr4kaPpGkNTDd0YZ3r4zUQ/TIBddAPII=:"
    "jsSYuoNFHUkgR9MK+XQqdZHB+yq2dnw3MRomHZ9+FWo=";
constexpr std::string_view pg_password = "correct horse battery staple";
// The same server with password_encryption = 'md5', role md5_user2, same password.
constexpr std::string_view pg_md5_user = "md5_user2";
constexpr std::string_view pg_md5_secret = "md5f4ba8d67593aeb8647e2161ea8800afd";

std::string b64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string unb64(std::string_view text) {
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  EXPECT_GE(n, 0);
  out.resize(static_cast<std::size_t>(n) - (text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0));
  return out;
}

std::string_view view(const ScramKey& key) { return {reinterpret_cast<const char*>(key.data()), key.size()}; }

ScramKey hmac(std::string_view key, std::string_view data) {
  ScramKey out{};
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &n);
  return out;
}

std::string digest(std::string_view data, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  return {reinterpret_cast<const char*>(out), n};
}

/// What a client that knows the password derives (RFC 5802 section 3), and
/// the secret PostgreSQL would store for it.
struct PasswordKeys {
  ScramKey client_key{};
  ScramVerifier verifier;
};

PasswordKeys derive(std::string_view password, std::string_view salt, int iterations) {
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                    EVP_sha256(), sizeof salted, salted);
  const std::string_view salted_view(reinterpret_cast<const char*>(salted), sizeof salted);
  PasswordKeys k;
  k.client_key = hmac(salted_view, "Client Key");
  k.verifier.iterations = iterations;
  k.verifier.salt = std::string(salt);
  const std::string stored = digest(view(k.client_key), EVP_sha256());
  std::copy(stored.begin(), stored.end(), k.verifier.stored_key.begin());
  k.verifier.server_key = hmac(salted_view, "Server Key");
  return k;
}

const PasswordKeys& pencil() {
  static const PasswordKeys keys = derive("pencil", unb64(rfc_salt_b64), 4096);
  return keys;
}

NonceSource fixed(std::string_view nonce) {
  return [n = std::string(nonce)] { return n; };
}

const std::string plus_gs2 = "p=tls-server-end-point,,";
const std::string front_hash(32, '\x11');    // pgwarden's own certificate, as clients see it
const std::string upstream_hash(48, '\x22');  // the upstream's certificate

ScramServer server_for(const ScramVerifier& v, ServerChannel channel = {}, std::string_view nonce = "snonce") {
  return ScramServer("alice", v, std::move(channel), fixed(nonce));
}

ScramClient client_for(const PasswordKeys& k, UpstreamChannel channel = {}, std::string_view nonce = "cnonce") {
  return ScramClient("alice", k.client_key, k.verifier, std::move(channel), fixed(nonce));
}

/// Runs a whole exchange; the first failure on either side, or nullopt.
std::optional<AuthFailure> run(ScramClient& client, ScramServer& server) {
  const std::vector<std::string_view> mechanisms = server.mechanisms();
  auto initial = client.start(mechanisms);
  if (!initial) return initial.error();
  auto first = server.initial_response(initial->mechanism, initial->data);
  if (!first) return first.error();
  auto final_message = client.respond(first->data);
  if (!final_message) return final_message.error();
  auto last = server.response(*final_message);
  if (!last) return last.error();
  EXPECT_EQ(last->kind, ServerReply::Kind::Final);
  if (auto done = client.finish(last->data); !done) return done.error();
  return std::nullopt;
}

std::string describe(const std::optional<AuthFailure>& f) {
  return f ? std::string(f->sqlstate()) + " " + f->message + " / " + f->detail : "success";
}

// --- RFC 7677 -------------------------------------------------------------

// pgwarden's client and server replay RFC 7677's exchange exactly: every
// message the RFC fixes comes out byte for byte, and the server recovers the
// ClientKey the password derives.
TEST(Scram, Rfc7677ExchangeIsReproducedByteForByte) {
  ScramServer server("user", pencil().verifier, {}, fixed(rfc_server_nonce));
  ScramClient client("user", pencil().client_key, pencil().verifier, {}, fixed(rfc_client_nonce));

  const std::vector<std::string_view> offered = server.mechanisms();
  auto initial = client.start(offered);
  ASSERT_TRUE(initial) << initial.error().detail;
  EXPECT_EQ(initial->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(initial->data, rfc_client_first);

  auto first = server.initial_response(initial->mechanism, initial->data);
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_EQ(first->kind, ServerReply::Kind::Continue);
  EXPECT_EQ(first->data, rfc_server_first);

  auto final_message = client.respond(first->data);
  ASSERT_TRUE(final_message) << final_message.error().detail;
  EXPECT_EQ(*final_message, rfc_client_final);

  auto last = server.response(*final_message);
  ASSERT_TRUE(last) << last.error().detail;
  EXPECT_EQ(last->kind, ServerReply::Kind::Final);
  EXPECT_EQ(last->data, rfc_server_final);
  EXPECT_TRUE(client.finish(last->data));

  EXPECT_TRUE(server.authenticated());
  EXPECT_TRUE(client.authenticated());
  EXPECT_EQ(server.client_key(), pencil().client_key);
}

// The server side alone, fed the RFC's client messages verbatim (as another
// SCRAM implementation would send them), answers with the RFC's messages.
TEST(Scram, ServerAnswersTheRfc7677ClientMessages) {
  ScramServer server("user", pencil().verifier, {}, fixed(rfc_server_nonce));
  auto first = server.initial_response("SCRAM-SHA-256", rfc_client_first);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->data, rfc_server_first);
  auto last = server.response(rfc_client_final);
  ASSERT_TRUE(last) << last.error().detail;
  EXPECT_EQ(last->data, rfc_server_final);
}

// --- secrets ------------------------------------------------------------------

// A secret PostgreSQL wrote parses, prints back identically, and is exactly
// what the password derives with its salt and iteration count.
TEST(ScramVerifier, SecretMadeByPostgresqlMatchesItsPassword) {
  auto v = ScramVerifier::parse(pg_verifier);
  ASSERT_TRUE(v) << v.error().detail;
  EXPECT_EQ(v->iterations, 4096);
  EXPECT_EQ(v->salt.size(), 16u);
  EXPECT_EQ(v->to_string(), pg_verifier);
  EXPECT_EQ(*v, derive(pg_password, v->salt, v->iterations).verifier);
}

// A client fed the password logs into a server holding PostgreSQL's secret;
// one fed another password gets PostgreSQL's 28P01 message.
TEST(Scram, PasswordLoginAgainstPostgresqlSecret) {
  auto v = ScramVerifier::parse(pg_verifier);
  ASSERT_TRUE(v);
  const PasswordKeys right = derive(pg_password, v->salt, v->iterations);
  ScramServer server("verifier_user", *v, {}, random_nonce);
  ScramClient client("verifier_user", right.client_key, right.verifier, {}, random_nonce);
  auto login = run(client, server);
  ASSERT_FALSE(login) << describe(login);
  EXPECT_EQ(server.client_key(), right.client_key);

  const PasswordKeys wrong = derive("correct horse battery stapler", v->salt, v->iterations);
  ScramServer server2("verifier_user", *v, {}, random_nonce);
  ScramClient client2("verifier_user", wrong.client_key, wrong.verifier, {}, random_nonce);
  auto failure = run(client2, server2);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, AuthError::WrongPassword);
  EXPECT_EQ(failure->sqlstate(), "28P01");
  EXPECT_EQ(failure->message, "password authentication failed for user \"verifier_user\"");
  EXPECT_FALSE(server2.authenticated());
}

// A client that holds only the password derives its keys from the salt and
// iteration count the server names, and logs into a server holding
// PostgreSQL's secret; a wrong password fails as PostgreSQL's own would.
TEST(ScramClient, WithPasswordLogsInAgainstPostgresqlSecret) {
  auto v = ScramVerifier::parse(pg_verifier);
  ASSERT_TRUE(v);
  ScramServer server("verifier_user", *v, {}, random_nonce);
  ScramClient client = ScramClient::with_password("verifier_user", std::string(pg_password), {});
  auto login = run(client, server);
  ASSERT_FALSE(login) << describe(login);
  EXPECT_TRUE(client.authenticated());
  EXPECT_EQ(server.client_key(), derive(pg_password, v->salt, v->iterations).client_key);

  ScramServer server2("verifier_user", *v, {}, random_nonce);
  ScramClient client2 = ScramClient::with_password("verifier_user", "correct horse battery stapler", {});
  auto failure = run(client2, server2);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, AuthError::WrongPassword);
}

// A server that asks for an absurd iteration count is refused before any
// key is computed.
TEST(ScramClient, WithPasswordRefusesAbsurdIterationCounts) {
  ScramClient client = ScramClient::with_password("u", "secret", {}, fixed("cnonce"));
  const std::vector<std::string_view> offered{"SCRAM-SHA-256"};
  ASSERT_TRUE(client.start(offered));
  auto reply = client.respond("r=cnonceSERVER,s=QSXCR+Q6sek8bf92,i=2000000000");
  ASSERT_FALSE(reply);
  EXPECT_THAT(reply.error().message, HasSubstr("too many SCRAM iterations"));
}

// Malformed stored secrets are refused with a reason, never half-parsed:
// wrong prefix, missing parts, bad counts, bad base64, wrong key sizes.
TEST(ScramVerifier, MalformedSecretsAreRefused) {
  const std::string key = b64(std::string(32, 'k'));
  const std::string salt = "d6bDZcR0M1uBrJjh/8fjcg==";
  const std::vector<std::string> bad = {
      "",
      "md5f4ba8d67593aeb8647e2161ea8800afd",
      "scram-sha-256$4096:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$",
      "SCRAM-SHA-256$4096:" + salt,
      "SCRAM-SHA-256$4096:" + salt + "$" + key,
      "SCRAM-SHA-256$0:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$-1:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$+4096:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$04096:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096x:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$99999999999999999999:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$2147483648:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096:$" + key + ":" + key,
      "SCRAM-SHA-256$4096:d6bDZcR0M1uBrJjh/8fjcg=$" + key + ":" + key,
      "SCRAM-SHA-256$4096:d6bD ZcR0M1uBrJjh/8fjcg==$" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + b64(std::string(31, 'k')) + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + b64(std::string(33, 'k')),
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + "x",
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + "$extra",
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + ":" + key,
  };
  for (const std::string& text : bad) {
    auto v = ScramVerifier::parse(text);
    ASSERT_FALSE(v) << text;
    EXPECT_EQ(v.error().code, AuthError::InvalidSecret) << text;
    EXPECT_FALSE(v.error().detail.empty()) << text;
  }
  EXPECT_TRUE(ScramVerifier::parse("SCRAM-SHA-256$2147483647:" + salt + "$" + key + ":" + key));
}

// --- the proxy's login -------------------------------------------------------

// pgwarden's upstream login: the ClientKey recovered from the client's proof
// (no password anywhere) logs into an upstream holding the same secret, and
// the upstream recovers the very same key.
TEST(Scram, RecoveredClientKeyLogsIntoTheUpstream) {
  ScramServer front = server_for(pencil().verifier, {}, random_nonce());
  ScramClient user = client_for(pencil(), {}, random_nonce());
  auto client_hop = run(user, front);
  ASSERT_FALSE(client_hop) << describe(client_hop);

  ScramClient proxy("alice", front.client_key(), front.verifier(), {}, random_nonce);
  ScramServer upstream = server_for(pencil().verifier, {}, random_nonce());
  auto upstream_hop = run(proxy, upstream);
  ASSERT_FALSE(upstream_hop) << describe(upstream_hop);
  EXPECT_TRUE(proxy.authenticated());
  EXPECT_EQ(upstream.client_key(), pencil().client_key);
}

// TLS on both hops: the client binds to pgwarden's certificate and pgwarden
// binds its upstream login to the upstream's, both with SCRAM-SHA-256-PLUS;
// c= carries the gs2 header and the certificate hash.
TEST(Scram, ChannelBindingOnBothHops) {
  ScramServer front = server_for(pencil().verifier, {true, front_hash});
  EXPECT_EQ(front.mechanisms(), (std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
  ScramClient user = client_for(pencil(), {true, front_hash, ChannelBinding::Require});
  auto client_hop = run(user, front);
  ASSERT_FALSE(client_hop) << describe(client_hop);
  EXPECT_TRUE(front.channel_bound());
  EXPECT_TRUE(user.channel_bound());

  ScramClient proxy("alice", front.client_key(), front.verifier(), {true, upstream_hash}, fixed("pnonce"));
  ScramServer upstream = server_for(pencil().verifier, {true, upstream_hash});
  const std::vector<std::string_view> offered = upstream.mechanisms();
  auto initial = proxy.start(offered);
  ASSERT_TRUE(initial);
  EXPECT_EQ(initial->mechanism, "SCRAM-SHA-256-PLUS");
  EXPECT_EQ(initial->data, "p=tls-server-end-point,,n=alice,r=pnonce");
  auto first = upstream.initial_response(initial->mechanism, initial->data);
  ASSERT_TRUE(first);
  auto final_message = proxy.respond(first->data);
  ASSERT_TRUE(final_message);
  EXPECT_TRUE(final_message->starts_with("c=" + b64(plus_gs2 + upstream_hash) + ",r=pnoncesnonce,p="));
  auto last = upstream.response(*final_message);
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_TRUE(proxy.finish(last->data));
  EXPECT_TRUE(upstream.channel_bound());
}

// A user name with ',' and '=' is escaped in n= (RFC 5802 saslname); the
// server ignores n= and names the startup user in failures.
TEST(Scram, UserNameIsEscapedInClientFirst) {
  ScramClient client("a,b=c", pencil().client_key, pencil().verifier, {}, fixed("cnonce"));
  const std::vector<std::string_view> offered = {"SCRAM-SHA-256"};
  auto initial = client.start(offered);
  ASSERT_TRUE(initial);
  EXPECT_EQ(initial->data, "n,,n=a=2Cb=3Dc,r=cnonce");
}

// --- refusals on pgwarden's server side -------------------------------------------

// A proof with one flipped bit is a wrong password, not an error of form.
TEST(Scram, TamperedProofIsAWrongPassword) {
  ScramServer server = server_for(pencil().verifier);
  ScramClient client = client_for(pencil());
  const std::vector<std::string_view> offered = server.mechanisms();
  auto first = server.initial_response("SCRAM-SHA-256", client.start(offered)->data);
  std::string final_message = *client.respond(first->data);
  const std::size_t p = final_message.find(",p=") + 3;
  std::string proof = unb64(final_message.substr(p));
  proof[7] ^= 0x01;
  final_message = final_message.substr(0, p) + b64(proof);
  auto last = server.response(final_message);
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, AuthError::WrongPassword);
  EXPECT_EQ(last.error().message, "password authentication failed for user \"alice\"");
  EXPECT_TRUE(last.error().detail.empty());
}

// A client-final whose nonce is not client nonce + server nonce is refused
// (a replayed or spliced exchange).
TEST(Scram, ClientFinalWithAnotherNonceIsRefused) {
  ScramServer server = server_for(pencil().verifier);
  ASSERT_TRUE(server.initial_response("SCRAM-SHA-256", "n,,n=,r=cnonce"));
  auto last = server.response("c=biws,r=cnonceXnonce,p=" + b64(std::string(32, 'p')));
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, AuthError::InvalidNonce);
  EXPECT_EQ(last.error().sqlstate(), "08P01");
}

// libpq's downgrade check, as PostgreSQL makes it: flag 'y' ("I could bind
// but you offered nothing") while pgwarden offered SCRAM-SHA-256-PLUS means
// someone removed PLUS on the way: 28000, PostgreSQL's message.
TEST(Scram, FlagYWhilePlusOfferedIsRefusedAsDowngrade) {
  ScramServer server = server_for(pencil().verifier, {true, front_hash});
  auto first = server.initial_response("SCRAM-SHA-256", "y,,n=,r=cnonce");
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, AuthError::ChannelBindingDowngrade);
  EXPECT_EQ(first.error().sqlstate(), "28000");
  EXPECT_EQ(first.error().message, "SCRAM channel binding negotiation error");
  EXPECT_THAT(first.error().detail, HasSubstr("this server does support channel binding"));
}

// Flag 'y' is honest when pgwarden offered no PLUS: over plaintext, or over
// TLS with a certificate that allows no binding. Such logins succeed.
TEST(Scram, FlagYWithoutPlusOfferedIsAccepted) {
  for (ServerChannel channel : {ServerChannel{false, {}}, ServerChannel{true, {}}}) {
    ScramServer server = server_for(pencil().verifier, channel);
    EXPECT_EQ(server.mechanisms(), (std::vector<std::string_view>{"SCRAM-SHA-256"}));
    // A client on TLS that can bind, offered no PLUS, sends 'y' like libpq.
    ScramClient client = client_for(pencil(), {true, upstream_hash});
    auto login = run(client, server);
    EXPECT_FALSE(login) << channel.tls << ": " << describe(login);
    EXPECT_FALSE(server.channel_bound());
  }
}

// A client bound to another certificate (a man in the middle terminating
// TLS) fails the channel-binding check: 28000.
TEST(Scram, PlusWithAnotherCertificateIsRefused) {
  ScramServer server = server_for(pencil().verifier, {true, front_hash});
  ScramClient client = client_for(pencil(), {true, std::string(32, '\x33')});
  auto failure = run(client, server);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, AuthError::ChannelBindingMismatch);
  EXPECT_EQ(failure->sqlstate(), "28000");
  EXPECT_EQ(failure->message, "SCRAM channel binding check failed");
}

// Without TLS pgwarden offers no PLUS: choosing it anyway, or sending the
// 'p' flag under plain SCRAM-SHA-256, is refused.
TEST(Scram, ChannelBindingWithoutTlsIsRefused) {
  ScramServer plus = server_for(pencil().verifier);
  auto chosen = plus.initial_response("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=cnonce");
  ASSERT_FALSE(chosen);
  EXPECT_EQ(chosen.error().code, AuthError::InvalidMechanism);
  EXPECT_EQ(chosen.error().message, "client selected an invalid SASL authentication mechanism");

  ScramServer flag = server_for(pencil().verifier);
  auto flagged = flag.initial_response("SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=cnonce");
  ASSERT_FALSE(flagged);
  EXPECT_EQ(flagged.error().code, AuthError::MalformedMessage);
  EXPECT_THAT(flagged.error().detail, HasSubstr("without channel binding"));
}

// SCRAM-SHA-256-PLUS chosen, then no binding in the message, is malformed;
// a binding type other than tls-server-end-point is unsupported.
TEST(Scram, PlusWithoutBindingDataIsRefused) {
  for (std::string_view first : {"n,,n=,r=cnonce", "y,,n=,r=cnonce"}) {
    ScramServer server = server_for(pencil().verifier, {true, front_hash});
    auto r = server.initial_response("SCRAM-SHA-256-PLUS", first);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, AuthError::MalformedMessage) << first;
  }
  ScramServer server = server_for(pencil().verifier, {true, front_hash});
  auto r = server.initial_response("SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=cnonce");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, AuthError::UnsupportedChannelBinding);
  EXPECT_EQ(r.error().message, "unsupported SCRAM channel-binding type \"tls-unique\"");
}

// An authorization identity (log in as someone else) is refused like
// PostgreSQL does: 0A000.
TEST(Scram, AuthorizationIdentityIsRefused) {
  ScramServer server = server_for(pencil().verifier);
  auto r = server.initial_response("SCRAM-SHA-256", "n,a=postgres,n=,r=cnonce");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, AuthError::AuthzidNotSupported);
  EXPECT_EQ(r.error().sqlstate(), "0A000");
}

// Malformed client-first messages are refused with a reason and nothing else
// happens: no server-first is produced and the exchange is over.
TEST(Scram, MalformedClientFirstIsRefused) {
  const std::vector<std::pair<std::string, AuthError>> cases = {
      {"", AuthError::MalformedMessage},
      {std::string("n,,n=,r=cn\0once", 15), AuthError::MalformedMessage},
      {"x,,n=,r=cnonce", AuthError::MalformedMessage},
      {"n", AuthError::MalformedMessage},
      {"n;,n=,r=cnonce", AuthError::MalformedMessage},
      {"n,n=,r=cnonce", AuthError::MalformedMessage},
      {"n,,r=cnonce", AuthError::MalformedMessage},
      {"n,,n=", AuthError::MalformedMessage},
      {"n,,n,r=cnonce", AuthError::MalformedMessage},
      {"n,,n=,x=cnonce", AuthError::MalformedMessage},
      {"n,,n=,r=", AuthError::MalformedMessage},
      {"n,,n=,r=cn\x01once", AuthError::MalformedMessage},
      {"n,,n=,r=cnonce,", AuthError::MalformedMessage},
      {"n,,n=,r=cnonce,1=x", AuthError::MalformedMessage},
      {"n,,n=,r=cnonce,x", AuthError::MalformedMessage},
      {"n,,m=ext,n=,r=cnonce", AuthError::ExtensionNotSupported},
  };
  for (const auto& [message, code] : cases) {
    ScramServer server = server_for(pencil().verifier);
    auto r = server.initial_response("SCRAM-SHA-256", message);
    ASSERT_FALSE(r) << message;
    EXPECT_EQ(r.error().code, code) << message;
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_FALSE(server.response("c=biws,r=cnoncesnonce,p=" + b64(std::string(32, 'p'))));
  }
  // Extensions after the nonce are allowed (RFC 5802) and ignored.
  ScramServer server = server_for(pencil().verifier);
  EXPECT_TRUE(server.initial_response("SCRAM-SHA-256", "n,,n=ignored,r=cnonce,x=ext"));
}

// Malformed client-final messages: attributes out of order or missing, bad
// base64, a proof of the wrong size, trailing garbage, a c= that does not
// repeat the gs2 header. Each is refused before any proof is checked.
TEST(Scram, MalformedClientFinalIsRefused) {
  const std::string proof = b64(std::string(32, 'p'));
  const std::vector<std::pair<std::string, AuthError>> cases = {
      {"", AuthError::MalformedMessage},
      {"r=cnoncesnonce,c=biws,p=" + proof, AuthError::MalformedMessage},
      {"c=biws,p=" + proof, AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce", AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,", AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p=!!!!" + proof.substr(4), AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p=" + proof.substr(0, proof.size() - 1), AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p=" + b64(std::string(31, 'p')), AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p=" + b64(std::string(33, 'p')), AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p=" + proof + ",x=1", AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p=" + proof + ",", AuthError::MalformedMessage},
      {"c=biws,r=cnoncesnonce,p" + proof, AuthError::MalformedMessage},
      {"c=eSws,r=cnoncesnonce,p=" + proof, AuthError::UnexpectedChannelBinding},
      {"c=" + b64(plus_gs2 + front_hash) + ",r=cnoncesnonce,p=" + proof, AuthError::UnexpectedChannelBinding},
  };
  for (const auto& [message, code] : cases) {
    ScramServer server = server_for(pencil().verifier);
    ASSERT_TRUE(server.initial_response("SCRAM-SHA-256", "n,,n=,r=cnonce"));
    auto r = server.response(message);
    ASSERT_FALSE(r) << message;
    EXPECT_EQ(r.error().code, code) << message << ": " << r.error().detail;
    EXPECT_FALSE(server.authenticated());
  }
}

// Extensions between the nonce and the proof are covered by the proof (they
// are part of client-final-message-without-proof) and otherwise ignored.
TEST(Scram, ExtensionBeforeTheProofIsCoveredByIt) {
  ScramServer server = server_for(pencil().verifier);
  auto first = server.initial_response("SCRAM-SHA-256", "n,,n=,r=cnonce");
  ASSERT_TRUE(first);
  const std::string without_proof = "c=biws,r=cnoncesnonce,x=ext";
  const std::string auth_message = "n=,r=cnonce," + first->data + "," + without_proof;
  const ScramKey signature = hmac(view(pencil().verifier.stored_key), auth_message);
  std::string proof(32, '\0');
  for (std::size_t i = 0; i < proof.size(); ++i)
    proof[i] = static_cast<char>(pencil().client_key[i] ^ signature[i]);
  auto last = server.response(without_proof + ",p=" + b64(proof));
  ASSERT_TRUE(last) << last.error().detail;
  EXPECT_EQ(last->kind, ServerReply::Kind::Final);
}

// A SASLInitialResponse without data (length -1) gets an empty challenge;
// the client-first then arrives as a SASLResponse, as PostgreSQL allows.
TEST(Scram, InitialResponseWithoutDataAsksForClientFirst) {
  ScramServer server = server_for(pencil().verifier);
  ScramClient client = client_for(pencil());
  const std::vector<std::string_view> offered = server.mechanisms();
  auto initial = client.start(offered);
  auto empty = server.initial_response(initial->mechanism, std::nullopt);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->kind, ServerReply::Kind::Continue);
  EXPECT_EQ(empty->data, "");
  auto first = server.response(initial->data);
  ASSERT_TRUE(first);
  auto last = server.response(*client.respond(first->data));
  ASSERT_TRUE(last);
  EXPECT_TRUE(client.finish(last->data));
}

// A user pgwarden has no secret for goes through the same motions (a
// stable, per-user salt, PostgreSQL's default iteration count) and ends in
// the same 28P01 as a wrong password: clients cannot probe for user names.
TEST(Scram, UnknownUserFailsLikeAWrongPassword) {
  auto server_first = [](std::string user) {
    ScramServer s = ScramServer::for_unknown_user(std::move(user), {}, fixed("snonce"));
    auto first = s.initial_response("SCRAM-SHA-256", "n,,n=,r=cnonce");
    EXPECT_TRUE(first);
    return first ? first->data : std::string();
  };
  EXPECT_EQ(server_first("ghost"), server_first("ghost"));
  EXPECT_NE(server_first("ghost"), server_first("phantom"));
  EXPECT_THAT(server_first("ghost"), ::testing::EndsWith(",i=4096"));

  ScramServer ghost = ScramServer::for_unknown_user("ghost", {}, fixed("snonce"));
  ASSERT_TRUE(ghost.initial_response("SCRAM-SHA-256", "n,,n=,r=cnonce"));
  auto last = ghost.response("c=biws,r=cnoncesnonce,p=" + b64(std::string(32, 'p')));
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, AuthError::WrongPassword);
  EXPECT_EQ(last.error().message, "password authentication failed for user \"ghost\"");
}

// Steps out of order end the exchange instead of confusing it.
TEST(Scram, StepsOutOfOrderAreRefused) {
  ScramServer server = server_for(pencil().verifier);
  auto early = server.response("c=biws,r=x,p=y");
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, AuthError::UnexpectedMessage);

  ScramClient client = client_for(pencil());
  auto finish_first = client.finish("v=x");
  ASSERT_FALSE(finish_first);
  EXPECT_EQ(finish_first.error().code, AuthError::UnexpectedMessage);

  ScramServer done = server_for(pencil().verifier);
  ScramClient user = client_for(pencil());
  ASSERT_FALSE(run(user, done));
  auto replay = done.response(rfc_client_final);
  ASSERT_FALSE(replay);
  EXPECT_EQ(replay.error().code, AuthError::UnexpectedMessage);
  EXPECT_FALSE(done.initial_response("SCRAM-SHA-256", rfc_client_first));
}

// --- pgwarden's client side -----------------------------------------------------

struct MechanismCase {
  const char* scenario;
  UpstreamChannel channel;
  std::vector<std::string_view> offered;
  std::optional<std::string_view> mechanism;  ///< nullopt: refused with `error`
  std::string_view gs2;
  AuthError error = AuthError::Internal;
};

// The upstream mechanism and gs2 flag are chosen as libpq chooses them.
TEST(ScramClient, ChoosesMechanismAndFlagAsLibpq) {
  const std::vector<std::string_view> both = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  const std::vector<std::string_view> plain = {"SCRAM-SHA-256"};
  auto hop = [](bool tls, std::string hash, ChannelBinding binding = ChannelBinding::Prefer) {
    return UpstreamChannel{tls, std::move(hash), binding};
  };
  const std::vector<MechanismCase> cases = {
      {"plaintext hop", hop(false, ""), plain, "SCRAM-SHA-256", "n,,"},
      {"TLS, server offers PLUS", hop(true, upstream_hash), both, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,"},
      {"TLS, server offers no PLUS", hop(true, upstream_hash), plain, "SCRAM-SHA-256", "y,,"},
      {"TLS, certificate allows no binding", hop(true, ""), both, "SCRAM-SHA-256", "n,,"},
      {"TLS, binding disabled", hop(true, upstream_hash, ChannelBinding::Disable), both, "SCRAM-SHA-256", "n,,"},
      {"PLUS offered over plaintext", hop(false, ""), both, std::nullopt, "", AuthError::PlusWithoutTls},
      {"binding required, not offered", hop(true, upstream_hash, ChannelBinding::Require), plain, std::nullopt, "",
       AuthError::ChannelBindingRequired},
      {"binding required, plaintext", hop(false, "", ChannelBinding::Require), plain, std::nullopt, "",
       AuthError::ChannelBindingRequired},
      {"no SCRAM offered", hop(false, ""), {"OAUTHBEARER"}, std::nullopt, "", AuthError::NoCommonMechanism},
      {"empty list", hop(false, ""), {}, std::nullopt, "", AuthError::NoCommonMechanism},
  };
  for (const MechanismCase& c : cases) {
    ScramClient client = client_for(pencil(), c.channel);
    auto initial = client.start(c.offered);
    if (c.mechanism) {
      ASSERT_TRUE(initial) << c.scenario << ": " << initial.error().message;
      EXPECT_EQ(initial->mechanism, *c.mechanism) << c.scenario;
      EXPECT_EQ(initial->data, std::string(c.gs2) + "n=alice,r=cnonce") << c.scenario;
    } else {
      ASSERT_FALSE(initial) << c.scenario;
      EXPECT_EQ(initial.error().code, c.error) << c.scenario;
      EXPECT_EQ(initial.error().sqlstate(), "08006") << c.scenario;
    }
  }
}

// A server-first whose salt or iteration count differs from pgwarden's
// stored secret means the secret is stale: a clear error, no proof sent.
TEST(ScramClient, StaleSecretIsReportedClearly) {
  const std::string salt = b64(pencil().verifier.salt);
  for (std::string server_first : {"r=cnoncesnonce,s=" + b64("other salt") + ",i=4096",
                                   "r=cnoncesnonce,s=" + salt + ",i=8192"}) {
    ScramClient client = client_for(pencil());
    ASSERT_TRUE(client.start(std::vector<std::string_view>{"SCRAM-SHA-256"}));
    auto r = client.respond(server_first);
    ASSERT_FALSE(r) << server_first;
    EXPECT_EQ(r.error().code, AuthError::SecretMismatch);
    EXPECT_EQ(r.error().message, "the SCRAM secret pgwarden holds for user \"alice\" does not match the server's");
    EXPECT_THAT(r.error().detail, HasSubstr("pg_authid.rolpassword"));
  }
}

// Malformed or hostile server-first messages are refused without crashing:
// missing or reordered attributes, bad base64, iteration counts that are
// zero, negative or beyond int, trailing garbage, a nonce that is not ours.
TEST(ScramClient, MalformedServerFirstIsRefused) {
  const std::string salt = b64(pencil().verifier.salt);
  const std::vector<std::pair<std::string, AuthError>> cases = {
      {"", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=" + salt, AuthError::ServerMessageMalformed},
      {"s=" + salt + ",r=cnoncesnonce,i=4096", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=!!!!,i=4096", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=,i=4096", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=" + salt + ",i=0", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=" + salt + ",i=-4096", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=" + salt + ",i=99999999999999999999999", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=" + salt + ",i=4096,x=1", AuthError::ServerMessageMalformed},
      {"r=cnoncesnonce,s=" + salt + ",i=4096,", AuthError::ServerMessageMalformed},
      {"m=ext,r=cnoncesnonce,s=" + salt + ",i=4096", AuthError::ServerMessageMalformed},
      {"r=cnonce,s=" + salt + ",i=4096", AuthError::ServerNonceMismatch},
      {"r=xnoncesnonce,s=" + salt + ",i=4096", AuthError::ServerNonceMismatch},
      {"r=cnonc,s=" + salt + ",i=4096", AuthError::ServerNonceMismatch},
  };
  for (const auto& [message, code] : cases) {
    ScramClient client = client_for(pencil());
    ASSERT_TRUE(client.start(std::vector<std::string_view>{"SCRAM-SHA-256"}));
    auto r = client.respond(message);
    ASSERT_FALSE(r) << message;
    EXPECT_EQ(r.error().code, code) << message << ": " << r.error().detail;
    EXPECT_FALSE(client.finish(rfc_server_final));
  }
}

// The server must prove it knows the user's ServerKey; an e= error, a wrong
// or malformed signature all fail the login, so AuthenticationOk is never
// accepted from an impostor.
TEST(ScramClient, BadServerFinalIsRefused) {
  const std::vector<std::pair<std::string, AuthError>> cases = {
      {"e=invalid-proof", AuthError::ServerError},
      {"v=" + b64(std::string(32, '\0')), AuthError::ServerSignatureMismatch},
      {"v=!!!!", AuthError::ServerMessageMalformed},
      {"v=" + b64(std::string(20, 's')), AuthError::ServerMessageMalformed},
      {"v=" + b64(std::string(32, 's')) + ",x=1", AuthError::ServerMessageMalformed},
      {"x=" + b64(std::string(32, 's')), AuthError::ServerMessageMalformed},
      {"", AuthError::ServerMessageMalformed},
  };
  for (const auto& [message, code] : cases) {
    ScramServer server = server_for(pencil().verifier);
    ScramClient client = client_for(pencil());
    auto first = server.initial_response("SCRAM-SHA-256", client.start(server.mechanisms())->data);
    ASSERT_TRUE(server.response(*client.respond(first->data)));
    auto r = client.finish(message);
    ASSERT_FALSE(r) << message;
    EXPECT_EQ(r.error().code, code) << message;
    EXPECT_FALSE(client.authenticated());
  }
  ScramServer server = server_for(pencil().verifier);
  ScramClient client = client_for(pencil());
  auto first = server.initial_response("SCRAM-SHA-256", client.start(server.mechanisms())->data);
  ASSERT_TRUE(server.response(*client.respond(first->data)));
  EXPECT_THAT(client.finish("e=invalid-proof").error().message, HasSubstr("invalid-proof"));
}

// --- tls-server-end-point ------------------------------------------------------

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

EVP_PKEY* ec_key() {
  static KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  return key.get();
}

EVP_PKEY* rsa_key() {
  static KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), &EVP_PKEY_free);
  return key.get();
}

EVP_PKEY* ed25519_key() {
  static KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  return key.get();
}

/// A self-signed certificate signed with `md` (RSA-PSS when `pss`).
CertPtr make_certificate(EVP_PKEY* key, const EVP_MD* md, bool pss = false) {
  CertPtr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pgwarden"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!pss) {
    EXPECT_GT(X509_sign(cert.get(), key, md), 0);
    return cert;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key), 1);
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  EXPECT_GT(X509_sign_ctx(cert.get(), ctx.get()), 0);
  return cert;
}

std::string der_of(X509* cert) {
  unsigned char* out = nullptr;
  const int n = i2d_X509(cert, &out);
  std::string der(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

// RFC 5929 4.1: a certificate is hashed with its signature's hash (SHA-256,
// SHA-384, SHA-512; RSA-PSS by its PSS hash), except that MD5 and SHA-1
// become SHA-256. These are the bytes PostgreSQL and libpq bind to.
TEST(TlsServerEndPoint, HashFollowsTheSignatureAlgorithm) {
  struct Case {
    const char* scenario;
    EVP_PKEY* key;
    const EVP_MD* signed_with;
    bool pss;
    const EVP_MD* expected;
  };
  const std::vector<Case> cases = {
      {"ECDSA SHA-256", ec_key(), EVP_sha256(), false, EVP_sha256()},
      {"ECDSA SHA-384", ec_key(), EVP_sha384(), false, EVP_sha384()},
      {"RSA SHA-384", rsa_key(), EVP_sha384(), false, EVP_sha384()},
      {"RSA SHA-512", rsa_key(), EVP_sha512(), false, EVP_sha512()},
      {"RSA-PSS SHA-384", rsa_key(), EVP_sha384(), true, EVP_sha384()},
      {"ECDSA SHA-1", ec_key(), EVP_sha1(), false, EVP_sha256()},
      {"RSA SHA-1", rsa_key(), EVP_sha1(), false, EVP_sha256()},
      {"RSA MD5", rsa_key(), EVP_md5(), false, EVP_sha256()},
  };
  for (const Case& c : cases) {
    CertPtr cert = make_certificate(c.key, c.signed_with, c.pss);
    auto hash = tls_server_end_point(cert.get());
    ASSERT_TRUE(hash) << c.scenario << ": " << hash.error().message;
    EXPECT_EQ(hash->size(), static_cast<std::size_t>(EVP_MD_get_size(c.expected))) << c.scenario;
    EXPECT_EQ(*hash, digest(der_of(cert.get()), c.expected)) << c.scenario;
    auto from_der = tls_server_end_point_der(der_of(cert.get()));
    ASSERT_TRUE(from_der) << c.scenario;
    EXPECT_EQ(*from_der, *hash) << c.scenario;
  }
}

// An Ed25519 certificate has no separate hash to bind with: reported as
// unavailable, so pgwarden offers (or uses) no PLUS on that hop.
TEST(TlsServerEndPoint, Ed25519CertificateHasNoBinding) {
  CertPtr cert = make_certificate(ed25519_key(), nullptr);
  auto hash = tls_server_end_point(cert.get());
  ASSERT_FALSE(hash);
  EXPECT_EQ(hash.error().code, AuthError::ChannelBindingUnavailable);
  EXPECT_THAT(hash.error().detail, HasSubstr("ED25519"));
}

// Bytes that are not exactly one DER certificate are refused.
TEST(TlsServerEndPoint, NonCertificateBytesAreRefused) {
  const std::string der = der_of(make_certificate(ec_key(), EVP_sha256()).get());
  EXPECT_FALSE(tls_server_end_point_der(""));
  EXPECT_FALSE(tls_server_end_point_der("not a certificate"));
  EXPECT_FALSE(tls_server_end_point_der(der.substr(0, der.size() - 1)));
  EXPECT_FALSE(tls_server_end_point_der(der + "x"));
  EXPECT_FALSE(tls_server_end_point(nullptr));
}

// --- md5 ------------------------------------------------------------------------

std::string md5_hex(std::string_view data) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest(data, EVP_md5())) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

// PostgreSQL's stored md5 secret is "md5" + md5(password + user); the answer
// to AuthenticationMD5Password is "md5" + md5(hex + salt). pgwarden computes
// the answer from the secret alone.
TEST(Md5, ResponseFromStoredSecretMatchesPostgresqlFormula) {
  EXPECT_EQ(pg_md5_secret, "md5" + md5_hex(std::string(pg_password) + std::string(pg_md5_user)));
  EXPECT_EQ(md5_secret(pg_password, pg_md5_user), pg_md5_secret);  // what PostgreSQL stored
  const std::string salt("\x01\x02\xfe\xff", 4);
  EXPECT_EQ(md5_response(pg_md5_secret, salt), "md5" + md5_hex(std::string(pg_md5_secret.substr(3)) + salt));
}

// A client's md5 answer is accepted only when it is exactly right for this
// salt; anything else is PostgreSQL's 28P01.
TEST(Md5, ClientResponseIsVerified) {
  const std::string salt = "salt";
  const std::string right = md5_response(pg_md5_secret, salt);
  EXPECT_TRUE(verify_md5_response(pg_md5_user, pg_md5_secret, salt, right));

  std::string upper = right;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& wrong : {md5_response(pg_md5_secret, "SALT"), upper, right.substr(0, 34), right + "0",
                                   std::string(), std::string(pg_md5_secret)}) {
    auto r = verify_md5_response(pg_md5_user, pg_md5_secret, salt, wrong);
    ASSERT_FALSE(r) << wrong;
    EXPECT_EQ(r.error().sqlstate(), "28P01");
    EXPECT_EQ(r.error().message, "password authentication failed for user \"md5_user2\"");
  }
}

// Only PostgreSQL's exact md5 form counts as an md5 secret.
TEST(Md5, SecretFormIsExact) {
  EXPECT_TRUE(is_md5_secret(pg_md5_secret));
  for (std::string_view s : {"", "md5", "md5f4ba8d67593aeb8647e2161ea8800af", "md5f4ba8d67593aeb8647e2161ea8800afd0",
                             "md5F4BA8D67593AEB8647E2161EA8800AFD", "MD5f4ba8d67593aeb8647e2161ea8800afd",
                             "md5f4ba8d67593aeb8647e2161ea8800afg", "correct horse battery staple"})
    EXPECT_FALSE(is_md5_secret(s)) << s;
}

// Error codes carry readable names through std::error_code (for logs and
// metric labels).
TEST(AuthError, IsAnErrorCode) {
  std::error_code ec = AuthError::ChannelBindingDowngrade;
  EXPECT_EQ(ec.category().name(), std::string("pgwarden.auth"));
  EXPECT_EQ(ec.message(), "SCRAM channel binding negotiation error");
}

// make_scram_verifier writes the secret PostgreSQL would store for the
// password: RFC 7677's "pencil" with its salt gives the secret the
// exchanges above verify against, and logs in.
TEST(MakeScramVerifier, MatchesPostgresStoredForm) {
  auto v = make_scram_verifier("pencil", 4096, unb64(rfc_salt_b64));
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, pencil().verifier);
  EXPECT_EQ(v->to_string(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
  ScramServer server("user", *v, {}, fixed(rfc_server_nonce));
  ScramClient client("user", pencil().client_key, pencil().verifier, {}, fixed(rfc_client_nonce));
  EXPECT_FALSE(run(client, server).has_value());
}

// Each secret gets a fresh 16-byte salt; what cannot be hashed as
// PostgreSQL would is refused.
TEST(MakeScramVerifier, RandomSaltAndRefusals) {
  auto a = make_scram_verifier("correct horse", 4096);
  auto b = make_scram_verifier("correct horse", 4096);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->salt.size(), 16u);
  EXPECT_NE(a->salt, b->salt);
  EXPECT_EQ(ScramVerifier::parse(a->to_string()).value(), *a);
  EXPECT_EQ(make_scram_verifier("", 4096).error().detail, "The password is empty.");
  EXPECT_EQ(make_scram_verifier("p\xc3\xa4ss", 4096).error().detail,
            "The password has a byte outside printable ASCII; pgwarden does not apply SASLprep.");
  EXPECT_EQ(make_scram_verifier("pencil", 0).error().detail, "The iteration count must be at least 1.");
}

}  // namespace
}  // namespace pgwarden::auth
