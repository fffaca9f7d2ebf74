"""pgJDBC through pgwarden (tests/clients/jdbc/Exercise.java): plain and
prepared statements past the driver's prepareThreshold, a pipelined batch,
transactions with a savepoint, a fetch-size cursor (portal suspended and
resumed), COPY both ways, Statement.cancel(), DatabaseMetaData and typed
parameters all behave as they do against PostgreSQL itself
(PGWARDEN_IT_TARGET=direct runs the same checks there); a statement the
policy denies fails with 42501 on both protocols and the connection stays
usable. pgJDBC over TLS with SCRAM is in test_drivers_tls.py."""

from __future__ import annotations

import uuid

import pytest

from harness import SUPERUSER, proxy_config
from jdbc_client import check_workload, jdbc_url, run_exercise


@pytest.fixture
def table(admin):
    name = f"jdbc_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text NOT NULL)")
    yield name
    admin.execute(f"DROP TABLE IF EXISTS {name}")


def test_jdbc_application_workload(target, table, admin):
    result = run_exercise(jdbc_url(target.host, target.port, sslmode="disable"), SUPERUSER, None, table)
    check_workload(result, table)
    assert result["identity"] == {"current_user": SUPERUSER, "backend_ssl": False}
    rows = admin.execute(f"SELECT count(*), count(*) FILTER (WHERE id < 0) FROM {table}").fetchone()
    assert rows == (3 + 200 + 1 + 2000, 1)


DENY_DROP = """
rules:
  - name: no-drop
    when: { command: ["DROP TABLE"] }
    action: deny
    message: "DROP TABLE is not allowed through pgwarden"
"""


@pytest.mark.proxy_only
def test_jdbc_denied_statement_fails_and_the_connection_stays_usable(pgwarden_factory, postgres, table, admin):
    proxy = pgwarden_factory(proxy_config("{listen_port}", postgres.host, postgres.port, DENY_DROP))
    result = run_exercise(jdbc_url(proxy.host, proxy.port, sslmode="disable"), SUPERUSER, None, table,
                          denied_sql=f"DROP TABLE {table}")
    assert result["denied"] == {"sqlstate": "42501",
                                "message": 'permission denied by pgwarden rule "no-drop": DROP TABLE is not allowed through pgwarden',
                                "prepared_sqlstate": "42501", "usable_after": "usable"}
    assert admin.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone() == (True,)
