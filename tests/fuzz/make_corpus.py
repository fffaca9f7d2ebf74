#!/usr/bin/env python3
"""Writes the seed corpora of the protocol fuzz targets (small binary files).

Run from anywhere: ./tests/fuzz/make_corpus.py. Each seed starts with the
selector byte(s) its target expects (see the comment atop each fuzz_*.cpp).
"""
import pathlib
import re
import struct

HERE = pathlib.Path(__file__).resolve().parent


def i16(v): return struct.pack("!h", v)
def u16(v): return struct.pack("!H", v)
def i32(v): return struct.pack("!i", v)
def s(v): return v.encode() + b"\0"


def msg(t, body=b""):
    return t.encode() + i32(len(body) + 4) + body


def packet(body):
    return i32(len(body) + 4) + body


def values(vals):
    out = u16(len(vals))
    for v in vals:
        out += i32(-1) if v is None else i32(len(v)) + v
    return out


FRONTEND = {
    "query": msg("Q", s("SELECT 1; SELECT 2")),
    "parse": msg("P", s("s1") + s("SELECT $1::int") + u16(1) + i32(23)),
    "bind": msg("B", s("") + s("s1") + u16(1) + i16(0) + values([b"42", None]) + u16(1) + i16(1)),
    "describe": msg("D", b"S" + s("s1")),
    "execute": msg("E", s("") + i32(0)),
    "close": msg("C", b"P" + s("p1")),
    "sync": msg("S"),
    "flush": msg("H"),
    "function_call": msg("F", i32(764) + u16(1) + i16(1) + values([b"\0\0\0\1"]) + i16(1)),
    "copy_data": msg("d", b"1\talice\n"),
    "copy_done": msg("c"),
    "copy_fail": msg("f", s("aborted")),
    "terminate": msg("X"),
    "password": msg("p", s("md5a3556571e93b0d20722ba62be61e8c2d")),
}
FRONTEND_P = {  # selector low bits: 1 SASLInitialResponse, 2 SASLResponse, 3 GSSResponse
    "sasl_initial": (1, msg("p", s("SCRAM-SHA-256") + i32(11) + b"n,,n=,r=abc")),
    "sasl_response": (2, msg("p", b"c=biws,r=abc,p=xyz")),
    "gss_response": (3, msg("p", b"\x60\x82\0\1")),
}
STARTUP = {
    "startup": packet(i32(196608) + s("user") + s("alice") + s("database") + s("app") + b"\0"),
    "ssl_request": packet(i32(80877103)),
    "gssenc_request": packet(i32(80877104)),
    "cancel_30": packet(i32(80877102) + i32(4242) + b"\1\2\3\4"),
    "cancel_32": packet(i32(80877102) + i32(4242) + b"k" * 32),
}
BACKEND = {
    "auth_ok": msg("R", i32(0)),
    "auth_md5": msg("R", i32(5) + b"salt"),
    "auth_sasl": msg("R", i32(10) + s("SCRAM-SHA-256-PLUS") + s("SCRAM-SHA-256") + b"\0"),
    "auth_sasl_continue": msg("R", i32(11) + b"r=abc,s=c2FsdA==,i=4096"),
    "auth_sasl_final": msg("R", i32(12) + b"v=c2ln"),
    "auth_gss_continue": msg("R", i32(8) + b"token"),
    "backend_key": msg("K", i32(4242) + b"\1\2\3\4"),
    "parameter_status": msg("S", s("server_version") + s("15.6")),
    "ready": msg("Z", b"I"),
    "row_description": msg("T", u16(2) + s("id") + i32(16384) + i16(1) + i32(23) + i16(4) + i32(-1) + i16(0)
                           + s("name") + i32(16384) + i16(2) + i32(25) + i16(-1) + i32(-1) + i16(0)),
    "data_row": msg("D", values([b"1", None, b"alice"])),
    "command_complete": msg("C", s("SELECT 3")),
    "error": msg("E", b"S" + s("ERROR") + b"V" + s("ERROR") + b"C" + s("42501") + b"M" + s("denied") + b"\0"),
    "notice": msg("N", b"S" + s("NOTICE") + b"M" + s("hi") + b"\0"),
    "notification": msg("A", i32(77) + s("jobs") + s("payload")),
    "parameter_description": msg("t", u16(2) + i32(23) + i32(25)),
    "parse_complete": msg("1"),
    "bind_complete": msg("2"),
    "close_complete": msg("3"),
    "no_data": msg("n"),
    "portal_suspended": msg("s"),
    "empty_query": msg("I"),
    "copy_in": msg("G", b"\0" + u16(2) + i16(0) + i16(0)),
    "copy_out": msg("H", b"\1" + u16(1) + i16(1)),
    "copy_both": msg("W", b"\0" + u16(0)),
    "copy_data": msg("d", b"row\n"),
    "copy_done": msg("c"),
    "negotiate": msg("v", i32(0) + i32(1) + s("_pq_.x")),
    "function_result": msg("V", i32(4) + b"\0\0\0\7"),
}


def write(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


SQL_TEXTS = {
    "sjis_hidden_drop": (5, b"SELECT E'\x95\x5c'; DROP TABLE t; --'"),
    "sjis_katakana": (5, b"SELECT E'\xb1\\''"),
    "latin1": (1, b"SELECT 'caf\xe9'"),
    "gbk": (8, b"SELECT '\xd6\xd0'"),
    "gb18030_four_bytes": (10, b"SELECT '\x81\x30\x81\x30'"),
    "euc_jp": (3, b"SELECT '\xa4\xa2'"),
}


def classifier_seeds():
    """Every SQL text of the classifier's corpus (every command family, every
    syntax that calls a function, every effect outside the classes) and of
    its syntax table."""
    data = HERE.parents[1] / "tests" / "data" / "classifier" / "corpus.txt"
    texts = []
    for line in data.read_text().splitlines():
        if line.startswith(">> ") and texts:
            texts[-1] += "\n" + line[3:]
        elif line.startswith("> "):
            texts.append(line[2:])
    table = (HERE.parents[1] / "tests" / "unit" / "classifier_test.cpp").read_text()
    texts += re.findall(r'^    \{"[^"]*", "((?:[^"\\]|\\.)*)"', table, re.M)
    return texts


def main():
    for i, text in enumerate(classifier_seeds()):
        write("classifier", f"sql_{i:03d}", text.encode())
    for name, m in FRONTEND.items():
        write("frontend_parser", name, b"\0" + m)
    for name, (kind, m) in FRONTEND_P.items():
        write("frontend_parser", name, bytes([kind]) + m)
    for name, p in STARTUP.items():
        write("frontend_parser", name, b"\4" + p)
        write("framer", "startup_" + name, b"\0\7" + p)
    write("frontend_parser", "stream_extended",
          b"\x08" + b"".join(FRONTEND[k] for k in ("parse", "bind", "describe", "execute", "sync")))
    for name, m in BACKEND.items():
        write("backend_parser", name, b"\0" + m)
    result = b"".join(BACKEND[k] for k in ("row_description", "data_row", "data_row", "command_complete", "ready"))
    write("backend_parser", "stream_result", b"\1" + result)
    login = b"".join(BACKEND[k] for k in ("auth_ok", "parameter_status", "backend_key", "ready"))
    for config in range(16):  # every whole-type set and size cap
        write("framer", f"result_{config:02d}", bytes([config, 13]) + result)
    write("framer", "login", b"\0\x21" + login)
    write("framer", "extended_batch", b"\1\x55" + b"".join(FRONTEND[k] for k in FRONTEND))
    write("framer", "negative_length", b"\0\1" + b"D\xff\xff\xff\xff")
    write("framer", "two_gib", b"\2\1" + b"D\x80\0\0\0")
    # Selector = index into fuzz_client_encoding.cpp's list of encodings.
    for name, (index, text) in SQL_TEXTS.items():
        write("client_encoding", name, bytes([index]) + text)


if __name__ == "__main__":
    main()
