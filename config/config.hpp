#pragma once
/// The validated, immutable configuration of one pgwarden process. Loaded from
/// YAML by load_config_file(); a reload builds a new Config and the proxy swaps
/// the shared pointer, so nothing here is ever mutated after loading.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/grants.hpp"
#include "policy/rules.hpp"

namespace pgwarden::config {

using Duration = std::chrono::milliseconds;

/// host:port to listen on or connect to. IPv6 hosts are written "[::1]:6432".
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  /// "host:port", with brackets around IPv6 hosts.
  std::string to_string() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// libpq's sslmode for the upstream hop.
enum class UpstreamTlsMode : std::uint8_t { Disable, Prefer, Require, VerifyCa, VerifyFull };

/// The PostgreSQL server behind pgwarden.
struct UpstreamConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5432;
  /// Directory of PostgreSQL's Unix socket (libpq's host=/dir); when set it is
  /// used instead of host, connecting to `<dir>/.s.PGSQL.<port>`.
  std::string unix_socket;
  UpstreamTlsMode tls = UpstreamTlsMode::Prefer;
  std::string ca;           ///< CA file for verify-ca / verify-full (absolute path)
  std::string cert;         ///< optional client certificate for the upstream
  std::string key;          ///< its key
  std::string server_name;  ///< SNI and verify-full host name; default: host
  Duration connect_timeout = std::chrono::seconds(10);
  /// With auth: scram, idle server connections kept per user, database and
  /// startup parameters on each event loop, reset with DISCARD ALL and
  /// reused by the next such client (pgbouncer's session pooling); 0 = off.
  std::uint32_t pool_size = 20;
  /// How long a pooled connection may stay idle before it is closed.
  Duration pool_idle_timeout = std::chrono::seconds(60);

  /// `<unix_socket>/.s.PGSQL.<port>`, or "" when connecting over TCP.
  std::string socket_path() const;
};

enum class TlsVersion : std::uint8_t { V1_2, V1_3 };
enum class ClientCertMode : std::uint8_t { None, Optional, Require };

/// TLS towards clients. Enabled when cert and key are set.
struct TlsConfig {
  std::string cert;  ///< absolute path
  std::string key;
  std::string ca;    ///< CA for client certificates
  bool required = false;  ///< refuse plaintext clients (FATAL 28000)
  TlsVersion min_version = TlsVersion::V1_2;
  std::string ciphers;  ///< OpenSSL cipher list; "" = OpenSSL's default
  ClientCertMode client_cert = ClientCertMode::None;

  bool enabled() const noexcept { return !cert.empty(); }
};

enum class AuthMode : std::uint8_t { Passthrough, Scram };

/// How clients authenticate (ARCHITECTURE.md "Identity").
struct AuthConfig {
  AuthMode mode = AuthMode::Passthrough;
  std::string auth_file;   ///< pgbouncer userlist format (absolute path)
  std::string auth_query;  ///< e.g. SELECT usename, passwd FROM pg_shadow WHERE usename=$1
  std::string auth_user;   ///< the user auth_query runs as
  /// How long an auth_query answer (a secret, or "no such user") is reused.
  Duration cache_ttl = std::chrono::seconds(30);
};

/// A field of a verified client certificate.
enum class CertificateField : std::uint8_t {
  None,      ///< not read
  SanEmail,  ///< subjectAltName rfc822Name (e-mail address)
  SanUri,    ///< subjectAltName uniformResourceIdentifier
  Cn,        ///< subject commonName
  Ou,        ///< subject organizationalUnitName, each one a group
};

/// People identified by their client certificate (needs tls.client_cert).
struct CertificateIdentity {
  CertificateField person = CertificateField::SanEmail;  ///< san_email | san_uri | cn
  CertificateField groups = CertificateField::None;      ///< ou | none
};

/// People identified by a signed token (JWT) given as the password,
/// verified offline against a JWKS file. Accepted only over TLS.
struct TokenIdentity {
  std::string jwks_file;              ///< absolute path; re-read on reload
  std::string issuer;                 ///< required `iss`
  std::vector<std::string> audience;  ///< `aud` must hold one of these
  std::string person_claim = "sub";
  std::string groups_claim = "groups";  ///< "" = tokens carry no groups
  Duration clock_skew = std::chrono::seconds(60);  ///< allowed on exp and nbf
  std::uint64_t max_bytes = 16u << 10;             ///< longer passwords are refused unread
};

/// How people, as opposed to database roles, prove who they are
/// (ARCHITECTURE.md "People and roles"). Each part is optional.
struct IdentityConfig {
  std::string people_file;  ///< absolute path of the people file; "" = none
  std::optional<CertificateIdentity> certificate;
  std::optional<TokenIdentity> token;

  /// True when some way for people to log in is configured.
  bool enabled() const noexcept { return !people_file.empty() || certificate || token; }
};

/// The secret pgwarden logs in to PostgreSQL with as one database role.
/// Only paths: the session reads the files at login (config/secret_file.hpp),
/// so no secret is ever held in a Config.
struct RoleCredential {
  std::string password_file;  ///< absolute path; the password on its first line
  std::string cert;           ///< client certificate for the server's `cert` method
  std::string key;            ///< its private key
};
using CredentialMap = std::map<std::string, RoleCredential, std::less<>>;

/// Resource limits, each with a documented default.
struct Limits {
  std::uint32_t max_client_connections = 1000;  ///< beyond it FATAL 53300
  Duration startup_timeout = std::chrono::seconds(15);
  Duration idle_timeout{0};                      ///< 0 = off
  std::uint64_t max_message_bytes = 64ull << 20;  ///< 64 MiB
};

/// The admin HTTP server (/metrics, /healthz, /readyz); off when unset.
struct AdminConfig {
  std::optional<Endpoint> listen;
};

enum class LogFormat : std::uint8_t { Text, Json };
enum class LogLevel : std::uint8_t { Trace, Debug, Info, Warn, Error, Critical, Off };

/// The operational log (not the audit log).
struct LogConfig {
  LogLevel level = LogLevel::Info;
  LogFormat format = LogFormat::Text;
  bool statements = false;  ///< SQL text in the operational log
};

enum class Durability : std::uint8_t { Buffered, Synced };
enum class OnAuditFailure : std::uint8_t { Block, Continue };
enum class AuditParameters : std::uint8_t { None, Redacted, Full };

/// The audit trail (issue 6). Off when `file` is empty.
struct AuditConfig {
  std::string file;  ///< absolute path of the JSON Lines file
  Durability durability = Durability::Buffered;
  OnAuditFailure on_failure = OnAuditFailure::Block;
  AuditParameters parameters = AuditParameters::None;
  bool redact_literals = false;
  std::string hmac_key_file;       ///< absolute path; "" = no HMAC
  std::uint64_t rotate_bytes = 0;  ///< 0 = never by size
  Duration rotate_interval{0};     ///< 0 = never by time
  std::uint32_t retention = 0;     ///< rotated files kept; 0 = all
  /// Synced durability: zeros written ahead of the records so a sync need
  /// not change the file's size; 0 = off.
  std::uint64_t preallocate = 8u << 20;
  std::uint32_t queue_records = 65536;

  bool enabled() const noexcept { return !file.empty(); }
};

/// The connected database's catalog, read by a role of its own, so that
/// functions, operators and casts a user created are FUNCTION only when they
/// may change something (policy::DatabaseCatalog). Off when `user` is empty:
/// every such call is then FUNCTION (fail closed).
struct CatalogLookupConfig {
  std::string user;           ///< the lookup role: CONNECT and catalog reads suffice
  std::string password_file;  ///< absolute path, mode 0600 or stricter; "" = no password (trust, cert)
  /// How often a database's catalog is read again; 0 = only after a reload
  /// or DDL seen through pgwarden.
  Duration refresh = std::chrono::minutes(10);
  /// How long a session's first statement waits for its database's first
  /// catalog read before it is decided without one (fail closed).
  Duration first_load_wait = std::chrono::seconds(2);

  bool enabled() const noexcept { return !user.empty(); }
  friend bool operator==(const CatalogLookupConfig&, const CatalogLookupConfig&) = default;
};

/// An http:// or https:// address an alert sink posts to.
struct HttpUrl {
  bool tls = false;
  std::string host;      ///< without brackets
  std::uint16_t port = 0;
  std::string target;    ///< path and query, at least "/"
  /// "http[s]://host:port/target".
  std::string to_string() const;
};

enum class AlertSinkType : std::uint8_t { Webhook, Slack, Alertmanager, Syslog };
/// How syslog messages travel: RFC 5426 (UDP), RFC 6587 octet counting (TCP),
/// RFC 5425 (TLS).
enum class SyslogTransport : std::uint8_t { Udp, Tcp, Tls };

/// One place alerts are delivered to (issue 22).
struct AlertSinkConfig {
  std::string name;  ///< unique; the `sink` label of pgwarden_alerts_total
  AlertSinkType type = AlertSinkType::Webhook;
  HttpUrl url;                  ///< webhook, slack, alertmanager
  Endpoint address;             ///< syslog
  SyslogTransport transport = SyslogTransport::Udp;
  std::string key_file;         ///< webhook: HMAC-SHA256 key (absolute path); "" = unsigned
  std::string ca;               ///< https / syslog TLS: CA file; "" = the system's trust store
  std::uint8_t facility = 10;   ///< syslog facility (10: authpriv)
  Duration timeout = std::chrono::seconds(5);  ///< one delivery attempt
  std::uint32_t queue_size = 1000;             ///< alerts waiting; beyond it they are undelivered
  std::uint32_t attempts = 5;                  ///< deliveries tried per alert, at least 1
  Duration initial_backoff = std::chrono::milliseconds(200);
  Duration max_backoff = std::chrono::seconds(10);
};

/// Alert delivery. Off when there are no sinks.
struct AlertsConfig {
  std::vector<AlertSinkConfig> sinks;
  /// Repeats of the same alert (kind, rule, user, client) within this window
  /// after the first are sent as one message with a count.
  Duration aggregation_window = std::chrono::seconds(10);

  bool enabled() const noexcept { return !sinks.empty(); }
};

/// The whole configuration.
struct Config {
  std::string source;  ///< the file it was loaded from (absolute) or the name given
  std::vector<Endpoint> listen;  ///< at least one
  UpstreamConfig upstream;
  TlsConfig tls;
  AuthConfig auth;
  /// People: certificates, tokens, the people file.
  IdentityConfig identity;
  /// Database role -> the secret pgwarden logs in with.
  CredentialMap credentials;
  /// Which person may use which role, where; resolved against `networks:`
  /// and `groups:`.
  policy::GrantSet grants;
  Limits limits;
  AdminConfig admin;
  LogConfig log;
  /// The deployment this proxy guards ("production"); copied into SessionFacts.
  std::string environment;
  /// networks, groups, rules and default, resolved.
  policy::RuleSet policy;
  AuditConfig audit;
  CatalogLookupConfig catalog_lookup;
  AlertsConfig alerts;
  Duration shutdown_timeout = std::chrono::seconds(30);
  /// Event loops (threads), each with its own listening socket; 0 = one per
  /// CPU the process may run on.
  std::uint32_t workers = 0;
};
using ConfigPtr = std::shared_ptr<const Config>;

/// One problem in a configuration file, at 1-based line and column (0 when
/// the file as a whole is meant).
struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  /// "file:line:col: message".
  std::string to_string() const;
};

/// The loaded configuration, or every error found. Warnings do not stop loading.
struct LoadResult {
  ConfigPtr config;  ///< null when errors is not empty
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;
  bool ok() const noexcept { return config != nullptr; }
};

/// Loads and validates `path`. Relative paths inside resolve against the
/// file's directory.
LoadResult load_config_file(const std::string& path);
/// Loads YAML `text`; `name` is used in diagnostics and its directory (or the
/// current one) resolves relative paths.
LoadResult load_config_string(const std::string& text, const std::string& name);

/// Names for enum values, as written in the configuration.
std::string_view to_string(UpstreamTlsMode m) noexcept;
std::string_view to_string(AuthMode m) noexcept;
std::string_view to_string(Durability d) noexcept;
std::string_view to_string(CertificateField f) noexcept;
std::string_view to_string(AlertSinkType t) noexcept;
std::string_view to_string(SyslogTransport t) noexcept;

/// Reads "http[s]://host[:port][/path]"; nullopt with `error` set otherwise.
std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& error);

}  // namespace pgwarden::config
