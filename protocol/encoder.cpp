#include "protocol/encoder.hpp"

#include <cassert>
#include <cstddef>
#include <limits>

#include "protocol/framer.hpp"

namespace pgwarden::protocol {
namespace {

/// Appends one message to `out`: the header on construction, the length
/// (which counts itself but not the type byte) patched in on destruction.
class MessageWriter {
 public:
  /// A typed message: Byte1 type, Int32 length, body.
  MessageWriter(std::string& out, char type) : out_(out), length_at_(out.size() + 1) {
    out_.push_back(type);
    out_.append(4, '\0');
  }
  /// An untyped startup-phase packet: Int32 length, body.
  explicit MessageWriter(std::string& out) : out_(out), length_at_(out.size()) { out_.append(4, '\0'); }

  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;

  ~MessageWriter() {
    const std::size_t length = out_.size() - length_at_;
    assert(length <= 0x3fffffff);
    put_u32_at(length_at_, static_cast<std::uint32_t>(length));
  }

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void i16(std::int16_t v) { u16(static_cast<std::uint16_t>(v)); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<char>(v >> 8));
    out_.push_back(static_cast<char>(v & 0xff));
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void u32(std::uint32_t v) {
    out_.append(4, '\0');
    put_u32_at(out_.size() - 4, v);
  }
  void bytes(std::string_view v) { out_.append(v); }
  void cstr(std::string_view v) {
    assert(v.find('\0') == std::string_view::npos);
    out_.append(v);
    out_.push_back('\0');
  }
  /// An Int16 element count.
  void count(std::size_t n) {
    assert(n <= std::numeric_limits<std::uint16_t>::max());
    u16(static_cast<std::uint16_t>(n));
  }
  /// Int32 length (-1 for NULL) then the bytes.
  void value(const std::optional<std::string_view>& v) {
    if (!v) return i32(-1);
    assert(v->size() <= 0x7fffffff);
    i32(static_cast<std::int32_t>(v->size()));
    bytes(*v);
  }
  void int16_array(const std::vector<std::int16_t>& v) {
    count(v.size());
    for (std::int16_t x : v) i16(x);
  }
  void value_array(const std::vector<std::optional<std::string_view>>& v) {
    count(v.size());
    for (const auto& x : v) value(x);
  }

 private:
  void put_u32_at(std::size_t at, std::uint32_t v) {
    out_[at] = static_cast<char>(v >> 24);
    out_[at + 1] = static_cast<char>((v >> 16) & 0xff);
    out_[at + 2] = static_cast<char>((v >> 8) & 0xff);
    out_[at + 3] = static_cast<char>(v & 0xff);
  }

  std::string& out_;
  std::size_t length_at_;
};

/// A typed message without fields.
template <class T>
void encode_empty(std::string& out) {
  MessageWriter w(out, T::type);
}

/// An authentication request: its code, then `data` verbatim.
template <class T>
void encode_auth(std::string& out, std::string_view data = {}) {
  MessageWriter w(out, T::type);
  w.i32(T::code);
  w.bytes(data);
}

template <class T>
void encode_copy_response(const T& m, std::string& out) {
  MessageWriter w(out, T::type);
  w.u8(static_cast<std::uint8_t>(m.format));
  w.int16_array(m.column_formats);
}

void encode_fields(MessageWriter& w, const std::vector<ErrorField>& fields) {
  for (const ErrorField& f : fields) {
    w.u8(static_cast<std::uint8_t>(f.code));
    w.cstr(f.value);
  }
  w.u8(0);
}

/// ErrorResponse or NoticeResponse built from its usual fields.
void append_report(std::string& out, char type, std::string_view severity, std::string_view sqlstate,
                   std::string_view message, std::string_view detail, std::string_view hint) {
  MessageWriter w(out, type);
  const auto field = [&w](char code, std::string_view value) {
    w.u8(static_cast<std::uint8_t>(code));
    w.cstr(value);
  };
  field(pg_diag_severity, severity);
  field(pg_diag_severity_nonlocalized, severity);
  field(pg_diag_sqlstate, sqlstate);
  field(pg_diag_message_primary, message);
  if (!detail.empty()) field(pg_diag_message_detail, detail);
  if (!hint.empty()) field(pg_diag_message_hint, hint);
  w.u8(0);
}

}  // namespace

// Startup phase --------------------------------------------------------------

void encode(const StartupMessage& m, std::string& out) {
  MessageWriter w(out);
  w.u32(m.protocol_version);
  for (const auto& [name, value] : m.parameters) {
    w.cstr(name);
    w.cstr(value);
  }
  w.u8(0);
}

void encode(const SslRequest&, std::string& out) {
  MessageWriter w(out);
  w.u32(negotiate_ssl_code);
}

void encode(const GssEncRequest&, std::string& out) {
  MessageWriter w(out);
  w.u32(negotiate_gss_code);
}

void encode(const CancelRequest& m, std::string& out) {
  MessageWriter w(out);
  w.u32(cancel_request_code);
  w.i32(m.process_id);
  w.bytes(m.secret_key);
}

void encode(const StartupPacket& m, std::string& out) {
  std::visit([&out](const auto& v) { encode(v, out); }, m);
}

// Frontend -------------------------------------------------------------------

void encode(const Query& m, std::string& out) { append_query(out, m.sql); }

void encode(const Parse& m, std::string& out) {
  MessageWriter w(out, Parse::type);
  w.cstr(m.statement);
  w.cstr(m.sql);
  w.count(m.param_types.size());
  for (std::uint32_t oid : m.param_types) w.u32(oid);
}

void encode(const Bind& m, std::string& out) {
  MessageWriter w(out, Bind::type);
  w.cstr(m.portal);
  w.cstr(m.statement);
  w.int16_array(m.param_formats);
  w.value_array(m.params);
  w.int16_array(m.result_formats);
}

void encode(const Describe& m, std::string& out) {
  MessageWriter w(out, Describe::type);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.cstr(m.name);
}

void encode(const Execute& m, std::string& out) {
  MessageWriter w(out, Execute::type);
  w.cstr(m.portal);
  w.i32(m.max_rows);
}

void encode(const Close& m, std::string& out) {
  MessageWriter w(out, Close::type);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.cstr(m.name);
}

void encode(const Sync&, std::string& out) { encode_empty<Sync>(out); }
void encode(const Flush&, std::string& out) { encode_empty<Flush>(out); }

void encode(const FunctionCall& m, std::string& out) {
  MessageWriter w(out, FunctionCall::type);
  w.u32(m.function_oid);
  w.int16_array(m.arg_formats);
  w.value_array(m.args);
  w.i16(m.result_format);
}

void encode(const CopyData& m, std::string& out) {
  MessageWriter w(out, CopyData::type);
  w.bytes(m.data);
}

void encode(const CopyDone&, std::string& out) { encode_empty<CopyDone>(out); }

void encode(const CopyFail& m, std::string& out) {
  MessageWriter w(out, CopyFail::type);
  w.cstr(m.message);
}

void encode(const Terminate&, std::string& out) { encode_empty<Terminate>(out); }

void encode(const PasswordMessage& m, std::string& out) {
  MessageWriter w(out, PasswordMessage::type);
  w.cstr(m.password);
}

void encode(const SaslInitialResponse& m, std::string& out) {
  MessageWriter w(out, SaslInitialResponse::type);
  w.cstr(m.mechanism);
  w.value(m.data);
}

void encode(const SaslResponse& m, std::string& out) {
  MessageWriter w(out, SaslResponse::type);
  w.bytes(m.data);
}

void encode(const GssResponse& m, std::string& out) {
  MessageWriter w(out, GssResponse::type);
  w.bytes(m.data);
}

void encode(const FrontendMessage& m, std::string& out) {
  std::visit([&out](const auto& v) { encode(v, out); }, m);
}

// Backend --------------------------------------------------------------------

void encode(const AuthenticationOk&, std::string& out) { encode_auth<AuthenticationOk>(out); }
void encode(const AuthenticationKerberosV5&, std::string& out) { encode_auth<AuthenticationKerberosV5>(out); }
void encode(const AuthenticationCleartextPassword&, std::string& out) {
  encode_auth<AuthenticationCleartextPassword>(out);
}
void encode(const AuthenticationMD5Password& m, std::string& out) {
  assert(m.salt.size() == 4);
  encode_auth<AuthenticationMD5Password>(out, m.salt);
}
void encode(const AuthenticationGSS&, std::string& out) { encode_auth<AuthenticationGSS>(out); }
void encode(const AuthenticationGSSContinue& m, std::string& out) {
  encode_auth<AuthenticationGSSContinue>(out, m.data);
}
void encode(const AuthenticationSSPI&, std::string& out) { encode_auth<AuthenticationSSPI>(out); }

void encode(const AuthenticationSASL& m, std::string& out) {
  MessageWriter w(out, AuthenticationSASL::type);
  w.i32(AuthenticationSASL::code);
  for (std::string_view mechanism : m.mechanisms) w.cstr(mechanism);
  w.u8(0);
}

void encode(const AuthenticationSASLContinue& m, std::string& out) {
  encode_auth<AuthenticationSASLContinue>(out, m.data);
}
void encode(const AuthenticationSASLFinal& m, std::string& out) { encode_auth<AuthenticationSASLFinal>(out, m.data); }

void encode(const BackendKeyData& m, std::string& out) {
  append_backend_key_data(out, m.process_id, m.secret_key);
}

void encode(const ParameterStatus& m, std::string& out) {
  MessageWriter w(out, ParameterStatus::type);
  w.cstr(m.name);
  w.cstr(m.value);
}

void encode(const ReadyForQuery& m, std::string& out) { append_ready_for_query(out, m.status); }

void encode(const RowDescription& m, std::string& out) {
  MessageWriter w(out, RowDescription::type);
  w.count(m.fields.size());
  for (const FieldDescription& f : m.fields) {
    w.cstr(f.name);
    w.u32(f.table_oid);
    w.i16(f.column_number);
    w.u32(f.type_oid);
    w.i16(f.type_size);
    w.i32(f.type_modifier);
    w.i16(f.format);
  }
}

void encode(const DataRow& m, std::string& out) {
  MessageWriter w(out, DataRow::type);
  w.value_array(m.columns);
}

void encode(const CommandComplete& m, std::string& out) {
  MessageWriter w(out, CommandComplete::type);
  w.cstr(m.tag);
}

void encode(const ErrorResponse& m, std::string& out) {
  MessageWriter w(out, ErrorResponse::type);
  encode_fields(w, m.fields);
}

void encode(const NoticeResponse& m, std::string& out) {
  MessageWriter w(out, NoticeResponse::type);
  encode_fields(w, m.fields);
}

void encode(const NotificationResponse& m, std::string& out) {
  MessageWriter w(out, NotificationResponse::type);
  w.i32(m.process_id);
  w.cstr(m.channel);
  w.cstr(m.payload);
}

void encode(const ParameterDescription& m, std::string& out) {
  MessageWriter w(out, ParameterDescription::type);
  w.count(m.types.size());
  for (std::uint32_t oid : m.types) w.u32(oid);
}

void encode(const ParseComplete&, std::string& out) { encode_empty<ParseComplete>(out); }
void encode(const BindComplete&, std::string& out) { encode_empty<BindComplete>(out); }
void encode(const CloseComplete&, std::string& out) { encode_empty<CloseComplete>(out); }
void encode(const NoData&, std::string& out) { encode_empty<NoData>(out); }
void encode(const PortalSuspended&, std::string& out) { encode_empty<PortalSuspended>(out); }
void encode(const EmptyQueryResponse&, std::string& out) { encode_empty<EmptyQueryResponse>(out); }
void encode(const CopyInResponse& m, std::string& out) { encode_copy_response(m, out); }
void encode(const CopyOutResponse& m, std::string& out) { encode_copy_response(m, out); }
void encode(const CopyBothResponse& m, std::string& out) { encode_copy_response(m, out); }

void encode(const NegotiateProtocolVersion& m, std::string& out) {
  MessageWriter w(out, NegotiateProtocolVersion::type);
  w.i32(m.newest_minor);
  w.i32(static_cast<std::int32_t>(m.unrecognized_options.size()));
  for (std::string_view option : m.unrecognized_options) w.cstr(option);
}

void encode(const FunctionCallResponse& m, std::string& out) {
  MessageWriter w(out, FunctionCallResponse::type);
  w.value(m.result);
}

void encode(const BackendMessage& m, std::string& out) {
  std::visit([&out](const auto& v) { encode(v, out); }, m);
}

// Builders -------------------------------------------------------------------

void append_error(std::string& out, std::string_view severity, std::string_view sqlstate, std::string_view message,
                  std::string_view detail, std::string_view hint) {
  append_report(out, backend_type::ErrorResponse, severity, sqlstate, message, detail, hint);
}

void append_notice(std::string& out, std::string_view severity, std::string_view sqlstate, std::string_view message,
                   std::string_view detail, std::string_view hint) {
  append_report(out, backend_type::NoticeResponse, severity, sqlstate, message, detail, hint);
}

void append_ready_for_query(std::string& out, char status) {
  MessageWriter w(out, backend_type::ReadyForQuery);
  w.u8(static_cast<std::uint8_t>(status));
}

void append_backend_key_data(std::string& out, std::int32_t process_id, std::uint32_t secret_key) {
  MessageWriter w(out, backend_type::BackendKeyData);
  w.i32(process_id);
  w.u32(secret_key);
}

void append_backend_key_data(std::string& out, std::int32_t process_id, std::string_view secret_key) {
  assert(secret_key.size() >= 4 && secret_key.size() <= max_cancel_key);
  MessageWriter w(out, backend_type::BackendKeyData);
  w.i32(process_id);
  w.bytes(secret_key);
}

void append_query(std::string& out, std::string_view sql) {
  MessageWriter w(out, frontend_type::Query);
  w.cstr(sql);
}

}  // namespace pgwarden::protocol
