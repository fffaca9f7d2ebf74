"""What a client sees before its session starts that the four fault tests
(test_faults.py) do not cover: a protocol version PostgreSQL does not speak,
and a cancel that must carry pgwarden's key, not the server's, now that the
client sees its server's process id."""

from __future__ import annotations

import pytest

import harness
from harness import SUPERUSER, RawClient, error_fields, startup_packet

pytestmark = pytest.mark.proxy_only


# A protocol version neither speaks is refused with FATAL 0A000 by both.
def test_unsupported_protocol_version_gets_0A000(pgwarden, postgres):
    for endpoint in (postgres.endpoint, pgwarden.endpoint):
        with RawClient(endpoint) as c:
            c.send(startup_packet({"user": SUPERUSER}, version=4 << 16))
            kind, payload = c.read_message()
            assert kind == b"E"
            fields = error_fields(payload)
            assert (fields["V"], fields["C"]) == ("FATAL", "0A000")
            assert fields["M"].startswith("unsupported frontend protocol 4.0: server supports 3.0 to ")
            assert c.wait_closed()[0]


# A cancel still goes through pgwarden's own key: the key one bit off, or the
# key with another pid, cancels nothing; the pair the client got does.
def test_cancel_needs_pgwardens_key_not_the_servers(pgwarden):
    with RawClient(pgwarden.endpoint) as c:
        c.login()
        pid, key = c.backend_key
        assert c.query("SELECT pg_backend_pid()")[1][1].endswith(str(pid).encode())
        for wrong in ((pid, key ^ 1), (pid + 1, key)):
            thread = harness.cancel_later(pgwarden.endpoint, wrong, delay=0.3)
            reply = c.query("SELECT pg_sleep(1)")
            thread.join()
            assert all(kind != b"E" for kind, _ in reply), reply
        thread = harness.cancel_later(pgwarden.endpoint, (pid, key), delay=0.3)
        reply = c.query("SELECT pg_sleep(10)")
        thread.join()
        errors = [error_fields(p) for kind, p in reply if kind == b"E"]
        assert errors and errors[0]["C"] == "57014"
