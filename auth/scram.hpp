#pragma once
/// SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, channel binding
/// type tls-server-end-point of RFC 5929) as PostgreSQL speaks them, on both
/// of pgwarden's hops, plus answers from stored md5 secrets.
///
/// With `auth: scram` pgwarden verifies the client itself (ScramServer),
/// recovers the ClientKey from the client's proof, and logs into the upstream
/// as the same user with that key (ScramClient). No plaintext password is
/// stored or derived: no login runs PBKDF2 (only make_scram_verifier does).
///
/// Pure computation: the caller moves the payloads of AuthenticationSASL*,
/// SASLInitialResponse and SASLResponse; nothing here does I/O or logs.
/// Every failure is an AuthFailure carrying what PostgreSQL would put in its
/// ErrorResponse (SQLSTATE, message, detail).

#include <openssl/types.h>

#include <array>
#include <cassert>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace pgwarden::auth {

/// SASL mechanism names as PostgreSQL lists them in AuthenticationSASL.
inline constexpr std::string_view scram_sha_256_name = "SCRAM-SHA-256";
inline constexpr std::string_view scram_sha_256_plus_name = "SCRAM-SHA-256-PLUS";

/// Why an authentication step failed. Each value has one SQLSTATE
/// (AuthFailure::sqlstate) and a generic message (the error category's).
enum class AuthError {
  // The client of pgwarden sent something wrong (pgwarden as the server).
  MalformedMessage = 1,       ///< 08P01 "malformed SCRAM message"
  InvalidMechanism,           ///< 08P01 a mechanism pgwarden did not offer
  UnsupportedChannelBinding,  ///< 08P01 a channel-binding type other than tls-server-end-point
  UnexpectedChannelBinding,   ///< 08P01 c= in client-final does not repeat the gs2 header
  InvalidNonce,               ///< 08P01 client-final nonce is not client + server nonce
  ChannelBindingDowngrade,    ///< 28000 flag 'y' while pgwarden offered SCRAM-SHA-256-PLUS
  ChannelBindingMismatch,     ///< 28000 c= binds to a certificate other than pgwarden's
  AuthzidNotSupported,        ///< 0A000 an authorization identity in the gs2 header
  ExtensionNotSupported,      ///< 0A000 a mandatory extension (m=)
  WrongPassword,              ///< 28P01 the proof does not match the user's secret
  // The upstream server sent something wrong or unexpected (pgwarden as the client).
  NoCommonMechanism,          ///< 08006 the server offers no mechanism pgwarden can use
  PlusWithoutTls,             ///< 08006 SCRAM-SHA-256-PLUS offered over plaintext (stripped TLS)
  ChannelBindingRequired,     ///< 08006 binding required but the server did not offer PLUS
  ServerMessageMalformed,     ///< 08006 server-first or server-final does not parse
  ServerNonceMismatch,        ///< 08006 the server's nonce does not extend pgwarden's
  SecretMismatch,             ///< 08006 the server's salt/iterations differ from the stored secret
  ServerError,                ///< 08006 the server ended the exchange with e=
  ServerSignatureMismatch,    ///< 08006 the server does not know the user's ServerKey
  // Either side.
  UnexpectedMessage,          ///< 08P01 a SASL message at a step where none is expected
  InvalidSecret,              ///< 28000 a stored SCRAM secret that does not parse
  ChannelBindingUnavailable,  ///< XX000 no tls-server-end-point hash for a certificate
  // Identities of people (auth/jwt, auth/certificate_identity).
  TokenRefused,               ///< 28000 a token used as the password did not verify
  CertificateRefused,         ///< 28000 a client certificate names no usable person
  Internal,                   ///< XX000 the random number generator failed
};

/// The category of every AuthError ("pgwarden.auth").
const std::error_category& auth_category() noexcept;

inline std::error_code make_error_code(AuthError e) noexcept {
  return {static_cast<int>(e), auth_category()};
}

/// A failed authentication step: what to put in the ErrorResponse, and what
/// only the operator should see.
struct AuthFailure {
  AuthError code = AuthError::Internal;
  std::string message;     ///< primary message ('M'), ready to send
  std::string detail;      ///< 'D'; empty when there is none
  std::string log_detail;  ///< for the operational log only, never sent to the client

  /// The SQLSTATE to send ('C') for `code`.
  std::string_view sqlstate() const noexcept;
};

/// 28P01 `password authentication failed for user "<user>"`, what PostgreSQL
/// sends for any wrong or unknown password.
AuthFailure password_failed(std::string_view user, std::string log_detail = {});

/// A value or the AuthFailure that prevented it (std::expected is C++23).
template <class T>
class [[nodiscard]] AuthResult {
 public:
  AuthResult(T value) : v_(std::move(value)) {}
  AuthResult(AuthFailure failure) : v_(std::move(failure)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const AuthFailure& error() const& { assert(!ok()); return std::get<1>(v_); }
  AuthFailure&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, AuthFailure> v_;
};

/// Success, or the AuthFailure that prevented it.
template <>
class [[nodiscard]] AuthResult<void> {
 public:
  AuthResult() = default;
  AuthResult(AuthFailure failure) : failure_(std::move(failure)) {}

  bool ok() const noexcept { return !failure_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const AuthFailure& error() const& { assert(!ok()); return *failure_; }
  AuthFailure&& error() && { assert(!ok()); return std::move(*failure_); }

 private:
  std::optional<AuthFailure> failure_;
};

/// A SHA-256 sized SCRAM key (StoredKey, ServerKey, ClientKey).
using ScramKey = std::array<unsigned char, 32>;

/// A user's SCRAM-SHA-256 secret as PostgreSQL stores it in
/// pg_authid.rolpassword:
/// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
/// It lets pgwarden verify a client without knowing the password.
struct ScramVerifier {
  int iterations = 0;
  std::string salt;  ///< raw bytes
  ScramKey stored_key{};
  ScramKey server_key{};

  /// Parses the stored form strictly: base64 with padding and no blanks, a
  /// decimal iteration count from 1 to 2^31-1 without sign or leading zero,
  /// 32-byte keys, nothing after the ServerKey. Fails with InvalidSecret and
  /// a detail naming the part at fault (never echoing the keys).
  static AuthResult<ScramVerifier> parse(std::string_view text);
  /// The stored form, as PostgreSQL writes it.
  std::string to_string() const;

  friend bool operator==(const ScramVerifier&, const ScramVerifier&) = default;
};

/// PostgreSQL's default iteration count (SCRAM_SHA_256_DEFAULT_ITERATIONS).
inline constexpr int scram_default_iterations = 4096;

/// Makes the stored secret of `password` with a random 16-byte salt, as
/// PostgreSQL's `ALTER ROLE ... PASSWORD` does; for files pgwarden reads
/// (the people file). This is the one place that runs PBKDF2. PostgreSQL
/// applies SASLprep, which leaves ASCII unchanged; pgwarden does not
/// implement it, so a password with a byte outside printable ASCII is
/// refused (InvalidSecret) rather than hashed differently from PostgreSQL.
/// Also refused: an empty password, an iteration count below 1 or a failing
/// random generator (Internal).
AuthResult<ScramVerifier> make_scram_verifier(std::string_view password,
                                              int iterations = scram_default_iterations);
/// The same with a given salt (raw bytes, not empty): deterministic, for tests.
AuthResult<ScramVerifier> make_scram_verifier(std::string_view password, int iterations,
                                              std::string_view salt);

/// Makes the printable nonce each side contributes; injectable so tests can
/// replay fixed exchanges.
using NonceSource = std::function<std::string()>;

/// 18 bytes from RAND_bytes in base64, as PostgreSQL and libpq make them;
/// empty if the random generator fails.
std::string random_nonce();

/// pgwarden's client-side hop, as the SCRAM server sees it.
struct ServerChannel {
  bool tls = false;            ///< the client connected over TLS
  std::string end_point_hash;  ///< tls_server_end_point() of pgwarden's certificate; empty: no binding
};

/// What to send after a successful server step.
struct ServerReply {
  enum class Kind {
    Continue,  ///< send AuthenticationSASLContinue(data), then read a SASLResponse
    Final,     ///< send AuthenticationSASLFinal(data), then AuthenticationOk
  };
  Kind kind = Kind::Continue;
  std::string data;
};

/// pgwarden verifying a client with SCRAM-SHA-256(-PLUS) against the user's
/// stored secret. Drive it with:
///   1. AuthenticationSASL listing mechanisms().
///   2. initial_response(SASLInitialResponse mechanism, data): reply Continue
///      with the server-first-message.
///   3. response(SASLResponse data) with the client-final-message: reply
///      Final with the server-final-message; client_key() is now the user's
///      ClientKey, usable for ScramClient.
///   (A SASLInitialResponse without data gets an empty Continue; the next
///   response() then carries the client-first-message.)
/// Any failure ends the exchange: send the AuthFailure as FATAL and close.
class ScramServer {
 public:
  /// `user` is the StartupMessage user (the n= of client-first is ignored,
  /// as PostgreSQL ignores it); it names the user in failures.
  ScramServer(std::string user, ScramVerifier verifier, ServerChannel channel,
              NonceSource nonces = random_nonce);
  /// An exchange for a user pgwarden has no secret for. It runs exactly like
  /// a real one (with a salt derived from the user name and a per-process
  /// key, so it is stable across attempts) and always ends in 28P01, so a
  /// client cannot learn which users exist.
  static ScramServer for_unknown_user(std::string user, ServerChannel channel,
                                      NonceSource nonces = random_nonce);
  ~ScramServer();
  ScramServer(ScramServer&&) noexcept = default;
  ScramServer& operator=(ScramServer&&) noexcept = default;
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  /// For AuthenticationSASL, most preferred first: SCRAM-SHA-256-PLUS (when
  /// the hop is TLS and the certificate hash is known) and SCRAM-SHA-256.
  std::vector<std::string_view> mechanisms() const;
  /// Step 2: the SASLInitialResponse. `data` is nullopt for length -1.
  AuthResult<ServerReply> initial_response(std::string_view mechanism,
                                           std::optional<std::string_view> data);
  /// Step 3 (and 2b): a SASLResponse.
  AuthResult<ServerReply> response(std::string_view data);

  /// True once a Final reply was produced: the client proved the password.
  bool authenticated() const noexcept { return state_ == State::Done; }
  /// The client's ClientKey, recovered from its proof. Only when authenticated().
  const ScramKey& client_key() const noexcept;
  /// The secret this exchange verified against (for ScramClient).
  const ScramVerifier& verifier() const noexcept { return verifier_; }
  /// True when the client chose SCRAM-SHA-256-PLUS (its hop is bound to
  /// pgwarden's certificate).
  bool channel_bound() const noexcept { return binding_; }

 private:
  enum class State { AwaitInitial, AwaitClientFirst, AwaitClientFinal, Done, Failed };

  bool offers_plus() const noexcept;
  AuthResult<ServerReply> read_client_first(std::string_view message);
  AuthResult<ServerReply> read_client_final(std::string_view message);
  AuthResult<void> check_channel_binding(std::string_view c_value) const;
  AuthResult<ServerReply> verify_proof(const ScramKey& proof, std::string_view final_without_proof);
  /// Ends the exchange: every later step is refused.
  AuthFailure fail(AuthFailure failure);

  std::string user_;
  ScramVerifier verifier_;
  ServerChannel channel_;
  NonceSource nonces_;
  bool doomed_ = false;  ///< unknown user: the exchange must fail
  State state_ = State::AwaitInitial;
  bool binding_ = false;  ///< SCRAM-SHA-256-PLUS chosen
  char gs2_flag_ = 0;
  std::string client_nonce_;
  std::string server_nonce_;
  std::string client_first_bare_;
  std::string server_first_;
  ScramKey client_key_{};
};

/// Whether pgwarden binds its upstream SCRAM login to the TLS channel
/// (libpq's channel_binding).
enum class ChannelBinding { Disable, Prefer, Require };

/// pgwarden's upstream hop, as the SCRAM client sees it.
struct UpstreamChannel {
  bool tls = false;            ///< the upstream connection is TLS
  std::string end_point_hash;  ///< tls_server_end_point() of the server's certificate; empty: no binding
  ChannelBinding binding = ChannelBinding::Prefer;
};

/// The SASLInitialResponse to send: mechanism and client-first-message.
struct SaslInitialResponse {
  std::string mechanism;
  std::string data;
};

/// pgwarden logging into the upstream as the user with the ClientKey a
/// ScramServer recovered, choosing the mechanism and gs2 flag as libpq does.
/// Drive it with:
///   1. start(AuthenticationSASL mechanisms): send the SaslInitialResponse.
///   2. respond(AuthenticationSASLContinue data): send the result as SASLResponse.
///   3. finish(AuthenticationSASLFinal data): the server proved it knows the
///      user's ServerKey. Accept AuthenticationOk only after this succeeded.
/// Any failure ends the exchange (08006 for the client: the upstream login failed).
class ScramClient {
 public:
  /// `verifier` is the secret `client_key` belongs to; precondition:
  /// H(ClientKey) is its StoredKey (true for ScramServer::client_key() and
  /// verifier()). `user` goes into n= (escaped), which PostgreSQL ignores.
  ScramClient(std::string user, const ScramKey& client_key, ScramVerifier verifier,
              UpstreamChannel channel, NonceSource nonces = random_nonce);
  /// pgwarden logging in with a password it holds (credentials injected for
  /// a role, the catalog lookup role): the keys are derived, as libpq
  /// derives them, with the salt and iteration count the server names.
  static ScramClient with_password(std::string user, std::string password, UpstreamChannel channel,
                                   NonceSource nonces = random_nonce);
  ~ScramClient();
  ScramClient(ScramClient&&) noexcept = default;
  ScramClient& operator=(ScramClient&&) noexcept = default;
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  /// Step 1: picks SCRAM-SHA-256-PLUS when the hop is TLS, binding is not
  /// disabled, the certificate hash is known and the server offers it;
  /// otherwise SCRAM-SHA-256 with flag 'y' (TLS and binding possible) or 'n'.
  AuthResult<SaslInitialResponse> start(std::span<const std::string_view> mechanisms);
  /// Step 2: checks the server-first-message (nonce, and that salt and
  /// iterations are those of the stored secret) and returns the
  /// client-final-message with the proof.
  AuthResult<std::string> respond(std::string_view server_first);
  /// Step 3: checks the server-final-message's signature.
  AuthResult<void> finish(std::string_view server_final);

  /// True once finish() succeeded.
  bool authenticated() const noexcept { return state_ == State::Done; }
  /// True when SCRAM-SHA-256-PLUS was chosen.
  bool channel_bound() const noexcept { return binding_; }

 private:
  enum class State { AwaitStart, AwaitServerFirst, AwaitServerFinal, Done, Failed };

  AuthResult<std::string> choose_mechanism(std::span<const std::string_view> mechanisms);
  AuthResult<void> check_salt_and_iterations(std::string_view salt_b64, std::string_view iterations) const;
  /// Ends the exchange: every later step is refused.
  AuthFailure fail(AuthFailure failure);

  /// Derives client_key_ and verifier_ from password_ (then cleared).
  AuthResult<void> derive_from_password(std::string_view salt_b64, std::string_view iterations);

  std::string user_;
  std::string password_;  ///< with_password(): until the server-first-message names the salt
  ScramKey client_key_{};
  ScramVerifier verifier_;
  UpstreamChannel channel_;
  NonceSource nonces_;
  State state_ = State::AwaitStart;
  bool binding_ = false;
  std::string gs2_header_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
};

/// tls-server-end-point channel-binding data (RFC 5929 section 4.1): the
/// certificate's DER hashed with its signature algorithm's hash, MD5 and
/// SHA-1 upgraded to SHA-256, as PostgreSQL's be_tls_get_certificate_hash
/// and libpq compute it. Fails (ChannelBindingUnavailable) for a signature
/// without a separate hash, e.g. Ed25519; offer or use no PLUS then.
AuthResult<std::string> tls_server_end_point(X509* certificate);
/// The same from a DER-encoded certificate (the whole input must be one).
AuthResult<std::string> tls_server_end_point_der(std::string_view der);

/// True for PostgreSQL's md5 secret form: "md5" and 32 lowercase hex digits.
bool is_md5_secret(std::string_view secret) noexcept;
/// The md5 secret PostgreSQL stores for `user` with `password`:
/// "md5" + md5(password + user); empty when MD5 is unavailable.
std::string md5_secret(std::string_view password, std::string_view user);
/// The PasswordMessage that answers AuthenticationMD5Password(`salt`) for a
/// user whose stored secret is `md5_secret` ("md5" + md5(password + user)):
/// "md5" + md5(hex digits of the secret + salt).
/// Precondition: is_md5_secret(md5_secret), salt.size() == 4.
std::string md5_response(std::string_view md5_secret, std::string_view salt);
/// Checks a client's answer to pgwarden's AuthenticationMD5Password(`salt`)
/// against the stored secret, in constant time; password_failed(user) if wrong.
AuthResult<void> verify_md5_response(std::string_view user, std::string_view md5_secret,
                                     std::string_view salt, std::string_view response);

}  // namespace pgwarden::auth

template <>
struct std::is_error_code_enum<pgwarden::auth::AuthError> : std::true_type {};
