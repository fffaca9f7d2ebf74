#include "alerts/syslog_sink.hpp"

#include <unistd.h>

#include <tuple>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "alerts/io.hpp"
#include "alerts/payload.hpp"

namespace pgwarden::alerts {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

std::string local_hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "-";
  return name;
}

}  // namespace

struct SyslogSink::Connection {
  beast::tcp_stream* tcp() { return tls ? &tls->next_layer() : &*plain; }
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
};

SyslogSink::SyslogSink(config::Endpoint address, config::SyslogTransport transport, unsigned facility,
                       const std::string& ca)
    : address_(std::move(address)), transport_(transport), facility_(facility), hostname_(local_hostname()) {
  if (transport_ != config::SyslogTransport::Tls) return;
  tls_.emplace(asio::ssl::context::tls_client);
  tls_->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls_->set_verify_mode(asio::ssl::verify_peer);
  if (ca.empty()) tls_->set_default_verify_paths();
  else tls_->load_verify_file(ca);
}

SyslogSink::~SyslogSink() = default;

asio::awaitable<std::string> SyslogSink::deliver(const Alert& a, std::chrono::milliseconds timeout) {
  const std::string message = syslog_message(a, facility_, hostname_);
  if (transport_ == config::SyslogTransport::Udp) co_return co_await send_datagram(message, timeout);
  co_return co_await send_framed(octet_counted(message), timeout);
}

asio::awaitable<std::string> SyslogSink::send_datagram(const std::string& message, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  udp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(address_.host, std::to_string(address_.port), use_nothrow);
  if (rec || endpoints.empty()) co_return describe(rec, "resolving " + address_.host, timeout);
  const udp::endpoint to = *endpoints.begin();
  udp::socket socket(ex, to.protocol());
  auto [sec, sent] = co_await socket.async_send_to(asio::buffer(message), to, use_nothrow);
  if (sec) co_return describe(sec, "sending to " + address_.to_string(), timeout);
  co_return std::string();
}

asio::awaitable<std::string> SyslogSink::send_framed(const std::string& frame, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  if (!connection_) {
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(address_.host, std::to_string(address_.port), use_nothrow);
    if (rec) co_return describe(rec, "resolving " + address_.host, timeout);
    auto c = std::make_unique<Connection>();
    c->plain.emplace(ex);
    c->plain->expires_after(timeout);
    auto [cec, ep] = co_await c->plain->async_connect(endpoints, use_nothrow);
    if (cec) co_return describe(cec, "connecting to " + address_.to_string(), timeout);
    if (tls_) {
      c->tls.emplace(std::move(*c->plain), *tls_);
      c->plain.reset();
      if (!SSL_set_tlsext_host_name(c->tls->native_handle(), address_.host.c_str()))
        co_return std::string("TLS: cannot set SNI");
      c->tls->set_verify_callback(asio::ssl::host_name_verification(address_.host));
      auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client, use_nothrow);
      if (hec) co_return describe(hec, "TLS handshake", timeout);
    }
    connection_ = std::move(c);
  }
  connection_->tcp()->expires_after(timeout);
  error_code wec;
  if (connection_->tls) std::tie(wec, std::ignore) = co_await asio::async_write(*connection_->tls, asio::buffer(frame), use_nothrow);
  else std::tie(wec, std::ignore) = co_await asio::async_write(*connection_->plain, asio::buffer(frame), use_nothrow);
  if (wec) {
    connection_.reset();  // the next attempt connects again
    co_return describe(wec, "sending to " + address_.to_string(), timeout);
  }
  co_return std::string();
}

}  // namespace pgwarden::alerts
