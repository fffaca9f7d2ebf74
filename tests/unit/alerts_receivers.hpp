#pragma once
// Receivers for the alert tests, on 127.0.0.1 ports the kernel picks: an
// HTTP server (Boost.Beast, synchronous, one thread) that records each
// request and answers with a chosen status after a chosen delay, and a UDP
// and a TCP socket that collect syslog bytes.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pgwarden::alerts::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

/// Blocking reads on `socket` give up after `limit`.
inline void set_receive_timeout(int socket, std::chrono::milliseconds limit) {
  timeval tv{static_cast<time_t>(limit.count() / 1000), static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
  ::setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/// A listener on a loopback port served by a thread of its own: each
/// accepted connection goes to `serve`. The destructor wakes a blocked
/// accept with a connection of its own and joins; declare it after every
/// member `serve` uses, so that it stops first.
class AcceptLoop {
 public:
  explicit AcceptLoop(std::function<void(tcp::socket&)> serve)
      : serve_(std::move(serve)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { run(); });
  }
  ~AcceptLoop() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    poke.close(ec);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  bool stopping() const { return stop_; }

 private:
  void run() {
    while (!stop_) {
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      serve_(socket);
    }
  }

  std::function<void(tcp::socket&)> serve_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Received {
  std::string target;
  std::string signature;  // X-Pgwarden-Signature
  std::string content_type;
  std::string body;
};

class HttpReceiver {
 public:
  explicit HttpReceiver(unsigned status = 200, std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : status_(status), delay_(delay) {}

  std::uint16_t port() const { return loop_.port(); }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  /// Waits until `n` requests have arrived (or `limit` passed); all so far.
  std::vector<Received> wait_for(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, limit, [&] { return received_.size() >= n; });
    return received_;
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return received_.size();
  }

 private:
  void serve(tcp::socket& socket) {
    boost::system::error_code ec;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    {
      std::lock_guard lock(mutex_);
      received_.push_back({std::string(req.target()), std::string(req["X-Pgwarden-Signature"]),
                           std::string(req[http::field::content_type]), req.body()});
    }
    cv_.notify_all();
    // A slow receiver: wait, but give up early when the test ends.
    for (auto waited = std::chrono::milliseconds(0); waited < delay_ && !loop_.stopping();
         waited += std::chrono::milliseconds(10))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    http::response<http::string_body> res{static_cast<http::status>(status_), 11};
    res.body() = "{}";
    res.prepare_payload();
    http::write(socket, res, ec);
  }

  unsigned status_;
  std::chrono::milliseconds delay_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Received> received_;
  AcceptLoop loop_{[this](tcp::socket& s) { serve(s); }};  // last: stops first
};

/// A port nothing listens on: bound, then closed.
inline std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

/// Collects UDP datagrams.
class UdpReceiver {
 public:
  UdpReceiver() : socket_(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  std::uint16_t port() const { return socket_.local_endpoint().port(); }
  /// The next datagram, or "" after `limit`.
  std::string next(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    set_receive_timeout(socket_.native_handle(), limit);
    char data[65536];
    udp::endpoint from;
    boost::system::error_code ec;
    const std::size_t n = socket_.receive_from(asio::buffer(data), from, 0, ec);
    return ec ? std::string() : std::string(data, n);
  }

 private:
  asio::io_context io_;
  udp::socket socket_;
};

/// Accepts one TCP connection and reads what arrives on it.
class TcpReceiver {
 public:
  TcpReceiver() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), socket_(io_) {}
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  /// Bytes received until at least `n` arrived or `limit` passed.
  std::string read_at_least(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    if (!socket_.is_open()) acceptor_.accept(socket_);
    set_receive_timeout(socket_.native_handle(), limit);
    while (data_.size() < n) {
      char buf[4096];
      boost::system::error_code ec;
      const std::size_t got = socket_.read_some(asio::buffer(buf), ec);
      if (ec) break;
      data_.append(buf, got);
    }
    return data_;
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  tcp::socket socket_;
  std::string data_;
};

}  // namespace pgwarden::alerts::testing
