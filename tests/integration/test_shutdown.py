"""Signals: SIGTERM drains (no new connections, sessions leave at a
transaction boundary, the rest are closed at shutdown_timeout with 57P01,
exit 0); a second SIGTERM or SIGINT closes everything at once; SIGHUP
reloads, keeping the old policy when the new file is broken; systemd hears
about each step through $NOTIFY_SOCKET."""

import json
import os
import re
import signal
import subprocess
import socket
import struct

import psycopg
import pytest

from harness import RawClient, error_fields
from ops_helpers import http_request, own_log, sample, scrape, start_pgbench, wait_until

pytestmark = pytest.mark.proxy_only

ADMIN_SHUTDOWN = "terminating connection due to administrator command"

PAIRED_UPDATES = """\\set id random(1, 20)
BEGIN;
UPDATE pairs SET a = a + 1 WHERE id = :id;
SELECT pg_sleep(0.005);
UPDATE pairs SET b = b + 1 WHERE id = :id;
COMMIT;
"""


@pytest.fixture(scope="module")
def tables(postgres):
    postgres.psql_admin("CREATE TABLE pairs (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL);"
                        "INSERT INTO pairs SELECT g, 0, 0 FROM generate_series(1, 20) g;"
                        "CREATE TABLE late_t (id int);")


@pytest.fixture
def proxy(admin_proxy):
    """pgwarden with its admin server; `.admin_port` says where."""
    return admin_proxy


def _refused(proxy):
    try:
        socket.create_connection((proxy.host, proxy.port), timeout=2).close()
        return False
    except ConnectionResetError:  # queued just as the listener closed: look again
        return False
    except ConnectionRefusedError:
        return True


def _in_transaction(proxy) -> RawClient:
    client = RawClient(proxy.endpoint, timeout=30)
    assert client.login()[-1][0] == b"Z"
    client.query("BEGIN")
    client.query("INSERT INTO late_t VALUES (1)")
    return client


def _fatal_sqlstate(data: bytes) -> str:
    """SQLSTATE of the last ErrorResponse among the messages a client received."""
    sqlstate, pos = "", 0
    while pos + 5 <= len(data):
        (length,) = struct.unpack("!I", data[pos + 1:pos + 5])
        if data[pos:pos + 1] == b"E":
            sqlstate = error_fields(data[pos + 5:pos + 1 + length]).get("C", "")
        pos += 1 + length
    return sqlstate


# SIGTERM during a pgbench run of paired updates: new connections are refused
# at once, each pgbench client finishes its transaction and is told 57P01
# before its next one, the server holds no half-done pair and exactly the
# transactions pgbench counted, a session left in a transaction is closed at
# shutdown_timeout with 57P01 (its insert rolled back), the exit code is 0,
# and the audit log, flushed on the way out, verifies and ends every session.
def test_sigterm_drains_at_transaction_boundaries(proxy, tables, postgres, tmp_path):
    audit_dir = tmp_path / "audit"
    p = proxy("shutdown_timeout: 3s\n" f"audit: {{ file: {audit_dir}/pgwarden.jsonl }}\n")
    script = tmp_path / "pairs.sql"
    script.write_text(PAIRED_UPDATES)
    late = _in_transaction(p)
    bench = start_pgbench(p.endpoint, script, "-c", "4", "-j", "2", "-T", "60")
    try:
        wait_until(lambda: sample(scrape(p.admin_port), "pgwarden_statements_total",
                                  **{"class": "WRITE"}, decision="allow") >= 40,
                   what="pgbench to run transactions")
        p.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: _refused(p), what="the listener to close")
        assert p.alive(), "exited while a session was still in a transaction"
        status, _, body = http_request(p.admin_port, "/readyz")
        assert status == 503 and "shutting down" in body, body
        out, err = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
    # pgbench words it two ways ("client 0 script 0 aborted in command 1 query 0: FATAL: ..."
    # or, when the FATAL came with the previous result, "client 3 aborted in command 1 (SQL)
    # of script 0; ..." after the FATAL's own line); command 1 is the BEGIN.
    aborted = dict(re.findall(r"client (\d+) (?:script 0 )?aborted in command (\d+)", err))
    assert aborted == {"0": "1", "1": "1", "2": "1", "3": "1"}, err
    assert err.count(ADMIN_SHUTDOWN) == 4, err
    assert "ERROR" not in err, err
    processed = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    assert postgres.psql_admin("SELECT count(*) FROM pairs WHERE a <> b").strip() == "0"
    assert int(postgres.psql_admin("SELECT sum(a) FROM pairs")) == processed

    closed, data = late.wait_closed(timeout=30)
    assert closed and _fatal_sqlstate(data) == "57P01", data
    assert p.proc.wait(30) == 0, p.log_tail()
    assert postgres.psql_admin("SELECT count(*) FROM late_t").strip() == "0"
    assert "shutdown_timeout reached" in own_log(p)
    late.close()

    verify = subprocess.run([str(p.binary), "audit", "verify", str(audit_dir)], capture_output=True, text=True,
                            timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = [json.loads(line) for f in sorted(audit_dir.glob("*.jsonl")) for line in f.read_text().splitlines()]
    started = {r["session_id"] for r in records if r["event"] == "session.start"}
    ended = {r["session_id"]: r["close_reason"] for r in records if r["event"] == "session.end"}
    assert set(ended) == started
    assert list(ended.values()).count("shutdown") == 5, ended  # 4 pgbench clients and the late one


# After a first SIGTERM a session inside a transaction keeps running; a
# second SIGTERM, or a first SIGINT, closes it at once with 57P01 and the
# process exits 0 without waiting for shutdown_timeout.
@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT,)],
                         ids=["second-sigterm", "sigint"])
def test_fast_shutdown_closes_sessions_at_once(proxy, tables, signals):
    p = proxy("shutdown_timeout: 10m\n")
    client = _in_transaction(p)
    if len(signals) == 2:
        p.proc.send_signal(signals[0])
        wait_until(lambda: _refused(p), what="the listener to close")
        assert client.query("SELECT 1")[-1] == (b"Z", b"T")  # still served, still in its transaction
    p.proc.send_signal(signals[-1])
    closed, data = client.wait_closed(timeout=20)
    assert closed and _fatal_sqlstate(data) == "57P01", data
    assert p.proc.wait(20) == 0, p.log_tail()
    client.close()


# SIGHUP with a broken file keeps the policy in force and counts an error;
# a valid file afterwards applies and counts a success with a new timestamp.
def test_sighup_with_broken_config_keeps_the_old_policy(proxy, postgres):
    deny_drop = ("rules:\n  - name: no-drop\n    when: { command: [\"DROP *\"] }\n    action: deny\n")
    p = proxy(deny_drop)
    before = scrape(p.admin_port)
    loaded_at = sample(before, "pgwarden_config_last_reload_success_timestamp_seconds")
    good_text = p.config_path.read_text()
    p.config_path.write_text(good_text + "rules: [ this is not yaml\n")
    p.proc.send_signal(signal.SIGHUP)
    after = wait_until(lambda: (s := scrape(p.admin_port))
                       and sample(s, "pgwarden_config_reloads_total", result="error") == 1 and s,
                       what="the failed reload to be counted")
    assert sample(after, "pgwarden_config_reloads_total", result="success") == 0
    assert sample(after, "pgwarden_config_last_reload_success_timestamp_seconds") == loaded_at
    with p.endpoint.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE reload_victim (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
            conn.execute("DROP TABLE reload_victim")
    assert sample(scrape(p.admin_port), "pgwarden_denials_total", rule="no-drop") == 1

    p.config_path.write_text(good_text.replace(deny_drop, ""))
    p.proc.send_signal(signal.SIGHUP)
    done = wait_until(lambda: (s := scrape(p.admin_port))
                      and sample(s, "pgwarden_config_reloads_total", result="success") == 1 and s,
                      what="the good reload to be counted")
    assert sample(done, "pgwarden_config_last_reload_success_timestamp_seconds") >= loaded_at
    with p.endpoint.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE reload_victim")


def _threads(proxy) -> int:
    return len(os.listdir(f"/proc/{proxy.pid}/task"))


# `workers` is the number of event loops, one thread each; both settings
# serve, and a reload that changes it says it waits for a restart and starts
# no thread.
def test_workers_sets_the_event_loops_and_waits_for_a_restart(proxy):
    one, three = proxy("workers: 1\n"), proxy("workers: 3\n")
    assert _threads(three) - _threads(one) == 2
    for p in (one, three):
        with p.endpoint.connect(autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    threads = _threads(one)
    one.config_path.write_text(one.config_path.read_text().replace("workers: 1", "workers: 4"))
    one.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: sample(scrape(one.admin_port), "pgwarden_config_reloads_total", result="success") == 1,
               what="the reload to be counted")
    assert "workers changed: it takes effect when pgwarden restarts" in own_log(one)
    assert _threads(one) == threads


# With $NOTIFY_SOCKET set (Type=notify), pgwarden says READY=1 once it
# listens, RELOADING=1 then READY=1 around a reload, and STOPPING=1 on SIGTERM.
def test_sd_notify_reports_ready_reloading_and_stopping(proxy, monkeypatch, tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(20)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        p = proxy()
        assert sock.recv(4096) == b"READY=1"
        p.proc.send_signal(signal.SIGHUP)
        assert sock.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert sock.recv(4096) == b"READY=1"
        p.proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert p.proc.wait(20) == 0
