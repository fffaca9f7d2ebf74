#pragma once
/// Typed messages of the PostgreSQL v3 protocol (PostgreSQL 15, plus the
/// protocol 3.2 variable-length cancel key). Plain aggregates, named after
/// PostgreSQL's "Message Formats" chapter; string_view fields view the bytes
/// the message was parsed from, so a parsed message lives no longer than its
/// buffer. One `std::variant` per direction.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pgwarden::protocol {

/// Type bytes of frontend (client to server) messages. Layouts follow the
/// header Byte1(type) Int32(length including itself).
namespace frontend_type {
inline constexpr char Bind = 'B';          // String portal, String stmt, Int16 n, Int16[n] fmts, Int16 n, {Int32 len|-1, Byte[len]}[n], Int16 n, Int16[n] result fmts
inline constexpr char Close = 'C';         // Byte1 'S'|'P', String name
inline constexpr char CopyData = 'd';      // Byte[n] data
inline constexpr char CopyDone = 'c';      // (empty)
inline constexpr char CopyFail = 'f';      // String error message
inline constexpr char Describe = 'D';      // Byte1 'S'|'P', String name
inline constexpr char Execute = 'E';       // String portal, Int32 max rows (0 = all)
inline constexpr char Flush = 'H';         // (empty)
inline constexpr char FunctionCall = 'F';  // Int32 oid, Int16 n, Int16[n] fmts, Int16 n, {Int32 len|-1, Byte[len]}[n], Int16 result fmt
inline constexpr char Parse = 'P';         // String stmt, String query, Int16 n, Int32[n] param type oids
inline constexpr char Password = 'p';      // PasswordMessage / SASLInitialResponse / SASLResponse / GSSResponse
inline constexpr char Query = 'Q';         // String query
inline constexpr char Sync = 'S';          // (empty)
inline constexpr char Terminate = 'X';     // (empty)
}  // namespace frontend_type

/// Type bytes of backend (server to client) messages.
namespace backend_type {
inline constexpr char Authentication = 'R';            // Int32 auth_req_* code, then code-specific bytes
inline constexpr char BackendKeyData = 'K';            // Int32 pid, Byte[4] key (3.0) or Byte[<=256] (3.2)
inline constexpr char BindComplete = '2';              // (empty)
inline constexpr char CloseComplete = '3';             // (empty)
inline constexpr char CommandComplete = 'C';           // String command tag
inline constexpr char CopyBothResponse = 'W';          // Int8 format, Int16 n, Int16[n] column formats
inline constexpr char CopyData = 'd';                  // Byte[n] data
inline constexpr char CopyDone = 'c';                  // (empty)
inline constexpr char CopyInResponse = 'G';            // Int8 format, Int16 n, Int16[n] column formats
inline constexpr char CopyOutResponse = 'H';           // Int8 format, Int16 n, Int16[n] column formats
inline constexpr char DataRow = 'D';                   // Int16 n, {Int32 len|-1, Byte[len]}[n]
inline constexpr char EmptyQueryResponse = 'I';        // (empty)
inline constexpr char ErrorResponse = 'E';             // {Byte1 code, String value}*, Byte1 0
inline constexpr char FunctionCallResponse = 'V';      // Int32 len|-1, Byte[len]
inline constexpr char NegotiateProtocolVersion = 'v';  // Int32 newest minor, Int32 n, String[n] unrecognized options
inline constexpr char NoData = 'n';                    // (empty)
inline constexpr char NoticeResponse = 'N';            // {Byte1 code, String value}*, Byte1 0
inline constexpr char NotificationResponse = 'A';      // Int32 pid, String channel, String payload
inline constexpr char ParameterDescription = 't';      // Int16 n, Int32[n] type oids
inline constexpr char ParameterStatus = 'S';           // String name, String value
inline constexpr char ParseComplete = '1';             // (empty)
inline constexpr char PortalSuspended = 's';           // (empty)
inline constexpr char ReadyForQuery = 'Z';             // Byte1 'I'|'T'|'E'
inline constexpr char RowDescription = 'T';            // Int16 n, {String name, Int32 table, Int16 attnum, Int32 type, Int16 size, Int32 typmod, Int16 fmt}[n]
}  // namespace backend_type

/// Authentication request codes (the Int32 after 'R'), PostgreSQL's AUTH_REQ_*.
inline constexpr std::int32_t auth_req_ok = 0;         // AuthenticationOk
inline constexpr std::int32_t auth_req_krb5 = 2;       // AuthenticationKerberosV5
inline constexpr std::int32_t auth_req_password = 3;   // AuthenticationCleartextPassword
inline constexpr std::int32_t auth_req_md5 = 5;        // AuthenticationMD5Password: Byte4 salt
inline constexpr std::int32_t auth_req_gss = 7;        // AuthenticationGSS
inline constexpr std::int32_t auth_req_gss_cont = 8;   // AuthenticationGSSContinue: Byte[n] data
inline constexpr std::int32_t auth_req_sspi = 9;       // AuthenticationSSPI
inline constexpr std::int32_t auth_req_sasl = 10;      // AuthenticationSASL: String[] mechanisms, Byte1 0
inline constexpr std::int32_t auth_req_sasl_cont = 11; // AuthenticationSASLContinue: Byte[n] data
inline constexpr std::int32_t auth_req_sasl_fin = 12;  // AuthenticationSASLFinal: Byte[n] data

/// Field codes of ErrorResponse and NoticeResponse, PostgreSQL's PG_DIAG_*.
inline constexpr char pg_diag_severity = 'S';                // localized severity
inline constexpr char pg_diag_severity_nonlocalized = 'V';   // ERROR, FATAL, PANIC, WARNING, NOTICE, ...
inline constexpr char pg_diag_sqlstate = 'C';                // five-character SQLSTATE
inline constexpr char pg_diag_message_primary = 'M';         // primary message
inline constexpr char pg_diag_message_detail = 'D';          // optional detail
inline constexpr char pg_diag_message_hint = 'H';            // optional hint
inline constexpr char pg_diag_statement_position = 'P';      // decimal cursor position
inline constexpr char pg_diag_internal_position = 'p';       // position in an internal query
inline constexpr char pg_diag_internal_query = 'q';          // the internal query
inline constexpr char pg_diag_context = 'W';                 // call stack
inline constexpr char pg_diag_schema_name = 's';             // schema name
inline constexpr char pg_diag_table_name = 't';              // table name
inline constexpr char pg_diag_column_name = 'c';             // column name
inline constexpr char pg_diag_datatype_name = 'd';           // data type name
inline constexpr char pg_diag_constraint_name = 'n';         // constraint name
inline constexpr char pg_diag_source_file = 'F';             // server source file
inline constexpr char pg_diag_source_line = 'L';             // server source line
inline constexpr char pg_diag_source_function = 'R';         // server source function

/// Largest cancel key protocol 3.2 allows in BackendKeyData and CancelRequest.
inline constexpr std::size_t max_cancel_key = 256;

// ---------------------------------------------------------------------------
// Startup phase (untyped packets: Int32 length, Int32 code, payload)
// ---------------------------------------------------------------------------

/// StartupMessage: Int32 len, Int32 version (3 << 16 | minor), {String name, String value}*, Byte1 0.
struct StartupMessage {
  std::uint32_t protocol_version = 0;
  std::vector<std::pair<std::string_view, std::string_view>> parameters;

  /// The value of parameter `name` ("user", "database", ...), empty if absent.
  std::string_view parameter(std::string_view name) const;
  friend bool operator==(const StartupMessage&, const StartupMessage&) = default;
};

/// SSLRequest: Int32 8, Int32 80877103.
struct SslRequest {
  friend bool operator==(const SslRequest&, const SslRequest&) = default;
};

/// GSSENCRequest: Int32 8, Int32 80877104.
struct GssEncRequest {
  friend bool operator==(const GssEncRequest&, const GssEncRequest&) = default;
};

/// CancelRequest: Int32 len, Int32 80877102, Int32 pid, Byte[4] key (3.0) or Byte[<=256] (3.2).
struct CancelRequest {
  std::int32_t process_id = 0;
  std::string_view secret_key;
  friend bool operator==(const CancelRequest&, const CancelRequest&) = default;
};

/// Any packet of the startup phase.
using StartupPacket = std::variant<StartupMessage, SslRequest, GssEncRequest, CancelRequest>;

// ---------------------------------------------------------------------------
// Frontend messages
// ---------------------------------------------------------------------------

/// Simple query protocol: one string that may hold several statements.
struct Query {
  static constexpr char type = frontend_type::Query;
  std::string_view sql;
  friend bool operator==(const Query&, const Query&) = default;
};

/// Extended protocol: prepare `sql` as `statement` ("" = unnamed).
struct Parse {
  static constexpr char type = frontend_type::Parse;
  std::string_view statement;
  std::string_view sql;
  std::vector<std::uint32_t> param_types;  ///< type oids; 0 = unspecified
  friend bool operator==(const Parse&, const Parse&) = default;
};

/// Extended protocol: bind parameters to `statement`, creating `portal`.
struct Bind {
  static constexpr char type = frontend_type::Bind;
  std::string_view portal;
  std::string_view statement;
  std::vector<std::int16_t> param_formats;   ///< 0 text, 1 binary; none = all text; one = for all
  std::vector<std::optional<std::string_view>> params;  ///< nullopt = SQL NULL
  std::vector<std::int16_t> result_formats;
  friend bool operator==(const Bind&, const Bind&) = default;
};

/// Extended protocol: describe a statement ('S') or portal ('P').
struct Describe {
  static constexpr char type = frontend_type::Describe;
  char kind = 'S';
  std::string_view name;
  friend bool operator==(const Describe&, const Describe&) = default;
};

/// Extended protocol: run `portal`, returning at most `max_rows` rows (0 = all).
struct Execute {
  static constexpr char type = frontend_type::Execute;
  std::string_view portal;
  std::int32_t max_rows = 0;
  friend bool operator==(const Execute&, const Execute&) = default;
};

/// Extended protocol: close a statement ('S') or portal ('P').
struct Close {
  static constexpr char type = frontend_type::Close;
  char kind = 'S';
  std::string_view name;
  friend bool operator==(const Close&, const Close&) = default;
};

/// Extended protocol: end of a batch; the server answers ReadyForQuery.
struct Sync {
  static constexpr char type = frontend_type::Sync;
  friend bool operator==(const Sync&, const Sync&) = default;
};

/// Extended protocol: ask the server to send what it has buffered.
struct Flush {
  static constexpr char type = frontend_type::Flush;
  friend bool operator==(const Flush&, const Flush&) = default;
};

/// Fast-path function call (legacy, still used by large-object APIs).
struct FunctionCall {
  static constexpr char type = frontend_type::FunctionCall;
  std::uint32_t function_oid = 0;
  std::vector<std::int16_t> arg_formats;
  std::vector<std::optional<std::string_view>> args;  ///< nullopt = SQL NULL
  std::int16_t result_format = 0;
  friend bool operator==(const FunctionCall&, const FunctionCall&) = default;
};

/// COPY payload; sent by either side.
struct CopyData {
  static constexpr char type = frontend_type::CopyData;
  std::string_view data;
  friend bool operator==(const CopyData&, const CopyData&) = default;
};

/// End of COPY data; sent by either side.
struct CopyDone {
  static constexpr char type = frontend_type::CopyDone;
  friend bool operator==(const CopyDone&, const CopyDone&) = default;
};

/// The client aborts COPY FROM STDIN with `message`.
struct CopyFail {
  static constexpr char type = frontend_type::CopyFail;
  std::string_view message;
  friend bool operator==(const CopyFail&, const CopyFail&) = default;
};

/// The client closes the session.
struct Terminate {
  static constexpr char type = frontend_type::Terminate;
  friend bool operator==(const Terminate&, const Terminate&) = default;
};

/// Cleartext or MD5 password answer ('p' after a password request).
struct PasswordMessage {
  static constexpr char type = frontend_type::Password;
  std::string_view password;
  friend bool operator==(const PasswordMessage&, const PasswordMessage&) = default;
};

/// First SASL message ('p' after AuthenticationSASL): mechanism and client-first data.
struct SaslInitialResponse {
  static constexpr char type = frontend_type::Password;
  std::string_view mechanism;
  std::optional<std::string_view> data;  ///< nullopt = length -1 (no initial response)
  friend bool operator==(const SaslInitialResponse&, const SaslInitialResponse&) = default;
};

/// Later SASL messages ('p' after AuthenticationSASLContinue).
struct SaslResponse {
  static constexpr char type = frontend_type::Password;
  std::string_view data;
  friend bool operator==(const SaslResponse&, const SaslResponse&) = default;
};

/// GSSAPI/SSPI token ('p' after AuthenticationGSS/SSPI/GSSContinue).
struct GssResponse {
  static constexpr char type = frontend_type::Password;
  std::string_view data;
  friend bool operator==(const GssResponse&, const GssResponse&) = default;
};

/// Any typed message a client sends after the startup packet.
using FrontendMessage =
    std::variant<Query, Parse, Bind, Describe, Execute, Close, Sync, Flush, FunctionCall, CopyData, CopyDone,
                 CopyFail, Terminate, PasswordMessage, SaslInitialResponse, SaslResponse, GssResponse>;

// ---------------------------------------------------------------------------
// Backend messages
// ---------------------------------------------------------------------------

/// Authentication succeeded.
struct AuthenticationOk {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_ok;
  friend bool operator==(const AuthenticationOk&, const AuthenticationOk&) = default;
};

/// Kerberos V5 requested (unsupported since PostgreSQL 9.4, still a valid code).
struct AuthenticationKerberosV5 {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_krb5;
  friend bool operator==(const AuthenticationKerberosV5&, const AuthenticationKerberosV5&) = default;
};

/// Cleartext password requested.
struct AuthenticationCleartextPassword {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_password;
  friend bool operator==(const AuthenticationCleartextPassword&, const AuthenticationCleartextPassword&) = default;
};

/// MD5 password requested, hashed with the 4-byte `salt`.
struct AuthenticationMD5Password {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_md5;
  std::string_view salt;  ///< exactly 4 bytes
  friend bool operator==(const AuthenticationMD5Password&, const AuthenticationMD5Password&) = default;
};

/// GSSAPI authentication requested.
struct AuthenticationGSS {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_gss;
  friend bool operator==(const AuthenticationGSS&, const AuthenticationGSS&) = default;
};

/// GSSAPI or SSPI continuation token.
struct AuthenticationGSSContinue {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_gss_cont;
  std::string_view data;
  friend bool operator==(const AuthenticationGSSContinue&, const AuthenticationGSSContinue&) = default;
};

/// SSPI authentication requested.
struct AuthenticationSSPI {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_sspi;
  friend bool operator==(const AuthenticationSSPI&, const AuthenticationSSPI&) = default;
};

/// SASL requested; the server lists the mechanisms it accepts, most preferred first.
struct AuthenticationSASL {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_sasl;
  std::vector<std::string_view> mechanisms;
  friend bool operator==(const AuthenticationSASL&, const AuthenticationSASL&) = default;
};

/// SASL challenge (SCRAM server-first-message).
struct AuthenticationSASLContinue {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_sasl_cont;
  std::string_view data;
  friend bool operator==(const AuthenticationSASLContinue&, const AuthenticationSASLContinue&) = default;
};

/// SASL outcome (SCRAM server-final-message).
struct AuthenticationSASLFinal {
  static constexpr char type = backend_type::Authentication;
  static constexpr std::int32_t code = auth_req_sasl_fin;
  std::string_view data;
  friend bool operator==(const AuthenticationSASLFinal&, const AuthenticationSASLFinal&) = default;
};

/// The identity a CancelRequest must quote to cancel this session's queries.
struct BackendKeyData {
  static constexpr char type = backend_type::BackendKeyData;
  std::int32_t process_id = 0;
  std::string_view secret_key;  ///< 4 bytes in 3.0, up to 256 in 3.2
  friend bool operator==(const BackendKeyData&, const BackendKeyData&) = default;
};

/// A run-time parameter's current value (server_version, client_encoding, ...).
struct ParameterStatus {
  static constexpr char type = backend_type::ParameterStatus;
  std::string_view name;
  std::string_view value;
  friend bool operator==(const ParameterStatus&, const ParameterStatus&) = default;
};

/// The server awaits a new query; `status` is 'I' idle, 'T' in a transaction, 'E' in a failed one.
struct ReadyForQuery {
  static constexpr char type = backend_type::ReadyForQuery;
  char status = 'I';
  friend bool operator==(const ReadyForQuery&, const ReadyForQuery&) = default;
};

/// One column of a RowDescription.
struct FieldDescription {
  std::string_view name;
  std::uint32_t table_oid = 0;       ///< 0 if not a table column
  std::int16_t column_number = 0;    ///< attribute number, 0 if not a table column
  std::uint32_t type_oid = 0;
  std::int16_t type_size = 0;        ///< pg_type.typlen; negative = variable width
  std::int32_t type_modifier = 0;    ///< pg_attribute.atttypmod
  std::int16_t format = 0;           ///< 0 text, 1 binary
  friend bool operator==(const FieldDescription&, const FieldDescription&) = default;
};

/// The columns of the rows that follow.
struct RowDescription {
  static constexpr char type = backend_type::RowDescription;
  std::vector<FieldDescription> fields;
  friend bool operator==(const RowDescription&, const RowDescription&) = default;
};

/// One result row.
struct DataRow {
  static constexpr char type = backend_type::DataRow;
  std::vector<std::optional<std::string_view>> columns;  ///< nullopt = SQL NULL
  friend bool operator==(const DataRow&, const DataRow&) = default;
};

/// A statement finished; `tag` is e.g. "SELECT 3", "INSERT 0 1".
struct CommandComplete {
  static constexpr char type = backend_type::CommandComplete;
  std::string_view tag;
  friend bool operator==(const CommandComplete&, const CommandComplete&) = default;
};

/// One {code, value} field of an ErrorResponse or NoticeResponse.
struct ErrorField {
  char code = 0;  ///< one of pg_diag_*
  std::string_view value;
  friend bool operator==(const ErrorField&, const ErrorField&) = default;
};

/// An error; the current command (or, if FATAL, the session) is over.
struct ErrorResponse {
  static constexpr char type = backend_type::ErrorResponse;
  std::vector<ErrorField> fields;

  /// The value of the first field with `code` (e.g. pg_diag_sqlstate), empty if absent.
  std::string_view field(char code) const;
  friend bool operator==(const ErrorResponse&, const ErrorResponse&) = default;
};

/// A warning or notice; the command goes on.
struct NoticeResponse {
  static constexpr char type = backend_type::NoticeResponse;
  std::vector<ErrorField> fields;

  /// The value of the first field with `code`, empty if absent.
  std::string_view field(char code) const;
  friend bool operator==(const NoticeResponse&, const NoticeResponse&) = default;
};

/// NOTIFY delivered to a listening session.
struct NotificationResponse {
  static constexpr char type = backend_type::NotificationResponse;
  std::int32_t process_id = 0;  ///< the notifying backend
  std::string_view channel;
  std::string_view payload;
  friend bool operator==(const NotificationResponse&, const NotificationResponse&) = default;
};

/// The parameter types of a described statement.
struct ParameterDescription {
  static constexpr char type = backend_type::ParameterDescription;
  std::vector<std::uint32_t> types;
  friend bool operator==(const ParameterDescription&, const ParameterDescription&) = default;
};

/// Parse succeeded.
struct ParseComplete {
  static constexpr char type = backend_type::ParseComplete;
  friend bool operator==(const ParseComplete&, const ParseComplete&) = default;
};

/// Bind succeeded.
struct BindComplete {
  static constexpr char type = backend_type::BindComplete;
  friend bool operator==(const BindComplete&, const BindComplete&) = default;
};

/// Close succeeded.
struct CloseComplete {
  static constexpr char type = backend_type::CloseComplete;
  friend bool operator==(const CloseComplete&, const CloseComplete&) = default;
};

/// The described statement or portal returns no rows.
struct NoData {
  static constexpr char type = backend_type::NoData;
  friend bool operator==(const NoData&, const NoData&) = default;
};

/// Execute stopped at its row limit; the portal can be resumed.
struct PortalSuspended {
  static constexpr char type = backend_type::PortalSuspended;
  friend bool operator==(const PortalSuspended&, const PortalSuspended&) = default;
};

/// The query string was empty.
struct EmptyQueryResponse {
  static constexpr char type = backend_type::EmptyQueryResponse;
  friend bool operator==(const EmptyQueryResponse&, const EmptyQueryResponse&) = default;
};

/// COPY FROM STDIN started; the client sends CopyData.
struct CopyInResponse {
  static constexpr char type = backend_type::CopyInResponse;
  std::int8_t format = 0;  ///< 0 text, 1 binary
  std::vector<std::int16_t> column_formats;
  friend bool operator==(const CopyInResponse&, const CopyInResponse&) = default;
};

/// COPY TO STDOUT started; the server sends CopyData.
struct CopyOutResponse {
  static constexpr char type = backend_type::CopyOutResponse;
  std::int8_t format = 0;
  std::vector<std::int16_t> column_formats;
  friend bool operator==(const CopyOutResponse&, const CopyOutResponse&) = default;
};

/// Copy in both directions started (streaming replication).
struct CopyBothResponse {
  static constexpr char type = backend_type::CopyBothResponse;
  std::int8_t format = 0;
  std::vector<std::int16_t> column_formats;
  friend bool operator==(const CopyBothResponse&, const CopyBothResponse&) = default;
};

/// The server speaks an older minor version or ignores some `_pq_.` options.
struct NegotiateProtocolVersion {
  static constexpr char type = backend_type::NegotiateProtocolVersion;
  std::int32_t newest_minor = 0;
  std::vector<std::string_view> unrecognized_options;
  friend bool operator==(const NegotiateProtocolVersion&, const NegotiateProtocolVersion&) = default;
};

/// Result of a FunctionCall.
struct FunctionCallResponse {
  static constexpr char type = backend_type::FunctionCallResponse;
  std::optional<std::string_view> result;  ///< nullopt = SQL NULL
  friend bool operator==(const FunctionCallResponse&, const FunctionCallResponse&) = default;
};

/// Any typed message a server sends.
using BackendMessage =
    std::variant<AuthenticationOk, AuthenticationKerberosV5, AuthenticationCleartextPassword,
                 AuthenticationMD5Password, AuthenticationGSS, AuthenticationGSSContinue, AuthenticationSSPI,
                 AuthenticationSASL, AuthenticationSASLContinue, AuthenticationSASLFinal, BackendKeyData,
                 ParameterStatus, ReadyForQuery, RowDescription, DataRow, CommandComplete, ErrorResponse,
                 NoticeResponse, NotificationResponse, ParameterDescription, ParseComplete, BindComplete,
                 CloseComplete, NoData, PortalSuspended, EmptyQueryResponse, CopyInResponse, CopyOutResponse,
                 CopyBothResponse, CopyData, CopyDone, NegotiateProtocolVersion, FunctionCallResponse>;

}  // namespace pgwarden::protocol
