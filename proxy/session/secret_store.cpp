#include "proxy/session/secret_store.hpp"

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "proxy/net/byte_buffer.hpp"
#include "proxy/net/message_reader.hpp"
#include "proxy/session/service_login.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

/// Answers for auth_query are small; anything larger is not one.
constexpr std::size_t max_auth_query_message = 1u << 20;

SecretLookup lookup_error(std::string why) { return SecretLookup{std::nullopt, "auth_query: " + std::move(why)}; }

awaitable<SecretLookup> query_secret(Stream& s, MessageReader& reader, const std::string& query,
                                     const std::string& user) {
  std::string out;
  pq::encode(pq::Parse{"", query, {}}, out);
  pq::encode(pq::Bind{"", "", {}, {std::string_view(user)}, {}}, out);
  pq::encode(pq::Execute{"", 1}, out);
  pq::encode(pq::Sync{}, out);
  auto [ec, n] = co_await s.write(asio::buffer(out));
  if (ec) co_return lookup_error("could not write to the server: " + ec.message());
  SecretLookup found;
  std::string error;
  for (;;) {
    auto r = co_await reader.next(s);
    if (r.closed) co_return lookup_error("the server closed the connection");
    if (r.frame.ec) co_return lookup_error("the server sent an invalid message: " + r.frame.ec.message());
    const pq::Frame& f = r.frame;
    if (f.type == 'E' && error.empty()) error = describe_server_error(f);
    if (f.type == 'D' && !found.secret) {
      pq::DataRow row;
      if (!pq::parse(f.bytes, row) && !row.columns.empty()) {
        const auto& column = row.columns.size() >= 2 ? row.columns[1] : row.columns[0];
        if (column) found.secret = parse_stored_secret(*column);
      }
    }
    if (f.type == 'Z') break;
  }
  if (!error.empty()) co_return lookup_error("the query failed: " + error);
  co_return found;
}

}  // namespace

std::optional<auth::UserSecret> parse_stored_secret(std::string_view text) {
  if (auth::is_md5_secret(text)) return auth::UserSecret{auth::Md5Secret{std::string(text)}};
  auto scram = auth::ScramVerifier::parse(text);
  if (scram.ok()) return auth::UserSecret{std::move(*scram)};
  return std::nullopt;
}

awaitable<SecretLookup> run_auth_query(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls,
                                       const std::string& query, const std::string& auth_user,
                                       const auth::Userlist* userlist, const std::string& user,
                                       const std::string& database) {
  UpstreamConnection conn = co_await connect_upstream(target, std::move(tls));
  if (!conn.stream) co_return lookup_error("could not connect to " + target.describe() + ": " + conn.error);
  Stream& s = *conn.stream;
  std::string out;
  pq::encode(pq::StartupMessage{3u << 16, {{"user", auth_user}, {"database", database},
                                           {"application_name", "pgwarden auth_query"}}},
             out);
  auto [ec, n] = co_await s.write(asio::buffer(out));
  if (ec) co_return lookup_error("could not write to the server: " + ec.message());
  ByteBuffer in(4096);
  MessageReader reader(in, max_auth_query_message);
  ServiceCredential credential;
  const auth::UserSecret* secret = userlist ? userlist->find(auth_user) : nullptr;
  if (const auto* md5 = secret ? std::get_if<auth::Md5Secret>(secret) : nullptr) credential.md5_secret = md5->hash;
  const auth::UpstreamChannel channel{s.is_tls(), {}, auth::ChannelBinding::Prefer};
  // Named, not temporaries of the co_await: GCC 12 may destroy those twice.
  const std::string who = "auth_user " + auth_user;
  const std::string failed = co_await log_in_service_role(s, reader, auth_user, who, credential, channel);
  if (!failed.empty()) {
    s.close();
    co_return lookup_error(failed);
  }
  SecretLookup result = co_await query_secret(s, reader, query, user);
  out.clear();
  pq::encode(pq::Terminate{}, out);
  co_await s.write(asio::buffer(out));
  s.close();
  co_return result;
}

void SecretStore::replace(Settings settings) {
  std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
  cache_.clear();
  ++generation_;
}

awaitable<SecretLookup> SecretStore::find(std::string user, std::string database, UpstreamTarget target,
                                          std::shared_ptr<UpstreamTls> tls) {
  Settings settings;
  std::uint64_t generation = 0;
  const std::string key = database + '\0' + user;
  {
    std::lock_guard lock(mutex_);
    settings = settings_;
    generation = generation_;
    if (settings.userlist) {
      if (const auth::UserSecret* s = settings.userlist->find(user)) co_return SecretLookup{*s, {}};
    }
    if (settings.auth_query.empty()) co_return SecretLookup{};
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > std::chrono::steady_clock::now()) {
      co_return SecretLookup{it->second.secret, {}};
    }
  }
  SecretLookup found = co_await run_auth_query(target, std::move(tls), settings.auth_query, settings.auth_user,
                                               settings.userlist.get(), user, database);
  if (found.error.empty() && settings.cache_ttl.count() > 0) {
    std::lock_guard lock(mutex_);
    if (generation == generation_) cache_[key] = Cached{found.secret, std::chrono::steady_clock::now() + settings.cache_ttl};
  }
  co_return found;
}

}  // namespace pgwarden::proxy
