// The session's side of catalog_lookup: its database's catalog applied at
// decision time, the first lookup waited for (bounded), and DDL seen on the
// way back making the catalog be read again.

#include <spdlog/spdlog.h>

#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "proxy/session/catalog_lookup.hpp"
#include "proxy/session/session.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

/// True when some statement of `text` is FUNCTION only because of calls a
/// database's catalog may clear: the only case worth asking for it.
bool may_clear(const policy::ClassifiedText& text) {
  for (const policy::StatementFacts& s : text.statements)
    if (s.classes.contains(policy::StatementClass::Function) && !s.function_settled && !s.catalog_calls.empty())
      return true;
  return false;
}

}  // namespace

const policy::ClassifiedText& Session::with_catalog(const policy::ClassifiedText& text,
                                                    policy::ClassifiedText& scratch) {
  if (ctx_.catalogs == nullptr || !may_clear(text)) return text;
  catalog_ = ctx_.catalogs->find(facts_.database, client_.executor());  // null: not known now, fail closed
  return policy::apply_catalog(catalog_.get(), text, scratch);
}

awaitable<void> Session::await_catalog() {
  catalog_awaited_ = true;
  if (ctx_.catalogs != nullptr && !facts_.database.empty()) co_await ctx_.catalogs->await_first(facts_.database);
}

void Session::note_command_complete(const pq::Frame& f) {
  pq::CommandComplete c;
  if (pq::parse(f.bytes, c) || !changes_catalog(c.tag)) return;
  ctx_.catalogs->invalidate(facts_.database, client_.executor());
  // Inside a transaction the change is not visible to the lookup until the
  // commit: read again once the transaction ends.
  catalog_changed_ = true;
}

void Session::note_catalog_ready() {
  if (ready_status_ != 'I') return;
  catalog_changed_ = false;
  ctx_.catalogs->invalidate(facts_.database, client_.executor());
}

}  // namespace pgwarden::proxy
