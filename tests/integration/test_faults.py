"""Regression tests for four compatibility faults, each as a client sees it:

1. A relayed SASL mechanism list offers the client only what it can complete
   over its own hop: a plaintext client behind `auth: passthrough` in front of
   a TLS server that offers SCRAM-SHA-256-PLUS logs in with SCRAM-SHA-256.
2. Clients see the server's real backend pid: pg_backend_pid(), a NOTIFY's
   sender and pg_terminate_backend agree with what the driver reports.
3. A client that sends Terminate or garbage before its StartupMessage, or
   connects and closes at once, sees what PostgreSQL does: the connection
   closed without an ErrorResponse.
4. TLS records to clients are no larger than PostgreSQL's own (it writes at
   most 8 kB at a time), and psycopg reads 50 COPY TO results over TLS
   without hanging.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import asyncpg
import psycopg
import pytest

import harness
from harness import SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, RawClient, client_env, startup_packet
from tls_records import RecordingTlsSocket

pytestmark = pytest.mark.proxy_only

AUTH_SASL = 10
NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
JDBC_DIR = Path(__file__).resolve().parents[1] / "clients" / "jdbc"


@pytest.fixture(scope="module")
def passthrough_proxy(tls_postgres, pki, proxy_cert, workdir):
    """auth: passthrough, upstream.tls: prefer in front of the ssl=on
    server (which offers SCRAM-SHA-256-PLUS), TLS offered to clients."""
    cert, key = proxy_cert
    proxy = harness.Pgwarden(workdir, tls_postgres.host, tls_postgres.port, name="faults-passthrough")
    proxy.config_path.write_text(
        f"listen: 127.0.0.1:{proxy.port}\n"
        f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: prefer }}\n"
        f"tls: {{ cert: {cert}, key: {key} }}\nauth: passthrough\n")
    proxy.start()
    yield proxy
    proxy.stop()


def sasl_mechanisms(client: RawClient, user: str) -> list[str]:
    """Sends a StartupMessage and returns the mechanisms of the
    AuthenticationSASL request that answers it."""
    client.send(startup_packet({"user": user, "database": "postgres"}))
    while True:
        kind, payload = client.read_message()
        assert kind != b"E", harness.error_fields(payload)
        if kind == b"R":
            (code,) = struct.unpack("!I", payload[:4])
            assert code == AUTH_SASL, code
            return [m.decode() for m in payload[4:].split(b"\0") if m]


def tls_raw_client(proxy, pki) -> RawClient:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    raw = socket.create_connection((proxy.host, proxy.port), timeout=10)
    raw.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
    assert raw.recv(1) == b"S"
    return RawClient(None, sock=context.wrap_socket(raw, server_hostname="localhost"))


# ---------------------------------------------------------------------------
# Fault 1: the relayed SASL mechanism list.

# A plaintext psycopg client, passthrough, upstream TLS preferred (and so
# used): the SCRAM user logs in, and the server saw a TLS connection.
def test_plaintext_client_logs_in_with_scram_behind_upstream_tls(passthrough_proxy):
    dsn = passthrough_proxy.endpoint.dsn(user=SCRAM_USER, password=SCRAM_PASSWORD, sslmode="disable")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert not conn.info.pgconn.ssl_in_use
        row = conn.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (SCRAM_USER, True)


# The same with psql, the way a person connects.
def test_psql_over_plaintext_logs_in_with_scram_behind_upstream_tls(passthrough_proxy):
    done = subprocess.run(["psql", "-X", "-A", "-t", passthrough_proxy.endpoint.dsn(user=SCRAM_USER),
                           "-c", "SELECT current_user"], capture_output=True, text=True, timeout=60,
                          env=client_env(PGPASSWORD=SCRAM_PASSWORD))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == SCRAM_USER


# On the wire: the server offers SCRAM-SHA-256-PLUS and SCRAM-SHA-256 on its
# TLS link; a plaintext client is offered SCRAM-SHA-256 only, as PostgreSQL
# offers it to a plaintext client.
def test_plaintext_client_is_offered_no_channel_binding(passthrough_proxy, tls_postgres):
    with socket.create_connection((tls_postgres.host, tls_postgres.port), timeout=10) as raw:
        raw.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert raw.recv(1) == b"S"
        direct = RawClient(None, sock=ssl._create_unverified_context().wrap_socket(raw))
        assert sorted(sasl_mechanisms(direct, SCRAM_USER)) == ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]
    with RawClient(tls_postgres.endpoint) as direct_plain:
        expected = sasl_mechanisms(direct_plain, SCRAM_USER)
    with RawClient(passthrough_proxy.endpoint) as client:
        assert sasl_mechanisms(client, SCRAM_USER) == expected == ["SCRAM-SHA-256"]


# A TLS client behind passthrough is never offered SCRAM-SHA-256-PLUS either:
# its binding would be to pgwarden's certificate, which the server rejects.
def test_tls_client_is_offered_no_channel_binding_in_passthrough(passthrough_proxy, pki):
    client = tls_raw_client(passthrough_proxy, pki)
    with client:
        assert sasl_mechanisms(client, SCRAM_USER) == ["SCRAM-SHA-256"]


# ---------------------------------------------------------------------------
# Fault 2: the backend pid clients see.

# psycopg's backend pid (from BackendKeyData) is pg_backend_pid().
def test_psycopg_backend_pid_is_the_servers(pgwarden):
    with psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as conn:
        assert conn.info.backend_pid == conn.execute("SELECT pg_backend_pid()").fetchone()[0]


# asyncpg's get_server_pid() is pg_backend_pid().
def test_asyncpg_backend_pid_is_the_servers(pgwarden):
    async def main():
        conn = await asyncpg.connect(host=pgwarden.host, port=pgwarden.port, user=SUPERUSER, database="postgres",
                                     ssl=False, timeout=10)
        try:
            return conn.get_server_pid(), await conn.fetchval("SELECT pg_backend_pid()")
        finally:
            await conn.close()
    reported, actual = asyncio.run(main())
    assert reported == actual


# node-postgres's processID is pg_backend_pid(); so is the pid of a
# NOTIFY it receives from itself.
def test_node_postgres_backend_pid_is_the_servers(pgwarden):
    out = run_node_tool({"mode": "pid", "host": pgwarden.host, "port": pgwarden.port, "user": SUPERUSER,
                         "database": "postgres"})
    assert out["process_id"] == out["backend_pid"] == out["notify_pid"]


# pgJDBC's getBackendPID() is pg_backend_pid(); so is the pid of a NOTIFY
# it receives from itself.
def test_jdbc_backend_pid_is_the_servers(pgwarden):
    from jdbc_client import DRIVER_JAR, jdbc_url
    java = shutil.which("java")
    assert java and DRIVER_JAR.exists(), "java or pgJDBC is missing: run scripts/install-deps.sh"
    done = subprocess.run([java, "-cp", str(DRIVER_JAR), str(JDBC_DIR / "BackendPid.java"),
                           jdbc_url(pgwarden.host, pgwarden.port, sslmode="disable"), SUPERUSER],
                          env=client_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["driver_pid"] == out["backend_pid"] == out["notify_pid"], out


# A NOTIFY's pid is the notifier's backend pid as its own driver reports it.
def test_notify_names_the_notifiers_pid(pgwarden):
    dsn = pgwarden.endpoint.dsn()
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn, autocommit=True) as notifier:
        received = []
        listener.add_notify_handler(received.append)
        listener.execute("LISTEN matrix_fault_2")
        notifier.execute("NOTIFY matrix_fault_2, 'hello'")
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
            listener.execute("SELECT 1")   # psycopg reads pending notifications with a result
        assert received, "the NOTIFY did not arrive"
        notify = received[0]
        assert (notify.channel, notify.payload) == ("matrix_fault_2", "hello")
        assert notify.pid == notifier.info.backend_pid
        assert notify.pid != listener.info.backend_pid


# pg_terminate_backend of the driver's own pid ends that session, and only
# that one: another session through pgwarden and one straight to the server
# keep working.
def test_terminate_own_backend_ends_only_that_session(pgwarden, postgres):
    dsn = pgwarden.endpoint.dsn()
    with psycopg.connect(dsn, autocommit=True) as victim, psycopg.connect(dsn, autocommit=True) as other, \
            postgres.endpoint.connect(autocommit=True) as direct:
        pid = victim.info.backend_pid
        with pytest.raises(psycopg.OperationalError) as excinfo:
            victim.execute("SELECT pg_terminate_backend(%s)", [pid])
            victim.execute("SELECT 1")   # the termination may arrive with the next statement
        assert "terminating connection due to administrator command" in str(excinfo.value)
        assert other.execute("SELECT 'still here'").fetchone() == ("still here",)
        assert direct.execute("SELECT 'still here'").fetchone() == ("still here",)
        assert direct.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() == (0,)


# With auth: scram, a server connection outlives its client in the pool and
# serves the next one: the pid the second client sees is the server's, and
# the first client's cancel key, kept after it left, cancels nothing of the
# second client's (as a new backend would not be cancelled by an old key).
def test_a_departed_clients_cancel_key_cannot_cancel_the_next_client(postgres, workdir):
    secret = postgres.psql_admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{SCRAM_USER}'").strip()
    userlist = workdir / "faults-pool-userlist.txt"
    userlist.write_text(f'"{SCRAM_USER}" "{secret}"\n')
    proxy = harness.Pgwarden(workdir, postgres.host, postgres.port, name="faults-pool")
    proxy.config_path.write_text(f"listen: 127.0.0.1:{proxy.port}\n"
                                 f"upstream: {{ host: {postgres.host}, port: {postgres.port}, tls: disable }}\n"
                                 f"auth: {{ mode: scram, auth_file: {userlist} }}\n")
    proxy.start()
    dsn = proxy.endpoint.dsn(user=SCRAM_USER, password=SCRAM_PASSWORD)
    try:
        with psycopg.connect(dsn, autocommit=True) as first:
            first_pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
            old_key = first.pgconn.get_cancel()
        deadline = time.monotonic() + 10
        with postgres.endpoint.connect(autocommit=True) as admin:
            while admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [first_pid]).fetchone() \
                    != ("DISCARD ALL",):
                assert time.monotonic() < deadline, "the server connection was not pooled"
                time.sleep(0.05)
        with psycopg.connect(dsn, autocommit=True) as second:
            assert second.execute("SELECT pg_backend_pid()").fetchone()[0] == first_pid   # reused
            sent = []
            timer = threading.Timer(0.3, lambda: sent.append(old_key.cancel()))
            timer.start()
            try:
                assert second.execute("SELECT 'slept' FROM pg_sleep(1.5)").fetchone() == ("slept",)
            finally:
                timer.join()
            assert sent == [None]   # the CancelRequest went out (PQcancel succeeded)
    finally:
        proxy.stop()


# ---------------------------------------------------------------------------
# Fault 3: bytes before the StartupMessage.

EARLY_BYTES = {
    # Terminate ('X', Int32 4): as a startup packet, a length of 0x58000000.
    "terminate": b"X\x00\x00\x00\x04",
    # An HTTP request: as a startup packet, a length of 0x47455420.
    "garbage": b"GET / HTTP/1.1\r\nHost: db\r\n\r\n",
    # A length below the minimum of 8.
    "short-length": b"\x00\x00\x00\x04\x00\x03\x00\x00",
}


def answer_to(endpoint: harness.Endpoint, data: bytes) -> tuple[bool, bytes]:
    """(closed within 5 s, every byte received) after sending `data`."""
    with RawClient(endpoint) as client:
        client.send(data)
        return client.wait_closed(5)


# pgwarden answers as PostgreSQL does: it closes without a byte (no
# ErrorResponse), and goes on serving other clients.
@pytest.mark.parametrize("case", list(EARLY_BYTES))
def test_bytes_before_startup_get_what_postgres_gives(pgwarden, postgres, case):
    direct = answer_to(postgres.endpoint, EARLY_BYTES[case])
    assert direct == (True, b"")
    assert answer_to(pgwarden.endpoint, EARLY_BYTES[case]) == direct
    with psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# Clients that connect and close at once (port checks, load balancer
# probes) cost the server nothing: it is not even connected to, as it would
# log each one ("incomplete startup packet"), and pgwarden goes on serving.
def test_connect_and_close_at_once_never_reaches_the_server(passthrough_proxy, tls_postgres):
    def received():
        return tls_postgres.log_path.read_text(errors="replace").count("connection received:")
    before = received()
    for _ in range(20):
        socket.create_connection((passthrough_proxy.host, passthrough_proxy.port), timeout=10).close()
    time.sleep(0.5)
    assert received() == before
    with psycopg.connect(passthrough_proxy.endpoint.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------
# Fault 4: TLS record sizes to clients, and psycopg's COPY over TLS.

TWENTY_COLUMNS = ("SELECT g, g::text, md5(g::text), g * 1.5, g::numeric / 7, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', date '2024-01-01' + g, "
                  "g % 2 = 0, repeat('x', g % 97), array[g, g + 1], json_build_object('g', g), "
                  "interval '1 second' * g, inet '10.0.0.1' + g, uuid_in(md5(g::text)::cstring), "
                  "'caf\u00e9 \u4e2d', g::bigint * 1000000007, point(g, g), B'1010', NULL::text, "
                  "decode(md5(g::text), 'hex') FROM generate_series(1, {rows}) g")


@pytest.fixture(scope="module", params=["verify-full", "disable"], ids=["upstream-tls", "upstream-plaintext"])
def tls_proxy(request, tls_postgres, pki, proxy_cert, workdir):
    """TLS to clients; to the ssl=on server verify-full, or plaintext (then
    pgwarden reads the server's output in larger pieces than TLS records)."""
    cert, key = proxy_cert
    proxy = harness.Pgwarden(workdir, tls_postgres.host, tls_postgres.port, name=f"faults-tls-{request.param}")
    proxy.config_path.write_text(
        f"listen: 127.0.0.1:{proxy.port}\n"
        f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: {request.param}, ca: {pki.ca_cert} }}\n"
        f"tls: {{ cert: {cert}, key: {key} }}\n")
    proxy.start()
    yield proxy
    proxy.stop()


def record_sizes(host: str, port: int, pki, sql: str) -> list[int]:
    """Application-data record sizes of everything the server side sends
    while a TLS client logs in as the superuser and runs `sql`."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    sock = RecordingTlsSocket(host, port, context, "localhost")
    client = RawClient(None, sock=sock)
    try:
        assert client.login()[-1][0] == b"Z"
        answer = client.query(sql)
        assert not [p for k, p in answer if k == b"E"], answer
    finally:
        client.close()
    return sock.application_record_sizes()


# A large row and a large COPY TO: the largest TLS record pgwarden sends is
# no larger than the largest PostgreSQL sends for the same result (it
# writes at most 8 kB per send, so 8 kB plus the record overhead).
@pytest.mark.parametrize("sql", ["SELECT repeat('x', 1000000)",
                                 "COPY (" + TWENTY_COLUMNS.format(rows=3000) + ") TO STDOUT"],
                         ids=["large-row", "copy-20-columns"])
def test_tls_records_no_larger_than_postgres_writes(tls_proxy, tls_postgres, pki, sql):
    direct = record_sizes(tls_postgres.host, tls_postgres.port, pki, sql)
    proxied = record_sizes(tls_proxy.host, tls_proxy.port, pki, sql)
    assert sum(direct) > 500_000
    assert max(direct) <= 8192 + 256, max(direct)
    assert max(proxied) <= max(direct), (max(proxied), max(direct))


# psycopg 3 over TLS reads COPY (SELECT <20 columns>) TO STDOUT 50 times in
# a row; each read must come within 10 s, so a hang fails fast.
def test_psycopg_async_reads_copy_to_over_tls_50_times(tls_proxy, pki):
    async def main():
        dsn = tls_proxy.endpoint.dsn(host="localhost", hostaddr="127.0.0.1", sslmode="verify-full",
                                     sslrootcert=str(pki.ca_cert))
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        sizes = []
        try:
            for _ in range(50):
                total = 0
                async with conn.cursor() as cur:
                    async with cur.copy("COPY (" + TWENTY_COLUMNS.format(rows=2000) + ") TO STDOUT") as copy:
                        while True:
                            data = await asyncio.wait_for(copy.read(), 10)
                            if not data:
                                break
                            total += len(data)
                sizes.append(total)
        finally:
            await conn.close()
        return sizes
    sizes = asyncio.run(main())
    assert len(sizes) == 50 and len(set(sizes)) == 1 and sizes[0] > 300_000


# The same with psycopg's blocking API (libpq waits on the socket in C): a
# reader thread reports each chunk; no chunk for 10 s fails the test at once
# (closing the connection then ends the stuck read).
def test_psycopg_blocking_reads_copy_to_over_tls_50_times(tls_proxy, pki):
    import threading
    dsn = tls_proxy.endpoint.dsn(host="localhost", hostaddr="127.0.0.1", sslmode="verify-full",
                                 sslrootcert=str(pki.ca_cert))
    conn = psycopg.connect(dsn, autocommit=True)
    state = {"last": time.monotonic(), "sizes": [], "error": None}

    def read_all():
        try:
            for _ in range(50):
                total = 0
                with conn.cursor() as cur:
                    with cur.copy("COPY (" + TWENTY_COLUMNS.format(rows=2000) + ") TO STDOUT") as copy:
                        for chunk in copy:
                            total += len(chunk)
                            state["last"] = time.monotonic()
                state["sizes"].append(total)
        except Exception as e:  # noqa: BLE001 - reported below
            state["error"] = e

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    try:
        while reader.is_alive():
            reader.join(0.2)
            stalled = time.monotonic() - state["last"]
            assert stalled < 10, f"no COPY data for {stalled:.0f} s after {len(state['sizes'])} complete COPYs"
    finally:
        if reader.is_alive():
            conn.pgconn.finish()
        else:
            conn.close()
    assert state["error"] is None, state["error"]
    sizes = state["sizes"]
    assert len(sizes) == 50 and len(set(sizes)) == 1 and sizes[0] > 300_000


def run_node_tool(settings: dict) -> dict:
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/install-deps.sh"
    done = subprocess.run([node, "tools.js", json.dumps(settings)], cwd=NODE_DIR, env=client_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)
