"""Session pooling with auth: scram: a server connection outlives the client
that pgwarden logged it in for, is reset with DISCARD ALL, and serves the
next client of the same user, database and startup parameters."""

import psycopg
import pytest

from harness import SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, RawClient, cancel_later, error_fields, message
from ops_helpers import wait_until

pytestmark = pytest.mark.proxy_only


@pytest.fixture(scope="module")
def auth_file(postgres, workdir):
    secret = postgres.psql_admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{SCRAM_USER}'").strip()
    postgres.psql_admin(f"GRANT CREATE ON SCHEMA public TO {SCRAM_USER}")
    path = workdir / "pool-userlist.txt"
    path.write_text(f'"{SCRAM_USER}" "{secret}"\n')
    return path


@pytest.fixture
def pooled_proxy(pgwarden_factory, postgres, auth_file):
    def start(pool="", policy=""):
        return pgwarden_factory("listen: 127.0.0.1:{listen_port}\n"
                                f"upstream: {{ host: {postgres.host}, port: {postgres.port}, tls: disable{pool} }}\n"
                                f"auth: {{ mode: scram, auth_file: {auth_file} }}\n" + policy)
    return start


def connect(proxy, **params):
    return psycopg.connect(proxy.endpoint.dsn(user=SCRAM_USER, password=SCRAM_PASSWORD, **params), autocommit=True)


def backend_pid(proxy, **params):
    with connect(proxy, **params) as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def wait_pooled(admin, pid):
    """Waits until the backend `pid` ran its reset and sits idle in the pool."""
    wait_until(lambda: admin.execute("SELECT state = 'idle' AND query = 'DISCARD ALL' FROM pg_stat_activity "
                                     "WHERE pid = %s", [pid]).fetchone() == (True,),
               interval=0.05, what=f"backend {pid} to sit reset in the pool")


def wait_gone(admin, pid):
    """Waits until the backend `pid` has exited."""
    wait_until(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] == 0,
               interval=0.05, what=f"backend {pid} to exit")


# A client that takes over a connection from the pool gets the server's
# parameters replayed, not sent by the server, and pgwarden reads its
# statements in the client_encoding among them: in SJIS the DROP below is a
# statement of its own, not part of a string, and the policy denies it.
def test_reused_connection_reads_statements_in_its_client_encoding(pooled_proxy, admin):
    admin.execute(f"CREATE TABLE IF NOT EXISTS pool_victim (id int); ALTER TABLE pool_victim OWNER TO {SCRAM_USER}")
    proxy = pooled_proxy(policy="rules:\n  - name: no-ddl\n    when: { class: [DDL] }\n    action: deny\n")
    first = backend_pid(proxy, client_encoding="SJIS")
    wait_pooled(admin, first)
    with RawClient(proxy.endpoint) as c:
        login = c.login(user=SCRAM_USER, database="postgres", password=SCRAM_PASSWORD, client_encoding="SJIS")
        assert not [p for k, p in login if k == b"E"], login
        assert c.parameters["client_encoding"] == "SJIS"
        pid = c.query("SELECT pg_backend_pid()")
        assert [p for k, p in pid if k == b"D"][0].endswith(str(first).encode()), pid
        c.send(message(b"Q", b"SELECT E'\x95\x5c'; DROP TABLE pool_victim; --'\0"))
        errors = [error_fields(p) for k, p in c.read_until_ready() if k == b"E"]
        assert [e["C"] for e in errors] == ["42501"] and "no-ddl" in errors[0]["M"], errors
    assert admin.execute("SELECT count(*) FROM pg_class WHERE relname = 'pool_victim'").fetchone() == (1,)
    admin.execute("DROP TABLE pool_victim")


# Two clients one after the other, same user, database and parameters: the
# second runs on the backend the first one used.
def test_next_client_reuses_the_server_connection(pooled_proxy, admin):
    proxy = pooled_proxy()
    first = backend_pid(proxy)
    wait_pooled(admin, first)  # the reset (DISCARD ALL) runs after the client left
    assert backend_pid(proxy) == first


# Whatever the first client left behind is gone for the next one: settings,
# role, prepared statements, temporary tables, listens, advisory locks.
def test_reused_connection_is_reset(pooled_proxy, admin):
    proxy = pooled_proxy()
    with connect(proxy) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("SET work_mem = '7MB'")
        conn.execute("SET DateStyle = 'German'")
        conn.execute("PREPARE left_behind AS SELECT 1")
        conn.execute("CREATE TEMP TABLE scratch(a int)")
        conn.execute("LISTEN pool_test")
        conn.execute("SELECT pg_advisory_lock(4242)")
    wait_pooled(admin, pid)
    with connect(proxy) as conn:
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        assert conn.execute("SHOW work_mem").fetchone()[0] == "4MB"
        assert conn.execute("SHOW DateStyle").fetchone()[0] == "ISO, MDY"
        assert conn.info.parameter_status("DateStyle") == "ISO, MDY"
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'scratch'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
        assert conn.execute("SELECT current_user").fetchone()[0] == SCRAM_USER
    assert admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"
                         ).fetchone()[0] == 0


# A client with other startup parameters gets a server connection of its own.
def test_other_parameters_get_another_connection(pooled_proxy, admin):
    proxy = pooled_proxy()
    first = backend_pid(proxy, application_name="one")
    wait_pooled(admin, first)
    second = backend_pid(proxy, application_name="two")
    assert second != first
    wait_pooled(admin, second)
    assert backend_pid(proxy, application_name="one") == first


# A client that leaves inside a transaction does not hand its connection on:
# the server sees it close and rolls the transaction back.
def test_client_leaving_mid_transaction_is_not_pooled(pooled_proxy, admin):
    proxy = pooled_proxy()
    admin.execute("DROP TABLE IF EXISTS pool_tx; CREATE TABLE pool_tx(a int); GRANT ALL ON pool_tx TO PUBLIC")
    conn = psycopg.connect(proxy.endpoint.dsn(user=SCRAM_USER, password=SCRAM_PASSWORD))
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.execute("INSERT INTO pool_tx VALUES (1)")
    conn.close()
    wait_gone(admin, pid)
    assert backend_pid(proxy) != pid
    assert admin.execute("SELECT count(*) FROM pool_tx").fetchone()[0] == 0


# The client of a reused connection can cancel its own query.
def test_cancel_on_a_reused_connection(pooled_proxy, admin):
    proxy = pooled_proxy()
    wait_pooled(admin, backend_pid(proxy))
    with RawClient(proxy.endpoint, timeout=30) as client:
        seen = client.login(user=SCRAM_USER, password=SCRAM_PASSWORD)
        assert seen[-1][0] == b"Z"
        key = client.backend_key

        canceller = cancel_later(proxy.endpoint, key)
        result = client.query("SELECT pg_sleep(20)")
        canceller.join()
        assert error_fields(next(p for k, p in result if k == b"E"))["C"] == "57014"


# A pooled backend that died while idle (terminated by an administrator) is
# not handed out: the next client gets a fresh connection, not an error.
def test_dead_pooled_connection_is_replaced(pooled_proxy, admin):
    proxy = pooled_proxy()
    pid = backend_pid(proxy)
    wait_pooled(admin, pid)
    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_gone(admin, pid)
    with connect(proxy) as conn:
        assert conn.execute("SELECT pg_backend_pid() <> %s", [pid]).fetchone()[0] is True


# pool_size: 0 turns pooling off; a short pool_idle_timeout closes idle ones.
def test_pool_size_zero_and_idle_timeout(pooled_proxy, admin):
    off = pooled_proxy(pool=", pool_size: 0")
    first = backend_pid(off)
    wait_gone(admin, first)
    assert backend_pid(off) != first
    short = pooled_proxy(pool=", pool_idle_timeout: 300ms")
    pid = backend_pid(short)
    wait_gone(admin, pid)
    assert backend_pid(short) != pid


# Without auth: scram nothing is pooled: pgwarden cannot log a new client in
# on a connection the server authenticated for someone else.
def test_passthrough_never_pools(pgwarden_factory, postgres):
    proxy = pgwarden_factory("listen: 127.0.0.1:{listen_port}\n"
                             f"upstream: {{ host: {postgres.host}, port: {postgres.port}, tls: disable }}\n")
    pids = set()
    for _ in range(3):
        with psycopg.connect(proxy.endpoint.dsn(user=SUPERUSER)) as conn:
            pids.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    assert len(pids) == 3
