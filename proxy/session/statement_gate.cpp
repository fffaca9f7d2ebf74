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

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

#include "policy/classifier.hpp"
#include "protocol/encoder.hpp"
#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/session/audit_trail.hpp"
#include "proxy/ops/log_setup.hpp"
#include "proxy/session/session.hpp"

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
      refusal(policy::DecisionReason::Default, pq::sqlstate::io_error,
              "pgwarden cannot write its audit log, so the statement was not run (audit.on_failure: block); "
              "statements run again as soon as the log is writable");
  return d;
}

// Bounds of what a session keeps of the statements it PREPAREd in SQL.
constexpr std::size_t max_sql_prepared_names = 4096;
constexpr std::size_t max_prepares_per_name = 16;

}  // namespace

void Session::refresh_config() {
  const std::uint64_t generation = ctx_.config->generation();
  if (config_ && generation == config_generation_) return;
  config_ = ctx_.config->current();
  config_generation_ = generation;
  facts_.environment = config_->environment;
  rule_counters_.clear();  // resolved for the previous rules
  if (!facts_.user.empty()) rule_mask_ = policy::session_mask(config_->policy, facts_);
}

policy::Decision Session::decide(const policy::ClassifiedText& text, policy::ProtocolPath path) {
  policy::Decision d = evaluate(text, path);
  note_decision(d);
  return d;
}

policy::Decision Session::evaluate(const policy::ClassifiedText& text, policy::ProtocolPath path) {
  facts_.protocol = path;
  decided_at_ = std::chrono::system_clock::now();  // also starts statement_duration
  decided_since_sync_ = true;
  facts_.now = std::chrono::floor<std::chrono::seconds>(decided_at_);
  if (read_only_lost_) return read_only_lost_refusal();
  // An EXECUTE (or EXPLAIN EXECUTE) of a statement PREPAREd in SQL in this
  // session runs what pgwarden saw at PREPARE: it is no dynamic SQL, and is
  // decided as the statement it runs, with the rules in force now. An
  // EXECUTE of any other name stays dynamic SQL.
  policy::ClassifiedText known, cleared;
  const policy::ClassifiedText& decided = with_catalog(without_known_executes(text, known), cleared);
  policy::Decision d = policy::evaluate(config_->policy, facts_, decided, rule_mask_);
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
      policy::Decision e = policy::evaluate(config_->policy, facts_, with_catalog(one, cleared_one), rule_mask_);
      if (e.denied()) {
        e.statement = static_cast<std::uint32_t>(i);
        return e;
      }
    }
  }
  return d;
}

const Session::SqlPrepares* Session::tracked_prepare(const policy::StatementFacts& s) const {
  if (s.prepared_name.empty() || s.command_tag == "PREPARE") return nullptr;
  const auto it = sql_prepared_.find(s.prepared_name);
  if (it == sql_prepared_.end() || !it->second || it->second->empty()) return nullptr;
  return &*it->second;
}

const policy::ClassifiedText& Session::without_known_executes(const policy::ClassifiedText& text,
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

void Session::note_sql_prepares(const policy::ClassifiedText& text) {
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

policy::ClassifiedTextPtr Session::classify_as_read(std::string_view sql, bool standard_conforming_strings) {
  if (standard_conforming_strings) return ctx_.classify_cache->classify(sql);
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
Session::ReadSql Session::read_sql(std::string_view raw, policy::ProtocolPath path) {
  ReadSql r;
  r.sql = raw;
  // Settled in UTF-8 (nearly every session): the text is read as it is, unscanned.
  const bool utf8 = client_encoding_ && client_encoding_->family() == policy::EncodingFamily::Utf8;
  const bool non_ascii = !(utf8 && reading_settled_) && policy::has_non_ascii(raw);
  // In an encoding pgwarden does not know, only ASCII text reads for sure.
  bool readable = client_encoding_ || !non_ascii;
  if (non_ascii && client_encoding_ && !utf8) {
    readable = client_encoding_->to_utf8(raw, sql_utf8_);
    if (readable) r.sql = sql_utf8_;
  }
  r.text = readable ? classify_as_read(r.sql, standard_conforming_strings_) : ctx_.classify_cache->classify(raw);
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
  note_decision(r.decision);
  return r;
}

void Session::note_decision(const policy::Decision& d) {
  if (!(d.dry_run && d.dry_run_rule) && !d.denied()) return;
  const std::string client = peer_.address().to_string();
  if (d.dry_run && d.dry_run_rule) {
    log_event(spdlog::level::info, "dry run: a rule would have denied a statement",
              {{"rule", d.dry_run_rule->name}, {"user", facts_.user}, {"client", client}});
  }
  if (d.denied()) {
    log_event(spdlog::level::info, "denied",
              {{"user", facts_.user}, {"database", facts_.database}, {"client", client}, {"rule", d.rule_name()},
               {"reason", to_string(d.reason)}});
  }
}

namespace {

/// The rule an audit record names: the deciding one, or in a dry run the
/// rule with enforce: false that would have denied (the record's dry_run
/// flag says which), so a reviewer sees what a roll-out would block.
std::string_view audited_rule(const policy::Decision& d) {
  return d.dry_run && d.dry_run_rule ? std::string_view(d.dry_run_rule->name) : d.rule_name();
}

Session::AuditedDecision audited(const policy::Decision& d) {
  return {audited_rule(d), d.dry_run, d.alert};
}

}  // namespace

CloseReason Session::gate_query(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (auto ec = pq::parse(f.bytes, query_msg_)) return fail(pq::sqlstate::protocol_violation, "invalid Query message: " + ec.message());
  const ReadSql read = read_sql(query_msg_.sql, policy::ProtocolPath::Simple);
  const auto& text = read.text;
  const policy::Decision& d = read.decision;
  count_execution(*text, d);
  if (config_->log.statements) log_statement("simple", read.sql, d);
  if (ctx_.audit) {
    if (d.denied()) {
      audit_refused(*text, read.sql, audit::Protocol::Simple, d);
    } else if (!audit_forward(*text, text, read.sql, audit::Protocol::Simple, audited(d))) {
      audit_refused(*text, read.sql, audit::Protocol::Simple, unaudited_refusal());
      return forward_or_deny_query(unaudited_refusal(), f, offset, out);
    }
  }
  if (!d.denied()) note_sql_prepares(*text);
  return forward_or_deny_query(d, f, offset, out);
}

/// For messages the server answers with ReadyForQuery on their own (Query,
/// FunctionCall): forward as is, or send the marker Query in their place.
CloseReason Session::forward_or_deny_query(const policy::Decision& d, const pq::Frame& f, std::size_t offset,
                                           Batch& out) {
  if (d.denied()) {
    deny(d);
    pq::append_query(out.substitute_begin(), marker_statement_);
    out.substitute_end();
  } else {
    out.forward(offset, f.bytes.size());
  }
  begin_sync_point();
  return CloseReason::None;
}

/// In place of an extended-protocol message that must not reach the server:
/// a Parse that fails at analysis, so the server skips to Sync itself.
void Session::substitute_marker_parse(Batch& out) {
  pq::encode(pq::Parse{"", marker_statement_, {}}, out.substitute_begin());
  out.substitute_end();
}

CloseReason Session::gate_parse(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (auto ec = pq::parse(f.bytes, parse_msg_)) return fail(pq::sqlstate::protocol_violation, "invalid Parse message: " + ec.message());
  ReadSql read = read_sql(parse_msg_.sql, policy::ProtocolPath::Extended);
  auto text = std::move(read.text);
  const policy::Decision& d = read.decision;
  if (config_->log.statements) log_statement("extended", read.sql, d);
  const std::uint64_t denied_at = d.denied() ? sync_points_sent_ : 0;
  auto it = statements_.find(parse_msg_.statement);
  // A statement parsed again with the same text (the unnamed statement of
  // most drivers, pgbench -M extended) keeps its entry: nothing allocated.
  const bool unchanged = it != statements_.end() && it->second->classified == text &&
                         it->second->denied_at == denied_at && (!ctx_.audit || it->second->text == read.sql);
  // A denied Parse is never answered (its marker fails), and its entry stays
  // to refuse every later Bind of the name.
  if (!d.denied()) note_statement_change('1', true, parse_msg_.statement);
  if (!unchanged) {
    auto prepared = std::make_shared<Prepared>();
    prepared->classified = std::move(text);
    prepared->denied_at = denied_at;
    if (ctx_.audit) prepared->text.assign(read.sql);
    if (it == statements_.end()) {
      statements_.emplace(std::string(parse_msg_.statement), std::move(prepared));
    } else {
      it->second = std::move(prepared);
    }
  }
  const policy::ClassifiedText& classified = *statements_.find(parse_msg_.statement)->second->classified;
  if (d.denied()) {
    deny(d);
    audit_refused(classified, read.sql, audit::Protocol::Extended, d, parse_msg_.statement);
    pq::encode(pq::Parse{parse_msg_.statement, marker_statement_, {}}, out.substitute_begin());
    out.substitute_end();
  } else {
    note_sql_prepares(classified);
    out.forward(offset, f.bytes.size());
  }
  return CloseReason::None;
}

std::shared_ptr<const Session::Prepared> Session::sql_prepared(std::string_view name) {
  auto p = std::make_shared<Prepared>();
  p->text = "EXECUTE \"";
  for (char c : name) p->text += c == '"' ? std::string_view("\"\"") : std::string_view(&c, 1);
  p->text += '"';
  p->classified = ctx_.classify_cache->classify(p->text);
  return p;
}

CloseReason Session::gate_bind(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (auto ec = pq::parse(f.bytes, bind_msg_)) return fail(pq::sqlstate::protocol_violation, "invalid Bind message: " + ec.message());
  // The decision made at Parse is made again with the rules in force now, so
  // a reload that denies a prepared statement takes effect at its next use.
  auto it = statements_.find(bind_msg_.statement);
  std::shared_ptr<const Prepared> statement;
  if (it != statements_.end()) {
    statement = it->second;
  } else if (!bind_msg_.statement.empty()) {
    // No Parse of this session named it: a statement PREPAREd in SQL, which
    // Bind runs as well. Decided as its SQL EXECUTE would be.
    statement = sql_prepared(bind_msg_.statement);
  }
  if (statement) {
    const Prepared& prepared = *statement;
    const policy::Decision d = decide(*prepared.classified, policy::ProtocolPath::Extended);
    count_execution(*prepared.classified, d);
    if (d.denied()) {
      deny(d);
      // Parse, Bind, Execute of one denied statement is one refusal: its
      // Parse in this batch was recorded, and the server skips the rest.
      if (prepared.denied_at != sync_points_sent_) {
        Portal bound;  // the parameters of the refused Bind, for its record
        if (ctx_.audit) keep_bind_parameters(bound);
        audit_refused(*prepared.classified, prepared.text, audit::Protocol::Extended, d, bind_msg_.statement,
                      bind_msg_.portal, &bound);
      }
      forget_portal(bind_msg_.portal);
      substitute_marker_parse(out);
      return CloseReason::None;
    }
    if (ctx_.audit) remember_portal(statement, d);
  } else {
    forget_portal(bind_msg_.portal);  // the server refuses this Bind; its Execute runs nothing
  }
  out.forward(offset, f.bytes.size());
  return CloseReason::None;
}

void Session::remember_portal(const std::shared_ptr<const Prepared>& statement, const policy::Decision& d) {
  auto it = portals_.find(bind_msg_.portal);  // the name's own string only for a new portal
  if (it == portals_.end()) it = portals_.emplace(std::string(bind_msg_.portal), std::make_unique<Portal>()).first;
  Portal& portal = *it->second;
  portal.statement = statement;
  portal.statement_name.assign(bind_msg_.statement);
  portal.rule.assign(audited_rule(d));
  portal.dry_run = d.dry_run;
  portal.alert = d.alert;
  keep_bind_parameters(portal);
}

void Session::keep_bind_parameters(Portal& portal) const {
  portal.params.clear();
  portal.param_flags.clear();
  if (ctx_.audit->encode_options().parameters == audit::ParameterMode::None) return;
  for (std::size_t i = 0; i < bind_msg_.params.size(); ++i) {
    const auto& value = bind_msg_.params[i];
    const std::int16_t format = bind_msg_.param_formats.empty()        ? 0
                                : bind_msg_.param_formats.size() == 1 ? bind_msg_.param_formats[0]
                                                                      : bind_msg_.param_formats[i];
    portal.params.emplace_back(value ? *value : std::string_view{});
    portal.param_flags.push_back(static_cast<std::uint8_t>((value ? 0 : 1) | (format == 1 ? 2 : 0)));
  }
}

CloseReason Session::gate_execute(const pq::Frame& f, std::size_t offset, Batch& out) {
  if (auto ec = pq::parse(f.bytes, execute_msg_)) return fail(pq::sqlstate::protocol_violation, "invalid Execute message: " + ec.message());
  auto it = portals_.find(execute_msg_.portal);
  if (it != portals_.end()) {
    const Portal& portal = *it->second;
    const AuditedDecision d{portal.rule, portal.dry_run, portal.alert};
    if (!audit_forward(*portal.statement->classified, portal.statement->classified, portal.statement->text,
                       audit::Protocol::Extended, d, portal.statement_name, execute_msg_.portal, &portal)) {
      deny(unaudited_refusal());
      audit_refused(*portal.statement->classified, portal.statement->text, audit::Protocol::Extended,
                    unaudited_refusal(), portal.statement_name, execute_msg_.portal, &portal);
      substitute_marker_parse(out);
      return CloseReason::None;
    }
  }
  out.forward(offset, f.bytes.size());
  return CloseReason::None;
}

CloseReason Session::gate_function_call(const pq::Frame& f, std::size_t offset, Batch& out) {
  const policy::Decision d = decide(function_call_facts(), policy::ProtocolPath::FunctionCall);
  count_execution(function_call_facts(), d);
  if (ctx_.audit) {
    pq::FunctionCall call;
    std::string text = "function call";
    if (!pq::parse(f.bytes, call)) text = "function call, oid " + std::to_string(call.function_oid);
    if (d.denied()) {
      audit_refused(function_call_facts(), text, audit::Protocol::Function, d);
    } else if (!audit_forward(function_call_facts(), nullptr, text, audit::Protocol::Function, audited(d))) {
      audit_refused(function_call_facts(), text, audit::Protocol::Function, unaudited_refusal());
      return forward_or_deny_query(unaudited_refusal(), f, offset, out);
    }
  }
  return forward_or_deny_query(d, f, offset, out);
}

void Session::forget_portal(std::string_view name) {
  if (portals_.empty()) return;
  auto it = portals_.find(name);
  if (it != portals_.end()) portals_.erase(it);
}

void Session::forget_statement(const pq::Frame& f) {
  pq::Close close;
  if (pq::parse(f.bytes, close)) return;
  note_statement_change('3', close.kind == 'S', close.name);
  if (close.kind == 'S') {
    auto it = statements_.find(close.name);
    if (it != statements_.end()) statements_.erase(it);
  } else if (close.kind == 'P') {
    forget_portal(close.name);
  }
}

void Session::deny(const policy::Decision& d) {
  PendingDenial pending;
  pending.sync_point = sync_points_sent_;
  pq::append_error(pending.error, "ERROR", d.sqlstate.empty() ? pq::sqlstate::insufficient_privilege : d.sqlstate, d.message);
  denials_.push_back(std::move(pending));
}

bool Session::rewrite_denial_error(const pq::Frame& f, Batch& out) {
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
void Session::note_statement_change(char answer, bool statement, std::string_view name) {
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

void Session::on_statement_answer(char answer) {
  if (!statement_changes_.empty() && statement_changes_.front().answer == answer) statement_changes_.pop_front();
}

void Session::undo_statement_changes() {
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

void Session::on_ready_for_query() {
  ++ready_seen_;
  observe_sync_point();
  while (!statement_changes_.empty() && statement_changes_.front().sync_point < ready_seen_) {
    statement_changes_.pop_front();  // answered or undone before; nothing is left of it
  }
  // A denial whose marker the server never ran (it was already skipping to
  // Sync after an earlier error) has nothing left to rewrite.
  while (!denials_.empty() && denials_.front().sync_point < ready_seen_) denials_.pop_front();
}

}  // namespace pgwarden::proxy
