"""TLS on both hops: pgwarden terminates the client's TLS with its own
certificate and opens TLS to a PostgreSQL with ssl=on, verifying it the way
libpq's sslmode does. Certificates come from a throwaway CA made here."""

import socket
import ssl
import struct
import subprocess

import psycopg
import pytest

import harness
from harness import (MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, Pki, RawClient,
                     error_fields, message, startup_packet)

pytestmark = pytest.mark.proxy_only


def tls_config(tls_postgres, pki, proxy_cert, upstream="verify-full", client_tls="", extra=""):
    cert, key = proxy_cert
    return ("listen: 127.0.0.1:{listen_port}\n"
            f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: {upstream}, ca: {pki.ca_cert} }}\n"
            f"tls: {{ cert: {cert}, key: {key}{client_tls} }}\n" + extra)


@pytest.fixture
def tls_proxy(pgwarden_factory, tls_postgres, pki, proxy_cert):
    """Starts a pgwarden with TLS on both hops; keyword arguments go to tls_config."""
    def start(**kw):
        return pgwarden_factory(tls_config(tls_postgres, pki, proxy_cert, **kw), upstream_port=tls_postgres.port)
    return start


def connect(proxy, pki, **params):
    dsn = proxy.endpoint.dsn(**{"sslmode": "verify-full", "sslrootcert": str(pki.ca_cert), "host": "localhost",
                                **params})
    return psycopg.connect(dsn, autocommit=True)


def backend_ssl(conn):
    return conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]


# A libpq client verifying pgwarden's certificate (verify-full against the
# test CA, host name localhost) reaches a server that pgwarden itself reached
# over verified TLS: both hops are encrypted.
def test_verify_full_on_both_hops(tls_proxy, pki):
    proxy = tls_proxy()
    with connect(proxy, pki) as conn:
        assert conn.info.pgconn.ssl_in_use
        assert conn.execute("SELECT current_user").fetchone() == (SUPERUSER,)
        assert backend_ssl(conn) is True


# pgwarden's certificate is the one the client sees (issued for pgwarden, not
# the server's), and the client can verify it against the CA by IP address too.
def test_client_sees_pgwarden_certificate(tls_proxy, pki, proxy_cert):
    proxy = tls_proxy()
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw:
        raw.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert raw.recv(1) == b"S"
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    expected = ssl.PEM_cert_to_DER_cert(proxy_cert[0].read_text())
    assert der == expected


# md5 is relayed unchanged across two TLS hops.
def test_md5_user_over_two_tls_hops(tls_proxy, pki):
    proxy = tls_proxy()
    with connect(proxy, pki, user=MD5_USER, password=MD5_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (MD5_USER,)
        assert backend_ssl(conn) is True


# In passthrough, SCRAM with libpq's default channel binding cannot cross two
# TLS hops; the client is told why and what to configure instead.
def test_passthrough_scram_over_two_tls_hops_explains_channel_binding(tls_proxy, pki):
    proxy = tls_proxy()
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(proxy, pki, user=SCRAM_USER, password=SCRAM_PASSWORD)
    text = str(excinfo.value)
    assert "channel binding" in text
    assert "auth: scram" in text


# Without channel binding (channel_binding=disable) the same SCRAM exchange
# passes through unchanged.
def test_passthrough_scram_without_channel_binding(tls_proxy, pki):
    proxy = tls_proxy()
    with connect(proxy, pki, user=SCRAM_USER, password=SCRAM_PASSWORD, channel_binding="disable") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (SCRAM_USER,)


# tls.required refuses a plaintext client with 28000 and a message naming
# the fix; a TLS client still gets in.
def test_required_tls_refuses_plaintext(tls_proxy, pki):
    proxy = tls_proxy(client_tls=", required: true")
    with pytest.raises(psycopg.OperationalError) as excinfo:
        psycopg.connect(proxy.endpoint.dsn(sslmode="disable"))
    assert "accepts only TLS connections" in str(excinfo.value)
    with connect(proxy, pki) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# Without tls: configured, pgwarden answers SSLRequest with 'N' and sslmode=require fails
# in the client, as against a server without TLS.
def test_no_client_tls_answers_n(pgwarden_factory, tls_postgres, pki):
    proxy = pgwarden_factory("listen: 127.0.0.1:{listen_port}\n"
                             f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: require }}\n",
                             upstream_port=tls_postgres.port)
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw:
        raw.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert raw.recv(1) == b"N"
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        psycopg.connect(proxy.endpoint.dsn(sslmode="require"))
    # ... while the upstream hop is still TLS.
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        assert backend_ssl(conn) is True


# verify-full against the wrong host name fails the client's connection with
# 08006 naming the cause; so does a CA that did not sign the server's certificate.
@pytest.mark.parametrize("case", ["hostname", "ca"])
def test_upstream_verification_failure_is_named(pgwarden_factory, tls_postgres, pki, proxy_cert, workdir, case):
    if case == "hostname":
        upstream = (f"{{ host: 127.0.0.1, port: {tls_postgres.port}, tls: verify-full, ca: {pki.ca_cert}, "
                    "server_name: db.example.org }")
        causes = ["hostname mismatch"]
    else:
        other = Pki(workdir / "other-pki", name="other-ca")
        upstream = f"{{ host: 127.0.0.1, port: {tls_postgres.port}, tls: verify-ca, ca: {other.ca_cert} }}"
        # OpenSSL's wording depends on whether the server also sent its CA.
        causes = ["unable to get local issuer certificate", "self-signed certificate in certificate chain"]
    proxy = pgwarden_factory("listen: 127.0.0.1:{listen_port}\n" f"upstream: {upstream}\n",
                             upstream_port=tls_postgres.port)
    with RawClient(proxy.endpoint) as client:
        kind, payload = client.login()[-1]
    assert kind == b"E"
    fields = error_fields(payload)
    assert fields["C"] == "08006"
    assert "certificate verify failed" in fields["M"], fields["M"]
    assert any(cause in fields["M"] for cause in causes), fields["M"]


# verify-ca accepts the server's certificate whatever name it carries.
def test_upstream_verify_ca_ignores_the_name(pgwarden_factory, tls_postgres, pki):
    upstream = (f"{{ host: 127.0.0.1, port: {tls_postgres.port}, tls: verify-ca, ca: {pki.ca_cert}, "
                "server_name: db.example.org }")
    proxy = pgwarden_factory("listen: 127.0.0.1:{listen_port}\n" f"upstream: {upstream}\n",
                             upstream_port=tls_postgres.port)
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        assert backend_ssl(conn) is True


def direct_tls_context(pki, alpn=("postgresql",)):
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


# PostgreSQL 17's direct TLS: the client starts with a ClientHello (ALPN
# "postgresql") instead of an SSLRequest, then logs in and queries inside TLS.
def test_direct_tls_with_alpn_runs_a_query(tls_proxy, pki):
    proxy = tls_proxy()
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw:
        with direct_tls_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "postgresql"
            client = RawClient(None, sock=tls)
            seen = client.login()
            assert seen[-1][0] == b"Z", seen
            rows = [p for k, p in client.query("SELECT 40 + 2") if k == b"D"]
            assert rows and rows[0].endswith(b"42")


# Direct TLS without ALPN is refused, as PostgreSQL 17 refuses it.
def test_direct_tls_without_alpn_is_refused(tls_proxy, pki):
    proxy = tls_proxy()
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw:
        with direct_tls_context(pki, alpn=()).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(startup_packet({"user": SUPERUSER, "database": "postgres"}))
            data = b""
            try:
                while chunk := tls.recv(4096):
                    data += chunk
            except (ssl.SSLError, ConnectionResetError):
                pass
    assert data[:1] == b"E"
    assert b"ALPN" in data


# A client that offers ALPN but not "postgresql" fails the handshake.
def test_wrong_alpn_fails_the_handshake(tls_proxy, pki):
    proxy = tls_proxy()
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw:
        raw.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert raw.recv(1) == b"S"
        with pytest.raises(ssl.SSLError):
            direct_tls_context(pki, alpn=("http/1.1",)).wrap_socket(raw, server_hostname="localhost")


# Bytes sent after the SSLRequest, before pgwarden's answer, are plaintext an
# attacker could have injected (CVE-2021-23214): the connection is closed
# without a TLS handshake and without reaching the server.
def test_bytes_after_ssl_request_close_the_connection(tls_proxy):
    proxy = tls_proxy()
    with RawClient(proxy.endpoint) as client:
        client.send(struct.pack("!II", 8, harness.SSL_REQUEST_CODE) +
                    startup_packet({"user": SUPERUSER, "database": "postgres"}) +
                    message(b"Q", b"DROP TABLE IF EXISTS injected\0"))
        closed, data = client.wait_closed(5)
    assert closed
    assert b"S" not in data[:1]
    assert b"unencrypted data after SSL request" in data


# A required client certificate: without one the handshake fails; with one
# signed by the configured CA the client logs in.
def test_client_certificate_required(tls_proxy, pki, workdir):
    proxy = tls_proxy(client_tls=f", ca: {pki.ca_cert}, client_cert: require")
    with pytest.raises(psycopg.OperationalError):
        connect(proxy, pki)
    cert, key = pki.issue("client", common_name=SUPERUSER, client=True)
    with connect(proxy, pki, sslcert=str(cert), sslkey=str(key)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# tls.min_version 1.3 refuses a client that offers at most TLS 1.2.
def test_min_version_refuses_older_clients(tls_proxy, pki):
    proxy = tls_proxy(client_tls=", min_version: '1.3'")
    with pytest.raises(psycopg.OperationalError):
        connect(proxy, pki, ssl_max_protocol_version="TLSv1.2")

    def negotiated(maximum):
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.maximum_version = maximum
        with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw:
            raw.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
            assert raw.recv(1) == b"S"
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version()

    with pytest.raises(ssl.SSLError):
        negotiated(ssl.TLSVersion.TLSv1_2)
    assert negotiated(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


# SIGHUP re-reads the certificate files: a new connection sees the new
# certificate, one opened before keeps working.
def test_sighup_rereads_certificates(pgwarden_factory, tls_postgres, pki, workdir):
    import shutil
    import signal
    import time
    cert, key = pki.issue("rotating", common_name="before")
    live_cert, live_key = workdir / "live.crt", workdir / "live.key"
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    proxy = pgwarden_factory("listen: 127.0.0.1:{listen_port}\n"
                             f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: disable }}\n"
                             f"tls: {{ cert: {live_cert}, key: {live_key} }}\n", upstream_port=tls_postgres.port)

    def served_subject():
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{proxy.port}", "-starttls",
                              "postgres", "-CAfile", str(pki.ca_cert)], input="", capture_output=True,
                             text=True, timeout=30)
        return out.stdout

    old = connect(proxy, pki)
    assert "CN = before" in served_subject()
    cert, key = pki.issue("rotated", common_name="after")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "CN = after" not in served_subject():
        assert time.monotonic() < deadline, "the new certificate was not served after SIGHUP"
        time.sleep(0.2)
    assert old.execute("SELECT 'still open'").fetchone() == ("still open",)
    old.close()
