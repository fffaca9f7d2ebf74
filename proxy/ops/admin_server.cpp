#include "proxy/ops/admin_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace pgwarden::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

/// What a handler is chosen by.
struct AdminServer::Request {
  http::verb method;
  std::string_view path;
};

namespace {

HttpResponse plain(unsigned status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body)};
}

/// The status a request the parser refused gets, or 0 to just close.
unsigned status_for_read_error(const error_code& ec) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::buffer_overflow) return 431;
  if (ec.category() == http::make_error_code(http::error::header_limit).category()) return 400;  // any other HTTP syntax error
  return 0;
}

http::response<http::string_body> to_beast(const HttpResponse& r, http::verb method, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "pgwarden");
  res.set(http::field::content_type, r.content_type);
  if (r.status == 405) res.set(http::field::allow, "GET, HEAD");
  res.keep_alive(keep_alive);
  if (method == http::verb::head) {
    res.content_length(r.body.size());  // what GET would send, without the body
  } else {
    res.body() = r.body;
    res.prepare_payload();
  }
  return res;
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, const tcp::endpoint& endpoint, AdminServerLimits limits)
    : io_(io), acceptor_(io), limits_(limits) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  if (endpoint.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

AdminServer::~AdminServer() = default;

void AdminServer::route(std::string path, Handler handler) { routes_[std::move(path)] = std::move(handler); }

void AdminServer::start() { asio::co_spawn(io_, accept(), asio::detached); }

void AdminServer::stop() {
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint AdminServer::local_endpoint() const { return acceptor_.local_endpoint(); }

awaitable<void> AdminServer::accept() {
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("admin: accept failed: {}", ec.message());
      continue;
    }
    if (active_ >= limits_.max_connections) continue;  // the socket closes as it goes out of scope
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> AdminServer::serve(tcp::socket socket) {
  ++active_;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(limits_.max_header_bytes + limits_.max_body_bytes);
  for (bool keep_alive = true; keep_alive && !stopped_;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser.body_limit(limits_.max_body_bytes);
    stream.expires_after(limits_.read_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    HttpResponse response;
    http::verb method = http::verb::get;
    unsigned version = 11;
    if (ec) {
      const unsigned status = status_for_read_error(ec);
      if (status == 0) break;  // closed, timed out or reset: nobody to answer
      response = plain(status, std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\n");
      keep_alive = false;
    } else {
      const auto& req = parser.get();
      method = req.method();
      version = req.version();
      keep_alive = req.keep_alive();
      const std::string_view target = req.target();
      response = co_await respond(Request{method, target.substr(0, target.find('?'))});
    }
    stream.expires_after(limits_.write_timeout);
    auto res = to_beast(response, method, version, keep_alive);
    auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
    if (wec) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  --active_;
}

awaitable<HttpResponse> AdminServer::respond(const Request& request) {
  auto it = routes_.find(request.path);
  if (it == routes_.end()) co_return plain(404, "not found\n");
  if (request.method != http::verb::get && request.method != http::verb::head) {
    co_return plain(405, "method not allowed\n");
  }
  try {
    co_return co_await it->second();
  } catch (const std::exception& e) {
    spdlog::error("admin: handler for {} failed: {}", it->first, e.what());
  }
  co_return plain(500, "internal error\n");
}

}  // namespace pgwarden::proxy
