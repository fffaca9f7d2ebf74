"""psycopg 3 through the target: extended protocol, pipelines, COPY both
ways, LISTEN/NOTIFY, server-side cursors, errors in transactions, notices."""

import datetime
import decimal
import hashlib
import select
import threading
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

COPY_ROWS = 40000  # about 4 MB each way


def payload_for(i: int) -> str:
    return f"row {i} " + hashlib.sha256(str(i).encode()).hexdigest() + " \u00e9\u4e2d" * (i % 5)


@pytest.fixture
def conn(target):
    c = target.connect()
    try:
        yield c
    finally:
        c.close()


# Parameters of many types go out in Bind and come back unchanged, as text
# and as binary results; a statement prepared server-side runs repeatedly.
def test_parameters_round_trip(conn):
    values = [42, -7.5, "text with 'quotes' and \u00fc\u00f1\u00ef\u00e7\u00f8d\u00e9", None,
              b"\x00\x01\xffbinary", decimal.Decimal("12345.6789"), datetime.date(2024, 2, 29),
              [1, 2, 3], True]
    placeholders = ", ".join(["%s"] * len(values))
    for binary in (False, True):
        row = conn.cursor(binary=binary).execute(f"SELECT {placeholders}", values).fetchone()
        assert list(row) == values
    doc = {"k": [1, "two", None], "nested": {"x": 1.5}}
    assert conn.execute("SELECT %s::jsonb -> 'nested'", [Jsonb(doc)]).fetchone()[0] == {"x": 1.5}
    cur = conn.cursor()
    for i in range(10):
        cur.execute("SELECT %s::int * 2, %s::text || '!'", [i, str(i)], prepare=True)
        assert cur.fetchone() == (i * 2, f"{i}!")
    names = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    assert names >= 1


# Several statements sent in one pipeline (no round trip per statement) all
# run, in order, and their results come back to the right cursors.
def test_pipeline_mode(conn):
    conn.autocommit = True
    conn.execute("CREATE TEMP TABLE p (id int, v text)")
    with conn.pipeline():
        cursors = []
        for i in range(20):
            conn.execute("INSERT INTO p VALUES (%s, %s)", [i, f"v{i}"])
            cursors.append(conn.execute("SELECT count(*), max(id) FROM p"))
        total = conn.execute("SELECT string_agg(v, ',' ORDER BY id) FROM p")
    assert [c.fetchone() for c in cursors] == [(i + 1, i) for i in range(20)]
    assert total.fetchone()[0] == ",".join(f"v{i}" for i in range(20))


# An error inside a pipeline aborts what follows up to the Sync, as the
# server does; the connection stays usable afterwards.
def test_pipeline_error_skips_to_sync(conn):
    conn.autocommit = True
    conn.execute("CREATE TEMP TABLE pe (id int)")
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.pipeline() as p:
            conn.execute("INSERT INTO pe VALUES (1)")
            p.sync()
            conn.execute("SELECT 1/0")
            conn.execute("INSERT INTO pe VALUES (2)")
            p.sync()
    assert conn.execute("SELECT array_agg(id) FROM pe").fetchone()[0] == [1]
    cur = conn.cursor()
    cur.executemany("INSERT INTO pe VALUES (%s)", [(i,) for i in range(3, 103)])
    assert conn.execute("SELECT count(*) FROM pe").fetchone()[0] == 101


# COPY FROM STDIN of a few MB arrives complete and exact.
def test_copy_from_stdin(conn):
    conn.execute("CREATE TEMP TABLE cin (id int, payload text)")
    with conn.cursor().copy("COPY cin (id, payload) FROM STDIN") as copy:
        for i in range(COPY_ROWS):
            copy.write_row((i, payload_for(i)))
    expected = hashlib.md5("\n".join(payload_for(i) for i in range(COPY_ROWS)).encode()).hexdigest()
    row = conn.execute("SELECT count(*), sum(id), md5(string_agg(payload, E'\\n' ORDER BY id)),"
                       " sum(octet_length(payload)) FROM cin").fetchone()
    assert row[:3] == (COPY_ROWS, COPY_ROWS * (COPY_ROWS - 1) // 2, expected)
    assert row[3] > 3_000_000


# COPY TO STDOUT of a few MB delivers exactly the bytes the table holds.
def test_copy_to_stdout(conn):
    conn.execute("CREATE TEMP TABLE cout (id int, payload text)")
    conn.execute("INSERT INTO cout SELECT g, 'row ' || g || ' ' || encode(sha256(g::text::bytea), 'hex')"
                 " || repeat(' \u00e9\u4e2d', g %% 5) FROM generate_series(0, %s) g", [COPY_ROWS - 1])
    received = bytearray()
    with conn.cursor().copy("COPY (SELECT id, payload FROM cout ORDER BY id) TO STDOUT") as copy:
        for chunk in copy:
            received += chunk
    expected = "".join(f"{i}\t{payload_for(i)}\n" for i in range(COPY_ROWS)).encode()
    assert len(received) == len(expected)
    assert received == expected


# A COPY FROM STDIN with a bad row fails with the server's error and context;
# the connection is usable after the rollback.
def test_copy_error(conn):
    conn.execute("CREATE TEMP TABLE cbad (id int)")
    conn.commit()
    with pytest.raises(psycopg.errors.InvalidTextRepresentation) as excinfo:
        with conn.cursor().copy("COPY cbad FROM STDIN") as copy:
            copy.write(b"1\n2\nthree\n4\n")
    assert "COPY cbad, line 3" in excinfo.value.diag.context
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM cbad").fetchone()[0] == 0


# NOTIFY on one connection reaches a LISTENing connection without it sending
# anything, and the payloads arrive in order.
def test_listen_notify(target):
    with target.connect(autocommit=True) as listener, target.connect(autocommit=True) as sender:
        received = []
        listener.add_notify_handler(received.append)
        listener.execute("LISTEN pgwarden_channel")
        sender.execute("NOTIFY pgwarden_channel, 'first'")
        sender.execute("SELECT pg_notify('pgwarden_channel', 'second')")
        with sender.transaction():
            sender.execute("NOTIFY pgwarden_channel, 'third'")
        # The notification must be pushed to the idle listener unprompted.
        readable, _, _ = select.select([listener.fileno()], [], [], 5)
        assert readable, "no notification arrived within 5 s"
        deadline = time.monotonic() + 5
        while len(received) < 3 and time.monotonic() < deadline:
            listener.execute("SELECT 1")
            time.sleep(0.05)
        assert [n.payload for n in received] == ["first", "second", "third"]
        assert {n.channel for n in received} == {"pgwarden_channel"}
        sender_pid = sender.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert {n.pid for n in received} == {sender_pid}


# A server-side (named) cursor streams a large result in batches.
def test_server_side_cursor(conn):
    with conn.transaction():
        cur = conn.cursor(name="big_cursor")
        cur.itersize = 500
        cur.execute("SELECT g, repeat('y', 100) FROM generate_series(1, 20000) g")
        first = cur.fetchmany(3)
        assert first == [(1, "y" * 100), (2, "y" * 100), (3, "y" * 100)]
        rest = list(cur)
        assert len(rest) == 19997 and rest[-1][0] == 20000
        assert sum(r[0] for r in rest) == 20000 * 20001 // 2 - 6
        cur.close()
    with conn.transaction():
        cur = conn.cursor(name="scrolling", scrollable=True)
        cur.execute("SELECT g FROM generate_series(1, 100) g")
        cur.scroll(50, mode="absolute")
        assert cur.fetchone() == (51,)
        cur.scroll(-11)
        assert cur.fetchone() == (41,)
        cur.close()


# An error mid-transaction aborts it: further statements are refused until
# the rollback, the earlier insert is gone, and the connection works on.
def test_error_mid_transaction_then_rollback(conn):
    conn.execute("CREATE TEMP TABLE tx (id int)")
    conn.commit()
    conn.execute("INSERT INTO tx VALUES (1)")
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1/0")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("SELECT 1")
    conn.rollback()
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.execute("SELECT count(*) FROM tx").fetchone()[0] == 0
    conn.execute("INSERT INTO tx VALUES (2)")
    conn.commit()
    assert conn.execute("SELECT array_agg(id) FROM tx").fetchone()[0] == [2]


# A notice raised by the server reaches the client's notice handler with its
# severity, message, detail and hint.
def test_notice_received(conn):
    notices = []
    # A Diagnostic is only valid inside the handler: copy what is checked.
    conn.add_notice_handler(lambda d: notices.append(
        (d.severity_nonlocalized, d.message_primary, d.message_detail, d.message_hint)))
    conn.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42 USING DETAIL = 'd1', HINT = 'h1'; "
                 "RAISE WARNING 'second'; END $$")
    assert notices == [("NOTICE", "hello 42", "d1", "h1"), ("WARNING", "second", None, None)]


# ParameterStatus reaches the client: a SET of a reported setting updates
# what the client knows, and application_name from the DSN is applied.
def test_parameter_status(target):
    with psycopg.connect(target.dsn(application_name="pgwarden-it")) as c:
        assert c.info.parameter_status("application_name") == "pgwarden-it"
        assert c.info.parameter_status("server_version").startswith("15.")
        c.execute("SET application_name = 'renamed'")
        assert c.info.parameter_status("application_name") == "renamed"
        assert c.execute("SELECT current_setting('application_name')").fetchone() == ("renamed",)


# Several clients at once each get their own session and their own results.
def test_concurrent_sessions(target):
    errors, results = [], {}

    def worker(n):
        try:
            with target.connect(autocommit=True) as c:
                c.execute(f"SET application_name = 'worker{n}'")
                for i in range(50):
                    row = c.execute("SELECT %s::int * 1000 + %s::int, current_setting('application_name')",
                                    [n, i]).fetchone()
                    assert row == (n * 1000 + i, f"worker{n}")
                results[n] = True
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 8


# Large values travel intact both ways: a 16 MB bytea parameter (one big
# Bind message) and a 64 MB text result (one big DataRow).
def test_large_values(conn):
    blob = bytes(range(256)) * (16 << 12)
    assert len(blob) == 16 << 20
    echoed, digest = conn.execute("SELECT %b::bytea, md5(%b::bytea)", [blob, blob]).fetchone()
    assert echoed == blob
    assert digest == hashlib.md5(blob).hexdigest()
    big = conn.execute("SELECT repeat('0123456789abcdef', 4 << 20)").fetchone()[0]
    assert len(big) == 64 << 20 and big == "0123456789abcdef" * (4 << 20)


# A client that aborts its COPY FROM STDIN (CopyFail) gets the server's
# "COPY from stdin failed" error; nothing is loaded and the session goes on.
def test_copy_aborted_by_client(conn):
    conn.execute("CREATE TEMP TABLE cfail (id int)")
    conn.commit()
    with pytest.raises(psycopg.errors.QueryCanceled) as excinfo:
        with conn.cursor().copy("COPY cfail FROM STDIN") as copy:
            copy.write(b"1\n2\n")
            raise RuntimeError("client gave up")
    assert "COPY from stdin failed" in str(excinfo.value)
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM cfail").fetchone()[0] == 0
