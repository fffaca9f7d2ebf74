#pragma once
/// Encodes the structs of messages.hpp to PostgreSQL v3 wire bytes.
///
/// Every function appends to `out` (so a batch is built in one buffer) and
/// computes the length fields itself. The caller keeps to what the protocol
/// can carry: string fields without NUL bytes, at most 65535 repeated
/// elements where the count is an Int16, and messages under 1 GiB. For any
/// message m that parse() accepted, encode(m) gives back the same bytes.

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/messages.hpp"

namespace pgwarden::protocol {

// Startup phase --------------------------------------------------------------

void encode(const StartupMessage& m, std::string& out);
void encode(const SslRequest& m, std::string& out);
void encode(const GssEncRequest& m, std::string& out);
void encode(const CancelRequest& m, std::string& out);
/// Whichever startup packet `m` holds.
void encode(const StartupPacket& m, std::string& out);

// Frontend -------------------------------------------------------------------

void encode(const Query& m, std::string& out);
void encode(const Parse& m, std::string& out);
void encode(const Bind& m, std::string& out);
void encode(const Describe& m, std::string& out);
void encode(const Execute& m, std::string& out);
void encode(const Close& m, std::string& out);
void encode(const Sync& m, std::string& out);
void encode(const Flush& m, std::string& out);
void encode(const FunctionCall& m, std::string& out);
/// CopyData of either direction.
void encode(const CopyData& m, std::string& out);
/// CopyDone of either direction.
void encode(const CopyDone& m, std::string& out);
void encode(const CopyFail& m, std::string& out);
void encode(const Terminate& m, std::string& out);
void encode(const PasswordMessage& m, std::string& out);
void encode(const SaslInitialResponse& m, std::string& out);
void encode(const SaslResponse& m, std::string& out);
void encode(const GssResponse& m, std::string& out);
/// Whichever frontend message `m` holds.
void encode(const FrontendMessage& m, std::string& out);

// Backend --------------------------------------------------------------------

void encode(const AuthenticationOk& m, std::string& out);
void encode(const AuthenticationKerberosV5& m, std::string& out);
void encode(const AuthenticationCleartextPassword& m, std::string& out);
void encode(const AuthenticationMD5Password& m, std::string& out);
void encode(const AuthenticationGSS& m, std::string& out);
void encode(const AuthenticationGSSContinue& m, std::string& out);
void encode(const AuthenticationSSPI& m, std::string& out);
void encode(const AuthenticationSASL& m, std::string& out);
void encode(const AuthenticationSASLContinue& m, std::string& out);
void encode(const AuthenticationSASLFinal& m, std::string& out);
void encode(const BackendKeyData& m, std::string& out);
void encode(const ParameterStatus& m, std::string& out);
void encode(const ReadyForQuery& m, std::string& out);
void encode(const RowDescription& m, std::string& out);
void encode(const DataRow& m, std::string& out);
void encode(const CommandComplete& m, std::string& out);
void encode(const ErrorResponse& m, std::string& out);
void encode(const NoticeResponse& m, std::string& out);
void encode(const NotificationResponse& m, std::string& out);
void encode(const ParameterDescription& m, std::string& out);
void encode(const ParseComplete& m, std::string& out);
void encode(const BindComplete& m, std::string& out);
void encode(const CloseComplete& m, std::string& out);
void encode(const NoData& m, std::string& out);
void encode(const PortalSuspended& m, std::string& out);
void encode(const EmptyQueryResponse& m, std::string& out);
void encode(const CopyInResponse& m, std::string& out);
void encode(const CopyOutResponse& m, std::string& out);
void encode(const CopyBothResponse& m, std::string& out);
void encode(const NegotiateProtocolVersion& m, std::string& out);
void encode(const FunctionCallResponse& m, std::string& out);
/// Whichever backend message `m` holds.
void encode(const BackendMessage& m, std::string& out);

// Builders for messages the proxy writes itself -------------------------------

/// ErrorResponse with fields S and V = `severity` ("ERROR", "FATAL"), C, M,
/// and D and H when not empty: what a client shows as the server's error.
void append_error(std::string& out, std::string_view severity, std::string_view sqlstate, std::string_view message,
                  std::string_view detail = {}, std::string_view hint = {});

/// NoticeResponse with the same fields (`severity` "WARNING", "NOTICE", ...).
void append_notice(std::string& out, std::string_view severity, std::string_view sqlstate, std::string_view message,
                   std::string_view detail = {}, std::string_view hint = {});

/// ReadyForQuery with `status` 'I', 'T' or 'E'.
void append_ready_for_query(std::string& out, char status);

/// BackendKeyData with a protocol 3.0 key (4 bytes, big-endian).
void append_backend_key_data(std::string& out, std::int32_t process_id, std::uint32_t secret_key);

/// BackendKeyData with a key of 4 to 256 bytes (protocol 3.2 allows more than 4).
void append_backend_key_data(std::string& out, std::int32_t process_id, std::string_view secret_key);

/// Simple-protocol Query.
void append_query(std::string& out, std::string_view sql);

}  // namespace pgwarden::protocol
