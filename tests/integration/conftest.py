"""Fixtures: one PostgreSQL 15 and one pgwarden per test file (session scope).

PGWARDEN_IT_TARGET=direct points every test at PostgreSQL itself (tests marked
`proxy_only` are skipped); that is how the tests themselves are validated.
The default, `proxy`, puts pgwarden (PGWARDEN_BIN) in front of it.

Run: `ctest --test-dir build -L integration` (one entry per test file), or
`PGWARDEN_BIN=build/pgwarden /usr/bin/python3 -m pytest -q -p no:cacheprovider
tests/integration` (one PostgreSQL for the whole directory).
"""

from __future__ import annotations

import faulthandler
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("jdbc_client")  # its checks report what differed

import harness  # noqa: E402

TARGET = os.environ.get("PGWARDEN_IT_TARGET", "proxy")
if TARGET not in ("proxy", "direct"):
    raise pytest.UsageError(f"PGWARDEN_IT_TARGET must be proxy or direct, not {TARGET!r}")

# A hung test dumps every thread's stack and ends the run; the postmaster and
# the proxies die with it (parent-death signal), so CI never waits on a hang.
PER_TEST_TIMEOUT = float(os.environ.get("PGWARDEN_IT_TEST_TIMEOUT", "150"))

_servers: list = []   # everything whose log is worth showing when a test fails


def pytest_configure(config):
    config.addinivalue_line("markers", "proxy_only: meaningful only with pgwarden in front")


def pytest_collection_modifyitems(config, items):
    if TARGET == "direct":
        skip = pytest.mark.skip(reason="about pgwarden itself; PGWARDEN_IT_TARGET=direct")
        for item in items:
            if "proxy_only" in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(PER_TEST_TIMEOUT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _servers:
            tail = server.log_tail().strip()
            if tail:
                report.sections.append((f"{type(server).__name__} log ({server.log_path})", tail))


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="pgwarden-it-work-"))
    yield path
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def _running_postgres(**init):
    """A fresh PostgreSQL with the harness roles, destroyed afterwards; its
    log is shown when a test fails."""
    server = harness.PostgresServer()
    _servers.append(server)
    try:
        server.init(**init)
        server.start()
        server.create_roles()
        yield server
    finally:
        server.destroy()
        _servers.remove(server)


@pytest.fixture(scope="session")
def postgres():
    """PostgreSQL 15 with the harness superuser, md5_user and scram_user."""
    yield from _running_postgres()


@pytest.fixture(scope="session")
def pki(workdir):
    """A throwaway certificate authority for the TLS tests."""
    return harness.Pki(workdir / "pki")


@pytest.fixture(scope="session")
def tls_postgres(pki):
    """A PostgreSQL of its own with ssl=on and a certificate from `pki` (the
    shared one runs without TLS). It logs every connection it receives, so a
    test can tell whether a client reached it."""
    yield from _running_postgres(ssl=pki, extra_conf="log_connections = on\nlog_min_messages = log\n")


@pytest.fixture(scope="session")
def proxy_cert(pki):
    """pgwarden's certificate: valid for localhost and 127.0.0.1, with a
    subject of its own so it cannot be mistaken for the server's."""
    return pki.issue("pgwarden", common_name="pgwarden")


@pytest.fixture(scope="session")
def pgwarden(postgres, workdir):
    """pgwarden in front of `postgres`, on a free port."""
    proxy = harness.Pgwarden(workdir, postgres.host, postgres.port)
    _servers.append(proxy)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def pgwarden_factory(postgres, workdir):
    """Starts extra proxies: factory(config_text=None, upstream_port=None).
    config_text may contain {listen_port}; all are stopped after the test."""
    started = []

    def start(config_text: str | None = None, upstream_port: int | None = None):
        name = f"pgwarden-extra-{len(started) + 1}-{os.getpid()}"
        proxy = harness.Pgwarden(workdir, postgres.host, upstream_port or postgres.port,
                                 name=name)
        if config_text is not None:
            proxy.config_path.write_text(config_text.replace("{listen_port}", str(proxy.port)))
        started.append(proxy)
        _servers.append(proxy)
        proxy.start()
        return proxy

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()
            _servers.remove(proxy)


@pytest.fixture
def admin_proxy(pgwarden_factory, postgres):
    """Starts a pgwarden with its admin server on a free port: factory(extra="")
    -> the proxy, with `.admin_port` set once /healthz answers."""
    from ops_helpers import admin_config, http_request, wait_until

    def answers(port):
        try:
            return http_request(port, "/healthz")[0] == 200
        except OSError:
            return False

    def start(extra=""):
        port = harness.free_port()
        proxy = pgwarden_factory(admin_config(postgres.host, postgres.port, port, extra))
        proxy.admin_port = port
        wait_until(lambda: answers(port), what="the admin server")
        return proxy
    return start


@pytest.fixture(scope="session")
def target(request, postgres) -> harness.Endpoint:
    """Where the clients under test connect: pgwarden, or PostgreSQL when direct."""
    if TARGET == "direct":
        return postgres.endpoint
    return request.getfixturevalue("pgwarden").endpoint


@pytest.fixture(scope="session")
def direct(postgres) -> harness.Endpoint:
    return postgres.endpoint


@pytest.fixture
def admin(postgres):
    """An autocommit psycopg connection straight to PostgreSQL, for checks."""
    conn = postgres.endpoint.connect(autocommit=True)
    try:
        yield conn
    finally:
        conn.close()
