"""Issue 17 acceptance: "juniors read-only" holds against a careful attacker
and does not get in an honest junior's way.

pgwarden runs examples/pgwarden.yaml itself, with only `listen:`,
`upstream:` and the juniors group changed. The junior `ro_bob` is a real
PostgreSQL superuser, so whatever pgwarden let through would really run: a
denial here is pgwarden's doing and names its rule.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg
import pytest

import harness

pytestmark = pytest.mark.proxy_only

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pgwarden.yaml"
DB = "ro_db"
JUNIOR = "ro_bob"
READER = "ro_reader"

SETUP_ROLES = """
CREATE ROLE ro_bob LOGIN SUPERUSER;    -- a junior, with every privilege there is
CREATE ROLE ro_reader LOGIN SUPERUSER;  -- read-only at the server only
CREATE ROLE ro_admin NOLOGIN SUPERUSER;
CREATE DATABASE ro_db;
"""

SETUP_DB = """
CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, j jsonb, tags text[],
                   created timestamptz DEFAULT now());
INSERT INTO docs VALUES
  (1, 'the quick brown fox', '{"a": [1, 2], "k": "v"}', '{x,y}', '2024-01-02 03:04:05+00'),
  (2, 'jumps over the lazy dog', '{"a": [3]}', '{z}', '2024-02-03 04:05:06+00');
CREATE INDEX docs_body ON docs USING gin (to_tsvector('english', body));
CREATE VIEW doc_titles AS SELECT id, left(body, 5) AS title FROM docs;
CREATE SEQUENCE ticket_seq;
-- A domain whose CHECK moves a sequence: a cast to it runs a write.
CREATE FUNCTION bump() RETURNS bool LANGUAGE sql AS 'SELECT nextval(''ticket_seq'') > 0';
CREATE DOMAIN bumped AS int CHECK (bump());
CREATE SCHEMA app;
CREATE TABLE app.events (id bigserial PRIMARY KEY, doc int REFERENCES docs, at date);
CREATE FUNCTION app.doc_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM docs';
SELECT lo_create(424242);
-- Writes hidden where no proxy can see them without the catalog.
CREATE TABLE hits (via text);
CREATE FUNCTION hit(via text) RETURNS int LANGUAGE sql AS 'INSERT INTO hits VALUES (via) RETURNING 1';
CREATE VIEW hit_view AS SELECT hit('view') AS n;
CREATE FUNCTION touch(docs) RETURNS int LANGUAGE sql AS $$ SELECT hit('attribute notation') $$;
CREATE FUNCTION app.lower(text) RETURNS int LANGUAGE sql AS $$ SELECT hit('shadowed built-in') $$;
CREATE TABLE orders (id int);
CREATE FUNCTION hit_trigger() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM hit('trigger'); RETURN NULL; END $$;
CREATE TRIGGER orders_hit AFTER INSERT ON orders FOR EACH STATEMENT EXECUTE FUNCTION hit_trigger();
CREATE VIEW order_view AS SELECT id FROM orders;
CREATE RULE order_view_hit AS ON UPDATE TO order_view DO INSTEAD SELECT hit('rule');
-- A function that turns the session's read-only default off.
CREATE FUNCTION flip(docs) RETURNS text LANGUAGE sql AS
  $$ SELECT set_config('default_transaction_read_only', 'off', false) $$;
"""


def example_config(postgres) -> str:
    """examples/pgwarden.yaml with this harness's addresses and users, edited
    as text (a YAML 1.1 library would read the rules' `on:` as a boolean)."""
    text = EXAMPLE.read_text()
    text = re.sub(r"^listen: .*$", "listen: 127.0.0.1:{listen_port}", text, count=1, flags=re.M)
    text = re.sub(r"^upstream:\n(?:  .*\n)+",
                  f"upstream: {{ unix_socket: {postgres.root}, port: {postgres.port}, tls: disable }}\n",
                  text, count=1, flags=re.M)
    text = re.sub(r"^  juniors: \[.*\]$", f"  juniors: [{JUNIOR}]\n  readers: [{READER}]", text, count=1, flags=re.M)
    text = re.sub(r"^  admins: \[(.*)\]$", rf"  admins: [\1, {harness.SUPERUSER}]", text, count=1, flags=re.M)
    # A reader whom only the server-side wall holds: no statement rule names them.
    reader_rule = ("  - name: readers-read-only-at-the-server\n    on: connect\n"
                   "    when: { user_in: readers }\n    action: allow\n    read_only: true\n\n")
    text = re.sub(r"^default: ", reader_rule.replace("\\", "\\\\") + "default: ", text, count=1, flags=re.M)
    assert "{listen_port}" in text and str(postgres.port) in text and READER in text
    return text


@pytest.fixture(scope="module")
def db(postgres):
    postgres.psql_admin(SETUP_ROLES)
    postgres.psql_admin(SETUP_DB, dbname=DB)
    return postgres


@pytest.fixture
def proxy(db, pgwarden_factory):
    return pgwarden_factory(example_config(db))


def connect(proxy, user=JUNIOR, autocommit=True):
    return psycopg.connect(harness.Endpoint(proxy.host, proxy.port, "proxy").dsn(user=user, dbname=DB),
                           autocommit=autocommit)


def admin_query(postgres, sql: str):
    with postgres.endpoint.connect(dbname=DB, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def state(postgres) -> dict:
    """What the denied statements below could have changed."""
    return {
        "docs": admin_query(postgres, "SELECT id, body FROM docs ORDER BY id"),
        "large_objects": admin_query(postgres, "SELECT oid FROM pg_largeobject_metadata ORDER BY 1"),
        "sequence": admin_query(postgres, "SELECT last_value, is_called FROM ticket_seq"),
        "prepared": admin_query(postgres, "SELECT gid FROM pg_prepared_xacts"),
        "backends": admin_query(postgres, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'ro_bob'"),
    }


def expect_denied(conn, sql: str, rule: str):
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    e = info.value
    assert e.sqlstate == "42501", f"{sql}: {e.sqlstate}: {e}"
    assert f'pgwarden rule "{rule}"' in str(e), f"{sql}: expected rule {rule}: {e}"


# Function calls spelled as something else, and effects outside pgaudit's
# classes (Found 1 and 3), each with the example's rule that refuses it.
HIDDEN_CALLS_AND_EFFECTS = [
    ("SELECT (pg_backend_pid()).pg_terminate_backend", "juniors-read-only"),
    ("SELECT (1).pg_cancel_backend", "juniors-read-only"),
    ("SELECT a.pg_terminate_backend FROM pg_stat_activity a", "juniors-read-only"),
    ("SELECT (424242).lo_unlink", "juniors-read-only"),
    ("SELECT lo_unlink(424242)", "juniors-read-only"),
    ("SELECT pg_advisory_lock(17)", "juniors-read-only"),
    ("SELECT pg_notify('chan', 'x')", "juniors-read-only"),
    ("SELECT pg_reload_conf()", "juniors-read-only"),
    ("SELECT query_to_xml('SELECT set_config(''role'', ''ro_admin'', false)', true, true, '')",
     "juniors-read-only"),
    ("SELECT ts_stat('SELECT to_tsvector(nextval(''ticket_seq'')::text)')", "juniors-read-only"),
    ("SELECT x.nextval FROM (SELECT 'ticket_seq'::regclass) x(s)", "juniors-read-only"),
    ("SELECT 1::bumped", "juniors-read-only"),
    ("SELECT * FROM docs FOR UPDATE", "juniors-no-locks"),
    ("SELECT * FROM docs FOR KEY SHARE", "juniors-no-locks"),
    ("LOCK TABLE docs IN EXCLUSIVE MODE", "juniors-no-locks"),
    ("NOTIFY chan, 'x'", "juniors-no-notify"),
    ("VACUUM FULL docs", "juniors-no-maintenance"),
    ("ANALYZE docs", "juniors-no-maintenance"),
    ("REINDEX TABLE docs", "juniors-no-maintenance"),
    ("CHECKPOINT", "juniors-no-maintenance"),
    ("CLUSTER docs USING docs_pkey", "juniors-read-only"),
    ("DISCARD ALL", "juniors-no-role-change"),
]


# Each hidden call and each effect outside the classes is refused by the
# proxy (the junior is a superuser on the server), the session stays usable,
# and nothing changed: the large object, the sequence, no prepared
# transaction, no terminated session.
def test_junior_is_denied_every_hidden_call_and_effect(db, proxy):
    before = state(db)
    with connect(proxy) as conn:
        for sql, rule in HIDDEN_CALLS_AND_EFFECTS:
            expect_denied(conn, sql, rule)
            assert conn.execute("SELECT current_user, 1").fetchone() == (JUNIOR, 1), sql
    with connect(proxy, autocommit=False) as conn:
        conn.execute("SELECT 1")
        expect_denied(conn, "PREPARE TRANSACTION 'ro_tx'", "juniors-no-locks")
        conn.rollback()
    assert state(db) == before


# psql 15's describe commands, as psql itself sends them (-E shows them in
# the output), run for a junior without a denial.
DESCRIBE = ["\\d", "\\dt", "\\d+ docs", "\\d app.events", "\\df", "\\df+ app.*", "\\dv", "\\di", "\\ds",
            "\\dT", "\\dn", "\\du", "\\dp", "\\l", "\\dx", "\\sf app.doc_count", "\\dconfig"]


@pytest.mark.parametrize("command", DESCRIBE)
def test_psql_describe_commands_run_for_a_junior(db, proxy, command):
    r = subprocess.run(["psql", "-X", "-E", "-v", "ON_ERROR_STOP=1", "-h", proxy.host, "-p", str(proxy.port),
                        "-U", JUNIOR, "-d", DB, "-c", command],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                       env=harness.client_env(PGSSLMODE="disable"))
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0 and "denied by pgwarden" not in out, out


# pg_dump --schema-only (its set_config('search_path'), its catalog
# queries, its ACCESS SHARE locks on every table) runs for a junior.
def test_pg_dump_schema_only_runs_for_a_junior(db, proxy):
    r = subprocess.run(["pg_dump", "--schema-only", "-h", proxy.host, "-p", str(proxy.port), "-U", JUNIOR, DB],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=harness.client_env(PGSSLMODE="disable"))
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, err
    out = r.stdout.decode("utf-8", "replace")
    assert "CREATE TABLE public.docs" in out and "CREATE FUNCTION app.doc_count()" in out


# Ordinary analytic queries: full-text search, jsonb, date/time, arrays,
# window functions, sizes, casts to PostgreSQL's own types.
ANALYTIC = [
    "SELECT id, ts_rank(to_tsvector('english', body), plainto_tsquery('english', 'fox')) FROM docs "
    "WHERE to_tsvector('english', body) @@ to_tsquery('english', 'fox & quick')",
    "SELECT ts_headline('english', body, websearch_to_tsquery('english', 'lazy dog')) FROM docs",
    "SELECT id, jsonb_array_elements_text(j->'a'), j->>'k', jsonb_path_query_array(j, '$.a[*]') FROM docs",
    "SELECT jsonb_build_object('n', count(*)), jsonb_agg(j ORDER BY id) FROM docs",
    "SELECT date(now()), date_trunc('month', created), EXTRACT(dow FROM created), created AT TIME ZONE 'UTC', "
    "age(created), to_char(created, 'YYYY-MM'), created + interval '1 day' FROM docs",
    "SELECT array_upper(tags, 1), cardinality(tags), tags[1], array_to_string(tags, ','), unnest(tags) FROM docs",
    "SELECT id, rank() OVER w, lag(id) OVER w, sum(id) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) FROM docs "
    "WINDOW w AS (ORDER BY created)",
    "SELECT pg_size_pretty(pg_total_relation_size('docs')), pg_size_pretty(pg_database_size(current_database()))",
    "SELECT 'docs'::regclass::oid, '42'::int8, CAST(id AS text), body::varchar(3), '{1,2}'::int[] FROM docs",
    "SELECT 'a' IS NORMALIZED, COLLATION FOR (body), NORMALIZE(body), SUBSTRING(body FROM 1 FOR 3), "
    "POSITION('o' IN body), TRIM(body), body LIKE 'the%', body SIMILAR TO '%fox%' FROM docs",
    "SELECT d.id, d.body, e.at FROM docs d LEFT JOIN app.events e ON e.doc = d.id",
    "SELECT (SELECT count(*) FROM doc_titles), current_user, current_date, localtimestamp",
    "SELECT generate_series(1, 3), random() < 2, gen_random_uuid() IS NOT NULL, pg_sleep(0)",
    "SELECT format('%s-%s', id, body), md5(body), regexp_replace(body, 'o', '0', 'g') FROM docs",
]


# None of them is denied.
def test_analytic_queries_run_for_a_junior(db, proxy):
    with connect(proxy) as conn:
        for sql in ANALYTIC:
            try:
                conn.execute(sql).fetchall()
            except psycopg.Error as e:
                pytest.fail(f"{sql}: {e}")


# ---------------------------------------------------------------------------
# The server as a second wall (read_only: true on a connect rule)

def expect_server_refusal(conn, sql: str):
    """The server's own 25006 (read_only_sql_transaction), not pgwarden's."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert info.value.sqlstate == "25006", f"{sql}: {info.value.sqlstate}: {info.value}"
    assert "pgwarden" not in str(info.value)


# Writes no proxy can see without the catalog (a view's body, a function
# called by attribute notation, a user's function shadowing a built-in) pass
# pgwarden and fail at the server with its own 25006, because pgwarden
# opened the junior's session with default_transaction_read_only = on.
def test_writes_hidden_in_views_and_functions_fail_at_the_server(db, proxy):
    with connect(proxy) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        expect_server_refusal(conn, "SELECT * FROM hit_view")
        expect_server_refusal(conn, "SELECT d.touch FROM docs d")
        conn.execute("SET search_path = app, pg_catalog, public")
        expect_server_refusal(conn, "SELECT lower('x')")
    assert admin_query(db, "SELECT count(*) FROM hits") == [(0,)]


# The same for writes hidden in a trigger and in a rule, for a user whom no
# statement rule stops: only the server refuses them.
def test_writes_hidden_in_triggers_and_rules_fail_at_the_server(db, proxy):
    with connect(proxy, user=READER) as conn:
        expect_server_refusal(conn, "INSERT INTO orders VALUES (1)")
        expect_server_refusal(conn, "UPDATE order_view SET id = 2")
        expect_server_refusal(conn, "SELECT * FROM hit_view")
        assert conn.execute("SELECT count(*) FROM docs").fetchone() == (2,)
    assert admin_query(db, "SELECT count(*) FROM hits") == [(0,)]
    assert admin_query(db, "SELECT count(*) FROM orders") == [(0,)]


# A function pgwarden cannot see (attribute notation) may still turn the
# read-only default off for the transactions after it. The server reports
# the change (default_transaction_read_only is reported since PostgreSQL
# 14), and pgwarden then runs nothing more in the session: fail closed.
def test_session_whose_read_only_default_is_turned_off_runs_nothing_more(db, proxy):
    with connect(proxy, user=READER) as conn:
        assert conn.execute("SELECT d.flip FROM docs d WHERE d.id = 1").fetchone() == ("off",)
        for sql in ["INSERT INTO orders VALUES (1)", "SELECT 1"]:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "42501" and "opened read-only" in str(info.value), info.value
    assert admin_query(db, "SELECT count(*) FROM orders") == [(0,)]
    # Other sessions are not affected.
    with connect(proxy, user=READER) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)


# Every way to turn the read-only default off is refused by pgwarden in a
# read-only session, whatever the statement rules say; the session stays
# read-only.
TURN_OFF = [
    "SET default_transaction_read_only = off",
    "SET default_transaction_read_only TO DEFAULT",
    "SET SESSION default_transaction_read_only = false",
    "RESET default_transaction_read_only",
    "SET transaction_read_only = off",
    "SET LOCAL transaction_read_only TO 0",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "SET TRANSACTION READ WRITE",
    "BEGIN READ WRITE",
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name LIKE '%read_only'",
    "RESET ALL",
    "DISCARD ALL",
]


@pytest.mark.parametrize("user", [JUNIOR, READER])
def test_read_only_cannot_be_turned_off(db, proxy, user):
    with connect(proxy, user=user) as conn:
        for sql in TURN_OFF:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "42501" and "pgwarden" in str(info.value), f"{sql}: {info.value}"
            assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",), sql
        # Turning it on, or asking for a read-only transaction, is fine.
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("BEGIN READ ONLY")
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("COMMIT")


# Nor can a session start read-write: the StartupMessage's settings are
# decided as the SETs they are.
@pytest.mark.parametrize("params", [{"options": "-c default_transaction_read_only=off"},
                                    {"options": "--default-transaction-read-only=off"},
                                    {"default_transaction_read_only": "off"}])
def test_read_only_cannot_be_turned_off_at_startup(db, proxy, params):
    with harness.RawClient(harness.Endpoint(proxy.host, proxy.port, "proxy")) as c:
        msgs = c.login(user=READER, database=DB, **params)
    errors = [harness.error_fields(p) for k, p in msgs if k == b"E"]
    assert len(errors) == 1, msgs
    assert errors[0]["C"] == "42501" and "pgwarden" in errors[0]["M"], errors
    assert "default" in errors[0]["M"] and "read" in errors[0]["M"], errors


# Sessions no read_only rule matches are opened as they always were.
def test_other_sessions_stay_read_write(db, proxy):
    with connect(proxy, user=harness.SUPERUSER) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("off",)
        conn.execute("INSERT INTO orders VALUES (7)")
    assert admin_query(db, "SELECT count(*) FROM hits WHERE via = 'trigger'") == [(1,)]
    admin_query_exec(db, "DELETE FROM orders; DELETE FROM hits")


def admin_query_exec(postgres, sql: str) -> None:
    with postgres.endpoint.connect(dbname=DB, autocommit=True) as conn:
        conn.execute(sql)


# Refusals that keep a session read-only are counted under their own name
# in pgwarden_denials_total, not as the default's.
def test_read_only_refusals_are_counted_by_name(db, pgwarden_factory):
    from ops_helpers import http_request, sample, scrape, wait_until
    port = harness.free_port()
    proxy = pgwarden_factory(example_config(db) + f"admin: {{ listen: 127.0.0.1:{port} }}\n")

    def answers():
        try:
            return http_request(port, "/healthz")[0] == 200
        except OSError:
            return False
    wait_until(answers, what="the admin server")
    with connect(proxy, user=READER) as conn:
        for _ in range(2):
            with pytest.raises(psycopg.Error):
                conn.execute("SET default_transaction_read_only = off")
    assert sample(scrape(port), "pgwarden_denials_total", rule="read_only_session") == 2
