// Policy on the data path: every Query, Parse, Bind and FunctionCall is
// classified and decided before it may reach the server.
//
// A denied message is replaced by a statement that makes the server itself
// fail at the same point (`SELECT <marker>`, an unknown column), so the
// server's state is exactly what a permission error would leave: the
// transaction aborted inside a block, the rest of an extended batch skipped
// up to Sync, the connection usable. On the way back the server's error that
// carries this session's random marker is replaced with the denial (42501 and
// the rule's name); no other message changes.

#include <algorithm>
#include <iterator>

#include "policy/classifier.hpp"
#include "protocol/encoder.hpp"
#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/session/statement_gate.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

/// Facts for a FunctionCall message: the fast-path interface runs a function
/// by oid, without SQL the classifier could read.
const policy::ClassifiedText& function_call_facts() {
  static const policy::ClassifiedText text = [] {
    policy::StatementFacts f;
    f.command_tag = "FUNCTION CALL";
    f.effective_tags = {f.command_tag};
    f.classes.insert(policy::StatementClass::Function);
    f.dynamic_sql = true;
    policy::ClassifiedText t;
    t.statements.push_back(std::move(f));
    return t;
  }();
  return text;
}

/// A refusal pgwarden makes itself, whatever the rules say.
policy::Decision refusal(policy::DecisionReason reason, std::string_view sqlstate, std::string_view message) {
  policy::Decision d;
  d.action = policy::Action::Deny;
  d.reason = reason;
  d.sqlstate = sqlstate;
  d.message = message;
  return d;
}

/// What a statement gets when its bytes are not valid in the session's
/// client_encoding: refused, as the server would refuse it, because
/// pgwarden cannot tell what the server would make of it.
const policy::Decision& unreadable_refusal() {
  static const policy::Decision d = refusal(
      policy::DecisionReason::UnreadableText, pq::sqlstate::character_not_in_repertoire,
      "invalid byte sequence for the session's client_encoding: pgwarden reads every statement as the server will "
      "and could not read this one, so it was not run");
  return d;
}

/// What every statement gets in a read-only session whose server said it is
/// read-only no more: something pgwarden could not see (a function called
/// by attribute notation, a view) turned default_transaction_read_only off.
const policy::Decision& read_only_lost_refusal() {
  static const policy::Decision d = refusal(
      policy::DecisionReason::ReadOnlySession, pq::sqlstate::insufficient_privilege,
      "permission denied by pgwarden: this session was opened read-only, and a statement it ran turned "
      "default_transaction_read_only off; pgwarden runs nothing more in it (reconnect)");
  return d;
}

/// What a statement gets when its audit record cannot be written and
/// audit.on_failure is block: refused like a denial, with 58030.
const policy::Decision& unaudited_refusal() {
  static const policy::Decision d =
      refusal(policy::DecisionReason::AuditUnavailable, pq::sqlstate::io_error,
              "pgwarden cannot write its audit log, so the statement was not run (audit.on_failure: block); "
              "statements run again as soon as the log is writable");
  return d;
}

}  // namespace

StatementGate::StatementGate(SessionPolicy& policy, policy::ClassifyCache& cache, GateObserver& observer,
                             std::string marker, GateOptions options)
    : policy_(policy),
      cache_(cache),
      observer_(observer),
      options_(options),
      marker_(std::move(marker)),
      marker_statement_("SELECT " + marker_) {}

std::optional<std::string> StatementGate::client_message(const pq::Frame& f, std::size_t offset, Batch& out) {
  // Whether the server has answered everything before this message, and
  // so reported any change to how it reads SQL text.
  reading_settled_ = ready_seen_ == sync_points_sent_ && !unsynced_;
  namespace frontend = pq::frontend_type;
  switch (f.type) {
    case frontend::Parse: case frontend::Bind: case frontend::Execute: case frontend::Describe:
    case frontend::Close: case frontend::Flush:
      unsynced_ = true;
      break;
    default:
      break;
  }
  switch (f.type) {
    case frontend::Query: return query(f, offset, out);
    case frontend::Parse: return parse(f, offset, out);
    case frontend::Bind: return bind(f, offset, out);
    case frontend::FunctionCall:
      function_call(f, offset, out);
      return std::nullopt;
    case frontend::Execute:
      if (options_.keep_texts) return execute(f, offset, out);
      break;
    case frontend::Close: close(f); break;
    case frontend::Sync: begin_sync_point(); break;
    default: break;
  }
  out.forward(offset, f.bytes.size());
  return std::nullopt;
}

void StatementGate::begin_sync_point() {
  unsynced_ = false;
  ++sync_points_sent_;
  observer_.sync_point_begun(sync_points_sent_, std::exchange(decided_at_, std::nullopt));
}

policy::Decision StatementGate::decide(const policy::ClassifiedText& text, policy::ProtocolPath path) {
  policy::Decision d = evaluate(text, path);
  observer_.decided(d);
  return d;
}

policy::Decision StatementGate::evaluate(const policy::ClassifiedText& text, policy::ProtocolPath path) {
  const auto now = std::chrono::system_clock::now();
  if (!decided_at_) decided_at_ = now;  // starts statement_duration
  policy_.set_statement(path, std::chrono::floor<std::chrono::seconds>(now));
  if (read_only_lost_) return read_only_lost_refusal();
  // An EXECUTE (or EXPLAIN EXECUTE) of a statement PREPAREd in SQL in this
  // session runs what pgwarden saw at PREPARE: it is no dynamic SQL, and is
  // decided as the statement it runs, with the rules in force now. An
  // EXECUTE of any other name stays dynamic SQL.
  policy::ClassifiedText known, cleared;
  const policy::ClassifiedText& decided = with_catalog(without_known_executes(text, known), cleared);
  policy::Decision d = policy_.evaluate(decided);
  if (d.denied() || sql_prepared_.empty()) return d;
  for (std::size_t i = 0; i < decided.statements.size(); ++i) {
    const policy::StatementFacts& s = decided.statements[i];
    const SqlPrepares* versions = tracked_prepare(s);
    if (versions == nullptr) continue;
    for (const policy::StatementFacts& prepared : *versions) {
      policy::ClassifiedText one;
      one.statements.push_back(s);
      policy::add_ran(one.statements.back(), prepared);
      policy::ClassifiedText cleared_one;
      policy::Decision e = policy_.evaluate(with_catalog(one, cleared_one));
      if (e.denied()) {
        e.statement = static_cast<std::uint32_t>(i);
        return e;
      }
    }
  }
  return d;
}

const policy::ClassifiedText& StatementGate::with_catalog(const policy::ClassifiedText& text,
                                                          policy::ClassifiedText& scratch) {
  if (!policy::may_clear(text)) return text;
  catalog_ = observer_.catalog();
  return policy::apply_catalog(catalog_.get(), text, scratch);
}

const StatementGate::SqlPrepares* StatementGate::tracked_prepare(const policy::StatementFacts& s) const {
  if (s.prepared_name.empty() || s.command_tag == "PREPARE") return nullptr;
  const auto it = sql_prepared_.find(s.prepared_name);
  if (it == sql_prepared_.end() || !it->second || it->second->empty()) return nullptr;
  return &*it->second;
}

const policy::ClassifiedText& StatementGate::without_known_executes(const policy::ClassifiedText& text,
                                                                    policy::ClassifiedText& copy) const {
  if (sql_prepared_.empty()) return text;
  bool any = false;
  for (const policy::StatementFacts& s : text.statements) any = any || tracked_prepare(s) != nullptr;
  if (!any) return text;
  copy = text;
  for (policy::StatementFacts& s : copy.statements)
    if (tracked_prepare(s) != nullptr) s.dynamic_sql = false;
  return copy;
}

void StatementGate::note_sql_prepares(const policy::ClassifiedText& text) {
  for (const policy::StatementFacts& s : text.statements) {
    if (s.command_tag != "PREPARE" || s.prepared_name.empty()) continue;
    auto it = sql_prepared_.find(s.prepared_name);
    if (it == sql_prepared_.end()) {
      // Past the bound a name stays untracked: its EXECUTE is decided as dynamic SQL only.
      it = sql_prepared_.emplace(s.prepared_name, std::nullopt).first;
      if (sql_prepared_.size() <= max_sql_prepared_names) it->second.emplace();
    }
    if (!it->second) continue;
    if (it->second->size() >= max_prepares_per_name) {
      it->second.reset();
      continue;
    }
    // What the prepared statement does: PREPARE's facts without its own tag.
    policy::StatementFacts& ran = it->second->emplace_back(s);
    ran.effective_tags.erase(ran.effective_tags.begin());
  }
}

policy::ClassifiedTextPtr StatementGate::classify_as_read(std::string_view sql, bool standard_conforming_strings) {
  if (standard_conforming_strings) return cache_.classify(sql);
  // Rare (a legacy setting): not cached, since the same text means something else.
  return std::make_shared<const policy::ClassifiedText>(policy::classify(sql, {false}));
}

// The server converts the text from client_encoding and lexes it with its
// standard_conforming_strings; pgwarden classifies what the server will
// read. While earlier requests are unanswered, either setting may be about
// to change (SET client_encoding in the previous Query of a pipeline), so a
// text whose reading depends on them, one with a byte from 0x80 or a
// backslash, is also read every other way the server could read it, and
// the strictest decision stands.
StatementGate::ReadSql StatementGate::read_sql(std::string_view raw, policy::ProtocolPath path) {
  ReadSql r;
  r.sql = raw;
  // Settled in UTF-8 (nearly every session): the text is read as it is, unscanned.
  const bool utf8 = client_encoding_ && client_encoding_->family() == policy::EncodingFamily::Utf8;
  const bool non_ascii = !(utf8 && reading_settled_) && policy::has_non_ascii(raw);
  // In an encoding pgwarden does not know, only ASCII text reads for sure.
  bool readable = client_encoding_ || !non_ascii;
  if (non_ascii && client_encoding_ && !utf8) {
    readable = client_encoding_->to_utf8(raw, scratch_.utf8);
    if (readable) r.sql = scratch_.utf8;
  }
  r.text = readable ? classify_as_read(r.sql, standard_conforming_strings_) : cache_.classify(raw);
  r.decision = evaluate(*r.text, path);
  if (!readable) r.decision = unreadable_refusal();
  const bool backslash = !reading_settled_ && raw.find('\\') != std::string_view::npos;
  if (!r.decision.denied() && !reading_settled_ && (non_ascii || backslash)) {
    // Any other reading that is denied decides. Without non-ASCII bytes only
    // the string syntax can differ, without a backslash only the encoding.
    auto denied_otherwise = [&](std::string_view sql, bool standard) {
      const policy::Decision d = evaluate(*classify_as_read(sql, standard), path);
      if (d.denied()) r.decision = d;
      return d.denied();
    };
    for (const bool standard : {true, false}) {
      if (!backslash && standard != standard_conforming_strings_) continue;
      if (!non_ascii) {
        if (standard != standard_conforming_strings_ && denied_otherwise(raw, standard)) break;
        continue;
      }
      const auto denied_in = [&](policy::EncodingFamily family) {
        return denied_otherwise(policy::structural_reading(raw, family), standard);
      };
      if (std::any_of(std::begin(policy::encoding_families), std::end(policy::encoding_families), denied_in)) break;
    }
  }
  observer_.decided(r.decision);
  return r;
}

namespace {

/// The rule an audit record names: the deciding one, or in a dry run the
/// rule with enforce: false that would have denied (the record's dry_run
/// flag says which), so a reviewer sees what a roll-out would block.
std::string_view audited_rule(const policy::Decision& d) {
  return d.dry_run && d.dry_run_rule ? std::string_view(d.dry_run_rule->name) : d.rule_name();
}

AuditedDecision audited(const policy::Decision& d) {
  return {audited_rule(d), d.dry_run, d.alert};
}

std::string invalid(std::string_view what, std::error_code ec) {
  return "invalid " + std::string(what) + " message: " + ec.message();
}

}  // namespace

GatedStatement StatementGate::gated(const policy::ClassifiedText& text, std::string_view sql,
                                    audit::Protocol protocol) const {
  return GatedStatement{.text = text, .keep = nullptr, .sql = sql, .protocol = protocol, .statement_name = {},
                        .portal_name = {}, .portal = nullptr, .sync_point = sync_points_sent_};
}

std::optional<std::string> StatementGate::query(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (auto ec = pq::parse(f.bytes, scratch_.query)) return invalid("Query", ec);
  const ReadSql read = read_sql(scratch_.query.sql, policy::ProtocolPath::Simple);
  const policy::ClassifiedText& text = *read.text;
  const policy::Decision& d = read.decision;
  observer_.counted(text, d);
  observer_.read("simple", read.sql, d);
  GatedStatement s = gated(text, read.sql, audit::Protocol::Simple);
  s.keep = read.text;
  if (d.denied()) {
    observer_.refused(s, d);
  } else if (!observer_.forwarding(s, audited(d))) {
    observer_.refused(s, unaudited_refusal());
    forward_or_deny_query(unaudited_refusal(), f, offset, out);
    return std::nullopt;
  } else {
    note_sql_prepares(text);
  }
  forward_or_deny_query(d, f, offset, out);
  return std::nullopt;
}

void StatementGate::forward_or_deny_query(const policy::Decision& d, const pq::Frame& f, std::size_t offset,
                                          Batch& out) {
  if (d.denied()) {
    deny(d);
    pq::append_query(out.substitute_begin(), marker_statement_);
    out.substitute_end();
  } else {
    out.forward(offset, f.bytes.size());
  }
  begin_sync_point();
}

/// In place of an extended-protocol message that must not reach the server:
/// a Parse that fails at analysis, so the server skips to Sync itself.
void StatementGate::substitute_marker_parse(Batch& out) {
  pq::encode(pq::Parse{"", marker_statement_, {}}, out.substitute_begin());
  out.substitute_end();
}

std::optional<std::string> StatementGate::parse(const pq::Frame& f, std::size_t offset, Batch& out) {
  pq::Parse& msg = scratch_.parse;
  if (auto ec = pq::parse(f.bytes, msg)) return invalid("Parse", ec);
  ReadSql read = read_sql(msg.sql, policy::ProtocolPath::Extended);
  auto text = std::move(read.text);
  const policy::Decision& d = read.decision;
  observer_.read("extended", read.sql, d);
  const std::uint64_t denied_at = d.denied() ? sync_points_sent_ : 0;
  auto it = statements_.find(msg.statement);
  // A statement parsed again with the same text (the unnamed statement of
  // most drivers, pgbench -M extended) keeps its entry: nothing allocated.
  const bool unchanged = it != statements_.end() && it->second->classified == text &&
                         it->second->denied_at == denied_at && (!options_.keep_texts || it->second->text == read.sql);
  // A denied Parse is never answered (its marker fails), and its entry stays
  // to refuse every later Bind of the name.
  if (!d.denied()) note_statement_change(pq::backend_type::ParseComplete, true, msg.statement);
  if (!unchanged) {
    auto prepared = std::make_shared<PreparedStatement>();
    prepared->classified = std::move(text);
    prepared->denied_at = denied_at;
    if (options_.keep_texts) prepared->text.assign(read.sql);
    if (it == statements_.end()) {
      it = statements_.emplace(std::string(msg.statement), std::move(prepared)).first;
    } else {
      it->second = std::move(prepared);
    }
  }
  const policy::ClassifiedText& classified = *it->second->classified;
  if (d.denied()) {
    deny(d);
    GatedStatement s = gated(classified, read.sql, audit::Protocol::Extended);
    s.statement_name = msg.statement;
    observer_.refused(s, d);
    pq::encode(pq::Parse{msg.statement, marker_statement_, {}}, out.substitute_begin());
    out.substitute_end();
  } else {
    note_sql_prepares(classified);
    out.forward(offset, f.bytes.size());
  }
  return std::nullopt;
}

std::shared_ptr<const PreparedStatement> StatementGate::sql_prepared(std::string_view name) {
  auto p = std::make_shared<PreparedStatement>();
  p->text = "EXECUTE \"";
  for (char c : name) p->text += c == '"' ? std::string_view("\"\"") : std::string_view(&c, 1);
  p->text += '"';
  p->classified = cache_.classify(p->text);
  return p;
}

std::optional<std::string> StatementGate::bind(const pq::Frame& f, std::size_t offset, Batch& out) {
  const pq::Bind& msg = scratch_.bind;
  if (auto ec = pq::parse(f.bytes, scratch_.bind)) return invalid("Bind", ec);
  // The decision made at Parse is made again with the rules in force now, so
  // a reload that denies a prepared statement takes effect at its next use.
  auto it = statements_.find(msg.statement);
  std::shared_ptr<const PreparedStatement> statement;
  if (it != statements_.end()) {
    statement = it->second;
  } else if (!msg.statement.empty()) {
    // No Parse of this session named it: a statement PREPAREd in SQL, which
    // Bind runs as well. Decided as its SQL EXECUTE would be.
    statement = sql_prepared(msg.statement);
  }
  if (statement) {
    const PreparedStatement& prepared = *statement;
    const policy::Decision d = decide(*prepared.classified, policy::ProtocolPath::Extended);
    observer_.counted(*prepared.classified, d);
    if (d.denied()) {
      deny(d);
      // Parse, Bind, Execute of one denied statement is one refusal: its
      // Parse in this batch was recorded, and the server skips the rest.
      if (prepared.denied_at != sync_points_sent_) {
        Portal bound;  // the parameters of the refused Bind, for its record
        keep_bind_parameters(bound);
        GatedStatement s = gated(*prepared.classified, prepared.text, audit::Protocol::Extended);
        s.statement_name = msg.statement;
        s.portal_name = msg.portal;
        s.portal = &bound;
        observer_.refused(s, d);
      }
      forget_portal(msg.portal);
      substitute_marker_parse(out);
      return std::nullopt;
    }
    if (options_.keep_texts) remember_portal(statement, d);
  } else {
    forget_portal(msg.portal);  // the server refuses this Bind; its Execute runs nothing
  }
  out.forward(offset, f.bytes.size());
  return std::nullopt;
}

void StatementGate::remember_portal(const std::shared_ptr<const PreparedStatement>& statement,
                                   const policy::Decision& d) {
  const pq::Bind& msg = scratch_.bind;
  auto it = portals_.find(msg.portal);  // the name's own string only for a new portal
  if (it == portals_.end()) it = portals_.emplace(std::string(msg.portal), std::make_unique<Portal>()).first;
  Portal& portal = *it->second;
  portal.statement = statement;
  portal.statement_name.assign(msg.statement);
  portal.rule.assign(audited_rule(d));
  portal.dry_run = d.dry_run;
  portal.alert = d.alert;
  keep_bind_parameters(portal);
}

void StatementGate::keep_bind_parameters(Portal& portal) const {
  const pq::Bind& msg = scratch_.bind;
  portal.params.clear();
  portal.param_flags.clear();
  if (!options_.keep_parameters) return;
  for (std::size_t i = 0; i < msg.params.size(); ++i) {
    const auto& value = msg.params[i];
    const std::int16_t format = msg.param_formats.empty()        ? 0
                                : msg.param_formats.size() == 1 ? msg.param_formats[0]
                                                                : msg.param_formats[i];
    portal.params.emplace_back(value ? *value : std::string_view{});
    portal.param_flags.push_back(static_cast<std::uint8_t>((value ? 0 : 1) | (format == 1 ? 2 : 0)));
  }
}

std::optional<std::string> StatementGate::execute(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (auto ec = pq::parse(f.bytes, scratch_.execute)) return invalid("Execute", ec);
  auto it = portals_.find(scratch_.execute.portal);
  if (it != portals_.end()) {
    const Portal& portal = *it->second;
    GatedStatement s = gated(*portal.statement->classified, portal.statement->text, audit::Protocol::Extended);
    s.keep = portal.statement->classified;
    s.statement_name = portal.statement_name;
    s.portal_name = scratch_.execute.portal;
    s.portal = &portal;
    if (!observer_.forwarding(s, {portal.rule, portal.dry_run, portal.alert})) {
      deny(unaudited_refusal());
      observer_.refused(s, unaudited_refusal());
      substitute_marker_parse(out);
      return std::nullopt;
    }
  }
  out.forward(offset, f.bytes.size());
  return std::nullopt;
}

void StatementGate::function_call(const pq::Frame& f, std::size_t offset, Batch& out) {
  const policy::Decision d = decide(function_call_facts(), policy::ProtocolPath::FunctionCall);
  observer_.counted(function_call_facts(), d);
  pq::FunctionCall call;
  std::string text = "function call";
  if (!pq::parse(f.bytes, call)) text = "function call, oid " + std::to_string(call.function_oid);
  const GatedStatement s = gated(function_call_facts(), text, audit::Protocol::Function);
  if (d.denied()) {
    observer_.refused(s, d);
  } else if (!observer_.forwarding(s, audited(d))) {
    observer_.refused(s, unaudited_refusal());
    forward_or_deny_query(unaudited_refusal(), f, offset, out);
    return;
  }
  forward_or_deny_query(d, f, offset, out);
}

void StatementGate::forget_portal(std::string_view name) {
  if (portals_.empty()) return;
  auto it = portals_.find(name);
  if (it != portals_.end()) portals_.erase(it);
}

void StatementGate::close(const pq::Frame& f) {
  pq::Close close;
  if (pq::parse(f.bytes, close)) return;
  note_statement_change(pq::backend_type::CloseComplete, close.kind == 'S', close.name);
  if (close.kind == 'S') {
    auto it = statements_.find(close.name);
    if (it != statements_.end()) statements_.erase(it);
  } else if (close.kind == 'P') {
    forget_portal(close.name);
  }
}

void StatementGate::deny(const policy::Decision& d) {
  PendingDenial pending;
  pending.sync_point = sync_points_sent_;
  pq::append_error(pending.error, "ERROR", d.sqlstate.empty() ? pq::sqlstate::insufficient_privilege : d.sqlstate,
                   d.message);
  denials_.push_back(std::move(pending));
}

bool StatementGate::error_response(const pq::Frame& f, Batch& out) {
  undo_statement_changes();
  if (denials_.empty() || f.body().find(marker_) == std::string_view::npos) return false;
  std::string& sub = out.substitute_begin();
  sub += denials_.front().error;
  out.substitute_end();
  denials_.pop_front();
  return true;
}

// The server answers each Parse and Close in order, or reports an error and
// skips the rest of the batch up to Sync: a Parse of a name that exists
// already fails there, and so does anything after an error. Either way the
// name keeps the statement it had, and so must statements_, or a Bind later
// (after a reload) would be decided on a text the server does not hold.
void StatementGate::note_statement_change(char answer, bool statement, std::string_view name) {
  StatementChange c;
  c.sync_point = sync_points_sent_;
  c.answer = answer;
  c.statement = statement;
  if (statement) {
    c.name.assign(name);
    if (auto it = statements_.find(name); it != statements_.end()) c.previous = it->second;
  }
  statement_changes_.push_back(std::move(c));
}

void StatementGate::statement_answer(char type) {
  if (!statement_changes_.empty() && statement_changes_.front().answer == type) statement_changes_.pop_front();
}

void StatementGate::undo_statement_changes() {
  // What the server was doing when it failed, and what it skips up to
  // Sync: this sync point's changes still unanswered, undone newest first.
  // A name changed again by a later request (pipelined) keeps that change,
  // which now starts from what this one found.
  std::size_t n = 0;
  while (n < statement_changes_.size() && statement_changes_[n].sync_point == ready_seen_) ++n;
  for (std::size_t i = n; i-- > 0;) {
    StatementChange& c = statement_changes_[i];
    if (!c.statement) continue;
    auto later = std::find_if(statement_changes_.begin() + static_cast<std::ptrdiff_t>(n), statement_changes_.end(),
                              [&](const StatementChange& l) { return l.statement && l.name == c.name; });
    if (later != statement_changes_.end()) {
      later->previous = std::move(c.previous);
    } else if (c.previous) {
      statements_.insert_or_assign(std::move(c.name), std::move(c.previous));
    } else if (auto it = statements_.find(c.name); it != statements_.end()) {
      statements_.erase(it);
    }
  }
  statement_changes_.erase(statement_changes_.begin(), statement_changes_.begin() + static_cast<std::ptrdiff_t>(n));
}

void StatementGate::ready_for_query(char status) {
  ++ready_seen_;
  ready_status_ = status;
  while (!statement_changes_.empty() && statement_changes_.front().sync_point < ready_seen_) {
    statement_changes_.pop_front();  // answered or undone before; nothing is left of it
  }
  // A denial whose marker the server never ran (it was already skipping to
  // Sync after an earlier error) has nothing left to rewrite.
  while (!denials_.empty() && denials_.front().sync_point < ready_seen_) denials_.pop_front();
}

bool StatementGate::parameter_status(std::string_view name, std::string_view value) {
  if (name == "client_encoding") {
    client_encoding_ = policy::ClientEncoding::named(value);  // unknown: text with non-ASCII bytes is refused
    return true;
  }
  if (name == "standard_conforming_strings") {
    standard_conforming_strings_ = value != "off";
    return true;
  }
  if (name == "default_transaction_read_only") {  // reported since PostgreSQL 14
    read_only_lost_ = read_only_lost_ || (policy_.facts().read_only && value != "on");
    return true;
  }
  return false;
}

}  // namespace pgwarden::proxy
