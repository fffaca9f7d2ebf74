"""The compatibility matrix's scenario, shared by the Python-driven clients
(psql, psycopg 3, asyncpg); tests/clients/node/matrix.js and
tests/clients/jdbc/Matrix.java run the same steps with the same values.

Every client reads one JSON object of settings (argv[1]) and prints one JSON
line per operation, in this order, stopping after a failed login:

  login        {"user": current_user, "client_tls": the client's own view}
  query        [42, "café 中"]
  prepared     {"results": [3, 6, 9], "listed": the server holds the statement}
  transaction  [1]   (row 1 committed, row 2 rolled back)
  copy_in      {"count": rows, "md5": md5 of the copied values joined by ","}
  copy_out     {"rows": rows, "sha256": of the COPY TO STDOUT bytes}
  cancel       {"sqlstate": "57014", "seconds": ..., "after": 1}

A failed operation prints {"op": ..., "ok": false, "error": ..., "sqlstate": ...}.

Settings: host, port, user, password (or null), dbname, tls (disable,
require, verify-full or direct), ca (CA file for verify-full and direct),
servername (the name verify-full checks), rows (COPY rows each way).
"""

from __future__ import annotations

import hashlib
import json
import sys

QUERY = "SELECT 40 + 2, 'caf\u00e9 \u4e2d'"
PREPARED = "SELECT $1::int * 3"
PREPARED_LISTED = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%$1::int * 3%'"
TABLE = "CREATE TEMP TABLE matrix_rows (id int PRIMARY KEY, v text NOT NULL)"
COPY_IN = "COPY matrix_rows (id, v) FROM STDIN"
COPY_IN_CHECK = ("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM matrix_rows WHERE id > 1000")
COPY_OUT = "COPY (SELECT g, md5(g::text) FROM generate_series(1, {rows}) g) TO STDOUT"
SLEEP = "SELECT pg_sleep(20)"
CANCEL_AFTER = 0.3   # seconds between starting pg_sleep and cancelling it


def copy_value(i: int) -> str:
    """Row i's text: a tab and a backslash that COPY must escape, and
    multi-byte characters."""
    return f"r{i}\t\\ \u00e9\u4e2d"


def copy_in_text(rows: int) -> bytes:
    def escape(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\t", "\\t")
    return "".join(f"{1000 + i}\t{escape(copy_value(i))}\n" for i in range(1, rows + 1)).encode()


def expected(rows: int) -> dict:
    """What every operation returns against PostgreSQL itself."""
    values = ",".join(copy_value(i) for i in range(1, rows + 1))
    out = "".join(f"{g}\t{hashlib.md5(str(g).encode()).hexdigest()}\n" for g in range(1, rows + 1))
    return {
        "query": [42, "caf\u00e9 \u4e2d"],
        "prepared": {"results": [3, 6, 9], "listed": True},
        "transaction": [1],
        "copy_in": {"count": rows, "md5": hashlib.md5(values.encode()).hexdigest()},
        "copy_out": {"rows": rows, "sha256": hashlib.sha256(out.encode()).hexdigest()},
    }


def settings() -> dict:
    return json.loads(sys.argv[1])


def emit(op: str, ok: bool, **fields) -> None:
    print(json.dumps({"op": op, "ok": ok, **fields}, ensure_ascii=False), flush=True)


def emit_error(op: str, e: BaseException) -> None:
    emit(op, False, error=f"{type(e).__name__}: {e}".strip(), sqlstate=getattr(e, "sqlstate", None))
