"""Helpers for the audit log tests: a pgwarden configuration with the audit
log on, reading the files it wrote, `pgwarden audit verify`, and rewriting
records the way someone tampering with the log would."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

from harness import LOOPBACK, SUPERUSER, client_env, pgwarden_binary

ACTIVE = "pgwarden.jsonl"

# Rules every audit test runs under: a denial, an alerting allow and a dry run.
RULES = """\
rules:
  - name: no-drop
    when: { command: ["DROP TABLE"], database: postgres }
    action: deny
  - name: no-delete-from-ext
    when: { command: ["DELETE"], object: ["audit_ext"] }
    action: deny
  - name: no-new-roles-from-locked
    when: { command: ["CREATE ROLE"], application_name: locked }
    action: deny
  - name: alert-on-create
    when: { command: ["CREATE TABLE"] }
    action: allow
    alert: true
  - name: whole-table-update
    when: { update_or_delete_without_where: true }
    action: deny
    enforce: false
"""

_FAILED = re.compile(r"^FAILED: (.+?)(?::(\d+))?: seq (\d+): ([a-z ]+): (.*)$", re.MULTILINE)
_TAIL = re.compile(rb',"prev_hash":"([0-9a-f]{64})","hash":"([0-9a-f]{64})"(,"hmac":"[0-9a-f]{64}")?\}$')


def audit_config(postgres, audit_dir: Path, admin_port: int | None = None, **audit) -> str:
    """A configuration for pgwarden_factory: RULES, and `audit` with file in
    `audit_dir` plus the given settings (durability="synced", ...)."""
    settings = {"file": str(Path(audit_dir) / ACTIVE), **audit}
    body = ", ".join(f"{k}: {v}" for k, v in settings.items())
    admin = f"admin: {{ listen: {LOOPBACK}:{admin_port} }}\n" if admin_port else ""
    return ("listen: 127.0.0.1:{listen_port}\n"
            f"upstream: {{ host: {postgres.host}, port: {postgres.port}, tls: disable }}\n"
            f"{admin}{RULES}audit: {{ {body} }}\n")


def audit_files(audit_dir: Path) -> list[Path]:
    """The log's files in chain order: rotated ones (their names sort by
    time), then the active file."""
    d = Path(audit_dir)
    rotated = sorted(p for p in d.iterdir() if p.name.startswith("pgwarden-") and p.name.endswith(".jsonl"))
    active = [d / ACTIVE] if (d / ACTIVE).exists() else []
    return rotated + active


def read_records(audit_dir: Path) -> list[dict]:
    """Every complete record of every file, in seq order. A torn last line
    (a crash in the middle of a write) is skipped; anything else that is not
    JSON fails the test."""
    records = []
    for path in audit_files(audit_dir):
        lines = path.read_bytes().split(b"\n")
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                assert i == len(lines) - 1, f"{path}:{i + 1} is not a record: {line[:200]!r}"
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs), "records out of seq order"
    return records


def statements(records: list[dict], session_id: str | None = None) -> list[dict]:
    return [r for r in records if r["event"] == "statement"
            and (session_id is None or r["session_id"] == session_id)]


def sessions_of(records: list[dict], application_name: str) -> list[str]:
    """The session ids that started with `application_name`, in order."""
    return [r["session_id"] for r in records
            if r["event"] == "session.start" and r["application_name"] == application_name]


def verify(*paths, hmac_key_file: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [str(pgwarden_binary()), "audit", "verify"]
    if hmac_key_file:
        cmd += ["--hmac-key-file", str(hmac_key_file)]
    return subprocess.run(cmd + [str(p) for p in paths], capture_output=True, text=True, timeout=60)


def failure(result: subprocess.CompletedProcess) -> tuple[int, str, str]:
    """(seq, problem, message) of verify's FAILED line; asserts there is one."""
    assert result.returncode == 1, result.stdout + result.stderr
    m = _FAILED.search(result.stdout)
    assert m, result.stdout
    return int(m.group(3)), m.group(4), m.group(5)


def psql(endpoint, sql: str, *args, application_name: str = "psql") -> subprocess.CompletedProcess:
    """The psql binary reading `sql` from stdin, each statement sent on its own."""
    cmd = ["psql", "-X", "-h", endpoint.host, "-p", str(endpoint.port), "-U", SUPERUSER, "-d", "postgres", *args]
    return subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=60,
                          env=client_env(PGAPPNAME=application_name, PGSSLMODE="disable"))


# ---------------------------------------------------------------------------
# Rewriting records as a tamperer would.

def canonical_hash(line: bytes) -> str:
    """SHA-256 of a line's canonical bytes (docs/audit-format.md)."""
    return hashlib.sha256(line[: line.index(b',"hash":"')] + b"}").hexdigest()


def rechain(audit_dir: Path, from_seq: int) -> None:
    """Recomputes hash from record `from_seq` on, and prev_hash (and a
    checkpoint's previous_hash) after it, across files: what someone who can
    run SHA-256 but has no HMAC key can do after editing a record. HMACs stay
    as they are."""
    prev = None
    for path in audit_files(audit_dir):
        out = []
        for line in path.read_bytes().split(b"\n")[:-1]:
            seq = json.loads(line)["seq"]
            m = _TAIL.search(line)
            assert m, line
            body, prev_hash, hmac_part = line[: m.start()], m.group(1), m.group(3) or b""
            if seq > from_seq:
                prev_hash = prev
                if b'"event":"checkpoint"' in body:
                    body = re.sub(rb'"previous_hash":"[0-9a-f]{64}"', b'"previous_hash":"' + prev + b'"', body)
            if seq >= from_seq:
                unhashed = _with_tail(body, prev_hash, b"0" * 64, hmac_part)
                line = _with_tail(body, prev_hash, canonical_hash(unhashed).encode(), hmac_part)
            prev = _TAIL.search(line).group(2)
            out.append(line)
        path.write_bytes(b"".join(line + b"\n" for line in out))


def _with_tail(body: bytes, prev_hash: bytes, hash_: bytes, hmac_part: bytes) -> bytes:
    return body + b',"prev_hash":"' + prev_hash + b'","hash":"' + hash_ + b'"' + hmac_part + b"}"


def line_of_seq(audit_dir: Path, seq: int) -> tuple[Path, int]:
    """(file, 0-based line index) holding record `seq`."""
    for path in audit_files(audit_dir):
        for i, line in enumerate(path.read_bytes().split(b"\n")[:-1]):
            if json.loads(line)["seq"] == seq:
                return path, i
    raise AssertionError(f"no record with seq {seq}")


def edit_lines(path: Path, change) -> None:
    """Rewrites `path` with change(list of lines without newlines)."""
    lines = path.read_bytes().split(b"\n")[:-1]
    change(lines)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


@contextlib.contextmanager
def tmpfs(mnt, size: str):
    """A tmpfs of `size` on `mnt`, unmounted at the end whatever happened."""
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True, timeout=30)
    try:
        yield mnt
    finally:
        for _ in range(50):  # the proxies are stopped just before; give them a moment to let go
            if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(mnt)], check=True, timeout=30)


def fill(fs) -> "os.PathLike":
    """Fills the filesystem with a filler file until writes fail with ENOSPC."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler
