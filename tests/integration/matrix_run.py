"""Runs one client of the compatibility matrix (tests/clients/matrix,
tests/clients/node/matrix.js, tests/clients/jdbc/Matrix.java) against one
endpoint and returns its results, one dict per operation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from harness import client_env

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
DRIVER_JAR = Path("/usr/share/java/postgresql.jar")
RUN_TIMEOUT = 90


class ClientError(AssertionError):
    pass


def compile_jdbc(into: Path) -> Path:
    """Compiles Matrix.java once, so each run starts only the JVM."""
    into.mkdir(parents=True, exist_ok=True)
    if not (into / "Matrix.class").exists():
        javac = shutil.which("javac")
        if javac is None or not DRIVER_JAR.exists():
            raise ClientError("javac or pgJDBC is missing: run scripts/install-deps.sh "
                              "(default-jdk-headless, libpostgresql-jdbc-java)")
        subprocess.run([javac, "-encoding", "UTF-8", "-cp", str(DRIVER_JAR), "-d", str(into),
                        str(CLIENTS_DIR / "jdbc" / "Matrix.java")], check=True, capture_output=True, timeout=120)
    return into


def command(client: str, s: dict, jdbc_classes: Path | None) -> tuple[list[str], Path | None]:
    if client in ("psql", "psycopg", "asyncpg"):
        script = {"psql": "psql_client.py", "psycopg": "psycopg_client.py", "asyncpg": "asyncpg_client.py"}[client]
        return [PYTHON, str(CLIENTS_DIR / "matrix" / script), json.dumps(s)], None
    if client == "node-postgres":
        node = shutil.which("node")
        if node is None or not (CLIENTS_DIR / "node" / "node_modules" / "pg-copy-streams").exists():
            raise ClientError("node or its packages are missing: run scripts/install-deps.sh (npm ci)")
        return [node, "matrix.js", json.dumps(s)], CLIENTS_DIR / "node"
    if client == "pgjdbc":
        return (["java", "-cp", f"{DRIVER_JAR}:{jdbc_classes}", "Matrix", s["host"], str(s["port"]), s["user"],
                 s["password"] or "", s["dbname"], s["tls"], s["ca"], s["servername"], str(s["rows"])], None)
    raise ValueError(client)


def run_client(client: str, settings: dict, jdbc_classes: Path | None = None) -> dict[str, dict]:
    """{op: result} in the order the client printed them."""
    args, cwd = command(client, settings, jdbc_classes)
    done = subprocess.run(args, cwd=cwd, env=client_env(), capture_output=True, text=True, encoding="utf-8",
                          timeout=RUN_TIMEOUT)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            results[entry["op"]] = entry
    if not results or "crash" in results:
        raise ClientError(f"{client} exited {done.returncode} without results:\n{done.stdout}\n{done.stderr}")
    return results
