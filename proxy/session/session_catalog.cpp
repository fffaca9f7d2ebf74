// The session's side of catalog_lookup: its database's catalog handed to the
// statement gate, the first lookup waited for (bounded), and DDL seen on the
// way back making the catalog be read again.

#include <spdlog/spdlog.h>

#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "proxy/session/catalog_lookup.hpp"
#include "proxy/session/session.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

policy::DatabaseCatalogPtr Session::catalog() {
  if (!catalog_lookup_on()) return nullptr;
  return ctx_.catalogs->find(policy_.facts().database, client_.executor());  // null: not known now, fail closed
}

awaitable<void> Session::await_catalog() {
  catalog_.awaited = true;
  const std::string& database = policy_.facts().database;
  if (catalog_lookup_on() && !database.empty()) co_await ctx_.catalogs->await_first(database);
}

void Session::note_command_complete(const pq::Frame& f) {
  pq::CommandComplete c;
  if (pq::parse(f.bytes, c) || !changes_catalog(c.tag)) return;
  ctx_.catalogs->invalidate(policy_.facts().database, client_.executor());
  // Inside a transaction the change is not visible to the lookup until the
  // commit: read again once the transaction ends.
  catalog_.changed = true;
}

void Session::note_catalog_ready() {
  if (gate_.transaction_status() != 'I') return;
  catalog_.changed = false;
  ctx_.catalogs->invalidate(policy_.facts().database, client_.executor());
}

}  // namespace pgwarden::proxy
