"""The audit log as pgwarden writes it in front of a real PostgreSQL: psql,
pgbench, psycopg (pipeline mode) and raw extended-protocol sessions produce
complete records (identity, command tags, classes, objects, decision and
rule, rows, SQLSTATE, names of statements and portals, parameters, byte
counts), in both durabilities, with passwords redacted, and
`pgwarden audit verify` accepts every file."""

from __future__ import annotations

import re
import struct
import subprocess

import psycopg
import pytest

from audit_helpers import audit_config, psql, read_records, sessions_of, statements, verify
from harness import (MD5_PASSWORD, MD5_USER, SSL_REQUEST_CODE, SUPERUSER, RawClient, client_env, error_fields,
                     free_port, message)
from ops_helpers import sample, scrape, wait_until

pytestmark = pytest.mark.proxy_only

NOT_EXECUTED = "not executed: an earlier statement of the same request failed"
DENIED_DROP = 'permission denied by pgwarden rule "no-drop"'


@pytest.fixture
def audited(pgwarden_factory, postgres, tmp_path):
    """start(**audit settings) -> a pgwarden whose audit log is in
    `proxy.audit_dir` (a new directory per call)."""
    count = 0

    def start(admin_port=None, **audit):
        nonlocal count
        count += 1
        d = tmp_path / f"audit{count}"
        proxy = pgwarden_factory(audit_config(postgres, d, admin_port=admin_port, **audit))
        proxy.audit_dir = d
        return proxy
    return start


def stopped_records(proxy) -> list[dict]:
    """Stops the proxy (which flushes the log) and returns its records after
    checking that `pgwarden audit verify` accepts the files."""
    assert proxy.stop() == 0
    result = verify(proxy.audit_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: "), result.stdout
    return read_records(proxy.audit_dir)


def outcomes(records: list[dict], session_id: str) -> list[dict]:
    """The session's statements with their outcome, by statement_id: in
    synced durability the statement.result is joined into its statement
    record, checking the link on the way (same session and statement_id,
    written after it)."""
    results = {r["statement_id"]: r for r in records
               if r["event"] == "statement.result" and r["session_id"] == session_id}
    joined = []
    for r in statements(records, session_id):
        r = dict(r)
        if r.pop("result_follows", False):
            assert not {"rows", "sqlstate", "message", "duration_us"} & r.keys(), r
            result = results.pop(r["statement_id"])
            assert result["seq"] > r["seq"]
            for key in ("rows", "sqlstate", "message", "duration_us"):
                if key in result:
                    r[key] = result[key]
        joined.append(r)
    assert not results, f"statement.result without a statement: {results}"
    # In the order the client sent them: a refusal is written at once, a
    # statement that ran when its outcome is known.
    return sorted(joined, key=lambda r: r["statement_id"])


def assert_statement(record: dict, text: str, tags: list[str], classes: list[str], objects: list[dict],
                     rows=None, sqlstate=None, message=None, decision="allow", rule=None,
                     protocol="simple", alert=False, dry_run=False):
    """The fields a reviewer reads, exactly; absent ones must be absent."""
    assert record["text"] == text
    assert record["protocol"] == protocol
    assert record["command_tags"] == tags, text
    assert record["classes"] == classes, text
    assert record["objects"] == objects, text
    assert record["decision"] == decision, text
    assert record.get("rule") == rule, text
    assert record["alert"] is alert, text
    assert record["dry_run"] is dry_run, text
    assert record.get("rows") == rows, text
    assert record.get("sqlstate") == sqlstate, text
    assert record.get("message") == message, text
    assert isinstance(record["duration_us"], int) and record["duration_us"] >= 0, text


PSQL_SCRIPT = """\
CREATE TABLE {t} (id int PRIMARY KEY, name text);
INSERT INTO {t} VALUES (1, 'a'), (2, 'b');
INSERT INTO {t} VALUES (3, 'c');
SELECT id, name FROM {t} ORDER BY id;
SELECT count(*) FROM public.{t};
SELECT 1/0;
DROP TABLE {t};
UPDATE {t} SET name = 'z' WHERE id = 1;
UPDATE {t} SET name = 'all';
"""


# A psql session through pgwarden: the log holds session.start, auth.ok,
# one statement record per statement with tags, classes, objects, the
# deciding rule (alert, dry run, denial), rows from CommandComplete, the
# server's SQLSTATE for 1/0, then session.end; in synced durability each
# allowed statement's outcome is a statement.result linked by statement_id.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_psql_session_records_each_statement_with_its_outcome(audited, admin, durability):
    table = f"audit_items_{durability}"
    proxy = audited(durability=durability)
    r = psql(proxy.endpoint, PSQL_SCRIPT.format(t=table))
    assert "ERROR:  division by zero" in r.stderr
    assert f"ERROR:  {DENIED_DROP}" in r.stderr
    # The denied DROP never ran.
    assert admin.execute(f"SELECT name FROM {table} ORDER BY id").fetchall() == [("all",)] * 3

    records = stopped_records(proxy)
    [sid] = sessions_of(records, "psql")
    mine = [rec for rec in records if rec.get("session_id") == sid]
    assert [rec["event"] for rec in mine[:2]] == ["session.start", "auth.ok"]
    start, auth, end = mine[0], mine[1], mine[-1]
    for rec in mine:
        assert (rec["user"], rec["database"], rec["application_name"], rec["client_addr"], rec["tls"]) == \
            (SUPERUSER, "postgres", "psql", "127.0.0.1", False)
        assert rec["client_port"] == start["client_port"] > 0
    assert auth["auth_method"] == "trust"

    got = outcomes(records, sid)
    assert [rec["statement_id"] for rec in got] == list(range(1, 10))
    obj = {"name": table}
    assert_statement(got[0], f"CREATE TABLE {table} (id int PRIMARY KEY, name text);", ["CREATE TABLE"], ["DDL"],
                     [{**obj, "access": "ddl"}], rule="alert-on-create", alert=True)
    assert_statement(got[1], f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b');", ["INSERT"], ["WRITE"],
                     [{**obj, "access": "write"}], rows=2)
    assert_statement(got[2], f"INSERT INTO {table} VALUES (3, 'c');", ["INSERT"], ["WRITE"],
                     [{**obj, "access": "write"}], rows=1)
    assert_statement(got[3], f"SELECT id, name FROM {table} ORDER BY id;", ["SELECT"], ["READ"],
                     [{**obj, "access": "read"}], rows=3)
    assert_statement(got[4], f"SELECT count(*) FROM public.{table};", ["SELECT"], ["READ"],
                     [{"schema": "public", **obj, "access": "read"}], rows=1)
    assert_statement(got[5], "SELECT 1/0;", ["SELECT"], ["READ"], [], sqlstate="22012", message="division by zero")
    assert_statement(got[6], f"DROP TABLE {table};", ["DROP TABLE"], ["DDL"], [{**obj, "access": "ddl"}],
                     decision="deny", rule="no-drop", sqlstate="42501", message=DENIED_DROP)
    assert got[6]["reason"] == "rule"
    assert_statement(got[7], f"UPDATE {table} SET name = 'z' WHERE id = 1;", ["UPDATE"], ["WRITE"],
                     [{**obj, "access": "write"}], rows=1)
    assert_statement(got[8], f"UPDATE {table} SET name = 'all';", ["UPDATE"], ["WRITE"],
                     [{**obj, "access": "write"}], rows=3, rule="whole-table-update", dry_run=True)

    synced = [rec for rec in statements(records, sid) if rec.get("result_follows")]
    # Synced: every statement that ran was logged before it ran; the denial has no result to follow.
    assert len(synced) == (8 if durability == "synced" else 0)
    assert end["event"] == "session.end"
    assert end["close_reason"] == "client_terminate"
    assert end["statements"] == 9
    assert end["bytes_from_client"] > 0 and end["bytes_to_client"] > end["bytes_from_client"]
    assert end["duration_us"] > 0


# One Query with several statements (psql -c): one record per statement with
# that statement's own text; after the failing one the rest is recorded as
# not executed; a denied statement refuses the whole string, and none of it
# reaches the server.
def test_multi_statement_query_one_record_per_statement(audited, admin):
    admin.execute("CREATE TABLE audit_multi (id int)")
    proxy = audited()
    r = psql(proxy.endpoint, "", "-c", "SELECT 1 AS one;  SELECT 1/0;\n SELECT 2 AS two")
    assert r.returncode == 1 and "division by zero" in r.stderr
    r = psql(proxy.endpoint, "", "-c",
             "INSERT INTO audit_multi VALUES (1); DROP TABLE audit_multi; INSERT INTO audit_multi VALUES (2)")
    assert r.returncode == 1 and DENIED_DROP in r.stderr
    assert admin.execute("SELECT count(*) FROM audit_multi").fetchone() == (0,)

    records = stopped_records(proxy)
    failing, denied = sessions_of(records, "psql")
    got = outcomes(records, failing)
    assert_statement(got[0], "SELECT 1 AS one", ["SELECT"], ["READ"], [], rows=1)
    assert_statement(got[1], "SELECT 1/0", ["SELECT"], ["READ"], [], sqlstate="22012", message="division by zero")
    assert_statement(got[2], "SELECT 2 AS two", ["SELECT"], ["READ"], [], message=NOT_EXECUTED)
    assert len(got) == 3

    got = outcomes(records, denied)
    write = [{"name": "audit_multi", "access": "write"}]
    for rec, text in zip(got, ["INSERT INTO audit_multi VALUES (1)", "DROP TABLE audit_multi",
                               "INSERT INTO audit_multi VALUES (2)"]):
        tags = ["DROP TABLE"] if text.startswith("DROP") else ["INSERT"]
        objects = [{"name": "audit_multi", "access": "ddl"}] if text.startswith("DROP") else write
        assert_statement(rec, text, tags, ["DDL"] if text.startswith("DROP") else ["WRITE"], objects,
                         decision="deny", rule="no-drop", sqlstate="42501", message=DENIED_DROP)
    assert len(got) == 3


def pgbench(endpoint, *args, dbname="audit_bench"):
    cmd = ["pgbench", "-h", endpoint.host, "-p", str(endpoint.port), "-U", SUPERUSER, *args, dbname]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=client_env(PGSSLMODE="disable"))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def processed(output: str) -> int:
    m = re.search(r"^number of transactions actually processed: (\d+)/(\d+)$", output, re.MULTILINE)
    assert m and m.group(1) == m.group(2), output
    return int(m.group(1))


SELECT_ONLY = re.compile(r"SELECT abalance FROM pgbench_accounts WHERE aid = (\d+|\$1);")
MODES = {"simple": ("simple", None), "extended": ("extended", ""), "prepared": ("extended", "P_0")}


# pgbench -i, then -S with 4 clients for a fixed number of transactions in
# simple, extended and prepared mode: the COPY of 100000 rows is recorded
# with its row count, and every client session holds exactly one statement
# record per transaction pgbench reports, with its row, the statement's
# name in the extended protocol, and a session.end counting them.
def test_pgbench_runs_are_recorded_statement_for_statement(audited, postgres):
    postgres.psql_admin("CREATE DATABASE audit_bench")
    proxy = audited()
    pgbench(proxy.endpoint, "-i", "-s", "1", "-q")
    ran = {mode: processed(pgbench(proxy.endpoint, "-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-t", "25"))
           for mode in MODES}
    assert ran == {"simple": 100, "extended": 100, "prepared": 100}

    records = stopped_records(proxy)
    init = sessions_of(records, "pgbench")[0]
    [copy] = [r for r in statements(records, init) if r["command_tags"] == ["COPY"]]
    assert copy["text"] == "copy pgbench_accounts from stdin with (freeze on)"
    assert copy["rows"] == 100000 and copy["protocol"] == "simple"
    assert {"name": "pgbench_accounts", "access": "write"} in copy["objects"]
    assert all(r["decision"] == "allow" and "sqlstate" not in r for r in statements(records, init))

    ends = {r["session_id"]: r for r in records if r["event"] == "session.end"}
    clients = {mode: [] for mode in MODES}
    for sid in sessions_of(records, "pgbench"):
        mine = statements(records, sid)
        assert ends[sid]["statements"] == len(mine)
        assert ends[sid]["close_reason"] == "client_terminate"
        if mine and all(SELECT_ONLY.fullmatch(r["text"]) for r in mine):
            [mode] = [m for m, key in MODES.items() if key == (mine[0]["protocol"], mine[0].get("statement_name"))]
            clients[mode].append(mine)
    for mode, (protocol, name) in MODES.items():
        assert [len(m) for m in clients[mode]] == [25] * 4, mode
        for r in sum(clients[mode], []):
            assert (r["protocol"], r.get("statement_name"), r["rows"], r["command_tags"]) == \
                (protocol, name, 1, ["SELECT"])
            assert r["objects"] == [{"name": "pgbench_accounts", "access": "read"}]
            if protocol == "extended":
                assert (r["text"], r["portal_name"]) == ("SELECT abalance FROM pgbench_accounts WHERE aid = $1;", "")
    assert sum(len(m) for mode in MODES for m in clients[mode]) == sum(ran.values())


# psycopg in pipeline mode: statements queued before one Sync get the
# outcomes in their order, an error or a denial skips the rest of its batch
# (recorded as not executed), and the next batch is matched again; in both
# durabilities.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_pipeline_outcomes_match_their_statements(audited, admin, durability):
    admin.execute("DROP TABLE IF EXISTS audit_pipe; CREATE TABLE audit_pipe (id int)")
    proxy = audited(durability=durability)
    with psycopg.connect(proxy.endpoint.dsn(application_name="pipe"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.pipeline() as p:
                conn.execute("INSERT INTO audit_pipe VALUES (%s), (%s), (%s)", (1, 2, 3))
                conn.execute("SELECT id FROM audit_pipe")
                conn.execute("UPDATE audit_pipe SET id = id + 10 WHERE id > %s", (1,))
                p.sync()
                conn.execute("SELECT 1/0")
                conn.execute("DELETE FROM audit_pipe")
        assert conn.execute("SELECT count(*) FROM audit_pipe WHERE id > 10").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.pipeline():
                conn.execute("INSERT INTO audit_pipe VALUES (%s)", (4,))
                conn.execute("DROP TABLE audit_pipe")
                conn.execute("SELECT id FROM audit_pipe")

    records = stopped_records(proxy)
    [sid] = sessions_of(records, "pipe")
    got = outcomes(records, sid)
    write = [{"name": "audit_pipe", "access": "write"}]
    read = [{"name": "audit_pipe", "access": "read"}]
    assert_statement(got[0], "INSERT INTO audit_pipe VALUES ($1), ($2), ($3)", ["INSERT"], ["WRITE"], write,
                     rows=3, protocol="extended")
    assert_statement(got[1], "SELECT id FROM audit_pipe", ["SELECT"], ["READ"], read, rows=3, protocol="extended")
    assert_statement(got[2], "UPDATE audit_pipe SET id = id + 10 WHERE id > $1", ["UPDATE"], ["WRITE"],
                     [{"name": "audit_pipe", "access": "write"}], rows=2, protocol="extended")
    assert_statement(got[3], "SELECT 1/0", ["SELECT"], ["READ"], [], sqlstate="22012",
                     message="division by zero", protocol="extended")
    assert_statement(got[4], "DELETE FROM audit_pipe", ["DELETE"], ["WRITE"], write, message=NOT_EXECUTED,
                     protocol="extended", rule="whole-table-update", dry_run=True)
    assert_statement(got[5], "SELECT count(*) FROM audit_pipe WHERE id > 10", ["SELECT"], ["READ"], read, rows=1)
    # A denial inside a pipeline: what came before ran, what came after was skipped.
    assert_statement(got[6], "INSERT INTO audit_pipe VALUES ($1)", ["INSERT"], ["WRITE"], write, rows=1,
                     protocol="extended")
    assert_statement(got[7], "DROP TABLE audit_pipe", ["DROP TABLE"], ["DDL"],
                     [{"name": "audit_pipe", "access": "ddl"}], decision="deny", rule="no-drop", sqlstate="42501",
                     message=DENIED_DROP, protocol="extended")
    assert_statement(got[8], "SELECT id FROM audit_pipe", ["SELECT"], ["READ"], read, message=NOT_EXECUTED,
                     protocol="extended")
    assert len(got) == 9


# A session encodes its identity and a prepared statement's classification
# once and reuses them: after SET application_name the records name the new
# one, and prepared statements run in turn each keep their own tags,
# classes and objects.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_records_follow_application_name_and_alternating_statements(audited, admin, durability):
    admin.execute("DROP TABLE IF EXISTS audit_alt; CREATE TABLE audit_alt (id int)")
    proxy = audited(durability=durability)
    with psycopg.connect(proxy.endpoint.dsn(application_name="before"), autocommit=True,
                         prepare_threshold=0) as conn:
        for i in range(3):
            conn.execute("INSERT INTO audit_alt VALUES (%s)", (i,))
            conn.execute("SELECT count(*) FROM audit_alt WHERE id >= %s", (i,))
        conn.execute("SET application_name = 'after'")
        conn.execute("INSERT INTO audit_alt VALUES (%s)", (9,))
        conn.execute("SELECT count(*) FROM audit_alt WHERE id >= %s", (9,))

    records = stopped_records(proxy)
    [sid] = sessions_of(records, "before")
    got = outcomes(records, sid)
    insert = ("INSERT INTO audit_alt VALUES ($1)", ["INSERT"], ["WRITE"], [{"name": "audit_alt", "access": "write"}])
    select = ("SELECT count(*) FROM audit_alt WHERE id >= $1", ["SELECT"], ["READ"],
              [{"name": "audit_alt", "access": "read"}])
    for n in range(3):
        assert_statement(got[2 * n], *insert, rows=1, protocol="extended")
        assert_statement(got[2 * n + 1], *select, rows=1, protocol="extended")
        assert got[2 * n]["statement_name"] != got[2 * n + 1]["statement_name"]
    assert got[6]["command_tags"] == ["SET"]
    assert_statement(got[7], *insert, rows=1, protocol="extended")
    assert_statement(got[8], *select, rows=1, protocol="extended")
    assert [r["application_name"] for r in got] == ["before"] * 7 + ["after"] * 2
    mine = [r for r in records if r.get("session_id") == sid]
    assert mine[-1]["event"] == "session.end" and mine[-1]["application_name"] == "after"
    assert {r["user"] for r in mine} == {SUPERUSER}


def _parse(name: str, sql: str) -> bytes:  # Parse: String name, String query, Int16 0 parameter types
    return message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))


def _bind(portal: str, statement: str, params: list, formats: list[int]) -> bytes:
    # Bind: String portal, String statement, Int16 n + Int16 format codes,
    # Int16 n + (Int32 length (-1 NULL), Byte value)*, Int16 0 result formats
    body = portal.encode() + b"\0" + statement.encode() + b"\0"
    body += struct.pack("!h", len(formats)) + b"".join(struct.pack("!h", f) for f in formats)
    body += struct.pack("!h", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    return message(b"B", body + struct.pack("!h", 0))


def _execute(portal: str, max_rows: int = 0) -> bytes:  # Execute: String portal, Int32 row limit
    return message(b"E", portal.encode() + b"\0" + struct.pack("!i", max_rows))


SYNC = message(b"S", b"")


# Extended protocol from a raw client: named statement and portal, the
# unnamed ones, a row-limited Execute (PortalSuspended) resumed to the end,
# a failing Execute and a denied Parse. Records name the statement and
# portal; Bind parameters (text, NULL, binary) appear per audit.parameters.
@pytest.mark.parametrize("parameters", ["full", "redacted", "none"])
def test_extended_protocol_names_statement_portal_and_parameters(audited, admin, parameters):
    admin.execute("CREATE TABLE IF NOT EXISTS audit_ext (id int, tag text);"
                  "TRUNCATE audit_ext; INSERT INTO audit_ext VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    proxy = audited(parameters=parameters)
    with RawClient(proxy.endpoint) as c:
        c.login()
        c.send(_parse("by_id", "SELECT id FROM audit_ext WHERE id <= $1 AND tag IS DISTINCT FROM $2 ORDER BY id")
               + _bind("cur", "by_id", [b"3", None], [0]) + _execute("cur", 2) + _execute("cur")
               + _bind("", "by_id", [struct.pack("!i", 1), b"z"], [1, 0]) + _execute("") + SYNC)
        replies = c.read_until_ready()
        assert [k for k, _ in replies].count(b"s") == 1  # PortalSuspended after 2 rows
        assert [p for k, p in replies if k == b"C"] == [b"SELECT 1\0", b"SELECT 1\0"]
        c.send(_parse("", "SELECT 10 / $1::int") + _bind("", "", [b"0"], []) + _execute("") + SYNC)
        replies = c.read_until_ready()
        assert [k for k, _ in replies] == [b"1", b"E", b"Z"]  # 10/0 is folded when Bind plans it
        c.send(_parse("drop_it", "DROP TABLE audit_ext") + _bind("", "drop_it", [], []) + _execute("") + SYNC)
        assert [k for k, _ in c.read_until_ready()] == [b"E", b"Z"]
        c.send(_parse("del", "DELETE FROM audit_ext WHERE id = $1") + SYNC)
        assert [k for k, _ in c.read_until_ready()] == [b"E", b"Z"]
        c.send(_bind("p2", "del", [b"2"], []) + _execute("p2") + SYNC)  # a second attempt, in its own batch
        assert [k for k, _ in c.read_until_ready()] == [b"E", b"Z"]
        c.send(message(b"X", b""))

    records = stopped_records(proxy)
    got = outcomes(records, records[1]["session_id"])
    text = "SELECT id FROM audit_ext WHERE id <= $1 AND tag IS DISTINCT FROM $2 ORDER BY id"
    read = [{"name": "audit_ext", "access": "read"}]
    names = [(r["statement_name"], r["portal_name"]) for r in got]
    assert names == [("by_id", "cur"), ("by_id", "cur"), ("by_id", ""), ("", ""), ("drop_it", ""), ("del", ""),
                     ("del", "p2")]
    assert_statement(got[0], text, ["SELECT"], ["READ"], read, protocol="extended")  # suspended: no count yet
    assert_statement(got[1], text, ["SELECT"], ["READ"], read, rows=1, protocol="extended")
    assert_statement(got[2], text, ["SELECT"], ["READ"], read, rows=1, protocol="extended")
    assert_statement(got[3], "SELECT 10 / $1::int", ["SELECT"], ["READ"], [], sqlstate="22012",
                     message="division by zero", protocol="extended")
    assert_statement(got[4], "DROP TABLE audit_ext", ["DROP TABLE"], ["DDL"],
                     [{"name": "audit_ext", "access": "ddl"}], decision="deny", rule="no-drop",
                     sqlstate="42501", message=DENIED_DROP, protocol="extended")
    for r in got[5:]:
        assert_statement(r, "DELETE FROM audit_ext WHERE id = $1", ["DELETE"], ["WRITE"],
                         [{"name": "audit_ext", "access": "write"}], decision="deny", rule="no-delete-from-ext",
                         sqlstate="42501", message='permission denied by pgwarden rule "no-delete-from-ext"',
                         protocol="extended")
    assert len(got) == 7
    # The denied Bind's parameter is recorded like an executed one's.
    expected = {"full": [["3", None], ["3", None], [{"binary": "00000001"}, "z"], ["0"], None, None, ["2"]],
                "redacted": [None] * 7, "none": [None] * 7}[parameters]
    assert [r.get("parameters") for r in got] == expected
    counts = [r.get("parameter_count") for r in got]
    assert counts == ([None] * 7 if parameters == "none" else [2, 2, 2, 1, None, None, 1])
    assert admin.execute("SELECT count(*) FROM audit_ext").fetchone() == (3,)


# Passwords in CREATE/ALTER ROLE (simple and extended protocol, run or
# denied) never reach the file, with audit.parameters: full: the raw bytes
# of every file are searched for them.
def test_passwords_are_redacted_in_the_file(audited, admin):
    proxy = audited(parameters="full")
    r = psql(proxy.endpoint, "CREATE ROLE audit_pw LOGIN PASSWORD 'pw-secret-one';\n"
                             "ALTER ROLE audit_pw WITH ENCRYPTED PASSWORD 'pw-secret-two';\n"
                             "ALTER USER audit_pw PASSWORD 'pw-secret-three' VALID UNTIL 'infinity';\n")
    assert r.returncode == 0, r.stderr
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        conn.execute("ALTER ROLE audit_pw PASSWORD 'pw-secret-four'", prepare=True)
    r = psql(proxy.endpoint, "CREATE USER audit_pw_denied PASSWORD 'pw-secret-five';\n",
             application_name="locked")
    assert "no-new-roles-from-locked" in r.stderr
    assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'audit_pw_denied'").fetchone() == (0,)
    admin.execute("DROP ROLE audit_pw")

    records = stopped_records(proxy)
    raw = b"".join(p.read_bytes() for p in proxy.audit_dir.iterdir())
    assert b"pw-secret" not in raw
    texts = [(r["text"], r["decision"], r["protocol"]) for r in statements(records)]
    assert texts == [
        ("CREATE ROLE audit_pw LOGIN PASSWORD '***';", "allow", "simple"),
        ("ALTER ROLE audit_pw WITH ENCRYPTED PASSWORD '***';", "allow", "simple"),
        ("ALTER USER audit_pw PASSWORD '***' VALID UNTIL 'infinity';", "allow", "simple"),
        ("ALTER ROLE audit_pw PASSWORD '***'", "allow", "extended"),
        ("CREATE USER audit_pw_denied PASSWORD '***';", "deny", "simple"),
    ]


# A session in SJIS: the record holds the statement in UTF-8, as the server
# read it; bytes that are not SJIS are refused (22021, unreadable_text) and
# recorded without breaking the file's JSON.
def test_records_hold_the_text_the_server_read(audited):
    proxy = audited()
    with RawClient(proxy.endpoint) as c:
        assert not [p for k, p in c.login(client_encoding="SJIS") if k == b"E"]
        c.send(message(b"Q", b"SELECT '\x95\x5c' AS hyou\0"))
        assert not [p for k, p in c.read_until_ready() if k == b"E"]
        c.send(message(b"Q", b"SELECT '\x95' AS cut\0"))
        errors = [error_fields(p) for k, p in c.read_until_ready() if k == b"E"]
        assert [e["C"] for e in errors] == ["22021"], errors
    records = stopped_records(proxy)
    got = [(r["text"], r["decision"], r.get("reason"), r.get("sqlstate")) for r in statements(records)]
    assert got[0] == ("SELECT '\u8868' AS hyou", "allow", None, None)
    assert got[1][1:] == ("deny", "unreadable_text", "22021")
    assert got[1][0].startswith("SELECT '") and got[1][0].endswith("' AS cut")


class CountingClient(RawClient):
    """A raw client that counts every byte it sends and receives."""

    def __init__(self, endpoint):
        super().__init__(endpoint)
        self.sent = self.received = 0

    def send(self, data: bytes) -> None:
        self.sent += len(data)
        super().send(data)

    def read_message(self):
        kind, payload = super().read_message()
        self.received += 5 + len(payload)
        return kind, payload

    def refused_ssl(self) -> None:
        """SSLRequest (Int32 8, Int32 80877103), answered 'N': no TLS here."""
        self.send(struct.pack("!II", 8, SSL_REQUEST_CODE))
        assert self.sock.recv(1) == b"N"
        self.received += 1


# session.end counts exactly the bytes the client sent and received
# (pgwarden's own 'N' to an SSLRequest, a denial rewritten by pgwarden and
# its FATAL included), the statements, and why the session ended:
# Terminate, the client closing its socket, a malformed message.
def test_session_end_counts_bytes_and_says_why_it_ended(audited):
    proxy = audited()
    counted = []
    with CountingClient(proxy.endpoint) as c:
        c.refused_ssl()
        c.login()
        c.query("SELECT 1; SELECT 2")
        c.query("DROP TABLE no_such_table")
        c.send(message(b"X", b""))
        assert c.wait_closed() == (True, b"")
        counted.append((c.sent, c.received))
    with RawClient(proxy.endpoint) as c:
        c.login()
        c.query("SELECT 3")
    with CountingClient(proxy.endpoint) as c:
        c.login()
        c.send(message(b"?", b"junk"))
        kind, payload = c.read_message()
        assert kind == b"E" and error_fields(payload)["S"] == "FATAL"
        assert c.wait_closed() == (True, b"")
        counted.append((c.sent, c.received))
    ends = wait_until(lambda: (e := [r for r in read_records(proxy.audit_dir) if r["event"] == "session.end"])
                      and len(e) == 3 and e, what="three session.end records")
    assert [(e["bytes_from_client"], e["bytes_to_client"]) for e in (ends[0], ends[2])] == counted
    assert [(e["statements"], e["close_reason"]) for e in ends] == \
        [(3, "client_terminate"), (1, "client_closed"), (0, "client_protocol_error")]
    assert verify(proxy.audit_dir).returncode == 0


# A wrong password (relayed md5): the server's refusal is recorded as
# auth.fail with its SQLSTATE and message, between session.start and
# session.end, and no auth.ok; the right password then gives auth.ok with
# the method used.
def test_failed_login_is_recorded_with_the_servers_sqlstate(audited):
    proxy = audited()
    with RawClient(proxy.endpoint) as c:
        replies = c.login(user=MD5_USER, password="wrong")
        assert error_fields(replies[-1][1])["C"] == "28P01"
        assert c.wait_closed()[0]  # the server refuses the session, relayed (passthrough)
    with RawClient(proxy.endpoint) as c:
        assert c.login(user=MD5_USER, password=MD5_PASSWORD)[-1][0] == b"Z"
        c.send(message(b"X", b""))
    records = stopped_records(proxy)
    events = [(r["event"], r.get("user")) for r in records if r["event"] != "checkpoint"]
    assert events == [("session.start", MD5_USER), ("auth.fail", MD5_USER), ("session.end", MD5_USER),
                      ("session.start", MD5_USER), ("auth.ok", MD5_USER), ("session.end", MD5_USER)]
    fail = records[2]
    assert (fail["sqlstate"], fail["message"], fail["auth_method"]) == \
        ("28P01", f'password authentication failed for user "{MD5_USER}"', "md5")
    assert records[3]["close_reason"] == "server_refused"
    assert records[5]["auth_method"] == "md5"
    assert records[6]["close_reason"] == "client_terminate"


# A tiny audit queue (2 records) under 8 pgbench clients and a 20-statement
# pipeline: a full queue only slows sessions down. Every transaction
# succeeds, in synced durability too, and each statement has its record
# (and statement.result) in the order the client sent them.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_full_queue_slows_sessions_and_refuses_nothing(audited, admin, tmp_path, durability):
    admin.execute("DROP TABLE IF EXISTS audit_queue; CREATE TABLE audit_queue (id int)")
    script = tmp_path / "select.sql"
    script.write_text("\\set n random(1, 1000000)\nSELECT :n;\n")
    proxy = audited(durability=durability, queue_records=2)
    ran = pgbench(proxy.endpoint, "-n", "-f", str(script), "-c", "8", "-j", "2", "-t", "25", dbname="postgres")
    assert processed(ran) == 200
    with psycopg.connect(proxy.endpoint.dsn(application_name="queue"), autocommit=True) as conn:
        with conn.pipeline():
            for i in range(20):
                conn.execute("INSERT INTO audit_queue VALUES (%s)", (i,))
    assert admin.execute("SELECT count(*) FROM audit_queue").fetchone() == (20,)

    records = stopped_records(proxy)
    selects = [r for r in statements(records) if re.fullmatch(r"SELECT \d+;", r["text"])]
    assert len(selects) == 200 and all(r.get("rows", 1) == 1 for r in selects)
    [sid] = sessions_of(records, "queue")
    got = outcomes(records, sid)
    assert [(r["statement_id"], r["rows"], r.get("sqlstate")) for r in got] == [(i, 1, None) for i in range(1, 21)]
    if durability == "synced":
        assert all(r["result_follows"] for r in selects + statements(records, sid))


# /metrics shows what synced durability costs: one wait per statement
# forwarded (psql sends each on its own), none for a denied statement, which
# is never forwarded, and none at all in buffered durability; the syncs that
# made the records durable are counted beside it.
@pytest.mark.parametrize("durability", ["buffered", "synced"])
def test_metrics_count_the_waits_for_durable_records(audited, durability):
    port = free_port()
    proxy = audited(admin_port=port, durability=durability)
    r = psql(proxy.endpoint, "SELECT 1;\nSELECT 2;\nDROP TABLE audit_never_created;\nSELECT 3;\nSELECT 4;\n")
    assert f"ERROR:  {DENIED_DROP}" in r.stderr
    assert r.stdout.count("(1 row)") == 4, r.stdout + r.stderr
    m = wait_until(lambda: scrape(port), what="the admin server")
    waits = sample(m, "pgwarden_audit_durable_wait_seconds_count")
    assert sample(m, "pgwarden_audit_durable_wait_seconds_bucket", le="+Inf") == waits
    if durability == "buffered":
        assert waits == 0
        assert sample(m, "pgwarden_audit_durable_wait_seconds_sum") == 0
    else:
        assert waits == 4
        assert sample(m, "pgwarden_audit_durable_wait_seconds_sum") > 0
        assert sample(m, "pgwarden_audit_sync_seconds_count") >= 4
