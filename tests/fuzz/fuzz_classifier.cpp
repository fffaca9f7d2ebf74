// libFuzzer target: SQL text, as a client sends it, through the classifier
// and the rule evaluator. Input: the text.
// Invariants: no crash; text that does not parse is never allowed for a
// session a deny rule covers (fail closed), whatever the rule's statement
// conditions; a statement's facts depend on its text alone (classifying it
// again, after other text, or on its own gives the same facts).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "policy/classifier.hpp"
#include "policy/evaluator.hpp"
#include "policy/rules.hpp"

namespace fz = pgwarden::protocol::fuzz;
namespace pl = pgwarden::policy;

namespace {

// bob: a read-only rule on classes; carol: a rule on one flag only.
const pl::RuleSet& rules() {
  static const pl::RuleSet set = [] {
    pl::Rule read_only;
    read_only.name = "read-only";
    read_only.when.who.users.push_back(*pl::Glob::compile("bob", pl::GlobCase::Identifier));
    read_only.when.classes.insert(pl::StatementClass::Write);
    read_only.when.classes.insert(pl::StatementClass::Function);
    pl::Rule no_locks;
    no_locks.name = "no-locks";
    no_locks.when.who.users.push_back(*pl::Glob::compile("carol", pl::GlobCase::Identifier));
    no_locks.when.locks = true;
    return pl::RuleSet::build({read_only, no_locks}, {}, {}, pl::Action::Allow);
  }();
  return set;
}

pl::SessionFacts session(const char* user) {
  pl::SessionFacts s;
  s.user = user;
  s.database = "app";
  return s;
}

bool same_objects(const std::vector<pl::ObjectRef>& a, const std::vector<pl::ObjectRef>& b) { return a == b; }

// Everything a rule or an audit record reads, but where the statement is.
bool same_facts(const pl::StatementFacts& a, const pl::StatementFacts& b) {
  return a.command_tag == b.command_tag && a.effective_tags == b.effective_tags && a.classes == b.classes &&
         same_objects(a.objects, b.objects) && a.functions == b.functions &&
         a.update_or_delete_without_where == b.update_or_delete_without_where && a.dynamic_sql == b.dynamic_sql &&
         a.role_change == b.role_change && a.role_target == b.role_target && a.hidden_write == b.hidden_write &&
         a.runs_program == b.runs_program && a.server_file_access == b.server_file_access &&
         a.signals_backends == b.signals_backends && a.large_objects == b.large_objects &&
         a.remote_database == b.remote_database && a.locks == b.locks && a.notify == b.notify &&
         a.maintenance == b.maintenance && a.prepared_name == b.prepared_name && a.unparseable == b.unparseable;
}

bool same_text(const pl::ClassifiedText& a, const pl::ClassifiedText& b) {
  if (a.unparseable != b.unparseable || a.statements.size() != b.statements.size()) return false;
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    if (!same_facts(a.statements[i], b.statements[i]) || a.statements[i].location != b.statements[i].location ||
        a.statements[i].length != b.statements[i].length)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  const pl::ClassifiedText text = pl::classify(sql);

  bool any_unparseable = text.unparseable;
  for (const pl::StatementFacts& f : text.statements) any_unparseable = any_unparseable || f.unparseable;
  const pl::Decision bob = pl::evaluate(rules(), session("bob"), text);
  const pl::Decision carol = pl::evaluate(rules(), session("carol"), text);
  if (any_unparseable) {
    fz::check(bob.denied(), "unparseable text allowed under a deny rule on classes");
    fz::check(carol.denied(), "unparseable text allowed under a deny rule on a flag");
  }

  // The same text again, after other text that sets every kind of fact.
  pl::classify("SET ROLE admin; SELECT (1).pg_terminate_backend, t.lo_unlink FROM t FOR UPDATE; NOTIFY c");
  fz::check(same_text(text, pl::classify(sql)), "facts changed when the text was classified again");

  // Each statement of a parsed multi-statement text, on its own.
  if (!text.unparseable && text.statements.size() > 1) {
    for (const pl::StatementFacts& f : text.statements) {
      if (f.unparseable || f.location + std::size_t{f.length} > sql.size()) continue;
      const pl::ClassifiedText alone = pl::classify(sql.substr(f.location, f.length));
      if (alone.statements.size() != 1) continue;  // a piece of text need not stand alone
      fz::check(same_facts(f, alone.statements[0]), "a statement's facts depend on the statements around it");
    }
  }
  return 0;
}
