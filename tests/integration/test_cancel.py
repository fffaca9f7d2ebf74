"""Query cancellation through the target: the BackendKeyData the client got
cancels its own running query within a second, and never anyone else's."""

import select
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from harness import SUPERUSER, RawClient, cancel_packet, client_env, error_fields, message

CANCEL_DEADLINE = 1.0


def wait_active(admin, backend_pid, timeout=10.0):
    """Waits until the backend is running a pg_sleep (so a cancel has a target)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s",
                            [backend_pid]).fetchone()
        if row and row[0] == "active" and "pg_sleep" in row[1]:
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {backend_pid} never started its pg_sleep")


class SleepingSession:
    """A psycopg session running `SELECT pg_sleep(seconds)` in a thread."""

    def __init__(self, endpoint, seconds):
        self.conn = endpoint.connect(autocommit=True)
        self.backend_pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.seconds = seconds
        self.error = None
        self.finished_at = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.conn.execute("SELECT pg_sleep(%s)", [self.seconds])
        except psycopg.Error as e:
            self.error = e
        self.finished_at = time.monotonic()

    def start(self, admin):
        self.thread.start()
        wait_active(admin, self.backend_pid)
        return self

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "query still running"

    def close(self):
        self.conn.close()


# A client cancels its own pg_sleep(30) (libpq's cancel, sent to the address
# it connected to): the query fails with 57014 within a second and the
# connection goes on working.
def test_cancel_running_query(target, admin):
    session = SleepingSession(target, 30).start(admin)
    try:
        sent_at = time.monotonic()
        session.conn.cancel()
        session.join(10)
        assert isinstance(session.error, psycopg.errors.QueryCanceled), session.error
        assert session.error.sqlstate == "57014"
        assert session.finished_at - sent_at < CANCEL_DEADLINE
        assert session.conn.execute("SELECT 'after cancel'").fetchone() == ("after cancel",)
    finally:
        session.close()


# Three sessions sleep; cancelling the middle one stops only that one, the
# other two finish their sleep without error.
def test_cancel_hits_only_its_own_session(target, admin):
    others = [SleepingSession(target, 2) for _ in range(2)]
    victim = SleepingSession(target, 30)
    try:
        started = time.monotonic()
        for s in (others[0], victim, others[1]):
            s.start(admin)
        sent_at = time.monotonic()
        victim.conn.cancel()
        victim.join(10)
        assert isinstance(victim.error, psycopg.errors.QueryCanceled), victim.error
        assert victim.finished_at - sent_at < CANCEL_DEADLINE
        for s in others:
            s.join(15)
            assert s.error is None, s.error
            assert s.finished_at - started >= 2.0
    finally:
        for s in others + [victim]:
            s.close()


# A CancelRequest carrying a wrong secret or another process id is ignored;
# the exact key from BackendKeyData cancels (raw protocol on both sockets).
def test_cancel_needs_the_exact_key(target):
    with RawClient(target) as client:
        client.login()
        pid, secret = client.backend_key
        client.send(message(b"Q", b"SELECT pg_sleep(3)\0"))
        time.sleep(0.3)
        for bad in ((pid, secret ^ 1), (pid + 1, secret), (pid ^ 0x5A5A, secret ^ 0x5A5A5A5A)):
            with RawClient(target) as canceller:
                canceller.send(cancel_packet(*bad))
                closed, data = canceller.wait_closed(5)
                assert closed and data == b""
        # Nothing came back: the query is still running.
        readable, _, _ = select.select([client.sock], [], [], 0.2)
        assert not readable, client.read_until_ready()
        with RawClient(target) as canceller:
            sent_at = time.monotonic()
            canceller.send(cancel_packet(pid, secret))
        replies = client.read_until_ready()
        elapsed = time.monotonic() - sent_at
        errors = [error_fields(p) for k, p in replies if k == b"E"]
        assert [e["C"] for e in errors] == ["57014"], replies
        assert elapsed < CANCEL_DEADLINE


# A wrong key sent while a query runs does not cancel it: pg_sleep(1.5)
# completes normally.
def test_wrong_key_does_not_cancel(target):
    with RawClient(target) as client:
        client.login()
        pid, secret = client.backend_key
        client.send(message(b"Q", b"SELECT pg_sleep(1.5)\0"))
        time.sleep(0.3)
        with RawClient(target) as canceller:
            canceller.send(cancel_packet(pid, secret + 1))
        replies = client.read_until_ready()
        assert [k for k, _ in replies] == [b"T", b"D", b"C", b"Z"], replies


# psql interrupted with Ctrl-C (SIGINT) sends a cancel: the query stops at
# once with "canceling statement due to user request".
def test_psql_sigint_cancels(target, admin):
    before = {r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity").fetchall()}
    proc = subprocess.Popen(["psql", "-X", "-h", target.host, "-p", str(target.port),
                             "-U", SUPERUSER, "-d", "postgres", "-c", "SELECT pg_sleep(30)"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=client_env(PGSSLMODE="disable"))
    try:
        deadline = time.monotonic() + 10
        backend = None
        while backend is None and time.monotonic() < deadline:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE state = 'active'"
                                 " AND query = 'SELECT pg_sleep(30)'").fetchall()
            backend = next((r[0] for r in rows if r[0] not in before), None)
            time.sleep(0.02)
        assert backend is not None, "psql's query never started"
        sent_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert time.monotonic() - sent_at < CANCEL_DEADLINE + 0.5
        assert b"canceling statement due to user request" in out, out
        assert proc.returncode == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
