#include "proxy/session/catalog_lookup.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

#include "config/secret_file.hpp"
#include "auth/scram.hpp"
#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "proxy/net/byte_buffer.hpp"
#include "proxy/net/message_reader.hpp"
#include "proxy/session/service_login.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

/// A catalog's rows are bounded: a function body is one message, the whole
/// answer at most this much.
constexpr std::size_t max_catalog_message = 16u << 20;
constexpr std::size_t max_catalog_bytes = 256u << 20;
/// How long a failed lookup is not tried again.
constexpr auto retry_after_failure = std::chrono::seconds(30);

/// One round trip: functions, operators, types, casts. Objects created by
/// initdb have oids below 16384 (FirstNormalObjectId); of those only the
/// functions behind user-created operators and casts are read.
constexpr std::string_view catalog_query =
    "SELECT p.oid, n.nspname, p.proname, p.provolatile, l.lanname, p.prosecdef, p.prosqlbody IS NOT NULL, "
    "p.oid < 16384, CASE WHEN l.lanname = 'sql' THEN p.prosrc ELSE '' END "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
    "WHERE p.oid >= 16384 OR p.oid IN (SELECT oprcode FROM pg_catalog.pg_operator WHERE oid >= 16384) "
    "OR p.oid IN (SELECT castfunc FROM pg_catalog.pg_cast WHERE casttarget >= 16384);"
    "SELECT n.nspname, o.oprname, o.oprcode::oid FROM pg_catalog.pg_operator o "
    "JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE o.oid >= 16384;"
    "SELECT t.oid, n.nspname, t.typname, t.typtype, "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid), "
    "t.typbasetype <> 0 AND t.typbasetype < 16384 "
    "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.oid >= 16384 AND t.typcategory <> 'A';"
    "SELECT casttarget, castfunc FROM pg_catalog.pg_cast WHERE casttarget >= 16384";

CatalogLoad lookup_error(std::string why) { return CatalogLoad{nullptr, std::move(why)}; }

/// The password in `path` (its first line), or "" when none is configured.
bool read_password(const std::string& path, std::string& out, std::string& error) {
  if (path.empty()) return true;
  std::string contents;
  if (!config::read_secret_file(path, contents, error)) {
    error = "catalog_lookup.password_file: " + error;
    return false;
  }
  out = config::password_of(contents);
  return true;
}

std::uint32_t to_oid(std::string_view s) {
  std::uint32_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

/// Adds one DataRow of result set `set` to `rows`; false when malformed.
bool add_row(int set, const pq::DataRow& row, policy::CatalogRows& rows) {
  const auto& c = row.columns;
  auto text = [&](std::size_t i) { return c[i] ? std::string(*c[i]) : std::string(); };
  auto flag = [&](std::size_t i) { return c[i] && *c[i] == "t"; };
  auto letter = [&](std::size_t i) { return c[i] && !c[i]->empty() ? (*c[i])[0] : '?'; };
  switch (set) {
    case 0:
      if (c.size() != 9) return false;
      rows.functions.push_back({to_oid(text(0)), text(1), text(2), letter(3), text(4), flag(5), flag(6), flag(7), text(8)});
      return true;
    case 1:
      if (c.size() != 3) return false;
      rows.operators.push_back({text(0), text(1), to_oid(text(2))});
      return true;
    case 2:
      if (c.size() != 6) return false;
      rows.types.push_back({to_oid(text(0)), text(1), text(2), letter(3), flag(4), flag(5)});
      return true;
    case 3:
      if (c.size() != 2) return false;
      rows.casts.push_back({to_oid(text(0)), to_oid(text(1))});
      return true;
    default:
      return false;
  }
}

awaitable<CatalogLoad> query_catalog(Stream& s, MessageReader& reader) {
  std::string out;
  pq::encode(pq::Query{catalog_query}, out);
  auto [ec, n] = co_await s.write(asio::buffer(out));
  if (ec) co_return lookup_error("could not write to the server: " + ec.message());
  policy::CatalogRows rows;
  std::string error;
  int set = -1;
  std::size_t bytes = 0;
  for (;;) {
    auto r = co_await reader.next(s);
    if (r.closed) co_return lookup_error("the server closed the connection");
    if (r.frame.ec) co_return lookup_error("the server sent an invalid message: " + r.frame.ec.message());
    const pq::Frame& f = r.frame;
    if ((bytes += f.bytes.size()) > max_catalog_bytes) co_return lookup_error("the catalog is larger than 256 MiB");
    if (f.type == 'E' && error.empty()) error = describe_server_error(f);
    if (f.type == 'T') ++set;
    if (f.type == 'D') {
      pq::DataRow row;
      if (pq::parse(f.bytes, row) || !add_row(set, row, rows)) error = "an unexpected row in the catalog's answer";
    }
    if (f.type == 'Z') break;
  }
  if (!error.empty()) co_return lookup_error("the catalog query failed: " + error);
  if (set != 3) co_return lookup_error("the catalog query returned " + std::to_string(set + 1) + " result sets, not 4");
  co_return CatalogLoad{std::make_shared<const policy::DatabaseCatalog>(policy::DatabaseCatalog::build(rows)), {}};
}

}  // namespace

awaitable<CatalogLoad> read_database_catalog(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls,
                                             const config::CatalogLookupConfig& settings,
                                             const std::string& database) {
  std::string password, error;
  if (!read_password(settings.password_file, password, error)) co_return lookup_error(error);
  UpstreamConnection conn = co_await connect_upstream(target, std::move(tls));
  if (!conn.stream) co_return lookup_error("could not connect to " + target.describe() + ": " + conn.error);
  Stream& s = *conn.stream;
  auth::UpstreamChannel channel{s.is_tls(), {}, auth::ChannelBinding::Prefer};
  if (conn.server_certificate) {
    if (auto hash = auth::tls_server_end_point(conn.server_certificate.get())) channel.end_point_hash = *hash;
  }
  std::string out;
  pq::encode(pq::StartupMessage{3u << 16, {{"user", settings.user}, {"database", database},
                                           {"application_name", "pgwarden catalog_lookup"},
                                           {"default_transaction_read_only", "on"},
                                           {"statement_timeout", "30000"}}},
             out);
  auto [ec, n] = co_await s.write(asio::buffer(out));
  if (ec) co_return lookup_error("could not write to the server: " + ec.message());
  ByteBuffer in(4096);
  MessageReader reader(in, max_catalog_message);
  // Named, not temporaries of the co_await: GCC 12 may destroy those twice.
  const std::string who = "the lookup role " + settings.user;
  const ServiceCredential credential{std::move(password), {}};
  const std::string failed = co_await log_in_service_role(s, reader, settings.user, who, credential, channel);
  if (!failed.empty()) {
    s.close();
    co_return lookup_error(failed);
  }
  CatalogLoad result = co_await query_catalog(s, reader);
  out.clear();
  pq::encode(pq::Terminate{}, out);
  co_await s.write(asio::buffer(out));
  s.close();
  co_return result;
}

bool changes_catalog(std::string_view tag) noexcept {
  if (tag == "DO" || tag == "CALL" || tag == "DROP OWNED" || tag == "REASSIGN OWNED") return true;
  std::string_view object;
  for (std::string_view verb : {"CREATE ", "ALTER ", "DROP "}) {
    if (tag.starts_with(verb)) object = tag.substr(verb.size());
  }
  for (std::string_view o : {"FUNCTION", "PROCEDURE", "ROUTINE", "AGGREGATE", "OPERATOR", "OPERATOR CLASS",
                             "OPERATOR FAMILY", "CAST", "TYPE", "DOMAIN", "EXTENSION", "SCHEMA", "LANGUAGE",
                             "TRANSFORM"}) {
    if (object == o) return true;
  }
  return false;
}

void CatalogLookup::replace(config::CatalogLookupConfig settings) {
  std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
  entries_.clear();
  ++generation_;
}

bool CatalogLookup::enabled() const {
  std::lock_guard lock(mutex_);
  return settings_.enabled();
}

void CatalogLookup::start_locked(const std::string& database, Entry& e, const asio::any_io_executor& executor) {
  if (e.loading) return;
  e.loading = true;
  asio::co_spawn(executor, load(database, generation_, e.epoch, settings_, executor), asio::detached);
}

policy::DatabaseCatalogPtr CatalogLookup::find(const std::string& database, const asio::any_io_executor& executor) {
  std::lock_guard lock(mutex_);
  if (!settings_.enabled()) return nullptr;
  Entry& e = entries_[database];
  const auto now = std::chrono::steady_clock::now();
  const bool due = e.catalog ? settings_.refresh.count() > 0 && now - e.loaded_at >= settings_.refresh
                             : now >= e.retry_at;
  if (due) start_locked(database, e, executor);
  return e.catalog;
}

awaitable<void> CatalogLookup::await_first(std::string database) {
  const auto executor = co_await asio::this_coro::executor;
  std::chrono::steady_clock::time_point deadline;
  {
    std::lock_guard lock(mutex_);
    deadline = std::chrono::steady_clock::now() + settings_.first_load_wait;
  }
  while (std::chrono::steady_clock::now() < deadline) {
    if (find(database, executor)) co_return;
    {
      std::lock_guard lock(mutex_);
      const auto it = entries_.find(database);
      if (it == entries_.end() || !it->second.loading) co_return;  // lookup off, or failed
    }
    co_await sleep_for(std::chrono::milliseconds(5));
  }
}

void CatalogLookup::invalidate(const std::string& database, const asio::any_io_executor& executor) {
  std::lock_guard lock(mutex_);
  if (!settings_.enabled()) return;
  Entry& e = entries_[database];
  e.catalog.reset();
  ++e.epoch;
  e.retry_at = {};
  start_locked(database, e, executor);
}

awaitable<void> CatalogLookup::load(std::string database, std::uint64_t generation, std::uint64_t epoch,
                                    config::CatalogLookupConfig settings, asio::any_io_executor executor) {
  // co_spawn may start this inline, under the caller's lock: run from a post.
  co_await asio::post(executor, asio::use_awaitable);
  std::shared_ptr<UpstreamTls> tls = tls_ ? tls_->upstream() : nullptr;
  CatalogLoad loaded;
  try {
    loaded = co_await read_database_catalog(target_, std::move(tls), settings, database);
  } catch (const std::exception& e) {  // never a worker's end: the catalog stays unknown
    loaded = lookup_error(e.what());
  }
  std::lock_guard lock(mutex_);
  if (generation != generation_) co_return;  // the configuration changed: entries_ was cleared
  Entry& e = entries_[database];
  e.loading = false;
  if (epoch != e.epoch) {  // DDL ran meanwhile: what was read may be stale
    start_locked(database, e, executor);
    co_return;
  }
  if (!loaded.error.empty()) {
    e.retry_at = std::chrono::steady_clock::now() + retry_after_failure;
    if (loaded.error != e.last_error) {
      spdlog::error("catalog_lookup: cannot read the catalog of database {} as {}: {}; calls of functions, "
                    "operators and casts pgwarden does not know stay FUNCTION there",
                    database, settings.user, loaded.error);
    }
    e.last_error = std::move(loaded.error);
    co_return;
  }
  if (!e.last_error.empty()) spdlog::info("catalog_lookup: the catalog of database {} is read again", database);
  e.last_error.clear();
  e.catalog = std::move(loaded.catalog);
  e.loaded_at = std::chrono::steady_clock::now();
  spdlog::debug("catalog_lookup: read the catalog of database {}: {} names side-effect free", database,
                e.catalog->safe_names());
}

}  // namespace pgwarden::proxy
