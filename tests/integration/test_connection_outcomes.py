"""Every connection is counted by what happened to it: one
`pgwarden_client_connections_total{result}` for how its startup ended and one
`pgwarden_connections_closed_total{reason}` for why it closed, the same reason
its log line names. Each scenario below causes one outcome on a fresh pgwarden
and checks that exactly that pair of labels moved."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

import harness
from harness import (LOOPBACK, SCRAM_PASSWORD, SCRAM_USER, SSL_REQUEST_CODE, SUPERUSER, RawClient, error_fields,
                     free_port, message, startup_packet)
from audit_helpers import fill, tmpfs
from ops_helpers import http_request, parse_exposition, wait_until

pytestmark = pytest.mark.proxy_only

RESULTS = "pgwarden_client_connections_total"
REASONS = "pgwarden_connections_closed_total"


class FakeUpstream:
    """A TCP server standing in for a broken PostgreSQL: each connection is
    answered by `respond(conn)` and closed."""

    def __init__(self, respond: Callable[[socket.socket], None]):
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self.respond(conn)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def silent(conn: socket.socket) -> None:
    """Accepts and closes without a word (a server in its shutdown window)."""


class StallingUpstream(FakeUpstream):
    """Logs every client in (AuthenticationOk, BackendKeyData,
    ReadyForQuery), then reads nothing more; `reset()` ends the connection
    with a reset while pgwarden is still writing to it."""

    def __init__(self):
        self.release = threading.Event()
        super().__init__(self._stall)

    def _stall(self, conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(message(b"R", struct.pack("!I", 0)) + message(b"K", struct.pack("!II", 4242, 1)) +
                     message(b"Z", b"I"))
        self.release.wait(30)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def reset(self):
        self.release.set()


def garbage_after_startup(conn: socket.socket) -> None:
    """Reads the startup packet and answers with bytes no server sends."""
    conn.recv(65536)
    conn.sendall(b"R" + struct.pack("!I", 2) + b"\xff" * 16)
    time.sleep(1)


@dataclasses.dataclass
class Env:
    """What a scenario has to work with."""
    proxy: harness.Pgwarden
    postgres: harness.PostgresServer
    workdir: Path
    upstream: FakeUpstream | None = None
    audit_disk: Path | None = None  # a small tmpfs holding the audit log


def scrape_metrics(port: int) -> dict:
    status, _, body = http_request(port, "/metrics")
    assert status == 200, body
    return parse_exposition(body)


def count(samples: dict, family: str, label: str, value: str) -> float:
    return samples.get((family, ((label, value),)), 0.0)


def family_values(samples: dict, family: str) -> dict[str, float]:
    return {labels[0][1]: v for (name, labels), v in samples.items() if name == family and labels}


# ---------------------------------------------------------------------------
# The scenarios: each makes one connection end one way.

def logs_in_and_terminates(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert c.login()[-1][0] == b"Z"
        c.send(message(b"X", b""))
        assert c.wait_closed()[0]


def beyond_max_connections(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as holder:
        assert holder.login()[-1][0] == b"Z"
        with RawClient(env.proxy.endpoint) as c:
            assert error_fields(c.login()[-1][1])["C"] == "53300"
        holder.send(message(b"X", b""))
        holder.wait_closed()


def refused_by_connect_rule(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert error_fields(c.login(database="forbidden_db")[-1][1])["C"] == "28000"


def malformed_startup(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        c.send(message(b"X", b""))
        assert c.wait_closed() == (True, b"")


def plaintext_when_tls_required(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert error_fields(c.login()[-1][1])["C"] == "28000"


def failed_tls_handshake(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        c.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
        assert c.sock.recv(1) == b"S"
        c.send(b"\x16\x03\x01\x00\x05hello")  # a handshake record that is not a ClientHello
        assert c.wait_closed()[0]


def refused_by_the_server(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert error_fields(c.login(user="limited_user")[-1][1])["C"] == "53300"


def wrong_password_to_the_server(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert error_fields(c.login(user=SCRAM_USER, password="wrong")[-1][1])["C"] == "28P01"


def wrong_password_to_pgwarden(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert error_fields(c.login(user=SCRAM_USER, password="wrong")[-1][1])["C"] == "28P01"


def server_refuses_pgwardens_login(env: Env) -> None:
    env.postgres.psql_admin(f"ALTER ROLE {SCRAM_USER} PASSWORD 'changed-on-the-server'")
    try:
        with RawClient(env.proxy.endpoint) as c:
            assert error_fields(c.login(user=SCRAM_USER, password=SCRAM_PASSWORD)[-1][1])["C"] == "08006"
    finally:
        env.postgres.psql_admin(f"ALTER ROLE {SCRAM_USER} PASSWORD '{SCRAM_PASSWORD}'")


def silent_until_startup_timeout(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        c.send(startup_packet({"user": SUPERUSER})[:6])
        closed, data = c.wait_closed(timeout=10)
        assert closed and error_fields(data[5:])["C"] == "57014"


def idle_until_idle_timeout(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert c.login()[-1][0] == b"Z"
        closed, data = c.wait_closed(timeout=10)
        assert closed and error_fields(data[5:])["C"] == "57P05"


def upstream_down(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        fields = error_fields(c.login()[-1][1])
        assert fields["C"] == "08006" and "could not connect" in fields["M"]


def upstream_closes_during_startup(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        fields = error_fields(c.login()[-1][1])
        assert fields["C"] == "08006" and "closed the connection during startup" in fields["M"]


def upstream_speaks_garbage(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        fields = error_fields(c.login()[-1][1])
        assert fields["C"] == "08P01"


def leaves_during_startup(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        c.send(startup_packet({"user": SCRAM_USER, "database": "postgres"}))
        c.read_message()  # the authentication request; then give up


def sends_a_cancel_request(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        c.send(harness.cancel_packet(1, 2))
        assert c.wait_closed()[0]


def server_ends_the_session(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert c.login()[-1][0] == b"Z"
        pid = c.backend_key[0]
        env.postgres.psql_admin(f"SELECT pg_terminate_backend({pid})")
        closed, data = c.wait_closed()
        assert closed and error_fields(data[5:])["C"] == "57P01"


def waits_through_a_shutdown(env: Env) -> None:
    c = RawClient(env.proxy.endpoint)
    try:
        time.sleep(0.2)  # accepted, no startup packet yet
        env.proxy.proc.send_signal(signal.SIGTERM)
        assert c.wait_closed(timeout=10)[0]
    finally:
        c.close()


def client_vanishes_mid_result(env: Env) -> None:
    c = RawClient(env.proxy.endpoint, rcvbuf=4096)
    assert c.login()[-1][0] == b"Z"
    c.send(message(b"Q", b"SELECT repeat('x', 1000) FROM generate_series(1, 100000)\0"))
    time.sleep(1)  # pgwarden is now blocked writing to a full socket
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # a reset: the pending write fails


def server_stops_reading(env: Env) -> None:
    with RawClient(env.proxy.endpoint) as c:
        assert c.login()[-1][0] == b"Z"
        big = message(b"Q", b"SELECT 1 /*" + b"x" * (1 << 20) + b"*/\0")
        sender = threading.Thread(target=lambda: _send_quietly(c, big * 16), daemon=True)
        sender.start()
        time.sleep(1)  # pgwarden's write to the upstream is now blocked on a full socket
        env.upstream.reset()
        closed, _ = c.wait_closed(timeout=10)
        assert closed


def _send_quietly(client: RawClient, data: bytes) -> None:
    try:
        client.sock.settimeout(15)
        client.send(data)
    except OSError:
        pass  # closed on us mid-send: the point of the scenario


def audit_disk_fills_under_a_synced_batch(env: Env) -> None:
    env.postgres.psql_admin("CREATE TABLE IF NOT EXISTS outcome_marks (n int)")
    with RawClient(env.proxy.endpoint) as c:
        assert c.login()[-1][0] == b"Z"
        fill(env.audit_disk)
        for i in range(2000):  # until a record no longer fits the file's last page
            c.send(message(b"Q", f"INSERT INTO outcome_marks VALUES ({i})\0".encode()))
            try:
                reply = c.read_until_ready()
            except harness.ConnectionClosed:
                break
            errors = [error_fields(p) for kind, p in reply if kind == b"E"]
            assert not errors, errors
        else:
            raise AssertionError("the audit log never ran out of room")


@dataclasses.dataclass(frozen=True)
class Outcome:
    scenario: Callable[[Env], None]
    result: str   # client_connections_total
    reason: str   # connections_closed_total, and the log line's reason
    config: str = ""   # added to the proxy's configuration
    upstream: str = "postgres"   # postgres | closed | silent | garbage | stalling
    post_shutdown: bool = False  # the scenario stops the proxy


OUTCOMES = {
    "accepted": Outcome(logs_in_and_terminates, "accepted", "client_terminate"),
    "refused_limit": Outcome(beyond_max_connections, "refused_limit", "startup_refused",
                             "limits: { max_client_connections: 1 }\n"),
    "refused_policy": Outcome(refused_by_connect_rule, "refused_policy", "startup_refused",
                              "rules:\n  - name: no-forbidden-db\n    on: connect\n"
                              "    when: { database: forbidden_db }\n    action: deny\n"),
    "refused_protocol": Outcome(malformed_startup, "refused_protocol", "client_protocol_error"),
    "tls_required": Outcome(plaintext_when_tls_required, "refused_protocol", "startup_refused", "TLS_REQUIRED"),
    "tls_handshake_failed": Outcome(failed_tls_handshake, "refused_protocol", "tls_handshake_failed", "TLS"),
    "refused_server": Outcome(refused_by_the_server, "refused_server", "server_refused"),
    "auth_failed_at_server": Outcome(wrong_password_to_the_server, "auth_failed", "server_refused"),
    "auth_failed_at_pgwarden": Outcome(wrong_password_to_pgwarden, "auth_failed", "authentication_failed", "SCRAM"),
    "upstream_login_failed": Outcome(server_refuses_pgwardens_login, "refused_server", "upstream_login_failed",
                                     "SCRAM"),
    "startup_timeout": Outcome(silent_until_startup_timeout, "startup_timeout", "startup_timeout",
                               "limits: { startup_timeout: 1s }\n"),
    "idle_timeout": Outcome(idle_until_idle_timeout, "accepted", "idle_timeout", "limits: { idle_timeout: 1s }\n"),
    "upstream_unavailable": Outcome(upstream_down, "upstream_unavailable", "upstream_unavailable", upstream="closed"),
    "upstream_silent": Outcome(upstream_closes_during_startup, "upstream_unavailable", "upstream_unavailable",
                               upstream="silent"),
    "server_protocol_error": Outcome(upstream_speaks_garbage, "upstream_unavailable", "server_protocol_error",
                                     upstream="garbage"),
    "client_gone": Outcome(leaves_during_startup, "client_gone", "client_closed"),
    "cancel_request": Outcome(sends_a_cancel_request, "cancel_request", "cancel_request"),
    "server_closed": Outcome(server_ends_the_session, "accepted", "server_closed"),
    "shutdown": Outcome(waits_through_a_shutdown, "shutdown", "shutdown", post_shutdown=True),
    "client_write_error": Outcome(client_vanishes_mid_result, "accepted", "client_write_error"),
    "server_write_error": Outcome(server_stops_reading, "accepted", "server_write_error", upstream="stalling"),
    "audit_unavailable": Outcome(audit_disk_fills_under_a_synced_batch, "accepted", "audit_unavailable",
                                 "AUDIT_DISK"),
}


@pytest.fixture(scope="module")
def limited_role(postgres):
    """A role the server refuses with 53300 (its connection limit is 0)."""
    hba = postgres.data / "pg_hba.conf"
    original = hba.read_text()
    reject = f"host  all all          {LOOPBACK}/32 reject"
    hba.write_text(original.replace(reject, f"host  all limited_user {LOOPBACK}/32 trust\n{reject}"))
    postgres.psql_admin("DROP ROLE IF EXISTS limited_user; CREATE ROLE limited_user LOGIN CONNECTION LIMIT 0;"
                        "SELECT pg_reload_conf();")
    yield
    hba.write_text(original)
    postgres.psql_admin("SELECT pg_reload_conf(); DROP ROLE limited_user;")


def proxy_config(postgres, outcome: Outcome, upstream_port: int, admin_port: int, workdir: Path, pki,
                 proxy_cert) -> str:
    text = (f"listen: {LOOPBACK}:{{listen_port}}\n"
            f"upstream: {{ host: {LOOPBACK}, port: {upstream_port}, tls: disable }}\n"
            f"admin: {{ listen: {LOOPBACK}:{admin_port} }}\n")
    cert, key = proxy_cert
    if outcome.config in ("TLS", "TLS_REQUIRED"):
        required = ", required: true" if outcome.config == "TLS_REQUIRED" else ""
        return text + f"tls: {{ cert: {cert}, key: {key}{required} }}\n"
    if outcome.config == "AUDIT_DISK":
        return text + (f"audit: {{ file: {workdir}/audit/pgwarden.jsonl, durability: synced, on_failure: block, "
                       "preallocate: 0 }\n")
    if outcome.config == "SCRAM":
        secret = postgres.psql_admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{SCRAM_USER}'").strip()
        auth_file = workdir / "outcomes-userlist.txt"
        auth_file.write_text(f'"{SCRAM_USER}" "{secret}"\n')
        return text + f"auth: {{ mode: scram, auth_file: {auth_file} }}\n"
    return text + outcome.config


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_connection_outcome_is_counted_by_what_happened(name, pgwarden_factory, postgres, tmp_path, pki, proxy_cert,
                                                        limited_role):
    outcome = OUTCOMES[name]
    fake = {"silent": lambda: FakeUpstream(silent), "garbage": lambda: FakeUpstream(garbage_after_startup),
            "stalling": StallingUpstream}.get(outcome.upstream, lambda: None)()
    upstream_port = fake.port if fake else free_port() if outcome.upstream == "closed" else postgres.port
    admin_port = free_port()
    with contextlib.ExitStack() as cleanup:
        if fake:
            cleanup.callback(fake.close)
        disk = cleanup.enter_context(tmpfs(tmp_path / "disk", "512k")) if outcome.config == "AUDIT_DISK" else None
        run_outcome(name, outcome, pgwarden_factory, postgres, tmp_path if disk is None else disk, pki, proxy_cert,
                    upstream_port, admin_port, fake)


def run_outcome(name: str, outcome: Outcome, pgwarden_factory, postgres, workdir: Path, pki, proxy_cert,
                upstream_port: int, admin_port: int, fake: FakeUpstream | None) -> None:
    """Starts the proxy, runs the scenario, and checks that exactly its
    result and reason moved and that its log line names the reason."""
    proxy = pgwarden_factory(proxy_config(postgres, outcome, upstream_port, admin_port, workdir, pki, proxy_cert))
    # The harness's probe of the listening port is one connection: once it is
    # counted, nothing else moves the counters but the scenario.
    before = wait_until(lambda: (s := _scrape_or_none(admin_port))
                        and sum(family_values(s, REASONS).values()) == 1 and s,
                        what="the harness's probe connection to be counted")
    env = Env(proxy, postgres, workdir, fake, workdir if outcome.config == "AUDIT_DISK" else None)
    log_start = proxy.log_path.stat().st_size
    outcome.scenario(env)
    if outcome.post_shutdown:
        proxy.proc.wait(15)
        log = proxy.log_path.read_bytes()[log_start:].decode()
        assert f"reason={outcome.reason}" in log, log
        return
    # A scenario with a helper connection (refused_limit) adds an accepted one.
    helpers = 1 if name == "refused_limit" else 0

    def moved():
        now = _scrape_or_none(admin_port)
        if now is None:
            return None
        results = {k: v - family_values(before, RESULTS).get(k, 0) for k, v in family_values(now, RESULTS).items()}
        reasons = {k: v - family_values(before, REASONS).get(k, 0) for k, v in family_values(now, REASONS).items()}
        return (results, reasons) if sum(reasons.values()) == 1 + helpers else None

    results, reasons = wait_until(moved, what=f"the {name} connection to close")
    expected_results = {outcome.result: 1}
    expected_reasons = {outcome.reason: 1}
    if helpers:
        expected_results["accepted"] = expected_results.get("accepted", 0) + 1
        expected_reasons["client_terminate"] = expected_reasons.get("client_terminate", 0) + 1
    assert {k: v for k, v in results.items() if v} == expected_results
    assert {k: v for k, v in reasons.items() if v} == expected_reasons
    log = proxy.log_path.read_bytes()[log_start:].decode()
    assert f"reason={outcome.reason}" in log, log


def _scrape_or_none(port):
    try:
        return scrape_metrics(port)
    except OSError:
        return None
