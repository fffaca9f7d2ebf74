"""One pgwarden per audit directory, and per listening port: a second
instance on the same configuration is refused before it changes any file,
naming the first one's pid, while the first keeps serving with an intact
chain; a lock left by `kill -9` does not block the restart; and a second
instance never shares a port with the first through SO_REUSEPORT."""

from __future__ import annotations

import hashlib
import subprocess
import time

import psycopg
import pytest

from audit_helpers import audit_config, verify
from harness import Pgwarden, free_port, pgwarden_binary

pytestmark = pytest.mark.proxy_only


def snapshot(directory) -> dict[str, str]:
    """Every file of `directory` with the SHA-256 of its contents."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def settled_snapshot(directory) -> dict[str, str]:
    """snapshot() once the first instance has written what its last session
    left (session.end goes out within its flush interval)."""
    previous = snapshot(directory)
    for _ in range(50):
        time.sleep(0.2)
        now = snapshot(directory)
        if now == previous:
            return now
        previous = now
    raise AssertionError("the audit directory keeps changing")


def second_instance(config_path) -> subprocess.CompletedProcess:
    return subprocess.run([str(pgwarden_binary()), "serve", "--config", str(config_path)],
                          capture_output=True, text=True, timeout=30)


def run_one(proxy, sql="SELECT 1"):
    with psycopg.connect(proxy.endpoint.dsn(), autocommit=True) as conn:
        return conn.execute(sql).fetchone()


# A second pgwarden on the very same configuration file (same port, same
# audit directory; with and without the admin server, whose port is in use
# too) exits non-zero, naming the first one's pid, and leaves every file of
# the directory as it was: same names, same bytes. The first serves on and
# its chain verifies.
@pytest.mark.parametrize("with_admin", [False, True])
def test_second_instance_is_refused_before_it_touches_a_file(tmp_path, pgwarden_factory, postgres, with_admin):
    audit_dir = tmp_path / "audit"
    first = pgwarden_factory(audit_config(postgres, audit_dir, admin_port=free_port() if with_admin else None))
    assert run_one(first) == (1,)
    before = settled_snapshot(audit_dir)

    result = second_instance(first.config_path)
    assert result.returncode != 0
    assert f"pid {first.pid}" in result.stderr, result.stderr
    assert "in use by another pgwarden" in result.stderr
    assert snapshot(audit_dir) == before

    assert first.alive()
    assert run_one(first, "SELECT 2") == (2,)
    assert first.stop() == 0
    assert verify(audit_dir).returncode == 0


# kill -9 leaves the lock file (and its pid) behind, but not the lock: the
# restart on the same configuration succeeds and continues the chain.
def test_restart_after_kill_minus_nine_is_not_blocked(tmp_path, pgwarden_factory, postgres, workdir):
    audit_dir = tmp_path / "audit"
    first = pgwarden_factory(audit_config(postgres, audit_dir, durability="synced"))
    assert run_one(first) == (1,)
    first.kill()
    assert (audit_dir / "pgwarden.lock").read_text().strip() == str(first.pid)

    again = Pgwarden(workdir, postgres.host, postgres.port, name=f"restarted-{first.pid}")
    again.port, again.config_path = first.port, first.config_path
    try:
        again.start()
        assert run_one(again) == (1,)
        assert (audit_dir / "pgwarden.lock").read_text().strip() == str(again.pid)
    finally:
        assert again.stop() == 0
    result = verify(audit_dir)
    assert result.returncode == 0, result.stdout


# Every worker's socket uses SO_REUSEPORT, which would let another process
# bind the same port and quietly take a share of the clients. A second
# instance with its own audit directory (no lock in common), or with no
# audit log at all, is refused with "Address already in use" instead.
@pytest.mark.parametrize("audit", [True, False])
def test_second_instance_does_not_share_the_port(tmp_path, pgwarden_factory, postgres, audit):
    first = pgwarden_factory(audit_config(postgres, tmp_path / "first"))
    other = tmp_path / "second.yaml"
    text = audit_config(postgres, tmp_path / "second").replace("{listen_port}", str(first.port))
    if not audit:
        text = text[: text.index("audit:")]
    other.write_text(text)
    result = second_instance(other)
    assert result.returncode != 0
    assert "Address already in use" in result.stdout + result.stderr
    assert not (tmp_path / "second" / "pgwarden.jsonl").exists()
    assert run_one(first) == (1,)
