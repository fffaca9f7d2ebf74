"""bench/e2e.sh --smoke runs end to end and reports, so the benchmark harness
cannot rot: a plaintext pass (PostgreSQL, pgbouncer, pgwarden with audit off,
buffered and synced, pgbench, idle-connection memory, `pgwarden audit verify`
on both audit files), then a TLS pass with SCRAM authentication in all three
systems (throwaway CA, pgbench sslmode=require, the handshake-rate table, idle
TLS connections). No timing is asserted: only that it ran and reported."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness

ROOT = Path(os.environ.get("PGWARDEN_SOURCE") or Path(__file__).resolve().parents[2])
SCRIPT = ROOT / "bench" / "e2e.sh"


def run_smoke() -> str:
    env = dict(os.environ, PGWARDEN_BIN=str(harness.pgwarden_binary()))
    for k in ("ROUNDS", "DURATION", "IDLE", "SCALE", "SYSTEMS", "WORKLOADS", "TLS_KEY"):
        env.pop(k, None)
    r = subprocess.run([str(SCRIPT), "--smoke", "--no-install", "--no-build"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    return r.stdout


def table(section: str, header_start: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in `section` whose header row starts with `header_start`."""
    lines = section.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith(header_start)), None)
    assert start is not None, f"no table starting {header_start!r} in:\n{section}"
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


@pytest.fixture(scope="module")
def reports() -> list[str]:
    out = run_smoke()
    parts = re.split(r"^# pgwarden end-to-end benchmark", out, flags=re.M)[1:]
    assert len(parts) == 2, out
    return parts


# The plaintext pass measures every system, audit included, and says which
# hop is plaintext and how each system authenticates.
@pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="pgbouncer not installed")
def test_plaintext_pass_measures_every_system(reports):
    plain = reports[0]
    assert "client hop: plaintext on all three (pgbench sslmode=disable" in plain, plain
    assert "authentication: none (trust) in all three" in plain, plain
    rows = table(plain, "| workload |")
    assert [r["workload"] for r in rows] == ["S-simple-8"], rows
    for system in ("direct", "pgbouncer", "pgwarden", "pgwarden-audit", "pgwarden-synced"):
        assert float(rows[0][f"{system} TPS"]) > 0, rows[0]
    assert float(rows[0]["pgwarden/pgbouncer"]) > 0, rows[0]
    audit = table(plain, "| workload | audit buffered / audit off |")
    assert float(audit[0]["synced / buffered"]) > 0, audit
    idle = {r["system"]: r for r in table(plain, "| system | RSS before KiB |")}
    assert idle["pgbouncer"]["connections"] == idle["pgwarden"]["connections"] == "20", idle


# Both audit files exist after the run and pgwarden audit verify accepts them.
@pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="pgbouncer not installed")
def test_plaintext_pass_verifies_both_audit_files(reports):
    plain = reports[0]
    for system, durability in (("pgwarden-audit", "buffered"), ("pgwarden-synced", "synced")):
        line = next((l for l in plain.splitlines() if l.startswith(f"- {system} (durability {durability})")), None)
        assert line, plain
        assert "exit status 0 after SIGTERM" in line, line
        m = re.search(r"`pgwarden audit verify` exit 0: ok: (\d+) records", line)
        assert m and int(m.group(1)) > 0, line


# The TLS pass really uses TLS on every client hop, authenticates with SCRAM
# everywhere, and reports the handshake rate of all three systems.
@pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="pgbouncer not installed")
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_pass_reports_handshake_rate(reports):
    tls = reports[1]
    assert "client hop: TLS on all three (pgbench sslmode=require)" in tls, tls
    assert "authentication: SCRAM-SHA-256 in each system" in tls, tls
    for system in ("direct", "pgbouncer", "pgwarden"):
        assert re.search(rf"^  - {system}, as probed: client hop TLSv1\.[23] ", tls, re.M), tls
    rates = {r["system"]: r for r in table(tls, "| system | connections/s |")}
    assert set(rates) == {"direct", "pgbouncer", "pgwarden"}, rates
    for r in rates.values():
        assert float(r["connections/s"]) > 0, r
        assert float(r["/ pgbouncer"]) > 0 and float(r["/ direct"]) > 0, r
    idle = {r["system"]: r for r in table(tls, "| system | RSS before KiB |")}
    assert idle["pgbouncer"]["connections"] == idle["pgwarden"]["connections"] == "20", idle
