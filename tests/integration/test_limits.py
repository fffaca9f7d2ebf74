"""Connection limits and timeouts: each protects running sessions from a
client that takes too much or never finishes, without affecting others."""

import socket
import time

import psycopg
import pytest



@pytest.fixture
def proxy_with(pgwarden_factory, postgres):
    """Starts a pgwarden whose configuration adds `extra` to listen/upstream."""
    def start(extra: str):
        return pgwarden_factory("listen: 127.0.0.1:{listen_port}\n"
                                f"upstream: {{ host: {postgres.host}, port: {postgres.port}, tls: disable }}\n"
                                + extra)
    return start


# The client one past max_client_connections is refused with 53300 while the
# sessions already open keep working; once one closes, a new client gets in.
def test_client_beyond_max_connections_gets_53300(proxy_with):
    proxy = proxy_with("limits: { max_client_connections: 2 }\n")
    first = proxy.endpoint.connect(autocommit=True)
    second = proxy.endpoint.connect(autocommit=True)
    with pytest.raises(psycopg.OperationalError, match="too many clients already"):
        proxy.endpoint.connect()
    assert first.execute("select 1").fetchone() == (1,)
    assert second.execute("select 2").fetchone() == (2,)
    first.close()
    time.sleep(0.2)
    third = proxy.endpoint.connect(autocommit=True)
    assert third.execute("select 3").fetchone() == (3,)
    second.close()
    third.close()


# A client that connects and never sends a startup packet is dropped after
# the startup timeout; a session running meanwhile is untouched.
def test_silent_client_is_dropped_after_startup_timeout(proxy_with):
    proxy = proxy_with("limits: { startup_timeout: 1s }\n")
    busy = proxy.endpoint.connect(autocommit=True)
    silent = socket.create_connection((proxy.endpoint.host, proxy.endpoint.port), timeout=10)
    started = time.monotonic()
    data = b""
    while True:
        chunk = silent.recv(4096)
        if not chunk:
            break
        data += chunk
    waited = time.monotonic() - started
    silent.close()
    assert 0.8 <= waited < 5, waited
    assert data[:1] == b"E", data
    assert b"timeout" in data
    assert busy.execute("select 'still here'").fetchone() == ("still here",)
    busy.close()


# idle_timeout closes only sessions idle outside a transaction, with 57P05;
# a long query and an open transaction are not idle.
def test_idle_timeout_spares_running_queries_and_open_transactions(proxy_with):
    proxy = proxy_with("limits: { idle_timeout: 1s }\n")
    idle = proxy.endpoint.connect(autocommit=True)
    assert idle.execute("select pg_sleep(1.5), 'long query'").fetchone()[1] == "long query"
    in_tx = proxy.endpoint.connect()
    in_tx.execute("select 1")
    time.sleep(2.5)
    assert in_tx.execute("select 'open transaction'").fetchone() == ("open transaction",)
    with pytest.raises(psycopg.OperationalError) as closed:
        idle.execute("select 1")
    assert "idle-session timeout" in str(closed.value)
    in_tx.close()
