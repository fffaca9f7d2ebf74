"""Runs tests/clients/jdbc/Exercise.java (pgJDBC, Debian's
libpostgresql-jdbc-java) and returns what it printed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import client_env

EXERCISE = Path(__file__).resolve().parents[1] / "clients" / "jdbc" / "Exercise.java"
DRIVER_JAR = Path("/usr/share/java/postgresql.jar")
COPY_ROWS = 2000


def jdbc_url(host: str, port: int, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"jdbc:postgresql://{host}:{port}/postgres" + (f"?{query}" if query else "")


def run_exercise(url: str, user: str, password: str | None, table: str, denied_sql: str | None = None) -> dict:
    """The exercise's JSON result; fails the test, with its output, when it exits non-zero."""
    java = shutil.which("java")
    if java is None or not DRIVER_JAR.exists():
        pytest.fail("java or pgJDBC is missing: run scripts/install-deps.sh "
                    "(default-jdk-headless, libpostgresql-jdbc-java)", pytrace=False)
    args = [java, "-cp", str(DRIVER_JAR), str(EXERCISE), url, user, password or "", table, str(COPY_ROWS)]
    if denied_sql is not None:
        args.append(denied_sql)
    done = subprocess.run(args, env=client_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"java exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def copy_value(i: int) -> str:
    """Row i of the exercise's COPY as the server stores it (Exercise.copyValue, unescaped)."""
    return f"row {i}\tcopied\\ \u00e9\u4e2d"


def check_workload(result: dict, table: str) -> None:
    """Everything the full exercise reports, as PostgreSQL itself answers it."""
    assert result["simple"] == {"answer": 42, "error_code": "22012", "usable_after_error": "still here"}
    assert result["prepared"] == {"results": ["one", "two", "three"] * 3, "server_prepared": True,
                                  "named_on_server": 1}
    assert result["batch"] == {"statements": 200, "all_one_row": True, "rows": 200}
    assert result["transactions"] == {"negative_ids": [-1]}
    md5s = b"".join(hashlib.md5(str(g).encode()).hexdigest().encode() for g in range(1, 10001))
    assert result["fetch_size"] == {"rows": 10000, "sum": 10000 * 10001 // 2, "sha256": hashlib.sha256(md5s).hexdigest()}
    assert result["copy"] == {"in": COPY_ROWS, "out": COPY_ROWS, "round_trip": True, "value": copy_value(1)}
    cancel = result["cancel"]
    assert cancel["sqlstate"] == "57014" and cancel["seconds"] < 10, cancel
    assert cancel["usable_after_cancel"] == "after cancel"
    assert result["metadata"] == {"tables": [table], "columns": ["id int4", "v text"], "primary_key": ["id"]}
    assert result["types"] == {"bytea": True, "timestamp": True, "numeric": True, "array": True, "null": True}
