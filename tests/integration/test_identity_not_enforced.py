"""Identity (people, grants, injected credentials) is configuration this
build validates but whose logins its sessions do not perform yet. Serving
it anyway would let every client in as the role it names, ungranted, so
`serve` refuses to start with it and a reload that adds it is rejected,
leaving the running configuration in force."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psycopg
import pytest

from harness import pgwarden_binary, proxy_config

pytestmark = pytest.mark.proxy_only

IDENTITY = """identity:
  people_file: {dir}/people.yaml
credentials:
  app: {{ password_file: {dir}/app.pw }}
grants:
  - people: [alice]
    roles: [app]
"""


def identity_files(directory):
    (directory / "people.yaml").write_text("people: []\n")
    pw = directory / "app.pw"
    pw.write_text("secret\n")
    pw.chmod(0o600)
    return IDENTITY.format(dir=directory)


def test_serve_refuses_identity_it_does_not_enforce(tmp_path, postgres):
    config = tmp_path / "pgwarden.yaml"
    config.write_text(proxy_config(6432, postgres.host, postgres.port, identity_files(tmp_path)))
    result = subprocess.run([str(pgwarden_binary()), "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "identity: people logins" in result.stderr
    assert "not yet enforced" in result.stderr


def test_reload_adding_identity_is_rejected(tmp_path, pgwarden_factory, postgres):
    proxy = pgwarden_factory(proxy_config("{listen_port}", postgres.host, postgres.port))
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    text = proxy.config_path.read_text()
    proxy.config_path.write_text(text + identity_files(tmp_path))
    os.kill(proxy.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload rejected" not in proxy.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, proxy.log_tail()
        time.sleep(0.1)
    assert "identity: people logins" in proxy.log_path.read_text(errors="replace")
    assert proxy.alive()
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 2").fetchone() == (2,)
