"""Identities of people for the integration tests, made by the tests
themselves: a certificate authority with server and person certificates,
JWKS files and signed tokens (PyJWT over python3-cryptography).

Nothing here needs PostgreSQL or pgwarden; test_identity_helpers.py checks
that each helper makes what it says."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import time
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ISSUER = "https://idp.pgwarden.test"
AUDIENCE = "pgwarden"


def _write_key(key, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)  # libpq refuses a client key others can read
    return path


def _name(cn: str | None = None, ous: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pgwarden tests")]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


class IdentityCa:
    """A throwaway CA (P-256) in `directory`: ca.crt and ca.key, and the
    certificates it issues, valid for two days."""

    def __init__(self, directory: Path, name: str = "people-ca"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(f"pgwarden test {name}")
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = self.dir / f"{name}.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.key_path = _write_key(self.key, self.dir / f"{name}.key")

    def _issue(self, file_name: str, subject: x509.Name, sans: list, usage) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = self.dir / f"{file_name}.crt"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, _write_key(key, self.dir / f"{file_name}.key")

    def server_cert(self, file_name: str = "server") -> tuple[Path, Path]:
        """(cert, key) for pgwarden's listener: localhost and 127.0.0.1."""
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        return self._issue(file_name, _name("localhost"), sans, ExtendedKeyUsageOID.SERVER_AUTH)

    def person_cert(self, file_name: str, *, email: str | None = None, cn: str | None = None,
                    uri: str | None = None, ous: tuple[str, ...] = (),
                    group_uris: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """(cert, key) of a client certificate naming a person by SAN e-mail,
        subject CN and/or SAN URI; leave a field out to make a certificate
        without it. `ous` become subject OUs, `group_uris` extra SAN URIs."""
        sans = []
        if email is not None:
            sans.append(x509.RFC822Name(email))
        if uri is not None:
            sans.append(x509.UniformResourceIdentifier(uri))
        sans += [x509.UniformResourceIdentifier(g) for g in group_uris]
        return self._issue(file_name, _name(cn, ous), sans, ExtendedKeyUsageOID.CLIENT_AUTH)


def read_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def san_emails(path: Path) -> list[str]:
    """The SAN e-mail addresses of the certificate at `path`."""
    try:
        san = read_cert(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.RFC822Name)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64url(value: int, length: int | None = None) -> str:
    return _b64url(value.to_bytes(length or (value.bit_length() + 7) // 8, "big"))


class TokenIssuer:
    """An identity provider's signing key: RSA 2048 for RS256 or P-256 for
    ES256, named `kid` in its JWK and in the tokens it signs."""

    def __init__(self, kid: str, algorithm: str = "RS256", issuer: str = ISSUER):
        assert algorithm in ("RS256", "ES256")
        self.kid, self.algorithm, self.issuer = kid, algorithm, issuer
        self.key = (rsa.generate_private_key(65537, 2048) if algorithm == "RS256"
                    else ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict:
        """The public JWK of the key (no private members)."""
        numbers = self.key.public_key().public_numbers()
        if self.algorithm == "RS256":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": _int_b64url(numbers.n), "e": _int_b64url(numbers.e)}
        return {"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
                "x": _int_b64url(numbers.x, 32), "y": _int_b64url(numbers.y, 32)}

    def claims(self, person: str = "alice", *, audience=AUDIENCE, groups=None, lifetime: int = 300,
               now: float | None = None, person_claim: str = "sub", **extra) -> dict:
        """Claims a valid token carries: iss, aud, the person, iat/nbf now,
        exp after `lifetime` seconds; `groups` (a list or a string) under
        "groups"; `extra` adds or replaces claims (None removes one)."""
        now = int(time.time() if now is None else now)
        claims = {"iss": self.issuer, "aud": audience, person_claim: person,
                  "iat": now, "nbf": now, "exp": now + lifetime}
        if groups is not None:
            claims["groups"] = groups
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict, *, kid: str | None = "", algorithm: str | None = None) -> str:
        """A token of `claims` signed with this key. kid "" means this key's
        kid, None leaves kid out; `algorithm` may name another header alg."""
        headers = {} if kid is None else {"kid": self.kid if kid == "" else kid}
        return jwt.encode(claims, self.key, algorithm=algorithm or self.algorithm, headers=headers)

    def token(self, person: str = "alice", **kw) -> str:
        """A valid token for `person` (see claims())."""
        return self.sign(self.claims(person, **kw))

    # The variants pgwarden must refuse, each for one reason.
    def expired_token(self, person: str = "alice", seconds_ago: int = 3600) -> str:
        return self.sign(self.claims(person, now=time.time() - seconds_ago - 300))

    def not_yet_valid_token(self, person: str = "alice", seconds_ahead: int = 3600) -> str:
        c = self.claims(person)
        c["nbf"] = c["iat"] + seconds_ahead
        c["exp"] = c["nbf"] + 300
        return self.sign(c)

    def wrong_audience_token(self, person: str = "alice", audience: str = "another-service") -> str:
        return self.sign(self.claims(person, audience=audience))

    def wrong_issuer_token(self, person: str = "alice", issuer: str = "https://evil.example") -> str:
        return self.sign(self.claims(person, iss=issuer))

    def unknown_kid_token(self, person: str = "alice", kid: str = "retired-key") -> str:
        return self.sign(self.claims(person), kid=kid)


def write_jwks(path: Path, *issuers: TokenIssuer, extra_keys: tuple[dict, ...] = ()) -> Path:
    """A JWKS file with the public keys of `issuers` (and raw `extra_keys`,
    e.g. an unsupported {"kty": "oct", ...})."""
    path = Path(path)
    path.write_text(json.dumps({"keys": [i.jwk() for i in issuers] + list(extra_keys)}, indent=2) + "\n")
    return path


def alg_none_token(claims: dict) -> str:
    """An unsigned token: header {"alg": "none"} and an empty signature."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def tampered_token(token: str, **changes) -> str:
    """`token` with its payload changed (claims replaced by `changes`) and
    the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"


def decode_claims(token: str) -> dict:
    """The payload of `token`, unverified (for assertions)."""
    return jwt.decode(token, options={"verify_signature": False})
