#!/usr/bin/env python3
"""Fault campaign: repeats the failure experiments of issue 18 against a real
PostgreSQL 15 (started here, as the integration tests do) and prints a
table: experiment | result | numbers.

    sudo python3 tests/faults/campaign.py [--quick] [--only WORD ...] [--baseline OTHER_PGWARDEN]

Needs root (PostgreSQL runs as the postgres user; the disk-full experiment
mounts a small tmpfs), build/pgwarden (or PGWARDEN_BIN) and the integration
tests' Python packages. Every loop is bounded in time or count, and every
address is on loopback. `--quick` shortens the long runs (350 sessions for
10 s instead of 60, the disk outage 8 s instead of 20).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import psycopg  # noqa: E402

import harness  # noqa: E402
from audit_helpers import audit_config, read_records, verify  # noqa: E402
from ops_helpers import http_request, parse_exposition  # noqa: E402
from test_audit_disk import fill, refusing_clients, tmpfs  # noqa: E402

LOOPBACK = harness.LOOPBACK


class Proxy(harness.Pgwarden):
    """pgwarden with an admin port, started from a configuration body."""

    def __init__(self, work: Path, pg: harness.PostgresServer, body: str, name: str, upstream_port=None):
        super().__init__(work, pg.host, upstream_port or pg.port, name=name)
        self.admin_port = harness.free_port()
        self.config_path.write_text(
            f"listen: {LOOPBACK}:{self.port}\n"
            f"upstream: {{ host: {LOOPBACK}, port: {upstream_port or pg.port}, tls: disable }}\n"
            f"admin: {{ listen: {LOOPBACK}:{self.admin_port} }}\n" + body)

    def metrics(self) -> dict:
        status, _, text = http_request(self.admin_port, "/metrics")
        return parse_exposition(text) if status == 200 else {}

    def metric(self, name: str, **labels) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def dsn(proxy, **kw) -> str:
    return proxy.endpoint.dsn(connect_timeout=10, **kw)


# --- experiments: each returns (result, numbers) ---------------------------

async def _open_many(proxy, n: int, concurrency: int = 100):
    sem = asyncio.Semaphore(concurrency)

    async def one():
        async with sem:
            try:
                conn = await psycopg.AsyncConnection.connect(dsn(proxy), autocommit=True)
                await conn.execute("SELECT 1")
                return conn
            except psycopg.Error as e:
                return e
    return await asyncio.gather(*(one() for _ in range(n)))


def connections_1000(ctx) -> tuple[str, str]:
    proxy = ctx.proxy
    start = time.monotonic()
    results = asyncio.run(_hold_and_count(proxy, 1000))
    opened, errors, gauge = results
    took = time.monotonic() - start
    ok = opened == 1000 and gauge >= 1000
    return ("PASS" if ok else "FAIL",
            f"{opened}/1000 open at once, {len(errors)} failed, gauge {gauge:.0f}, {took:.1f} s, "
            f"proxy RSS {proxy.rss_bytes() / 2**20:.0f} MiB" + (f"; errors {sorted(set(errors))[:3]}" if errors else ""))


async def _hold_and_count(proxy, n):
    conns = await _open_many(proxy, n, concurrency=50)
    good = [c for c in conns if not isinstance(c, Exception)]
    errors = [str(c).strip().splitlines()[-1][:120] for c in conns if isinstance(c, Exception)]
    gauge = await asyncio.to_thread(proxy.metric, "pgwarden_client_connections")
    await asyncio.gather(*(c.close() for c in good))
    return len(good), errors, gauge


async def _active(proxy, sessions: int, seconds: float):
    """`sessions` connections (opened 50 at a time, like a pool warming up),
    then all of them busy for `seconds`."""
    counts = {"ok": 0, "failed": 0, "errors": set()}
    conns = await _open_many(proxy, sessions, concurrency=50)
    for c in conns:
        if isinstance(c, Exception):
            counts["failed"] += 1
            counts["errors"].add(f"connect: {str(c).strip().splitlines()[-1][:100]}")
    deadline = time.monotonic() + seconds

    async def worker(conn):
        async with conn:
            while time.monotonic() < deadline:
                try:
                    await conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ("pg_proc",))
                    counts["ok"] += 1
                except psycopg.Error as e:
                    counts["failed"] += 1
                    counts["errors"].add(e.sqlstate or type(e).__name__)
                    if conn.closed:
                        return
    await asyncio.gather(*(worker(c) for c in conns if not isinstance(c, Exception)))
    return counts


def active_350(ctx) -> tuple[str, str]:
    seconds = 10 if ctx.quick else 60
    counts = asyncio.run(_active(ctx.proxy, 350, seconds))
    rate = counts["ok"] / seconds
    return ("PASS" if counts["failed"] == 0 and counts["ok"] > 0 else "FAIL",
            f"350 sessions x {seconds} s: {counts['ok']} statements ({rate:.0f}/s), {counts['failed']} failures"
            + (f" {sorted(counts['errors'])}" if counts["errors"] else ""))


def _select_latency(proxy) -> float:
    start = time.monotonic()
    with psycopg.connect(dsn(proxy), autocommit=True) as conn:
        conn.execute("SELECT 1")
    return time.monotonic() - start


def slowloris_and_malformed(ctx) -> tuple[str, str]:
    proxy = ctx.proxy
    # Slowloris: 50 clients dribble a StartupMessage, one byte a second.
    packet = harness.startup_packet({"user": harness.SUPERUSER, "database": "postgres"})
    slow = [socket.create_connection((LOOPBACK, proxy.port)) for _ in range(50)]
    opened = time.monotonic()
    latencies, closed_after = [], {}
    for i in range(12):  # startup_timeout is 3 s here; bounded to 12 s
        for j, s in enumerate(slow):
            if j in closed_after:
                continue
            try:
                s.send(packet[i:i + 1])
                s.settimeout(0.001)
                if s.recv(1024) == b"":
                    closed_after[j] = time.monotonic() - opened
            except (BlockingIOError, socket.timeout):
                pass
            except OSError:
                closed_after[j] = time.monotonic() - opened
        latencies.append(_select_latency(proxy))
        if len(closed_after) == len(slow):
            break
        time.sleep(1)
    for s in slow:
        s.close()
    # Malformed: garbage, a negative or huge length, a bad protocol version.
    rng = random.Random(18)
    payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))) for _ in range(150)]
    payloads += [b"\xff\xff\xff\xff" + b"x" * 8, b"\x7f\xff\xff\xff\x00\x03\x00\x00", b"\x00\x00\x00\x08\x00\x09\x00\x00"] * 10
    closed = 0
    for p in payloads:
        with socket.create_connection((LOOPBACK, proxy.port), timeout=5) as s:
            try:
                s.sendall(p)
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
                closed += 1
            except OSError:
                closed += 1
    latencies.append(_select_latency(proxy))
    ok = len(closed_after) == 50 and max(closed_after.values()) < 6 and closed == len(payloads) and proxy.alive()
    return ("PASS" if ok else "FAIL",
            f"slowloris: {len(closed_after)}/50 closed, last after {max(closed_after.values(), default=0):.1f} s "
            f"(startup_timeout 3 s); malformed: {closed}/{len(payloads)} closed; "
            f"SELECT meanwhile max {max(latencies) * 1000:.0f} ms")


def upstream_restart(ctx) -> tuple[str, str]:
    proxy, pg = ctx.proxy, ctx.pg
    conns = [psycopg.connect(dsn(proxy), autocommit=True) for _ in range(20)]
    pg.stop()
    pg.start()
    restarted = time.monotonic()
    broken = 0
    for c in conns:
        try:
            c.execute("SELECT 1")
        except psycopg.Error:
            broken += 1
        c.close()
    first_ok = None
    for _ in range(100):  # at most ~10 s
        try:
            _select_latency(proxy)
            first_ok = time.monotonic() - restarted
            break
        except psycopg.Error:
            time.sleep(0.1)
    ok = first_ok is not None and proxy.alive()
    return ("PASS" if ok else "FAIL",
            f"{broken}/20 open sessions got an error (their backends are gone); new session OK "
            f"{first_ok if first_ok is None else round(first_ok, 2)} s after the restart")


def reloads_50(ctx) -> tuple[str, str]:
    proxy = ctx.proxy
    before = proxy.metric("pgwarden_config_reloads_total", result="success")
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}

    def client():
        with psycopg.connect(dsn(proxy), autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute("SELECT 1")
                    counts["ok"] += 1
                except psycopg.Error:
                    counts["failed"] += 1
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    start = time.monotonic()
    for _ in range(50):
        os.kill(proxy.pid, signal.SIGHUP)
        time.sleep(0.1)
    took = time.monotonic() - start
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    done = proxy.metric("pgwarden_config_reloads_total", result="success") - before
    errors = proxy.metric("pgwarden_config_reloads_total", result="error")
    ok = proxy.alive() and counts["failed"] == 0 and done >= 1 and errors == 0
    return ("PASS" if ok else "FAIL",
            f"50 SIGHUP in {took:.1f} s: {done:.0f} reloads applied (signals arriving during a reload coalesce), "
            f"{errors:.0f} errors; 4 clients: {counts['ok']} statements, {counts['failed']} failed")


def kill9_synced(ctx) -> tuple[str, str]:
    audit_dir = ctx.work / "kill9-audit"
    proxy = Proxy(ctx.work, ctx.pg, f"audit: {{ file: {audit_dir}/pgwarden.jsonl, durability: synced }}\n", "kill9")
    proxy.start()
    ctx.pg.psql_admin("CREATE TABLE IF NOT EXISTS campaign_marks (mark text)")
    executed = {"n": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + 3

    def client(k):
        try:
            with psycopg.connect(dsn(proxy), autocommit=True) as conn:
                i = 0
                while True:
                    conn.execute("INSERT INTO campaign_marks VALUES (%s)", (f"{k}-{i}",))
                    with lock:
                        executed["n"] += 1
                    i += 1
                    if time.monotonic() > deadline + 5:
                        return
        except psycopg.Error:
            return  # the proxy was killed under it
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    proxy.kill()
    for t in threads:
        t.join()
    records = read_records(audit_dir)
    logged = sum(1 for r in records if r["event"] == "statement" and r.get("decision") == "allow"
                 and "campaign_marks" in r.get("text", ""))
    server_rows = int(ctx.pg.psql_admin("SELECT count(*) FROM campaign_marks").strip())
    result = verify(audit_dir)
    ok = logged >= executed["n"] and logged >= server_rows and result.returncode == 0
    ctx.pg.psql_admin("DROP TABLE campaign_marks")
    return ("PASS" if ok else "FAIL",
            f"{executed['n']} INSERTs acknowledged, {server_rows} rows on the server, {logged} statement records "
            f"after kill -9; verify exit {result.returncode}")


def disk_full(ctx, binary: str | None = None) -> tuple[str, str]:
    seconds = 8 if ctx.quick else 20
    with tmpfs(Path(tempfile.mkdtemp(dir=ctx.work)) / "disk-full", "2m") as fs:
        audit_dir = fs / "audit"
        proxy = Proxy(ctx.work, ctx.pg, f"audit: {{ file: {audit_dir}/pgwarden.jsonl, durability: synced, "
                                        f"on_failure: block }}\n", "diskfull")
        if binary:
            proxy.binary = Path(binary)
        proxy.start()
        try:
            with psycopg.connect(dsn(proxy, application_name="sizer"), autocommit=True) as conn:
                conn.execute("SELECT 1")
            line = max(len(x) for x in (audit_dir / "pgwarden.jsonl").read_bytes().split(b"\n")
                       if b'"event":"statement"' in x) + 1
            filler = fill(fs)
            refused, ran = refusing_clients(proxy.endpoint, clients=4, seconds=seconds)
            backlog = refused * line
            size = os.path.getsize(filler)
            os.truncate(filler, max(0, size - backlog // 4))
            freed_at = time.monotonic()
            recovered = None
            with psycopg.connect(dsn(proxy), autocommit=True) as conn:
                while time.monotonic() - freed_at < 10:
                    try:
                        conn.execute("SELECT 1")
                        recovered = time.monotonic() - freed_at
                        break
                    except psycopg.errors.IoError:
                        refused += 1  # refused while waiting: also in the chain
                        time.sleep(0.01)
        finally:
            proxy.stop()
        result = verify(audit_dir)
        records = read_records(audit_dir)
        counted = sum(r["count"] for r in records if r["event"] == "statement.refusals")
        single = sum(1 for r in records if r.get("sqlstate") == "58030" and r["event"] in ("statement", "statement.result"))
        files = sorted(p.name for p in audit_dir.iterdir() if p.name.endswith(".jsonl"))
    ok = recovered is not None and recovered < 1 and result.returncode == 0 and counted + single == refused
    return ("PASS" if ok else "FAIL",
            f"4 clients x {seconds} s on a full 2 MiB tmpfs: {refused} refused ({ran} ran); backlog as single records "
            f">= {backlog} B, freed {min(size, backlog // 4)} B; statements ran again after "
            f"{recovered if recovered is None else round(recovered, 3)} s; verify exit {result.returncode}; "
            f"refusals in the chain {counted}+{single}; {len(files)} files")


def second_instance(ctx) -> tuple[str, str]:
    audit_dir = ctx.work / "owner-audit"
    first = Proxy(ctx.work, ctx.pg, f"audit: {{ file: {audit_dir}/pgwarden.jsonl }}\n", "owner")
    first.start()
    try:
        _select_latency(first)
        snap = lambda: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in audit_dir.iterdir()}  # noqa: E731
        before = snap()
        for _ in range(50):  # until the first has written what its session left (session.end)
            time.sleep(0.2)
            now = snap()
            if now == before:
                break
            before = now
        r = subprocess.run([str(first.binary), "serve", "--config", str(first.config_path)],
                           capture_output=True, text=True, timeout=30)
        unchanged = snap() == before
        serving = _select_latency(first) < 5
    finally:
        first.stop()
    ok = r.returncode != 0 and f"pid {first.pid}" in r.stderr and unchanged and serving
    message = (r.stderr.strip().splitlines() or [""])[-1]
    return ("PASS" if ok else "FAIL",
            f"exit {r.returncode}; files unchanged: {unchanged}; first still serving: {serving}; said: {message[:240]}")


def upstream_silent_close(ctx) -> tuple[str, str]:
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()  # accepts, then closes without a word
            except socket.timeout:
                continue
    t = threading.Thread(target=serve)
    t.start()
    proxy = Proxy(ctx.work, ctx.pg, "", "silent", upstream_port=port)
    proxy.start()
    try:
        observed = [startup_answer(proxy) for _ in range(3)]
    finally:
        proxy.stop()
        stop.set()
        t.join()
        listener.close()
    ok = all(o.startswith("FATAL 08006") and f"{LOOPBACK}:{port}" in o for o in observed)
    return ("PASS" if ok else "OBSERVED", f"3 startups: " + "; ".join(sorted(set(observed))))


def startup_answer(proxy, **login) -> str:
    """What a client sees at startup: `SEVERITY SQLSTATE message`, `ready`,
    or how the connection ended without an error."""
    try:
        with harness.RawClient(proxy.endpoint, timeout=15) as client:
            for kind, payload in client.login(**login):
                if kind == b"E":
                    f = harness.error_fields(payload)
                    return f"{f.get('S')} {f.get('C')} {f.get('M', '')[:140]}"
            return "ready"
    except harness.ConnectionClosed:
        return "closed without an error message"
    except OSError as e:
        return f"{type(e).__name__}: {e}"


def startups_53300(ctx) -> tuple[str, str]:
    proxy, pg = ctx.proxy, ctx.pg
    pg.psql_admin(f"ALTER ROLE {harness.MD5_USER} CONNECTION LIMIT 1")
    before = {k: v for k, v in proxy.metrics().items() if k[0] == "pgwarden_client_connections_total"}
    holder = psycopg.connect(proxy.endpoint.dsn(user=harness.MD5_USER, password=harness.MD5_PASSWORD), autocommit=True)
    try:
        seen = [startup_answer(proxy, user=harness.MD5_USER, password=harness.MD5_PASSWORD) for _ in range(5)]
    finally:
        holder.close()
        pg.psql_admin(f"ALTER ROLE {harness.MD5_USER} CONNECTION LIMIT -1")
    time.sleep(0.2)
    after = {k: v for k, v in proxy.metrics().items() if k[0] == "pgwarden_client_connections_total"}
    delta = {dict(k[1]).get("result", "?"): after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    refused = sum(" 53300 " in a for a in seen)
    ok = refused == 5 and sum(v for r, v in delta.items() if r != "accepted") >= 5
    return ("PASS" if ok else "OBSERVED",
            f"5 startups (+1 holding the role's only slot): {refused} got 53300 ({sorted(set(seen))[0]}); "
            f"pgwarden_client_connections_total change: { {k: round(v) for k, v in sorted(delta.items())} }")


EXPERIMENTS = [
    ("1000 connections", connections_1000),
    ("350 active sessions", active_350),
    ("slowloris + malformed input", slowloris_and_malformed),
    ("upstream restart", upstream_restart),
    ("50 reloads in 5 s", reloads_50),
    ("kill -9, synced audit", kill9_synced),
    ("disk full, recovery", disk_full),
    ("disk full, recovery, --baseline binary", lambda ctx: disk_full(ctx, ctx.baseline)),
    ("second instance", second_instance),
    ("upstream closes at startup", upstream_silent_close),
    ("server refuses startup 53300", startups_53300),
]


class Context:
    def __init__(self, quick: bool, baseline: str | None):
        self.quick = quick
        self.baseline = baseline
        self.work = Path(tempfile.mkdtemp(prefix="pgwarden-faults-"))
        self.pg = harness.PostgresServer()
        self.pg.init(extra_conf="max_connections = 1200\nshared_buffers = 64MB\n")
        self.pg.start()
        self.pg.create_roles()
        self.proxy = Proxy(self.work, self.pg,
                           f"limits: {{ max_client_connections: 1100, startup_timeout: 3s }}\n"
                           f"audit: {{ file: {self.work}/audit/pgwarden.jsonl }}\n", "campaign")
        self.proxy.start()

    def close(self):
        self.proxy.stop()
        self.pg.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter long runs (10 s and 8 s instead of 60 s and 20 s)")
    parser.add_argument("--only", nargs="*", help="run only experiments whose name contains one of these words")
    parser.add_argument("--baseline", help="another pgwarden binary to run the disk-full experiment with, to compare")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: PostgreSQL is started as the postgres user and a tmpfs is mounted", file=sys.stderr)
        return 2
    ctx = Context(args.quick, args.baseline)
    rows = []
    try:
        for name, run in EXPERIMENTS:
            if args.only and not any(w in name for w in args.only):
                continue
            if "--baseline" in name and not args.baseline:
                continue
            start = time.monotonic()
            try:
                result, numbers = run(ctx)
            except Exception as e:  # an experiment that breaks is a row, not the end of the campaign
                result, numbers = "ERROR", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            rows.append((name, result, f"{numbers} [{time.monotonic() - start:.0f} s]"))
            print(f"{name}: {result}: {numbers}", file=sys.stderr, flush=True)
            if not ctx.proxy.alive():
                ctx.proxy.start()
    finally:
        ctx.close()
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'experiment'.ljust(width)} | result   | numbers |")
    print(f"|{'-' * (width + 2)}|----------|---------|")
    for name, result, numbers in rows:
        print(f"| {name.ljust(width)} | {result.ljust(8)} | {numbers} |")
    # The baseline row shows another build for comparison; it does not decide.
    return 0 if all(r[1] in ("PASS", "OBSERVED") for r in rows if "--baseline" not in r[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
