#include "protocol/parser.hpp"

#include <cstddef>
#include <cstdint>

#include "protocol/framer.hpp"

namespace pgwarden::protocol {
namespace {

/// Bounds-checked big-endian reads over a message body. The first error is
/// sticky: later reads return zeros and empty views, so a parse function can
/// read every field and check once at the end.
class Reader {
 public:
  Reader() = default;
  explicit Reader(std::string_view body) : rest_(body) {}

  bool ok() const { return !ec_; }
  std::error_code ec() const { return ec_; }
  std::size_t remaining() const { return rest_.size(); }

  void fail(Error e) {
    if (!ec_) ec_ = e;
    rest_ = {};
  }

  std::string_view bytes(std::size_t n) {
    if (n > rest_.size()) {
      fail(Error::Truncated);
      return {};
    }
    std::string_view v = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return v;
  }

  std::uint8_t u8() {
    std::string_view b = bytes(1);
    return b.empty() ? 0 : static_cast<std::uint8_t>(b[0]);
  }
  std::uint16_t u16() {
    std::string_view b = bytes(2);
    if (b.empty()) return 0;
    return static_cast<std::uint16_t>((static_cast<unsigned char>(b[0]) << 8) | static_cast<unsigned char>(b[1]));
  }
  std::int16_t i16() { return static_cast<std::int16_t>(u16()); }
  std::uint32_t u32() {
    std::string_view b = bytes(4);
    return b.empty() ? 0 : read_u32(b.data());
  }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }

  /// A NUL-terminated string, without its NUL.
  std::string_view cstr() {
    const std::size_t end = rest_.find('\0');
    if (end == std::string_view::npos) {
      fail(Error::MissingTerminator);
      return {};
    }
    std::string_view v = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    return v;
  }

  /// Everything not read yet.
  std::string_view rest() { return bytes(rest_.size()); }

  /// The parse result: the first error, or TrailingBytes if bytes are left.
  std::error_code finish() {
    if (!ec_ && !rest_.empty()) fail(Error::TrailingBytes);
    return ec_;
  }

 private:
  std::string_view rest_;
  std::error_code ec_;
};

/// Checks the header of typed message `m` and points `r` at its body.
std::error_code open(std::string_view m, char type, Reader& r) {
  if (m.size() < header_size) return Error::Truncated;
  if (m[0] != type) return Error::UnexpectedType;
  const std::uint32_t length = read_u32(m.data() + 1);
  if (length < 4 || length > 0x7fffffff) return Error::BadLength;
  if (length > m.size() - 1) return Error::Truncated;
  if (length < m.size() - 1) return Error::TrailingBytes;
  r = Reader(m.substr(header_size));
  return {};
}

/// Opens an 'R' message and checks that its code is T's.
template <class T>
std::error_code open_auth(std::string_view m, Reader& r) {
  if (auto ec = open(m, T::type, r)) return ec;
  const std::int32_t code = r.i32();
  if (r.ok() && code != T::code) return Error::UnexpectedType;
  return r.ec();
}

/// A message without fields.
template <class T>
std::error_code parse_empty(std::string_view m) {
  Reader r;
  if (auto ec = open(m, T::type, r)) return ec;
  return r.finish();
}

/// An authentication request without fields.
template <class T>
std::error_code parse_auth_empty(std::string_view m) {
  Reader r;
  if (auto ec = open_auth<T>(m, r)) return ec;
  return r.finish();
}

/// Int32 length (-1 = NULL) then that many bytes.
std::optional<std::string_view> read_value(Reader& r) {
  const std::int32_t length = r.i32();
  if (length == -1) return std::nullopt;
  if (length < -1) {
    r.fail(Error::BadValue);
    return std::string_view{};
  }
  return r.bytes(static_cast<std::size_t>(length));
}

/// `count` elements of at least `min_size` bytes each, read by `read_one`.
/// The count is checked against the bytes left before anything is reserved.
template <class T, class ReadOne>
void read_array(Reader& r, std::size_t count, std::size_t min_size, std::vector<T>& out, ReadOne read_one) {
  out.clear();
  if (count * min_size > r.remaining()) {
    r.fail(Error::Truncated);
    return;
  }
  out.reserve(count);
  for (std::size_t i = 0; i < count && r.ok(); ++i) out.push_back(read_one(r));
}

void read_int16_array(Reader& r, std::vector<std::int16_t>& out) {
  read_array(r, r.u16(), 2, out, [](Reader& x) { return x.i16(); });
}

void read_oid_array(Reader& r, std::vector<std::uint32_t>& out) {
  read_array(r, r.u16(), 4, out, [](Reader& x) { return x.u32(); });
}

void read_value_array(Reader& r, std::vector<std::optional<std::string_view>>& out) {
  read_array(r, r.u16(), 4, out, read_value);
}

/// {Byte1 code, String value}* terminated by a zero byte.
void read_error_fields(Reader& r, std::vector<ErrorField>& out) {
  out.clear();
  while (r.ok()) {
    const char code = static_cast<char>(r.u8());
    if (code == '\0') return;
    out.push_back(ErrorField{code, r.cstr()});
  }
}

/// Byte1 'S' or 'P' naming a statement or a portal.
char read_target_kind(Reader& r) {
  const char kind = static_cast<char>(r.u8());
  if (r.ok() && kind != 'S' && kind != 'P') r.fail(Error::BadValue);
  return kind;
}

template <class T>
std::error_code parse_copy_response(std::string_view m, T& out) {
  Reader r;
  if (auto ec = open(m, T::type, r)) return ec;
  out.format = static_cast<std::int8_t>(r.u8());
  read_int16_array(r, out.column_formats);
  return r.finish();
}

/// Up to 256 bytes of cancel key (4 in protocol 3.0).
std::string_view read_cancel_key(Reader& r) {
  std::string_view key = r.rest();
  if (r.ok() && key.size() < 4) r.fail(Error::Truncated);
  if (r.ok() && key.size() > max_cancel_key) r.fail(Error::BadValue);
  return key;
}

/// Checks the length of startup packet `p`, reads its code, points `r` past it.
std::error_code open_startup(std::string_view p, std::uint32_t& code, Reader& r) {
  if (p.size() < 8) return Error::Truncated;
  const std::uint32_t length = read_u32(p.data());
  if (length < 8 || length > 0x7fffffff) return Error::BadLength;
  if (length > p.size()) return Error::Truncated;
  if (length < p.size()) return Error::TrailingBytes;
  code = read_u32(p.data() + 4);
  r = Reader(p.substr(8));
  return {};
}

bool is_special_code(std::uint32_t code) {
  return code == cancel_request_code || code == negotiate_ssl_code || code == negotiate_gss_code;
}

template <std::uint32_t Code>
std::error_code parse_request(std::string_view p) {
  std::uint32_t code = 0;
  Reader r;
  if (auto ec = open_startup(p, code, r)) return ec;
  if (code != Code) return Error::UnexpectedType;
  return r.finish();
}

/// Parses `m` into alternative T of variant `out`, reusing T's vectors if it
/// already holds one.
template <class T, class Variant>
std::error_code parse_as(std::string_view m, Variant& out) {
  T* p = std::get_if<T>(&out);
  if (p == nullptr) p = &out.template emplace<T>();
  return parse(m, *p);
}

}  // namespace

// Startup phase --------------------------------------------------------------

std::error_code parse(std::string_view p, StartupMessage& out) {
  std::uint32_t code = 0;
  Reader r;
  if (auto ec = open_startup(p, code, r)) return ec;
  if (is_special_code(code)) return Error::UnexpectedType;
  if ((code >> 16) != 3) return Error::UnsupportedProtocol;
  out.protocol_version = code;
  out.parameters.clear();
  while (r.ok()) {
    const std::string_view name = r.cstr();
    if (name.empty()) break;
    out.parameters.emplace_back(name, r.cstr());
  }
  return r.finish();
}

std::error_code parse(std::string_view p, SslRequest&) { return parse_request<negotiate_ssl_code>(p); }

std::error_code parse(std::string_view p, GssEncRequest&) { return parse_request<negotiate_gss_code>(p); }

std::error_code parse(std::string_view p, CancelRequest& out) {
  std::uint32_t code = 0;
  Reader r;
  if (auto ec = open_startup(p, code, r)) return ec;
  if (code != cancel_request_code) return Error::UnexpectedType;
  out.process_id = r.i32();
  out.secret_key = read_cancel_key(r);
  return r.finish();
}

std::error_code parse_startup(std::string_view p, StartupPacket& out) {
  if (p.size() < 8) return Error::Truncated;
  switch (read_u32(p.data() + 4)) {
    case negotiate_ssl_code: return parse_as<SslRequest>(p, out);
    case negotiate_gss_code: return parse_as<GssEncRequest>(p, out);
    case cancel_request_code: return parse_as<CancelRequest>(p, out);
    default: return parse_as<StartupMessage>(p, out);
  }
}

// Frontend -------------------------------------------------------------------

std::error_code parse(std::string_view m, Query& out) {
  Reader r;
  if (auto ec = open(m, Query::type, r)) return ec;
  out.sql = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, Parse& out) {
  Reader r;
  if (auto ec = open(m, Parse::type, r)) return ec;
  out.statement = r.cstr();
  out.sql = r.cstr();
  read_oid_array(r, out.param_types);
  return r.finish();
}

std::error_code parse(std::string_view m, Bind& out) {
  Reader r;
  if (auto ec = open(m, Bind::type, r)) return ec;
  out.portal = r.cstr();
  out.statement = r.cstr();
  read_int16_array(r, out.param_formats);
  read_value_array(r, out.params);
  read_int16_array(r, out.result_formats);
  return r.finish();
}

std::error_code parse(std::string_view m, Describe& out) {
  Reader r;
  if (auto ec = open(m, Describe::type, r)) return ec;
  out.kind = read_target_kind(r);
  out.name = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, Execute& out) {
  Reader r;
  if (auto ec = open(m, Execute::type, r)) return ec;
  out.portal = r.cstr();
  out.max_rows = r.i32();
  return r.finish();
}

std::error_code parse(std::string_view m, Close& out) {
  Reader r;
  if (auto ec = open(m, Close::type, r)) return ec;
  out.kind = read_target_kind(r);
  out.name = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, Sync&) { return parse_empty<Sync>(m); }
std::error_code parse(std::string_view m, Flush&) { return parse_empty<Flush>(m); }

std::error_code parse(std::string_view m, FunctionCall& out) {
  Reader r;
  if (auto ec = open(m, FunctionCall::type, r)) return ec;
  out.function_oid = r.u32();
  read_int16_array(r, out.arg_formats);
  read_value_array(r, out.args);
  out.result_format = r.i16();
  return r.finish();
}

std::error_code parse(std::string_view m, CopyData& out) {
  Reader r;
  if (auto ec = open(m, CopyData::type, r)) return ec;
  out.data = r.rest();
  return r.finish();
}

std::error_code parse(std::string_view m, CopyDone&) { return parse_empty<CopyDone>(m); }

std::error_code parse(std::string_view m, CopyFail& out) {
  Reader r;
  if (auto ec = open(m, CopyFail::type, r)) return ec;
  out.message = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, Terminate&) { return parse_empty<Terminate>(m); }

std::error_code parse(std::string_view m, PasswordMessage& out) {
  Reader r;
  if (auto ec = open(m, PasswordMessage::type, r)) return ec;
  out.password = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, SaslInitialResponse& out) {
  Reader r;
  if (auto ec = open(m, SaslInitialResponse::type, r)) return ec;
  out.mechanism = r.cstr();
  out.data = read_value(r);
  return r.finish();
}

std::error_code parse(std::string_view m, SaslResponse& out) {
  Reader r;
  if (auto ec = open(m, SaslResponse::type, r)) return ec;
  out.data = r.rest();
  return r.finish();
}

std::error_code parse(std::string_view m, GssResponse& out) {
  Reader r;
  if (auto ec = open(m, GssResponse::type, r)) return ec;
  out.data = r.rest();
  return r.finish();
}

std::error_code parse_frontend(std::string_view m, FrontendMessage& out, PasswordKind password_kind) {
  if (m.empty()) return Error::Truncated;
  switch (m[0]) {
    case frontend_type::Query: return parse_as<Query>(m, out);
    case frontend_type::Parse: return parse_as<Parse>(m, out);
    case frontend_type::Bind: return parse_as<Bind>(m, out);
    case frontend_type::Describe: return parse_as<Describe>(m, out);
    case frontend_type::Execute: return parse_as<Execute>(m, out);
    case frontend_type::Close: return parse_as<Close>(m, out);
    case frontend_type::Sync: return parse_as<Sync>(m, out);
    case frontend_type::Flush: return parse_as<Flush>(m, out);
    case frontend_type::FunctionCall: return parse_as<FunctionCall>(m, out);
    case frontend_type::CopyData: return parse_as<CopyData>(m, out);
    case frontend_type::CopyDone: return parse_as<CopyDone>(m, out);
    case frontend_type::CopyFail: return parse_as<CopyFail>(m, out);
    case frontend_type::Terminate: return parse_as<Terminate>(m, out);
    case frontend_type::Password:
      switch (password_kind) {
        case PasswordKind::Password: return parse_as<PasswordMessage>(m, out);
        case PasswordKind::SaslInitialResponse: return parse_as<SaslInitialResponse>(m, out);
        case PasswordKind::SaslResponse: return parse_as<SaslResponse>(m, out);
        case PasswordKind::GssResponse: return parse_as<GssResponse>(m, out);
      }
      return Error::UnexpectedType;
    default: return Error::UnexpectedType;
  }
}

// Backend --------------------------------------------------------------------

std::error_code parse(std::string_view m, AuthenticationOk&) { return parse_auth_empty<AuthenticationOk>(m); }
std::error_code parse(std::string_view m, AuthenticationKerberosV5&) {
  return parse_auth_empty<AuthenticationKerberosV5>(m);
}
std::error_code parse(std::string_view m, AuthenticationCleartextPassword&) {
  return parse_auth_empty<AuthenticationCleartextPassword>(m);
}

std::error_code parse(std::string_view m, AuthenticationMD5Password& out) {
  Reader r;
  if (auto ec = open_auth<AuthenticationMD5Password>(m, r)) return ec;
  out.salt = r.bytes(4);
  return r.finish();
}

std::error_code parse(std::string_view m, AuthenticationGSS&) { return parse_auth_empty<AuthenticationGSS>(m); }

std::error_code parse(std::string_view m, AuthenticationGSSContinue& out) {
  Reader r;
  if (auto ec = open_auth<AuthenticationGSSContinue>(m, r)) return ec;
  out.data = r.rest();
  return r.finish();
}

std::error_code parse(std::string_view m, AuthenticationSSPI&) { return parse_auth_empty<AuthenticationSSPI>(m); }

std::error_code parse(std::string_view m, AuthenticationSASL& out) {
  Reader r;
  if (auto ec = open_auth<AuthenticationSASL>(m, r)) return ec;
  out.mechanisms.clear();
  while (r.ok()) {
    const std::string_view mechanism = r.cstr();
    if (mechanism.empty()) break;
    out.mechanisms.push_back(mechanism);
  }
  return r.finish();
}

std::error_code parse(std::string_view m, AuthenticationSASLContinue& out) {
  Reader r;
  if (auto ec = open_auth<AuthenticationSASLContinue>(m, r)) return ec;
  out.data = r.rest();
  return r.finish();
}

std::error_code parse(std::string_view m, AuthenticationSASLFinal& out) {
  Reader r;
  if (auto ec = open_auth<AuthenticationSASLFinal>(m, r)) return ec;
  out.data = r.rest();
  return r.finish();
}

std::error_code parse(std::string_view m, BackendKeyData& out) {
  Reader r;
  if (auto ec = open(m, BackendKeyData::type, r)) return ec;
  out.process_id = r.i32();
  out.secret_key = read_cancel_key(r);
  return r.finish();
}

std::error_code parse(std::string_view m, ParameterStatus& out) {
  Reader r;
  if (auto ec = open(m, ParameterStatus::type, r)) return ec;
  out.name = r.cstr();
  out.value = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, ReadyForQuery& out) {
  Reader r;
  if (auto ec = open(m, ReadyForQuery::type, r)) return ec;
  out.status = static_cast<char>(r.u8());
  if (r.ok() && out.status != 'I' && out.status != 'T' && out.status != 'E') r.fail(Error::BadValue);
  return r.finish();
}

std::error_code parse(std::string_view m, RowDescription& out) {
  Reader r;
  if (auto ec = open(m, RowDescription::type, r)) return ec;
  read_array(r, r.u16(), 19, out.fields, [](Reader& x) {
    FieldDescription f;
    f.name = x.cstr();
    f.table_oid = x.u32();
    f.column_number = x.i16();
    f.type_oid = x.u32();
    f.type_size = x.i16();
    f.type_modifier = x.i32();
    f.format = x.i16();
    return f;
  });
  return r.finish();
}

std::error_code parse(std::string_view m, DataRow& out) {
  Reader r;
  if (auto ec = open(m, DataRow::type, r)) return ec;
  read_value_array(r, out.columns);
  return r.finish();
}

std::error_code parse(std::string_view m, CommandComplete& out) {
  Reader r;
  if (auto ec = open(m, CommandComplete::type, r)) return ec;
  out.tag = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, ErrorResponse& out) {
  Reader r;
  if (auto ec = open(m, ErrorResponse::type, r)) return ec;
  read_error_fields(r, out.fields);
  return r.finish();
}

std::error_code parse(std::string_view m, NoticeResponse& out) {
  Reader r;
  if (auto ec = open(m, NoticeResponse::type, r)) return ec;
  read_error_fields(r, out.fields);
  return r.finish();
}

std::error_code parse(std::string_view m, NotificationResponse& out) {
  Reader r;
  if (auto ec = open(m, NotificationResponse::type, r)) return ec;
  out.process_id = r.i32();
  out.channel = r.cstr();
  out.payload = r.cstr();
  return r.finish();
}

std::error_code parse(std::string_view m, ParameterDescription& out) {
  Reader r;
  if (auto ec = open(m, ParameterDescription::type, r)) return ec;
  read_oid_array(r, out.types);
  return r.finish();
}

std::error_code parse(std::string_view m, ParseComplete&) { return parse_empty<ParseComplete>(m); }
std::error_code parse(std::string_view m, BindComplete&) { return parse_empty<BindComplete>(m); }
std::error_code parse(std::string_view m, CloseComplete&) { return parse_empty<CloseComplete>(m); }
std::error_code parse(std::string_view m, NoData&) { return parse_empty<NoData>(m); }
std::error_code parse(std::string_view m, PortalSuspended&) { return parse_empty<PortalSuspended>(m); }
std::error_code parse(std::string_view m, EmptyQueryResponse&) { return parse_empty<EmptyQueryResponse>(m); }
std::error_code parse(std::string_view m, CopyInResponse& out) { return parse_copy_response(m, out); }
std::error_code parse(std::string_view m, CopyOutResponse& out) { return parse_copy_response(m, out); }
std::error_code parse(std::string_view m, CopyBothResponse& out) { return parse_copy_response(m, out); }

std::error_code parse(std::string_view m, NegotiateProtocolVersion& out) {
  Reader r;
  if (auto ec = open(m, NegotiateProtocolVersion::type, r)) return ec;
  out.newest_minor = r.i32();
  const std::int32_t count = r.i32();
  if (r.ok() && count < 0) r.fail(Error::BadValue);
  read_array(r, r.ok() ? static_cast<std::size_t>(count) : 0, 1, out.unrecognized_options,
             [](Reader& x) { return x.cstr(); });
  return r.finish();
}

std::error_code parse(std::string_view m, FunctionCallResponse& out) {
  Reader r;
  if (auto ec = open(m, FunctionCallResponse::type, r)) return ec;
  out.result = read_value(r);
  return r.finish();
}

namespace {

std::error_code parse_authentication(std::string_view m, BackendMessage& out) {
  if (m.size() < header_size + 4) return parse_as<AuthenticationOk>(m, out);  // reports the error
  switch (static_cast<std::int32_t>(read_u32(m.data() + header_size))) {
    case auth_req_ok: return parse_as<AuthenticationOk>(m, out);
    case auth_req_krb5: return parse_as<AuthenticationKerberosV5>(m, out);
    case auth_req_password: return parse_as<AuthenticationCleartextPassword>(m, out);
    case auth_req_md5: return parse_as<AuthenticationMD5Password>(m, out);
    case auth_req_gss: return parse_as<AuthenticationGSS>(m, out);
    case auth_req_gss_cont: return parse_as<AuthenticationGSSContinue>(m, out);
    case auth_req_sspi: return parse_as<AuthenticationSSPI>(m, out);
    case auth_req_sasl: return parse_as<AuthenticationSASL>(m, out);
    case auth_req_sasl_cont: return parse_as<AuthenticationSASLContinue>(m, out);
    case auth_req_sasl_fin: return parse_as<AuthenticationSASLFinal>(m, out);
    default: return Error::UnexpectedType;
  }
}

}  // namespace

std::error_code parse_backend(std::string_view m, BackendMessage& out) {
  if (m.empty()) return Error::Truncated;
  switch (m[0]) {
    case backend_type::Authentication: return parse_authentication(m, out);
    case backend_type::BackendKeyData: return parse_as<BackendKeyData>(m, out);
    case backend_type::ParameterStatus: return parse_as<ParameterStatus>(m, out);
    case backend_type::ReadyForQuery: return parse_as<ReadyForQuery>(m, out);
    case backend_type::RowDescription: return parse_as<RowDescription>(m, out);
    case backend_type::DataRow: return parse_as<DataRow>(m, out);
    case backend_type::CommandComplete: return parse_as<CommandComplete>(m, out);
    case backend_type::ErrorResponse: return parse_as<ErrorResponse>(m, out);
    case backend_type::NoticeResponse: return parse_as<NoticeResponse>(m, out);
    case backend_type::NotificationResponse: return parse_as<NotificationResponse>(m, out);
    case backend_type::ParameterDescription: return parse_as<ParameterDescription>(m, out);
    case backend_type::ParseComplete: return parse_as<ParseComplete>(m, out);
    case backend_type::BindComplete: return parse_as<BindComplete>(m, out);
    case backend_type::CloseComplete: return parse_as<CloseComplete>(m, out);
    case backend_type::NoData: return parse_as<NoData>(m, out);
    case backend_type::PortalSuspended: return parse_as<PortalSuspended>(m, out);
    case backend_type::EmptyQueryResponse: return parse_as<EmptyQueryResponse>(m, out);
    case backend_type::CopyInResponse: return parse_as<CopyInResponse>(m, out);
    case backend_type::CopyOutResponse: return parse_as<CopyOutResponse>(m, out);
    case backend_type::CopyBothResponse: return parse_as<CopyBothResponse>(m, out);
    case backend_type::CopyData: return parse_as<CopyData>(m, out);
    case backend_type::CopyDone: return parse_as<CopyDone>(m, out);
    case backend_type::NegotiateProtocolVersion: return parse_as<NegotiateProtocolVersion>(m, out);
    case backend_type::FunctionCallResponse: return parse_as<FunctionCallResponse>(m, out);
    default: return Error::UnexpectedType;
  }
}

}  // namespace pgwarden::protocol
