#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (small files).

Run from anywhere: ./tests/fuzz/make_corpus.py. Each seed starts with the
selector byte(s) its target expects (see the comment atop each fuzz_*.cpp).
"""
import base64
import gzip
import hashlib
import json
import pathlib
import re
import struct

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


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


# RFC 7677 section 3 (user "user", password "pencil"), as fuzz_scram.cpp replays it.
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SCRAM = {  # selector byte, then the mode's bytes (see the comment atop fuzz_scram.cpp)
    "final_genuine": b"\x00" + RFC_CLIENT_FINAL,
    "final_wrong_proof": b"\x00" + RFC_CLIENT_FINAL[:-6] + b"AAAAA=",
    "final_padding_bits": b"\x00" + RFC_CLIENT_FINAL[:-2] + b"R=",  # same proof: 'Q' and 'R' differ in unused bits
    "final_extension": b"\x00" + RFC_CLIENT_FINAL.replace(b",p=", b",x=ext,p="),
    "final_plus": b"\x0c" + b"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa,"
                  + RFC_CLIENT_FINAL[7:],
    "final_flag_y": b"\x08" + b"c=eSws," + RFC_CLIENT_FINAL[7:],
    "final_unknown_user": b"\x10" + RFC_CLIENT_FINAL,
    "client_first_and_final": b"\x01" + bytes([len(RFC_CLIENT_FIRST)]) + RFC_CLIENT_FIRST + RFC_CLIENT_FINAL,
    "client_first_plus": b"\x25" + b"\x2a" + b"p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO" + b"c=x,r=y,p=z",
    "client_first_no_data": b"\x81" + bytes([len(RFC_CLIENT_FIRST)]) + RFC_CLIENT_FIRST + RFC_CLIENT_FINAL,
    "server_messages": b"\x02" + bytes([len(RFC_SERVER_FIRST)]) + RFC_SERVER_FIRST + RFC_SERVER_FINAL,
    "server_error": b"\x02" + bytes([len(RFC_SERVER_FIRST)]) + RFC_SERVER_FIRST + b"e=invalid-proof",
    "stored_secret": b"\x03SCRAM-SHA-256$4096:d6bDZcR0M1uBrJjh/8fjcg==$K0QJUhOtkF3gr4kaPpGkNTDd0YZ3r4zUQ/TIBddAPII=:"
                     b"jsSYuoNFHUkgR9MK+XQqdZHB+yq2dnw3MRomHZ9+FWo=",
    "md5_answer": b"\x03md5" + b"0" * 32,
}

# Selector 3: the length and protocol version are fixed up by the target.
STARTUP_SETTINGS = {
    "role": [("user", "alice"), ("database", "app"), ("role", "admin")],
    "options": [("user", "alice"), ("options", "-c role=admin --work-mem=1GB -O -S 64 -fs -c search_path=a\\ b")],
    "preload": [("user", "alice"), ("session_preload_libraries", "auto_explain"), ("Search_Path", 'x", public')],
    "quotes": [("user", "alice"), ("application_name", "it's \"mine\""), ("a.b.c", "1"), ("_pq_.x", "y")],
}


def startup_packet(params):
    body = i32(196608) + b"".join(s(k) + s(v) for k, v in params) + b"\0"
    return packet(body)


def chain_lines(bodies):
    """A hash chain as audit/chain.hpp describes it (no HMAC)."""
    prev, lines = "0" * 64, []
    for seq, body in enumerate(bodies, 1):
        line = '{"seq":%d,%s,"prev_hash":"%s"' % (seq, body[1:-1], prev)
        prev = hashlib.sha256((line + "}").encode()).hexdigest()
        lines.append(line + ',"hash":"%s"}\n' % prev)
    return "".join(lines).encode()


CHAIN = chain_lines([
    '{"v":1,"event":"checkpoint","reason":"start","previous_seq":0,"previous_hash":"%s"}' % ("0" * 64),
    '{"v":1,"event":"statement","user":"alice","text":"SELECT 1","decision":"allow"}',
    '{"v":1,"event":"statement","user":"alice","text":"DROP TABLE t","decision":"deny"}',
])


def edit(op, offset, data=b"", n=None):
    return bytes([op]) + struct.pack("!H", offset) + bytes([len(data) if n is None else n]) + data


AUDIT = {  # selector byte, then edits or a whole file (see the comment atop fuzz_audit_verifier.cpp)
    "genuine": b"\x00",
    "genuine_keyed": b"\x02",
    "genuine_gzip": b"\x01",
    "xor_user": b"\x00" + edit(0, 120, b"\x02"),
    "overwrite_second_file": b"\x02" + edit(5, 60, b"carol"),
    "insert_line": b"\x00" + edit(2, 0, b"{}\n"),
    "erase_last_newline": b"\x00" + edit(7, 900, n=1),
    "gzip_header_edit": b"\x01" + edit(0, 4, b"\x01"),
    "file_chain": b"\x04" + CHAIN,
    "file_chain_on_disk": b"\x0c" + CHAIN,
    "file_torn": b"\x0c" + CHAIN[:-20],
    "file_gzip": b"\x0c" + gzip.compress(CHAIN, mtime=0),
}


# Tokens and key sets, as fuzz_jwt.cpp reads them (selector byte first).
def b64url(data): return base64.urlsafe_b64encode(data).rstrip(b"=")


def jws(header, claims, signature):
    return b".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(signature)])


JWT_CLAIMS = {"iss": "https://idp.example", "aud": "pgwarden", "sub": "alice", "exp": 1796640000,
              "iat": 1796637000, "nbf": 1796637000, "groups": ["dba", "oncall"]}
# fuzz_jwt.cpp's fixed identity-provider key set (public keys only).
JWT_FOREIGN_JWKS = (
    '{"keys": [{"kty": "RSA", "kid": "idp-rsa", "n": "qqruOmiW_kEMyInpfm77YtM1ERNyKfhVms3rgyV0sDSRIKR'
    'T9LM5uxeXonvlcNnf73Pc2FLdqXDTDA6dOXLcUqikMqBD1vU3AJRzv2lv6wHBWCTTteN-n_cv0aj0TugHuoQ5qkF9RWmzIWz'
    'R07ziY6BZKtHOIf5uA1-HN6ItjSSl89WPa9-qowviH5bIt1dFYBARLH6vuXLkqX7T_jnHtE_s9qMTsI9Fp8iMfYbu1zFeJ3L'
    'k4OpL5TmdjNn9w3d2258S2mErTm0eoJxL6stN9LPh2xxkYdIOmFEUJ5Cbrt6YtFNhie5jyxPHSC1Lo2Ymqqyij2BcXjm8DxV'
    'tzHntmQ", "e": "AQAB"}, {"kty": "EC", "crv": "P-256", "kid": "idp-ec", "x": "DQwJNU3x7Wq9SH2nB-R'
    'jSxLKZn5RdNcmGmqmQajE22M", "y": "QIx4DEwtQ-Vw0eyDN_YwO68jpKFaDz9EtyC9S7YpoC4"}]}'
).encode()


def jwt_seeds(foreign_jwks):
    fake_rsa = hashlib.sha512(b"rsa").digest() * 4  # 256 bytes, the size of an RS256 signature
    fake_ec = hashlib.sha512(b"ec").digest()         # 64 bytes, r || s
    claims_list = dict(JWT_CLAIMS, aud=["other", "pgwarden"], groups="dba oncall")
    seeds = {
        "foreign_rs256": b"\x00" + jws({"alg": "RS256", "kid": "idp-rsa", "typ": "JWT"}, JWT_CLAIMS, fake_rsa),
        "foreign_es256": b"\x00" + jws({"alg": "ES256", "kid": "idp-ec"}, JWT_CLAIMS, fake_ec),
        "foreign_no_kid": b"\x08" + jws({"alg": "ES256"}, claims_list, fake_ec),
        "alg_none": b"\x00" + jws({"alg": "none"}, JWT_CLAIMS, b""),
        "alg_hs256": b"\x00" + jws({"alg": "HS256", "kid": "idp-rsa"}, JWT_CLAIMS, hashlib.sha256(b"k").digest()),
        "not_a_token": b"\x00hunter2",
        "jwks_foreign": b"\x01" + foreign_jwks,
        "jwks_unsupported": b"\x01" + json.dumps({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
            {"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"}]}).encode(),
    }
    for name, (selector, header, claims) in {
        "own_rs256": (0x02, {"alg": "RS256", "kid": "own-rsa"}, JWT_CLAIMS),
        "own_es256": (0x06, {"alg": "ES256", "kid": "own-ec"}, claims_list),
        "own_roles": (0x0e, {"alg": "ES256"}, dict(JWT_CLAIMS, roles=["juniors"])),
        "own_expired": (0x02, {"alg": "RS256", "kid": "own-rsa"}, dict(JWT_CLAIMS, exp=1796630000)),
        "own_wrong_alg": (0x02, {"alg": "ES256", "kid": "own-rsa"}, JWT_CLAIMS),
    }.items():
        h = json.dumps(header).encode()
        seeds[name] = bytes([selector, len(h)]) + h + json.dumps(claims).encode()
    return seeds


def main():
    for i, text in enumerate(classifier_seeds()):
        write("classifier", f"sql_{i:03d}", text.encode())
    # A deep tree of unary operators: it once overflowed the walker's stack
    # in an instrumented build before its depth bound was reached.
    write("classifier", "deep_operator_chain", b"SELECT " + b"+" * 3000 + b"purge_all()")
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
    for name, data in SCRAM.items():
        write("scram", name, data)
    for name, params in STARTUP_SETTINGS.items():
        write("startup_settings", name, b"\3" + startup_packet(params))
    write("startup_settings", "ssl_request", b"\0" + STARTUP["ssl_request"])
    for name in ("minimal.yaml", "pgwarden.yaml"):
        write("config_loader", name, (ROOT / "examples" / name).read_bytes())
    write("config_loader", "error_positions", b"listen: [127.0.0.1:6432\nupstream: {host: 1, port: x}\nrules:\n - nme: a\n")
    for name, data in AUDIT.items():
        write("audit_verifier", name, data)
    for name, data in jwt_seeds(JWT_FOREIGN_JWKS).items():
        write("jwt", name, data)


if __name__ == "__main__":
    main()
