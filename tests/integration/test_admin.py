"""Operating pgwarden: the admin endpoints (/metrics, /healthz, /readyz),
the exposition as promtool and a real Prometheus read it, the operational
log (JSON, no SQL text unless asked), and the command line."""

import http.client
import json
import shutil
import socket
import struct
import subprocess
import urllib.parse

import psycopg
import pytest

import harness
from harness import LOOPBACK, free_port, pgwarden_binary
from ops_helpers import admin_config, http_request, own_log, sample, scrape, start_pgbench, wait_until

pytestmark = pytest.mark.proxy_only


@pytest.fixture(scope="module")
def table(postgres):
    postgres.psql_admin("CREATE TABLE ops_t (id int PRIMARY KEY, v int);"
                        "INSERT INTO ops_t SELECT g, g FROM generate_series(1, 100) g;")


@pytest.fixture
def proxy(admin_proxy):
    """pgwarden with its admin server; `.admin_port` says where."""
    return admin_proxy


# During a pgbench run the statement, byte and duration counters rise and
# the connection gauge shows the clients; afterwards the closes are counted
# and promtool accepts the whole exposition without a lint warning.
def test_metrics_move_during_pgbench_and_pass_promtool(proxy, table, tmp_path):
    p = proxy()
    script = tmp_path / "select.sql"
    script.write_text("\\set id random(1, 100)\nSELECT v FROM ops_t WHERE id = :id;\n")
    bench = start_pgbench(p.endpoint, script, "-c", "4", "-j", "2", "-T", "3", "-M", "extended")
    try:
        first = wait_until(lambda: (s := scrape(p.admin_port))
                           and sample(s, "pgwarden_client_connections") >= 4
                           and sample(s, "pgwarden_statements_total", **{"class": "READ"}, decision="allow") > 0
                           and s, what="pgbench clients running statements")
        second = wait_until(lambda: (s := scrape(p.admin_port))
                            and sample(s, "pgwarden_statements_total", **{"class": "READ"}, decision="allow")
                            > sample(first, "pgwarden_statements_total", **{"class": "READ"}, decision="allow")
                            and s, what="statements_total to rise")
    finally:
        out, err = bench.communicate(timeout=60)
    assert bench.returncode == 0, out + err
    for direction in ("from_client", "from_server"):
        assert (sample(second, "pgwarden_bytes_total", direction=direction)
                > sample(first, "pgwarden_bytes_total", direction=direction))
    assert (sample(second, "pgwarden_statement_duration_seconds_count")
            > sample(first, "pgwarden_statement_duration_seconds_count"))
    assert sample(second, "pgwarden_statement_duration_seconds_bucket", le="+Inf") == \
        sample(second, "pgwarden_statement_duration_seconds_count")

    after = wait_until(lambda: (s := scrape(p.admin_port))
                       and sample(s, "pgwarden_client_connections") == 0 and s,
                       what="the clients to leave")
    assert sample(after, "pgwarden_connections_closed_total", reason="client_terminate") >= 4
    assert sample(after, "pgwarden_client_connections_total", result="accepted") >= 4

    status, headers, body = http_request(p.admin_port, "/metrics")
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
        check.stdout + check.stderr


# A real Prometheus scraping the admin port every second answers a PromQL
# query for pgwarden_statements_total with what the proxy counted.
def test_prometheus_scrapes_and_answers_promql(proxy, table, tmp_path):
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is not installed (scripts/install-deps.sh installs it)"
    p = proxy()
    with p.endpoint.connect(autocommit=True) as conn:
        for i in range(5):
            conn.execute("SELECT v FROM ops_t WHERE id = %s", (i + 1,))
    web_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
        "scrape_configs:\n"
        f"  - job_name: pgwarden\n    static_configs: [ {{ targets: ['{LOOPBACK}:{p.admin_port}'] }} ]\n")
    server = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address={LOOPBACK}:{web_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=harness._die_with_parent)
    try:
        query = urllib.parse.quote('pgwarden_statements_total{class="READ",decision="allow"}')

        def answered():
            try:
                status, _, body = http_request(web_port, f"/api/v1/query?query={query}")
            except OSError:
                return None
            result = json.loads(body)["data"]["result"] if status == 200 else []
            return result if result and float(result[0]["value"][1]) >= 5 else None

        result = wait_until(answered, timeout=60, interval=0.5, what="Prometheus to have scraped pgwarden")
        assert result[0]["metric"]["job"] == "pgwarden"
        assert result[0]["metric"]["class"] == "READ"
    finally:
        server.terminate()
        server.wait(30)


# /readyz is 503 naming the upstream while PostgreSQL is down and 200 once
# it is back; /healthz says the process is alive throughout.
def test_readyz_follows_the_upstream(pgwarden_factory):
    pg = harness.PostgresServer()
    try:
        pg.init()
        pg.start()
        port = free_port()
        pgwarden_factory(admin_config(pg.host, pg.port, port), upstream_port=pg.port)
        wait_until(lambda: http_request(port, "/readyz")[0] == 200, what="ready with the upstream up")
        pg.stop()
        status, _, body = wait_until(lambda: (r := http_request(port, "/readyz"))[0] == 503 and r,
                                     what="not ready with the upstream down")
        assert f"{pg.host}:{pg.port} unreachable" in body, body
        assert http_request(port, "/healthz")[0] == 200
        pg.start()
        status, _, body = wait_until(lambda: (r := http_request(port, "/readyz"))[0] == 200 and r,
                                     what="ready again")
        assert body == "ready\n"
    finally:
        pg.destroy()


# The admin server speaks plain HTTP/1.1: 404 and 405 (with Allow) for what
# it does not serve, HEAD without a body, several requests on one kept-alive
# connection, and an oversized request refused with 431 and closed.
def test_admin_http_answers_and_bounds(proxy):
    p = proxy()
    assert http_request(p.admin_port, "/nope")[0] == 404
    status, headers, _ = http_request(p.admin_port, "/metrics", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, body = http_request(p.admin_port, "/healthz", method="HEAD")
    assert status == 200 and headers["content-length"] == "3" and body == ""

    conn = http.client.HTTPConnection(LOOPBACK, p.admin_port, timeout=10)
    for path in ("/healthz", "/metrics", "/healthz?verbose=1"):
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == 200
        r.read()
    conn.close()

    with socket.create_connection((LOOPBACK, p.admin_port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 431 "), data[:100]


def _startup_with_raw_user(user: bytes) -> bytes:
    body = struct.pack("!I", harness.PROTOCOL_3_0) + b"user\0" + user + b"\0database\0postgres\0\0"
    return struct.pack("!I", len(body) + 4) + body


# With log.format: json every line of the log is one JSON object with time,
# level and message, even when a client's user name holds a quote, a
# newline and a byte that is not UTF-8; the close line carries its reason.
def test_json_log_lines_parse_even_with_hostile_user_names(proxy):
    p = proxy("log: { format: json, level: debug }\n")
    with socket.create_connection((p.host, p.port), timeout=10) as s:
        s.sendall(_startup_with_raw_user(b'eve"\n\xffx'))
        while s.recv(65536):
            pass
    with p.endpoint.connect(autocommit=True) as conn:
        conn.execute("SELECT 1")
    assert p.stop() == 0
    lines = own_log(p).splitlines()
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "message"} <= r.keys() for r in records)
    closes = [r for r in records if r["message"] == "connection closed"]
    assert any(r["user"] == 'eve"\n\ufffdx' and r["reason"] for r in closes), closes
    assert any(r["user"] == harness.SUPERUSER and r["reason"] == "client_terminate" for r in closes), closes


DENY_DROP = """rules:
  - name: no-drop
    when: { command: ["DROP *"] }
    action: deny
default: allow
"""


# SQL text stays out of the operational log, even at debug level and for a
# denied statement, unless log.statements is true; then each statement is
# logged with its decision.
def test_sql_text_reaches_the_log_only_with_log_statements(proxy):
    quiet = proxy("log: { level: debug }\n" + DENY_DROP)
    chatty = proxy("log: { level: info, statements: true }\n" + DENY_DROP)
    for p in (quiet, chatty):
        with p.endpoint.connect(autocommit=True) as conn:
            assert conn.execute("SELECT 'sekrit-literal-4711'").fetchone() == ("sekrit-literal-4711",)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DROP TABLE sekrit_table_4711")
        p.stop()
    quiet_log = own_log(quiet)
    assert "denied" in quiet_log
    assert "sekrit" not in quiet_log, quiet_log
    chatty_log = own_log(chatty)
    assert "statement" in chatty_log and "sekrit-literal-4711" in chatty_log, chatty_log
    assert "decision=deny rule=no-drop sql=\"DROP TABLE sekrit_table_4711\"" in chatty_log, chatty_log


# `pgwarden --version` names the version; `--help` lists every subcommand.
def test_version_and_help():
    binary = str(pgwarden_binary())
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.startswith("pgwarden "), version
    helped = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    assert helped.returncode == 0
    for sub in ("serve", "check", "explain"):
        assert f"\n  {sub}" in helped.stdout, helped.stdout
