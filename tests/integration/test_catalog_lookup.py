"""Issue 17, point 2: FUNCTION means "may change something", by the
connected database's own catalog. With `catalog_lookup`, pgwarden reads the
functions, operators and casts users created, as a role of its own that may
only connect and read the catalog; a call it shows side-effect free no longer
makes a statement FUNCTION. Without it, or when the lookup fails, or right
after DDL, every such call is FUNCTION (fail closed).

The junior `cl_bob` is a PostgreSQL superuser, so a denial is pgwarden's.
"""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

import harness

pytestmark = pytest.mark.proxy_only

DB = "cl_db"
JUNIOR = "cl_bob"
ADMIN = "cl_admin"
LOOKUP, LOOKUP_PASSWORD = "cl_lookup", "lookup-secret"
RULE = "juniors-no-functions"

SETUP_ROLES = f"""
CREATE ROLE {JUNIOR} LOGIN SUPERUSER;
CREATE ROLE {ADMIN} LOGIN SUPERUSER;
SET password_encryption = 'scram-sha-256';
CREATE ROLE {LOOKUP} LOGIN PASSWORD '{LOOKUP_PASSWORD}';
CREATE DATABASE {DB};
REVOKE CONNECT ON DATABASE {DB} FROM PUBLIC;
GRANT CONNECT ON DATABASE {DB} TO {JUNIOR}, {ADMIN}, {LOOKUP}, {harness.MD5_USER};
"""

READER_BODY = "SELECT count(*) FROM items"
SETUP_DB = f"""
CREATE TABLE items (id int);
INSERT INTO items VALUES (1), (2), (3);
CREATE TABLE log (v text);
CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql STABLE AS '{READER_BODY}';
CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE FUNCTION write_log(t text) RETURNS int LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN INSERT INTO log VALUES (t); RETURN 1; END $$;
CREATE FUNCTION add_logged(a int, b int) RETURNS int LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN INSERT INTO log VALUES ('operator'); RETURN a + b; END $$;
CREATE OPERATOR <=+=> (LEFTARG = int, RIGHTARG = int, FUNCTION = add_logged);
CREATE FUNCTION add_plain(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + $2';
CREATE OPERATOR <+> (LEFTARG = int, RIGHTARG = int, FUNCTION = add_plain);
CREATE FUNCTION sneaky() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT write_log(''sneaky'')::bigint';
"""

ALLOWED = [("SELECT item_count()", 3), ("SELECT twice(21)", 42), ("SELECT 1 <+> 2", 3)]
DENIED = ["SELECT write_log('x')", "SELECT 1 <=+=> 2", "SELECT sneaky()"]


@pytest.fixture(scope="module")
def db(postgres):
    hba = postgres.data / "pg_hba.conf"
    original = hba.read_text()
    reject = f"host  all all          {harness.LOOPBACK}/32 reject"
    hba.write_text(original.replace(reject, (
        f"host  all {JUNIOR} {harness.LOOPBACK}/32 trust\n"
        f"host  all {ADMIN} {harness.LOOPBACK}/32 trust\n"
        f"host  all {LOOKUP} {harness.LOOPBACK}/32 scram-sha-256\n{reject}")))
    postgres.psql_admin(SETUP_ROLES + "SELECT pg_reload_conf();")
    postgres.psql_admin(SETUP_DB, dbname=DB)
    yield postgres
    hba.write_text(original)
    postgres.psql_admin(f"SELECT pg_reload_conf(); DROP DATABASE {DB}; DROP ROLE {JUNIOR}, {ADMIN}, {LOOKUP};")


def config(postgres, workdir, lookup: str | None, user: str = LOOKUP) -> str:
    text = (f"listen: 127.0.0.1:{{listen_port}}\n"
            f"upstream: {{ host: {postgres.host}, port: {postgres.port}, tls: disable }}\n"
            f"groups:\n  juniors: [{JUNIOR}]\n"
            f"rules:\n  - name: {RULE}\n    when: {{ user_in: juniors, class: [FUNCTION, WRITE, DDL] }}\n"
            f"    action: deny\n"
            f"default: allow\n")
    if lookup is not None:
        password_file = workdir / f"cl_lookup_{len(lookup)}_{abs(hash(lookup))}.pass"
        password_file.write_text(lookup + "\n")
        password_file.chmod(0o600)
        text += f"catalog_lookup:\n  user: {user}\n  password_file: {password_file}\n  refresh: 10m\n"
    return text


def connect(proxy, user=JUNIOR):
    return psycopg.connect(harness.Endpoint(proxy.host, proxy.port, "proxy").dsn(user=user, dbname=DB),
                           autocommit=True)


def denied(conn, sql: str) -> bool:
    try:
        conn.execute(sql)
    except psycopg.Error as e:
        assert e.sqlstate == "42501" and f'pgwarden rule "{RULE}"' in str(e), f"{sql}: {e}"
        return True
    return False


def log_rows(postgres):
    with postgres.endpoint.connect(dbname=DB, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM log").fetchone()[0]


# With the catalog, a STABLE or IMMUTABLE SQL function that only reads, and an
# operator over one, run for a junior denied FUNCTION; a VOLATILE PL/pgSQL
# writer, an operator over one, and a STABLE SQL function that calls one are
# refused, and nothing was written.
def test_catalog_clears_side_effect_free_calls_only(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, LOOKUP_PASSWORD))
    with connect(proxy) as conn:
        for sql, value in ALLOWED:
            assert conn.execute(sql).fetchone()[0] == value, sql
        for sql in DENIED:
            assert denied(conn, sql), sql
    assert log_rows(db) == 0


# A lookup role the server asks for md5 logs in with the same password file.
def test_md5_lookup_role(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, harness.MD5_PASSWORD, user=harness.MD5_USER))
    with connect(proxy) as conn:
        for sql, value in ALLOWED:
            assert conn.execute(sql).fetchone()[0] == value, sql
        for sql in DENIED:
            assert denied(conn, sql), sql


# Without catalog_lookup every call pgwarden does not know is FUNCTION.
def test_without_catalog_lookup_every_unknown_call_is_function(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, None))
    with connect(proxy) as conn:
        for sql, _ in ALLOWED:
            assert denied(conn, sql), sql
        for sql in DENIED:
            assert denied(conn, sql), sql
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 3


# CREATE OR REPLACE through pgwarden turning the reader into a writer: the
# junior's next call is refused at once (the catalog is dropped after DDL,
# and read again), and stays refused; once the reader is back, the call is
# allowed again as soon as the catalog was read again.
def test_create_or_replace_is_seen_at_the_next_call(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, LOOKUP_PASSWORD))
    writer = ("CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE plpgsql VOLATILE AS "
              "$$ BEGIN INSERT INTO log VALUES ('replaced'); RETURN 0; END $$")
    reader = f"CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE sql STABLE AS '{READER_BODY}'"
    with connect(proxy) as junior, connect(proxy, ADMIN) as admin:
        assert junior.execute("SELECT item_count()").fetchone()[0] == 3
        admin.execute(writer)
        assert denied(junior, "SELECT item_count()")
        time.sleep(0.5)  # long enough for the catalog to be read again
        assert denied(junior, "SELECT item_count()")
        # In a transaction, the change counts once it is committed.
        with admin.transaction():
            admin.execute(reader)
        deadline = time.monotonic() + 10
        while denied(junior, "SELECT item_count()"):
            assert time.monotonic() < deadline, "the catalog was not read again after the DDL"
            time.sleep(0.1)
    assert log_rows(db) == 0


# DDL inside a transaction is not visible to the lookup until the commit:
# a catalog read meanwhile still shows the reader, so it is dropped again
# when the transaction ends, and the junior's call after the commit is refused.
def test_ddl_committed_later_is_seen_after_the_commit(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, LOOKUP_PASSWORD))
    writer = ("CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE plpgsql VOLATILE AS "
              "$$ BEGIN INSERT INTO log VALUES ('replaced'); RETURN 0; END $$")
    reader = f"CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE sql STABLE AS '{READER_BODY}'"
    with connect(proxy) as junior, connect(proxy, ADMIN) as admin:
        assert junior.execute("SELECT item_count()").fetchone()[0] == 3
        with admin.transaction():
            admin.execute(writer)
            deadline = time.monotonic() + 10  # the catalog is read again, still with the reader
            while denied(junior, "SELECT item_count()"):
                assert time.monotonic() < deadline, proxy.log_tail()
                time.sleep(0.1)
        assert denied(junior, "SELECT item_count()")
        time.sleep(0.5)
        assert denied(junior, "SELECT item_count()")
        admin.execute(reader)
    assert log_rows(db) == 0


# A lookup that cannot log in (wrong password) leaves every unknown call
# FUNCTION, says so once in the log, and the proxy keeps serving.
def test_wrong_lookup_password_fails_closed_and_keeps_serving(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, "not-the-password"))
    for _ in range(2):
        with connect(proxy) as conn:
            for sql, _ in ALLOWED:
                assert denied(conn, sql), sql
            assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 3
    assert proxy.alive()
    log = proxy.log_path.read_text()
    assert "catalog_lookup: cannot read the catalog of database cl_db" in log, log
    assert "password authentication failed" in log, log
    assert log.count("catalog_lookup: cannot read the catalog") == 1, log


def reload(proxy, config_text: str) -> None:
    """Makes `config_text` the proxy's configuration and waits for SIGHUP to apply it."""
    start = proxy.log_path.stat().st_size
    proxy.config_path.write_text(config_text.replace("{listen_port}", str(proxy.port)))
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in proxy.log_path.read_bytes()[start:].decode("utf-8", "replace"):
        assert time.monotonic() < deadline, proxy.log_tail()
        time.sleep(0.05)


# A reload forgets every catalog and reads it with the new settings: the
# right password turns a failing lookup into a working one, and removing the
# section turns the lookup off (fail closed) for sessions already open.
def test_reload_applies_new_lookup_settings(db, workdir, pgwarden_factory):
    proxy = pgwarden_factory(config(db, workdir, "not-the-password"))
    with connect(proxy) as conn:
        assert denied(conn, "SELECT item_count()")
        reload(proxy, config(db, workdir, LOOKUP_PASSWORD))
        deadline = time.monotonic() + 10
        while denied(conn, "SELECT item_count()"):
            assert time.monotonic() < deadline, proxy.log_tail()
            time.sleep(0.1)
        reload(proxy, config(db, workdir, None))
        assert denied(conn, "SELECT item_count()")
