#include "alerts/http_sink.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "alerts/io.hpp"
#include "alerts/payload.hpp"

namespace pgwarden::alerts {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Sends `req` and reads the answer; a 2xx status is delivery.
template <class Stream>
asio::awaitable<std::string> exchange(Stream& stream, http::request<http::string_body>& req,
                                      std::chrono::milliseconds timeout) {
  auto [wec, written] = co_await http::async_write(stream, req, use_nothrow);
  if (wec) co_return describe(wec, "sending", timeout);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  auto [rec, read] = co_await http::async_read(stream, buffer, res, use_nothrow);
  if (rec) co_return describe(rec, "reading the answer", timeout);
  if (res.result_int() / 100 != 2) co_return "HTTP " + std::to_string(res.result_int());
  co_return std::string();
}

}  // namespace

config::HttpUrl alertmanager_url(config::HttpUrl base) {
  constexpr std::string_view path = "/api/v2/alerts";
  while (!base.target.empty() && base.target.back() == '/') base.target.pop_back();
  if (!base.target.ends_with(path)) base.target += path;
  return base;
}

HttpSink::HttpSink(config::HttpUrl url, Encoder encode, std::string hmac_key, const std::string& ca)
    : url_(std::move(url)), encode_(std::move(encode)), hmac_key_(std::move(hmac_key)) {
  if (!url_.tls) return;
  tls_.emplace(asio::ssl::context::tls_client);
  tls_->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls_->set_verify_mode(asio::ssl::verify_peer);
  if (ca.empty()) tls_->set_default_verify_paths();
  else tls_->load_verify_file(ca);
}

asio::awaitable<std::string> HttpSink::deliver(const Alert& a, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, std::to_string(url_.port), use_nothrow);
  if (rec) co_return describe(rec, "resolving " + url_.host, timeout);
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_after(timeout);  // one deadline for the whole attempt
  auto [cec, connected] = co_await tcp_stream.async_connect(endpoints, use_nothrow);
  if (cec) co_return describe(cec, "connecting to " + url_.host + ":" + std::to_string(url_.port), timeout);

  http::request<http::string_body> req{http::verb::post, url_.target, 11};
  const bool default_port = url_.port == (url_.tls ? 443 : 80);
  req.set(http::field::host, default_port ? url_.host : url_.host + ":" + std::to_string(url_.port));
  req.set(http::field::user_agent, "pgwarden");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::connection, "close");
  req.body() = encode_(a);
  if (!hmac_key_.empty()) req.set("X-Pgwarden-Signature", signature_header(hmac_key_, req.body()));
  req.prepare_payload();

  if (!tls_) co_return co_await exchange(tcp_stream, req, timeout);
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls_);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url_.host.c_str())) co_return std::string("TLS: cannot set SNI");
  stream.set_verify_callback(asio::ssl::host_name_verification(url_.host));
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_nothrow);
  if (hec) co_return describe(hec, "TLS handshake", timeout);
  co_return co_await exchange(stream, req, timeout);
}

}  // namespace pgwarden::alerts
