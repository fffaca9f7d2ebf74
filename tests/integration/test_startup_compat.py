"""What a client sees from the first byte to its first ReadyForQuery, compared
with PostgreSQL itself: malformed input before the startup packet, the
mechanisms a relayed SCRAM login offers, the backend process id, TLS record
sizes, and how every startup outcome is counted and named."""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
import time

import psycopg
import pytest

import harness
from harness import (LOOPBACK, SCRAM_PASSWORD, SCRAM_USER, SSL_REQUEST_CODE, SUPERUSER, RawClient, client_env,
                     error_fields, free_port, message, startup_packet)
from ops_helpers import admin_config, sample, scrape, wait_until

pytestmark = pytest.mark.proxy_only


def first_bytes_outcome(endpoint, data: bytes) -> tuple[bool, bytes]:
    """Sends `data` as a connection's first bytes; (closed, what came back)."""
    with RawClient(endpoint) as c:
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        return c.wait_closed(timeout=5)


# A driver that gives up before its startup packet (node-postgres' connect();
# end()) sends a Terminate first; other clients send garbage or nothing. Each
# ends as it does against PostgreSQL: closed, with no ErrorResponse to raise.
@pytest.mark.parametrize("data", [
    pytest.param(message(b"X", b""), id="terminate-first"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-request"),
    pytest.param(struct.pack("!I", 3), id="length-below-minimum"),
    pytest.param(struct.pack("!II", 20000, 196608) + b"\0" * 100, id="length-above-maximum"),
    pytest.param(b"", id="connect-then-close"),
])
def test_malformed_first_bytes_end_as_against_postgresql(pgwarden, postgres, data):
    direct = first_bytes_outcome(postgres.endpoint, data)
    proxied = first_bytes_outcome(pgwarden.endpoint, data)
    assert direct == (True, b"")
    assert proxied == direct


# A protocol version neither speaks is refused with FATAL 0A000 by both.
def test_unsupported_protocol_version_gets_0A000(pgwarden, postgres):
    for endpoint in (postgres.endpoint, pgwarden.endpoint):
        with RawClient(endpoint) as c:
            c.send(startup_packet({"user": SUPERUSER}, version=4 << 16))
            kind, payload = c.read_message()
            assert kind == b"E"
            fields = error_fields(payload)
            assert (fields["V"], fields["C"]) == ("FATAL", "0A000")
            assert fields["M"].startswith("unsupported frontend protocol 4.0: server supports 3.0 to ")
            assert c.wait_closed()[0]


# ---------------------------------------------------------------------------
# The process id a client sees is its server backend's.

# pg_backend_pid() equals the pid the driver got in BackendKeyData, and the
# server knows that pid as the session's own (pg_stat_activity).
def test_backend_pid_is_the_servers(pgwarden, admin):
    with psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert conn.info.backend_pid == pid
        app = admin.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        assert app is not None


# A LISTEN connection tells its own NOTIFYs from others' by the pid in
# NotificationResponse, which PostgreSQL fills with the notifier's backend pid.
def test_notification_pid_is_the_notifiers_backend_pid(pgwarden):
    with psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as listener, \
            psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as notifier:
        got = {}
        listener.add_notify_handler(lambda note: got.__setitem__(note.payload, note.pid))
        listener.execute("LISTEN compat_channel")
        notifier.execute("NOTIFY compat_channel, 'from the other one'")
        listener.execute("NOTIFY compat_channel, 'from myself'")

        def both_arrived():
            listener.execute("SELECT 1")  # notifications are read along with a query's answer
            return len(got) == 2

        wait_until(both_arrived, timeout=5, what="both notifications")
        assert got == {"from the other one": notifier.info.backend_pid, "from myself": listener.info.backend_pid}


# pg_terminate_backend of a session's own driver-reported pid ends that
# session and no other.
def test_terminating_the_drivers_own_pid_ends_only_that_session(pgwarden):
    with psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as bystander, \
            psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as victim, \
            psycopg.connect(pgwarden.endpoint.dsn(), autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid]).fetchone()[0]
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        assert bystander.execute("SELECT 1").fetchone()[0] == 1
        assert killer.execute("SELECT 1").fetchone()[0] == 1


# A cancel still goes through pgwarden's own key: the server's pid with a key
# that is not the server's cancels nothing, the key the client got does.
def test_cancel_needs_pgwardens_key_not_the_servers(pgwarden):
    with RawClient(pgwarden.endpoint) as c:
        c.login()
        pid, key = c.backend_key
        assert c.query("SELECT pg_backend_pid()")[1][1].endswith(str(pid).encode())
        for wrong in ((pid, key ^ 1), (pid + 1, key)):
            thread = harness.cancel_later(pgwarden.endpoint, wrong, delay=0.3)
            reply = c.query("SELECT pg_sleep(1)")
            thread.join()
            assert all(kind != b"E" for kind, _ in reply), reply
        thread = harness.cancel_later(pgwarden.endpoint, (pid, key), delay=0.3)
        reply = c.query("SELECT pg_sleep(10)")
        thread.join()
        errors = [error_fields(p) for kind, p in reply if kind == b"E"]
        assert errors and errors[0]["C"] == "57014"


# ---------------------------------------------------------------------------
# A relayed SCRAM login in front of a TLS server.

@pytest.fixture(scope="module")
def minimal_proxy_before_tls_server(tls_postgres, workdir):
    """The README's minimal configuration (upstream.tls defaults to prefer),
    in front of a PostgreSQL with ssl=on that offers SCRAM-SHA-256-PLUS."""
    proxy = harness.Pgwarden(workdir, tls_postgres.host, tls_postgres.port, name="pgwarden-minimal-tls")
    proxy.start()
    yield proxy
    proxy.stop()


# libpq with its defaults (sslmode=prefer against a pgwarden without TLS)
# logs in with SCRAM through the minimal configuration: pgwarden relays the
# mechanisms the client can complete over its own hop, never -PLUS.
def test_minimal_config_logs_in_to_a_tls_scram_server_with_libpq_defaults(minimal_proxy_before_tls_server):
    endpoint = minimal_proxy_before_tls_server.endpoint
    env = client_env(PGPASSWORD=SCRAM_PASSWORD)
    r = subprocess.run(["psql", "-X", "-A", "-t", "-h", endpoint.host, "-p", str(endpoint.port), "-U", SCRAM_USER,
                        "-d", "postgres", "-c", "SELECT current_user"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == SCRAM_USER


# The mechanism list itself, read off the wire: the server offers both, the
# client gets SCRAM-SHA-256 alone.
def test_relayed_sasl_offer_never_lists_plus(minimal_proxy_before_tls_server, tls_postgres):
    def offered(endpoint, tls_first: bool):
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
        if tls_first:
            sock.sendall(struct.pack("!II", 8, SSL_REQUEST_CODE))
            assert sock.recv(1) == b"S"
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
        with RawClient(None, sock=sock) as c:
            c.send(startup_packet({"user": SCRAM_USER, "database": "postgres"}))
            kind, payload = c.read_message()
            assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 10, (kind, payload)
            return [m.decode() for m in payload[4:].split(b"\0") if m]

    assert offered(tls_postgres.endpoint, tls_first=True) == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    assert offered(minimal_proxy_before_tls_server.endpoint, tls_first=False) == ["SCRAM-SHA-256"]


# ---------------------------------------------------------------------------
# TLS records to clients are no larger than PostgreSQL's.

def tls_record_sizes(endpoint, sql: str) -> list[int]:
    """Logs in over TLS (SSLRequest), runs `sql` (simple query) and returns
    the length of every TLS application-data record that came back."""
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=20)
    sock.sendall(struct.pack("!II", 8, SSL_REQUEST_CODE))
    assert sock.recv(1) == b"S"
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing)
    raw = bytearray()
    sizes: list[int] = []

    def pump():
        chunk = sock.recv(65536)
        if not chunk:
            raise harness.ConnectionClosed("closed")
        raw.extend(chunk)
        while len(raw) >= 5:  # TLS record: Byte1 type, Int16 version, Int16 length
            length = struct.unpack("!H", raw[3:5])[0]
            if len(raw) < 5 + length:
                break
            if raw[0] == 23:
                sizes.append(length)
            del raw[:5 + length]
        incoming.write(chunk)

    def flush():
        data = outgoing.read()
        if data:
            sock.sendall(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            pump()
    flush()
    received = bytearray()

    def read_until(marker: bytes):
        while True:
            try:
                while True:  # everything decrypted so far, record by record
                    received.extend(tls.read(1 << 20))
            except ssl.SSLWantReadError:
                pass
            if received.endswith(marker):
                return
            pump()

    tls.write(startup_packet({"user": SUPERUSER, "database": "postgres"}))
    flush()
    read_until(b"Z\0\0\0\x05I")
    received.clear()
    sizes.clear()
    tls.write(message(b"Q", sql.encode() + b"\0"))
    flush()
    time.sleep(1)  # a client slower than the server: a relay then has more than a record's worth at once
    read_until(b"Z\0\0\0\x05I")
    sock.close()
    return sizes


@pytest.fixture(scope="module")
def tls_proxy(tls_postgres, proxy_cert, workdir):
    cert, key = proxy_cert
    port = free_port()
    proxy = harness.Pgwarden(workdir, tls_postgres.host, tls_postgres.port, name="pgwarden-records",
                             config_text=f"listen: {LOOPBACK}:{port}\n"
                                         f"upstream: {{ host: {tls_postgres.host}, port: {tls_postgres.port}, "
                                         f"tls: require }}\n"
                                         f"tls: {{ cert: {cert}, key: {key} }}\n")
    proxy.port = port
    proxy.start()
    yield proxy
    proxy.stop()


# A 2 MB COPY TO read by a slow client: every record pgwarden writes carries at most the 8 KiB
# PostgreSQL puts in one, so no driver waits on its socket while the rest of
# a record sits decrypted in its TLS library.
def test_tls_records_to_clients_are_no_larger_than_postgresqls(tls_proxy, tls_postgres):
    sql = "COPY (SELECT g, repeat('x', 190) FROM generate_series(1, 10000) g) TO STDOUT"
    direct = tls_record_sizes(tls_postgres.endpoint, sql)
    proxied = tls_record_sizes(tls_proxy.endpoint, sql)
    assert sum(proxied) > 2_000_000 and sum(direct) > 2_000_000
    assert max(proxied) <= max(direct), (max(proxied), max(direct))
    assert max(proxied) <= 8192 + 256


# ---------------------------------------------------------------------------
# Every startup outcome is counted by what happened.

class SilentUpstream:
    """A TCP server that accepts and closes without a word: a server in its
    shutdown window, or a half-dead upstream."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self):
        self.sock.close()


# An upstream that accepts and closes during startup gets the client FATAL
# 08006 naming the upstream, counted as an upstream failure.
def test_upstream_closing_during_startup_is_08006_naming_it(pgwarden_factory, postgres):
    silent = SilentUpstream()
    admin_port = free_port()
    try:
        proxy = pgwarden_factory(admin_config(LOOPBACK, silent.port, admin_port))
        wait_until(lambda: _answers(admin_port), what="the admin server")
        before = scrape(admin_port)
        with RawClient(proxy.endpoint) as c:
            reply = c.login()
        fields = error_fields(reply[-1][1])
        assert reply[-1][0] == b"E" and (fields["V"], fields["C"]) == ("FATAL", "08006")
        assert f"{LOOPBACK}:{silent.port}" in fields["M"]
        results, reasons = "pgwarden_client_connections_total", "pgwarden_connections_closed_total"
        wait_until(lambda: counted(admin_port, before, results, "result", "upstream_unavailable") == 1,
                   what="the upstream failure to be counted")
        assert counted(admin_port, before, results, "result", "accepted") == 0
        assert counted(admin_port, before, reasons, "reason", "upstream_unavailable") == 1
    finally:
        silent.close()


def counted(port, before: dict, family: str, label: str, value: str) -> float:
    """How much `family{label=value}` rose since `before` (the harness's own
    probe of the listening port is a connection too)."""
    now = scrape(port)
    key = (family, ((label, value),))
    return now.get(key, 0.0) - before.get(key, 0.0)


def _answers(port):
    try:
        scrape(port)
        return True
    except OSError:
        return False


# Startups the server refuses (53300 for a role at its connection limit, a
# wrong password) are counted as refused by the server or failed
# authentication, never as accepted, and always close for the same reason
# however the client and server race to close.
def test_server_refusals_are_counted_as_what_they_are(admin_proxy, postgres):
    postgres.psql_admin("DROP ROLE IF EXISTS limited_user; CREATE ROLE limited_user LOGIN CONNECTION LIMIT 0;")
    hba = postgres.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(original.replace(f"host  all all          {LOOPBACK}/32 reject",
                                    f"host  all limited_user {LOOPBACK}/32 trust\n"
                                    f"host  all all          {LOOPBACK}/32 reject"))
    postgres.psql_admin("SELECT pg_reload_conf()")
    try:
        proxy = admin_proxy()
        before = scrape(proxy.admin_port)
        rounds = 10
        for _ in range(rounds):
            with RawClient(proxy.endpoint) as c:
                fields = error_fields(c.login(user="limited_user")[-1][1])
                assert fields["C"] == "53300", fields
            with RawClient(proxy.endpoint) as c:
                fields = error_fields(c.login(user=SCRAM_USER, password="wrong")[-1][1])
                assert fields["C"] == "28P01", fields
        results, reasons = "pgwarden_client_connections_total", "pgwarden_connections_closed_total"
        wait_until(lambda: counted(proxy.admin_port, before, reasons, "reason", "server_refused") == 2 * rounds,
                   what="every refusal to be counted")
        assert counted(proxy.admin_port, before, results, "result", "refused_server") == rounds
        assert counted(proxy.admin_port, before, results, "result", "auth_failed") == rounds
        assert counted(proxy.admin_port, before, results, "result", "accepted") == 0
        assert counted(proxy.admin_port, before, reasons, "reason", "client_closed") == 0
        assert counted(proxy.admin_port, before, reasons, "reason", "server_closed") == 0
    finally:
        hba.write_text(original)
        postgres.psql_admin("SELECT pg_reload_conf(); DROP ROLE limited_user;")


# The outcomes a client causes: a session that logs in and leaves is accepted
# and closes with client_terminate; one that leaves mid-startup is client_gone;
# a CancelRequest is a cancel_request; a malformed startup packet is
# refused_protocol (closed as client_protocol_error).
def test_client_caused_outcomes_are_counted(admin_proxy):
    proxy = admin_proxy()
    before = scrape(proxy.admin_port)
    with RawClient(proxy.endpoint) as c:
        c.login()
        c.send(message(b"X", b""))
        assert c.wait_closed()[0]
    with RawClient(proxy.endpoint) as c:
        c.send(startup_packet({"user": SCRAM_USER, "database": "postgres"}))
        c.read_message()  # the authentication request; then give up
    with RawClient(proxy.endpoint) as c:
        c.send(harness.cancel_packet(1, 2))
        assert c.wait_closed()[0]
    with RawClient(proxy.endpoint) as c:
        c.send(message(b"X", b""))
        assert c.wait_closed()[0]
    results, reasons = "pgwarden_client_connections_total", "pgwarden_connections_closed_total"
    outcomes = ("accepted", "client_gone", "cancel_request", "refused_protocol")
    wait_until(lambda: sum(counted(proxy.admin_port, before, results, "result", r) for r in outcomes) == 4,
               what="four connections counted")
    for result in outcomes:
        assert counted(proxy.admin_port, before, results, "result", result) == 1, result
    for reason in ("client_terminate", "client_closed", "cancel_request", "client_protocol_error"):
        assert counted(proxy.admin_port, before, reasons, "reason", reason) == 1, reason
