#include "policy/classifier.hpp"

#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <string>
#include <utility>

#include "policy/command_tag.hpp"
#include "policy/function_catalog.hpp"
#include "policy/parse_node.hpp"
#include "policy/pb_wire.hpp"
#include "policy/pg_query_adapter.hpp"

namespace pgwarden::policy {
namespace {

using Descriptor = ProtobufCMessageDescriptor;

// Deeper trees than this, or a walk that has used this much of the thread's
// stack, are refused rather than walked (fail closed). The stack bound is
// what holds under sanitizers and on small thread stacks, where frames are
// larger than in a release build; PostgreSQL guards its own recursion the
// same way (check_stack_depth).
constexpr int max_walk_depth = 2000;
constexpr std::ptrdiff_t max_walk_stack = 512 * 1024;

/// How far the stack has grown from `base` (a local of an outer frame).
std::ptrdiff_t stack_used(const char* base) {
  const char here = 0;
  const std::ptrdiff_t d = base - &here;
  return d < 0 ? -d : d;
}

/// A Node message: its type and serialised body.
struct NodeView {
  NodeKind kind = NodeKind::Undefined;
  std::string_view body;
};

NodeView decode_node(std::string_view node) noexcept {
  pb::Reader r(node);
  pb::Field f;
  if (r.next(f) && f.type == pb::WireType::Len) return {static_cast<NodeKind>(f.number), f.bytes};
  return {};
}

const Descriptor* node_descriptor(NodeKind kind) noexcept {
  const ProtobufCFieldDescriptor* fd =
      protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor, static_cast<unsigned>(kind));
  if (fd == nullptr || fd->type != PROTOBUF_C_TYPE_MESSAGE) return nullptr;
  return static_cast<const Descriptor*>(fd->descriptor);
}

/// The sval of a String node, or of an A_Const holding a string.
std::string_view string_value(std::string_view node) noexcept {
  NodeView v = decode_node(node);
  if (v.kind == NodeKind::String) return pb::bytes_of(v.body, 1);
  if (v.kind == NodeKind::AConst) {
    std::string_view s = pb::bytes_of(v.body, 4);
    return pb::bytes_of(s, 1);
  }
  return {};
}

bool is_string_constant(std::string_view node) noexcept {
  NodeView v = decode_node(node);
  return v.kind == NodeKind::String || (v.kind == NodeKind::AConst && pb::has_field(v.body, 4));
}

/// The String items of repeated Node field `number` ("schema", "name").
std::vector<std::string_view> name_list(std::string_view body, std::uint32_t number) {
  std::vector<std::string_view> names;
  pb::Reader r(body);
  pb::Field f;
  while (r.next(f))
    if (f.number == number && f.type == pb::WireType::Len) names.push_back(string_value(f.bytes));
  return names;
}

/// A qualified name as written: "schema.name".
std::string dotted(const std::vector<std::string_view>& names) {
  std::string full;
  for (std::string_view n : names) {
    if (!full.empty()) full += '.';
    full += n;
  }
  return full;
}

/// The schema of a qualified name ("" when unqualified).
std::string_view schema_of(const std::vector<std::string_view>& names) {
  return names.size() >= 2 ? names[names.size() - 2] : std::string_view{};
}

/// The Node payloads of repeated field `number`.
std::vector<std::string_view> node_list(std::string_view body, std::uint32_t number) {
  std::vector<std::string_view> nodes;
  pb::Reader r(body);
  pb::Field f;
  while (r.next(f))
    if (f.number == number && f.type == pb::WireType::Len) nodes.push_back(f.bytes);
  return nodes;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
  });
}

bool is_role_setting(std::string_view name) noexcept {
  return iequals(name, "role") || iequals(name, "session_authorization");
}

bool is_read_only_setting(std::string_view name) noexcept {
  return iequals(name, "default_transaction_read_only") || iequals(name, "transaction_read_only");
}

/// True when the constant `value_node` reads as on for a boolean setting
/// (PostgreSQL's parse_bool: on, true, yes, 1 and their prefixes).
bool constant_true(std::string_view value_node) noexcept {
  NodeView v = decode_node(value_node);
  if (v.kind == NodeKind::AConst) {
    std::string_view ival = pb::bytes_of(v.body, 1);  // A_Const.ival: Integer
    if (!ival.empty()) return pb::varint_of(ival, 1) != 0;
    std::string_view boolval = pb::bytes_of(v.body, 3);  // A_Const.boolval: Boolean
    if (!boolval.empty()) return pb::varint_of(boolval, 1) != 0;
  }
  if (!is_string_constant(value_node)) return false;
  std::string_view s = string_value(value_node);
  return iequals(s, "on") || iequals(s, "true") || iequals(s, "yes") || iequals(s, "1") || iequals(s, "t") ||
         iequals(s, "y") || iequals(s, "tr") || iequals(s, "tru") || iequals(s, "ye");
}

/// True when a list of transaction modes (DefElems) holds READ WRITE.
bool read_write_mode(const std::vector<std::string_view>& options) noexcept {
  for (std::string_view opt : options) {
    NodeView v = decode_node(opt);
    if (v.kind == NodeKind::DefElem && is_read_only_setting(pb::bytes_of(v.body, 2)) &&
        !constant_true(pb::bytes_of(v.body, 3)))
      return true;
  }
  return false;
}

/// defGetBoolean's reading of an option value; anything unclear counts as true.
bool option_true(std::string_view def_elem_body) noexcept {
  std::string_view arg = pb::bytes_of(def_elem_body, 3);
  if (arg.empty()) return true;
  NodeView v = decode_node(arg);
  if (v.kind == NodeKind::Integer) return pb::varint_of(v.body, 1) != 0;
  if (v.kind == NodeKind::Boolean) return pb::varint_of(v.body, 1) != 0;
  std::string_view s = string_value(arg);
  return !(iequals(s, "false") || iequals(s, "off") || iequals(s, "0") || iequals(s, "no"));
}

void add_unique(std::vector<std::string>& v, std::string_view s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.emplace_back(s);
}

/// The number of field `name` of message `d`, as libpg_query's descriptors say.
std::uint32_t field_number(const Descriptor& d, const char* name) {
  const ProtobufCFieldDescriptor* f = protobuf_c_message_descriptor_get_field_by_name(&d, name);
  return f ? f->id : 0;
}

/// True when `node` is the column reference `column` (unqualified).
bool is_column(std::string_view node, std::string_view column) noexcept {
  NodeView v = decode_node(node);
  if (v.kind != NodeKind::ColumnRef) return false;
  std::vector<std::string_view> fields = node_list(v.body, 1);  // ColumnRef.fields
  return fields.size() == 1 && decode_node(fields[0]).kind == NodeKind::String && string_value(fields[0]) == column;
}

/// For `SELECT ... FROM pg_settings WHERE name = 'x'`, 'x': every row that
/// query reads is the setting x (pg_settings has one row per name, and none
/// for role or session_authorization). Empty for any other SELECT.
std::string_view settings_row_name(std::string_view select_body) {
  static const std::uint32_t from_field = field_number(pg_query__select_stmt__descriptor, "from_clause");
  static const std::uint32_t where_field = field_number(pg_query__select_stmt__descriptor, "where_clause");
  static const std::uint32_t kind_field = field_number(pg_query__a__expr__descriptor, "kind");
  static const std::uint32_t name_field = field_number(pg_query__a__expr__descriptor, "name");
  static const std::uint32_t lexpr_field = field_number(pg_query__a__expr__descriptor, "lexpr");
  static const std::uint32_t rexpr_field = field_number(pg_query__a__expr__descriptor, "rexpr");
  std::vector<std::string_view> from = node_list(select_body, from_field);
  if (from.size() != 1) return {};
  NodeView rv = decode_node(from[0]);
  std::string_view schema = pb::bytes_of(rv.body, 2), relation = pb::bytes_of(rv.body, 3);  // RangeVar
  if (rv.kind != NodeKind::RangeVar || relation != "pg_settings" || !(schema.empty() || schema == "pg_catalog"))
    return {};
  NodeView where = decode_node(pb::bytes_of(select_body, where_field));
  if (where.kind != NodeKind::AExpr || pb::varint_of(where.body, kind_field) != PG_QUERY__A__EXPR__KIND__AEXPR_OP)
    return {};
  std::vector<std::string_view> op = name_list(where.body, name_field);
  std::string_view value = pb::bytes_of(where.body, rexpr_field);
  if (op.size() != 1 || op[0] != "=" || !is_column(pb::bytes_of(where.body, lexpr_field), "name") ||
      !is_string_constant(value))
    return {};
  return string_value(value);
}

/// Where the walker is: the access a relation found here gets, and whether
/// the statement around it runs now (EXPLAIN without ANALYZE, view bodies and
/// rule actions do not).
struct Scope {
  Access access = Access::Read;
  bool executes = true;
};

/// Fills one StatementFacts from the serialised parse tree of one statement.
class StatementWalker {
 public:
  StatementWalker(StatementFacts& facts, bool executes, const char* stack_base)
      : f_(facts), executes_(executes), stack_base_(stack_base) {}

  /// Classifies the statement Node `node`; false when the tree was malformed
  /// or too deep to walk.
  bool statement(std::string_view node);

 private:
  void dispatch(NodeView v);
  void select_statement(std::string_view body);
  void explain(std::string_view body);
  void prepare(std::string_view body);
  void copy(std::string_view body);
  void utility(NodeKind kind, std::string_view body);
  void utility_details(NodeKind kind, std::string_view body);
  void create_function(std::string_view body);
  void drop_objects(std::string_view body);
  void variable_set(std::string_view body, bool persistent);
  void read_only_setting(std::uint64_t kind, std::string_view name, const std::vector<std::string_view>& args);
  void wrapped(std::string_view inner_node, bool executes);
  /// An EXECUTE of a prepared statement: code the classifier cannot see, by name.
  void executes_prepared(std::string_view execute_stmt);

  void node(std::string_view node, Scope s);
  void message(std::string_view body, const Descriptor* d, Scope s, std::uint64_t skip = 0);
  void range_var(std::string_view body, Scope s);
  void func_call(std::string_view body, Scope s);
  void call(const std::vector<std::string_view>& names, Scope s, std::string_view func_call_body = {});
  void column_ref(std::string_view body, Scope s);
  void indirection(std::string_view body, Scope s);
  void attribute_call(std::string_view name, bool certainly_a_call, Scope s);
  void type_cast(std::string_view body, Scope s);
  void table_sample(std::string_view body, Scope s);
  void operator_use(std::string_view body, Scope s);
  void operator_in(std::string_view body, NodeKind kind, Scope s);
  void operator_call(const std::vector<std::string_view>& names, Scope s);
  void set_config_call(std::string_view body);
  void dml(NodeKind kind, std::string_view body, Scope s, bool top);
  void dml_details(NodeKind kind, std::string_view body);

  /// Adds a class; FUNCTION added here is settled (no catalog clears it).
  void add_class(StatementClass c) {
    f_.classes.insert(c);
    if (c == StatementClass::Function) f_.function_settled = true;
  }
  /// FUNCTION because of a call the classifier does not know, which the
  /// connected database's catalog may clear.
  void add_catalog_call(CatalogCall::Kind kind, const std::vector<std::string_view>& names) {
    f_.classes.insert(StatementClass::Function);
    CatalogCall c{kind, std::string(schema_of(names)), std::string(names.back())};
    if (std::find(f_.catalog_calls.begin(), f_.catalog_calls.end(), c) == f_.catalog_calls.end())
      f_.catalog_calls.push_back(std::move(c));
  }
  void add_tag(std::string_view tag) { add_unique(f_.effective_tags, tag); }
  void add_object(std::string_view schema, std::string_view name, Access a);
  void add_named_object(const std::vector<std::string_view>& names, Access a);
  void role_change(std::string_view target) {
    f_.role_change = true;
    f_.role_target = std::string(target);
  }
  void finish();

  StatementFacts& f_;
  bool executes_;
  bool failed_ = false;
  int depth_ = 0;
  const char* stack_base_;  ///< a local of the frame that started the walk
  std::vector<std::string_view> cte_names_;
  /// While walking `SELECT ... FROM pg_settings WHERE name = 'x'`: 'x'.
  std::string_view settings_row_;
};

bool StatementWalker::statement(std::string_view node) {
  NodeView v = decode_node(node);
  f_.command_tag = std::string(command_tag(v.kind, v.body));
  add_tag(f_.command_tag);
  dispatch(v);
  finish();
  return !failed_;
}

void StatementWalker::dispatch(NodeView v) {
  switch (v.kind) {
    case NodeKind::InsertStmt:
    case NodeKind::UpdateStmt:
    case NodeKind::DeleteStmt:
    case NodeKind::MergeStmt:
      if (executes_) add_class(StatementClass::Write);
      dml(v.kind, v.body, Scope{Access::Write, executes_}, true);
      return;
    case NodeKind::SelectStmt: return select_statement(v.body);
    case NodeKind::ExplainStmt: return explain(v.body);
    case NodeKind::PrepareStmt: return prepare(v.body);
    case NodeKind::CopyStmt: return copy(v.body);
    case NodeKind::Undefined: failed_ = true; return;
    default: return utility(v.kind, v.body);
  }
}

void StatementWalker::select_statement(std::string_view body) {
  add_class(StatementClass::Read);
  settings_row_ = settings_row_name(body);
  std::string_view into = pb::bytes_of(body, 2);  // SelectStmt.into_clause
  if (!into.empty()) {
    // SELECT INTO creates and fills a table: a DDL statement in pgaudit.
    f_.command_tag = "SELECT INTO";
    f_.effective_tags = {f_.command_tag};
    add_class(StatementClass::Ddl);
    f_.hidden_write = executes_;
    message(into, &pg_query__into_clause__descriptor, Scope{Access::Ddl, executes_});
  }
  message(body, &pg_query__select_stmt__descriptor, Scope{Access::Read, executes_}, 1u << 2);
}

void StatementWalker::explain(std::string_view body) {
  bool analyze = false;
  for (std::string_view opt : node_list(body, 2)) {  // ExplainStmt.options
    NodeView v = decode_node(opt);
    if (v.kind == NodeKind::DefElem && iequals(pb::bytes_of(v.body, 2), "analyze"))
      analyze = option_true(v.body);
  }
  std::string_view inner = pb::bytes_of(body, 1);
  NodeView iv = decode_node(inner);
  LogLevel level = analyze ? log_level(iv.kind, iv.body) : LogLevel::All;
  add_class(audit_class(NodeKind::ExplainStmt, level, "EXPLAIN"));
  wrapped(inner, analyze && executes_);
}

void StatementWalker::prepare(std::string_view body) {
  f_.prepared_name.assign(pb::bytes_of(body, 1));  // PrepareStmt.name
  std::string_view inner = pb::bytes_of(body, 3);  // PrepareStmt.query
  NodeView iv = decode_node(inner);
  add_class(audit_class(NodeKind::PrepareStmt, log_level(iv.kind, iv.body), "PREPARE"));
  // The prepared statement runs later, by EXECUTE, which shows nothing of it:
  // this is the one chance to see what it does.
  bool hidden = f_.hidden_write;
  wrapped(inner, executes_);
  f_.hidden_write = hidden;
}

void StatementWalker::copy(std::string_view body) {
  bool from = pb::varint_of(body, 4) != 0;     // CopyStmt.is_from
  bool program = pb::varint_of(body, 5) != 0;  // CopyStmt.is_program
  add_class(from ? StatementClass::Write : StatementClass::Read);
  if (executes_) {
    f_.runs_program = f_.runs_program || program;
    f_.server_file_access = f_.server_file_access || (!program && !pb::bytes_of(body, 6).empty());
  }
  std::string_view relation = pb::bytes_of(body, 1);
  if (!relation.empty()) range_var(relation, Scope{from ? Access::Write : Access::Read, executes_});
  std::string_view query = pb::bytes_of(body, 2);
  if (!query.empty()) {
    bool had = f_.classes.contains(StatementClass::Write);
    wrapped(query, executes_);
    if (!had && f_.classes.contains(StatementClass::Write)) f_.hidden_write = true;
  }
  message(body, &pg_query__copy_stmt__descriptor, Scope{Access::Read, executes_}, (1u << 1) | (1u << 2));
}

void StatementWalker::executes_prepared(std::string_view execute_stmt) {
  f_.dynamic_sql = true;
  if (f_.prepared_name.empty()) f_.prepared_name.assign(pb::bytes_of(execute_stmt, 1));  // ExecuteStmt.name
}

// Merges the facts of a statement wrapped in EXPLAIN, PREPARE or COPY.
void StatementWalker::wrapped(std::string_view inner_node, bool executes) {
  StatementFacts inner;
  StatementWalker w(inner, executes, stack_base_);
  if (!w.statement(inner_node)) failed_ = true;
  if (!executes) return add_touched(f_, inner);
  if (f_.prepared_name.empty()) f_.prepared_name = inner.prepared_name;  // EXPLAIN ANALYZE EXECUTE
  add_ran(f_, inner);
}

void StatementWalker::utility(NodeKind kind, std::string_view body) {
  LogLevel level = log_level(kind, body);
  add_class(audit_class(kind, level, f_.command_tag));
  Access access = level == LogLevel::Ddl ? Access::Ddl : level == LogLevel::Mod ? Access::Write : Access::Read;
  Scope scope{access, executes_};
  switch (kind) {
    case NodeKind::ViewStmt:
    case NodeKind::RuleStmt:
      scope.executes = false;  // the query is stored, not run
      break;
    case NodeKind::CreateFunctionStmt:
      return create_function(body);
    default:
      break;
  }
  utility_details(kind, body);
  message(body, node_descriptor(kind), scope);
}

// Facts of utility statements that name objects or switch roles by value.
void StatementWalker::utility_details(NodeKind kind, std::string_view body) {
  switch (kind) {
    case NodeKind::ExecuteStmt:
      executes_prepared(body);
      break;
    case NodeKind::DoStmt:
    case NodeKind::LoadStmt:
      f_.dynamic_sql = true;
      break;
    case NodeKind::CallStmt:
      f_.dynamic_sql = true;
      add_class(StatementClass::Function);
      break;
    case NodeKind::VariableSetStmt: variable_set(body, false); break;
    case NodeKind::AlterRoleSetStmt: variable_set(pb::bytes_of(body, 3), true); break;
    case NodeKind::AlterDatabaseSetStmt:
      variable_set(pb::bytes_of(body, 2), true);
      add_object({}, pb::bytes_of(body, 1), Access::Ddl);
      break;
    case NodeKind::DropStmt: drop_objects(body); break;
    case NodeKind::NotifyStmt: f_.notify = executes_; break;
    case NodeKind::LockStmt:  // ACCESS SHARE is what any read takes
      f_.locks = executes_ && pb::varint_of(body, 2) > 1;  // LockStmt.mode
      break;
    case NodeKind::TransactionStmt: {  // a prepared transaction keeps its locks past the session
      std::uint64_t kind = pb::varint_of(body, 1);  // TransactionStmt.kind
      f_.locks = executes_ && kind >= PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE &&
                 kind <= PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED;
      f_.read_only_off = read_write_mode(node_list(body, 2));  // BEGIN / START TRANSACTION READ WRITE
      break;
    }
    case NodeKind::VacuumStmt:
    case NodeKind::ReindexStmt:
    case NodeKind::ClusterStmt:
    case NodeKind::CheckPointStmt:
      f_.maintenance = executes_;
      break;
    case NodeKind::DiscardStmt:  // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT and RESET ALL
      if (pb::varint_of(body, 1) == PG_QUERY__DISCARD_MODE__DISCARD_ALL) {
        role_change({});
        f_.read_only_off = true;
      }
      break;
    case NodeKind::CreatedbStmt:
    case NodeKind::DropdbStmt:
    case NodeKind::AlterDatabaseStmt:
    case NodeKind::AlterDatabaseRefreshCollStmt:
    case NodeKind::CreateExtensionStmt:
    case NodeKind::AlterExtensionStmt:
    case NodeKind::CreateSchemaStmt:
      add_object({}, pb::bytes_of(body, 1), Access::Ddl);
      break;
    default:
      break;
  }
}

void StatementWalker::create_function(std::string_view body) {
  std::string_view language;
  for (std::string_view opt : node_list(body, 6)) {  // CreateFunctionStmt.options
    NodeView v = decode_node(opt);
    if (v.kind == NodeKind::DefElem && pb::bytes_of(v.body, 2) == "language")
      language = string_value(pb::bytes_of(v.body, 3));
  }
  bool sql_body = pb::has_field(body, 7);
  if (!(sql_body || iequals(language, "sql"))) f_.dynamic_sql = true;
  add_named_object(name_list(body, 3), Access::Ddl);
}

void StatementWalker::drop_objects(std::string_view body) {
  auto type = static_cast<ObjectType>(pb::varint_of(body, 2));  // DropStmt.remove_type
  if (type == ObjectType::Cast || type == ObjectType::Transform) return;  // named by types, not names
  bool on_relation = type == ObjectType::Trigger || type == ObjectType::Rule || type == ObjectType::Policy;
  bool by_method = type == ObjectType::Opclass || type == ObjectType::Opfamily;
  for (std::string_view obj : node_list(body, 1)) {
    NodeView v = decode_node(obj);
    std::vector<std::string_view> names;
    if (v.kind == NodeKind::List || v.kind == NodeKind::ObjectWithArgs || v.kind == NodeKind::TypeName)
      names = name_list(v.body, 1);
    else if (v.kind == NodeKind::String)
      names.push_back(pb::bytes_of(v.body, 1));
    if (on_relation && !names.empty()) names.pop_back();  // "trigger ON table": the table
    if (by_method && !names.empty()) names.erase(names.begin());  // "USING btree" comes first
    add_named_object(names, Access::Ddl);
  }
}

// SET / RESET (or ALTER ROLE|DATABASE ... SET when `persistent`) of role or
// session_authorization.
void StatementWalker::variable_set(std::string_view body, bool persistent) {
  std::uint64_t kind = pb::varint_of(body, 1);  // VariableSetStmt.kind
  std::string_view name = pb::bytes_of(body, 2);
  if (kind == 6) {  // VAR_RESET_ALL also resets the role, except when persistent
    if (!persistent) role_change({});
    f_.read_only_off = f_.read_only_off || !persistent;
    return;
  }
  std::vector<std::string_view> args = node_list(body, 3);
  if (!persistent) read_only_setting(kind, name, args);
  if (!is_role_setting(name)) return;
  bool value = kind == 1 && !args.empty();  // VAR_SET_VALUE
  role_change(value ? string_value(args.front()) : std::string_view{});
}

// SET of default_transaction_read_only or transaction_read_only to anything
// but on, their RESET, and READ WRITE in SET TRANSACTION or SET SESSION
// CHARACTERISTICS (VAR_SET_MULTI).
void StatementWalker::read_only_setting(std::uint64_t kind, std::string_view name,
                                        const std::vector<std::string_view>& args) {
  bool off = false;
  if (kind == 4)  // VAR_SET_MULTI
    off = read_write_mode(args);
  else if (is_read_only_setting(name))
    off = !(kind == 1 && args.size() == 1 && constant_true(args.front()));  // VAR_SET_VALUE
  f_.read_only_off = f_.read_only_off || off;
}

void StatementWalker::node(std::string_view node_bytes, Scope s) {
  NodeView v = decode_node(node_bytes);
  switch (v.kind) {
    case NodeKind::RangeVar: return range_var(v.body, s);
    case NodeKind::FuncCall: return func_call(v.body, s);
    case NodeKind::ColumnRef: return column_ref(v.body, s);
    case NodeKind::AIndirection: return indirection(v.body, s);
    case NodeKind::TypeCast: return type_cast(v.body, s);
    case NodeKind::RangeTableSample: return table_sample(v.body, s);
    case NodeKind::LockingClause:  // SELECT ... FOR UPDATE / SHARE
      f_.locks = f_.locks || s.executes;
      return;
    case NodeKind::AExpr: return operator_use(v.body, s);
    case NodeKind::SubLink:
    case NodeKind::SortBy:
      return operator_in(v.body, v.kind, s);
    case NodeKind::InsertStmt:
    case NodeKind::UpdateStmt:
    case NodeKind::DeleteStmt:
    case NodeKind::MergeStmt:
      return dml(v.kind, v.body, s, false);
    case NodeKind::SelectStmt: {  // a subquery's `name` is not pg_settings' row
      std::string_view outer = std::exchange(settings_row_, std::string_view{});
      message(v.body, &pg_query__select_stmt__descriptor, Scope{Access::Read, s.executes});
      settings_row_ = outer;
      return;
    }
    case NodeKind::CommonTableExpr:
      cte_names_.push_back(pb::bytes_of(v.body, 1));
      return message(v.body, &pg_query__common_table_expr__descriptor, s);
    case NodeKind::ExecuteStmt:  // CREATE TABLE ... AS EXECUTE: runs what it names, unseen
      if (s.executes) executes_prepared(v.body);
      return message(v.body, &pg_query__execute_stmt__descriptor, s);
    case NodeKind::String:
    case NodeKind::AConst:
    case NodeKind::Integer:
    case NodeKind::Float:
    case NodeKind::Boolean:
    case NodeKind::BitString:
    case NodeKind::ParamRef:
    case NodeKind::SQLValueFunction:
    case NodeKind::AStar:
    case NodeKind::TypeName:
    case NodeKind::RoleSpec:
      return;  // leaves: nothing a policy matches on
    case NodeKind::Undefined:
      failed_ = failed_ || !node_bytes.empty();
      return;
    default:
      return message(v.body, node_descriptor(v.kind), s);
  }
}

// Walks every sub-message of `body` (a message of type `d`), except the
// fields whose bit is set in `skip`.
void StatementWalker::message(std::string_view body, const Descriptor* d, Scope s, std::uint64_t skip) {
  if (d == nullptr) return;
  if (++depth_ > max_walk_depth || stack_used(stack_base_) > max_walk_stack) {
    failed_ = true;
    --depth_;
    return;
  }
  pb::Reader r(body);
  pb::Field f;
  while (r.next(f)) {
    if (f.type != pb::WireType::Len || (f.number < 64 && (skip >> f.number) & 1u)) continue;
    const ProtobufCFieldDescriptor* fd = protobuf_c_message_descriptor_get_field(d, f.number);
    if (fd == nullptr || fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    auto sub = static_cast<const Descriptor*>(fd->descriptor);
    if (sub == &pg_query__node__descriptor)
      node(f.bytes, s);
    else if (sub == &pg_query__range_var__descriptor)
      range_var(f.bytes, s);
    else if (sub == &pg_query__func_call__descriptor)
      func_call(f.bytes, s);
    else if (sub == &pg_query__select_stmt__descriptor)
      message(f.bytes, sub, Scope{Access::Read, s.executes});
    else
      message(f.bytes, sub, s);
  }
  failed_ = failed_ || r.failed();
  --depth_;
}

void StatementWalker::range_var(std::string_view body, Scope s) {
  add_object(pb::bytes_of(body, 2), pb::bytes_of(body, 3), s.access);  // schemaname, relname
}

void StatementWalker::func_call(std::string_view body, Scope s) {
  call(name_list(body, 1), s, body);  // FuncCall.funcname
  message(body, &pg_query__func_call__descriptor, Scope{Access::Read, s.executes}, 1u << 1);
}

// A call of the function `names`, however the syntax spelled it; the
// FuncCall's body when it was one (set_config's arguments are read there).
void StatementWalker::call(const std::vector<std::string_view>& names, Scope s, std::string_view func_call_body) {
  if (names.empty()) return;
  add_unique(f_.functions, dotted(names));
  if (!s.executes) return;
  namespace fx = function_effect;
  FunctionInfo info = function_info(schema_of(names), names.back());
  // set_config() is a SET by another name: MISC_SET, and a role change when it may be one.
  if (info.effects & fx::set_config) set_config_call(func_call_body);
  if (!info.builtin && info.effects == 0)
    add_catalog_call(CatalogCall::Kind::Function, names);
  else if (!info.side_effect_free && info.effects != fx::set_config)
    add_class(StatementClass::Function);
  f_.dynamic_sql = f_.dynamic_sql || (info.effects & fx::dynamic_sql);
  f_.server_file_access = f_.server_file_access || (info.effects & fx::server_file);
  f_.signals_backends = f_.signals_backends || (info.effects & fx::signals);
  f_.large_objects = f_.large_objects || (info.effects & fx::large_object);
  f_.remote_database = f_.remote_database || (info.effects & fx::remote_database);
  f_.locks = f_.locks || (info.effects & fx::advisory_lock);
  f_.notify = f_.notify || (info.effects & fx::notify);
}

// `a.b` may be attribute notation: when `a` is a row (a FROM item) and `b` is
// none of its columns, PostgreSQL calls the function b(a). Which it is needs
// the catalog. A name of one of PostgreSQL's own functions that is not side-
// effect free, or one with an effect of its own, counts as the call (fail
// closed); any other name is taken for the column it almost always is, so
// `SELECT t.email, t.name FROM t` stays a read. A function created by
// someone and called this way is not seen.
void StatementWalker::column_ref(std::string_view body, Scope s) {
  std::string_view last;
  int fields = 0;
  pb::Reader r(body);
  pb::Field f;
  while (r.next(f))
    if (f.number == 1 && f.type == pb::WireType::Len) last = f.bytes, ++fields;  // ColumnRef.fields
  if (fields < 2 || decode_node(last).kind != NodeKind::String) return;
  attribute_call(string_value(last), false, s);
}

// `(expr).name`: a field of a composite value, or the function name(expr)
// when the value is not composite. A constant is never composite, so on one
// it is always the call; elsewhere the name decides, as in column_ref.
void StatementWalker::indirection(std::string_view body, Scope s) {
  std::string_view arg = pb::bytes_of(body, 1);  // A_Indirection.arg
  bool scalar = decode_node(arg).kind == NodeKind::AConst;
  for (std::string_view step : node_list(body, 2)) {  // A_Indirection.indirection
    if (decode_node(step).kind == NodeKind::String) attribute_call(string_value(step), scalar, s);
    scalar = false;  // what a selection yields is unknown here
  }
  message(body, node_descriptor(NodeKind::AIndirection), s);
}

void StatementWalker::attribute_call(std::string_view name, bool certainly_a_call, Scope s) {
  if (name.empty()) return;
  FunctionInfo info = function_info({}, name);
  bool could_matter = (info.builtin && !info.side_effect_free) || info.effects != 0;
  if (certainly_a_call || could_matter) call({name}, s);
}

// `x::type`, CAST(x AS type), `type 'literal'`: PostgreSQL's own types convert
// with their own functions; any other type's cast may run a function its
// owner wrote (CREATE CAST ... WITH FUNCTION), and a domain its CHECK
// expressions. Such a cast is a FUNCTION call named "CAST(type)".
void StatementWalker::type_cast(std::string_view body, Scope s) {
  std::string_view type = pb::bytes_of(body, 2);  // TypeCast.type_name
  std::vector<std::string_view> names = name_list(type, 1);  // TypeName.names
  if (!names.empty() && !builtin_type(schema_of(names), names.back())) {
    add_unique(f_.functions, "CAST(" + dotted(names) + ")");
    if (s.executes) add_catalog_call(CatalogCall::Kind::Cast, names);
  }
  node(pb::bytes_of(body, 1), s);  // TypeCast.arg
}

// TABLESAMPLE method(...): the method is a function (a tablesample handler).
void StatementWalker::table_sample(std::string_view body, Scope s) {
  call(name_list(body, 2), s);  // RangeTableSample.method
  message(body, node_descriptor(NodeKind::RangeTableSample), s, 1u << 2);
}


// An expression with an operator (A_Expr): one that is not PostgreSQL's own
// runs the function behind it, as a FuncCall would.
void StatementWalker::operator_use(std::string_view body, Scope s) {
  static const std::uint32_t kind_field = field_number(pg_query__a__expr__descriptor, "kind");
  static const std::uint32_t name_field = field_number(pg_query__a__expr__descriptor, "name");
  const std::uint64_t kind = pb::varint_of(body, kind_field);
  // [NOT] BETWEEN [SYMMETRIC] are named by their keywords, not an operator.
  const bool between = kind >= PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN && kind <= PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
  if (!between) operator_call(name_list(body, name_field), s);
  message(body, node_descriptor(NodeKind::AExpr), s);
}

// x OP ANY (SELECT ...) and ORDER BY x USING OP name their operator too.
void StatementWalker::operator_in(std::string_view body, NodeKind kind, Scope s) {
  static const std::uint32_t sub_link_field = field_number(pg_query__sub_link__descriptor, "oper_name");
  static const std::uint32_t sort_by_field = field_number(pg_query__sort_by__descriptor, "use_op");
  operator_call(name_list(body, kind == NodeKind::SubLink ? sub_link_field : sort_by_field), s);
  message(body, node_descriptor(kind), s);
}

void StatementWalker::operator_call(const std::vector<std::string_view>& names, Scope s) {
  if (!s.executes || names.empty() || builtin_operator(schema_of(names), names.back())) return;
  add_unique(f_.functions, "OPERATOR(" + dotted(names) + ")");
  add_catalog_call(CatalogCall::Kind::Operator, names);
}

// set_config(name, value, is_local): a SET by another name. A name that is not
// a constant could be 'role', so it counts as a role change to an unknown role.
void StatementWalker::set_config_call(std::string_view body) {
  add_class(StatementClass::MiscSet);
  std::vector<std::string_view> args = node_list(body, 2);  // FuncCall.args
  if (args.empty()) {
    f_.read_only_off = true;
    return role_change({});
  }
  // pg_dump's set_config(name, ...) FROM pg_settings WHERE name = 'x' sets x.
  const bool from_row = !settings_row_.empty() && is_column(args[0], "name");
  const bool known = from_row || is_string_constant(args[0]);
  const std::string_view name = from_row ? settings_row_ : string_value(args[0]);
  if (!known || is_read_only_setting(name))
    f_.read_only_off = f_.read_only_off || !(args.size() >= 2 && constant_true(args[1]));
  if (known && !is_role_setting(name)) return;
  role_change(args.size() >= 2 ? string_value(args[1]) : std::string_view{});
}

void StatementWalker::dml(NodeKind kind, std::string_view body, Scope s, bool top) {
  Access target = s.executes ? Access::Write : Access::Read;
  std::string_view relation = pb::bytes_of(body, 1);  // relation is field 1 of all four
  if (!relation.empty()) range_var(relation, Scope{target, s.executes});
  if (s.executes) {
    if (!top) {
      add_tag(command_tag(kind, body));
      add_class(StatementClass::Write);
      f_.hidden_write = true;
    }
    dml_details(kind, body);
  }
  message(body, node_descriptor(kind), Scope{Access::Read, s.executes}, 1u << 1);
}

// WHERE-less UPDATE/DELETE, ON CONFLICT DO UPDATE, MERGE actions.
void StatementWalker::dml_details(NodeKind kind, std::string_view body) {
  switch (kind) {
    case NodeKind::UpdateStmt:
    case NodeKind::DeleteStmt:
      if (!pb::has_field(body, 3)) f_.update_or_delete_without_where = true;  // where_clause
      break;
    case NodeKind::InsertStmt: {
      std::string_view conflict = pb::bytes_of(body, 4);
      if (!conflict.empty() && pb::varint_of(conflict, 1) == 3) add_tag("UPDATE");  // ONCONFLICT_UPDATE
      break;
    }
    case NodeKind::MergeStmt:
      for (std::string_view when : node_list(body, 4)) {
        std::uint64_t cmd = pb::varint_of(decode_node(when).body, 2);  // CmdType
        if (cmd == 3) add_tag("UPDATE");
        if (cmd == 4) add_tag("INSERT");
        if (cmd == 5) add_tag("DELETE");
      }
      break;
    default:
      break;
  }
}

void StatementWalker::add_object(std::string_view schema, std::string_view name, Access a) {
  if (name.empty()) return;
  for (const ObjectRef& o : f_.objects)
    if (o.access == a && o.name == name && o.schema == schema) return;
  f_.objects.push_back(ObjectRef{std::string(schema), std::string(name), a});
}

void StatementWalker::add_named_object(const std::vector<std::string_view>& names, Access a) {
  if (names.empty()) return;
  std::string_view schema = names.size() >= 2 ? names[names.size() - 2] : std::string_view{};
  add_object(schema, names.back(), a);
}

// Drops references to CTEs (they are no relations) once all CTE names are known.
void StatementWalker::finish() {
  if (cte_names_.empty()) return;
  std::erase_if(f_.objects, [&](const ObjectRef& o) {
    return o.schema.empty() && o.access == Access::Read &&
           std::find(cte_names_.begin(), cte_names_.end(), o.name) != cte_names_.end();
  });
}

// Classifies each RawStmt of a serialised ParseResult.
ClassifiedText classify_tree(std::string_view tree, std::size_t text_length) {
  ClassifiedText out;
  pb::Reader r(tree);
  pb::Field f;
  while (r.next(f)) {
    if (f.number != 2 || f.type != pb::WireType::Len) continue;  // ParseResult.stmts
    StatementFacts facts;
    auto location = static_cast<std::uint32_t>(pb::varint_of(f.bytes, 2));
    auto length = static_cast<std::uint32_t>(pb::varint_of(f.bytes, 3));
    const char stack_base = 0;
    StatementWalker walker(facts, true, &stack_base);
    if (!walker.statement(pb::bytes_of(f.bytes, 1)))
      facts = unparseable_statement("classifier: malformed or too deeply nested parse tree", 0);
    out.unparseable = out.unparseable || facts.unparseable;
    facts.location = location;
    facts.length = length != 0 ? length : static_cast<std::uint32_t>(text_length - std::min<std::size_t>(location, text_length));
    out.statements.push_back(std::move(facts));
  }
  if (r.failed()) return unparseable_text("classifier: malformed parse tree", text_length);
  return out;
}

}  // namespace

StatementFacts unparseable_statement(std::string message, std::size_t length) {
  StatementFacts f;
  f.command_tag = "???";
  f.effective_tags = {f.command_tag};
  f.unparseable = true;
  f.parse_error = std::move(message);
  f.length = static_cast<std::uint32_t>(length);
  return f;
}

ClassifiedText unparseable_text(std::string message, std::size_t length) {
  ClassifiedText t;
  t.unparseable = true;
  t.statements.push_back(unparseable_statement(std::move(message), length));
  return t;
}

ClassifiedText classify(std::string_view sql, LexerSettings settings) {
  if (sql.find('\0') != std::string_view::npos) return unparseable_text("text contains a zero byte", sql.size());
  if (sql.size() > 0x7fffffff) return unparseable_text("text too long", sql.size());
  const RawParse parsed(sql, settings.standard_conforming_strings);
  if (!parsed.ok()) {
    std::string message = parsed.error();
    if (parsed.error_position() > 0) message += " at position " + std::to_string(parsed.error_position());
    return unparseable_text(std::move(message), sql.size());
  }
  return classify_tree(parsed.tree(), sql.size());
}

}  // namespace pgwarden::policy
