"""The compatibility matrix: every supported client logs in through pgwarden
and runs a query, a prepared statement, a transaction with a rollback, COPY
in and out and a cancel of pg_sleep, for each client hop (plaintext, TLS
require, TLS verify-full, direct TLS), pgwarden `auth` (passthrough, scram
with auth_file, scram with auth_query), `upstream.tls` (disable, prefer,
require, verify-full) and server (trust, md5, scram-sha-256 for the user;
ssl on and off). A combination that cannot work by design must be refused
with pgwarden's own explanation, and the setting that explanation points to
must make it work.

By default a pairwise slice runs (every pair of values of any two
dimensions at least once: 24 combinations); PGWARDEN_MATRIX=full runs all
1440. Results go to build/compat-matrix-{slice,full}.json (or
PGWARDEN_MATRIX_RESULTS); `scripts/matrix_table.py` renders them as the
README's table.

Speed: one PostgreSQL with ssl on and one with it off for the module (one
hba line per user: trust_user trust, md5_user md5, scram_user
scram-sha-256), one pgwarden per (auth, upstream.tls, server) started on
first use, one client process per combination.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

import harness
import matrix_cases as mc
from harness import MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, LOOPBACK
from matrix_run import CLIENTS_DIR, compile_jdbc, run_client

sys.path.insert(0, str(CLIENTS_DIR / "matrix"))
import scenario  # noqa: E402  (the values every client must answer)

pytestmark = pytest.mark.proxy_only

TRUST_USER, TRUST_PASSWORD = "trust_user", "trust-secret"
USERS = {"trust": (TRUST_USER, TRUST_PASSWORD), "md5": (MD5_USER, MD5_PASSWORD),
         "scram-sha-256": (SCRAM_USER, SCRAM_PASSWORD)}
ROWS = 1000
SERVER_NAME = "localhost"
AUTH_QUERY = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"
CANCEL_SECONDS = 10   # pg_sleep(20) cancelled after 0.3 s must end well before this

MODE, COMBOS = mc.selected()
SOURCE = Path(os.environ.get("PGWARDEN_SOURCE") or Path(__file__).resolve().parents[2])


def results_path() -> Path:
    return Path(os.environ.get("PGWARDEN_MATRIX_RESULTS") or SOURCE / "build" / f"compat-matrix-{MODE}.json")


class MatrixServer(harness.PostgresServer):
    """PostgreSQL with one pg_hba line per authentication method under test."""

    def init(self, ssl=None, extra_conf=""):
        super().init(ssl=ssl, extra_conf=extra_conf)
        (self.data / "pg_hba.conf").write_text(f"""# pgwarden compatibility matrix
local all all                         trust
host  all {SUPERUSER}   {LOOPBACK}/32 trust
host  all {TRUST_USER}  {LOOPBACK}/32 trust
host  all {MD5_USER}    {LOOPBACK}/32 md5
host  all {SCRAM_USER}  {LOOPBACK}/32 scram-sha-256
host  all all           {LOOPBACK}/32 reject
""")

    def create_roles(self):
        super().create_roles()
        # trust_user has a SCRAM secret, so auth: scram can authenticate it;
        # the server itself lets it in without one.
        self.psql_admin(f"SET password_encryption = 'scram-sha-256';\n"
                        f"CREATE ROLE {TRUST_USER} LOGIN PASSWORD '{TRUST_PASSWORD}';")


@pytest.fixture(scope="module")
def servers(pki):
    """{"ssl-on": server, "ssl-off": server}."""
    made = {}
    try:
        for name, ssl in (("ssl-on", pki), ("ssl-off", None)):
            server = MatrixServer()
            made[name] = server
            server.init(ssl=ssl)
            server.start()
            server.create_roles()
        yield made
    finally:
        for server in made.values():
            server.destroy()


class Matrix:
    """Starts pgwardens on first use and remembers every combination's result."""

    def __init__(self, servers, pki, proxy_cert, workdir):
        self.servers, self.pki, self.proxy_cert = servers, pki, proxy_cert
        self.workdir = workdir / "matrix"
        self.workdir.mkdir(exist_ok=True)
        self.proxies: dict[tuple, harness.Pgwarden] = {}
        self.results: dict[str, dict] = {}
        self.jdbc_classes = None

    def auth_file(self, ssl: str) -> Path:
        path = self.workdir / f"userlist-{ssl}.txt"
        if not path.exists():
            rows = self.servers[ssl].psql_admin(
                "SELECT rolname || ' ' || rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL")
            path.write_text("".join(f'"{u}" "{p}"\n' for u, p in (l.split(" ", 1) for l in rows.split("\n") if l)))
        return path

    def proxy(self, c: mc.Combo) -> harness.Pgwarden:
        key = (c.auth, c.upstream, c.ssl)
        if key not in self.proxies:
            server = self.servers[c.ssl]
            cert, key_file = self.proxy_cert
            auth = {"passthrough": "auth: passthrough\n",
                    "scram-auth_file": f"auth: {{ mode: scram, auth_file: {self.auth_file(c.ssl)} }}\n",
                    "scram-auth_query": f"auth: {{ mode: scram, auth_user: {SUPERUSER}, auth_query: '{AUTH_QUERY}' }}\n",
                    }[c.auth]
            name = f"matrix-{c.auth}-{c.upstream}-{c.ssl}"
            proxy = harness.Pgwarden(self.workdir, server.host, server.port, name=name)
            proxy.config_path.write_text(
                f"listen: 127.0.0.1:{proxy.port}\nworkers: 1\n"
                f"upstream: {{ host: 127.0.0.1, port: {server.port}, tls: {c.upstream}, ca: {self.pki.ca_cert} }}\n"
                f"tls: {{ cert: {cert}, key: {key_file} }}\n" + auth)
            proxy.start()
            self.proxies[key] = proxy
        return self.proxies[key]

    def run(self, c: mc.Combo) -> dict:
        if c.id in self.results:
            return self.results[c.id]
        user, password = USERS[c.server_auth]
        proxy = self.proxy(c)
        settings = {"host": proxy.host, "port": proxy.port, "user": user, "password": password,
                    "dbname": "postgres", "tls": "disable" if c.hop == "plaintext" else c.hop,
                    "ca": str(self.pki.ca_cert), "servername": SERVER_NAME, "rows": ROWS}
        if c.client == "pgjdbc" and self.jdbc_classes is None:
            self.jdbc_classes = compile_jdbc(self.workdir / "jdbc-classes")
        start = time.monotonic()
        ops = run_client(c.client, settings, self.jdbc_classes)
        seconds = round(time.monotonic() - start, 2)
        login = ops.get("login", {})
        if login.get("unsupported"):
            outcome = "unsupported"
        elif not login.get("ok"):
            outcome = "refused"
        else:
            outcome = "works" if not problems(c, ops) else "failed"
        result = {"combo": c.__dict__.copy(), "id": c.id, "outcome": outcome, "seconds": seconds, "ops": ops}
        self.results[c.id] = result
        return result

    def stop(self):
        for proxy in self.proxies.values():
            proxy.stop()


def problems(c: mc.Combo, ops: dict) -> list[str]:
    """Every way the scenario's results differ from what PostgreSQL answers."""
    found = []
    want = scenario.expected(ROWS)
    user, _ = USERS[c.server_auth]
    login = ops["login"]["value"]
    if login["user"] != user:
        found.append(f"logged in as {login['user']!r}, not {user!r}")
    if login["client_tls"] is not None and login["client_tls"] != (c.hop != "plaintext"):
        found.append(f"the client's own TLS state is {login['client_tls']} on a {c.hop} hop")
    for op, value in want.items():
        got = ops.get(op)
        if got is None or not got["ok"]:
            found.append(f"{op}: {got and got.get('error')}")
        elif got["value"] != value:
            found.append(f"{op}: {got['value']!r} != {value!r}")
    cancel = ops.get("cancel")
    if cancel is None or not cancel["ok"]:
        found.append(f"cancel: {cancel and cancel.get('error')}")
    else:
        v = cancel["value"]
        wanted_state = "task cancelled" if c.client == "asyncpg" else "57014"
        if v["sqlstate"] != wanted_state or v["seconds"] is None or v["seconds"] >= CANCEL_SECONDS:
            found.append(f"cancel of pg_sleep(20): {v}")
        if c.client != "psql" and v["after"] != 1:
            found.append(f"the session after the cancel: {v}")
    return found


@pytest.fixture(scope="module")
def matrix(servers, pki, proxy_cert, workdir):
    m = Matrix(servers, pki, proxy_cert, workdir)
    try:
        yield m
    finally:
        m.stop()
        path = results_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        expectations = {}
        for result in m.results.values():
            e = mc.expect(mc.Combo(**result["combo"]))
            result["expected"] = {"outcome": e.outcome, "says": e.says, "fix": e.fix,
                                  "fixed": e.fixed.id if e.fixed else None}
            expectations[result["id"]] = result
        path.write_text(json.dumps({"mode": MODE, "dimensions": mc.DIMENSIONS, "rows": ROWS,
                                    "results": list(expectations.values())}, indent=1, ensure_ascii=False))




# One combination: it works (every operation answers as PostgreSQL does),
# or it is refused at login with pgwarden's explanation and the combination
# with the setting that explanation names works, or the client cannot do it
# at all (skipped, saying why).
@pytest.mark.parametrize("combo", [pytest.param(c, id=c.id) for c in COMBOS])
def test_matrix(matrix, combo):
    expected = mc.expect(combo)
    result = matrix.run(combo)
    ops = result["ops"]
    login = ops["login"]
    if expected.outcome == "unsupported":
        assert result["outcome"] == "unsupported", ops
        pytest.skip(login["error"])
    if expected.outcome == "refused":
        assert not login["ok"], f"expected a refusal saying {expected.says!r}, but it logged in: {ops}"
        for words in expected.says:
            assert words in login["error"], login
        fixed = matrix.run(expected.fixed)
        assert fixed["outcome"] == "works", (f"the fix ({expected.fix}: {expected.fixed.id}) did not work: "
                                             f"{fixed['ops']}")
        return
    assert login["ok"], f"login failed: {login}"
    assert problems(combo, ops) == []


# The default slice covers every pair of values of any two dimensions (so
# every client meets every hop, auth, upstream.tls, server method and ssl
# setting at least once), in far fewer combinations than the whole matrix.
def test_slice_covers_every_pair_of_values():
    import itertools
    slice_ = mc.pairwise(mc.DIMENSIONS)
    names = list(mc.DIMENSIONS)
    for a, b in itertools.combinations(names, 2):
        seen = {(getattr(c, a), getattr(c, b)) for c in slice_}
        assert seen == set(itertools.product(mc.DIMENSIONS[a], mc.DIMENSIONS[b])), (a, b)
    assert len(slice_) <= 30 < len(mc.full())
