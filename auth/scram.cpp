#include "auth/scram.hpp"
#include "auth/base64.hpp"
#include "protocol/sqlstate.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <memory>

namespace pgwarden::auth {
namespace {

// SCRAM_RAW_NONCE_LEN in PostgreSQL and libpq.
constexpr std::size_t raw_nonce_length = 18;
// What a mock exchange for an unknown user presents: PostgreSQL's defaults
// (SCRAM_DEFAULT_SALT_LEN, SCRAM_SHA_256_DEFAULT_ITERATIONS).
constexpr std::size_t mock_salt_length = 16;
constexpr int mock_iterations = 4096;
// The gs2 header of SCRAM-SHA-256-PLUS as PostgreSQL accepts it (no authzid).
constexpr std::string_view plus_gs2_header = "p=tls-server-end-point,,";
constexpr std::string_view secret_prefix = "SCRAM-SHA-256$";

std::string_view as_view(const ScramKey& key) noexcept {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

ScramKey to_key(std::string_view bytes) noexcept {
  assert(bytes.size() == ScramKey{}.size());
  ScramKey key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

ScramKey hmac_sha256(std::string_view key, std::string_view data) noexcept {
  ScramKey out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &length);
  assert(length == out.size());
  return out;
}

ScramKey sha256(const ScramKey& data) noexcept {
  ScramKey out{};
  EVP_Digest(data.data(), data.size(), out.data(), nullptr, EVP_sha256(), nullptr);
  return out;
}

ScramKey xor_keys(const ScramKey& a, const ScramKey& b) noexcept {
  ScramKey out;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

bool equal_keys(const ScramKey& a, const ScramKey& b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void cleanse(ScramKey& key) noexcept { OPENSSL_cleanse(key.data(), key.size()); }

/// RFC 5802 "printable": %x21-2B / %x2D-7E, ASCII printable except ','.
bool is_printable(std::string_view s) noexcept {
  for (char c : s)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

/// How a character the parser did not expect is named in a detail.
std::string found(char c) {
  if (c == '\0') return "end of message";
  if (c >= 0x21 && c <= 0x7e) return std::string("\"") + c + '"';
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", static_cast<unsigned char>(c));
  return buf;
}

/// Peer-supplied text safe to quote in a message: printable ASCII, bounded.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c <= 0x7e) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

/// A decimal from 1 to INT_MAX without sign or leading zero.
std::optional<int> parse_positive_int(std::string_view s) {
  if (s.empty() || s[0] == '0') return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

/// RFC 5802 saslname: ',' and '=' escaped as =2C and =3D.
std::string escape_sasl_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out += c;
  }
  return out;
}

AuthFailure failure(AuthError code, std::string message, std::string detail = {}) {
  return AuthFailure{code, std::move(message), std::move(detail), {}};
}

AuthFailure unexpected_message(std::string_view what) {
  return failure(AuthError::UnexpectedMessage, "unexpected SASL message",
                 "No " + std::string(what) + " is expected at this point of the exchange.");
}

std::string_view malformed_text(AuthError code) noexcept {
  return code == AuthError::ServerMessageMalformed ? "malformed SCRAM message from the server"
                                                   : "malformed SCRAM message";
}

AuthFailure malformed(AuthError code, std::string detail) {
  return failure(code, std::string(malformed_text(code)), std::move(detail));
}

/// A message must not be empty nor contain NUL (PostgreSQL reads it as a C string).
AuthResult<void> check_message(std::string_view message, AuthError code) {
  if (message.empty()) return malformed(code, "The message is empty.");
  if (message.find('\0') != std::string_view::npos)
    return malformed(code, "Message length does not match input length.");
  return {};
}

/// Walks `attr=value,attr=value` left to right, as PostgreSQL's read_attr_value.
class AttributeReader {
 public:
  AttributeReader(std::string_view text, AuthError malformed_code) noexcept
      : text_(text), code_(malformed_code) {}

  /// The next character; '\0' at the end.
  char peek() const noexcept { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void advance() noexcept { ++pos_; }
  std::size_t position() const noexcept { return pos_; }
  std::string_view rest() const noexcept { return text_.substr(pos_); }
  /// True at the end, unless the message ended with a dangling comma.
  bool at_end() const noexcept { return pos_ >= text_.size() && !dangling_comma_; }

  /// Reads `attr=value` and the comma after it.
  AuthResult<std::string_view> value(char attr) {
    if (peek() != attr)
      return malformed("Expected attribute \"" + std::string(1, attr) + "\" but found " + found(peek()) + ".");
    return value_after_name(attr);
  }

  /// Reads any `letter=value` and the comma after it.
  AuthResult<std::pair<char, std::string_view>> any() {
    const char attr = peek();
    if (pos_ >= text_.size()) return malformed("Attribute expected, but found end of message.");
    if (!((attr >= 'a' && attr <= 'z') || (attr >= 'A' && attr <= 'Z')))
      return malformed("Attribute expected, but found invalid character " + found(attr) + ".");
    auto v = value_after_name(attr);
    if (!v) return std::move(v).error();
    return std::pair{attr, *v};
  }

  AuthFailure malformed(std::string detail) const { return pgwarden::auth::malformed(code_, std::move(detail)); }

 private:
  AuthResult<std::string_view> value_after_name(char attr) {
    ++pos_;
    if (peek() != '=') return malformed("Expected character \"=\" for attribute \"" + std::string(1, attr) + "\".");
    ++pos_;
    const std::size_t comma = text_.find(',', pos_);
    const std::size_t end = comma == std::string_view::npos ? text_.size() : comma;
    const std::string_view v = text_.substr(pos_, end - pos_);
    pos_ = comma == std::string_view::npos ? end : comma + 1;
    dangling_comma_ = comma != std::string_view::npos && pos_ == text_.size();
    return v;
  }

  std::string_view text_;
  AuthError code_;
  std::size_t pos_ = 0;
  bool dangling_comma_ = false;
};

/// Reads the gs2 header of client-first: the channel-binding flag, the
/// (refused) authzid, and their commas. Returns the flag.
AuthResult<char> read_gs2_header(AttributeReader& in, bool plus_chosen, bool plus_offered) {
  const char flag = in.peek();
  switch (flag) {
    case 'n':
    case 'y':
      if (plus_chosen)
        return in.malformed("The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
                            "channel binding data.");
      if (flag == 'y' && plus_offered)
        return failure(AuthError::ChannelBindingDowngrade, "SCRAM channel binding negotiation error",
                       "The client supports SCRAM channel binding but thinks the server does not.  However, "
                       "this server does support channel binding.");
      in.advance();
      if (in.peek() != ',') return in.malformed("Comma expected, but found " + found(in.peek()) + ".");
      in.advance();
      break;
    case 'p': {
      if (!plus_chosen)
        return in.malformed("The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message "
                            "includes channel binding data.");
      auto type = in.value('p');
      if (!type) return std::move(type).error();
      if (*type != "tls-server-end-point")
        return failure(AuthError::UnsupportedChannelBinding,
                       "unsupported SCRAM channel-binding type \"" + sanitize(*type) + "\"");
      break;
    }
    default:
      return in.malformed("Unexpected channel-binding flag " + found(flag) + ".");
  }
  if (in.peek() == 'a')
    return failure(AuthError::AuthzidNotSupported, "client uses authorization identity, but it is not supported");
  if (in.peek() != ',')
    return in.malformed("Unexpected attribute " + found(in.peek()) + " in client-first-message.");
  in.advance();
  return flag;
}

/// The key behind the salts of mock exchanges: random, fixed for the process.
const std::string& mock_key() {
  static const std::string key = [] {
    std::string k(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), static_cast<int>(k.size()));
    return k;
  }();
  return key;
}

class AuthCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pgwarden.auth"; }

  std::string message(int ev) const override {
    switch (static_cast<AuthError>(ev)) {
      case AuthError::MalformedMessage: return "malformed SCRAM message";
      case AuthError::InvalidMechanism: return "client selected an invalid SASL authentication mechanism";
      case AuthError::UnsupportedChannelBinding: return "unsupported SCRAM channel-binding type";
      case AuthError::UnexpectedChannelBinding: return "unexpected SCRAM channel-binding attribute";
      case AuthError::InvalidNonce: return "SCRAM nonce does not match";
      case AuthError::ChannelBindingDowngrade: return "SCRAM channel binding negotiation error";
      case AuthError::ChannelBindingMismatch: return "SCRAM channel binding check failed";
      case AuthError::AuthzidNotSupported: return "SCRAM authorization identity not supported";
      case AuthError::ExtensionNotSupported: return "SCRAM extension not supported";
      case AuthError::WrongPassword: return "password authentication failed";
      case AuthError::NoCommonMechanism: return "no supported SASL mechanism offered by the server";
      case AuthError::PlusWithoutTls: return "server offered SCRAM-SHA-256-PLUS over a non-TLS connection";
      case AuthError::ChannelBindingRequired: return "channel binding required but not offered by the server";
      case AuthError::ServerMessageMalformed: return "malformed SCRAM message from the server";
      case AuthError::ServerNonceMismatch: return "server SCRAM nonce mismatch";
      case AuthError::SecretMismatch: return "stored SCRAM secret does not match the server's";
      case AuthError::ServerError: return "server reported an error in the SCRAM exchange";
      case AuthError::ServerSignatureMismatch: return "incorrect server signature";
      case AuthError::UnexpectedMessage: return "unexpected SASL message";
      case AuthError::InvalidSecret: return "invalid SCRAM secret";
      case AuthError::ChannelBindingUnavailable: return "no channel-binding data for the certificate";
      case AuthError::TokenRefused: return "token refused";
      case AuthError::CertificateRefused: return "client certificate refused";
      case AuthError::Internal: return "internal authentication error";
    }
    return "unknown authentication error";
  }
};

}  // namespace

const std::error_category& auth_category() noexcept {
  static const AuthCategory category;
  return category;
}

std::string_view AuthFailure::sqlstate() const noexcept {
  switch (code) {
    case AuthError::MalformedMessage:
    case AuthError::InvalidMechanism:
    case AuthError::UnsupportedChannelBinding:
    case AuthError::UnexpectedChannelBinding:
    case AuthError::InvalidNonce:
    case AuthError::UnexpectedMessage:
      return protocol::sqlstate::protocol_violation;
    case AuthError::ChannelBindingDowngrade:
    case AuthError::ChannelBindingMismatch:
    case AuthError::InvalidSecret:
    case AuthError::TokenRefused:
    case AuthError::CertificateRefused:
      return protocol::sqlstate::invalid_authorization_specification;
    case AuthError::AuthzidNotSupported:
    case AuthError::ExtensionNotSupported:
      return protocol::sqlstate::feature_not_supported;
    case AuthError::WrongPassword:
      return protocol::sqlstate::invalid_password;
    case AuthError::NoCommonMechanism:
    case AuthError::PlusWithoutTls:
    case AuthError::ChannelBindingRequired:
    case AuthError::ServerMessageMalformed:
    case AuthError::ServerNonceMismatch:
    case AuthError::SecretMismatch:
    case AuthError::ServerError:
    case AuthError::ServerSignatureMismatch:
      return protocol::sqlstate::connection_failure;  // the upstream login failed
    case AuthError::ChannelBindingUnavailable:
    case AuthError::Internal:
      return protocol::sqlstate::internal_error;
  }
  return protocol::sqlstate::internal_error;
}

AuthFailure password_failed(std::string_view user, std::string log_detail) {
  return AuthFailure{AuthError::WrongPassword,
                     "password authentication failed for user \"" + std::string(user) + "\"", {},
                     std::move(log_detail)};
}

// ---------------------------------------------------------------------------
// ScramVerifier

AuthResult<ScramVerifier> ScramVerifier::parse(std::string_view text) {
  auto invalid = [](std::string detail) {
    return failure(AuthError::InvalidSecret, "invalid SCRAM secret", std::move(detail));
  };
  if (!text.starts_with(secret_prefix))
    return invalid("A SCRAM secret starts with \"SCRAM-SHA-256$\".");
  text.remove_prefix(secret_prefix.size());
  const std::size_t colon = text.find(':');
  const std::size_t dollar = text.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar)
    return invalid("Expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.");
  const std::size_t key_colon = text.find(':', dollar);
  if (key_colon == std::string_view::npos)
    return invalid("Expected <StoredKey>:<ServerKey> after the second \"$\".");

  ScramVerifier v;
  auto iterations = parse_positive_int(text.substr(0, colon));
  if (!iterations) return invalid("The iteration count is not a decimal number from 1 to 2147483647.");
  v.iterations = *iterations;
  auto salt = base64_decode(text.substr(colon + 1, dollar - colon - 1));
  if (!salt || salt->empty()) return invalid("The salt is not valid non-empty base64.");
  v.salt = std::move(*salt);
  auto stored = base64_decode(text.substr(dollar + 1, key_colon - dollar - 1));
  if (!stored || stored->size() != v.stored_key.size())
    return invalid("The StoredKey is not base64 of 32 bytes.");
  v.stored_key = to_key(*stored);
  auto server = base64_decode(text.substr(key_colon + 1));
  if (!server || server->size() != v.server_key.size())
    return invalid("The ServerKey is not base64 of 32 bytes.");
  v.server_key = to_key(*server);
  return v;
}

std::string ScramVerifier::to_string() const {
  return std::string(secret_prefix) + std::to_string(iterations) + ':' + base64_encode(salt) + '$' +
         base64_encode(as_view(stored_key)) + ':' + base64_encode(as_view(server_key));
}

AuthResult<ScramVerifier> make_scram_verifier(std::string_view password, int iterations) {
  std::string salt(mock_salt_length, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
    return failure(AuthError::Internal, "internal authentication error", "The random generator failed.");
  return make_scram_verifier(password, iterations, salt);
}

AuthResult<ScramVerifier> make_scram_verifier(std::string_view password, int iterations, std::string_view salt) {
  auto invalid = [](std::string detail) {
    return failure(AuthError::InvalidSecret, "cannot make a SCRAM secret", std::move(detail));
  };
  if (password.empty()) return invalid("The password is empty.");
  if (!std::all_of(password.begin(), password.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
    return invalid("The password has a byte outside printable ASCII; pgwarden does not apply SASLprep.");
  if (iterations < 1) return invalid("The iteration count must be at least 1.");
  if (salt.empty()) return invalid("The salt is empty.");
  ScramKey salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        iterations, EVP_sha256(), static_cast<int>(salted.size()), salted.data()) != 1)
    return failure(AuthError::Internal, "internal authentication error", "PBKDF2 failed.");
  ScramKey client_key = hmac_sha256(as_view(salted), "Client Key");
  ScramVerifier v;
  v.iterations = iterations;
  v.salt = std::string(salt);
  v.stored_key = sha256(client_key);
  v.server_key = hmac_sha256(as_view(salted), "Server Key");
  cleanse(client_key);
  cleanse(salted);
  return v;
}

std::string random_nonce() {
  unsigned char raw[raw_nonce_length];
  if (RAND_bytes(raw, sizeof raw) != 1) return {};
  return base64_encode({reinterpret_cast<const char*>(raw), sizeof raw});
}

// ---------------------------------------------------------------------------
// ScramServer

ScramServer::ScramServer(std::string user, ScramVerifier verifier, ServerChannel channel, NonceSource nonces)
    : user_(std::move(user)),
      verifier_(std::move(verifier)),
      channel_(std::move(channel)),
      nonces_(std::move(nonces)) {}

ScramServer ScramServer::for_unknown_user(std::string user, ServerChannel channel, NonceSource nonces) {
  ScramVerifier mock;
  mock.iterations = mock_iterations;
  const ScramKey digest = hmac_sha256(mock_key(), user);
  mock.salt.assign(reinterpret_cast<const char*>(digest.data()), mock_salt_length);
  ScramServer server(std::move(user), std::move(mock), std::move(channel), std::move(nonces));
  server.doomed_ = true;
  return server;
}

ScramServer::~ScramServer() {
  cleanse(client_key_);
  cleanse(verifier_.stored_key);
  cleanse(verifier_.server_key);
}

bool ScramServer::offers_plus() const noexcept { return channel_.tls && !channel_.end_point_hash.empty(); }

std::vector<std::string_view> ScramServer::mechanisms() const {
  if (offers_plus()) return {scram_sha_256_plus_name, scram_sha_256_name};
  return {scram_sha_256_name};
}

const ScramKey& ScramServer::client_key() const noexcept {
  assert(authenticated());
  return client_key_;
}

AuthFailure ScramServer::fail(AuthFailure failure) {
  state_ = State::Failed;
  return failure;
}

AuthResult<ServerReply> ScramServer::initial_response(std::string_view mechanism,
                                                      std::optional<std::string_view> data) {
  if (state_ != State::AwaitInitial) return fail(unexpected_message("SASLInitialResponse"));
  if (mechanism == scram_sha_256_plus_name && offers_plus()) {
    binding_ = true;
  } else if (mechanism != scram_sha_256_name) {
    return fail(failure(AuthError::InvalidMechanism, "client selected an invalid SASL authentication mechanism"));
  }
  if (!data) {
    // No initial response: an empty challenge asks for client-first.
    state_ = State::AwaitClientFirst;
    return ServerReply{ServerReply::Kind::Continue, {}};
  }
  return read_client_first(*data);
}

AuthResult<ServerReply> ScramServer::response(std::string_view data) {
  switch (state_) {
    case State::AwaitClientFirst: return read_client_first(data);
    case State::AwaitClientFinal: return read_client_final(data);
    default: return fail(unexpected_message("SASLResponse"));
  }
}

AuthResult<ServerReply> ScramServer::read_client_first(std::string_view message) {
  if (auto ok = check_message(message, AuthError::MalformedMessage); !ok) return fail(std::move(ok).error());
  AttributeReader in(message, AuthError::MalformedMessage);
  auto flag = read_gs2_header(in, binding_, offers_plus());
  if (!flag) return fail(std::move(flag).error());
  gs2_flag_ = *flag;
  client_first_bare_ = std::string(in.rest());
  if (in.peek() == 'm')
    return fail(failure(AuthError::ExtensionNotSupported, "client requires an unsupported SCRAM extension"));
  if (auto name = in.value('n'); !name) return fail(std::move(name).error());  // ignored, as PostgreSQL does
  auto nonce = in.value('r');
  if (!nonce) return fail(std::move(nonce).error());
  if (nonce->empty() || !is_printable(*nonce))
    return fail(in.malformed("The client nonce is empty or has non-printable characters."));
  while (!in.at_end())
    if (auto extension = in.any(); !extension) return fail(std::move(extension).error());

  server_nonce_ = nonces_();
  if (server_nonce_.empty()) return fail(failure(AuthError::Internal, "could not generate random nonce"));
  assert(is_printable(server_nonce_));
  client_nonce_ = std::string(*nonce);
  server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = State::AwaitClientFinal;
  return ServerReply{ServerReply::Kind::Continue, server_first_};
}

AuthResult<ServerReply> ScramServer::read_client_final(std::string_view message) {
  if (auto ok = check_message(message, AuthError::MalformedMessage); !ok) return fail(std::move(ok).error());
  AttributeReader in(message, AuthError::MalformedMessage);
  auto binding = in.value('c');
  if (!binding) return fail(std::move(binding).error());
  if (auto ok = check_channel_binding(*binding); !ok) return fail(std::move(ok).error());
  auto nonce = in.value('r');
  if (!nonce) return fail(std::move(nonce).error());
  // Extensions may sit between the nonce and the proof; the proof is last.
  std::size_t proof_at = 0;
  std::string_view proof_text;
  for (;;) {
    proof_at = in.position();
    auto attribute = in.any();
    if (!attribute) return fail(std::move(attribute).error());
    if (attribute->first == 'p') {
      proof_text = attribute->second;
      break;
    }
  }
  auto proof = base64_decode(proof_text);
  if (!proof || proof->size() != ScramKey{}.size())
    return fail(in.malformed("Malformed proof in client-final-message."));
  if (!in.at_end()) return fail(in.malformed("Garbage found at the end of client-final-message."));
  if (*nonce != client_nonce_ + server_nonce_)
    return fail(failure(AuthError::InvalidNonce, "invalid SCRAM response", "Nonce does not match."));
  return verify_proof(to_key(*proof), message.substr(0, proof_at - 1));
}

AuthResult<void> ScramServer::check_channel_binding(std::string_view c_value) const {
  if (binding_) {
    const std::string expected = base64_encode(std::string(plus_gs2_header) + channel_.end_point_hash);
    if (c_value != expected)
      return failure(AuthError::ChannelBindingMismatch, "SCRAM channel binding check failed");
    return {};
  }
  // Without binding, c= repeats the gs2 header: "n,," is biws, "y,," is eSws.
  if ((c_value == "biws" && gs2_flag_ == 'n') || (c_value == "eSws" && gs2_flag_ == 'y')) return {};
  return failure(AuthError::UnexpectedChannelBinding,
                 "unexpected SCRAM channel-binding attribute in client-final-message");
}

AuthResult<ServerReply> ScramServer::verify_proof(const ScramKey& proof, std::string_view final_without_proof) {
  const std::string auth_message = client_first_bare_ + ',' + server_first_ + ',' + std::string(final_without_proof);
  const ScramKey client_signature = hmac_sha256(as_view(verifier_.stored_key), auth_message);
  ScramKey client_key = xor_keys(proof, client_signature);
  const bool matches = equal_keys(sha256(client_key), verifier_.stored_key);
  if (doomed_ || !matches) {
    cleanse(client_key);
    return fail(password_failed(user_, doomed_ ? "The user has no SCRAM secret."
                                               : "The client's SCRAM proof does not match the user's secret."));
  }
  client_key_ = client_key;
  cleanse(client_key);
  state_ = State::Done;
  const ScramKey server_signature = hmac_sha256(as_view(verifier_.server_key), auth_message);
  return ServerReply{ServerReply::Kind::Final, "v=" + base64_encode(as_view(server_signature))};
}

// ---------------------------------------------------------------------------
// ScramClient

ScramClient::ScramClient(std::string user, const ScramKey& client_key, ScramVerifier verifier,
                         UpstreamChannel channel, NonceSource nonces)
    : user_(std::move(user)),
      client_key_(client_key),
      verifier_(std::move(verifier)),
      channel_(std::move(channel)),
      nonces_(std::move(nonces)) {
  assert(equal_keys(sha256(client_key_), verifier_.stored_key));
}

ScramClient::~ScramClient() {
  OPENSSL_cleanse(password_.data(), password_.size());
  cleanse(client_key_);
  cleanse(verifier_.stored_key);
  cleanse(verifier_.server_key);
}

AuthFailure ScramClient::fail(AuthFailure failure) {
  state_ = State::Failed;
  return failure;
}

AuthResult<std::string> ScramClient::choose_mechanism(std::span<const std::string_view> mechanisms) {
  auto offered = [&](std::string_view name) {
    return std::find(mechanisms.begin(), mechanisms.end(), name) != mechanisms.end();
  };
  const bool plus = offered(scram_sha_256_plus_name);
  if (plus && !channel_.tls)
    return failure(AuthError::PlusWithoutTls,
                   "server offered SCRAM-SHA-256-PLUS authentication over a non-TLS connection",
                   "The server supports channel binding only over TLS; something may have stripped TLS "
                   "from pgwarden's connection to it.");
  const bool can_bind =
      channel_.tls && channel_.binding != ChannelBinding::Disable && !channel_.end_point_hash.empty();
  if (plus && can_bind) {
    binding_ = true;
    gs2_header_ = plus_gs2_header;
    return std::string(scram_sha_256_plus_name);
  }
  if (channel_.binding == ChannelBinding::Require)
    return failure(AuthError::ChannelBindingRequired,
                   "channel binding is required, but server did not offer an authentication method that "
                   "supports channel binding",
                   !channel_.tls ? "The connection to the server is not TLS."
                   : channel_.end_point_hash.empty()
                       ? "The server certificate's signature algorithm allows no tls-server-end-point binding."
                       : "The server did not offer SCRAM-SHA-256-PLUS.");
  if (!offered(scram_sha_256_name)) {
    std::string list;
    for (std::string_view m : mechanisms) list += (list.empty() ? "" : ", ") + sanitize(m);
    return failure(AuthError::NoCommonMechanism,
                   "none of the server's SASL authentication mechanisms are supported",
                   "The server offers: " + (list.empty() ? std::string("nothing") : list) + ".");
  }
  // 'y': pgwarden could bind but the server offers no binding over TLS.
  gs2_header_ = can_bind ? "y,," : "n,,";
  return std::string(scram_sha_256_name);
}

AuthResult<SaslInitialResponse> ScramClient::start(std::span<const std::string_view> mechanisms) {
  if (state_ != State::AwaitStart) return fail(unexpected_message("AuthenticationSASL"));
  auto mechanism = choose_mechanism(mechanisms);
  if (!mechanism) return fail(std::move(mechanism).error());
  client_nonce_ = nonces_();
  if (client_nonce_.empty()) return fail(failure(AuthError::Internal, "could not generate random nonce"));
  assert(is_printable(client_nonce_));
  client_first_bare_ = "n=" + escape_sasl_name(user_) + ",r=" + client_nonce_;
  state_ = State::AwaitServerFirst;
  return SaslInitialResponse{std::move(*mechanism), gs2_header_ + client_first_bare_};
}

ScramClient ScramClient::with_password(std::string user, std::string password, UpstreamChannel channel,
                                       NonceSource nonces) {
  ScramClient c(std::move(user), ScramKey{}, ScramVerifier{.iterations = 0, .salt = {}, .stored_key = sha256(ScramKey{}),
                                                           .server_key = {}},
                std::move(channel), std::move(nonces));
  c.password_ = std::move(password);
  return c;
}

AuthResult<void> ScramClient::derive_from_password(std::string_view salt_b64, std::string_view iterations) {
  constexpr AuthError code = AuthError::ServerMessageMalformed;
  // A server asking for more rounds than this would make every login cost
  // seconds of CPU: refused, as a misconfiguration or an attack.
  constexpr int max_iterations = 1'000'000;
  auto salt = base64_decode(salt_b64);
  if (!salt || salt->empty()) return malformed(code, "Invalid salt in server-first-message.");
  auto count = parse_positive_int(iterations);
  if (!count) return malformed(code, "Invalid iteration count in server-first-message.");
  if (*count > max_iterations)
    return failure(AuthError::ServerMessageMalformed, "the server asks for too many SCRAM iterations",
                   "The server-first-message asks for " + std::to_string(*count) + " iterations; at most " +
                       std::to_string(max_iterations) + " are computed.");
  ScramKey salted{};
  if (PKCS5_PBKDF2_HMAC(password_.data(), static_cast<int>(password_.size()),
                        reinterpret_cast<const unsigned char*>(salt->data()), static_cast<int>(salt->size()), *count,
                        EVP_sha256(), static_cast<int>(salted.size()), salted.data()) != 1)
    return failure(AuthError::Internal, "internal authentication error", "PBKDF2 failed.");
  OPENSSL_cleanse(password_.data(), password_.size());
  password_.clear();
  client_key_ = hmac_sha256(as_view(salted), "Client Key");
  verifier_.iterations = *count;
  verifier_.salt = std::move(*salt);
  verifier_.stored_key = sha256(client_key_);
  verifier_.server_key = hmac_sha256(as_view(salted), "Server Key");
  cleanse(salted);
  return {};
}

AuthResult<void> ScramClient::check_salt_and_iterations(std::string_view salt_b64,
                                                        std::string_view iterations) const {
  constexpr AuthError code = AuthError::ServerMessageMalformed;
  auto salt = base64_decode(salt_b64);
  if (!salt || salt->empty()) return malformed(code, "Invalid salt in server-first-message.");
  auto count = parse_positive_int(iterations);
  if (!count) return malformed(code, "Invalid iteration count in server-first-message.");
  if (*salt == verifier_.salt && *count == verifier_.iterations) return {};
  AuthFailure f = failure(
      AuthError::SecretMismatch,
      "the SCRAM secret pgwarden holds for user \"" + user_ + "\" does not match the server's",
      "The password was changed on the server, or the auth file holds another secret: copy the user's "
      "current pg_authid.rolpassword into it.");
  f.log_detail = "The server uses " + std::to_string(*count) + " iterations and salt " + std::string(salt_b64) +
                 "; the stored secret has " + std::to_string(verifier_.iterations) + " iterations and salt " +
                 base64_encode(verifier_.salt) + ".";
  return f;
}

AuthResult<std::string> ScramClient::respond(std::string_view server_first) {
  if (state_ != State::AwaitServerFirst) return fail(unexpected_message("AuthenticationSASLContinue"));
  if (auto ok = check_message(server_first, AuthError::ServerMessageMalformed); !ok)
    return fail(std::move(ok).error());
  AttributeReader in(server_first, AuthError::ServerMessageMalformed);
  auto nonce = in.value('r');
  if (!nonce) return fail(std::move(nonce).error());
  if (nonce->size() <= client_nonce_.size() || !nonce->starts_with(client_nonce_))
    return fail(failure(AuthError::ServerNonceMismatch, "invalid SCRAM response (nonce mismatch)",
                        "The server's nonce does not extend the one pgwarden sent."));
  auto salt = in.value('s');
  if (!salt) return fail(std::move(salt).error());
  auto iterations = in.value('i');
  if (!iterations) return fail(std::move(iterations).error());
  if (!in.at_end()) return fail(in.malformed("Garbage found at the end of server-first-message."));
  if (!password_.empty()) {
    if (auto ok = derive_from_password(*salt, *iterations); !ok) return fail(std::move(ok).error());
  } else if (auto ok = check_salt_and_iterations(*salt, *iterations); !ok) {
    return fail(std::move(ok).error());
  }

  const std::string binding_data = gs2_header_ + (binding_ ? channel_.end_point_hash : std::string());
  std::string final_message = "c=" + base64_encode(binding_data) + ",r=" + std::string(*nonce);
  auth_message_ = client_first_bare_ + ',' + std::string(server_first) + ',' + final_message;
  // ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage), StoredKey = H(ClientKey).
  const ScramKey proof = xor_keys(client_key_, hmac_sha256(as_view(sha256(client_key_)), auth_message_));
  final_message += ",p=" + base64_encode(as_view(proof));
  state_ = State::AwaitServerFinal;
  return final_message;
}

AuthResult<void> ScramClient::finish(std::string_view server_final) {
  if (state_ != State::AwaitServerFinal) return fail(unexpected_message("AuthenticationSASLFinal"));
  if (auto ok = check_message(server_final, AuthError::ServerMessageMalformed); !ok)
    return fail(std::move(ok).error());
  AttributeReader in(server_final, AuthError::ServerMessageMalformed);
  if (in.peek() == 'e') {
    auto reason = in.value('e');
    if (!reason) return fail(std::move(reason).error());
    return fail(failure(AuthError::ServerError, "error received from server in SCRAM exchange: " + sanitize(*reason)));
  }
  auto verifier = in.value('v');
  if (!verifier) return fail(std::move(verifier).error());
  if (!in.at_end()) return fail(in.malformed("Garbage found at the end of server-final-message."));
  auto signature = base64_decode(*verifier);
  if (!signature || signature->size() != ScramKey{}.size())
    return fail(in.malformed("Invalid server signature in server-final-message."));
  if (!equal_keys(to_key(*signature), hmac_sha256(as_view(verifier_.server_key), auth_message_)))
    return fail(failure(AuthError::ServerSignatureMismatch, "incorrect server signature",
                        "The server does not hold the ServerKey of the user's stored secret."));
  state_ = State::Done;
  return {};
}

// ---------------------------------------------------------------------------
// tls-server-end-point

AuthResult<std::string> tls_server_end_point(X509* certificate) {
  auto unavailable = [](std::string message, std::string detail = {}) {
    return failure(AuthError::ChannelBindingUnavailable, std::move(message), std::move(detail));
  };
  int md_nid = NID_undef;
  if (certificate == nullptr ||
      X509_get_signature_info(certificate, &md_nid, nullptr, nullptr, nullptr) != 1)
    return unavailable("could not determine the certificate's signature algorithm");
  // RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256; otherwise the signature's own hash.
  const EVP_MD* md =
      (md_nid == NID_md5 || md_nid == NID_sha1) ? EVP_sha256() : EVP_get_digestbynid(md_nid);
  if (md == nullptr)
    return unavailable("the certificate's signature algorithm has no hash for tls-server-end-point",
                       std::string("Signature algorithm: ") + OBJ_nid2sn(X509_get_signature_nid(certificate)) + ".");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(certificate, md, digest, &length) != 1)
    return unavailable("could not hash the certificate for tls-server-end-point");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

AuthResult<std::string> tls_server_end_point_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const auto* end = p + der.size();
  std::unique_ptr<X509, decltype(&X509_free)> certificate(d2i_X509(nullptr, &p, static_cast<long>(der.size())),
                                                          &X509_free);
  if (!certificate || p != end)
    return failure(AuthError::ChannelBindingUnavailable, "not a DER-encoded certificate");
  return tls_server_end_point(certificate.get());
}

// ---------------------------------------------------------------------------
// md5

bool is_md5_secret(std::string_view secret) noexcept {
  if (secret.size() != 35 || !secret.starts_with("md5")) return false;
  for (char c : secret.substr(3))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

namespace {

/// "md5" + the lowercase hex MD5 of `input`, as PostgreSQL writes md5
/// secrets and responses; empty when MD5 is unavailable (a FIPS-only provider).
std::string md5_form(std::string_view input) {
  unsigned char digest[16];
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &length, EVP_md5(), nullptr) != 1 || length != sizeof digest)
    return {};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "md5";
  for (unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

}  // namespace

std::string md5_secret(std::string_view password, std::string_view user) {
  return md5_form(std::string(password) + std::string(user));
}

std::string md5_response(std::string_view md5_secret, std::string_view salt) {
  assert(is_md5_secret(md5_secret) && salt.size() == 4);
  return md5_form(std::string(md5_secret.substr(3)) + std::string(salt));
}

AuthResult<void> verify_md5_response(std::string_view user, std::string_view md5_secret, std::string_view salt,
                                     std::string_view response) {
  const std::string expected = md5_response(md5_secret, salt);
  if (expected.empty()) return failure(AuthError::Internal, "MD5 is not available in this OpenSSL configuration");
  if (response.size() != expected.size() ||
      CRYPTO_memcmp(response.data(), expected.data(), expected.size()) != 0)
    return password_failed(user, "The md5 response does not match the user's stored md5 hash.");
  return {};
}

}  // namespace pgwarden::auth
