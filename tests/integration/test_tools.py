"""Real tools and libraries through pgwarden, each compared with what it
does against PostgreSQL itself:

- pg_dump -Fc of a database holding every common kind of object, pg_restore
  -j 2 of it into a new database, and plain dumps of both that are equal;
- pg_basebackup over replication connections a connect rule allows (the
  CopyBoth stream relayed), verified by pg_verifybackup, and refused with
  pgwarden's explanation without the rule; pg_recvlogical's logical decoding;
- psql's \\copy both ways in CSV; pgbench -i generating its data on the
  server (with client-side COPY it is in test_pgbench.py);
- SQLAlchemy (Debian bookworm ships 1.4, which has no psycopg 3 dialect:
  SQLAlchemy 2 is not packaged, so 1.4 runs on psycopg2 and asyncpg);
- pgJDBC with preferQueryMode=extendedCacheEverything and past prepareThreshold;
- node-postgres cursors (pg-cursor) and query streams (pg-query-stream).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

import harness
from harness import SUPERUSER, client_env
from jdbc_client import jdbc_url, run_exercise

pytestmark = pytest.mark.proxy_only

PG_BIN = harness.PG_BIN
NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"

# Replication connections and the FunctionCall protocol are refused unless a
# rule allows them; pg_dump and pg_restore read and write large objects with
# libpq's lo_* functions, which use FunctionCall.
TOOL_RULES = """
rules:
  - name: replication-for-harness
    on: connect
    when: { user: harness, protocol: replication }
    action: allow
  - name: large-objects-for-harness
    when: { user: harness, protocol: function_call }
    action: allow
"""


class ReplicationServer(harness.PostgresServer):
    """PostgreSQL whose pg_hba also admits the superuser's replication
    connections (pgwarden's address is the loopback address)."""

    def init(self, ssl=None, extra_conf=""):
        super().init(ssl=ssl, extra_conf=extra_conf + "wal_level = logical\n")
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host replication {SUPERUSER} {harness.LOOPBACK}/32 trust\n" + hba.read_text())


@pytest.fixture(scope="module")
def server():
    s = ReplicationServer()
    try:
        s.init()
        s.start()
        s.create_roles()
        yield s
    finally:
        s.destroy()


@pytest.fixture(scope="module")
def proxy(server, workdir):
    """pgwarden in front of `server` with rules allowing the superuser's
    replication connections and FunctionCalls."""
    p = harness.Pgwarden(workdir, server.host, server.port, name="tools")
    p.config_path.write_text(harness.proxy_config(p.port, server.host, server.port, TOOL_RULES))
    p.start()
    yield p
    p.stop()


def run(args, timeout=180, **kw):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=client_env(), **kw)
    return done


def conn_args(endpoint) -> list:
    return ["-h", endpoint.host, "-p", endpoint.port, "-U", SUPERUSER]


# ---------------------------------------------------------------------------
# pg_dump and pg_restore.

SOURCE_DB = """
CREATE ROLE tools_reader NOLOGIN;
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.positive AS int CHECK (VALUE > 0);
CREATE SEQUENCE app.ticket_seq START 100 INCREMENT 5;
CREATE TABLE app.customers (id serial PRIMARY KEY, name text NOT NULL UNIQUE, mood app.mood DEFAULT 'ok',
                            doc jsonb, tags text[], created timestamptz DEFAULT '2024-01-01 00:00+00');
CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                         customer_id int NOT NULL REFERENCES app.customers (id),
                         amount numeric(10, 2) CHECK (amount >= 0), qty app.positive DEFAULT 1,
                         ticket int DEFAULT nextval('app.ticket_seq'), note text);
CREATE INDEX orders_customer ON app.orders (customer_id);
CREATE FUNCTION app.round_amount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.amount := round(NEW.amount, 1); RETURN NEW; END $$;
CREATE TRIGGER orders_round BEFORE INSERT OR UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.round_amount();
CREATE FUNCTION app.total(c int) RETURNS numeric LANGUAGE sql STABLE AS
  'SELECT coalesce(sum(amount), 0) FROM app.orders WHERE customer_id = c';
INSERT INTO app.customers (name, mood, doc, tags)
  SELECT 'customer ' || g, (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::app.mood,
         jsonb_build_object('n', g, 'caf\u00e9', '\u4e2d'), ARRAY['t' || g, E'tab\\there']
  FROM generate_series(1, 2000) g;
INSERT INTO app.orders (customer_id, amount, qty, note)
  SELECT g % 2000 + 1, (g * 7 % 1000) / 3.0, g % 5 + 1, CASE WHEN g % 10 = 0 THEN E'line\\nbreak \\\\ ' || g END
  FROM generate_series(1, 20000) g;
CREATE VIEW app.big_spenders AS SELECT c.name, app.total(c.id) AS total FROM app.customers c
  WHERE app.total(c.id) > 3000;
CREATE MATERIALIZED VIEW app.totals AS SELECT customer_id, sum(amount) AS total FROM app.orders GROUP BY 1;
ALTER TABLE app.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY happy_only ON app.customers FOR SELECT TO tools_reader USING (mood = 'happy');
COMMENT ON SCHEMA app IS 'the application';
COMMENT ON TABLE app.customers IS 'people who buy';
COMMENT ON COLUMN app.orders.amount IS 'in euros, one decimal';
COMMENT ON FUNCTION app.round_amount() IS 'rounds amounts';
COMMENT ON VIEW app.big_spenders IS 'over 3000';
GRANT USAGE ON SCHEMA app TO tools_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO tools_reader;
GRANT USAGE ON SEQUENCE app.ticket_seq TO tools_reader;
GRANT EXECUTE ON FUNCTION app.total(int) TO tools_reader;
SELECT lo_from_bytea(424242, decode(repeat('00ff10', 200000), 'hex'));
SELECT lo_from_bytea(424243, convert_to('a small large object', 'UTF8'));
COMMENT ON LARGE OBJECT 424242 IS 'a 600 kB blob';
GRANT SELECT ON LARGE OBJECT 424242 TO tools_reader;
"""


@pytest.fixture(scope="module")
def source_db(server) -> str:
    server.psql_admin("CREATE DATABASE tools_src")
    server.psql_admin(SOURCE_DB, dbname="tools_src")
    return "tools_src"


def plain_dump(endpoint, db) -> str:
    """A plain-text dump, less the random key of its \\restrict and
    \\unrestrict lines (new in each dump since 15.14)."""
    done = run(["pg_dump", *conn_args(endpoint), "-d", db, "--no-sync"])
    assert done.returncode == 0, done.stderr
    return re.sub(r"^\\(un)?restrict \S+$", r"\\\1restrict KEY", done.stdout, flags=re.M)


# pg_dump -Fc through pgwarden, then pg_restore -j 2 (two sessions) into a
# new database through pgwarden: plain dumps of the two databases, both
# taken through pgwarden, are equal, and equal to one taken straight from
# the server; the restored large objects and the sequence position are there.
def test_dump_and_parallel_restore_round_trip(proxy, server, source_db, tmp_path):
    archive = tmp_path / "src.dump"
    done = run(["pg_dump", *conn_args(proxy.endpoint), "-Fc", "-f", archive, "-d", "tools_src"])
    assert done.returncode == 0, done.stderr
    listing = run(["pg_restore", "-l", archive]).stdout
    for kind in ("TABLE DATA app customers", "SEQUENCE app ticket_seq", "VIEW app big_spenders",
                 "MATERIALIZED VIEW DATA app totals", "FUNCTION app round_amount", "TRIGGER app orders orders_round",
                 "BLOB - 424242", "COMMENT app TABLE customers", "ACL app TABLE customers", "POLICY app customers",
                 "TYPE app mood", "DOMAIN app positive", "INDEX app orders_customer"):
        assert kind in listing, f"{kind!r} not in the archive:\n{listing}"

    done = run(["psql", "-X", *conn_args(proxy.endpoint), "-d", "postgres", "-c", "CREATE DATABASE tools_dst"])
    assert done.returncode == 0, done.stderr
    done = run(["pg_restore", *conn_args(proxy.endpoint), "-j", "2", "--exit-on-error", "-d", "tools_dst", archive])
    assert done.returncode == 0, done.stderr

    source = plain_dump(proxy.endpoint, "tools_src")
    assert source == plain_dump(server.endpoint, "tools_src")
    restored = plain_dump(proxy.endpoint, "tools_dst")
    assert restored == source
    assert "COPY app.orders" in source and "lo_open" in source and "424242" in source
    checks = server.psql_admin("SELECT (SELECT count(*) FROM app.orders), md5(lo_get(424242)), "
                               "(SELECT last_value FROM app.ticket_seq)", dbname="tools_dst").strip()
    assert checks == server.psql_admin("SELECT (SELECT count(*) FROM app.orders), md5(lo_get(424242)), "
                                       "(SELECT last_value FROM app.ticket_seq)", dbname="tools_src").strip()


# A parallel directory-format dump (-Fd -j 2): the workers are sessions of
# their own that import the leader's snapshot (SET TRANSACTION SNAPSHOT);
# restored straight into the server, it makes the same database.
def test_parallel_directory_dump(proxy, server, source_db, tmp_path):
    directory = tmp_path / "dir.dump"
    done = run(["pg_dump", *conn_args(proxy.endpoint), "-Fd", "-j", "2", "-f", directory, "-d", source_db])
    assert done.returncode == 0, done.stderr
    server.psql_admin("CREATE DATABASE tools_dir")
    done = run(["pg_restore", *conn_args(server.endpoint), "--exit-on-error", "-d", "tools_dir", directory])
    assert done.returncode == 0, done.stderr
    assert plain_dump(server.endpoint, "tools_dir") == plain_dump(server.endpoint, source_db)


# Without a rule allowing protocol function_call, pg_dump of a database with
# large objects fails at the first one, with pgwarden's explanation naming
# the rule it needs.
def test_dump_of_large_objects_needs_a_function_call_rule(server, workdir, tmp_path):
    server.psql_admin("CREATE DATABASE tools_lo")
    server.psql_admin("SELECT lo_from_bytea(515151, 'blob')", dbname="tools_lo")
    plain = harness.Pgwarden(workdir, server.host, server.port, name="tools-no-function-call")
    plain.start()
    try:
        done = run(["pg_dump", *conn_args(plain.endpoint), "-Fc", "-f", tmp_path / "lo.dump", "-d", "tools_lo"])
    finally:
        plain.stop()
    assert done.returncode != 0
    assert "could not open large object 515151" in done.stderr
    assert "the FunctionCall protocol is refused unless a rule allows protocol function_call" in done.stderr


# ---------------------------------------------------------------------------
# pg_basebackup: replication connections.

# A base backup through pgwarden (-X stream: a second replication
# connection streams WAL alongside) is complete: pg_verifybackup checks
# every file against the manifest and the WAL needed to restore it.
def test_pg_basebackup_through_an_allowed_replication_connection(proxy, tmp_path):
    target = tmp_path / "backup"
    done = run(["pg_basebackup", *conn_args(proxy.endpoint), "-D", target, "-X", "stream", "-c", "fast",
                "--no-sync", "-P"], timeout=300)
    assert done.returncode == 0, done.stderr
    assert (target / "PG_VERSION").read_text().strip() == "15"
    verified = run([PG_BIN / "pg_verifybackup", target])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "successfully verified" in verified.stdout


# Without a rule allowing protocol replication, pgwarden refuses the
# replication connection at startup with its explanation; the server is
# the same and would have accepted it.
def test_pg_basebackup_is_refused_without_the_rule(server, workdir, tmp_path):
    plain = harness.Pgwarden(workdir, server.host, server.port, name="tools-no-replication")
    plain.start()
    try:
        done = run(["pg_basebackup", *conn_args(plain.endpoint), "-D", tmp_path / "backup", "-X", "none",
                    "-c", "fast", "--no-sync"], timeout=120)
    finally:
        plain.stop()
    assert done.returncode != 0
    assert "replication connections are refused unless a rule allows protocol replication" in done.stderr


# IDENTIFY_SYSTEM over a replication connection through pgwarden answers
# what it answers straight from the server (psql with replication=database).
def test_replication_commands_answer_as_the_server_does(proxy, server):
    def identify(endpoint):
        done = run(["psql", "-X", "-A", "-t", f"{endpoint.dsn(replication='database')}", "-c", "IDENTIFY_SYSTEM"])
        assert done.returncode == 0, done.stderr
        return done.stdout.split("|")[0]   # systemid (the WAL position moves)
    assert identify(proxy.endpoint) == identify(server.endpoint)


# Logical decoding through pgwarden: pg_recvlogical creates a slot over a
# replication=database connection, and streams (CopyBoth) the changes made
# after it, as test_decoding writes them, up to a known position.
def test_pg_recvlogical_streams_changes(proxy, server, tmp_path):
    server.psql_admin("CREATE TABLE logical_t (id int PRIMARY KEY, v text)")
    base = ["pg_recvlogical", *conn_args(proxy.endpoint), "-d", "postgres", "--slot", "tools_slot"]
    done = run([*base, "--create-slot", "--plugin", "test_decoding"])
    assert done.returncode == 0, done.stderr
    try:
        server.psql_admin("INSERT INTO logical_t SELECT g, 'v' || g FROM generate_series(1, 3) g")
        end = server.psql_admin("SELECT pg_current_wal_insert_lsn()").strip()
        out = tmp_path / "changes.txt"
        done = run([*base, "--start", "--endpos", end, "--no-loop", "-f", out], timeout=60)
        assert done.returncode == 0, done.stderr
        changes = [l for l in out.read_text().splitlines() if l.startswith("table public.logical_t")]
        assert changes == [f"table public.logical_t: INSERT: id[integer]:{i} v[text]:'v{i}'" for i in (1, 2, 3)]
    finally:
        run([*base, "--drop-slot"])


# ---------------------------------------------------------------------------
# psql's \\copy: COPY ... TO STDOUT / FROM STDIN with the file on the client.

# \\copy out in CSV (quotes, commas, newlines and multi-byte characters in
# the values) writes the same file through pgwarden as straight from the
# server; \\copy in of that file through pgwarden stores every row as it was.
def test_psql_copy_both_ways(proxy, server, tmp_path):
    server.psql_admin("CREATE TABLE copy_src AS SELECT g AS id, 'v, \"' || g || E'\"\\nline two \u00e9\u4e2d' AS v "
                      "FROM generate_series(1, 20000) g; CREATE TABLE copy_dst (LIKE copy_src)")

    def psql(endpoint, command):
        done = run(["psql", "-X", "-v", "ON_ERROR_STOP=1", *conn_args(endpoint), "-d", "postgres", "-c", command])
        assert done.returncode == 0, done.stderr
        return done.stdout

    through, direct = tmp_path / "through.csv", tmp_path / "direct.csv"
    assert psql(proxy.endpoint, f"\\copy copy_src TO '{through}' (FORMAT csv, HEADER)").strip() == "COPY 20000"
    psql(server.endpoint, f"\\copy copy_src TO '{direct}' (FORMAT csv, HEADER)")
    assert through.read_bytes() == direct.read_bytes()
    assert psql(proxy.endpoint, f"\\copy copy_dst FROM '{through}' (FORMAT csv, HEADER)").strip() == "COPY 20000"
    same = server.psql_admin("SELECT count(*) FROM (SELECT * FROM copy_src EXCEPT SELECT * FROM copy_dst) d")
    assert same.strip() == "0"


# ---------------------------------------------------------------------------
# pgbench -i with server-side data generation (-I dtGvp).

def test_pgbench_init_with_server_side_generation(proxy, server):
    server.psql_admin("CREATE DATABASE tools_bench")
    done = run(["pgbench", *conn_args(proxy.endpoint), "-i", "-s", "2", "-I", "dtGvpf", "tools_bench"])
    assert done.returncode == 0, done.stderr
    assert "server-side generate" in done.stderr
    counts = server.psql_admin("SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches),"
                               " (SELECT count(*) FROM pg_constraint WHERE contype = 'f')", dbname="tools_bench")
    assert counts.strip() == "200000|2|5"


# ---------------------------------------------------------------------------
# SQLAlchemy 1.4 (Debian bookworm's python3-sqlalchemy).

def sqlalchemy_workload(url: str, schema: str) -> dict:
    """An ORM application's life: create tables, add related objects,
    commit, a rolled-back change, a join with eager loading, streamed
    results (a server-side cursor on psycopg2), an update, drop."""
    from sqlalchemy import Column, ForeignKey, Integer, String, create_engine, func, select
    from sqlalchemy.orm import Session, declarative_base, relationship, selectinload

    Base = declarative_base()

    class Author(Base):
        __tablename__ = "authors"
        __table_args__ = {"schema": schema}
        id = Column(Integer, primary_key=True)
        name = Column(String(50), nullable=False, unique=True)
        books = relationship("Book", back_populates="author", order_by="Book.id")

    class Book(Base):
        __tablename__ = "books"
        __table_args__ = {"schema": schema}
        id = Column(Integer, primary_key=True)
        title = Column(String(100), nullable=False)
        author_id = Column(ForeignKey(f"{schema}.authors.id"), nullable=False)
        author = relationship("Author", back_populates="books")

    engine = create_engine(url, future=True)
    out = {}
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            for a in range(20):
                author = Author(name=f"author {a} \u00e9")
                author.books = [Book(title=f"book {a}.{b} \u4e2d") for b in range(50)]
                session.add(author)
            session.commit()
            session.add(Author(name="never"))
            session.flush()
            session.rollback()
            out["authors"] = session.scalar(select(func.count()).select_from(Author))
            authors = session.scalars(select(Author).options(selectinload(Author.books)).order_by(Author.id)).all()
            out["books_per_author"] = sorted({len(a.books) for a in authors})
            out["first_title"] = authors[0].books[0].title
            streamed = session.execute(select(Book.id).order_by(Book.id).execution_options(yield_per=100))
            out["streamed"] = sum(1 for _ in streamed)
            session.query(Book).filter(Book.title.like("book 3.%")).update({"title": "renamed"},
                                                                             synchronize_session=False)
            session.commit()
            out["renamed"] = session.scalar(select(func.count()).where(Book.title == "renamed"))
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()
    return out


EXPECTED_ORM = {"authors": 20, "books_per_author": [50], "first_title": "book 0.0 \u4e2d", "streamed": 1000,
                "renamed": 50}


# SQLAlchemy 1.4 on psycopg2 (libpq) through pgwarden.
def test_sqlalchemy_on_psycopg2(proxy):
    pytest.importorskip("sqlalchemy", minversion="1.4")
    url = f"postgresql+psycopg2://{SUPERUSER}@{proxy.host}:{proxy.port}/postgres"
    assert sqlalchemy_workload(url, f"orm_{uuid.uuid4().hex[:8]}") == EXPECTED_ORM


# SQLAlchemy 1.4's asyncio extension on asyncpg through pgwarden.
def test_sqlalchemy_on_asyncpg(proxy):
    pytest.importorskip("sqlalchemy", minversion="1.4")
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main():
        engine = create_async_engine(f"postgresql+asyncpg://{SUPERUSER}@{proxy.host}:{proxy.port}/postgres")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY, v text)"))
                await conn.execute(text("INSERT INTO t VALUES (:id, :v)"), [{"id": i, "v": f"v{i}"} for i in range(500)])
                total = (await conn.execute(text("SELECT count(*), max(v) FROM t WHERE id >= :low"), {"low": 100})).one()
                streamed = 0
                async for _ in await conn.stream(text("SELECT g FROM generate_series(1, 3000) g")):
                    streamed += 1
            return tuple(total), streamed
        finally:
            await engine.dispose()
    assert asyncio.run(main()) == ((400, "v499"), 3000)


# ---------------------------------------------------------------------------
# pgJDBC query modes.

def comparable(result: dict) -> dict:
    """The exercise's result without what differs between two runs (timings)."""
    result = json.loads(json.dumps(result))
    result["cancel"].pop("seconds", None)
    return result


# The whole pgJDBC exercise (prepared statements past prepareThreshold,
# batches, fetch-size cursors, COPY, cancel, metadata, typed parameters)
# with preferQueryMode=extendedCacheEverything (every statement, even
# BEGIN, a cached named server-side statement) and with prepareThreshold=1:
# through pgwarden it reports exactly what it reports against the server.
@pytest.mark.parametrize("params", [{"preferQueryMode": "extendedCacheEverything"}, {"prepareThreshold": "1"}],
                         ids=["extendedCacheEverything", "prepareThreshold-1"])
def test_jdbc_query_modes(proxy, server, params):
    results = []
    for endpoint in (server.endpoint, proxy.endpoint):
        table = f"jdbc_{uuid.uuid4().hex[:10]}"
        server.psql_admin(f"CREATE TABLE {table} (id int PRIMARY KEY, v text NOT NULL)")
        try:
            url = jdbc_url(endpoint.host, endpoint.port, sslmode="disable", **params)
            result = comparable(run_exercise(url, SUPERUSER, None, table))
            result["metadata"]["tables"] = ["T"] if result["metadata"]["tables"] == [table] else result["metadata"]["tables"]
            results.append(result)
        finally:
            server.psql_admin(f"DROP TABLE {table}")
    direct, proxied = results
    assert direct["prepared"]["server_prepared"] is True
    assert proxied == direct


# ---------------------------------------------------------------------------
# node-postgres cursors and streams.

def node_tool(endpoint, mode: str, rows: int) -> dict:
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/install-deps.sh"
    settings = {"mode": mode, "host": endpoint.host, "port": endpoint.port, "user": SUPERUSER,
                "database": "postgres", "rows": rows}
    done = subprocess.run([node, "tools.js", json.dumps(settings)], cwd=NODE_DIR, env=client_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


# pg-cursor reads 25,000 rows 100 at a time (the portal suspended and
# resumed 250 times) and pg-query-stream streams them to a slow consumer;
# both get what they get from the server itself, and the session goes on.
@pytest.mark.parametrize("mode", ["cursor", "stream"])
def test_node_postgres_cursor_and_stream(proxy, server, mode):
    direct = node_tool(server.endpoint, mode, 25000)
    proxied = node_tool(proxy.endpoint, mode, 25000)
    assert direct["rows"] == 25000 and direct["after"] == 7
    assert proxied == direct
