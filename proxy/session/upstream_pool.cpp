#include "proxy/session/upstream_pool.hpp"

#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "proxy/net/byte_buffer.hpp"
#include "proxy/net/message_reader.hpp"

namespace pgwarden::proxy {

using namespace asio::experimental::awaitable_operators;
namespace pq = protocol;

namespace {

/// How long DISCARD ALL may take before the connection is given up.
constexpr std::chrono::seconds reset_timeout{10};

/// An idle server connection must have nothing to read: data means the
/// server said something unasked (it is shutting down: an ErrorResponse),
/// and a zero-byte read means it closed. Either way it cannot be reused.
bool still_open(Stream& s) {
  const int fd = s.native_handle();
  if (fd < 0) return false;
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/// DISCARD ALL: what pgbouncer's server_reset_query does in session mode. It
/// closes cursors, drops prepared statements and temporary tables, releases
/// advisory locks, unlistens, and resets every setting (SET ROLE and SET
/// SESSION AUTHORIZATION included) to the values of the startup packet.
awaitable<bool> discard_all(PooledServer& server) {
  std::string out;
  pq::append_query(out, "DISCARD ALL");
  auto [ec, n] = co_await server.stream.write(asio::buffer(out));
  if (ec) co_return false;
  ByteBuffer in(1024);
  MessageReader reader(in, 64 * 1024);
  bool clean = true;
  for (;;) {
    auto r = co_await reader.next(server.stream);
    if (r.closed || r.frame.ec) co_return false;
    switch (r.frame.type) {
      case 'E': clean = false; break;
      case 'S': {
        pq::ParameterStatus status;
        if (!pq::parse(r.frame.bytes, status)) set_parameter(server.parameters, status.name, status.value);
        break;
      }
      case 'Z':
        reader.release();
        co_return clean && r.frame.body() == "I" && in.empty();
      default:
        break;
    }
  }
}

}  // namespace

void set_parameter(ServerParameters& params, std::string_view name, std::string_view value) {
  for (auto& [n, v] : params) {
    if (n == name) {
      v.assign(value);
      return;
    }
  }
  params.emplace_back(name, value);
}

UpstreamPool::Settings UpstreamPool::settings_of(const config::UpstreamConfig& cfg) {
  return {cfg.pool_size, cfg.pool_idle_timeout};
}

const void* UpstreamPool::loop_of(const asio::any_io_executor& executor) {
  return &asio::query(executor, asio::execution::context);
}

std::optional<PooledServer> UpstreamPool::take(const std::string& startup, const Settings& settings,
                                               const asio::any_io_executor& executor) {
  const void* here = loop_of(executor);
  std::vector<PooledServer> stale;  // closed outside the lock
  std::optional<PooledServer> found;
  {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(startup);
    if (it == idle_.end()) return std::nullopt;
    auto& list = it->second;
    const auto now = std::chrono::steady_clock::now();
    // Newest first (the warmest backend), this loop's own before others'.
    for (int pass = 0; pass < 2 && !found; ++pass) {
      for (std::size_t i = list.size(); i-- > 0;) {
        Idle& idle = list[i];
        if (pass == 0 && idle.loop != here) continue;
        if (now - idle.server.idle_since >= settings.idle_timeout || !still_open(idle.server.stream)) {
          stale.push_back(std::move(idle.server));
        } else if (idle.loop == here) {
          found = std::move(idle.server);
        } else if (auto moved = idle.server.stream.moved_to(executor)) {
          idle.server.stream = std::move(*moved);
          found = std::move(idle.server);
        } else {
          continue;  // a TLS connection of another loop stays there
        }
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
        --idle_count_;
        if (found) break;
      }
    }
    if (list.empty()) idle_.erase(it);
  }
  for (auto& s : stale) s.stream.close();
  return found;
}

void UpstreamPool::give_back(std::string startup, PooledServer server, const Settings& settings) {
  auto ex = server.stream.executor();
  asio::co_spawn(ex, reset_and_keep(std::move(startup), std::move(server), settings), asio::detached);
}

awaitable<void> UpstreamPool::reset_and_keep(std::string startup, PooledServer server, Settings settings) {
  auto result = co_await (discard_all(server) || sleep_for(reset_timeout));
  if (result.index() != 0 || !std::get<0>(result)) {
    server.stream.close();
    co_return;
  }
  keep(std::move(startup), std::move(server), settings);
}

void UpstreamPool::keep(std::string startup, PooledServer server, const Settings& settings) {
  auto ex = server.stream.executor();
  const void* loop = loop_of(ex);
  bool start_sweeper = false;
  bool kept = false;
  {
    std::lock_guard lock(mutex_);
    auto& list = idle_[startup];
    std::size_t mine = 0;
    for (const Idle& i : list) mine += i.loop == loop;
    if (mine < settings.max_idle) {
      server.idle_since = std::chrono::steady_clock::now();
      list.push_back(Idle{std::move(server), loop});
      ++idle_count_;
      start_sweeper = !std::exchange(sweeping_, true);
      kept = true;
    }
  }
  if (!kept) server.stream.close();
  if (start_sweeper) asio::co_spawn(ex, sweep(settings.idle_timeout), asio::detached);
}

awaitable<void> UpstreamPool::sweep(std::chrono::milliseconds idle_timeout) {
  // Connections idle longer than idle_timeout are closed, so a quiet proxy
  // does not hold server backends forever.
  const auto period = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(100), idle_timeout / 4);
  for (;;) {
    co_await sleep_for(period);
    std::vector<PooledServer> expired;
    {
      std::lock_guard lock(mutex_);
      const auto now = std::chrono::steady_clock::now();
      for (auto it = idle_.begin(); it != idle_.end();) {
        auto& list = it->second;
        for (std::size_t i = 0; i < list.size();) {
          if (now - list[i].server.idle_since >= idle_timeout) {
            expired.push_back(std::move(list[i].server));
            list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
            --idle_count_;
          } else {
            ++i;
          }
        }
        it = list.empty() ? idle_.erase(it) : std::next(it);
      }
      if (idle_count_ == 0) {
        sweeping_ = false;
        break;
      }
    }
    for (auto& s : expired) s.stream.close();
  }
}

std::size_t UpstreamPool::idle() const {
  std::lock_guard lock(mutex_);
  return idle_count_;
}

void UpstreamPool::clear() {
  std::lock_guard lock(mutex_);
  for (auto& [key, list] : idle_) {
    for (auto& i : list) i.server.stream.close();
  }
  idle_.clear();
  idle_count_ = 0;
}

}  // namespace pgwarden::proxy
