"""Integration harness: a throwaway PostgreSQL 15 and pgwarden in front of it.

Everything here is bounded in time and dies with the test process: the
postmaster and every proxy are started with a parent-death signal, so even a
test run that is killed outright leaves nothing listening behind it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import hmac
import base64
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
LOOPBACK = "127.0.0.1"

# Roles the harness creates. The superuser logs in with trust; the other two
# need their password, checked with the method their name says.
SUPERUSER = "harness"
MD5_USER, MD5_PASSWORD = "md5_user", "md5-secret"
SCRAM_USER, SCRAM_PASSWORD = "scram_user", "scram-secret"

STARTUP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10

PROTOCOL_3_0 = 196608          # StartupMessage: Int32 len, Int32 196608, (key\0 value\0)* \0
SSL_REQUEST_CODE = 80877103    # SSLRequest: Int32 8, Int32 80877103
CANCEL_REQUEST_CODE = 80877102  # CancelRequest: Int32 16, Int32 80877102, Int32 pid, Int32 key

_PR_SET_PDEATHSIG = 1


class HarnessError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _as_postgres_user():
    """preexec_fn: drop to the postgres OS user (PostgreSQL refuses root),
    then ask to be killed when the harness dies (credentials first: a
    credential change clears the parent-death signal)."""
    if os.geteuid() != 0:
        return _die_with_parent
    pw = pwd.getpwnam("postgres")

    def demote():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        _die_with_parent()

    return demote


def _run_as_postgres(args, timeout=60, **kw):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + [str(a) for a in args], check=True, timeout=timeout,
                          capture_output=True, text=True, **kw)


def client_env(**extra) -> dict:
    """Environment for psql/pgbench: no inherited PG* settings, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT))
    env.update(extra)
    return env


def _conninfo_value(value) -> str:
    """A libpq conninfo value: quoted when it holds a space, a quote or a backslash."""
    text = str(value)
    if text and not any(c in text for c in " \t\n'\\"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Somewhere a client connects: PostgreSQL itself or a pgwarden."""
    host: str
    port: int
    kind: str  # "direct" or "proxy"

    def dsn(self, user=SUPERUSER, dbname="postgres", password=None, **params) -> str:
        parts = {"host": self.host, "port": self.port, "user": user, "dbname": dbname,
                 "sslmode": "disable", "connect_timeout": CONNECT_TIMEOUT}
        if password is not None:
            parts["password"] = password
        parts.update(params)
        return " ".join(f"{k}={_conninfo_value(v)}" for k, v in parts.items())

    def connect(self, **kw):
        import psycopg
        autocommit = kw.pop("autocommit", False)
        return psycopg.connect(self.dsn(**kw), autocommit=autocommit)


class Pki:
    """A throwaway certificate authority and the certificates a TLS test needs,
    made with the openssl command line. Every certificate names localhost and
    127.0.0.1, so verify-full holds for either."""

    def __init__(self, directory: Path, name: str = "ca"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_key = self.dir / f"{name}.key"
        self.ca_cert = self.dir / f"{name}.crt"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2",
                 "-subj", f"/CN=pgwarden test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name: str, common_name: str = "localhost", client: bool = False,
              digest: str = "sha256") -> tuple[Path, Path]:
        """A key and certificate signed by this CA; returns (cert, key) paths."""
        key, csr, cert = (self.dir / f"{name}.key", self.dir / f"{name}.csr", self.dir / f"{name}.crt")
        ext = self.dir / f"{name}.ext"
        usage = "clientAuth" if client else "serverAuth"
        ext.write_text(f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={common_name}")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", cert, "-days", "2", f"-{digest}", "-extfile", ext)
        key.chmod(0o600)
        return cert, key


def _openssl(*args) -> None:
    subprocess.run(["openssl", *[str(a) for a in args]], check=True, capture_output=True, timeout=60)


class PostgresServer:
    """PostgreSQL 15 in a fresh temporary directory on a free loopback port."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="pgwarden-it-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.host = LOOPBACK
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, "direct")

    @property
    def dsn(self) -> str:
        return self.endpoint.dsn()

    def init(self, ssl: Pki | None = None, extra_conf: str = "") -> None:
        """initdb and the harness settings; with `ssl`, TLS on with a
        certificate from that CA (PostgreSQL then also offers
        SCRAM-SHA-256-PLUS); `extra_conf` is appended to postgresql.conf."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        _run_as_postgres([PG_BIN / "initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust",
                          "-E", "UTF8", "--locale=C", "--no-sync"], timeout=120)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"""
# pgwarden integration harness
listen_addresses = '{LOOPBACK}'
port = {self.port}
unix_socket_directories = '{self.root}'
max_connections = 60
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = fatal
log_checkpoints = off
log_connections = off
""")
            if ssl is not None:
                cert, key = ssl.issue("postgres-server")
                for f in (cert, key, ssl.ca_cert):
                    shutil.copy(f, self.data / f.name)
                    if os.geteuid() == 0:
                        shutil.chown(self.data / f.name, "postgres", "postgres")
                conf.write(f"ssl = on\nssl_cert_file = '{cert.name}'\nssl_key_file = '{key.name}'\n"
                           f"ssl_ca_file = '{ssl.ca_cert.name}'\n")
            conf.write(extra_conf)
        (self.data / "pg_hba.conf").write_text(f"""# pgwarden integration harness
local all all                        trust
host  all {SUPERUSER}  {LOOPBACK}/32 trust
host  all {MD5_USER}   {LOOPBACK}/32 md5
host  all {SCRAM_USER} {LOOPBACK}/32 scram-sha-256
host  all all          {LOOPBACK}/32 reject
""")

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(PG_BIN / "postgres"), "-D", str(self.data)],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_as_postgres_user())
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"postgres exited with {self.proc.returncode}:\n{self.log_tail()}")
            r = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", self.host, "-p",
                                str(self.port), "-t", "1"], env=client_env())
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise HarnessError(f"postgres not ready after {STARTUP_TIMEOUT}s:\n{self.log_tail()}")

    def create_roles(self) -> None:
        self.psql_admin(f"""
SET password_encryption = 'md5';
CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}';
SET password_encryption = 'scram-sha-256';
CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}';
""")

    def psql_admin(self, sql: str, dbname: str = "postgres") -> str:
        """Runs SQL directly on the server as the superuser, stopping at the first error."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", dbname],
                           input=sql, capture_output=True, text=True, timeout=60, env=client_env())
        if r.returncode != 0:
            raise HarnessError(f"psql failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def stop(self, mode=signal.SIGINT, timeout=30.0) -> None:
        """Stops the server (SIGINT: fast shutdown), killing it if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(mode)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def destroy(self) -> None:
        try:
            self.stop(signal.SIGQUIT, timeout=10)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n=40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def pgwarden_binary() -> Path:
    if os.environ.get("PGWARDEN_BIN"):
        return Path(os.environ["PGWARDEN_BIN"])
    source = os.environ.get("PGWARDEN_SOURCE")
    root = Path(source) if source else Path(__file__).resolve().parents[2]
    return root / "build" / "pgwarden"


def proxy_config(listen_port: int, upstream_host: str, upstream_port: int, extra: str = "") -> str:
    return (f"listen: {LOOPBACK}:{listen_port}\n"
            f"upstream: {{ host: {upstream_host}, port: {upstream_port} }}\n" + extra)


class Pgwarden:
    """One `pgwarden serve` process with a generated configuration."""

    def __init__(self, workdir: Path, upstream_host: str, upstream_port: int,
                 config_text: str | None = None, name: str = "pgwarden"):
        self.binary = pgwarden_binary()
        self.host = LOOPBACK
        self.port = free_port()
        self.workdir = Path(workdir)
        self.config_path = self.workdir / f"{name}.yaml"
        self.log_path = self.workdir / f"{name}.log"
        self.config_path.write_text(config_text if config_text is not None else
                                    proxy_config(self.port, upstream_host, upstream_port))
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, "proxy")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout=15.0) -> None:
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(f"pgwarden binary not found at {self.binary} "
                               "(set PGWARDEN_BIN, or PGWARDEN_IT_TARGET=direct)")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"pgwarden exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise HarnessError(f"pgwarden did not listen on {self.port} within {timeout}s:\n"
                           f"{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would end it: nothing is flushed or closed."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None

    def stop(self, timeout=10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited in time. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def rss_bytes(self) -> int:
        return process_rss_bytes(self.pid)

    def log_tail(self, n=40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def process_rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise HarnessError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------------------
# A minimal raw-socket PostgreSQL v3 client, for what libpq will not send.

def startup_packet(params: dict[str, str], version: int = PROTOCOL_3_0) -> bytes:
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def cancel_packet(pid: int, secret: int) -> bytes:
    return struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid & 0xFFFFFFFF, secret & 0xFFFFFFFF)


def cancel_later(endpoint: Endpoint, key: tuple[int, int], delay: float = 0.5):
    """Sends a CancelRequest with `key` to `endpoint` after `delay` seconds,
    from a thread; returns the started thread (join it)."""
    import threading

    def send():
        time.sleep(delay)
        with socket.create_connection((endpoint.host, endpoint.port), timeout=10) as s:
            s.sendall(cancel_packet(*key))
            s.recv(1)  # the server answers a cancel by closing

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def error_fields(payload: bytes) -> dict[str, str]:
    """ErrorResponse/NoticeResponse body: (Byte1 code, String value)*, \\0."""
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


class ConnectionClosed(Exception):
    pass


class RawClient:
    """Speaks just enough of the protocol to log in and run simple queries."""

    def __init__(self, endpoint: Endpoint | None, timeout: float = 10.0, rcvbuf: int | None = None,
                 sock: socket.socket | None = None):
        """Connects to `endpoint`, or speaks over `sock` (already connected,
        e.g. a TLS socket) when given."""
        if sock is not None:
            self.sock = sock
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.connect((endpoint.host, endpoint.port))
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.backend_key: tuple[int, int] | None = None
        self.parameters: dict[str, str] = {}

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionClosed(f"closed with {len(self.buf)} bytes pending")
            self.buf += chunk

    def read_message(self) -> tuple[bytes, bytes]:
        self._fill(5)
        kind = bytes(self.buf[:1])
        (length,) = struct.unpack("!I", self.buf[1:5])
        if length < 4 or length > 64 << 20:
            raise HarnessError(f"bad length {length} in {kind!r} message from server")
        self._fill(1 + length)
        payload = bytes(self.buf[5:1 + length])
        del self.buf[:1 + length]
        return kind, payload

    def read_until_ready(self) -> list[tuple[bytes, bytes]]:
        out = []
        while True:
            kind, payload = self.read_message()
            out.append((kind, payload))
            if kind == b"Z":
                return out

    def login(self, user: str = SUPERUSER, database: str = "postgres",
              password: str | None = None, **parameters: str) -> list[tuple[bytes, bytes]]:
        """StartupMessage (with any further `parameters`) and authentication
        (trust, md5 or SCRAM-SHA-256); returns every message up to
        ReadyForQuery or the first ErrorResponse."""
        self.send(startup_packet({"user": user, "database": database, **parameters}))
        seen = []
        scram = None
        while True:
            kind, payload = self.read_message()
            seen.append((kind, payload))
            if kind == b"E":
                return seen
            if kind == b"R":
                (code,) = struct.unpack("!I", payload[:4])
                if code == 5:  # AuthenticationMD5Password: Int32 5, Byte4 salt
                    inner = hashlib.md5((password + user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + payload[4:8]).hexdigest()
                    self.send(message(b"p", b"md5" + outer.encode() + b"\0"))
                elif code == 3:  # AuthenticationCleartextPassword
                    self.send(message(b"p", password.encode() + b"\0"))
                elif code == 10:  # AuthenticationSASL: mechanism names
                    scram = _Scram(password)
                    self.send(scram.initial_response())
                elif code == 11:  # AuthenticationSASLContinue
                    self.send(scram.final_message(payload[4:]))
                elif code in (0, 12):  # AuthenticationOk, AuthenticationSASLFinal
                    pass
                else:
                    raise HarnessError(f"unsupported authentication request {code}")
            elif kind == b"K":
                self.backend_key = struct.unpack("!II", payload)
            elif kind == b"S":
                k, v, _ = payload.split(b"\0", 2)
                self.parameters[k.decode()] = v.decode()
            elif kind == b"Z":
                return seen

    def query(self, sql: str) -> list[tuple[bytes, bytes]]:
        self.send(message(b"Q", sql.encode() + b"\0"))
        return self.read_until_ready()

    def wait_closed(self, timeout: float = 5.0) -> tuple[bool, bytes]:
        """Reads until the peer closes. Returns (closed, bytes received meanwhile)."""
        data = bytes(self.buf)
        self.buf.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                return True, data
            if not chunk:
                return True, data
            data += chunk
        return False, data


class _Scram:
    """Client side of SCRAM-SHA-256 without channel binding (RFC 5802/7677)."""

    def __init__(self, password: str):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def initial_response(self) -> bytes:
        first = ("n,," + self.first_bare).encode()
        body = b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first
        return message(b"p", body)

    def final_message(self, server_first: bytes) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        return message(b"p", final.encode())
