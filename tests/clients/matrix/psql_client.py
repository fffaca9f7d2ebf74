"""psql (libpq) runs the compatibility matrix's scenario (scenario.py): one
psql process reads a script with a marker before each operation; errors are
mapped to their operation by the script line psql names. The cancel is
psql's own: SIGINT while pg_sleep runs makes psql send a CancelRequest (and,
reading a script, stop after it), so it comes last."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import scenario as sc

OPS = ["login", "query", "prepared", "transaction", "copy_in", "copy_out", "cancel"]


def script(rows: int) -> str:
    copy_data = sc.copy_in_text(rows).decode()
    return "\n".join([
        "\\set VERBOSITY verbose",
        "\\echo @@op login",
        "SELECT current_user;",
        "\\conninfo",
        "\\echo @@op query",
        sc.QUERY + ";",
        "\\echo @@op prepared",
        "PREPARE triple(int) AS " + sc.PREPARED + ";",
        "EXECUTE triple(1);", "EXECUTE triple(2);", "EXECUTE triple(3);",
        sc.PREPARED_LISTED + ";",
        "\\echo @@op transaction",
        sc.TABLE + ";",
        "BEGIN;", "INSERT INTO matrix_rows VALUES (1, 'kept');", "COMMIT;",
        "BEGIN;", "INSERT INTO matrix_rows VALUES (2, 'rolled back');", "ROLLBACK;",
        "SELECT id FROM matrix_rows ORDER BY id;",
        "\\echo @@op copy_in",
        sc.COPY_IN + ";",
        copy_data + "\\.",
        sc.COPY_IN_CHECK + ";",
        "\\echo @@op copy_out",
        sc.COPY_OUT.format(rows=rows) + ";",
        "\\echo @@op cancel",
        sc.SLEEP + ";",
        "\\echo @@op end",
        "",
    ])


def conninfo(s: dict) -> str:
    parts = {"host": s["host"], "port": s["port"], "user": s["user"], "dbname": s["dbname"],
             "sslmode": s["tls"], "connect_timeout": 10}
    if s["tls"] == "verify-full":
        parts.update(host=s["servername"], hostaddr=s["host"], sslrootcert=s["ca"])
    return " ".join(f"{k}={v}" for k, v in parts.items())


def run(s: dict) -> tuple[dict[str, list[str]], list[tuple[int, str]], str, float | None]:
    """Runs psql; returns (stdout lines per op, (script line, error) pairs,
    stderr, seconds from the cancel's SIGINT to psql's exit)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False, encoding="utf-8") as f:
        f.write(script(s["rows"]))
        path = f.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C.UTF-8", PGCLIENTENCODING="UTF8")
    if s["password"] is not None:
        env["PGPASSWORD"] = s["password"]
    proc = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-f", path, conninfo(s)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True, encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current = None
    interrupted = None
    stderr_box = []
    reader = threading.Thread(target=lambda: stderr_box.append(proc.stderr.read()))
    reader.start()
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("@@op "):
                current = line[5:]
                sections[current] = []
                if current == "cancel":
                    time.sleep(sc.CANCEL_AFTER + 0.2)
                    proc.send_signal(signal.SIGINT)
                    interrupted = time.monotonic()
                continue
            if current is not None:
                sections[current].append(line)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join()
        os.unlink(path)
    seconds = round(time.monotonic() - interrupted, 2) if interrupted else None
    stderr = stderr_box[0] if stderr_box else ""
    errors = [(int(m.group(1)), m.group(2)) for m in re.finditer(r"^psql:[^:]*:(\d+): (.*)$", stderr, re.M)]
    return sections, errors, stderr, seconds


def op_lines(rows: int) -> dict[str, range]:
    """Which script lines belong to which operation."""
    lines = script(rows).split("\n")
    marks = [(i + 1, l[len("\\echo @@op "):]) for i, l in enumerate(lines) if l.startswith("\\echo @@op ")]
    return {op: range(start, marks[k + 1][0] if k + 1 < len(marks) else len(lines) + 1)
            for k, (start, op) in enumerate(marks)}


def main() -> None:
    s = sc.settings()
    if s["tls"] == "direct":
        sc.emit("login", False, error="unsupported: psql 15 (libpq 15) has no direct TLS "
                "(sslnegotiation=direct is libpq 17+)", sqlstate=None, unsupported=True)
        return
    rows = s["rows"]
    sections, errors, stderr, seconds = run(s)
    if "query" not in sections:
        message = stderr.strip().splitlines()
        sc.emit("login", False, error=" ".join(message) or "psql printed nothing", sqlstate=None)
        return
    ranges = op_lines(rows)

    def error_of(op):
        found = [e for line, e in errors if line in ranges[op]]
        return "; ".join(found) if found else None

    def parse(op, out):
        if op == "login":
            return {"user": out[0], "client_tls": any("SSL connection" in l for l in out)}
        if op == "query":
            a, b = out[0].split("|")
            return [int(a), b]
        if op == "prepared":
            return {"results": [int(x) for x in out[:3]], "listed": int(out[3]) >= 1}
        if op == "transaction":
            return [int(x) for x in out]
        if op == "copy_in":
            count, md5 = out[0].split("|")
            return {"count": int(count), "md5": md5}
        if op == "copy_out":
            data = "".join(l + "\n" for l in out).encode()
            return {"rows": len(out), "sha256": hashlib.sha256(data).hexdigest()}
        raise AssertionError(op)

    for op in OPS[:-1]:
        error = error_of(op)
        if error is None:
            try:
                sc.emit(op, True, value=parse(op, sections.get(op, [])))
                continue
            except (ValueError, IndexError) as e:
                error = f"unexpected output {sections.get(op)!r}: {e}"
        code = re.search(r"ERROR:\s+([0-9A-Z]{5}):", error)
        sc.emit(op, False, error=error, sqlstate=code.group(1) if code else None)
    cancel_error = error_of("cancel") or ""
    code = re.search(r"ERROR:\s+([0-9A-Z]{5}):", cancel_error)
    # psql stops reading its script after a cancel; it cannot show the
    # session usable afterwards (the other clients do).
    sc.emit("cancel", True, value={"sqlstate": code.group(1) if code else None, "seconds": seconds,
                                   "after": None})


if __name__ == "__main__":
    main()
