"""asyncpg runs the compatibility matrix's scenario (scenario.py)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time

import asyncpg

import scenario as sc


def tls_settings(s: dict) -> dict:
    if s["tls"] == "disable":
        return {"ssl": False}
    if s["tls"] == "require":
        return {"ssl": "require"}
    context = ssl.create_default_context(cafile=s["ca"])
    if s["tls"] == "direct":
        # asyncpg's direct_tls does not offer ALPN itself; PostgreSQL 17 and
        # pgwarden require "postgresql", so the context carries it.
        context.set_alpn_protocols(["postgresql"])
        return {"ssl": context, "direct_tls": True}
    return {"ssl": context}


async def step(op, body):
    try:
        sc.emit(op, True, value=await body())
    except Exception as e:  # noqa: BLE001 - every failure is a result
        sc.emit_error(op, e)


async def main() -> None:
    s = sc.settings()
    host = s["servername"] if s["tls"] in ("verify-full", "direct") else s["host"]
    try:
        conn = await asyncpg.connect(host=host, port=s["port"], user=s["user"], password=s["password"],
                                     database=s["dbname"], timeout=10, **tls_settings(s))
        user = await conn.fetchval("SELECT current_user")
        # Connection._transport: asyncpg has no public accessor for the TLS session.
        tls = conn._transport.get_extra_info("ssl_object") is not None
        sc.emit("login", True, value={"user": user, "client_tls": tls})
    except Exception as e:  # noqa: BLE001
        sc.emit_error("login", e)
        return
    rows = s["rows"]

    async def query():
        return list(await conn.fetchrow(sc.QUERY))
    await step("query", query)

    async def prepared():
        stmt = await conn.prepare(sc.PREPARED)
        got = [await stmt.fetchval(i) for i in (1, 2, 3)]
        return {"results": got, "listed": await conn.fetchval(sc.PREPARED_LISTED) >= 1}
    await step("prepared", prepared)

    class Abandon(Exception):
        pass

    async def transaction():
        await conn.execute(sc.TABLE)
        async with conn.transaction():
            await conn.execute("INSERT INTO matrix_rows VALUES (1, 'kept')")
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO matrix_rows VALUES (2, 'rolled back')")
                raise Abandon()
        except Abandon:
            pass
        return [r[0] for r in await conn.fetch("SELECT id FROM matrix_rows ORDER BY id")]
    await step("transaction", transaction)

    async def copy_in():
        await conn.copy_to_table("matrix_rows", source=_chunks(sc.copy_in_text(rows)), columns=["id", "v"])
        count, md5 = await conn.fetchrow(sc.COPY_IN_CHECK)
        return {"count": count, "md5": md5}
    await step("copy_in", copy_in)

    async def copy_out():
        digest, lines = hashlib.sha256(), 0

        async def sink(chunk):
            nonlocal lines
            digest.update(chunk)
            lines += chunk.count(b"\n")
        await conn.copy_from_query("SELECT g, md5(g::text) FROM generate_series(1, $1::int) g", rows, output=sink)
        return {"rows": lines, "sha256": digest.hexdigest()}
    await step("copy_out", copy_out)

    async def cancel():
        # Cancelling the awaiting task is asyncpg's cancel: it sends a
        # CancelRequest and waits for the server to end the statement before
        # the connection runs anything else, so the next query answering
        # long before pg_sleep(20) would have ended shows the cancel worked.
        start = time.monotonic()
        task = asyncio.ensure_future(conn.execute(sc.SLEEP))
        await asyncio.sleep(sc.CANCEL_AFTER)
        task.cancel()
        try:
            await task
            return {"sqlstate": None}
        except asyncio.CancelledError:
            pass
        after = await asyncio.wait_for(conn.fetchval("SELECT 1"), 15)
        return {"sqlstate": "task cancelled", "seconds": round(time.monotonic() - start, 2), "after": after}
    await step("cancel", cancel)
    await conn.close(timeout=5)


async def _chunks(data: bytes, size: int = 4093):
    """copy_to_table's source: the COPY text in odd-sized pieces, so rows
    straddle CopyData messages."""
    for i in range(0, len(data), size):
        yield data[i:i + size]


if __name__ == "__main__":
    asyncio.run(main())
