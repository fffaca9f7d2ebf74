#include "auth/certificate_identity.hpp"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <optional>

namespace pgwarden::auth {

namespace {

AuthFailure refuse(std::string message) {
  return AuthFailure{AuthError::CertificateRefused, std::move(message), {}, {}};
}

/// A certificate value fit to be a name: no NUL, no control characters.
bool clean(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

std::string text_of(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

/// Every SAN entry of `type` (GEN_EMAIL or GEN_URI), as raw text.
std::vector<std::string> san_values(X509* certificate, int type) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == type) out.push_back(text_of(type == GEN_EMAIL ? name->d.rfc822Name : name->d.uniformResourceIdentifier));
  }
  GENERAL_NAMES_free(names);
  return out;
}

/// Every subject entry of `nid` (CN, OU), as UTF-8; nullopt if one does not convert.
std::optional<std::vector<std::string>> subject_values(X509* certificate, int nid) {
  std::vector<std::string> out;
  const X509_NAME* subject = X509_get_subject_name(certificate);
  for (int i = X509_NAME_get_index_by_NID(subject, nid, -1); i >= 0; i = X509_NAME_get_index_by_NID(subject, nid, i)) {
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (length < 0) return std::nullopt;
    out.emplace_back(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
  }
  return out;
}

AuthResult<std::string> read_person(X509* certificate, const CertificateIdentityRules& rules) {
  const std::string_view what = field_name(rules.person);
  std::vector<std::string> values;
  if (rules.person == CertificatePersonField::SubjectCn) {
    auto cns = subject_values(certificate, NID_commonName);
    if (!cns) return refuse("client certificate has a subject CN that is not a valid string");
    values = std::move(*cns);
  } else {
    values = san_values(certificate, rules.person == CertificatePersonField::SanEmail ? GEN_EMAIL : GEN_URI);
    if (rules.person == CertificatePersonField::SanUri && rules.groups == CertificateGroupsField::SanUriPrefix)
      std::erase_if(values, [&](const std::string& v) { return v.starts_with(rules.group_uri_prefix); });
  }
  if (values.empty()) return refuse("client certificate has no " + std::string(what));
  if (values.size() > 1)
    return refuse("client certificate has " + std::to_string(values.size()) + " " + std::string(what) +
                  (what.ends_with('s') ? "es" : "s") + "; pgwarden needs exactly one to name the person");
  if (!clean(values[0])) return refuse("client certificate has a " + std::string(what) + " with control characters");
  return std::move(values[0]);
}

AuthResult<std::vector<std::string>> read_groups(X509* certificate, const CertificateIdentityRules& rules) {
  std::vector<std::string> groups;
  if (rules.groups == CertificateGroupsField::SubjectOu) {
    auto ous = subject_values(certificate, NID_organizationalUnitName);
    if (!ous) return refuse("client certificate has a subject OU that is not a valid string");
    groups = std::move(*ous);
  } else if (rules.groups == CertificateGroupsField::SanUriPrefix && !rules.group_uri_prefix.empty()) {
    for (std::string& uri : san_values(certificate, GEN_URI))
      if (uri.starts_with(rules.group_uri_prefix)) groups.push_back(uri.substr(rules.group_uri_prefix.size()));
  }
  for (const std::string& g : groups)
    if (!clean(g)) return refuse("client certificate names an empty group or one with control characters");
  return groups;
}

}  // namespace

std::string_view field_name(CertificatePersonField field) noexcept {
  switch (field) {
    case CertificatePersonField::SanEmail: return "SAN e-mail address";
    case CertificatePersonField::SanUri: return "SAN URI";
    case CertificatePersonField::SubjectCn: return "subject CN";
  }
  return "field";
}

AuthResult<CertificateIdentity> certificate_identity(X509* certificate, const CertificateIdentityRules& rules) {
  auto person = read_person(certificate, rules);
  if (!person) return std::move(person).error();
  auto groups = read_groups(certificate, rules);
  if (!groups) return std::move(groups).error();
  return CertificateIdentity{std::move(*person), std::move(*groups)};
}

}  // namespace pgwarden::auth
