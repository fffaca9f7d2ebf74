"""The identity helpers make what they claim: certificates with (and
without) their fields that chain to the CA, and tokens that PyJWT verifies
against the JWKS file, or refuses for the one intended reason. No
PostgreSQL needed."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from identity_helpers import (AUDIENCE, ISSUER, IdentityCa, TokenIssuer, alg_none_token, decode_claims,
                              read_cert, san_emails, tampered_token, write_jwks)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return IdentityCa(tmp_path_factory.mktemp("identity"))


@pytest.fixture(scope="module")
def issuers():
    return TokenIssuer("rsa-1", "RS256"), TokenIssuer("ec-1", "ES256")


def signed_by_ca(ca, path) -> bool:
    cert = read_cert(path)
    ca.key.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    return cert.issuer == ca.cert.subject


def test_person_certificate_has_san_email_and_chains_to_ca(ca):
    cert, key = ca.person_cert("alice", email="alice@example.com", cn="Alice")
    assert san_emails(cert) == ["alice@example.com"]
    assert signed_by_ca(ca, cert)
    assert key.stat().st_mode & 0o077 == 0


def test_certificate_without_san_email_has_only_cn(ca):
    cert, _ = ca.person_cert("cn-only", cn="alice")
    assert san_emails(cert) == []
    assert read_cert(cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    no_cn, _ = ca.person_cert("email-only", email="bob@example.com")
    assert read_cert(no_cn).subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []


def test_group_fields(ca):
    cert, _ = ca.person_cert("bob", email="bob@example.com", ous=("juniors",),
                             uri="spiffe://example.com/bob", group_uris=("urn:pgwarden:group:oncall",))
    c = read_cert(cert)
    assert [a.value for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["juniors"]
    uris = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert uris == ["spiffe://example.com/bob", "urn:pgwarden:group:oncall"]


def test_server_certificate_names_localhost(ca):
    cert, _ = ca.server_cert()
    san = read_cert(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert signed_by_ca(ca, cert)


def keys_of(path):
    return {k["kid"]: jwt.PyJWK(k) for k in json.loads(path.read_text())["keys"]}


def verify(token, keys):
    kid = jwt.get_unverified_header(token).get("kid")
    return jwt.decode(token, keys[kid].key, algorithms=["RS256", "ES256"], audience=AUDIENCE, issuer=ISSUER)


def test_tokens_verify_against_the_jwks(tmp_path, issuers):
    keys = keys_of(write_jwks(tmp_path / "jwks.json", *issuers))
    assert set(keys) == {"rsa-1", "ec-1"}
    for issuer in issuers:
        token = issuer.token("alice", groups=["dba", "oncall"])
        assert jwt.get_unverified_header(token)["alg"] == issuer.algorithm
        claims = verify(token, keys)
        assert claims["sub"] == "alice" and claims["groups"] == ["dba", "oncall"]
    email = issuers[0].token("alice@example.com", person_claim="email", groups="dba oncall")
    assert verify(email, keys)["email"] == "alice@example.com"


def test_jwks_has_no_private_members(tmp_path, issuers):
    for key in json.loads(write_jwks(tmp_path / "jwks.json", *issuers).read_text())["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


@pytest.mark.parametrize("variant,error", [
    ("expired_token", jwt.ExpiredSignatureError),
    ("not_yet_valid_token", jwt.ImmatureSignatureError),
    ("wrong_audience_token", jwt.InvalidAudienceError),
    ("wrong_issuer_token", jwt.InvalidIssuerError),
])
def test_each_bad_variant_fails_for_its_reason(tmp_path, issuers, variant, error):
    keys = keys_of(write_jwks(tmp_path / "jwks.json", *issuers))
    for issuer in issuers:
        with pytest.raises(error):
            verify(getattr(issuer, variant)(), keys)


def test_unknown_kid_alg_none_and_tampering(tmp_path, issuers):
    keys = keys_of(write_jwks(tmp_path / "jwks.json", *issuers))
    rsa_issuer = issuers[0]
    assert jwt.get_unverified_header(rsa_issuer.unknown_kid_token())["kid"] not in keys
    none = alg_none_token(rsa_issuer.claims())
    assert jwt.get_unverified_header(none)["alg"] == "none" and none.endswith(".")
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(none, keys["rsa-1"].key, algorithms=["RS256"], audience=AUDIENCE)
    good = rsa_issuer.token("bob")
    forged = tampered_token(good, sub="postgres")
    assert decode_claims(forged)["sub"] == "postgres"
    assert forged.rsplit(".", 1)[1] == good.rsplit(".", 1)[1]
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged, keys)


def test_token_without_kid(issuers):
    token = issuers[1].sign(issuers[1].claims(), kid=None)
    assert "kid" not in jwt.get_unverified_header(token)
