"""Real drivers through pgwarden with TLS on both hops: psycopg 3, asyncpg,
node-postgres and pgJDBC each verify pgwarden's certificate (test CA, host name
localhost), and pgwarden verifies PostgreSQL's (verify-full, ssl=on). Each
runs queries, server-side prepared statements, transactions and COPY both
ways; the effects are checked on the server directly.

Every proxy here has `tls.required: true`, so a driver that got in at all got
in over TLS (a plaintext attempt is shown to be refused), and the drivers that
expose the peer certificate are checked to have been served pgwarden's."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import shutil
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import asyncpg
import psycopg
import pytest

import jdbc_client
from harness import MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, PostgresServer, client_env
from jdbc_client import check_workload, jdbc_url, run_exercise

pytestmark = pytest.mark.proxy_only

NODE_CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
COPY_ROWS = 3000        # about 300 kB each way: many CopyData messages, still quick
SERVER_NAME = "localhost"


# ---------------------------------------------------------------------------
# How pgwarden authenticates, and as whom the drivers log in.

@dataclasses.dataclass(frozen=True)
class ProxyMode:
    """One way of running the drivers: pgwarden's `auth` settings (made by
    `auth_settings(workdir, server)`, which may write files such as an
    auth_file) and the user the drivers log in as."""
    name: str
    auth_settings: Callable[[Path, PostgresServer], str]
    user: str
    password: str | None


def passthrough(_workdir: Path, _server: PostgresServer) -> str:
    return "auth: passthrough\n"


def scram_auth_file(workdir: Path, server: PostgresServer) -> str:
    """auth: scram with scram_user's stored secret (pg_authid.rolpassword)
    in an auth_file, so pgwarden itself verifies the drivers' SCRAM
    (channel binding included, to pgwarden's certificate) and logs into the
    TLS server with the recovered ClientKey."""
    secret = server.psql_admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{SCRAM_USER}'").strip()
    path = workdir / "drivers-userlist.txt"
    path.write_text(f'"{SCRAM_USER}" "{secret}"\n')
    return f"auth: {{ mode: scram, auth_file: {path} }}\n"


PROXY_MODES = [
    ProxyMode("passthrough-trust", passthrough, SUPERUSER, None),
    ProxyMode("passthrough-md5", passthrough, MD5_USER, MD5_PASSWORD),
    ProxyMode("scram", scram_auth_file, SCRAM_USER, SCRAM_PASSWORD),
]


@pytest.fixture(scope="module")
def proxy_cert_der(proxy_cert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(proxy_cert[0].read_text())


@pytest.fixture(params=PROXY_MODES, ids=lambda mode: mode.name)
def proxy_mode(request) -> ProxyMode:
    return request.param


@pytest.fixture
def proxy(pgwarden_factory, tls_postgres, pki, proxy_cert, workdir, proxy_mode):
    """pgwarden with TLS required from clients and verify-full to the server."""
    cert, key = proxy_cert
    config = ("listen: 127.0.0.1:{listen_port}\n"
              f"upstream: {{ host: 127.0.0.1, port: {tls_postgres.port}, tls: verify-full, ca: {pki.ca_cert} }}\n"
              f"tls: {{ cert: {cert}, key: {key}, required: true }}\n"
              + proxy_mode.auth_settings(workdir, tls_postgres))
    return pgwarden_factory(config, upstream_port=tls_postgres.port)


@pytest.fixture
def server(tls_postgres):
    """An autocommit connection straight to the TLS PostgreSQL, for checks."""
    with tls_postgres.endpoint.connect(autocommit=True) as conn:
        yield conn


@pytest.fixture
def fresh_table(server):
    """An empty table (id int primary key, v text) every test role may use."""
    name = f"drv_{uuid.uuid4().hex[:10]}"
    server.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text NOT NULL)")
    server.execute(f"GRANT ALL ON {name} TO PUBLIC")
    yield name
    server.execute(f"DROP TABLE {name}")


def copy_value(i: int) -> str:
    """Row i of the COPY tests (same as copyValue in tests/clients/node/exercise.js):
    a tab and a backslash that COPY must escape, and multi-byte characters."""
    return f"row {i}\tsha={hashlib.sha256(str(i).encode()).hexdigest()}\\ \u00e9\u4e2d"


def copy_text(rows) -> bytes:
    """COPY's text format of (id, v) rows, as the server writes it."""
    def escape(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return "".join(f"{i}\t{escape(v)}\n" for i, v in rows).encode()


def table_rows(server, table) -> list[tuple[int, str]]:
    return server.execute(f"SELECT id, v FROM {table} ORDER BY id").fetchall()


def backend_seen_by_server(server, pid) -> tuple[str, bool]:
    """(user, ssl) of a backend as the server itself reports it."""
    return server.execute("SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                          "WHERE pid = %s", [pid]).fetchone()


# ---------------------------------------------------------------------------
# psycopg 3 (libpq): sslmode=verify-full against the test CA.

def psycopg_connect(proxy, pki, mode, **kw) -> psycopg.Connection:
    dsn = proxy.endpoint.dsn(user=mode.user, password=mode.password, host=SERVER_NAME,
                             sslmode="verify-full", sslrootcert=pki.ca_cert)
    return psycopg.connect(dsn, autocommit=True, **kw)


# psycopg verifies pgwarden's certificate and logs in; the server sees the
# same user on a backend whose own connection is TLS too.
def test_psycopg_logs_in_over_tls_on_both_hops(proxy, pki, proxy_mode, server):
    with psycopg_connect(proxy, pki, proxy_mode) as conn:
        assert conn.info.pgconn.ssl_in_use
        user, ssl_on, pid = conn.execute(
            "SELECT current_user, ssl, pg_backend_pid() FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert (user, ssl_on) == (proxy_mode.user, True)
        assert backend_seen_by_server(server, pid) == (proxy_mode.user, True)


# Simple-protocol queries, a multi-statement string with one result per
# statement, and an error that leaves the connection usable.
def test_psycopg_simple_queries(proxy, pki, proxy_mode):
    with psycopg_connect(proxy, pki, proxy_mode) as conn:
        assert conn.execute("SELECT 40 + 2, 'caf\u00e9 \u4e2d'").fetchone() == (42, "caf\u00e9 \u4e2d")
        cur = conn.execute("SELECT 1; SELECT 'two', 3")
        assert cur.fetchall() == [(1,)]
        assert cur.nextset() and cur.fetchall() == [("two", 3)]
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SELECT count(*) FROM generate_series(1, 1000)").fetchone() == (1000,)


# With prepare_threshold=0 every statement is prepared server-side once
# (Parse with a name) and then only bound and executed; results stay right.
def test_psycopg_server_side_prepared_statements(proxy, pki, proxy_mode, server, fresh_table):
    with psycopg_connect(proxy, pki, proxy_mode, prepare_threshold=0) as conn:
        for i in range(1, 21):
            conn.execute(f"INSERT INTO {fresh_table} VALUES (%s, %s)", [i, f"v{i}"])
        got = [conn.execute(f"SELECT v FROM {fresh_table} WHERE id = %s", [i]).fetchone()[0] for i in (7, 3, 20)]
        assert got == ["v7", "v3", "v20"]
        prepared = conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        assert any(f"INSERT INTO {fresh_table}" in s for (s,) in prepared)
        assert any(f"SELECT v FROM {fresh_table} WHERE id = $1" in s for (s,) in prepared)
    with psycopg_connect(proxy, pki, proxy_mode) as conn:
        cur = conn.cursor()
        for i in range(5):
            assert cur.execute("SELECT %s::int * 3", [i], prepare=True).fetchone() == (i * 3,)
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements "
                            "WHERE statement = 'SELECT $1::int * 3'").fetchone() == (1,)
    assert table_rows(server, fresh_table) == [(i, f"v{i}") for i in range(1, 21)]


# A committed transaction's row is on the server; a rolled-back one's is not,
# though it was visible inside its own transaction.
def test_psycopg_commit_and_rollback(proxy, pki, proxy_mode, server, fresh_table):
    with psycopg_connect(proxy, pki, proxy_mode) as conn:
        with conn.transaction():
            conn.execute(f"INSERT INTO {fresh_table} VALUES (1, 'committed')")
        with conn.transaction():
            conn.execute(f"INSERT INTO {fresh_table} VALUES (2, 'rolled back')")
            assert conn.execute(f"SELECT count(*) FROM {fresh_table}").fetchone() == (2,)
            raise psycopg.Rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert table_rows(server, fresh_table) == [(1, "committed")]


# COPY FROM STDIN writes every row (checked on the server); COPY TO STDOUT
# brings them back byte for byte.
def test_psycopg_copy_both_ways(proxy, pki, proxy_mode, server, fresh_table):
    rows = [(i, copy_value(i)) for i in range(1, COPY_ROWS + 1)]
    with psycopg_connect(proxy, pki, proxy_mode) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY {fresh_table} (id, v) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            assert cur.rowcount == COPY_ROWS
        assert table_rows(server, fresh_table) == rows
        with conn.cursor() as cur:
            out = bytearray()
            with cur.copy(f"COPY (SELECT id, v FROM {fresh_table} ORDER BY id) TO STDOUT") as copy:
                for chunk in copy:
                    out += chunk
            assert cur.rowcount == COPY_ROWS
        assert bytes(out) == copy_text(rows)


# Pipeline mode: inserts and reads sent without waiting for each result, in
# one round trip, come back in order; the rows are on the server.
def test_psycopg_pipeline_mode(proxy, pki, proxy_mode, server, fresh_table):
    with psycopg_connect(proxy, pki, proxy_mode) as conn:
        with conn.pipeline():
            counts = []
            for i in range(1, 31):
                conn.execute(f"INSERT INTO {fresh_table} VALUES (%s, %s)", [i, f"p{i}"])
                counts.append(conn.execute(f"SELECT count(*), max(id) FROM {fresh_table}"))
            joined = conn.execute(f"SELECT string_agg(v, ',' ORDER BY id) FROM {fresh_table}")
        assert [c.fetchone() for c in counts] == [(i, i) for i in range(1, 31)]
        assert joined.fetchone()[0] == ",".join(f"p{i}" for i in range(1, 31))
    assert table_rows(server, fresh_table) == [(i, f"p{i}") for i in range(1, 31)]


# ---------------------------------------------------------------------------
# asyncpg: an ssl.SSLContext verifying the CA and the host name.

def asyncpg_context(pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    return context


async def asyncpg_connect(proxy, pki, mode, **kw) -> asyncpg.Connection:
    return await asyncpg.connect(host=SERVER_NAME, port=proxy.port, user=mode.user, password=mode.password,
                                 database="postgres", ssl=kw.pop("ssl", asyncpg_context(pki)), timeout=10, **kw)


def run_async(proxy, pki, mode, body):
    """Connects asyncpg, runs `body(conn)` and closes; returns what body returned."""
    async def main():
        conn = await asyncpg_connect(proxy, pki, mode)
        try:
            return await body(conn)
        finally:
            await conn.close()
    return asyncio.run(main())


# asyncpg is served pgwarden's certificate, fetches typed rows, and the
# server sees the same user on a TLS backend.
def test_asyncpg_fetch_over_tls_on_both_hops(proxy, pki, proxy_mode, proxy_cert_der, server):
    async def body(conn):
        # Connection._transport: asyncpg has no public accessor for the TLS session.
        tls = conn._transport.get_extra_info("ssl_object")
        peer = tls.getpeercert(binary_form=True)
        identity = await conn.fetchrow("SELECT current_user AS u, ssl, pg_backend_pid() AS pid "
                                       "FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        seen = backend_seen_by_server(server, identity["pid"])
        rows = await conn.fetch("SELECT g AS n, g * 1.5 AS x, 'r' || g AS t FROM generate_series(1, 3) g")
        return peer, tls.version(), identity, seen, [tuple(r) for r in rows]

    peer, version, identity, seen, rows = run_async(proxy, pki, proxy_mode, body)
    assert peer == proxy_cert_der
    assert version in ("TLSv1.2", "TLSv1.3")
    assert (identity["u"], identity["ssl"]) == (proxy_mode.user, True)
    assert seen == (proxy_mode.user, True)
    assert [(n, float(x), t) for n, x, t in rows] == [(1, 1.5, "r1"), (2, 3.0, "r2"), (3, 4.5, "r3")]


# conn.prepare makes a named server-side statement that runs many times with
# different arguments; the server lists it with its parameter types.
def test_asyncpg_prepared_statements(proxy, pki, proxy_mode, server, fresh_table):
    server.execute(f"INSERT INTO {fresh_table} SELECT g, 'v' || g FROM generate_series(1, 50) g")

    async def body(conn):
        stmt = await conn.prepare(f"SELECT v FROM {fresh_table} WHERE id = $1")
        got = [await stmt.fetchval(i) for i in (50, 1, 25)]
        ranged = await conn.prepare(f"SELECT count(*) FROM {fresh_table} WHERE id BETWEEN $1 AND $2")
        counts = [await ranged.fetchval(a, b) for a, b in ((1, 10), (20, 50))]
        listed = await conn.fetch("SELECT statement, parameter_types::text[] AS types FROM pg_prepared_statements")
        return got, counts, [(r["statement"], r["types"]) for r in listed]

    got, counts, listed = run_async(proxy, pki, proxy_mode, body)
    assert got == ["v50", "v1", "v25"]
    assert counts == [10, 31]
    assert (f"SELECT v FROM {fresh_table} WHERE id = $1", ["integer"]) in listed


# A committed transaction and a rolled-back one (by exception), with a
# savepoint rolled back inside the committed one; the server has exactly
# the committed rows.
def test_asyncpg_commit_and_rollback(proxy, pki, proxy_mode, server, fresh_table):
    class Abandon(Exception):
        pass

    async def body(conn):
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {fresh_table} VALUES (1, 'committed')")
            try:
                async with conn.transaction():  # a savepoint
                    await conn.execute(f"INSERT INTO {fresh_table} VALUES (2, 'savepoint rolled back')")
                    raise Abandon()
            except Abandon:
                pass
        try:
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {fresh_table} VALUES (3, 'rolled back')")
                raise Abandon()
        except Abandon:
            pass
        return conn.is_in_transaction()

    assert run_async(proxy, pki, proxy_mode, body) is False
    assert table_rows(server, fresh_table) == [(1, "committed")]


# COPY three ways: copy_records_to_table (binary COPY FROM STDIN),
# copy_from_query (COPY TO STDOUT, CSV) and copy_to_table (that CSV back in
# through COPY FROM STDIN into a second table); all rows arrive intact.
def test_asyncpg_copy(proxy, pki, proxy_mode, server, fresh_table):
    rows = [(i, copy_value(i)) for i in range(1, COPY_ROWS + 1)]
    second = f"{fresh_table}_b"
    server.execute(f"CREATE TABLE {second} (LIKE {fresh_table}) ; GRANT ALL ON {second} TO PUBLIC")

    async def body(conn):
        status_in = await conn.copy_records_to_table(fresh_table, records=rows, columns=["id", "v"])
        out = io.BytesIO()
        status_out = await conn.copy_from_query(f"SELECT id, v FROM {fresh_table} ORDER BY id", output=out,
                                                format="csv")
        out.seek(0)
        status_back = await conn.copy_to_table(second, source=out, format="csv")
        return status_in, status_out, status_back, out.getvalue()

    try:
        status_in, status_out, status_back, csv_bytes = run_async(proxy, pki, proxy_mode, body)
        assert (status_in, status_out, status_back) == (f"COPY {COPY_ROWS}",) * 3
        assert csv_bytes.count(b"\n") >= COPY_ROWS and "\u4e2d".encode() in csv_bytes
        assert table_rows(server, fresh_table) == rows
        assert table_rows(server, second) == rows
    finally:
        server.execute(f"DROP TABLE {second}")


# executemany sends one Bind/Execute per argument tuple in a pipeline; a
# failing batch (duplicate key) leaves none of its rows behind.
def test_asyncpg_executemany(proxy, pki, proxy_mode, server, fresh_table):
    async def body(conn):
        await conn.executemany(f"INSERT INTO {fresh_table} VALUES ($1, $2)",
                               [(i, f"m{i}") for i in range(1, 501)])
        with pytest.raises(asyncpg.exceptions.UniqueViolationError):
            await conn.executemany(f"INSERT INTO {fresh_table} VALUES ($1, $2)",
                                   [(1000, "new"), (1001, "new"), (1, "duplicate")])
        return await conn.fetchval(f"SELECT count(*) FROM {fresh_table}")

    assert run_async(proxy, pki, proxy_mode, body) == 500
    assert table_rows(server, fresh_table) == [(i, f"m{i}") for i in range(1, 501)]


# With tls.required, asyncpg without TLS is refused with 28000 and a message
# saying why, before reaching the server.
def test_asyncpg_plaintext_is_refused(proxy, pki, proxy_mode):
    async def attempt():
        return await asyncpg_connect(proxy, pki, proxy_mode, ssl=False)

    with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError) as excinfo:
        asyncio.run(attempt())
    assert excinfo.value.sqlstate == "28000"
    assert "accepts only TLS connections" in str(excinfo.value)


# ---------------------------------------------------------------------------
# node-postgres (npm pg, pg-copy-streams): tests/clients/node/exercise.js.

def node_client_installed() -> None:
    """Fails, saying what to run, unless `npm ci` installed the pinned versions."""
    lock = json.loads((NODE_CLIENT_DIR / "package-lock.json").read_text())
    for package in ("pg", "pg-copy-streams"):
        wanted = lock["packages"][f"node_modules/{package}"]["version"]
        manifest = NODE_CLIENT_DIR / "node_modules" / package / "package.json"
        have = json.loads(manifest.read_text())["version"] if manifest.exists() else None
        if have != wanted:
            pytest.fail(f"npm package {package} {wanted} is not installed in {NODE_CLIENT_DIR}/node_modules "
                        f"(found {have}): run scripts/install-deps.sh, which runs `npm ci` there and needs "
                        "the npm registry", pytrace=False)


def run_node_client(proxy, pki, mode, table) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run scripts/install-deps.sh", pytrace=False)
    node_client_installed()
    settings = {"host": "127.0.0.1", "port": proxy.port, "user": mode.user, "password": mode.password,
                "database": "postgres", "ca": str(pki.ca_cert), "servername": SERVER_NAME, "table": table,
                "copy_rows": COPY_ROWS}
    done = subprocess.run([node, "exercise.js", json.dumps(settings)], cwd=NODE_CLIENT_DIR, env=client_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


# node-postgres verifies pgwarden's certificate for servername localhost,
# then runs plain and parameterised queries, a named prepared statement, a
# committed and a rolled-back transaction, and COPY both ways through
# pg-copy-streams; a plaintext attempt is refused. The server holds exactly
# the committed and copied rows.
def test_node_postgres(proxy, pki, proxy_mode, proxy_cert_der, server, fresh_table):
    result = run_node_client(proxy, pki, proxy_mode, fresh_table)

    identity = result["identity"]
    assert identity["client_encrypted"] and identity["client_authorized"]
    assert identity["client_tls_version"] in ("TLSv1.2", "TLSv1.3")
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(proxy_cert_der).digest())
    assert identity["peer_fingerprint256"] == fingerprint
    assert (identity["current_user"], identity["backend_ssl"]) == (proxy_mode.user, True)

    assert result["queries"] == {"simple": 42, "params": [42, "caf\u00e9 \u4e2d"], "multi": [{"a": 1}, {"b": 2}],
                                 "error_code": "22012", "usable_after_error": 0}
    assert result["prepared"] == {"results": ["three", "one", "two"],
                                  "server_statement": f"SELECT v FROM {fresh_table} WHERE id = $1",
                                  "server_types": ["integer"]}
    assert result["transactions"] == {"rows_inside": 2, "rows_after": 1}

    expected = [(-1, "committed")] + [(i, copy_value(i)) for i in range(1, COPY_ROWS + 1)]
    assert result["copy_in"] == {"row_count": COPY_ROWS, "bytes": len(copy_text(expected[1:]))}
    text = copy_text(expected)
    assert result["copy_out"] == {"row_count": len(expected), "lines": len(expected),
                                  "sha256": hashlib.sha256(text).hexdigest(),
                                  "first": "-1\tcommitted", "last": text.decode().splitlines()[-1]}
    assert table_rows(server, fresh_table) == expected

    plaintext = result["plaintext"]
    assert plaintext["refused"] and plaintext["code"] == "28000"
    assert "accepts only TLS connections" in plaintext["message"]


# ---------------------------------------------------------------------------
# pgJDBC (Debian's libpostgresql-jdbc-java): tests/clients/jdbc/Exercise.java.

# pgJDBC verifies pgwarden's certificate (sslmode=verify-full against the
# test CA, for host name localhost) and runs the whole exercise of
# test_jdbc.py: prepared statements past prepareThreshold, a pipelined
# batch, a savepoint, a fetch-size cursor, COPY both ways, cancel,
# DatabaseMetaData and typed parameters; the server saw it all over TLS.
def test_jdbc(proxy, pki, proxy_mode, server, fresh_table):
    url = jdbc_url(SERVER_NAME, proxy.port, sslmode="verify-full", sslrootcert=pki.ca_cert)
    result = run_exercise(url, proxy_mode.user, proxy_mode.password, fresh_table)
    check_workload(result, fresh_table)
    assert result["identity"] == {"current_user": proxy_mode.user, "backend_ssl": True}
    rows = server.execute(f"SELECT count(*) FROM {fresh_table}").fetchone()[0]
    assert rows == 3 + 200 + 1 + jdbc_client.COPY_ROWS
