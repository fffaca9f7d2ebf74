#pragma once
/// Parses whole PostgreSQL v3 messages into the structs of messages.hpp.
///
/// Every function takes the WHOLE message: for typed messages the header
/// included (`Frame::bytes`), for startup-phase packets the whole packet
/// (`StartupFrame::bytes`). The result views `message`, so it must outlive
/// the struct. Any input is safe: nothing is read out of bounds, nothing is
/// thrown, and nothing is allocated but the vectors of repeated fields (whose
/// capacity is reused when the same struct is parsed into again). On error
/// `out` holds a partial result and must not be used.
///
/// Counts stored as Int16 (parameters, formats, columns) are read as unsigned
/// 16-bit numbers, as PostgreSQL and libpq do: libpq sends up to 65535 bind
/// parameters, which a signed reading would call negative.

#include <string>
#include <string_view>
#include <system_error>

#include "protocol/error.hpp"
#include "protocol/messages.hpp"

namespace pgwarden::protocol {

/// Parsing a temporary string would leave `out` viewing freed memory, so it
/// does not compile; parse from the buffer that keeps the bytes.
template <class T>
std::error_code parse(std::string&& message, T& out) = delete;

// Startup phase --------------------------------------------------------------

/// StartupMessage, protocol 3.x; another major version is UnsupportedProtocol.
std::error_code parse(std::string_view packet, StartupMessage& out);
/// SSLRequest.
std::error_code parse(std::string_view packet, SslRequest& out);
/// GSSENCRequest.
std::error_code parse(std::string_view packet, GssEncRequest& out);
/// CancelRequest with a 4-byte (3.0) or up to 256-byte (3.2) key.
std::error_code parse(std::string_view packet, CancelRequest& out);
/// Whichever startup-phase packet `packet` is, chosen by its code.
std::error_code parse_startup(std::string_view packet, StartupPacket& out);
std::error_code parse_startup(std::string&& packet, StartupPacket& out) = delete;

// Frontend -------------------------------------------------------------------

std::error_code parse(std::string_view message, Query& out);
std::error_code parse(std::string_view message, Parse& out);
std::error_code parse(std::string_view message, Bind& out);
/// Describe; a kind other than 'S' or 'P' is BadValue.
std::error_code parse(std::string_view message, Describe& out);
std::error_code parse(std::string_view message, Execute& out);
/// Close; a kind other than 'S' or 'P' is BadValue.
std::error_code parse(std::string_view message, Close& out);
std::error_code parse(std::string_view message, Sync& out);
std::error_code parse(std::string_view message, Flush& out);
std::error_code parse(std::string_view message, FunctionCall& out);
/// CopyData of either direction.
std::error_code parse(std::string_view message, CopyData& out);
/// CopyDone of either direction.
std::error_code parse(std::string_view message, CopyDone& out);
std::error_code parse(std::string_view message, CopyFail& out);
std::error_code parse(std::string_view message, Terminate& out);
std::error_code parse(std::string_view message, PasswordMessage& out);
std::error_code parse(std::string_view message, SaslInitialResponse& out);
std::error_code parse(std::string_view message, SaslResponse& out);
std::error_code parse(std::string_view message, GssResponse& out);

/// What a 'p' message means; only the authentication exchange so far tells.
enum class PasswordKind : std::uint8_t {
  Password,             ///< after AuthenticationCleartextPassword or MD5Password
  SaslInitialResponse,  ///< after AuthenticationSASL
  SaslResponse,         ///< after AuthenticationSASLContinue
  GssResponse,          ///< after AuthenticationGSS, SSPI or GSSContinue
};

/// Any frontend typed message, chosen by its type byte; an unknown type is
/// UnexpectedType. A 'p' message is parsed as `password_kind` says.
std::error_code parse_frontend(std::string_view message, FrontendMessage& out,
                               PasswordKind password_kind = PasswordKind::Password);
std::error_code parse_frontend(std::string&& message, FrontendMessage& out,
                               PasswordKind password_kind = PasswordKind::Password) = delete;

// Backend --------------------------------------------------------------------

std::error_code parse(std::string_view message, AuthenticationOk& out);
std::error_code parse(std::string_view message, AuthenticationKerberosV5& out);
std::error_code parse(std::string_view message, AuthenticationCleartextPassword& out);
std::error_code parse(std::string_view message, AuthenticationMD5Password& out);
std::error_code parse(std::string_view message, AuthenticationGSS& out);
std::error_code parse(std::string_view message, AuthenticationGSSContinue& out);
std::error_code parse(std::string_view message, AuthenticationSSPI& out);
std::error_code parse(std::string_view message, AuthenticationSASL& out);
std::error_code parse(std::string_view message, AuthenticationSASLContinue& out);
std::error_code parse(std::string_view message, AuthenticationSASLFinal& out);
std::error_code parse(std::string_view message, BackendKeyData& out);
std::error_code parse(std::string_view message, ParameterStatus& out);
/// ReadyForQuery; a status other than 'I', 'T' or 'E' is BadValue.
std::error_code parse(std::string_view message, ReadyForQuery& out);
std::error_code parse(std::string_view message, RowDescription& out);
std::error_code parse(std::string_view message, DataRow& out);
std::error_code parse(std::string_view message, CommandComplete& out);
std::error_code parse(std::string_view message, ErrorResponse& out);
std::error_code parse(std::string_view message, NoticeResponse& out);
std::error_code parse(std::string_view message, NotificationResponse& out);
std::error_code parse(std::string_view message, ParameterDescription& out);
std::error_code parse(std::string_view message, ParseComplete& out);
std::error_code parse(std::string_view message, BindComplete& out);
std::error_code parse(std::string_view message, CloseComplete& out);
std::error_code parse(std::string_view message, NoData& out);
std::error_code parse(std::string_view message, PortalSuspended& out);
std::error_code parse(std::string_view message, EmptyQueryResponse& out);
std::error_code parse(std::string_view message, CopyInResponse& out);
std::error_code parse(std::string_view message, CopyOutResponse& out);
std::error_code parse(std::string_view message, CopyBothResponse& out);
std::error_code parse(std::string_view message, NegotiateProtocolVersion& out);
std::error_code parse(std::string_view message, FunctionCallResponse& out);

/// Any backend typed message, chosen by its type byte (and, for 'R', by its
/// authentication code); an unknown type or code is UnexpectedType.
std::error_code parse_backend(std::string_view message, BackendMessage& out);
std::error_code parse_backend(std::string&& message, BackendMessage& out) = delete;

}  // namespace pgwarden::protocol
