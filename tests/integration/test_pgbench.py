"""pgbench initialises and runs its built-in scripts with 8 clients in all
three query modes with zero failed transactions."""

import re
import subprocess

import pytest

from harness import SUPERUSER, client_env

DB = "bench"
CLIENTS = 8
SECONDS = 3


def pgbench(endpoint, *args, timeout=120):
    cmd = ["pgbench", "-h", endpoint.host, "-p", str(endpoint.port), "-U", SUPERUSER,
           *args, DB]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=client_env(PGSSLMODE="disable"))


def field(pattern, output):
    m = re.search(pattern, output, re.MULTILINE)
    assert m, f"{pattern!r} not in pgbench output:\n{output}"
    return m.group(1)


def counted(pattern, output):
    return int(field(pattern, output))


@pytest.fixture(scope="module")
def initialised(postgres, target):
    postgres.psql_admin(f"CREATE DATABASE {DB}")
    r = pgbench(target, "-i", "-s", "1", "-q")
    return r


# pgbench -i -s 1 through the target creates and fills its tables
# (client-side COPY of 100000 accounts, then VACUUM and primary keys).
def test_init(initialised, postgres):
    assert initialised.returncode == 0, initialised.stderr
    assert "done in" in initialised.stderr
    counts = postgres.psql_admin(
        "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches),"
        " (SELECT count(*) FROM pgbench_tellers)", DB).strip()
    assert counts == "100000|1|10"
    pkeys = postgres.psql_admin(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conname LIKE 'pgbench_%'", DB)
    assert pkeys.strip() == "3"


# -S (select only) and -N (simple update, no branch/teller contention) in
# simple, extended and prepared mode, 8 clients for a few seconds: every
# transaction succeeds and some ran.
@pytest.mark.parametrize("script", ["-S", "-N"])
@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_run(initialised, target, script, mode):
    assert initialised.returncode == 0, "pgbench -i failed"
    r = pgbench(target, script, "-M", mode, "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS),
                "--no-vacuum", timeout=SECONDS + 60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert field(r"^query mode: (\w+)", out) == mode
    assert counted(r"^number of clients: (\d+)", out) == CLIENTS
    assert counted(r"^number of failed transactions: (\d+)", out) == 0
    processed = counted(r"^number of transactions actually processed: (\d+)", out)
    assert processed > 0
    assert "aborted" not in out.lower()
