"""psycopg 3 (libpq) runs the compatibility matrix's scenario (scenario.py)."""

from __future__ import annotations

import threading
import time

import psycopg

import scenario as sc


def connect(s: dict) -> psycopg.Connection:
    params = {"host": s["host"], "port": s["port"], "user": s["user"], "dbname": s["dbname"],
              "connect_timeout": 10, "sslmode": s["tls"]}
    if s["password"] is not None:
        params["password"] = s["password"]
    if s["tls"] == "verify-full":
        params.update(host=s["servername"], hostaddr=s["host"], sslrootcert=s["ca"])
    return psycopg.connect(autocommit=True, **params)


def step(op, body):
    try:
        sc.emit(op, True, value=body())
    except Exception as e:  # noqa: BLE001 - every failure is a result
        sc.emit_error(op, e)


def main() -> None:
    s = sc.settings()
    if s["tls"] == "direct":
        # libpq learned sslnegotiation=direct in PostgreSQL 17; this one is older.
        v = psycopg.pq.version()
        sc.emit("login", False, error=f"unsupported: psycopg {psycopg.__version__} on libpq {v // 10000}.{v % 10000} "
                "has no direct TLS (sslnegotiation=direct is libpq 17+)", sqlstate=None, unsupported=True)
        return
    try:
        conn = connect(s)
        user = conn.execute("SELECT current_user").fetchone()[0]
        sc.emit("login", True, value={"user": user, "client_tls": bool(conn.info.pgconn.ssl_in_use)})
    except Exception as e:  # noqa: BLE001
        sc.emit_error("login", e)
        return
    rows = s["rows"]

    step("query", lambda: list(conn.execute(sc.QUERY).fetchone()))

    def prepared():
        cur = conn.cursor()
        got = [cur.execute("SELECT %s::int * 3", [i], prepare=True).fetchone()[0] for i in (1, 2, 3)]
        return {"results": got, "listed": conn.execute(sc.PREPARED_LISTED).fetchone()[0] >= 1}
    step("prepared", prepared)

    def transaction():
        conn.execute(sc.TABLE)
        with conn.transaction():
            conn.execute("INSERT INTO matrix_rows VALUES (1, 'kept')")
        with conn.transaction():
            conn.execute("INSERT INTO matrix_rows VALUES (2, 'rolled back')")
            raise psycopg.Rollback()
        return [r[0] for r in conn.execute("SELECT id FROM matrix_rows ORDER BY id")]
    step("transaction", transaction)

    def copy_in():
        with conn.cursor() as cur:
            with cur.copy(sc.COPY_IN) as copy:
                copy.write(sc.copy_in_text(rows))
        count, md5 = conn.execute(sc.COPY_IN_CHECK).fetchone()
        return {"count": count, "md5": md5}
    step("copy_in", copy_in)

    def copy_out():
        import hashlib
        digest, lines = hashlib.sha256(), 0
        with conn.cursor() as cur:
            with cur.copy(sc.COPY_OUT.format(rows=rows)) as copy:
                for chunk in copy:
                    digest.update(chunk)
                    lines += bytes(chunk).count(b"\n")
        return {"rows": lines, "sha256": digest.hexdigest()}
    step("copy_out", copy_out)

    def cancel():
        timer = threading.Timer(sc.CANCEL_AFTER, conn.cancel)
        start = time.monotonic()
        timer.start()
        try:
            conn.execute(sc.SLEEP)
            return {"sqlstate": None}
        except psycopg.Error as e:
            seconds = round(time.monotonic() - start, 2)
            return {"sqlstate": e.sqlstate, "seconds": seconds, "after": conn.execute("SELECT 1").fetchone()[0]}
        finally:
            timer.cancel()
    step("cancel", cancel)
    conn.close()


if __name__ == "__main__":
    main()
