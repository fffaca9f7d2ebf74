// The person and groups a client certificate names: a CA and leaf
// certificates made here with OpenSSL, with and without each field.

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "auth/certificate_identity.hpp"

namespace {

using namespace pgwarden::auth;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

EVP_PKEY* ca_key() {
  static KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  return key.get();
}
EVP_PKEY* leaf_key() {
  static KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  return key.get();
}

void add_name(X509_NAME* name, const char* field, const std::string& value) {
  X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                             static_cast<int>(value.size()), -1, 0);
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

CertPtr make_ca() {
  CertPtr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), ca_key());
  add_name(X509_get_subject_name(cert.get()), "CN", "pgwarden test CA");
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign");
  X509_sign(cert.get(), ca_key(), EVP_sha256());
  return cert;
}

X509* ca() {
  static CertPtr cert = make_ca();
  return cert.get();
}

/// A client certificate issued by ca(): subject entries as (field, value),
/// and a subjectAltName in OpenSSL's config syntax (empty: none).
CertPtr make_leaf(const std::vector<std::pair<std::string, std::string>>& subject, const std::string& san) {
  static long serial = 100;
  CertPtr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), leaf_key());
  for (const auto& [field, value] : subject) add_name(X509_get_subject_name(cert.get()), field.c_str(), value);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca()));
  if (!san.empty()) add_extension(cert.get(), ca(), NID_subject_alt_name, san);
  add_extension(cert.get(), ca(), NID_ext_key_usage, "clientAuth");
  X509_sign(cert.get(), ca_key(), EVP_sha256());
  return cert;
}

/// The chain check the TLS layer does before certificate_identity runs.
bool verifies_against_ca(X509* leaf) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  return X509_verify_cert(ctx.get()) == 1;
}

CertificateIdentityRules by(CertificatePersonField person, CertificateGroupsField groups = CertificateGroupsField::None,
                            std::string prefix = {}) {
  return CertificateIdentityRules{person, groups, std::move(prefix)};
}

std::string refusal(X509* cert, const CertificateIdentityRules& rules) {
  auto id = certificate_identity(cert, rules);
  if (id) return "accepted as " + id->person;
  EXPECT_EQ(id.error().code, AuthError::CertificateRefused);
  EXPECT_EQ(id.error().sqlstate(), "28000");
  return id.error().message;
}

// alice's certificate names her by SAN e-mail; it chains to the test CA.
TEST(CertificateIdentity, PersonFromSanEmail) {
  CertPtr cert = make_leaf({{"CN", "Alice Liddell"}}, "email:alice@example.com,DNS:laptop.example.com");
  ASSERT_TRUE(verifies_against_ca(cert.get()));
  auto id = certificate_identity(cert.get(), by(CertificatePersonField::SanEmail));
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->person, "alice@example.com");
  EXPECT_TRUE(id->groups.empty());
}

// The person can be read from the CN or a SAN URI instead.
TEST(CertificateIdentity, PersonFromCnOrUri) {
  CertPtr cert = make_leaf({{"CN", "alice"}}, "URI:spiffe://example.com/person/alice");
  EXPECT_EQ(refusal(cert.get(), by(CertificatePersonField::SubjectCn)), "accepted as alice");
  EXPECT_EQ(refusal(cert.get(), by(CertificatePersonField::SanUri)), "accepted as spiffe://example.com/person/alice");
}

// A certificate without the configured field is refused, naming the field.
TEST(CertificateIdentity, MissingFieldIsRefused) {
  CertPtr cn_only = make_leaf({{"CN", "alice"}}, "");
  ASSERT_TRUE(verifies_against_ca(cn_only.get()));
  EXPECT_EQ(refusal(cn_only.get(), by(CertificatePersonField::SanEmail)), "client certificate has no SAN e-mail address");
  EXPECT_EQ(refusal(cn_only.get(), by(CertificatePersonField::SanUri)), "client certificate has no SAN URI");
  CertPtr email_only = make_leaf({{"O", "Example"}}, "email:alice@example.com");
  EXPECT_EQ(refusal(email_only.get(), by(CertificatePersonField::SubjectCn)), "client certificate has no subject CN");
  CertPtr dns_only = make_leaf({{"CN", "alice"}}, "DNS:alice.example.com");
  EXPECT_EQ(refusal(dns_only.get(), by(CertificatePersonField::SanEmail)), "client certificate has no SAN e-mail address");
}

// Two values of the field name two people: refused, not read by order.
TEST(CertificateIdentity, AmbiguousFieldIsRefused) {
  CertPtr two = make_leaf({{"CN", "alice"}, {"CN", "bob"}}, "email:alice@example.com,email:bob@example.com");
  EXPECT_EQ(refusal(two.get(), by(CertificatePersonField::SanEmail)),
            "client certificate has 2 SAN e-mail addresses; pgwarden needs exactly one to name the person");
  EXPECT_EQ(refusal(two.get(), by(CertificatePersonField::SubjectCn)),
            "client certificate has 2 subject CNs; pgwarden needs exactly one to name the person");
}

// A CN with an embedded NUL cannot pass for a shorter name.
TEST(CertificateIdentity, ControlCharactersAreRefused) {
  CertPtr nul = make_leaf({{"CN", std::string("alice\0.evil", 11)}}, "");
  EXPECT_EQ(refusal(nul.get(), by(CertificatePersonField::SubjectCn)),
            "client certificate has a subject CN with control characters");
}

// Groups from every subject OU.
TEST(CertificateIdentity, GroupsFromSubjectOu) {
  CertPtr cert = make_leaf({{"CN", "bob"}, {"OU", "juniors"}, {"OU", "oncall"}}, "email:bob@example.com");
  auto id = certificate_identity(cert.get(), by(CertificatePersonField::SanEmail, CertificateGroupsField::SubjectOu));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->person, "bob@example.com");
  EXPECT_EQ(id->groups, (std::vector<std::string>{"juniors", "oncall"}));
  auto none = certificate_identity(cert.get(), by(CertificatePersonField::SanEmail));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->groups.empty());
}

// Groups from SAN URIs with the configured prefix; those URIs never name
// the person.
TEST(CertificateIdentity, GroupsFromSanUriPrefix) {
  CertPtr cert = make_leaf({{"CN", "bob"}},
                           "URI:urn:pgwarden:group:dba,URI:spiffe://example.com/person/bob,URI:urn:pgwarden:group:oncall");
  auto id = certificate_identity(
      cert.get(), by(CertificatePersonField::SanUri, CertificateGroupsField::SanUriPrefix, "urn:pgwarden:group:"));
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->person, "spiffe://example.com/person/bob");
  EXPECT_EQ(id->groups, (std::vector<std::string>{"dba", "oncall"}));
  // Without the prefix rule, three URIs are ambiguous.
  EXPECT_EQ(refusal(cert.get(), by(CertificatePersonField::SanUri)),
            "client certificate has 3 SAN URIs; pgwarden needs exactly one to name the person");
}

}  // namespace
