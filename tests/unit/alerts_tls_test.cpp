// Alerts over TLS: an HTTPS webhook and RFC 5425 syslog reach receivers
// whose certificate the sink verifies against the configured CA (`ca`), and
// a receiver whose certificate names another host is refused.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "alerts/dispatcher.hpp"
#include "alerts_receivers.hpp"
#include "alerts/http_sink.hpp"
#include "alerts/payload.hpp"
#include "alerts/syslog_sink.hpp"

namespace pgwarden::alerts {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

/// A self-signed certificate for `san` (e.g. "IP:127.0.0.1") made by the
/// openssl command line in a fresh directory; it is its own CA.
struct Certificate {
  fs::path dir, cert, key;
  explicit Certificate(const std::string& san) {
    dir = fs::temp_directory_path() / ("pgwarden-alerts-tls-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(std::hash<std::string>{}(san)));
    fs::create_directories(dir);
    cert = dir / "cert.pem";
    key = dir / "key.pem";
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                            "-subj /CN=pgwarden-test -addext subjectAltName=" + san + " -keyout " + key.string() +
                            " -out " + cert.string() + " >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  ~Certificate() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

/// Accepts TLS connections; with `http`, reads one request per connection
/// and answers 200, else collects the bytes of one connection.
class TlsReceiver {
 public:
  TlsReceiver(const Certificate& c, bool http) : http_(http), context_(ssl::context::tls_server) {
    context_.use_certificate_chain_file(c.cert.string());
    context_.use_private_key_file(c.key.string(), ssl::context::pem);
    loop_.emplace([this](tcp::socket& s) { serve(s); });  // once the context is ready
  }
  std::uint16_t port() const { return loop_->port(); }
  /// What arrived once `n` bytes did, or after `limit`.
  std::string wait_for(std::size_t n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, limit, [&] { return data_.size() >= n; });
    return data_;
  }

 private:
  void serve(tcp::socket& socket) {
    boost::system::error_code ec;
    testing::set_receive_timeout(socket.native_handle(), 2s);
    ssl::stream<tcp::socket&> stream(socket, context_);
    stream.handshake(ssl::stream_base::server, ec);
    if (ec) return;
    if (http_) {
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec) return;
      append(req.body());
      http::response<http::string_body> res{http::status::ok, 11};
      res.prepare_payload();
      http::write(stream, res, ec);
      return;
    }
    char buf[4096];
    for (;;) {
      const std::size_t got = stream.read_some(boost::asio::buffer(buf), ec);
      if (ec || loop_->stopping()) break;
      append(std::string(buf, got));
    }
  }
  void append(const std::string& s) {
    {
      std::lock_guard lock(mutex_);
      data_ += s;
    }
    cv_.notify_all();
  }

  bool http_;
  ssl::context context_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string data_;
  std::optional<testing::AcceptLoop> loop_;  // last: stops first
};

Alert an_alert() {
  Alert a;
  a.user = "bob";
  a.rule = "no-drop";
  a.denied = true;
  a.statement = "DROP TABLE t";
  a.time = std::chrono::system_clock::now();
  a.session_id = "s-tls";
  return a;
}

config::HttpUrl https_url(std::uint16_t port) {
  std::string error;
  return *config::parse_http_url("https://127.0.0.1:" + std::to_string(port) + "/hook", error);
}

TEST(AlertsTls, HttpsWebhookVerifiesTheReceiverAndArrives) {
  Certificate c("IP:127.0.0.1");
  TlsReceiver receiver(c, true);
  std::vector<std::string> undelivered;
  Dispatcher d(0ms, [&](const Alert&, std::string_view, std::string_view why) { undelivered.emplace_back(why); });
  d.add_sink({"hook", 2s, 10, 1, 10ms, 10ms},
             std::make_unique<HttpSink>(https_url(receiver.port()), webhook_json, "", c.cert.string()));
  d.start();
  d.raise(an_alert());
  EXPECT_THAT(receiver.wait_for(10), HasSubstr(R"("session_id":"s-tls")"));
  d.stop(2s);
  EXPECT_TRUE(undelivered.empty());
}

// RFC 5425: octet-counted RFC 5424 messages inside TLS.
TEST(AlertsTls, SyslogOverTlsArrivesOctetCounted) {
  Certificate c("IP:127.0.0.1");
  TlsReceiver receiver(c, false);
  std::vector<std::string> undelivered;
  Dispatcher d(0ms, [&](const Alert&, std::string_view, std::string_view why) { undelivered.emplace_back(why); });
  d.add_sink({"tls", 2s, 10, 1, 10ms, 10ms},
             std::make_unique<SyslogSink>(config::Endpoint{"127.0.0.1", receiver.port()}, config::SyslogTransport::Tls,
                                          10, c.cert.string()));
  d.start();
  d.raise(an_alert());
  const std::string got = receiver.wait_for(100);
  const auto space = got.find(' ');
  ASSERT_NE(space, std::string::npos) << got;
  EXPECT_EQ(std::stoul(got.substr(0, space)), got.size() - space - 1) << got;
  EXPECT_THAT(got, HasSubstr(R"(session_id="s-tls")"));
  d.stop(2s);
  EXPECT_TRUE(undelivered.empty());
}

// The receiver's certificate is for another name: nothing is sent to it,
// and the alert is reported undelivered.
TEST(AlertsTls, CertificateForAnotherHostIsRefused) {
  Certificate c("DNS:elsewhere.example");
  TlsReceiver receiver(c, true);
  std::mutex mutex;
  std::vector<std::string> undelivered;
  Dispatcher d(0ms, [&](const Alert&, std::string_view, std::string_view why) {
    std::lock_guard lock(mutex);
    undelivered.emplace_back(why);
  });
  d.add_sink({"hook", 2s, 10, 1, 10ms, 10ms},
             std::make_unique<HttpSink>(https_url(receiver.port()), webhook_json, "", c.cert.string()));
  d.start();
  d.raise(an_alert());
  d.stop(3s);
  ASSERT_EQ(undelivered.size(), 1u);
  EXPECT_THAT(undelivered[0], HasSubstr("TLS handshake"));
  EXPECT_EQ(receiver.wait_for(1, 100ms), "");
}

}  // namespace
}  // namespace pgwarden::alerts
