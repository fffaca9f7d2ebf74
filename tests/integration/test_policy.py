"""Issue 5 acceptance: per-user, per-network policy through the real proxy.

Every scenario runs through `pgwarden serve` in front of the harness's
PostgreSQL 15. The policy is tests/data/policy/postmortem.yaml (the
postmortem rules of examples/pgwarden.yaml plus a few rules for single test
users); the test prepends `listen:` and `upstream:`.

A "developer laptop" is the loopback address 127.0.0.2, which the policy
names as a developer network. Connecting *to* 127.0.0.2 is not enough: the
kernel's local route (`local 127.0.0.0/8 dev lo src 127.0.0.1`) still picks
127.0.0.1 as the source. libpq cannot bind a source address, so clients from
the dev network go through DevRelay, a tiny TCP relay in this file whose
upstream socket is bound to 127.0.0.2 (pgwarden's log line `client=` shows
the address it decided on). pgwarden reaches PostgreSQL over its
Unix socket, where the harness's pg_hba trusts every role, so the roles this
file creates can log in without touching pg_hba.conf.

The roles that must be stopped are real PostgreSQL superusers: anything the
proxy let through would really run, so a denial here is pgwarden's doing,
and every denial is checked for pgwarden's rule name in the message (a
server-side 42501 would not carry it).
"""

from __future__ import annotations

import contextlib
import json
from pprint import pformat
import re
import signal
import socket
import struct
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import psycopg.errors
import pytest

import harness

pytestmark = pytest.mark.proxy_only

DATA = Path(__file__).resolve().parents[1] / "data"
POLICY_FILE = DATA / "policy" / "postmortem.yaml"
BROKEN_CONFIG = DATA / "config" / "broken.yaml"
DB = "pol_db"
DEV_HOST = "127.0.0.2"      # in dev_hosts
ADMIN_HOST = "127.0.0.1"    # in admin_hosts


# ---------------------------------------------------------------------------
# Setup

SETUP_ROLES = """
CREATE ROLE pol_bob LOGIN SUPERUSER;      -- a junior, with every privilege there is
CREATE ROLE pol_dba LOGIN SUPERUSER;      -- production root credentials (an admin)
CREATE ROLE pol_admin NOLOGIN SUPERUSER;  -- what a role change would escalate to
CREATE ROLE pol_pipe LOGIN;               -- pipeline scenario, through the proxy
CREATE ROLE pol_ctl LOGIN;                -- the same pipeline, denied by the server itself
CREATE ROLE pol_tx LOGIN;
CREATE ROLE pol_dry LOGIN;
CREATE ROLE pol_reload LOGIN;
CREATE DATABASE pol_db;
CREATE DATABASE pol_victim;
"""

SETUP_DB = """
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO users VALUES (1, 'ann'), (2, 'ben'), (3, 'cid');
CREATE TABLE t (id int);
INSERT INTO t VALUES (1), (2);
CREATE TABLE notes (body text);
CREATE SEQUENCE ticket_seq;
CREATE MATERIALIZED VIEW user_names AS SELECT name FROM users WITH NO DATA;
CREATE PROCEDURE p() LANGUAGE sql AS 'DELETE FROM users';
CREATE FUNCTION purge_all() RETURNS int LANGUAGE sql AS 'DELETE FROM users; SELECT 0';
CREATE FUNCTION purge_op(int, int) RETURNS int LANGUAGE sql AS 'DELETE FROM users; SELECT 0';
CREATE OPERATOR !== (FUNCTION = purge_op, LEFTARG = int, RIGHTARG = int);
CREATE TABLE pipe_log (side text, n int);
CREATE TABLE pipe_forbidden (side text, n int);
CREATE TABLE tx_log (side text, n int);
CREATE TABLE tx_forbidden (side text, n int);
CREATE TABLE dry_t (id int);
CREATE TABLE reload_t (id int);
GRANT ALL ON ALL TABLES IN SCHEMA public TO pol_pipe, pol_ctl, pol_tx, pol_dry, pol_reload;
-- The control user meets a real server-side permission error where the
-- proxy denies pol_pipe / pol_tx.
REVOKE ALL ON pipe_forbidden, tx_forbidden FROM pol_ctl;
"""


@pytest.fixture(scope="module")
def db(postgres):
    postgres.psql_admin(SETUP_ROLES)
    postgres.psql_admin(SETUP_DB, dbname=DB)
    return postgres


def config_text(postgres, policy_text: str | None = None) -> str:
    """A full pgwarden config: listen on both loopback addresses, PostgreSQL's
    Unix socket upstream, then the policy."""
    head = (f"listen: {ADMIN_HOST}:{{listen_port}}\n"
            f"upstream: {{ unix_socket: {postgres.root}, port: {postgres.port}, tls: disable }}\n"
            "log: { level: info }\n")
    return head + (policy_text if policy_text is not None else POLICY_FILE.read_text())


class DevRelay:
    """Accepts on 127.0.0.1 and forwards each connection to `target` from a
    socket bound to `source`, so pgwarden sees the client at `source`."""

    def __init__(self, target: tuple[str, int], source: str = DEV_HOST):
        self.target, self.source = target, source
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((harness.LOOPBACK, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                upstream.bind((self.source, 0))
                upstream.connect(self.target)
            except OSError:
                client.close()
                upstream.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def proxy(db, pgwarden_factory):
    started = pgwarden_factory(config_text(db))
    started.dev_relay = DevRelay((started.host, started.port))
    yield started
    started.dev_relay.close()


def endpoint(proxy, host: str = ADMIN_HOST) -> harness.Endpoint:
    """Where to connect to reach `proxy` from `host` (ADMIN_HOST or DEV_HOST)."""
    if host == DEV_HOST:
        return harness.Endpoint(harness.LOOPBACK, proxy.dev_relay.port, "proxy")
    return harness.Endpoint(host, proxy.port, "proxy")


def dsn(proxy, user: str, host: str = ADMIN_HOST, dbname: str = DB, **params) -> str:
    return endpoint(proxy, host).dsn(user=user, dbname=dbname, **params)


def connect(proxy, user: str, host: str = ADMIN_HOST, autocommit=True, **params):
    return psycopg.connect(dsn(proxy, user, host, **params), autocommit=autocommit)


def direct_as(postgres, user: str, autocommit=True):
    """Straight to PostgreSQL as `user`, over its Unix socket (trusted)."""
    return psycopg.connect(host=str(postgres.root), port=postgres.port, user=user, dbname=DB,
                           autocommit=autocommit)


def admin_query(postgres, sql: str, dbname: str = DB):
    with postgres.endpoint.connect(dbname=dbname, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def admin_exec(postgres, sql: str, dbname: str = DB) -> None:
    with postgres.endpoint.connect(dbname=dbname, autocommit=True) as conn:
        conn.execute(sql)


def wait_for_log(proxy, pattern: str, timeout: float = 5.0, start: int = 0) -> str:
    """The first line of pgwarden's log (stdout+stderr) after byte `start`
    that matches `pattern`."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = proxy.log_path.read_text(errors="replace")[start:]
        for line in text.splitlines():
            if rx.search(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matching {pattern!r}; log:\n{text[-3000:]}")
        time.sleep(0.05)


def log_size(proxy) -> int:
    return len(proxy.log_path.read_text(errors="replace"))


def assert_denied(exc: BaseException, rule: str | None = None, sqlstate: str = "42501"):
    """A pgwarden denial: the SQLSTATE and the rule's name in the message."""
    assert isinstance(exc, psycopg.Error), repr(exc)
    assert exc.sqlstate == sqlstate, f"{exc.sqlstate}: {exc}"
    assert "pgwarden rule" in str(exc), f"not a pgwarden denial: {exc}"
    if rule is not None:
        assert f'"{rule}"' in str(exc), f"expected rule {rule}: {exc}"


def expect_denied(conn, sql: str, params=None, rule: str | None = None, **kw):
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params, **kw)
    assert_denied(info.value, rule)
    return info.value


def database_state(postgres) -> dict:
    """Everything a statement in the evasion list could have changed."""
    state = {}
    tables = [r[0] for r in admin_query(
        postgres, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1")]
    state["tables"] = tables
    for name in tables:
        state[f"rows:{name}"] = admin_query(
            postgres, f'SELECT count(*), md5(coalesce(string_agg(x::text, \',\' ORDER BY x::text), \'\')) '
                      f'FROM public."{name}" x')
    state["schemas"] = admin_query(postgres, "SELECT nspname FROM pg_namespace ORDER BY 1")
    state["routines"] = admin_query(postgres, "SELECT proname FROM pg_proc p JOIN pg_namespace n "
                                              "ON n.oid = p.pronamespace WHERE nspname = 'public' ORDER BY 1")
    state["extensions"] = admin_query(postgres, "SELECT extname FROM pg_extension ORDER BY 1")
    state["databases"] = admin_query(postgres, "SELECT datname FROM pg_database ORDER BY 1")
    state["role_settings"] = admin_query(postgres, "SELECT setrole::regrole::text, setconfig "
                                                   "FROM pg_db_role_setting ORDER BY 1")
    state["acl"] = admin_query(postgres, "SELECT relname, relacl::text FROM pg_class "
                                         "WHERE relname IN ('users', 't', 'notes') ORDER BY 1")
    state["roles"] = admin_query(postgres, "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles "
                                           "WHERE rolname LIKE 'pol_%' ORDER BY 1")
    state["large_objects"] = admin_query(postgres, "SELECT count(*) FROM pg_largeobject_metadata")
    state["sequence"] = admin_query(postgres, "SELECT last_value, is_called FROM ticket_seq")
    state["matview_populated"] = admin_query(postgres, "SELECT relispopulated FROM pg_class "
                                                       "WHERE relname = 'user_names'")
    state["clustered"] = admin_query(postgres, "SELECT indisclustered FROM pg_index "
                                               "WHERE indexrelid = 'users_pkey'::regclass")
    state["auto_conf"] = admin_query(postgres, "SELECT name, setting FROM pg_file_settings "
                                               "WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY 1")
    return state


# ---------------------------------------------------------------------------
# 1. Juniors read only

# Each write and each evasion from issue 4's list, with the rule that must
# deny it (None: any pgwarden rule).
JUNIOR_DENIED = [
    ("INSERT INTO users VALUES (100, 'x')", "juniors-read-only"),
    ("UPDATE users SET name = 'x' WHERE id = 1", "juniors-read-only"),
    ("DELETE FROM users WHERE id = 1", "juniors-read-only"),
    ("DROP TABLE users", "no-drop-for-non-admins"),
    ("TRUNCATE users", "no-drop-for-non-admins"),
    ("GRANT ALL ON users TO PUBLIC", "juniors-read-only"),
    ("SELECT 1; DROP TABLE users;", "no-drop-for-non-admins"),
    ("/*x*/DROP TABLE users", "no-drop-for-non-admins"),
    ("DROP/**/TABLE users", "no-drop-for-non-admins"),
    ("--x\nDROP TABLE users", "no-drop-for-non-admins"),
    ("/* /* */ SELECT 1; */ DROP TABLE users;", "no-drop-for-non-admins"),
    ('dRoP TABLE U&"\\0075sers"', "no-drop-for-non-admins"),
    ('DROP TABLE "t"', "no-drop-for-non-admins"),
    ("DO $$BEGIN EXECUTE 'DR'||'OP TABLE t'; END$$", None),
    ("CALL p()", None),
    ("SELECT purge_all()", "juniors-read-only"),
    ("SELECT 1 !== 2", "juniors-read-only"),  # an operator is a call of its function
    ("SELECT 1 OPERATOR(public.!==) 2", "juniors-read-only"),
    ("WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d", "juniors-read-only"),
    ("SELECT * INTO t2 FROM t", "juniors-read-only"),
    ("EXPLAIN ANALYZE DELETE FROM users", "juniors-read-only"),
    ("COPY (DELETE FROM users RETURNING *) TO STDOUT", "juniors-read-only"),
    ("MERGE INTO users u USING t ON u.id = t.id WHEN MATCHED THEN DELETE", "juniors-read-only"),
    ("INSERT INTO users VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = 'pwned'", "juniors-read-only"),
    ("DROP SCHEMA public CASCADE", "no-drop-for-non-admins"),
    ("DROP DATABASE pol_victim WITH (FORCE)", "no-drop-for-non-admins"),
    ("SET ROLE pol_admin", "juniors-no-role-change"),
    ("SET SESSION AUTHORIZATION pol_admin", "juniors-no-role-change"),
    ("SELECT set_config('role', 'pol_admin', false)", None),
    ("ALTER ROLE pol_bob SET role = pol_admin", None),
    ("ALTER SYSTEM SET log_statement = 'none'", "juniors-read-only"),
    ("PREPARE pdel AS DELETE FROM users; EXECUTE pdel;", None),
    ("COPY t FROM PROGRAM 'echo 42'", "juniors-read-only"),
    ("SELECT lo_import('/etc/hostname')", None),
    ("SELECT pg_read_file('/etc/hostname')", None),
    ("SELECT dblink_exec('dbname=pol_db', 'DROP TABLE users')", None),
    ('DROP TABLE "Users"', "no-drop-for-non-admins"),
    ("DROP OWNED BY pol_bob", "no-drop-for-non-admins"),
    ("INSERT INTO notes VALUES ('drop table x')", "juniors-read-only"),
    ("CREATE EXTENSION pgcrypto", "juniors-read-only"),
    ("LOAD 'plpgsql'", "juniors-no-dynamic-sql"),
    ("CREATE TABLE sneaky (id int)", "juniors-read-only"),
    ("ALTER TABLE users ADD COLUMN x int", "juniors-read-only"),
    # PostgreSQL refuses these in a read-only transaction.
    ("SELECT nextval('ticket_seq')", "juniors-read-only"),
    ("SELECT setval('ticket_seq', 99)", "juniors-read-only"),
    ("REFRESH MATERIALIZED VIEW user_names", "juniors-read-only"),
    ("CLUSTER users USING users_pkey", "juniors-read-only"),
    ("SELECT 1 FROM", None),  # unparseable: fail closed
]


# A junior reads freely but every write, DDL, grant, role change and every
# classifier evasion is refused by the proxy (the junior is a superuser on
# the server), the connection stays usable, and the database is untouched.
def test_junior_can_select_but_every_write_and_evasion_is_denied(db, proxy):
    before = database_state(db)
    with connect(proxy, "pol_bob") as conn:
        assert conn.execute("SELECT id, name FROM users ORDER BY id").fetchall() == \
            [(1, "ann"), (2, "ben"), (3, "cid")]
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
        # No false positives: DROP inside a string or as a column name is a read.
        assert conn.execute("SELECT $q$;DROP TABLE t;$q$").fetchone() == (";DROP TABLE t;",)
        assert conn.execute('SELECT 1 AS "drop" FROM t WHERE id = 1').fetchone() == (1,)
        # The simple protocol (no parameters): the text exactly as written.
        for sql, rule in JUNIOR_DENIED:
            expect_denied(conn, sql, rule=rule)
            assert conn.execute("SELECT current_user, 1").fetchone() == ("pol_bob", 1), sql
        # (That a multi-statement Query runs none of its statements is shown
        # with a visible allowed write in the next test.)
        # The extended protocol: the same writes with parameters, unnamed and
        # prepared (Parse is decided; a prepared name can never be executed).
        expect_denied(conn, "INSERT INTO users VALUES (%s, %s)", (101, "x"), rule="juniors-read-only")
        expect_denied(conn, "DELETE FROM users WHERE id = %s", (1,), rule="juniors-read-only")
        expect_denied(conn, "UPDATE users SET name = %s", ("y",), rule="juniors-read-only", prepare=True)
        expect_denied(conn, "UPDATE users SET name = %s", ("y",), rule="juniors-read-only", prepare=True)
        expect_denied(conn, "SELECT set_config('role', %s, false)", ("pol_admin",))
        assert conn.execute("SELECT current_user, session_user").fetchone() == ("pol_bob", "pol_bob")
        assert conn.execute("SELECT current_setting('role')").fetchone() == ("none",)
        assert conn.execute("SELECT name FROM users WHERE id = %s", (2,)).fetchone() == ("ben",)
    # A junior in a non-autocommit session: the denial aborts the transaction.
    with connect(proxy, "pol_bob", autocommit=False) as conn:
        conn.execute("SELECT 1")
        expect_denied(conn, "DELETE FROM users")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
    after = database_state(db)
    assert after == before
    assert "t2" not in after["tables"] and "sneaky" not in after["tables"]
    assert ("pol_victim",) in after["databases"]


# A multi-statement Query whose second statement is denied runs none of its
# statements: the allowed INSERT in front of it leaves no row behind (the
# user may write `notes`, and does when the INSERT is sent alone).
def test_multi_statement_query_with_one_denied_statement_runs_none(db, proxy):
    # pol_tx may write tx_log but not tx_forbidden.
    with connect(proxy, "pol_tx") as conn:
        expect_denied(conn, "INSERT INTO tx_log VALUES ('multi', 1); "
                            "INSERT INTO tx_forbidden VALUES ('multi', 2); "
                            "INSERT INTO tx_log VALUES ('multi', 3)", rule="tx-no-writes-to-forbidden")
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("INSERT INTO tx_log VALUES ('multi-alone', 1)")
    assert admin_query(db, "SELECT side, n FROM tx_log WHERE side LIKE 'multi%' ORDER BY 1, 2") == \
        [("multi-alone", 1)]
    assert admin_query(db, "SELECT count(*) FROM tx_forbidden") == [(0,)]


# ---------------------------------------------------------------------------
# 2. Production credentials and networks

# The admin credential from a developer laptop (127.0.0.2) can read but not
# DROP or write; pgwarden logs the client address it decided on.
def test_production_credentials_from_dev_network_cannot_write_or_drop(db, proxy):
    start = log_size(proxy)
    with connect(proxy, "pol_dba", host=DEV_HOST) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
        expect_denied(conn, "DROP TABLE t", rule="prod-credentials-from-dev-hosts")
        expect_denied(conn, "INSERT INTO t VALUES (99)", rule="prod-credentials-from-dev-hosts")
        expect_denied(conn, "INSERT INTO t VALUES (%s)", (98,), rule="prod-credentials-from-dev-hosts")
        expect_denied(conn, "UPDATE t SET id = 0", rule="prod-credentials-from-dev-hosts")
        expect_denied(conn, "CREATE TABLE dev_made (id int)", rule="prod-credentials-from-dev-hosts")
        expect_denied(conn, "GRANT ALL ON t TO PUBLIC", rule="prod-credentials-from-dev-hosts")
    line = wait_for_log(proxy, r"denied user=pol_dba .*rule=prod-credentials-from-dev-hosts", start=start)
    assert f"client={DEV_HOST}" in line, line
    assert admin_query(db, "SELECT id FROM t ORDER BY 1") == [(1,), (2,)]
    assert admin_query(db, "SELECT to_regclass('public.dev_made') IS NULL") == [(True,)]


# COPY ... TO PROGRAM is a read to pgaudit's classes, so the class rule
# above never sees it: the runs_program flag stops the admin credential
# from a laptop running a shell command on the database server, and a
# non-admin superuser from writing the server's files with COPY TO a file
# name. The same COPY from the admin network does run (the marker appears),
# so the absent markers are the denials' doing.
@pytest.fixture
def marks():
    """A directory the server (running as postgres) may write marker files
    into; pytest's tmp_path is root's only."""
    path = Path(tempfile.mkdtemp(prefix="pgwarden-marks-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def test_server_programs_and_files_are_denied_whatever_their_class(db, proxy, marks):
    from_laptop, by_junior, from_admin = (marks / n for n in ("laptop", "junior", "admin"))
    with connect(proxy, "pol_dba", host=DEV_HOST) as conn:
        expect_denied(conn, f"COPY (SELECT 1) TO PROGRAM 'touch {from_laptop}'",
                      rule="no-server-programs-from-dev-hosts")
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
    with connect(proxy, "pol_bob") as conn:
        expect_denied(conn, f"COPY users TO '{by_junior}'", rule="no-server-files-for-non-admins")
        expect_denied(conn, f"COPY (SELECT 1) TO PROGRAM 'touch {by_junior}'",
                      rule="no-server-programs-for-non-admins")
    with connect(proxy, "pol_dba", host=ADMIN_HOST) as conn:
        conn.execute(f"COPY (SELECT 1) TO PROGRAM 'touch {from_admin}'")
    assert from_admin.exists()
    assert not from_laptop.exists() and not by_junior.exists()


# The same credential from the admin network (127.0.0.1) can write and DROP.
def test_production_credentials_from_admin_network_can_write_and_drop(db, proxy):
    with connect(proxy, "pol_dba", host=ADMIN_HOST) as conn:
        conn.execute("CREATE TABLE admin_made (id int)")
        conn.execute("INSERT INTO admin_made VALUES (1)")
        conn.execute("INSERT INTO admin_made VALUES (%s)", (2,))
        assert conn.execute("SELECT count(*) FROM admin_made").fetchone() == (2,)
        conn.execute("DROP TABLE admin_made")
    assert admin_query(db, "SELECT to_regclass('public.admin_made') IS NULL") == [(True,)]


# ---------------------------------------------------------------------------
# 3. Transactions

def _denial_in_transaction(conn, side: str, forbidden_params: bool):
    conn.execute("BEGIN")
    conn.execute("INSERT INTO tx_log VALUES (%s, 1)", (side,))
    conn.execute(f"INSERT INTO tx_log VALUES ('{side}', 2)")
    with pytest.raises(psycopg.Error) as info:
        if forbidden_params:
            conn.execute("INSERT INTO tx_forbidden VALUES (%s, 3)", (side,))
        else:
            conn.execute(f"INSERT INTO tx_forbidden VALUES ('{side}', 3)")
    # The server's transaction is aborted, not just the client's view of it.
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("SELECT 1")
    cur = conn.execute("COMMIT")
    return info.value, cur.statusmessage


# After a denial inside BEGIN, COMMIT reports ROLLBACK and no earlier write of
# the transaction is visible to anyone - exactly as with the server's own
# permission error (the control user, straight to PostgreSQL).
@pytest.mark.parametrize("extended", [False, True], ids=["simple", "extended"])
def test_denial_inside_transaction_rolls_back(db, proxy, extended):
    side = f"tx-{'ext' if extended else 'simple'}"
    with connect(proxy, "pol_tx") as conn:
        err, status = _denial_in_transaction(conn, side, extended)
        assert_denied(err, "tx-no-writes-to-forbidden")
        assert status == "ROLLBACK"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM tx_log WHERE side = %s", (side,)).fetchone() == (0,)
    with connect(proxy, "pol_tx") as other:
        assert other.execute("SELECT count(*) FROM tx_log WHERE side = %s", (side,)).fetchone() == (0,)
    assert admin_query(db, f"SELECT count(*) FROM tx_log WHERE side = '{side}'") == [(0,)]
    assert admin_query(db, "SELECT count(*) FROM tx_forbidden") == [(0,)]
    # The control: PostgreSQL's own permission error at the same point.
    with direct_as(db, "pol_ctl") as conn:
        err, status = _denial_in_transaction(conn, side + "-ctl", extended)
        assert isinstance(err, psycopg.errors.InsufficientPrivilege)
        assert status == "ROLLBACK"
    assert admin_query(db, f"SELECT count(*) FROM tx_log WHERE side = '{side}-ctl'") == [(0,)]


# psql sees the same: the COMMIT after a denial prints ROLLBACK.
def test_denial_inside_transaction_rolls_back_in_psql(db, proxy):
    script = ("BEGIN;\nINSERT INTO tx_log VALUES ('psql', 1);\n"
              "INSERT INTO tx_forbidden VALUES ('psql', 2);\nCOMMIT;\n")
    r = subprocess.run(["psql", "-X", "-h", ADMIN_HOST, "-p", str(proxy.port), "-U", "pol_tx", "-d", DB],
                       input=script, capture_output=True, text=True, timeout=30, env=harness.client_env())
    assert r.stdout.split() == ["BEGIN", "INSERT", "0", "1", "ROLLBACK"], (r.stdout, r.stderr)
    assert 'pgwarden rule "tx-no-writes-to-forbidden"' in r.stderr, r.stderr
    assert admin_query(db, "SELECT count(*) FROM tx_log WHERE side = 'psql'") == [(0,)]


# ---------------------------------------------------------------------------
# 4. Pipelines and prepared statements

def _outcome(exc):
    return None if exc is None else (type(exc).__name__, exc.sqlstate)


def committed(postgres, side: str):
    return admin_query(postgres, "SELECT 'log', n FROM pipe_log WHERE side = '%s' UNION ALL "
                                 "SELECT 'forbidden', n FROM pipe_forbidden WHERE side = '%s' ORDER BY 1, 2"
                       % (side, side))


def both_sides(postgres, proxy, autocommit: bool):
    """(name, opener) for pgwarden (pol_pipe, denied by the rule) and for
    PostgreSQL itself (pol_ctl, denied by a missing privilege)."""
    return (("proxy", lambda: connect(proxy, "pol_pipe", autocommit=autocommit)),
            ("server", lambda: direct_as(postgres, "pol_ctl", autocommit=autocommit)))


ALLOWED = "INSERT INTO pipe_log VALUES (%s, {n})"
DENIED = "INSERT INTO pipe_forbidden VALUES (%s, {n})"


# In psycopg's pipeline mode a denied statement between allowed ones behaves
# as PostgreSQL's own permission error at the same position (pol_ctl,
# straight to the server, lacks the privilege pgwarden denies pol_pipe): the
# same exception, the same transaction state, the same rows committed, the
# connection usable. (Where psycopg raises inside the block depends on when
# results arrive, so this pipeline has a single sync; the libpq-level test
# below pins every result with several syncs.)
@pytest.mark.parametrize("prepare", [None, True], ids=["unprepared", "prepared"])
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
def test_pipeline_denial_behaves_like_server_permission_error(db, proxy, autocommit, prepare):
    results = {}
    for who, opener in both_sides(db, proxy, autocommit):
        side = f"psycopg-{autocommit}-{prepare}-{who}"
        out = {}
        with opener() as conn:
            cur = conn.cursor()
            with pytest.raises(psycopg.Error) as info:
                with conn.pipeline():
                    cur.execute(ALLOWED.format(n=1), (side,), prepare=prepare)
                    cur.execute(DENIED.format(n=2), (side,), prepare=prepare)
                    cur.execute(ALLOWED.format(n=3), (side,), prepare=prepare)
            out["error"] = _outcome(info.value)
            if who == "proxy":
                assert_denied(info.value, "pipe-no-writes-to-forbidden")
            out["status"] = conn.info.transaction_status.name
            if not autocommit:
                conn.commit()   # of a failed transaction: rolls back
            # Usable, in and out of pipeline mode; a later pipeline runs.
            with conn.pipeline():
                cur.execute(ALLOWED.format(n=4), (side,), prepare=prepare)
            conn.commit()
            out["after"] = conn.execute("SELECT 1").fetchone()
        out["rows"] = committed(db, side)
        results[who] = out
    assert results["proxy"] == results["server"], pformat(results)
    assert results["server"]["error"] == ("InsufficientPrivilege", "42501")


def run_libpq_pipeline(conn, side: str, steps) -> list:
    """Sends every step in libpq pipeline mode before reading anything (so the
    outcome does not depend on timing), then returns each result's status
    and SQLSTATE. Steps: ("q", sql), ("prepare", name, sql), ("exec", name), "SYNC"."""
    pg = conn.pgconn
    pg.enter_pipeline_mode()
    syncs = 0
    for step in steps:
        if step == "SYNC":
            pg.pipeline_sync()
            syncs += 1
        elif step[0] == "q":
            pg.send_query_params(step[1].encode(), [side.encode()] if "$1" in step[1] else None)
        elif step[0] == "prepare":
            pg.send_prepare(step[1].encode(), step[2].encode())
        elif step[0] == "exec":
            pg.send_query_prepared(step[1].encode(), [side.encode()])
    pg.flush()
    out = []
    while syncs:
        r = pg.get_result()
        if r is None:
            continue
        status = psycopg.pq.ExecStatus(r.status).name
        if status == "PIPELINE_SYNC":
            syncs -= 1
        sqlstate = r.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
        message = r.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
        out.append((status, sqlstate.decode() if sqlstate else None,
                    bool(message and b"pgwarden rule" in message)))
    pg.exit_pipeline_mode()
    return out


LIBPQ_PIPELINES = {
    # allowed | sync | denied, allowed | sync | allowed | sync
    "autocommit": [("q", ALLOWED.format(n=1) % "$1"), "SYNC",
                   ("q", DENIED.format(n=2) % "$1"), ("q", ALLOWED.format(n=3) % "$1"), "SYNC",
                   ("q", ALLOWED.format(n=4) % "$1"), "SYNC"],
    # BEGIN, allowed, denied, allowed, COMMIT | sync | allowed | sync
    "transaction": [("q", "BEGIN"), ("q", ALLOWED.format(n=1) % "$1"), ("q", DENIED.format(n=2) % "$1"),
                    ("q", ALLOWED.format(n=3) % "$1"), ("q", "COMMIT"), "SYNC",
                    ("q", ALLOWED.format(n=4) % "$1"), "SYNC"],
    # BEGIN | sync | allowed, denied | sync | allowed, COMMIT | sync
    "transaction-syncs": [("q", "BEGIN"), "SYNC", ("q", ALLOWED.format(n=1) % "$1"),
                          ("q", DENIED.format(n=2) % "$1"), "SYNC", ("q", ALLOWED.format(n=3) % "$1"),
                          ("q", "COMMIT"), "SYNC"],
}

# Named prepared statements: the denied one is prepared, then executed in the
# same batch and again after a sync.
PREPARED_PIPELINE = [("prepare", "ok", ALLOWED.format(n=1) % "$1"), ("prepare", "bad", DENIED.format(n=2) % "$1"),
                     ("exec", "ok"), ("exec", "bad"), ("exec", "ok"), "SYNC",
                     ("exec", "bad"), "SYNC", ("exec", "ok"), "SYNC"]


# The same comparison at the libpq level with several syncs, every result
# pinned: statements after the denial are skipped up to the Sync (libpq's
# PIPELINE_ABORTED), earlier ones are committed only if PostgreSQL commits
# them, a denied prepared statement never executes, later syncs run normally.
@pytest.mark.parametrize("name", sorted(LIBPQ_PIPELINES))
def test_libpq_pipeline_denial_matches_server(db, proxy, name):
    results = {}
    for who, opener in both_sides(db, proxy, True):
        side = f"libpq-{name}-{who}"
        with opener() as conn:
            statuses = run_libpq_pipeline(conn, side, LIBPQ_PIPELINES[name])
            state = conn.info.transaction_status.name
            if state != "IDLE":
                conn.execute("ROLLBACK")
            after = conn.execute("SELECT 1").fetchone()
        results[who] = {"statuses": statuses, "state": state, "after": after, "rows": committed(db, side)}
    proxy_side = results["proxy"]
    # Every error pgwarden produced is its denial, and there is one.
    assert any(s == ("FATAL_ERROR", "42501", True) for s in proxy_side["statuses"]), pformat(results)
    results["proxy"]["statuses"] = [(st, code, False) for st, code, _ in proxy_side["statuses"]]
    assert results["proxy"] == results["server"], pformat(results)
    assert "FATAL_ERROR" in [s[0] for s in results["server"]["statuses"]]


# A named statement denied at Parse is never executed: not when bound in the
# same batch, not after a Sync. pgwarden decides at Parse (issue 5), so its
# error comes at the Parse where PostgreSQL's privilege error would come at
# the first Execute; what follows up to the Sync is skipped either way and
# the same rows are committed.
def test_libpq_pipeline_denied_prepared_statement_never_executes(db, proxy):
    results = {}
    for who, opener in both_sides(db, proxy, True):
        side = f"libpq-prepared-{who}"
        with opener() as conn:
            statuses = run_libpq_pipeline(conn, side, PREPARED_PIPELINE)
            after = conn.execute("SELECT 1").fetchone()
        results[who] = {"statuses": statuses, "after": after, "rows": committed(db, side)}
    ok, aborted, sync = ("COMMAND_OK", None, False), ("PIPELINE_ABORTED", None, False), \
        ("PIPELINE_SYNC", None, False)
    denied = ("FATAL_ERROR", "42501", True)
    assert results["proxy"]["statuses"] == [
        ok, denied, aborted, aborted, aborted, sync,   # prepare ok, prepare bad (denied), exec ok/bad/ok skipped
        denied, sync,                                   # exec bad after the sync: still denied
        ok, sync], pformat(results)
    assert results["server"]["statuses"] == [
        ok, ok, ok, ("FATAL_ERROR", "42501", False), aborted, sync,
        ("FATAL_ERROR", "42501", False), sync,
        ok, sync], pformat(results)
    assert results["proxy"]["rows"] == results["server"]["rows"] == [("log", 1)]
    assert results["proxy"]["after"] == (1,)


def parse_msg(name: str, sql: str) -> bytes:
    return harness.message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))


def bind_msg(name: str) -> bytes:
    return harness.message(b"B", b"\0" + name.encode() + b"\0" + struct.pack("!hhh", 0, 0, 0))


EXECUTE = harness.message(b"E", b"\0" + struct.pack("!i", 0))
SYNC = harness.message(b"S", b"")


def errors_in(msgs) -> list[dict]:
    return [harness.error_fields(p) for k, p in msgs if k == b"E"]


def refused_by(msgs, rule: str | None = None) -> bool:
    """Whether `msgs` hold exactly one error, pgwarden's 42501 naming `rule`
    (or any rule)."""
    errs = errors_in(msgs)
    named = f'pgwarden rule "{rule}"' if rule else "pgwarden rule"
    return len(errs) == 1 and errs[0]["C"] == "42501" and named in errs[0]["M"]


# A Parse that is denied leaves nothing behind under its name: binding and
# executing that name later - in the same batch, after a Sync, or after a
# second Parse of the same name - never runs it, and the connection stays usable.
def test_denied_parse_name_is_never_executed_later(db, proxy):
    side = "raw-prepared"
    evil = f"INSERT INTO pipe_forbidden VALUES ('{side}', 1)"
    with harness.RawClient(endpoint(proxy)) as c:
        assert not errors_in(c.login(user="pol_pipe", database=DB))
        # Pipelined: Parse, Bind, Execute of the same name, one Sync.
        c.send(parse_msg("evil", evil) + bind_msg("evil") + EXECUTE + SYNC)
        msgs = c.read_until_ready()
        errs = errors_in(msgs)
        assert len(errs) == 1 and errs[0]["C"] == "42501" and "pipe-no-writes-to-forbidden" in errs[0]["M"], msgs
        assert not any(k == b"C" for k, _ in msgs), msgs
        # Not pipelined: Parse + Sync, then Bind + Execute + Sync.
        c.send(parse_msg("evil2", evil) + SYNC)
        errs = errors_in(c.read_until_ready())
        assert [e["C"] for e in errs] == ["42501"], errs
        c.send(bind_msg("evil2") + EXECUTE + SYNC)
        msgs = c.read_until_ready()
        assert not any(k == b"C" for k, _ in msgs), msgs
        assert len(errors_in(msgs)) == 1, msgs
        # An allowed unnamed statement runs; then the first denied name, bound
        # again in a later batch, still does not.
        c.send(parse_msg("", "SELECT 1") + bind_msg("") + EXECUTE + SYNC)
        msgs = c.read_until_ready()
        assert not errors_in(msgs) and any(k == b"C" for k, _ in msgs), msgs
        c.send(bind_msg("evil") + EXECUTE + SYNC)
        msgs = c.read_until_ready()
        assert not any(k == b"C" for k, _ in msgs) and len(errors_in(msgs)) == 1, msgs
        # Still usable.
        msgs = c.query("SELECT 1")
        assert not errors_in(msgs) and msgs[-1][0] == b"Z", msgs
    assert committed(db, side) == []


# A statement PREPAREd in SQL can be run by a protocol Bind too (the server
# keeps one namespace): the Bind is decided as the SQL EXECUTE of it would
# be. An EXECUTE of a statement this session PREPAREd in SQL runs what
# pgwarden decided at PREPARE, so it is decided as that statement (a junior
# runs a prepared SELECT, as pg_dump does, either way); an EXECUTE of a
# name pgwarden did not see prepared in SQL is dynamic SQL, which a junior
# may not run.
def test_bind_of_a_statement_prepared_in_sql_is_decided_like_execute(db, proxy):
    with harness.RawClient(endpoint(proxy)) as c:
        assert not errors_in(c.login(user="pol_bob", database=DB))
        assert not errors_in(c.query("PREPARE sel AS SELECT 42"))
        msgs = c.query("EXECUTE sel")
        assert not errors_in(msgs) and any(k == b"D" for k, _ in msgs), msgs
        c.send(bind_msg("sel") + EXECUTE + SYNC)
        msgs = c.read_until_ready()
        assert not errors_in(msgs) and any(k == b"D" for k, _ in msgs), msgs
        # A protocol Parse names a statement an SQL EXECUTE can run too.
        c.send(parse_msg("proto_sel", "SELECT 7") + SYNC)
        assert not errors_in(c.read_until_ready())
        msgs = c.query("EXECUTE proto_sel")
        assert refused_by(msgs, "juniors-no-dynamic-sql"), msgs
        assert not any(k == b"D" for k, _ in msgs), msgs
        # A name nobody prepared: the server's own error, the session usable.
        c.send(bind_msg("nothing") + EXECUTE + SYNC)
        errs = errors_in(c.read_until_ready())
        assert len(errs) == 1 and errs[0]["C"] in ("42501", "26000"), errs
        assert not errors_in(c.query("SELECT 1"))


def q_msg(sql: bytes) -> bytes:
    return harness.message(b"Q", sql + b"\0")


def parse_bytes(sql: bytes) -> bytes:
    return harness.message(b"P", b"\0" + sql + b"\0" + struct.pack("!h", 0))


# 0x95 0x5c is one character in SJIS; read as UTF-8 its second byte is a
# backslash that escapes the quote, and the DROP looks like part of a string.
SJIS_HIDDEN_DROP = b"SELECT E'\x95\x5c'; DROP TABLE t; --'"
# With standard_conforming_strings off a backslash escapes in '...' too.
BACKSLASH_HIDDEN_DROP = b"SELECT 'a\\'' ; DROP TABLE t; --'"


# The server reads a statement in the session's client_encoding and with
# its standard_conforming_strings, and so does pgwarden: a DROP hidden from
# a UTF-8 reading (SJIS, where a character's second byte may be a
# backslash) or from standard strings is denied when set beforehand, when
# set in the request just before it (simple and extended protocol), and
# when sent at login. Text valid in the encoding runs; text that is not is
# refused with the server's SQLSTATE.
def test_statements_are_read_as_the_server_reads_them(db, proxy):
    before = database_state(db)

    def session():
        c = harness.RawClient(endpoint(proxy))
        assert not errors_in(c.login(user="pol_bob", database=DB))
        return c

    for setting, hidden in (("client_encoding TO 'SJIS'", SJIS_HIDDEN_DROP),
                            ("standard_conforming_strings = off", BACKSLASH_HIDDEN_DROP)):
        # Set first, answered, then the statement.
        with session() as c:
            assert not errors_in(c.query(f"SET {setting}")), setting
            c.send(q_msg(hidden))
            assert refused_by(c.read_until_ready()), setting
        # Pipelined: the change is not answered yet when the statement arrives.
        with session() as c:
            c.send(q_msg(f"SET {setting}".encode()) + q_msg(hidden))
            assert not errors_in(c.read_until_ready()), setting
            assert refused_by(c.read_until_ready()), setting
        # Extended protocol, one batch: the SET is executed, then the Parse read.
        with session() as c:
            c.send(parse_bytes(f"SET {setting}".encode()) + bind_msg("") + EXECUTE +
                   parse_bytes(hidden) + bind_msg("") + EXECUTE + SYNC)
            assert refused_by(c.read_until_ready()), setting
            assert not errors_in(c.query("SELECT 1")), setting
    # At login: the startup packet's client_encoding.
    with harness.RawClient(endpoint(proxy)) as c:
        assert not errors_in(c.login(user="pol_bob", database=DB, client_encoding="SJIS"))
        c.send(q_msg(SJIS_HIDDEN_DROP))
        assert refused_by(c.read_until_ready())
        # Valid SJIS runs, and the server returns what pgwarden read.
        c.send(q_msg(b"SELECT '\x95\x5c' = U&'\\8868'"))
        msgs = c.read_until_ready()
        assert not errors_in(msgs) and any(k == b"D" and p.endswith(b"t") for k, p in msgs), msgs
        # Not SJIS at all: refused, as the server would refuse it.
        c.send(q_msg(b"SELECT '\x95'"))
        errs = errors_in(c.read_until_ready())
        assert [e["C"] for e in errs] == ["22021"], errs
        assert "client_encoding" in errs[0]["M"]
        assert not errors_in(c.query("SELECT 1"))
    assert database_state(db) == before


# ---------------------------------------------------------------------------
# 5. check and explain

# `pgwarden check` reports every error of the deliberately broken file, each
# as file:line:col, and exits non-zero; the test policy passes.
def test_check_reports_every_error_with_line_and_column(db, tmp_path):
    binary = str(harness.pgwarden_binary())
    r = subprocess.run([binary, "check", "--config", str(BROKEN_CONFIG)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    path = str(BROKEN_CONFIG)
    for where, text in [
        ("3:9", "listen: expected host:port"),
        ("6:9", "upstream.port"),
        ("8:3", "unknown key 'conect_timeout' in upstream"),
        ("14:29", "bad CIDR: '10.20.0.1/16' has host bits set"),
        ("14:43", "bad CIDR: '300.1.2.3/8'"),
        ("19:45", "undefined group 'admin'"),
        ("21:11", "duplicate rule name 'no-drop'"),
        ("22:24", "undefined network 'dev_host'"),
        ("22:49", "'DDLL' is not a statement class"),
        ("27:13", "rules[2].action: 'refuse' is not one of allow, deny"),
        ("33:10", "default: 'maybe' is not one of allow, deny"),
    ]:
        assert re.search(rf"(^|\n)(\S*/)?{re.escape(Path(path).name)}:{where}: .*{re.escape(text)}", out), \
            f"missing {where} {text!r} in:\n{out}"
    located = re.findall(rf"{re.escape(Path(path).name)}:\d+:\d+: ", out)
    assert len(located) == 19, out
    # A broken policy of our own: several errors in one rules section.
    bad = tmp_path / "bad-policy.yaml"
    bad.write_text("listen: 127.0.0.1:6432\n"
                   "upstream: { host: 127.0.0.1, port: 5432 }\n"
                   "groups: { juniors: [bob] }\n"
                   "networks: { dev: [10.0.0.0/33] }\n"
                   "rules:\n"
                   "  - name: a\n"
                   "    when: { user_in: junior, class: [WRITE, DELETE] }\n"
                   "    action: deny\n"
                   "  - name: b\n"
                   "    when: { client_in: office }\n"
                   "    action: block\n")
    r = subprocess.run([binary, "check", "--config", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for where, text in [("4:19", "10.0.0.0/33"), ("7:22", "undefined group 'junior'"),
                        ("7:45", "'DELETE' is not a statement class"), ("10:24", "undefined network 'office'"),
                        ("11:13", "'block' is not one of allow, deny")]:
        assert f"bad-policy.yaml:{where}: " in out and text in out.split(f"bad-policy.yaml:{where}: ")[1] \
            .splitlines()[0], f"missing {where} {text!r} in:\n{out}"
    # The scenario policy itself is valid.
    good = tmp_path / "good.yaml"
    good.write_text(config_text(db).replace("{listen_port}", "6432"))
    r = subprocess.run([binary, "check", "--config", str(good)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.fullmatch(r"ok: 15 rules, 2 groups, 2 networks\s*", r.stdout), r.stdout


def explain(config: Path, *args: str) -> tuple[int, dict]:
    r = subprocess.run([str(harness.pgwarden_binary()), "explain", "--config", str(config), *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    return r.returncode, json.loads(r.stdout)


# `pgwarden explain` shows each statement's facts, every rule that matched,
# the final action and why; exit 1 when denied, 0 when allowed.
def test_explain_shows_matched_rules(db, tmp_path):
    config = tmp_path / "policy.yaml"
    config.write_text(config_text(db).replace("{listen_port}", "6432"))

    rc, j = explain(config, "--user", "pol_bob", "--database", DB, "--client", ADMIN_HOST,
                    "SELECT 1; DROP TABLE users")
    assert rc == 1
    assert j["decision"]["action"] == "deny"
    assert j["decision"]["rule"] == "no-drop-for-non-admins"
    assert j["decision"]["statement"] == 1
    assert j["session"]["user"] == "pol_bob" and j["session"]["database"] == DB
    first, second = j["statements"]
    assert first["command_tag"] == "SELECT" and first["matched_rules"] == []
    assert second["command_tag"] == "DROP TABLE"
    assert {m["name"] for m in second["matched_rules"]} == \
        {"no-drop-for-non-admins", "juniors-read-only", "alert-on-ddl"}
    assert second["decision"]["sqlstate"] == "42501"

    rc, j = explain(config, "--user", "pol_dba", "--client", DEV_HOST, "INSERT INTO t VALUES (1)")
    assert rc == 1
    assert j["decision"]["rule"] == "prod-credentials-from-dev-hosts"
    assert [m["name"] for m in j["statements"][0]["matched_rules"]] == ["prod-credentials-from-dev-hosts"]

    rc, j = explain(config, "--user", "pol_dba", "--client", DEV_HOST, "COPY (SELECT 1) TO PROGRAM 'true'")
    assert rc == 1
    facts = j["statements"][0]
    assert (facts["classes"], facts["runs_program"], facts["server_file_access"]) == (["READ"], True, False)
    assert j["decision"]["rule"] == "no-server-programs-from-dev-hosts"

    rc, j = explain(config, "--user", "pol_dba", "--client", ADMIN_HOST, "DROP TABLE t")
    assert rc == 0
    assert j["decision"]["action"] == "allow"
    assert [m["name"] for m in j["statements"][0]["matched_rules"]] == ["alert-on-ddl"]
    assert j["decision"]["alert"] is True

    # The text as a session with that client_encoding or string syntax reads it.
    tags = lambda j: [st["command_tag"] for st in j["statements"]]
    rc, j = explain(config, "--user", "pol_dba", "--client", ADMIN_HOST, SJIS_HIDDEN_DROP)
    assert tags(j) == ["SELECT"]
    rc, j = explain(config, "--user", "pol_dba", "--client", ADMIN_HOST, "--client-encoding", "SJIS",
                    SJIS_HIDDEN_DROP)
    assert tags(j) == ["SELECT", "DROP TABLE"] and j["decision"]["alert"] is True
    rc, j = explain(config, "--user", "pol_dba", "--client", ADMIN_HOST, "--standard-conforming-strings", "off",
                    BACKSLASH_HIDDEN_DROP)
    assert tags(j) == ["SELECT", "DROP TABLE"]
    for args, code, said in ((["--client-encoding", "SJIS", b"SELECT '\x95'"], 1, "not valid SJIS"),
                             (["--client-encoding", "KLINGON", "SELECT 1"], 2, "unknown --client-encoding"),
                             (["--standard-conforming-strings", "maybe", "SELECT 1"], 2,
                              "invalid --standard-conforming-strings")):
        r = subprocess.run([str(harness.pgwarden_binary()), "explain", "--config", str(config), "--user", "pol_dba",
                            *args], capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout) == (code, "") and said in r.stderr, (args, r.returncode, r.stdout, r.stderr)

    rc, j = explain(config, "--user", "pol_dry", "DELETE FROM dry_t")
    assert rc == 0
    assert j["decision"]["action"] == "allow"
    assert j["decision"]["dry_run"] is True and j["decision"]["dry_run_rule"] == "dry-run-no-delete"
    m = j["statements"][0]["matched_rules"]
    assert [(x["name"], x["action"], x["enforce"]) for x in m] == [("dry-run-no-delete", "deny", False)]


# ---------------------------------------------------------------------------
# 6. Dry run

# A rule with `enforce: false` lets the statement run (its effect is on the
# server) and pgwarden logs that it would have denied it.
def test_dry_run_rule_lets_statement_run_and_logs_decision(db, proxy):
    admin_exec(db, "INSERT INTO dry_t VALUES (1), (2), (3)")
    start = log_size(proxy)
    with connect(proxy, "pol_dry") as conn:
        cur = conn.execute("DELETE FROM dry_t WHERE id = 1")
        assert cur.rowcount == 1
        cur = conn.execute("DELETE FROM dry_t WHERE id = %s", (2,))
        assert cur.rowcount == 1
    assert admin_query(db, "SELECT id FROM dry_t") == [(3,)]
    line = wait_for_log(proxy, r'would have denied a statement rule=dry-run-no-delete', start=start)
    assert "pol_dry" in line and ADMIN_HOST in line, line
    log = proxy.log_path.read_text(errors="replace")[start:]
    assert len(re.findall(r'would have denied a statement rule=dry-run-no-delete', log)) >= 2, log
    assert "denied user=pol_dry" not in log, log


# ---------------------------------------------------------------------------
# 7. Connection phase and reload

# `on: connect` rules refuse startup with FATAL 28000 naming the rule: a
# retired application, and a junior from a developer laptop.
def test_connect_rule_refuses_startup_with_28000(db, proxy):
    with pytest.raises(psycopg.OperationalError) as info:
        connect(proxy, "pol_dba", application_name="legacy-report")
    assert 'pgwarden rule "refuse-legacy-apps"' in str(info.value), str(info.value)
    with pytest.raises(psycopg.OperationalError) as info:
        connect(proxy, "pol_bob", host=DEV_HOST)
    assert "refuse-juniors-from-dev-hosts" in str(info.value), str(info.value)
    # The wire-level reply: one FATAL ErrorResponse with SQLSTATE 28000.
    with harness.RawClient(endpoint(proxy, DEV_HOST)) as c:
        seen = c.login(user="pol_bob", database=DB)
        errs = errors_in(seen)
        assert len(errs) == 1, seen
        assert errs[0]["S"] == "FATAL" and errs[0]["C"] == "28000", errs
        assert "refuse-juniors-from-dev-hosts" in errs[0]["M"], errs
        assert not any(k == b"Z" for k, _ in seen), seen
        closed, _ = c.wait_closed(5)
        assert closed
    # Neither rule covers these.
    with connect(proxy, "pol_bob", host=ADMIN_HOST, application_name="report") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with connect(proxy, "pol_dba", host=DEV_HOST, application_name="legacy") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# A StartupMessage can set any run-time setting: `role` as a parameter of
# its own, or `-c role=...` in `options`, starts the session as that role.
# Each setting is decided as the SET it is, so a junior, who may not SET ROLE,
# cannot start as another role either; an admin can.
def test_startup_settings_are_decided_as_the_sets_they_are(db, proxy):
    for params in ({"options": "-c role=pol_admin"}, {"options": "--role=pol_admin"},
                   {"options": "-c session_authorization=pol_admin"}):
        with pytest.raises(psycopg.OperationalError) as info:
            connect(proxy, "pol_bob", **params)
        assert 'rule "juniors-no-role-change"' in str(info.value), (params, str(info.value))
        assert "startup parameter options: -" in str(info.value), str(info.value)
    # The wire-level reply to a `role` parameter: one FATAL ErrorResponse,
    # 42501, before the server ever sees the session.
    with harness.RawClient(endpoint(proxy)) as c:
        seen = c.login(user="pol_bob", database=DB, role="pol_admin")
        errs = errors_in(seen)
        assert len(errs) == 1 and errs[0]["S"] == "FATAL" and errs[0]["C"] == "42501", seen
        assert "juniors-no-role-change" in errs[0]["M"] and "role=pol_admin" in errs[0]["M"], errs
        assert not any(k == b"Z" for k, _ in seen), seen
    # Libraries loaded when the session starts are a LOAD, which is opaque code.
    with pytest.raises(psycopg.OperationalError) as info:
        connect(proxy, "pol_bob", options="-c local_preload_libraries=auto_explain")
    assert 'rule "juniors-no-dynamic-sql"' in str(info.value), str(info.value)
    # A switch that sets nothing a SET could say fails closed for a session
    # that any deny rule covers.
    with pytest.raises(psycopg.OperationalError) as info:
        connect(proxy, "pol_bob", options="-d 5")
    assert "startup parameter options: -d 5" in str(info.value), str(info.value)
    # Ordinary settings pass, and take effect on the server.
    with connect(proxy, "pol_bob", options="-c work_mem=8MB -c search_path=public") as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)
        assert conn.execute("SELECT current_user").fetchone() == ("pol_bob",)
    # No rule keeps an admin from starting as another role.
    with connect(proxy, "pol_dba", options="-c role=pol_admin") as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == ("pol_admin", "pol_dba")


RELOAD_RULE = """
  - name: reload-no-writes
    when: { user: [pol_reload], class: [WRITE] }
    action: deny
"""


def with_extra_rule(policy: str, rule: str) -> str:
    head, sep, tail = policy.partition("\nrules:\n")
    assert sep
    return head + sep + rule.lstrip("\n") + tail


def reload(proxy, db, policy: str, expect: str = r"configuration reloaded") -> int:
    """Makes `policy` the proxy's configuration, sends SIGHUP and waits for
    `expect` in its log; returns the log offset it waited from."""
    start = log_size(proxy)
    proxy.config_path.write_text(config_text(db, policy).replace("{listen_port}", str(proxy.port)))
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for_log(proxy, expect, start=start)
    return start


@contextlib.contextmanager
def writes_denied_to_pol_reload(proxy, db):
    """RELOAD_RULE in force for the block, then the test policy again."""
    policy = POLICY_FILE.read_text()
    try:
        reload(proxy, db, with_extra_rule(policy, RELOAD_RULE))
        yield
    finally:
        reload(proxy, db, policy)


# SIGHUP applies a new policy from the next statement of every existing
# session; a broken file is rejected and the policy in force stays.
def test_reload_applies_to_existing_sessions(db, proxy):
    policy = POLICY_FILE.read_text()
    with connect(proxy, "pol_reload") as conn, connect(proxy, "pol_reload", autocommit=False) as tx:
        conn.execute("INSERT INTO reload_t VALUES (1)")
        tx.execute("SELECT 1")  # a session with a transaction open across the reload
        tx.execute("INSERT INTO reload_t VALUES (2)")
        reload(proxy, db, with_extra_rule(policy, RELOAD_RULE))
        expect_denied(conn, "INSERT INTO reload_t VALUES (3)", rule="reload-no-writes")
        expect_denied(tx, "INSERT INTO reload_t VALUES (%s)", (4,), rule="reload-no-writes")
        tx.rollback()
        assert conn.execute("SELECT count(*) FROM reload_t").fetchone() == (1,)

        # A broken file that, were it accepted, would lift the rule again.
        start = reload(proxy, db, policy + "\nbogus_key: 1\n", expect=r"reload rejected: .*bogus_key")
        wait_for_log(proxy, r"previous configuration stays in force", start=start)
        assert proxy.alive()
        expect_denied(conn, "INSERT INTO reload_t VALUES (5)", rule="reload-no-writes")
        with connect(proxy, "pol_reload") as fresh:
            expect_denied(fresh, "INSERT INTO reload_t VALUES (6)", rule="reload-no-writes")

        # And back: the rule removed, the same session writes again.
        reload(proxy, db, policy)
        conn.execute("INSERT INTO reload_t VALUES (7)")
    assert admin_query(db, "SELECT id FROM reload_t ORDER BY 1") == [(1,), (7,)]


def close_msg(name: str) -> bytes:
    return harness.message(b"C", b"S" + name.encode() + b"\0")


# A Bind after a reload is decided on the statement the server holds under
# its name: a second Parse of the name fails on the server (it exists), and
# a Close after an error in its batch is skipped, so neither changes what a
# Bind of the name runs, nor what pgwarden decides it on.
def test_bind_after_reload_is_decided_on_what_the_server_holds(db, proxy):
    with harness.RawClient(endpoint(proxy)) as c:
        assert not errors_in(c.login(user="pol_reload", database=DB))
        c.send(parse_msg("ins", "INSERT INTO reload_t VALUES (10)") +
               parse_msg("ins2", "INSERT INTO reload_t VALUES (11)") + SYNC)
        assert not errors_in(c.read_until_ready())
        c.send(parse_msg("ins", "SELECT 1") + SYNC)
        assert [e["C"] for e in errors_in(c.read_until_ready())] == ["42P05"]  # already exists
        c.send(parse_msg("", "SELECT no_such_column") + close_msg("ins2") + SYNC)
        assert [e["C"] for e in errors_in(c.read_until_ready())] == ["42703"]  # the Close is skipped
        with writes_denied_to_pol_reload(proxy, db):
            for name in ("ins", "ins2"):
                c.send(bind_msg(name) + EXECUTE + SYNC)
                msgs = c.read_until_ready()
                assert refused_by(msgs, "reload-no-writes"), (name, msgs)
            # Closed for real, the name is gone on both sides.
            c.send(close_msg("ins2") + SYNC)
            assert not errors_in(c.read_until_ready())
            c.send(bind_msg("ins2") + EXECUTE + SYNC)
            assert [e["C"] for e in errors_in(c.read_until_ready())] == ["26000"]
    assert admin_query(db, "SELECT id FROM reload_t WHERE id >= 10") == []


# The same for a statement PREPAREd in SQL: its EXECUTE, and a protocol
# Bind of it, are decided on the statement it runs with the rules in force,
# so a reload that denies writes stops a write prepared before it; a read
# prepared the same way still runs.
def test_execute_after_reload_is_decided_on_the_prepared_statement(db, proxy):
    with harness.RawClient(endpoint(proxy)) as c:
        assert not errors_in(c.login(user="pol_reload", database=DB))
        assert not errors_in(c.query("PREPARE ins AS INSERT INTO reload_t VALUES (20)"))
        assert not errors_in(c.query("PREPARE sel AS SELECT 42"))
        with writes_denied_to_pol_reload(proxy, db):
            for request in (q_msg(b"EXECUTE ins"), q_msg(b"EXPLAIN ANALYZE EXECUTE ins"),
                            bind_msg("ins") + EXECUTE + SYNC):
                c.send(request)
                msgs = c.read_until_ready()
                assert refused_by(msgs, "reload-no-writes"), (request, msgs)
            msgs = c.query("EXECUTE sel")
            assert not errors_in(msgs) and any(k == b"D" for k, _ in msgs), msgs
    assert admin_query(db, "SELECT id FROM reload_t WHERE id >= 20") == []
