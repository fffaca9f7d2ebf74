#pragma once
/// The person a verified client certificate names (`tls.client_cert:
/// require`, checked against `tls.ca` by the TLS layer before this runs).
///
/// The person comes from one configurable field:
///   - SanEmail: the subjectAltName rfc822Name (an e-mail address), the
///     usual field of person certificates (RFC 8398 aside, plain ASCII);
///   - SanUri: the subjectAltName URI (e.g. a SPIFFE ID);
///   - SubjectCn: the subject's commonName.
/// The field must occur exactly once: a certificate with two SAN e-mail
/// addresses names two people, and is refused rather than read by order.
///
/// Groups, optionally, from:
///   - SubjectOu: every organizationalUnitName of the subject;
///   - SanUriPrefix: every SAN URI that starts with a configured prefix,
///     the rest being the group ("urn:pgwarden:group:dba" -> "dba"). Such
///     URIs are not candidates for the person when the person is SanUri.
///
/// Values with a NUL byte or a control character are refused (a classic
/// way to make "alice@example.com\0.evil" read as someone else).

#include <openssl/types.h>

#include <string>
#include <vector>

#include "auth/scram.hpp"

namespace pgwarden::auth {

/// Where a certificate names its person.
enum class CertificatePersonField { SanEmail, SanUri, SubjectCn };
/// Where a certificate lists the person's groups.
enum class CertificateGroupsField { None, SubjectOu, SanUriPrefix };

struct CertificateIdentityRules {
  CertificatePersonField person = CertificatePersonField::SanEmail;
  CertificateGroupsField groups = CertificateGroupsField::None;
  std::string group_uri_prefix;  ///< for SanUriPrefix; not empty then
};

/// Who a certificate names.
struct CertificateIdentity {
  std::string person;
  std::vector<std::string> groups;
};

/// The identity in `certificate` (already verified; not null). Fails with
/// CertificateRefused and a message such as "client certificate has no SAN
/// e-mail address".
AuthResult<CertificateIdentity> certificate_identity(X509* certificate, const CertificateIdentityRules& rules);

/// "SAN e-mail address", "SAN URI", "subject CN": how messages name a field.
std::string_view field_name(CertificatePersonField field) noexcept;

}  // namespace pgwarden::auth
