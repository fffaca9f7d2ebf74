#include "proxy/net/server.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace pgwarden::proxy {

namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

tcp::acceptor open_acceptor(asio::io_context& io, const tcp::endpoint& endpoint) {
  tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.set_option(reuse_port(true));
  if (endpoint.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  return acceptor;
}

/// Fails (throws, as a bind does) when something already listens on
/// `endpoint`. Every worker's socket sets SO_REUSEPORT so that the workers
/// of this process share the port; another process of the same user could
/// then join them silently and take a share of the clients. A socket
/// without SO_REUSEPORT cannot bind beside a listener, so trying one first
/// refuses a port in use, as a plain bind would.
void ensure_unused(const tcp::endpoint& endpoint) {
  if (endpoint.port() == 0) return;  // a fresh port: nobody else has it
  asio::io_context io;
  tcp::acceptor probe(io);
  probe.open(endpoint.protocol());
  probe.set_option(tcp::acceptor::reuse_address(true));
  if (endpoint.address().is_v6()) probe.set_option(asio::ip::v6_only(true));
  probe.bind(endpoint);
}

}  // namespace

Server::Server(const std::vector<tcp::endpoint>& endpoints, unsigned workers, Handler handler)
    : handler_(std::move(handler)) {
  workers = std::max(1u, workers);
  std::vector<tcp::endpoint> bound = endpoints;
  for (const auto& ep : bound) ensure_unused(ep);
  for (unsigned i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->io = std::make_unique<asio::io_context>(1);
    for (auto& ep : bound) {
      w->acceptors.push_back(open_acceptor(*w->io, ep));
      ep = w->acceptors.back().local_endpoint();  // later workers share a resolved port 0
    }
    workers_.push_back(std::move(w));
  }
}

Server::~Server() = default;

void Connection::on_drain(std::function<void(DrainMode)> fn) {
  on_drain_ = std::move(fn);
  if (mode_ && on_drain_) on_drain_(*mode_);
}

void Connection::drain(DrainMode mode) {
  if (mode_ && *mode_ >= mode) return;
  mode_ = mode;
  if (on_drain_) on_drain_(mode);
}

std::vector<tcp::endpoint> Server::local_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : workers_.front()->acceptors) out.push_back(a.local_endpoint());
  return out;
}

void Server::run() {
  for (auto& w : workers_) {
    for (auto& a : w->acceptors) asio::co_spawn(*w->io, accept(*w, a), asio::detached);
  }
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([io = workers_[i]->io.get()] { io->run(); });
  }
  workers_.front()->io->run();
  for (auto& t : threads) t.join();
}

void Server::stop_accepting() {
  for (auto& w : workers_) {
    asio::post(*w->io, [w = w.get()] {
      for (auto& a : w->acceptors) {
        error_code ignored;
        a.close(ignored);
      }
    });
  }
}

void Server::drain(DrainMode mode) {
  draining_.store(true, std::memory_order_relaxed);
  for (auto& w : workers_) {
    asio::post(*w->io, [w = w.get(), mode] {
      for (auto& a : w->acceptors) {
        error_code ignored;
        a.close(ignored);
      }
      if (w->drain && *w->drain >= mode) return;
      w->drain = mode;
      for (Connection& c : w->live) c.drain(mode);
    });
  }
}

void Server::when_idle(std::function<void()> fn) {
  asio::post(main_context(), [this, fn = std::move(fn)]() mutable {
    on_idle_ = std::move(fn);
    check_idle();
  });
}

void Server::check_idle() {
  if (!on_idle_ || connections_.load(std::memory_order_relaxed) != 0) return;
  auto fn = std::move(on_idle_);
  on_idle_ = nullptr;
  fn();
}

void Server::stop() {
  for (auto& w : workers_) w->io->stop();
}

awaitable<void> Server::accept(Worker& worker, tcp::acceptor& acceptor) {
  auto ex = co_await asio::this_coro::executor;
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        asio::steady_timer backoff(ex, std::chrono::milliseconds(100));  // fd exhaustion: let sessions close
        co_await backoff.async_wait(use_nothrow);
      }
      continue;
    }
    // Counted from here, so a drain never sees zero while one is on its way in.
    connections_.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(ex, serve(worker, std::move(socket)), asio::detached);
  }
}

awaitable<void> Server::serve(Worker& worker, tcp::socket socket) {
  Connection connection;
  connection.mode_ = worker.drain;  // accepted just before a drain closed the acceptor
  worker.live.push_back(connection);
  try {
    co_await handler_(std::move(socket), connection);
  } catch (const std::exception& e) {
    // A session must never take the process down; this is a bug to log.
    spdlog::error("session ended by an unexpected exception: {}", e.what());
  }
  connection.unlink();
  if (connections_.fetch_sub(1, std::memory_order_relaxed) == 1 && draining_.load(std::memory_order_relaxed)) {
    asio::post(main_context(), [this] { check_idle(); });
  }
}

std::vector<tcp::endpoint> resolve_listen_address(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("listen address needs a port: " + address);
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  asio::io_context io;
  tcp::resolver resolver(io);
  auto flags = tcp::resolver::passive | tcp::resolver::numeric_service;
  auto results = resolver.resolve(host.empty() || host == "*" ? "0.0.0.0" : host, port, flags);
  std::vector<tcp::endpoint> out;
  for (const auto& r : results) out.push_back(r.endpoint());
  if (out.empty()) throw std::invalid_argument("listen address resolves to nothing: " + address);
  return out;
}

}  // namespace pgwarden::proxy
