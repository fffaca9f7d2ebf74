#pragma once
/// What the classifier knows about one SQL statement: the facts a rule can
/// match on and an audit record reports. Produced by classify(), consumed by
/// the rule evaluator. Plain data, cheap to share between sessions.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgwarden::policy {

/// pgaudit's statement classes (https://github.com/pgaudit/pgaudit, "pgaudit.log").
enum class StatementClass : std::uint8_t {
  Read,      ///< SELECT, COPY ... TO
  Write,     ///< INSERT, UPDATE, DELETE, TRUNCATE, MERGE, COPY ... FROM
  Function,  ///< function calls and DO blocks
  Role,      ///< GRANT, REVOKE, CREATE/ALTER/DROP ROLE
  Ddl,       ///< all DDL not in Role
  Misc,      ///< DISCARD, FETCH, CHECKPOINT, VACUUM, SET ROLE ...
  MiscSet,   ///< SET
};
inline constexpr std::size_t statement_class_count = 7;

/// A set of StatementClass values.
class ClassSet {
 public:
  constexpr ClassSet() = default;
  constexpr void insert(StatementClass c) { bits_ |= bit(c); }
  constexpr void erase(StatementClass c) { bits_ &= std::uint8_t(~bit(c)); }
  constexpr bool contains(StatementClass c) const { return (bits_ & bit(c)) != 0; }
  constexpr bool intersects(ClassSet o) const { return (bits_ & o.bits_) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr std::uint8_t bits() const { return bits_; }
  friend constexpr bool operator==(ClassSet, ClassSet) = default;

 private:
  static constexpr std::uint8_t bit(StatementClass c) { return std::uint8_t(1u << static_cast<unsigned>(c)); }
  std::uint8_t bits_ = 0;
};

/// "READ", "WRITE", "FUNCTION", "ROLE", "DDL", "MISC", "MISC_SET".
std::string_view to_string(StatementClass c) noexcept;
/// Inverse of to_string (case-insensitive); false when `name` is no class.
bool parse_statement_class(std::string_view name, StatementClass& out) noexcept;

/// How a statement touches an object.
enum class Access : std::uint8_t { Read, Write, Ddl };
std::string_view to_string(Access a) noexcept;
bool parse_access(std::string_view name, Access& out) noexcept;

/// A relation (or other named object) a statement touches, named as written
/// and normalised as PostgreSQL does (unquoted identifiers folded to lower case).
struct ObjectRef {
  std::string schema;  ///< empty when not schema-qualified in the text
  std::string name;
  Access access = Access::Read;
  friend bool operator==(const ObjectRef&, const ObjectRef&) = default;
};

/// A call that made a statement FUNCTION only because the classifier does
/// not know it: a function, operator or cast target type that is not one of
/// PostgreSQL 15's own. The connected database's catalog may clear it
/// (DatabaseCatalog); names as the parser produced them.
struct CatalogCall {
  enum class Kind : std::uint8_t {
    Function,  ///< name(...)
    Operator,  ///< a OP b: the function behind OP
    Cast,      ///< x::name: the cast function, a domain's CHECK
  };
  Kind kind = Kind::Function;
  std::string schema;  ///< empty when not schema-qualified in the text
  std::string name;
  friend bool operator==(const CatalogCall&, const CatalogCall&) = default;
};

/// Facts about one statement of a (possibly multi-statement) SQL text.
struct StatementFacts {
  /// PostgreSQL's command tag for the statement ("SELECT", "DROP TABLE", ...).
  std::string command_tag;
  /// command_tag plus the tags of statements this one runs: "EXPLAIN" + "DELETE"
  /// for EXPLAIN ANALYZE DELETE, "PREPARE" + "DELETE", "COPY" + "DELETE" ...
  std::vector<std::string> effective_tags;
  /// pgaudit's class of the statement, plus the classes of anything it runs
  /// (a data-modifying CTE inside a SELECT adds WRITE).
  ClassSet classes;
  std::vector<ObjectRef> objects;
  /// Functions called, lower-cased, schema-qualified where written ("pg_catalog.lo_import").
  std::vector<std::string> functions;
  /// The calls not known to the classifier that put FUNCTION in `classes`.
  std::vector<CatalogCall> catalog_calls;
  /// FUNCTION is in `classes` for a reason no database catalog can clear: a
  /// built-in that is not side-effect free or acts outside the database, a
  /// DO block, CALL. When false, FUNCTION comes from `catalog_calls` alone.
  bool function_settled = false;
  bool update_or_delete_without_where = false;
  /// Code the classifier cannot see into: DO blocks, CALL, EXECUTE of dynamic text,
  /// CREATE FUNCTION bodies in procedural languages.
  bool dynamic_sql = false;
  /// SET ROLE / SET SESSION AUTHORIZATION / RESET ROLE / set_config('role', ...),
  /// and RESET ALL / DISCARD ALL, which go back to the session's own role.
  bool role_change = false;
  std::string role_target;  ///< the role switched to, when known ("" for RESET)
  /// Writes hidden inside a read: data-modifying CTE, SELECT INTO, EXPLAIN
  /// ANALYZE of DML, COPY (DML) TO.
  bool hidden_write = false;
  /// COPY ... TO/FROM PROGRAM: runs a shell command on the database server.
  bool runs_program = false;
  /// Reads or writes files on the database server: COPY to/from a file name,
  /// lo_import/lo_export, pg_read_file, pg_ls_dir ...
  bool server_file_access = false;
  /// Signals other backends or the postmaster: pg_terminate_backend,
  /// pg_cancel_backend, pg_reload_conf ...
  bool signals_backends = false;
  /// Creates, reads, writes or unlinks large objects (lo_unlink, lo_put ...).
  bool large_objects = false;
  /// Reaches another database: dblink, postgres_fdw's connection functions.
  bool remote_database = false;
  /// Takes locks beyond what reading takes, or keeps them past the session:
  /// SELECT ... FOR UPDATE/SHARE, LOCK TABLE stronger than ACCESS SHARE,
  /// advisory locks, PREPARE TRANSACTION and COMMIT/ROLLBACK PREPARED.
  bool locks = false;
  /// Signals listeners: NOTIFY, pg_notify().
  bool notify = false;
  /// Maintenance that rewrites or locks whole relations or the server:
  /// VACUUM, ANALYZE, REINDEX, CLUSTER, CHECKPOINT.
  bool maintenance = false;
  /// May turn a read-only session read-write: SET or RESET of
  /// default_transaction_read_only or transaction_read_only to anything but
  /// on, READ WRITE in SET TRANSACTION, SET SESSION CHARACTERISTICS, BEGIN or
  /// START TRANSACTION, set_config() of either (or of a name not a constant),
  /// RESET ALL, DISCARD ALL.
  bool read_only_off = false;
  /// The SQL prepared statement a PREPARE defines, or an EXECUTE (also under
  /// EXPLAIN) runs; "" for anything else.
  std::string prepared_name;
  /// Byte offset and length of the statement in the original text.
  std::uint32_t location = 0;
  std::uint32_t length = 0;
  /// The text did not parse; `parse_error` holds the parser's message.
  bool unparseable = false;
  std::string parse_error;
};

/// Adds to `outer` the objects and functions `inner` names, each once.
void add_touched(StatementFacts& outer, const StatementFacts& inner);
/// Adds to `outer` what `inner` does when `outer` runs it (EXPLAIN ANALYZE,
/// COPY (query) TO, PREPARE, or an EXECUTE of a prepared statement): what it
/// touches, its effective tags and classes, and its flags, a write among
/// them hidden from `outer`'s own class.
void add_ran(StatementFacts& outer, const StatementFacts& inner);

/// All statements of one SQL text, in order. Shared and immutable once built,
/// so a cache can hand the same result to every session.
struct ClassifiedText {
  std::vector<StatementFacts> statements;
  /// True when the text as a whole failed to parse (then `statements` holds one
  /// entry with unparseable set).
  bool unparseable = false;
};
using ClassifiedTextPtr = std::shared_ptr<const ClassifiedText>;

}  // namespace pgwarden::policy
