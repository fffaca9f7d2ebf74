#include "policy/command_tag.hpp"

#include "policy/pb_wire.hpp"

namespace pgwarden::policy {
namespace {

using pb::bytes_of;
using pb::varint_of;

ObjectType object_type_at(std::string_view body, std::uint32_t field) noexcept {
  return static_cast<ObjectType>(varint_of(body, field));
}

// The tag of DROP for each object type DropStmt can remove.
std::string_view drop_object_tag(ObjectType type) noexcept {
  switch (type) {
    case ObjectType::Table: return "DROP TABLE";
    case ObjectType::Sequence: return "DROP SEQUENCE";
    case ObjectType::View: return "DROP VIEW";
    case ObjectType::Matview: return "DROP MATERIALIZED VIEW";
    case ObjectType::Index: return "DROP INDEX";
    case ObjectType::Type: return "DROP TYPE";
    case ObjectType::Domain: return "DROP DOMAIN";
    case ObjectType::Collation: return "DROP COLLATION";
    case ObjectType::Conversion: return "DROP CONVERSION";
    case ObjectType::Schema: return "DROP SCHEMA";
    case ObjectType::Tsparser: return "DROP TEXT SEARCH PARSER";
    case ObjectType::Tsdictionary: return "DROP TEXT SEARCH DICTIONARY";
    case ObjectType::Tstemplate: return "DROP TEXT SEARCH TEMPLATE";
    case ObjectType::Tsconfiguration: return "DROP TEXT SEARCH CONFIGURATION";
    case ObjectType::ForeignTable: return "DROP FOREIGN TABLE";
    case ObjectType::Extension: return "DROP EXTENSION";
    case ObjectType::Function: return "DROP FUNCTION";
    case ObjectType::Procedure: return "DROP PROCEDURE";
    case ObjectType::Routine: return "DROP ROUTINE";
    case ObjectType::Aggregate: return "DROP AGGREGATE";
    case ObjectType::Operator: return "DROP OPERATOR";
    case ObjectType::Language: return "DROP LANGUAGE";
    case ObjectType::Cast: return "DROP CAST";
    case ObjectType::Trigger: return "DROP TRIGGER";
    case ObjectType::EventTrigger: return "DROP EVENT TRIGGER";
    case ObjectType::Rule: return "DROP RULE";
    case ObjectType::Fdw: return "DROP FOREIGN DATA WRAPPER";
    case ObjectType::ForeignServer: return "DROP SERVER";
    case ObjectType::Opclass: return "DROP OPERATOR CLASS";
    case ObjectType::Opfamily: return "DROP OPERATOR FAMILY";
    case ObjectType::Policy: return "DROP POLICY";
    case ObjectType::Transform: return "DROP TRANSFORM";
    case ObjectType::AccessMethod: return "DROP ACCESS METHOD";
    case ObjectType::Publication: return "DROP PUBLICATION";
    case ObjectType::StatisticExt: return "DROP STATISTICS";
    default: return "???";
  }
}

std::string_view define_tag(ObjectType kind) noexcept {
  switch (kind) {
    case ObjectType::Aggregate: return "CREATE AGGREGATE";
    case ObjectType::Operator: return "CREATE OPERATOR";
    case ObjectType::Type: return "CREATE TYPE";
    case ObjectType::Tsparser: return "CREATE TEXT SEARCH PARSER";
    case ObjectType::Tsdictionary: return "CREATE TEXT SEARCH DICTIONARY";
    case ObjectType::Tstemplate: return "CREATE TEXT SEARCH TEMPLATE";
    case ObjectType::Tsconfiguration: return "CREATE TEXT SEARCH CONFIGURATION";
    case ObjectType::Collation: return "CREATE COLLATION";
    default: return "???";
  }
}

std::string_view transaction_tag(std::uint64_t kind) noexcept {
  switch (kind) {
    case 1: return "BEGIN";               // TRANS_STMT_BEGIN
    case 2: return "START TRANSACTION";   // TRANS_STMT_START
    case 3: return "COMMIT";              // TRANS_STMT_COMMIT
    case 4: return "ROLLBACK";            // TRANS_STMT_ROLLBACK
    case 5: return "SAVEPOINT";           // TRANS_STMT_SAVEPOINT
    case 6: return "RELEASE";             // TRANS_STMT_RELEASE
    case 7: return "ROLLBACK";            // TRANS_STMT_ROLLBACK_TO
    case 8: return "PREPARE TRANSACTION"; // TRANS_STMT_PREPARE
    case 9: return "COMMIT PREPARED";     // TRANS_STMT_COMMIT_PREPARED
    case 10: return "ROLLBACK PREPARED";  // TRANS_STMT_ROLLBACK_PREPARED
    default: return "???";
  }
}

std::string_view discard_tag(std::uint64_t target) noexcept {
  switch (target) {
    case 1: return "DISCARD ALL";
    case 2: return "DISCARD PLANS";
    case 3: return "DISCARD SEQUENCES";
    case 4: return "DISCARD TEMP";
    default: return "???";
  }
}

std::string_view rename_tag(std::string_view body) noexcept {
  // A renamed column takes its tag from the relation it belongs to.
  ObjectType type = object_type_at(body, 1);
  return alter_object_tag(type == ObjectType::Column ? object_type_at(body, 2) : type);
}

std::string_view create_table_as_tag(std::string_view body) noexcept {
  if (object_type_at(body, 3) == ObjectType::Matview) return "CREATE MATERIALIZED VIEW";
  return varint_of(body, 4) != 0 ? "SELECT INTO" : "CREATE TABLE AS";
}

std::string_view alter_function_tag(ObjectType type) noexcept {
  if (type == ObjectType::Procedure) return "ALTER PROCEDURE";
  if (type == ObjectType::Routine) return "ALTER ROUTINE";
  return "ALTER FUNCTION";
}

std::string_view variable_set_tag(std::uint64_t kind) noexcept {
  return kind == 5 || kind == 6 ? "RESET" : "SET";  // VAR_RESET, VAR_RESET_ALL
}

// Tags of statements that carry details in their body.
std::string_view detailed_tag(NodeKind kind, std::string_view body) noexcept {
  switch (kind) {
    case NodeKind::TransactionStmt: return transaction_tag(varint_of(body, 1));
    case NodeKind::ClosePortalStmt: return bytes_of(body, 1).empty() ? "CLOSE CURSOR ALL" : "CLOSE CURSOR";
    case NodeKind::FetchStmt: return varint_of(body, 4) != 0 ? "MOVE" : "FETCH";
    case NodeKind::DropStmt: return drop_object_tag(object_type_at(body, 2));
    case NodeKind::RenameStmt: return rename_tag(body);
    case NodeKind::AlterObjectDependsStmt: return alter_object_tag(object_type_at(body, 1));
    case NodeKind::AlterObjectSchemaStmt: return alter_object_tag(object_type_at(body, 1));
    case NodeKind::AlterOwnerStmt: return alter_object_tag(object_type_at(body, 1));
    case NodeKind::AlterTableMoveAllStmt: return alter_object_tag(object_type_at(body, 2));
    case NodeKind::AlterTableStmt: return alter_object_tag(object_type_at(body, 3));
    case NodeKind::AlterFunctionStmt: return alter_function_tag(object_type_at(body, 1));
    case NodeKind::GrantStmt: return varint_of(body, 1) != 0 ? "GRANT" : "REVOKE";
    case NodeKind::GrantRoleStmt: return varint_of(body, 3) != 0 ? "GRANT" : "REVOKE";
    case NodeKind::DefineStmt: return define_tag(object_type_at(body, 1));
    case NodeKind::CreateFunctionStmt: return varint_of(body, 1) != 0 ? "CREATE PROCEDURE" : "CREATE FUNCTION";
    case NodeKind::VacuumStmt: return varint_of(body, 3) != 0 ? "VACUUM" : "ANALYZE";
    case NodeKind::CreateTableAsStmt: return create_table_as_tag(body);
    case NodeKind::VariableSetStmt: return variable_set_tag(varint_of(body, 1));
    case NodeKind::DiscardStmt: return discard_tag(varint_of(body, 1));
    case NodeKind::DeallocateStmt: return bytes_of(body, 1).empty() ? "DEALLOCATE ALL" : "DEALLOCATE";
    default: return {};
  }
}

// Tags that depend on the node type alone.
std::string_view fixed_tag(NodeKind kind) noexcept {
  switch (kind) {
    case NodeKind::InsertStmt: return "INSERT";
    case NodeKind::DeleteStmt: return "DELETE";
    case NodeKind::UpdateStmt: return "UPDATE";
    case NodeKind::MergeStmt: return "MERGE";
    case NodeKind::SelectStmt: return "SELECT";
    case NodeKind::PLAssignStmt: return "SELECT";
    case NodeKind::DeclareCursorStmt: return "DECLARE CURSOR";
    case NodeKind::CreateDomainStmt: return "CREATE DOMAIN";
    case NodeKind::CreateSchemaStmt: return "CREATE SCHEMA";
    case NodeKind::CreateStmt: return "CREATE TABLE";
    case NodeKind::CreateTableSpaceStmt: return "CREATE TABLESPACE";
    case NodeKind::DropTableSpaceStmt: return "DROP TABLESPACE";
    case NodeKind::AlterTableSpaceOptionsStmt: return "ALTER TABLESPACE";
    case NodeKind::CreateExtensionStmt: return "CREATE EXTENSION";
    case NodeKind::AlterExtensionStmt: return "ALTER EXTENSION";
    case NodeKind::AlterExtensionContentsStmt: return "ALTER EXTENSION";
    case NodeKind::CreateFdwStmt: return "CREATE FOREIGN DATA WRAPPER";
    case NodeKind::AlterFdwStmt: return "ALTER FOREIGN DATA WRAPPER";
    case NodeKind::CreateForeignServerStmt: return "CREATE SERVER";
    case NodeKind::AlterForeignServerStmt: return "ALTER SERVER";
    case NodeKind::CreateUserMappingStmt: return "CREATE USER MAPPING";
    case NodeKind::AlterUserMappingStmt: return "ALTER USER MAPPING";
    case NodeKind::DropUserMappingStmt: return "DROP USER MAPPING";
    case NodeKind::CreateForeignTableStmt: return "CREATE FOREIGN TABLE";
    case NodeKind::ImportForeignSchemaStmt: return "IMPORT FOREIGN SCHEMA";
    case NodeKind::TruncateStmt: return "TRUNCATE TABLE";
    case NodeKind::CommentStmt: return "COMMENT";
    case NodeKind::SecLabelStmt: return "SECURITY LABEL";
    case NodeKind::CopyStmt: return "COPY";
    case NodeKind::AlterDomainStmt: return "ALTER DOMAIN";
    case NodeKind::AlterDefaultPrivilegesStmt: return "ALTER DEFAULT PRIVILEGES";
    case NodeKind::CompositeTypeStmt: return "CREATE TYPE";
    case NodeKind::CreateEnumStmt: return "CREATE TYPE";
    case NodeKind::CreateRangeStmt: return "CREATE TYPE";
    case NodeKind::AlterEnumStmt: return "ALTER TYPE";
    case NodeKind::ViewStmt: return "CREATE VIEW";
    case NodeKind::IndexStmt: return "CREATE INDEX";
    case NodeKind::RuleStmt: return "CREATE RULE";
    case NodeKind::CreateSeqStmt: return "CREATE SEQUENCE";
    case NodeKind::AlterSeqStmt: return "ALTER SEQUENCE";
    case NodeKind::DoStmt: return "DO";
    case NodeKind::CreatedbStmt: return "CREATE DATABASE";
    case NodeKind::AlterDatabaseStmt: return "ALTER DATABASE";
    case NodeKind::AlterDatabaseRefreshCollStmt: return "ALTER DATABASE";
    case NodeKind::AlterDatabaseSetStmt: return "ALTER DATABASE";
    case NodeKind::DropdbStmt: return "DROP DATABASE";
    case NodeKind::NotifyStmt: return "NOTIFY";
    case NodeKind::ListenStmt: return "LISTEN";
    case NodeKind::UnlistenStmt: return "UNLISTEN";
    case NodeKind::LoadStmt: return "LOAD";
    case NodeKind::CallStmt: return "CALL";
    case NodeKind::ClusterStmt: return "CLUSTER";
    case NodeKind::ExplainStmt: return "EXPLAIN";
    case NodeKind::RefreshMatViewStmt: return "REFRESH MATERIALIZED VIEW";
    case NodeKind::AlterSystemStmt: return "ALTER SYSTEM";
    case NodeKind::VariableShowStmt: return "SHOW";
    case NodeKind::CreateTransformStmt: return "CREATE TRANSFORM";
    case NodeKind::CreateTrigStmt: return "CREATE TRIGGER";
    case NodeKind::CreateEventTrigStmt: return "CREATE EVENT TRIGGER";
    case NodeKind::AlterEventTrigStmt: return "ALTER EVENT TRIGGER";
    case NodeKind::CreatePLangStmt: return "CREATE LANGUAGE";
    case NodeKind::CreateRoleStmt: return "CREATE ROLE";
    case NodeKind::AlterRoleStmt: return "ALTER ROLE";
    case NodeKind::AlterRoleSetStmt: return "ALTER ROLE";
    case NodeKind::DropRoleStmt: return "DROP ROLE";
    case NodeKind::DropOwnedStmt: return "DROP OWNED";
    case NodeKind::ReassignOwnedStmt: return "REASSIGN OWNED";
    case NodeKind::LockStmt: return "LOCK TABLE";
    case NodeKind::ConstraintsSetStmt: return "SET CONSTRAINTS";
    case NodeKind::CheckPointStmt: return "CHECKPOINT";
    case NodeKind::ReindexStmt: return "REINDEX";
    case NodeKind::CreateConversionStmt: return "CREATE CONVERSION";
    case NodeKind::CreateCastStmt: return "CREATE CAST";
    case NodeKind::CreateOpClassStmt: return "CREATE OPERATOR CLASS";
    case NodeKind::CreateOpFamilyStmt: return "CREATE OPERATOR FAMILY";
    case NodeKind::AlterOpFamilyStmt: return "ALTER OPERATOR FAMILY";
    case NodeKind::AlterOperatorStmt: return "ALTER OPERATOR";
    case NodeKind::AlterTypeStmt: return "ALTER TYPE";
    case NodeKind::AlterTSDictionaryStmt: return "ALTER TEXT SEARCH DICTIONARY";
    case NodeKind::AlterTSConfigurationStmt: return "ALTER TEXT SEARCH CONFIGURATION";
    case NodeKind::CreatePolicyStmt: return "CREATE POLICY";
    case NodeKind::AlterPolicyStmt: return "ALTER POLICY";
    case NodeKind::CreateAmStmt: return "CREATE ACCESS METHOD";
    case NodeKind::CreatePublicationStmt: return "CREATE PUBLICATION";
    case NodeKind::AlterPublicationStmt: return "ALTER PUBLICATION";
    case NodeKind::CreateSubscriptionStmt: return "CREATE SUBSCRIPTION";
    case NodeKind::AlterSubscriptionStmt: return "ALTER SUBSCRIPTION";
    case NodeKind::DropSubscriptionStmt: return "DROP SUBSCRIPTION";
    case NodeKind::AlterCollationStmt: return "ALTER COLLATION";
    case NodeKind::PrepareStmt: return "PREPARE";
    case NodeKind::ExecuteStmt: return "EXECUTE";
    case NodeKind::CreateStatsStmt: return "CREATE STATISTICS";
    case NodeKind::AlterStatsStmt: return "ALTER STATISTICS";
    default: return "???";
  }
}

bool is_role_statement(NodeKind kind) noexcept {
  switch (kind) {
    case NodeKind::CreateRoleStmt:
    case NodeKind::AlterRoleStmt:
    case NodeKind::CreateUserMappingStmt:
    case NodeKind::AlterUserMappingStmt:
    case NodeKind::GrantStmt:
    case NodeKind::GrantRoleStmt:
    case NodeKind::DropRoleStmt:
    case NodeKind::AlterRoleSetStmt:
    case NodeKind::AlterDefaultPrivilegesStmt:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view alter_object_tag(ObjectType type) noexcept {
  switch (type) {
    case ObjectType::Aggregate: return "ALTER AGGREGATE";
    case ObjectType::Attribute: return "ALTER TYPE";
    case ObjectType::Cast: return "ALTER CAST";
    case ObjectType::Collation: return "ALTER COLLATION";
    case ObjectType::Column: return "ALTER TABLE";
    case ObjectType::Conversion: return "ALTER CONVERSION";
    case ObjectType::Database: return "ALTER DATABASE";
    case ObjectType::Domain:
    case ObjectType::Domconstraint: return "ALTER DOMAIN";
    case ObjectType::Extension: return "ALTER EXTENSION";
    case ObjectType::Fdw: return "ALTER FOREIGN DATA WRAPPER";
    case ObjectType::ForeignServer: return "ALTER SERVER";
    case ObjectType::ForeignTable: return "ALTER FOREIGN TABLE";
    case ObjectType::Function: return "ALTER FUNCTION";
    case ObjectType::Index: return "ALTER INDEX";
    case ObjectType::Language: return "ALTER LANGUAGE";
    case ObjectType::Largeobject: return "ALTER LARGE OBJECT";
    case ObjectType::Opclass: return "ALTER OPERATOR CLASS";
    case ObjectType::Opfamily: return "ALTER OPERATOR FAMILY";
    case ObjectType::Operator: return "ALTER OPERATOR";
    case ObjectType::Procedure: return "ALTER PROCEDURE";
    case ObjectType::Role: return "ALTER ROLE";
    case ObjectType::Routine: return "ALTER ROUTINE";
    case ObjectType::Rule: return "ALTER RULE";
    case ObjectType::Schema: return "ALTER SCHEMA";
    case ObjectType::Sequence: return "ALTER SEQUENCE";
    case ObjectType::Table:
    case ObjectType::Tabconstraint: return "ALTER TABLE";
    case ObjectType::Tablespace: return "ALTER TABLESPACE";
    case ObjectType::Trigger: return "ALTER TRIGGER";
    case ObjectType::EventTrigger: return "ALTER EVENT TRIGGER";
    case ObjectType::Tsconfiguration: return "ALTER TEXT SEARCH CONFIGURATION";
    case ObjectType::Tsdictionary: return "ALTER TEXT SEARCH DICTIONARY";
    case ObjectType::Tsparser: return "ALTER TEXT SEARCH PARSER";
    case ObjectType::Tstemplate: return "ALTER TEXT SEARCH TEMPLATE";
    case ObjectType::Type: return "ALTER TYPE";
    case ObjectType::View: return "ALTER VIEW";
    case ObjectType::Matview: return "ALTER MATERIALIZED VIEW";
    case ObjectType::Publication: return "ALTER PUBLICATION";
    case ObjectType::Subscription: return "ALTER SUBSCRIPTION";
    case ObjectType::StatisticExt: return "ALTER STATISTICS";
    default: return "???";
  }
}

std::string_view command_tag(NodeKind kind, std::string_view body) noexcept {
  std::string_view tag = detailed_tag(kind, body);
  return tag.empty() ? fixed_tag(kind) : tag;
}

LogLevel log_level(NodeKind kind, std::string_view body) noexcept {
  switch (kind) {
    case NodeKind::InsertStmt:
    case NodeKind::DeleteStmt:
    case NodeKind::UpdateStmt:
    case NodeKind::MergeStmt:
    case NodeKind::TruncateStmt:
      return LogLevel::Mod;
    case NodeKind::SelectStmt:
      return pb::has_field(body, 2) ? LogLevel::Ddl : LogLevel::All;  // SELECT INTO
    case NodeKind::CopyStmt:
      return varint_of(body, 4) != 0 ? LogLevel::Mod : LogLevel::All;  // COPY FROM
    case NodeKind::PLAssignStmt:
    case NodeKind::TransactionStmt:
    case NodeKind::DeclareCursorStmt:
    case NodeKind::ClosePortalStmt:
    case NodeKind::FetchStmt:
    case NodeKind::ExecuteStmt:
    case NodeKind::DeallocateStmt:
    case NodeKind::DoStmt:
    case NodeKind::NotifyStmt:
    case NodeKind::ListenStmt:
    case NodeKind::UnlistenStmt:
    case NodeKind::LoadStmt:
    case NodeKind::CallStmt:
    case NodeKind::VacuumStmt:
    case NodeKind::ExplainStmt:
    case NodeKind::PrepareStmt:
    case NodeKind::VariableSetStmt:
    case NodeKind::VariableShowStmt:
    case NodeKind::DiscardStmt:
    case NodeKind::LockStmt:
    case NodeKind::ConstraintsSetStmt:
    case NodeKind::CheckPointStmt:
    case NodeKind::ReindexStmt:
      return LogLevel::All;
    default:
      return LogLevel::Ddl;
  }
}

StatementClass audit_class(NodeKind kind, LogLevel level, std::string_view tag) noexcept {
  switch (level) {
    case LogLevel::Mod:
      return kind == NodeKind::ExecuteStmt ? StatementClass::Misc : StatementClass::Write;
    case LogLevel::Ddl:
      if (is_role_statement(kind)) return StatementClass::Role;
      if ((kind == NodeKind::RenameStmt || kind == NodeKind::DropStmt) &&
          (tag == "ALTER ROLE" || tag == "DROP ROLE"))
        return StatementClass::Role;
      return StatementClass::Ddl;
    case LogLevel::All:
      break;
  }
  switch (kind) {
    case NodeKind::CopyStmt:
    case NodeKind::DeclareCursorStmt:
    case NodeKind::SelectStmt:
    case NodeKind::PrepareStmt:
      return StatementClass::Read;
    case NodeKind::DoStmt:
      return StatementClass::Function;
    case NodeKind::VariableSetStmt:
      return StatementClass::MiscSet;
    default:
      return StatementClass::Misc;
  }
}

}  // namespace pgwarden::policy
