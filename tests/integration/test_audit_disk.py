"""The audit file on a full disk (a 256 KiB tmpfs the test mounts, filled
by a filler file): with on_failure: block statements are refused with
58030 and none reaches the server, /readyz says why, and traffic resumes
on its own once space is freed; with on_failure: continue traffic goes on
and the lost records are declared in the file. Both durabilities."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest

from audit_helpers import audit_config, fill, read_records, statements, tmpfs, verify
from harness import ConnectionClosed, RawClient, error_fields, free_port, message
from ops_helpers import http_request, sample, scrape, wait_until

pytestmark = [
    pytest.mark.proxy_only,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting the small tmpfs these tests fill needs root"),
]

REFUSAL = ("pgwarden cannot write its audit log, so the statement was not run (audit.on_failure: block); "
           "statements run again as soon as the log is writable")
FATAL_REFUSAL = "pgwarden could not write the audit records of these statements, so they were not run"


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs."""
    with tmpfs(tmp_path / "small", "256k") as mnt:
        yield mnt


@pytest.fixture
def disk_proxy(small_fs, pgwarden_factory, postgres, admin):
    """start(**audit settings) -> pgwarden with its audit log on the small
    filesystem and its admin server (`.admin_port`), ready."""
    admin.execute("CREATE TABLE IF NOT EXISTS disk_marks (mark text PRIMARY KEY)")

    def start(**audit):
        port = free_port()
        proxy = pgwarden_factory(audit_config(postgres, small_fs / "audit", admin_port=port, **audit))
        proxy.admin_port, proxy.audit_dir = port, small_fs / "audit"
        wait_until(lambda: readyz(proxy)[0] == 200, what="/readyz 200")
        return proxy
    return start


def readyz(proxy) -> tuple[int, str]:
    status, _, body = http_request(proxy.admin_port, "/readyz")
    return status, body


def run(client: RawClient, sql: str) -> dict | None:
    """One Query; the ErrorResponse's fields, or None when it succeeded."""
    client.send(message(b"Q", sql.encode() + b"\0"))
    error = None
    while True:
        try:
            kind, payload = client.read_message()
        except ConnectionClosed:
            assert error and error["S"] == "FATAL", error
            return error
        if kind == b"E":
            error = error_fields(payload)
        elif kind == b"Z":
            return error


def marks_on_server(admin, prefix: str) -> set[str]:
    return {m for (m,) in admin.execute("SELECT mark FROM disk_marks WHERE mark LIKE %s", (prefix + "%",))}


def outcome_by_mark(records: list[dict], prefix: str) -> dict[str, dict]:
    """For each mark inserted (a literal in the text, or the bound
    parameter), its statement record with the outcome joined in (synced:
    from its statement.result); two records for one mark fail the test."""
    results = {(r["session_id"], r["statement_id"]): r for r in records if r["event"] == "statement.result"}
    out = {}
    for r in statements(records):
        mark = r["text"].split("'")[1] if "'" in r["text"] else (r.get("parameters") or [""])[0]
        if not mark.startswith(prefix):
            continue
        assert mark not in out, f"two records for {mark}"
        r = dict(r)
        if r.pop("result_follows", False):
            r.update({k: v for k, v in results.get((r["session_id"], r["statement_id"]), {}).items()
                      if k in ("rows", "sqlstate", "message")})
        out[mark] = r
    return out


# on_failure: block. The disk fills under a probing session; the first
# statement that cannot be logged is refused with 58030 and every later one
# too (on an idle connection, simple and extended protocol, and on a new
# connection), /readyz turns 503 and names the audit log, none of the
# refused statements reaches the server, and the write error is counted.
# Freed space: traffic resumes on the same and on new connections with no
# restart, and the log verifies with nothing lost: each mark the server
# holds has its record with the row, each refused one a 58030 record.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_full_disk_blocks_statements_until_space_is_freed(disk_proxy, small_fs, admin, durability):
    proxy = disk_proxy(durability=durability, on_failure="block", parameters="full")
    prefix = f"block-{durability}-"
    idle = psycopg.connect(proxy.endpoint.dsn(application_name="idle"), autocommit=True)
    assert idle.execute("SELECT 1").fetchone() == (1,)
    filler = fill(small_fs)

    # Records may still fit into the file's last page; probe until one does not.
    ran, refused = set(), set()
    with RawClient(proxy.endpoint) as probe:
        probe.login()
        for i in range(5000):
            mark = f"{prefix}probe-{i}"
            error = run(probe, f"INSERT INTO disk_marks VALUES ('{mark}')")
            if error is None:
                ran.add(mark)
                continue
            refused.add(mark)
            assert error["C"] == "58030", error
            # Refused before it was forwarded (ERROR), or synced: its batch
            # was waiting for the disk when the write failed (FATAL).
            assert (error["S"], error["M"]) in {
                ("ERROR", REFUSAL),
                ("FATAL", FATAL_REFUSAL)}
            break
    assert refused, "no statement was refused"
    status, body = wait_until(lambda: (r := readyz(proxy))[0] == 503 and r, what="/readyz 503")
    assert "audit: the audit log cannot be written" in body

    for sql, params in ((f"INSERT INTO disk_marks VALUES ('{prefix}idle-simple')", None),
                        ("INSERT INTO disk_marks VALUES (%s)", (f"{prefix}idle-extended",))):
        with pytest.raises(psycopg.errors.IoError) as e:
            idle.execute(sql, params)
        assert (e.value.sqlstate, e.value.diag.message_primary) == ("58030", REFUSAL)
        refused.add(params[0] if params else f"{prefix}idle-simple")
    with psycopg.connect(proxy.endpoint.dsn(application_name="new"), autocommit=True) as new:
        with pytest.raises(psycopg.errors.IoError):
            new.execute("INSERT INTO disk_marks VALUES (%s)", (f"{prefix}new",))
        refused.add(f"{prefix}new")
    assert marks_on_server(admin, prefix) == ran
    assert sample(scrape(proxy.admin_port), "pgwarden_audit_write_errors_total") >= 1

    os.unlink(filler)
    wait_until(lambda: readyz(proxy)[0] == 200, what="/readyz 200 once space is free")
    idle.execute("INSERT INTO disk_marks VALUES (%s)", (f"{prefix}resumed-idle",))
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as new:
        new.execute(f"INSERT INTO disk_marks VALUES ('{prefix}resumed-new')")
    idle.close()
    ran |= {f"{prefix}resumed-idle", f"{prefix}resumed-new"}
    assert marks_on_server(admin, prefix) == ran

    assert proxy.stop() == 0
    result = verify(proxy.audit_dir)
    assert result.returncode == 0, result.stdout
    assert "writing resumed after a failure (write " in result.stdout
    assert "No space left on device" in result.stdout and "no record was lost" in result.stdout
    records = read_records(proxy.audit_dir)
    got = outcome_by_mark(records, prefix)
    for mark in ran:
        assert (got[mark]["decision"], got[mark].get("rows"), got[mark].get("sqlstate")) == ("allow", 1, None)
    # A statement refused before it was forwarded is counted in its
    # session's statement.refusals record; one whose record was already
    # accepted (synced, FATAL) keeps it, with a 58030 outcome.
    individually = set(got) - ran
    assert individually <= refused
    for mark in individually:
        assert got[mark]["sqlstate"] == "58030" and "rows" not in got[mark], got[mark]
    counted = [r for r in records if r["event"] == "statement.refusals"]
    assert all(r["reason"] == "audit_unavailable" and r["sqlstate"] == "58030" for r in counted), counted
    assert len(individually) + sum(r["count"] for r in counted) == len(refused)


# on_failure: continue. With the disk full every statement still runs;
# /readyz reports the failing log and the write errors are counted. Once
# space is freed the file resumes with a recover checkpoint declaring
# exactly how many records were lost, which verify reports as a declared
# gap, not as tampering.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_full_disk_in_continue_mode_keeps_serving_and_declares_the_gap(disk_proxy, small_fs, admin, durability):
    proxy = disk_proxy(durability=durability, on_failure="continue")
    prefix = f"continue-{durability}-"
    errors_before = sample(scrape(proxy.admin_port), "pgwarden_audit_write_errors_total")
    marks = []
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        filler = fill(small_fs)

        def insert():
            marks.append(f"{prefix}{len(marks)}")
            conn.execute(f"INSERT INTO disk_marks VALUES ('{marks[-1]}')")
        # Until the writer has failed at least once, then some more.
        wait_until(lambda: insert() or sample(scrape(proxy.admin_port), "pgwarden_audit_write_errors_total")
                   > errors_before, interval=0, what="an audit write error")
        for _ in range(10):
            insert()
        status, body = wait_until(lambda: (r := readyz(proxy))[0] == 503 and r, what="/readyz 503")
        assert "audit: the audit log cannot be written" in body
        os.unlink(filler)
        wait_until(lambda: readyz(proxy)[0] == 200, what="/readyz 200 once space is free")
        for _ in range(3):
            insert()
    assert marks_on_server(admin, prefix) == set(marks)

    assert proxy.stop() == 0
    result = verify(proxy.audit_dir)
    assert result.returncode == 0, result.stdout
    assert "records were lost while the file could not be written" in result.stdout
    assert "not tampering" in result.stdout
    records = read_records(proxy.audit_dir)
    [recover] = [r for r in records if r["event"] == "checkpoint" and r["reason"] == "recover"]
    # One session with inserts only: session.start, auth.ok, per statement
    # one record (buffered) or two (synced: statement and statement.result),
    # session.end; the missing ones are exactly the declared loss.
    [session] = {r["session_id"] for r in records if "session_id" in r}
    written = sum(r.get("session_id") == session for r in records)
    expected = 3 + len(marks) * (2 if durability == "synced" else 1)
    assert recover["records_lost"] == expected - written > 0
    # Every record kept says the statement ran (synced: unless its result was the one lost).
    got = outcome_by_mark(records, prefix)
    assert got and all(r["decision"] == "allow" and "sqlstate" not in r for r in got.values())
    assert all(r.get("rows", 1 if durability == "synced" else None) == 1 for r in got.values())


def refusing_clients(endpoint, clients: int, seconds: float, max_refused: int | None = None) -> tuple[int, int]:
    """`clients` threads loop `SELECT 1` for `seconds` (or until `max_refused`
    were refused), reconnecting after a FATAL; returns (statements refused
    with 58030, statements run)."""
    counts = {"refused": 0, "ran": 0, "other": []}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop():
        conn = None
        while time.monotonic() < deadline and (max_refused is None or counts["refused"] < max_refused):
            error = None
            try:
                conn = conn or psycopg.connect(endpoint.dsn(application_name="retrying"), autocommit=True)
                conn.execute("SELECT 1")
                key = "ran"
            except psycopg.Error as e:
                # 58030 as an ERROR, or as the FATAL of a synced batch that
                # was waiting for the disk when the write failed (the
                # connection then closes, and psycopg may report no SQLSTATE).
                refused = e.sqlstate == "58030" or FATAL_REFUSAL in str(e)
                key, error = ("refused" if refused else "other"), repr(e)
                if conn is not None and conn.closed:
                    conn = None
            with lock:
                if key == "other":
                    counts["other"].append(error)
                else:
                    counts[key] += 1
        if conn is not None:
            conn.close()

    # Daemons: a proxy that stops answering must not hang the caller.
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 10)
    stuck = sum(t.is_alive() for t in threads)
    assert not stuck, f"{stuck} clients got no answer for 10 s ({counts['refused']} refused before)"
    assert not counts["other"], counts["other"][:3]
    return counts["refused"], counts["ran"]


# The outage of issue 18: synced durability, on_failure: block, the audit
# file on a 2 MiB tmpfs that fills up while 4 clients keep retrying. Each
# refusal would have been a record of its own (thousands of them, kept in
# memory and written in one piece, which fails until all of it fits). Now
# they are counted per session, so freeing a quarter of that backlog's size
# is plenty: statements run again within a second, the directory holds no
# file with a checkpoint alone, verify passes, and every refusal a client
# saw is accounted for in the chain.
def test_full_disk_recovers_within_a_second_of_freeing_a_quarter_of_the_backlog(tmp_path, pgwarden_factory,
                                                                                  postgres):
    with tmpfs(tmp_path / "two-mib", "2m") as fs:
        port = free_port()
        proxy = pgwarden_factory(audit_config(postgres, fs / "audit", admin_port=port, durability="synced",
                                              on_failure="block"))
        proxy.admin_port = port
        with psycopg.connect(proxy.endpoint.dsn(application_name="sizer"), autocommit=True) as conn:
            conn.execute("SELECT 1")
        # What one refusal would cost as a record of its own: at least the
        # line of this statement record (a refusal adds an outcome to it).
        line = max(len(line) for line in (fs / "audit" / "pgwarden.jsonl").read_bytes().split(b"\n")
                   if b'"event":"statement"' in line)
        filler = fill(fs)
        # Enough refusals that their records alone would overflow the disk,
        # few enough that a quarter of them fits in the space the filler holds.
        refused, ran = refusing_clients(proxy.endpoint, clients=4, seconds=20, max_refused=5000)
        assert refused >= 5000, (refused, ran)
        assert readyz(proxy)[0] == 503
        backlog = refused * (line + 1)

        freed = backlog // 4
        size = os.path.getsize(filler)
        assert freed < size
        os.truncate(filler, size - freed)
        freed_at = time.monotonic()
        waiting = []  # refusals while waiting for the log to recover
        with psycopg.connect(proxy.endpoint.dsn(application_name="after"), autocommit=True) as conn:
            recovered = wait_until(lambda: _runs(conn, waiting), timeout=10, interval=0.01,
                                   what="a statement that runs")
        elapsed = time.monotonic() - freed_at
        refused += len(waiting)
        print(f"\nrefused {refused} statements ({ran} ran), one record >= {line + 1} bytes: backlog {backlog} bytes; "
              f"freed {freed} bytes; statements ran again after {elapsed:.3f} s")
        assert recovered and elapsed < 1.0, elapsed
        assert wait_until(lambda: readyz(proxy)[0] == 200, timeout=2, what="/readyz 200")

        assert proxy.stop() == 0
        result = verify(fs / "audit")
        assert result.returncode == 0, result.stdout
        records = read_records(fs / "audit")
        files = [p for p in (fs / "audit").iterdir() if p.name.endswith(".jsonl")]
        assert len(files) == 2, sorted(p.name for p in files)  # the failed file and the one recovery began
        for p in files:
            assert len(p.read_bytes().splitlines()) > 1, f"{p.name} holds a checkpoint alone"
        counted = sum(r["count"] for r in records if r["event"] == "statement.refusals")
        individually = sum(1 for r in records if r.get("sqlstate") == "58030" and r["event"] in
                           ("statement", "statement.result"))
        assert counted + individually == refused, (counted, individually, refused)
        print(f"accounted: {counted} in statement.refusals records, {individually} one by one; "
              f"{sum(r['event'] == 'statement.refusals' for r in records)} statement.refusals records")
        log = proxy.log_path.read_text()
        assert "writing " in log and " again after " in log and "records kept during the failure, 0 records lost" in log
        assert "counted in" in log


def _runs(conn, refusals: list) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.errors.IoError as e:
        refusals.append(e.sqlstate)
        return False
