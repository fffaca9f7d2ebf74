#include "proxy/net/tls.hpp"

#include "auth/scram.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

namespace pgwarden::proxy {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

std::string file_error(std::string_view what, const std::string& path, const error_code& ec) {
  std::string reason = ec.message();
  if (unsigned long e = ERR_peek_last_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;
  }
  ERR_clear_error();
  return std::string(what) + " " + path + ": " + reason;
}

/// ALPN (RFC 7301) on the client hop: a client that offers protocols must
/// offer "postgresql", as PostgreSQL 17 requires; one that offers none is
/// accepted (the session insists on ALPN for direct TLS itself).
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  for (unsigned int i = 0; i < in_len;) {
    const unsigned int n = in[i];
    if (i + 1 + n > in_len) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == alpn_postgresql) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/// Loads a certificate chain and its key into `context` and checks they
/// belong together; `section` ("tls", "upstream") names them in the error.
bool load_key_pair(ssl::context& context, const std::string& cert, const std::string& key, std::string_view section,
                   std::string& error) {
  const std::string prefix(section);
  error_code ec;
  if (context.use_certificate_chain_file(cert, ec); ec) {
    error = file_error(prefix + ".cert: cannot load", cert, ec);
    return false;
  }
  if (context.use_private_key_file(key, ssl::context::pem, ec); ec) {
    error = file_error(prefix + ".key: cannot load", key, ec);
    return false;
  }
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    ERR_clear_error();
    error = prefix + ".key: " + key + " does not match the certificate " + cert;
    return false;
  }
  return true;
}

/// Settings both hops share: no TLS below 1.2 and no compression, and
/// OpenSSL frees a connection's record buffers while it is idle.
void harden(SSL_CTX* ctx, int min_version) {
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

/// PostgreSQL's PQ_SEND_BUFFER_SIZE: the most plaintext it puts in one record.
constexpr long max_client_record_plaintext = 8192;

}  // namespace

std::shared_ptr<ClientTls> make_client_tls(const config::TlsConfig& cfg, std::string& error) {
  if (!cfg.enabled()) return nullptr;
  auto tls = std::make_shared<ClientTls>(ssl::context(ssl::context::tls_server));
  tls->required = cfg.required;
  SSL_CTX* ctx = tls->context.native_handle();
  harden(ctx, cfg.min_version == config::TlsVersion::V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Like PostgreSQL: no session resumption state to keep per client (libpq
  // never resumes), which also spares the TLS 1.3 ticket messages.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Records no larger than PostgreSQL's: it sends at most its 8 KiB send
  // buffer per write. A driver that waits on its socket while the rest of a
  // larger record sits decrypted in its TLS library would wait forever.
  SSL_CTX_set_max_send_fragment(ctx, max_client_record_plaintext);
  if (!load_key_pair(tls->context, cfg.cert, cfg.key, "tls", error)) return nullptr;
  error_code ec;
  if (!cfg.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, cfg.ciphers.c_str()) != 1) {
    ERR_clear_error();
    error = "tls.ciphers: OpenSSL accepts none of \"" + cfg.ciphers + "\"";
    return nullptr;
  }
  if (!cfg.ca.empty()) {
    if (tls->context.load_verify_file(cfg.ca, ec); ec) {
      error = file_error("tls.ca: cannot load", cfg.ca, ec);
      return nullptr;
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.ca.c_str())) SSL_CTX_set_client_CA_list(ctx, names);
  }
  switch (cfg.client_cert) {
    case config::ClientCertMode::None: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr); break;
    case config::ClientCertMode::Optional: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr); break;
    case config::ClientCertMode::Require:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  // Ed25519 certificates have no tls-server-end-point hash: then no PLUS.
  if (auto hash = auth::tls_server_end_point(SSL_CTX_get0_certificate(ctx))) tls->end_point_hash = std::move(*hash);
  return tls;
}

std::shared_ptr<UpstreamTls> make_upstream_tls(const config::UpstreamConfig& cfg, std::string& error) {
  if (cfg.tls == config::UpstreamTlsMode::Disable || !cfg.unix_socket.empty()) return nullptr;
  auto tls = std::make_shared<UpstreamTls>(ssl::context(ssl::context::tls_client));
  tls->mode = cfg.tls;
  tls->server_name = cfg.server_name.empty() ? cfg.host : cfg.server_name;
  error_code addr_ec;
  boost::asio::ip::make_address(tls->server_name, addr_ec);
  tls->server_name_is_ip = !addr_ec;
  SSL_CTX* ctx = tls->context.native_handle();
  harden(ctx, TLS1_2_VERSION);
  error_code ec;
  const bool verify = cfg.tls == config::UpstreamTlsMode::VerifyCa || cfg.tls == config::UpstreamTlsMode::VerifyFull;
  if (verify) {
    if (cfg.ca.empty()) tls->context.set_default_verify_paths(ec);
    else tls->context.load_verify_file(cfg.ca, ec);
    if (ec) {
      error = file_error("upstream.ca: cannot load", cfg.ca.empty() ? "(system trust store)" : cfg.ca, ec);
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.cert.empty() && !load_key_pair(tls->context, cfg.cert, cfg.key, "upstream", error)) return nullptr;
  static const unsigned char alpn[] = "\x0apostgresql";
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
  return tls;
}

std::string describe_tls_failure(const error_code& ec, SSL* ssl) {
  std::string out = ec.message();
  if (ssl) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      out = "certificate verify failed: ";
      out += X509_verify_cert_error_string(verify);
    }
  }
  if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::asio::error::eof) {
    out = "the peer closed the connection during the TLS handshake";
  }
  return out;
}

}  // namespace pgwarden::proxy
