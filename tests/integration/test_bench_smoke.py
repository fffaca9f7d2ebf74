"""bench/e2e.sh --smoke runs end to end (PostgreSQL, pgbouncer, pgwarden,
pgbench, idle-connection memory) and prints a table with a row per workload
and a column per system, so the benchmark harness cannot rot. No timing is
asserted: only that it ran and reported."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness

ROOT = Path(os.environ.get("PGWARDEN_SOURCE") or Path(__file__).resolve().parents[2])
SCRIPT = ROOT / "bench" / "e2e.sh"


@pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="pgbouncer not installed")
def test_bench_smoke():
    env = dict(os.environ, PGWARDEN_BIN=str(harness.pgwarden_binary()))
    for k in ("ROUNDS", "DURATION", "IDLE", "SCALE"):
        env.pop(k, None)
    r = subprocess.run([str(SCRIPT), "--smoke", "--no-install", "--no-build"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    out = r.stdout
    header = next((l for l in out.splitlines() if l.startswith("| workload |")), None)
    assert header, out
    for system in ("direct", "pgbouncer", "pgwarden"):
        assert f"| {system} TPS |" in header or f" {system} TPS " in header, header
    rows = [l for l in out.splitlines() if re.match(r"\| S-", l)]
    assert rows, out
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        tps = [float(c) for c in cells[1:4]]
        assert all(t > 0 for t in tps), row
    # Idle-connection memory rows for both proxies.
    assert re.search(r"^\| pgbouncer \| \d+ \| \d+ \| 20 \|", out, re.M), out
    assert re.search(r"^\| pgwarden \| \d+ \| \d+ \| 20 \|", out, re.M), out
