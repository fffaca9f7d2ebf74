"""Protocol version negotiation: a client asking for a newer minor version
or for `_pq_.` options it hopes the server knows is answered with
NegotiateProtocolVersion, as PostgreSQL answers it, and the session and its
cancel key work as usual afterwards."""

import struct
import time

from harness import SUPERUSER, RawClient, cancel_later, error_fields, startup_packet

PROTOCOL_3_2 = (3 << 16) | 2


def negotiate_fields(payload: bytes) -> tuple[int, list[str]]:
    """NegotiateProtocolVersion: Int32 newest version, Int32 n, String[n] options.
    PostgreSQL sends the whole version code there (3 << 16 | minor)."""
    newest, count = struct.unpack("!II", payload[:8])
    names = [n.decode() for n in payload[8:].split(b"\0")[:count]]
    return newest, names


# A protocol 3.2 client (what PostgreSQL 18's libpq can ask for) with an
# unknown _pq_ option: PostgreSQL 15 behind pgwarden answers with
# NegotiateProtocolVersion (newest version 3.0, the option named as unknown),
# and the login completes.
def test_newer_minor_version_and_unknown_option_are_negotiated(target):
    with RawClient(target) as client:
        client.send(startup_packet({"user": SUPERUSER, "database": "postgres", "_pq_.future_option": "on"},
                                   version=PROTOCOL_3_2))
        seen = []
        while True:
            kind, payload = client.read_message()
            seen.append((kind, payload))
            if kind in (b"Z", b"E"):
                break
        kinds = [k for k, _ in seen]
        assert b"v" in kinds, kinds
        assert kinds.index(b"v") < kinds.index(b"R"), "negotiation precedes authentication"
        newest, names = negotiate_fields(dict(seen)[b"v"])
        assert newest == 3 << 16
        assert names == ["_pq_.future_option"]
        assert kinds[-1] == b"Z"
        result = client.query("SELECT 6 * 7")
        assert any(k == b"D" and p.endswith(b"42") for k, p in result)


# After that negotiation the cancel key the client was given still cancels
# its own running query (and nothing else).
def test_cancel_works_after_negotiation(target):
    with RawClient(target, timeout=30) as client:
        client.send(startup_packet({"user": SUPERUSER, "database": "postgres", "_pq_.future_option": "on"},
                                   version=PROTOCOL_3_2))
        key = None
        while True:
            kind, payload = client.read_message()
            if kind == b"K":
                key = struct.unpack("!II", payload)
            if kind == b"Z":
                break
        assert key is not None

        canceller = cancel_later(target, key)
        started = time.monotonic()
        result = client.query("SELECT pg_sleep(20)")
        canceller.join()
        errors = [error_fields(p) for k, p in result if k == b"E"]
        assert errors and errors[0]["C"] == "57014", result
        assert time.monotonic() - started < 10
