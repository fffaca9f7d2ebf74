"""Helpers for the operations tests: the admin HTTP endpoints, the
Prometheus text format, pgbench runs and waiting for a condition."""

from __future__ import annotations

import http.client
import re
import subprocess
import time

from harness import LOOPBACK, SUPERUSER, client_env

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def admin_config(postgres_host, postgres_port, admin_port, extra="") -> str:
    """A pgwarden configuration (for pgwarden_factory) with the admin server on."""
    return ("listen: 127.0.0.1:{listen_port}\n"
            f"upstream: {{ host: {postgres_host}, port: {postgres_port}, tls: disable }}\n"
            f"admin: {{ listen: {LOOPBACK}:{admin_port} }}\n" + extra)


def own_log(proxy) -> str:
    """The log lines of this proxy's run: pgwarden_factory reuses log file
    names from test to test, so earlier runs may precede it in the file."""
    text = proxy.log_path.read_bytes().decode("utf-8")
    marker = text.rfind(f"{LOOPBACK}:{proxy.admin_port} (/metrics")
    assert marker >= 0, text
    return text[text.rfind("\n", 0, marker) + 1:]


def http_request(port, path, method="GET", headers=None, timeout=10):
    """(status, headers as a dict with lower-case names, body text)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def parse_exposition(text: str) -> dict:
    """{(name, ((label, value), ...)): value} for every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(_LABEL.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def scrape(port) -> dict:
    status, _, body = http_request(port, "/metrics")
    assert status == 200, body
    return parse_exposition(body)


def sample(samples: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not exposed"
    return samples[key]


def wait_until(predicate, timeout=20.0, interval=0.1, what="condition"):
    """Polls `predicate` until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def start_pgbench(endpoint, script_path, *args, dbname="postgres"):
    """pgbench running `script_path` in the background (stdout/stderr piped)."""
    cmd = ["pgbench", "-n", "-h", endpoint.host, "-p", str(endpoint.port), "-U", SUPERUSER,
           "-f", str(script_path), *args, dbname]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=client_env(PGSSLMODE="disable"))
