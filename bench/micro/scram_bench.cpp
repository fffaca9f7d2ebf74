// Cost of pgwarden's share of a SCRAM login (auth: scram), per login:
// verifying a client (a few HMACs, no PBKDF2: the stored secret is already
// derived), computing the upstream proof from the recovered ClientKey, both
// hops together, and for scale the PBKDF2 a password-holding client such as
// libpq runs at 4096 iterations. Also md5 verification and the
// tls-server-end-point hash of a certificate.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scram.hpp"

namespace {

using namespace pgwarden::auth;

constexpr std::string_view password = "pencil";
constexpr std::string_view salt = "0123456789abcdef";
constexpr int iterations = 4096;

ScramKey hmac(std::string_view key, std::string_view data) {
  ScramKey out{};
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &n);
  return out;
}

/// The ClientKey and stored secret for `password` (what PostgreSQL stores).
struct Keys {
  ScramKey client_key{};
  ScramVerifier verifier;
};

const Keys& keys() {
  static const Keys k = [] {
    unsigned char salted[32];
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                      EVP_sha256(), sizeof salted, salted);
    const std::string_view s(reinterpret_cast<const char*>(salted), sizeof salted);
    Keys out;
    out.client_key = hmac(s, "Client Key");
    out.verifier.iterations = iterations;
    out.verifier.salt = std::string(salt);
    unsigned int n = 0;
    EVP_Digest(out.client_key.data(), out.client_key.size(), out.verifier.stored_key.data(), &n, EVP_sha256(),
               nullptr);
    out.verifier.server_key = hmac(s, "Server Key");
    return out;
  }();
  return k;
}

NonceSource fixed(std::string nonce) {
  return [nonce] { return nonce; };
}

/// One exchange's messages with fixed nonces, so every iteration replays it.
struct Transcript {
  std::string client_first;
  std::string server_first;
  std::string client_final;
  std::string server_final;
};

const Transcript& transcript() {
  static const Transcript t = [] {
    Transcript out;
    ScramServer server("alice", keys().verifier, {}, fixed("snonce-snonce-snonce-sn"));
    ScramClient client("alice", keys().client_key, keys().verifier, {}, fixed("cnonce-cnonce-cnonce-cn"));
    out.client_first = client.start(server.mechanisms())->data;
    out.server_first = server.initial_response(scram_sha_256_name, out.client_first)->data;
    out.client_final = *client.respond(out.server_first);
    out.server_final = server.response(out.client_final)->data;
    return out;
  }();
  return t;
}

// pgwarden verifying one client: parse both client messages, two HMACs and
// one SHA-256 to check the proof and sign the answer.
void BM_ScramServerVerify(benchmark::State& state) {
  const Transcript& t = transcript();
  for (auto _ : state) {
    ScramServer server("alice", keys().verifier, {}, fixed("snonce-snonce-snonce-sn"));
    auto first = server.initial_response(scram_sha_256_name, t.client_first);
    auto last = server.response(t.client_final);
    benchmark::DoNotOptimize(last.ok());
    if (!first || !last || !server.authenticated()) state.SkipWithError("exchange failed");
  }
}
BENCHMARK(BM_ScramServerVerify);

// pgwarden's upstream login from the ClientKey: build client-first, the
// proof, and check the server's signature.
void BM_ScramClientProof(benchmark::State& state) {
  const Transcript& t = transcript();
  const std::vector<std::string_view> offered = {scram_sha_256_name};
  for (auto _ : state) {
    ScramClient client("alice", keys().client_key, keys().verifier, {}, fixed("cnonce-cnonce-cnonce-cn"));
    auto initial = client.start(offered);
    auto final_message = client.respond(t.server_first);
    auto done = client.finish(t.server_final);
    benchmark::DoNotOptimize(done.ok());
    if (!initial || !final_message || !done) state.SkipWithError("exchange failed");
  }
}
BENCHMARK(BM_ScramClientProof);

// All of pgwarden's crypto for one proxied login, with real random nonces:
// a client verified on the front hop, then the upstream login with the
// recovered key against a server holding the same secret (that server's
// cost is included once more, so this is an upper bound).
void BM_ScramProxyLogin(benchmark::State& state) {
  for (auto _ : state) {
    ScramServer front("alice", keys().verifier, {});
    ScramClient user("alice", keys().client_key, keys().verifier, {});
    auto a = front.initial_response(scram_sha_256_name, user.start(front.mechanisms())->data);
    auto b = front.response(*user.respond(a->data));
    ScramClient proxy("alice", front.client_key(), front.verifier(), {});
    ScramServer upstream("alice", keys().verifier, {});
    auto c = upstream.initial_response(scram_sha_256_name, proxy.start(upstream.mechanisms())->data);
    auto d = upstream.response(*proxy.respond(c->data));
    auto done = proxy.finish(d->data);
    benchmark::DoNotOptimize(done.ok());
    if (!b || !done) state.SkipWithError("exchange failed");
  }
}
BENCHMARK(BM_ScramProxyLogin);

// For breakdown: one HMAC-SHA-256 over an AuthMessage-sized input (a
// verification makes two, plus one SHA-256).
void BM_HmacSha256(benchmark::State& state) {
  const std::string auth_message(150, 'a');
  for (auto _ : state) benchmark::DoNotOptimize(hmac(std::string_view(salt), auth_message));
}
BENCHMARK(BM_HmacSha256);

// One nonce from RAND_bytes (each side makes one per login).
void BM_RandomNonce(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(random_nonce());
}
BENCHMARK(BM_RandomNonce);

// For scale: the PBKDF2 a client holding the password runs per login at
// PostgreSQL's default 4096 iterations. pgwarden never runs it.
void BM_Pbkdf2_4096(benchmark::State& state) {
  unsigned char out[32];
  for (auto _ : state) {
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                      EVP_sha256(), sizeof out, out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Pbkdf2_4096)->Unit(benchmark::kMicrosecond);

// md5 verification of a client's answer against a stored md5 secret.
void BM_Md5Verify(benchmark::State& state) {
  const std::string secret = "md5f4ba8d67593aeb8647e2161ea8800afd";
  const std::string response = md5_response(secret, "salt");
  for (auto _ : state) benchmark::DoNotOptimize(verify_md5_response("md5_user", secret, "salt", response).ok());
}
BENCHMARK(BM_Md5Verify);

// tls-server-end-point of a P-256/SHA-256 certificate (once per upstream
// connection for its peer certificate; once per reload for pgwarden's own).
void BM_TlsServerEndPoint(benchmark::State& state) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                          &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_sign(cert.get(), key.get(), EVP_sha256());
  for (auto _ : state) benchmark::DoNotOptimize(tls_server_end_point(cert.get()).ok());
}
BENCHMARK(BM_TlsServerEndPoint);

}  // namespace
