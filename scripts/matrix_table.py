#!/usr/bin/env python3
"""Renders the compatibility matrix's results (tests/integration/test_matrix.py
writes build/compat-matrix-full.json, or -slice.json) as a Markdown table.

  scripts/matrix_table.py build/compat-matrix-full.json            # print it
  scripts/matrix_table.py build/compat-matrix-full.json --readme README.md
                                                                   # replace the README's table

One row per pgwarden `auth`, `upstream.tls` and server (its method for the
user, ssl on or off); one column per client hop; each cell says which
clients work, which are refused (with a note: pgwarden's words and the
setting that fixes it) and which cannot do that hop at all.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

BEGIN, END = "<!-- compat-matrix:begin -->", "<!-- compat-matrix:end -->"
SHORT = {"psql": "psql", "psycopg": "psycopg", "asyncpg": "asyncpg", "node-postgres": "node", "pgjdbc": "jdbc"}
HOP_TITLES = {"plaintext": "plaintext", "require": "TLS require", "verify-full": "TLS verify-full",
              "direct": "direct TLS"}
AUTH_TITLES = {"passthrough": "passthrough", "scram-auth_file": "scram, auth_file",
               "scram-auth_query": "scram, auth_query"}


def shorten(error: str) -> str:
    """pgwarden's or the client's words, without the connection preamble."""
    text = re.sub(r'^.*?(connection to server at "[^"]*", port \d+ failed: |connection failed: )', "", error)
    text = re.sub(r"^(psql: error: |OperationalError: |FATAL:\s+)", "", text.strip())
    text = text.replace("FATAL:  ", "")
    return text if len(text) <= 220 else text[:217] + "..."


def note_for(result: dict) -> str:
    """One note per kind of outcome: for a refusal by design, the words the
    test found in pgwarden's error and the setting that fixes it."""
    expected = result.get("expected", {})
    login = result["ops"]["login"]
    if result["outcome"] == "unsupported":
        return "the client has no direct TLS (PostgreSQL 17's sslnegotiation=direct): " + UNSUPPORTED_PLACEHOLDER
    if result["outcome"] == "refused" and expected.get("outcome") == "refused":
        says = " \u2026 ".join(expected["says"])
        return f"refused by design: \u201c{says}\u201d Fix: {expected['fix']}."
    failed = [f"{op}: {r.get('error') or r.get('value')}" for op, r in result["ops"].items() if not r.get("ok")]
    if result["outcome"] == "refused":
        failed = [login["error"]]
    fault = f" (fault {expected['fault']})" if expected.get("fault") else ""
    return f"fails{fault}: \u201c{shorten('; '.join(failed) or 'a result differs from PostgreSQL')}\u201d"


UNSUPPORTED_PLACEHOLDER = "{unsupported}"


def render(data: dict) -> str:
    dims = data["dimensions"]
    results = data["results"]
    by_key = {}
    notes: dict[str, int] = {}
    for r in results:
        c = r["combo"]
        by_key.setdefault((c["auth"], c["upstream"], c["server_auth"], c["ssl"]), {}).setdefault(c["hop"], []).append(r)

    def mark(r):
        if r["outcome"] == "works":
            return "\u2713"
        n = notes.setdefault(note_for(r), len(notes) + 1)
        symbol = {"refused": "\u2717", "unsupported": "\u2013"}.get(r["outcome"], "FAIL")
        if r["outcome"] == "refused" and r.get("expected", {}).get("outcome") != "refused":
            symbol = "FAIL"
        return f"{symbol}<sup>{n}</sup>"

    def cell(rs):
        if not rs:
            return "\u00b7"
        groups: dict[str, list[str]] = {}
        for r in sorted(rs, key=lambda r: dims["client"].index(r["combo"]["client"])):
            groups.setdefault(mark(r), []).append(SHORT[r["combo"]["client"]])
        if len(groups) == 1 and len(rs) == len(dims["client"]):
            return f"{next(iter(groups))} all"
        return "; ".join(f"{m} {', '.join(names)}" for m, names in groups.items())

    # Rows: the cells of each (auth, upstream.tls, server method, ssl); then
    # neighbours that read the same are merged (ssl on and off, then methods).
    rows = []
    for auth in dims["auth"]:
        for upstream in dims["upstream"]:
            merged: list[tuple[list[str], list[str], tuple]] = []   # (methods, ssl values, cells)
            for server_auth in dims["server_auth"]:
                by_ssl: dict[tuple, list[str]] = {}
                for ssl in dims["ssl"]:
                    hops = by_key.get((auth, upstream, server_auth, ssl))
                    if hops:
                        by_ssl.setdefault(tuple(cell(hops.get(h, [])) for h in dims["hop"]), []).append(ssl)
                for cells, ssls in by_ssl.items():
                    same = next((m for m in merged if m[1] == ssls and m[2] == cells), None)
                    if same:
                        same[0].append(server_auth)
                    else:
                        merged.append(([server_auth], ssls, cells))
            for methods, ssls, cells in merged:
                ssl_text = " or ".join(x.removeprefix("ssl-") for x in ssls)
                rows.append(f"| {AUTH_TITLES[auth]} | {upstream} | {', '.join(methods)}; ssl {ssl_text} | "
                            + " | ".join(cells) + " |")
    lines = ["| auth | upstream.tls | server | " + " | ".join(HOP_TITLES[h] for h in dims["hop"]) + " |",
             "|---|---|---|" + "---|" * len(dims["hop"]), *rows]
    counts = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    summary = (f"{len(results)} combinations ({data['mode']} run): "
               + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ". "
               "\u2713 works (login, query, prepared statement, transaction with rollback, COPY in and out, "
               "cancel of pg_sleep); \u2717 refused at login as noted; \u2013 the client cannot do it; "
               "FAIL a fault.")
    reasons = sorted({r["ops"]["login"]["error"].removeprefix("unsupported: ")
                      for r in results if r["outcome"] == "unsupported"})
    footnotes = [f"{n}. {text.replace(UNSUPPORTED_PLACEHOLDER, '; '.join(reasons))}" for text, n in notes.items()]
    return "\n".join([summary, "", *lines, "", *footnotes])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--readme", type=Path, help=f"replace the text between {BEGIN} and {END} in this file")
    args = parser.parse_args()
    table = render(json.loads(args.results.read_text()))
    if not args.readme:
        print(table)
        return 0
    text = args.readme.read_text()
    if BEGIN not in text or END not in text:
        print(f"{args.readme} has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    args.readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
