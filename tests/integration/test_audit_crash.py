"""pgwarden killed with SIGKILL under pgbench load: the audit log it leaves
verifies (a torn last line is reported as torn, not as tampering); in
synced durability every statement the server received has its record,
checked against the server's own log_statement = all; and a restarted
pgwarden continues the same chain."""

from __future__ import annotations

import collections
import re
import subprocess

import pytest

import harness
from audit_helpers import audit_config, audit_files, psql, read_records, statements, verify
from harness import SUPERUSER, client_env
from ops_helpers import wait_until

pytestmark = pytest.mark.proxy_only

CLIENTS = 4
ENOUGH = 1000  # statement records written before the kill


@pytest.fixture(scope="module")
def logged_postgres():
    """A PostgreSQL of these tests' own that logs every statement it
    receives, prefixed with the client's application_name, with pgbench's
    tables."""
    server = harness.PostgresServer()
    try:
        server.init(extra_conf="log_statement = all\nlog_min_messages = warning\nlog_line_prefix = '%a|'\n")
        server.start()
        r = subprocess.run(["pgbench", "-i", "-s", "1", "-q", "-h", server.host, "-p", str(server.port),
                            "-U", SUPERUSER, "postgres"], capture_output=True, text=True, timeout=120,
                           env=client_env())
        assert r.returncode == 0, r.stderr
        yield server
    finally:
        server.destroy()


def server_statements(server, application_name: str) -> list[str]:
    """The statements the server logged for sessions of `application_name`
    (a multi-line statement continues on lines that begin with a tab)."""
    entries = []
    for line in server.log_path.read_text(errors="replace").split("\n"):
        if line.startswith("\t") and entries:
            entries[-1] += "\n" + line[1:]
        else:
            entries.append(line)
    prefix = f"{application_name}|LOG:  statement: "
    return [e[len(prefix):] for e in entries if e.startswith(prefix)]


def start_pgbench(endpoint, application_name: str) -> subprocess.Popen:
    """pgbench -S in simple mode (one statement per transaction, its text
    as the server logs it), long enough to be killed under."""
    cmd = ["pgbench", "-n", "-S", "-M", "simple", "-c", str(CLIENTS), "-j", "2", "-T", "60",
           "-h", endpoint.host, "-p", str(endpoint.port), "-U", SUPERUSER, "postgres"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=client_env(PGAPPNAME=application_name, PGSSLMODE="disable"))


def statement_lines(audit_dir) -> int:
    return sum(p.read_bytes().count(b'"event":"statement"') for p in audit_files(audit_dir))


def kill_under_load(proxy, logged_postgres, application_name: str):
    """Runs pgbench through `proxy`, SIGKILLs pgwarden once ENOUGH statements
    are logged, and waits until the server has seen the last of them."""
    bench = start_pgbench(proxy.endpoint, application_name)
    try:
        wait_until(lambda: statement_lines(proxy.audit_dir) >= ENOUGH, timeout=60,
                   what=f"{ENOUGH} statement records")
        proxy.kill()
    finally:
        out, err = bench.communicate(timeout=60)
    assert bench.returncode != 0, "pgbench should have lost its connections"
    assert "perhaps the backend died while processing" in err, err
    # A backend logs each statement as it arrives; once the backends are
    # gone, everything that reached the server is in its log.
    with logged_postgres.endpoint.connect(autocommit=True) as conn:
        wait_until(lambda: conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                        (application_name,)).fetchone() == (0,),
                   what="the pgbench backends to exit")


def assert_intact_after_crash(audit_dir) -> None:
    result = verify(audit_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout
    for note in re.findall(r"^note: (.*)$", result.stdout, re.MULTILINE):
        assert "torn last line" in note and "not tampering" in note, note


def assert_chain_continues(proxy, before: list[dict]) -> None:
    """Restarts pgwarden on the same file, runs a statement, and checks that
    the new file's restart checkpoint links to the last record before the
    crash and that verify accepts every file."""
    proxy.start()
    r = psql(proxy.endpoint, "SELECT 'after restart';\n")
    assert r.returncode == 0, r.stderr
    assert proxy.stop() == 0
    result = verify(proxy.audit_dir)
    assert result.returncode == 0, result.stdout
    after = read_records(proxy.audit_dir)
    assert after[: len(before)] == before
    checkpoint = after[len(before)]
    assert checkpoint["event"] == "checkpoint" and checkpoint["reason"] == "restart"
    assert (checkpoint["seq"], checkpoint["previous_seq"], checkpoint["previous_hash"]) == \
        (before[-1]["seq"] + 1, before[-1]["seq"], before[-1]["hash"])
    assert checkpoint["previous_file"] == audit_files(proxy.audit_dir)[-2].name
    assert [s["text"] for s in statements(after[len(before):])] == ["SELECT 'after restart';"]


# Synced: SIGKILL during pgbench -S with 4 clients. Every statement the
# server logged has a statement record written before it ran; at most one
# record per client has no counterpart (its statement had not reached the
# server); the log verifies; a restart continues the chain.
def test_kill9_synced_every_executed_statement_has_a_record(pgwarden_factory, logged_postgres, tmp_path):
    audit_dir = tmp_path / "audit"
    proxy = pgwarden_factory(audit_config(logged_postgres, audit_dir, durability="synced"),
                             upstream_port=logged_postgres.port)
    proxy.audit_dir = audit_dir
    kill_under_load(proxy, logged_postgres, "crash_synced")

    executed = collections.Counter(server_statements(logged_postgres, "crash_synced"))
    assert sum(executed.values()) >= ENOUGH
    records = read_records(audit_dir)
    ours = {r["session_id"] for r in records
            if r["event"] == "session.start" and r["application_name"] == "crash_synced"}
    logged = [r for r in statements(records) if r["session_id"] in ours]
    assert all(r["result_follows"] for r in logged)
    recorded = collections.Counter(r["text"] for r in logged)
    assert executed - recorded == collections.Counter(), "statements that ran without a record"
    assert sum((recorded - executed).values()) <= CLIENTS
    # Every statement whose result was recorded did run.
    results = {(r["session_id"], r["statement_id"]) for r in records if r["event"] == "statement.result"}
    done = collections.Counter(r["text"] for r in logged if (r["session_id"], r["statement_id"]) in results)
    assert done - executed == collections.Counter()
    assert_intact_after_crash(audit_dir)
    assert_chain_continues(proxy, records)


def tear_last_line(path) -> None:
    """Cuts the file's last record in half, as a power loss in the middle
    of its write would leave it."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: start + (len(data) - start) // 2])


# Buffered: the same crash may lose the last batch, but what was written
# verifies, every statement recorded as run did run on the server, and a
# restart continues the chain; also when the crash tore the last line in
# half, which verify reports as torn, not as tampering.
def test_kill9_buffered_log_verifies_and_continues(pgwarden_factory, logged_postgres, tmp_path):
    audit_dir = tmp_path / "audit"
    proxy = pgwarden_factory(audit_config(logged_postgres, audit_dir), upstream_port=logged_postgres.port)
    proxy.audit_dir = audit_dir
    kill_under_load(proxy, logged_postgres, "crash_buffered")
    tear_last_line(audit_files(audit_dir)[-1])
    assert "torn last line" in verify(audit_dir).stdout

    executed = collections.Counter(server_statements(logged_postgres, "crash_buffered"))
    records = read_records(audit_dir)
    ran = collections.Counter(r["text"] for r in statements(records)
                              if r["application_name"] == "crash_buffered" and r.get("rows") == 1)
    assert sum(ran.values()) >= ENOUGH - CLIENTS
    assert ran - executed == collections.Counter()
    assert_intact_after_crash(audit_dir)
    assert_chain_continues(proxy, records)
