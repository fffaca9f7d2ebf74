"""`auth: scram`: pgwarden authenticates clients itself (SCRAM-SHA-256 and
-PLUS bound to its own certificate, or md5) against secrets from an
auth_file or auth_query, then logs into a TLS PostgreSQL as the same user by
reusing the ClientKey from the client's proof. This is what makes SCRAM with
libpq's default channel binding work across two TLS hops."""

import struct
import subprocess

import psycopg
import pytest

from harness import (MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, RawClient, client_env,
                     error_fields, startup_packet)

pytestmark = pytest.mark.proxy_only

AUTH_SASL, AUTH_MD5 = 10, 5


@pytest.fixture(scope="module")
def secrets(tls_postgres):
    """The users' stored secrets as PostgreSQL has them (pg_authid.rolpassword)."""
    rows = tls_postgres.psql_admin(
        f"SELECT rolname || ' ' || rolpassword FROM pg_authid WHERE rolname IN ('{SCRAM_USER}', '{MD5_USER}')")
    return dict(line.split(" ", 1) for line in rows.split("\n") if line)


def userlist(entries: dict) -> str:
    return "".join(f'"{user}" "{secret}"\n' for user, secret in entries.items())


@pytest.fixture
def scram_proxy(pgwarden_factory, tls_postgres, pki, proxy_cert, secrets, workdir):
    """pgwarden with TLS on both hops and auth: scram; `auth` replaces the
    auth section, `tls_extra` adds to the tls section."""
    def start(auth=None, tls_extra="", users=None):
        auth_file = workdir / "userlist.txt"
        auth_file.write_text("; pgwarden test users\n" + userlist(users if users is not None else secrets))
        cert, key = proxy_cert
        return pgwarden_factory(
            "listen: 127.0.0.1:{listen_port}\n"
            f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: verify-full, ca: {pki.ca_cert} }}\n"
            f"tls: {{ cert: {cert}, key: {key}{tls_extra} }}\n"
            + (auth or f"auth: {{ mode: scram, auth_file: {auth_file} }}\n"),
            upstream_port=tls_postgres.port)
    return start


def dsn(proxy, pki, user=SCRAM_USER, password=SCRAM_PASSWORD, **params):
    base = {"sslmode": "verify-full", "sslrootcert": str(pki.ca_cert), "host": "localhost"}
    base.update(params)
    return proxy.endpoint.dsn(user=user, password=password, **base)


def identity(conn):
    return conn.execute("SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())").fetchone()


def connections_received(server) -> int:
    return server.log_path.read_text(errors="replace").count("connection received:")


# libpq with its default channel binding (prefer) logs in as a SCRAM user
# through two TLS hops; the server sees the same user, over TLS.
@pytest.mark.parametrize("sslmode", ["require", "verify-full"])
def test_scram_user_logs_in_across_two_tls_hops(scram_proxy, pki, sslmode):
    proxy = scram_proxy()
    with psycopg.connect(dsn(proxy, pki, sslmode=sslmode), autocommit=True) as conn:
        assert conn.info.pgconn.ssl_in_use
        assert identity(conn) == (SCRAM_USER, True)


# channel_binding=require succeeds only with SCRAM-SHA-256-PLUS bound to the
# certificate the client actually saw: pgwarden's.
def test_channel_binding_required_by_the_client(scram_proxy, pki):
    proxy = scram_proxy()
    with psycopg.connect(dsn(proxy, pki, channel_binding="require"), autocommit=True) as conn:
        assert identity(conn) == (SCRAM_USER, True)


# The psql command line, the way a person connects.
def test_psql_with_channel_binding_required(scram_proxy, pki):
    proxy = scram_proxy()
    out = subprocess.run(["psql", "-X", "-A", "-t", dsn(proxy, pki, password=None, channel_binding="require"),
                          "-c", "SELECT current_user"], capture_output=True, text=True, timeout=60,
                         env=client_env(PGPASSWORD=SCRAM_PASSWORD))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == SCRAM_USER


# A wrong password gets 28P01 from pgwarden itself: the server never even
# receives a connection for it.
def test_wrong_password_is_refused_by_pgwarden(scram_proxy, pki, tls_postgres):
    proxy = scram_proxy()
    before = connections_received(tls_postgres)
    with pytest.raises(psycopg.OperationalError) as excinfo:
        psycopg.connect(dsn(proxy, pki, password="not-the-password"))
    assert f'password authentication failed for user "{SCRAM_USER}"' in str(excinfo.value)
    assert connections_received(tls_postgres) == before
    assert excinfo.value.sqlstate in (None, "28P01")


# The same refusal, read off the wire: FATAL 28P01 after a full SCRAM exchange.
def test_wrong_password_error_fields(scram_proxy):
    proxy = scram_proxy(tls_extra="")
    with RawClient(proxy.endpoint) as client:
        seen = client.login(user=SCRAM_USER, password="wrong")
    fields = error_fields(seen[-1][1])
    assert seen[-1][0] == b"E"
    assert (fields["V"], fields["C"]) == ("FATAL", "28P01")


# A user pgwarden has no secret for goes through the same exchange and gets
# the same 28P01, so a client cannot tell unknown users from wrong passwords.
def test_unknown_user_looks_like_a_wrong_password(scram_proxy, pki):
    proxy = scram_proxy()
    with RawClient(proxy.endpoint) as client:
        seen = client.login(user="nobody_here", password="whatever")
    requests = [struct.unpack("!I", p[:4])[0] for k, p in seen if k == b"R"]
    assert requests[0] == AUTH_SASL
    fields = error_fields(seen[-1][1])
    assert fields["C"] == "28P01"
    assert fields["M"] == 'password authentication failed for user "nobody_here"'


# tls.required refuses a plaintext client before any authentication.
def test_plaintext_refused_when_tls_required(scram_proxy, pki):
    proxy = scram_proxy(tls_extra=", required: true")
    with pytest.raises(psycopg.OperationalError, match="accepts only TLS connections"):
        psycopg.connect(proxy.endpoint.dsn(user=SCRAM_USER, password=SCRAM_PASSWORD, sslmode="disable"))
    with psycopg.connect(dsn(proxy, pki), autocommit=True) as conn:
        assert identity(conn) == (SCRAM_USER, True)


# An md5 secret in the auth file: pgwarden asks the client for md5 and
# answers the server's md5 request from the stored hash.
def test_md5_user_from_the_auth_file(scram_proxy, pki):
    proxy = scram_proxy()
    with RawClient(proxy.endpoint) as client:
        seen = client.login(user=MD5_USER, password=MD5_PASSWORD)
        assert [struct.unpack("!I", p[:4])[0] for k, p in seen if k == b"R"][0] == AUTH_MD5
        assert seen[-1][0] == b"Z"
    with psycopg.connect(dsn(proxy, pki, user=MD5_USER, password=MD5_PASSWORD), autocommit=True) as conn:
        assert identity(conn) == (MD5_USER, True)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn(proxy, pki, user=MD5_USER, password="wrong"))


# auth_query: secrets come from the server itself (pg_shadow, as pgbouncer
# does), looked up as auth_user; no auth file needed for the user.
def test_auth_query_looks_up_the_secret(scram_proxy, pki):
    proxy = scram_proxy(auth="auth: { mode: scram, auth_user: harness, "
                             "auth_query: 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1' }\n")
    with psycopg.connect(dsn(proxy, pki), autocommit=True) as conn:
        assert identity(conn) == (SCRAM_USER, True)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn(proxy, pki, password="wrong"))


# A secret in the auth file that is not the server's (the password changed
# on the server): the client proves the old password to pgwarden, but the
# upstream login fails with 08006 saying the secrets differ.
def test_stale_secret_names_the_mismatch(scram_proxy, pki, tls_postgres, secrets):
    proxy = scram_proxy(users={SCRAM_USER: secrets[SCRAM_USER]})
    tls_postgres.psql_admin(f"ALTER ROLE {SCRAM_USER} PASSWORD 'changed-on-the-server'")
    try:
        with RawClient(proxy.endpoint) as client:
            seen = client.login(user=SCRAM_USER, password=SCRAM_PASSWORD)
        fields = error_fields(seen[-1][1])
        assert fields["C"] == "08006"
        assert "does not match the server's" in fields["M"]
    finally:
        tls_postgres.psql_admin(f"ALTER ROLE {SCRAM_USER} PASSWORD '{SCRAM_PASSWORD}'")


# A protocol 3.2 client with a `_pq_.` option: pgwarden answers as
# PostgreSQL does (NegotiateProtocolVersion 3.0 naming the option) before
# its own authentication request, and the login completes.
def test_pgwarden_negotiates_the_protocol_version(scram_proxy):
    proxy = scram_proxy()
    with RawClient(proxy.endpoint) as client:
        client.send(startup_packet({"user": SUPERUSER, "database": "postgres", "_pq_.extension": "1"},
                                   version=(3 << 16) | 2))
        kind, payload = client.read_message()
        assert kind == b"v"
        newest, count = struct.unpack("!II", payload[:8])
        assert (newest, count) == (3 << 16, 1)
        assert payload[8:].rstrip(b"\0") == b"_pq_.extension"
        kind, payload = client.read_message()
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == AUTH_SASL


# With auth: scram pgwarden writes the upstream StartupMessage itself; a
# connect rule with read_only: true opens the session read-only there too,
# and the session cannot turn it off.
def test_read_only_rule_opens_the_scram_session_read_only(scram_proxy, pki, workdir, tls_postgres):
    # The secret as the server has it now (an earlier test sets the password again, with a new salt).
    secret = tls_postgres.psql_admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{SCRAM_USER}'").strip()
    auth_file = workdir / "userlist.txt"
    proxy = scram_proxy(users={SCRAM_USER: secret},
                        auth=f"auth: {{ mode: scram, auth_file: {auth_file} }}\n"
                             "rules:\n"
                             f"  - {{ name: ro, on: connect, when: {{ user: [{SCRAM_USER}] }}, action: allow, "
                             "read_only: true }\n")
    with psycopg.connect(dsn(proxy, pki), autocommit=True) as conn:
        assert identity(conn) == (SCRAM_USER, True)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.Error) as info:
            conn.execute("CREATE TEMP TABLE scram_ro (a int)")
        assert info.value.sqlstate == "25006", info.value
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SET default_transaction_read_only = off")
        assert info.value.sqlstate == "42501" and "pgwarden" in str(info.value), info.value
