"""Failures: the upstream going away, hostile or broken clients, and a slow
reader of a huge result. Each bad client is closed on its own while a
concurrent session carries on; memory stays bounded."""

import random
import select
import signal
import socket
import struct
import threading
import time

import psycopg
import pytest

from harness import (PROTOCOL_3_0, RawClient, error_fields, free_port, message,
                     process_rss_bytes, startup_packet)

CLOSE_DEADLINE = 5.0
RSS_LIMIT = 64 << 20


class Bystander:
    """A psycopg session through the target running small queries in a loop."""

    def __init__(self, endpoint):
        self.conn = endpoint.connect(autocommit=True)
        self.backend_pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.iterations = 0
        self.errors = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            try:
                row = self.conn.execute("SELECT %s::int + 1, pg_backend_pid()", [i]).fetchone()
                if row != (i + 1, self.backend_pid):
                    self.errors.append(f"wrong answer {row} for {i}")
            except Exception as e:  # reported by check()
                self.errors.append(repr(e))
                return
            i += 1
            self.iterations = i
            time.sleep(0.005)

    def check(self, more=20, timeout=5.0):
        """Asserts the session keeps answering correctly from now on."""
        goal = self.iterations + more
        deadline = time.monotonic() + timeout
        while self.iterations < goal and not self.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.errors, self.errors
        assert self.iterations >= goal, "the concurrent session stalled"

    def stop(self):
        self._stop.set()
        self.thread.join(10)
        self.conn.close()


@pytest.fixture
def bystander(target):
    b = Bystander(target)
    try:
        b.check(more=5)
        yield b
    finally:
        b.stop()


@pytest.fixture
def proxy_process(request, target):
    """The pgwarden process behind `target`, or None when testing directly."""
    return request.getfixturevalue("pgwarden") if target.kind == "proxy" else None


def assert_closed_after(client, what, endpoint, silent=False):
    """The socket is closed promptly. Anything sent before the close must be one
    whole FATAL ErrorResponse, and pgwarden must send one, except where
    PostgreSQL itself closes without a word (`silent`): then nothing."""
    closed, data = client.wait_closed(CLOSE_DEADLINE)
    assert closed, f"{what}: still open after {CLOSE_DEADLINE}s (received {data[:200]!r})"
    if silent:
        assert data == b"", f"{what}: got {data[:200]!r} before the close, PostgreSQL sends nothing"
    elif data or endpoint.kind == "proxy":
        assert data[:1] == b"E", f"{what}: got {data[:200]!r} before the close"
        (length,) = struct.unpack("!I", data[1:5])
        assert len(data) == 1 + length, f"{what}: got {data[:200]!r} before the close"
        fields = error_fields(data[5:])
        assert fields.get("S") == "FATAL" and fields.get("C"), fields


def assert_serving(target, proxy_process):
    if proxy_process is not None:
        assert proxy_process.alive(), "pgwarden exited"
    with target.connect() as c:
        assert c.execute("SELECT 'still serving'").fetchone() == ("still serving",)


def send_ignoring_reset(client, data):
    try:
        client.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed on us mid-send: what the test expects anyway


def expect_upstream_error(endpoint, upstream):
    """A new client gets FATAL 08006 naming the upstream, then the close."""
    with RawClient(endpoint) as client:
        client.send(startup_packet({"user": "harness", "database": "postgres"}))
        kind, payload = client.read_message()
        assert kind == b"E", (kind, payload)
        fields = error_fields(payload)
        assert fields.get("S") == "FATAL" and fields.get("V") == "FATAL", fields
        assert fields.get("C") == "08006", fields
        assert upstream in fields.get("M", ""), fields
        closed, _ = client.wait_closed(CLOSE_DEADLINE)
        assert closed
    with pytest.raises(psycopg.OperationalError) as excinfo:
        psycopg.connect(endpoint.dsn())
    assert upstream in str(excinfo.value)


# The upstream stops: a session open through pgwarden gets the server's
# shutdown error rather than a hang; a new client gets FATAL 08006 naming
# the upstream. Once PostgreSQL is back, new connections work again.
@pytest.mark.proxy_only
def test_upstream_stopped_then_restarted(target, postgres, pgwarden):
    upstream = f"{postgres.host}:{postgres.port}"
    open_session = target.connect(autocommit=True)
    try:
        postgres.stop()
        with pytest.raises(psycopg.OperationalError):
            open_session.execute("SELECT 1")
        expect_upstream_error(target, upstream)
        assert pgwarden.alive()
    finally:
        open_session.close()
        postgres.start()
    with target.connect() as c:
        assert c.execute("SELECT 'back'").fetchone() == ("back",)


# A pgwarden whose upstream refuses connections answers every client with
# FATAL 08006 naming that upstream.
@pytest.mark.proxy_only
def test_upstream_refusing(pgwarden_factory, postgres):
    dead_port = free_port()
    proxy = pgwarden_factory(config_text="listen: 127.0.0.1:{listen_port}\n"
                                         f"upstream: {{ host: {postgres.host}, port: {dead_port} }}\n")
    expect_upstream_error(proxy.endpoint, f"{postgres.host}:{dead_port}")
    expect_upstream_error(proxy.endpoint, f"{postgres.host}:{dead_port}")
    assert proxy.alive()


# After logging in, a client sends a typed message whose length field claims
# 2 GiB (or is negative as an Int32): that client is closed at once, while a
# concurrent session keeps running queries.
@pytest.mark.parametrize("length", [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 3])
def test_huge_or_negative_message_length(target, bystander, proxy_process, length):
    with RawClient(target) as client:
        assert client.login()[-1][0] == b"Z"
        send_ignoring_reset(client, b"Q" + struct.pack("!I", length) + b"SELECT 1;" * 100)
        assert_closed_after(client, f"Q with length {length:#x}", target)
    bystander.check()
    assert_serving(target, proxy_process)


# After logging in, a client sends a message of a type the protocol does not
# have: it is closed (PostgreSQL: "invalid frontend message type").
def test_unknown_message_type(target, bystander, proxy_process):
    with RawClient(target) as client:
        assert client.login()[-1][0] == b"Z"
        send_ignoring_reset(client, message(b"y", b"garbage"))
        assert_closed_after(client, "unknown message type 'y'", target)
    bystander.check()
    assert_serving(target, proxy_process)


# name: (first bytes, whether PostgreSQL closes without a reply). A length it
# cannot accept is reported only in its own log; a bad version or layout gets
# a FATAL.
GARBAGE_STARTUPS = {
    "random_bytes": (random.Random(20240229).randbytes(4096), True),
    "http_request": (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", True),
    "bad_protocol_version": (struct.pack("!II", 40, 0x12345678) + b"\x07" * 32, False),
    "unterminated_parameters": (struct.pack("!II", 20, PROTOCOL_3_0) + b"user\0harness", False),
    "length_below_minimum": (struct.pack("!I", 3) + b"\0" * 16, True),
}


# A client whose first packet is garbage instead of a StartupMessage is
# closed as PostgreSQL closes it; a concurrent session is unaffected.
@pytest.mark.parametrize("name", sorted(GARBAGE_STARTUPS))
def test_garbage_startup_packet(target, bystander, proxy_process, name):
    data, silent = GARBAGE_STARTUPS[name]
    with RawClient(target) as client:
        send_ignoring_reset(client, data)
        assert_closed_after(client, f"garbage startup {name}", target, silent=silent)
    bystander.check()
    assert_serving(target, proxy_process)


# A StartupMessage longer than PostgreSQL's 10000-byte limit is refused and
# the client closed without a reply, as PostgreSQL does, without waiting for
# the whole packet.
def test_oversized_startup_packet(target, bystander, proxy_process):
    body = struct.pack("!I", PROTOCOL_3_0) + b"user\0harness\0options\0" + b"a" * 20000 + b"\0\0"
    packet = struct.pack("!I", len(body) + 4) + body
    with RawClient(target) as client:
        send_ignoring_reset(client, packet[:8])
        time.sleep(0.05)
        send_ignoring_reset(client, packet[8:])
        assert_closed_after(client, f"startup packet of {len(packet)} bytes", target, silent=True)
    bystander.check()
    assert_serving(target, proxy_process)


# A client that connects and sends nothing more than half a StartupMessage
# does not block anyone else.
def test_stalled_client_does_not_block_others(target, bystander, proxy_process):
    stalled = [RawClient(target) for _ in range(5)]
    try:
        for c in stalled:
            c.send(startup_packet({"user": "harness", "database": "postgres"})[:7])
        bystander.check()
        assert_serving(target, proxy_process)
    finally:
        for c in stalled:
            c.close()


STREAM_ROWS = 200_000
STREAM_ROW = b"x" * 1000 + b"\n"


# 200 MB of COPY TO STDOUT is read by a client that takes small reads with
# pauses between them: every byte arrives, and pgwarden's resident memory
# stays under 64 MB throughout (it must not buffer the result).
def test_slow_reader_of_200mb_result(target, proxy_process):
    peak = {"rss": 0}
    done = threading.Event()

    def watch_rss():
        while not done.is_set():
            peak["rss"] = max(peak["rss"], process_rss_bytes(proxy_process.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_rss, daemon=True)
    if proxy_process is not None:
        watcher.start()
    try:
        with RawClient(target, timeout=30, rcvbuf=64 << 10) as client:
            assert client.login()[-1][0] == b"Z"
            client.send(message(b"Q", b"COPY (SELECT repeat('x', 1000) FROM "
                                      b"generate_series(1, %d)) TO STDOUT\0" % STREAM_ROWS))
            rows, bad_rows, tail = read_copy_slowly(client.sock)
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join(5)
    assert bad_rows == 0
    assert rows == STREAM_ROWS
    assert tail == [b"c", b"C", b"Z"], tail
    if proxy_process is not None:
        assert proxy_process.alive()
        assert 0 < peak["rss"] < RSS_LIMIT, f"pgwarden RSS peaked at {peak['rss'] >> 20} MiB"


def read_copy_slowly(sock, chunk=64 << 10, pause=0.002):
    """Reads CopyOutResponse, CopyData*, CopyDone, CommandComplete and
    ReadyForQuery in small reads with pauses; returns (rows, bad rows, the
    kinds of the messages after the data)."""
    buf = bytearray()
    rows = bad = 0
    tail = []
    started = False
    while True:
        data = sock.recv(chunk)
        if not data:
            raise AssertionError(f"closed after {rows} rows")
        buf += data
        pos = 0
        while len(buf) - pos >= 5:
            kind = buf[pos:pos + 1]
            (length,) = struct.unpack_from("!I", buf, pos + 1)
            if len(buf) - pos < 1 + length:
                break
            body = buf[pos + 5:pos + 1 + length]
            pos += 1 + length
            if kind == b"d":
                rows += 1
                bad += body != STREAM_ROW
            elif kind == b"H":
                started = True
            elif kind == b"E":
                raise AssertionError(f"server error after {rows} rows: {error_fields(bytes(body))}")
            else:
                assert started, f"{bytes(kind)!r} before CopyOutResponse"
                tail.append(bytes(kind))
                if kind == b"C":
                    assert bytes(body) == b"COPY %d\0" % STREAM_ROWS
                if kind == b"Z":
                    return rows, bad, tail
        del buf[:pos]
        time.sleep(pause)


# SIGTERM stops pgwarden promptly, with a client connected, exiting 0; the
# client sees its connection end instead of hanging.
@pytest.mark.proxy_only
def test_sigterm_stops_pgwarden(pgwarden_factory):
    proxy = pgwarden_factory()
    client = proxy.endpoint.connect(autocommit=True)
    try:
        assert client.execute("SELECT 1").fetchone() == (1,)
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.proc.wait(10)
        assert proxy.proc.returncode == 0, proxy.log_tail()
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")
        with pytest.raises(OSError):
            socket.create_connection((proxy.host, proxy.port), timeout=2).close()
    finally:
        client.close()


def wait_backends_gone(admin, pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = admin.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)",
                             [list(pids)]).fetchall()
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"server sessions still open: {left}")


# Clients that leave, politely (Terminate) or by dropping the socket, leave
# no server session behind (no leak of PostgreSQL connections).
def test_client_departure_ends_server_session(target, admin):
    pids = []
    for polite in (True, False) * 4:
        client = RawClient(target)
        assert client.login()[-1][0] == b"Z"
        pid = int(client.query("SELECT pg_backend_pid()")[1][1][6:])
        pids.append(pid)
        if polite:
            client.send(message(b"X", b""))
            closed, _ = client.wait_closed(CLOSE_DEADLINE)
            assert closed
        client.close()
    wait_backends_gone(admin, pids)


# The server ends a session (pg_terminate_backend): the client receives the
# server's FATAL 57P01 and then the close, instead of a hang.
def test_server_terminates_session(target, admin, bystander):
    with RawClient(target) as client:
        assert client.login()[-1][0] == b"Z"
        pid = int(client.query("SELECT pg_backend_pid()")[1][1][6:])
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        kind, payload = client.read_message()
        assert kind == b"E"
        fields = error_fields(payload)
        assert (fields["S"], fields["C"]) == ("FATAL", "57P01"), fields
        closed, data = client.wait_closed(CLOSE_DEADLINE)
        assert closed and data == b""
    bystander.check()
