"""Authentication is relayed unchanged: md5, SCRAM-SHA-256, and the server's
own refusal of a wrong password."""

import struct

import psycopg
import pytest

from harness import (MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER,
                     RawClient, error_fields)

AUTH_OK, AUTH_MD5, AUTH_SASL = 0, 5, 10


def auth_requests(messages):
    return [struct.unpack("!I", p[:4])[0] for k, p in messages if k == b"R"]


# The harness really stored an md5 hash for md5_user and a SCRAM verifier for
# scram_user, so the logins below exercise those two methods.
def test_roles_have_the_expected_password_kinds(admin):
    rows = dict(admin.execute(
        "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (%s, %s)",
        [MD5_USER, SCRAM_USER]).fetchall())
    assert rows[MD5_USER].startswith("md5")
    assert rows[SCRAM_USER].startswith("SCRAM-SHA-256$")


# libpq logs in as md5_user with its password and runs a query.
def test_md5_user_logs_in(target):
    with target.connect(user=MD5_USER, password=MD5_PASSWORD) as conn:
        assert conn.execute("SELECT current_user, 6 * 7").fetchone() == (MD5_USER, 42)


# libpq logs in as scram_user with its password and runs a query.
def test_scram_user_logs_in(target):
    with target.connect(user=SCRAM_USER, password=SCRAM_PASSWORD) as conn:
        assert conn.execute("SELECT current_user, 6 * 7").fetchone() == (SCRAM_USER, 42)


# The server asks md5_user for an md5 password and scram_user for SASL with
# SCRAM-SHA-256: the exchange reaches the client as the server sent it.
@pytest.mark.parametrize("user,password,method", [
    (MD5_USER, MD5_PASSWORD, AUTH_MD5),
    (SCRAM_USER, SCRAM_PASSWORD, AUTH_SASL),
])
def test_server_chosen_method_reaches_the_client(target, user, password, method):
    with RawClient(target) as client:
        seen = client.login(user=user, password=password)
        requests = auth_requests(seen)
        assert requests[0] == method
        assert requests[-1] == AUTH_OK
        if method == AUTH_SASL:
            sasl = next(p for k, p in seen if k == b"R" and p[:4] == struct.pack("!I", AUTH_SASL))
            assert b"SCRAM-SHA-256\0" in sasl[4:]
        assert seen[-1][0] == b"Z"
        assert client.backend_key is not None
        assert client.query("SELECT current_user")[1][1].endswith(user.encode())


# A wrong password gets the server's FATAL 28P01 "password authentication failed".
@pytest.mark.parametrize("user", [MD5_USER, SCRAM_USER])
def test_wrong_password_gets_28P01(target, user):
    with RawClient(target) as client:
        seen = client.login(user=user, password="not-the-password")
        kind, payload = seen[-1]
        assert kind == b"E", seen
        fields = error_fields(payload)
        assert fields["C"] == "28P01"
        assert fields["V"] == "FATAL"
        assert f'password authentication failed for user "{user}"' in fields["M"]
        closed, _ = client.wait_closed(5)
        assert closed


# libpq with a wrong password fails with the server's message.
@pytest.mark.parametrize("user", [MD5_USER, SCRAM_USER])
def test_wrong_password_with_libpq(target, user):
    with pytest.raises(psycopg.OperationalError) as excinfo:
        psycopg.connect(target.dsn(user=user, password="wrong"))
    assert f'password authentication failed for user "{user}"' in str(excinfo.value)


# A role pg_hba rejects gets the server's 28000 refusal, not a hang.
def test_rejected_role_gets_the_server_refusal(target, admin):
    admin.execute("DROP ROLE IF EXISTS nobody_allowed")
    admin.execute("CREATE ROLE nobody_allowed LOGIN")
    with RawClient(target) as client:
        kind, payload = client.login(user="nobody_allowed")[-1]
        assert kind == b"E"
        fields = error_fields(payload)
        assert fields["C"] == "28000"
        assert "pg_hba.conf rejects connection" in fields["M"]


# libpq's default sslmode=prefer first sends an SSLRequest; the server has no
# TLS, so the client gets a plain session as it would directly.
def test_default_sslmode_prefer_gets_a_plain_session(target):
    with psycopg.connect(target.dsn(sslmode="prefer")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (SUPERUSER,)
        assert conn.pgconn.ssl_in_use is False
