"""Tampering with an audit log pgwarden wrote (HMAC key set, rotated into
several files during the run): `pgwarden audit verify` exits 1 and names
the first bad record for an edited field, a deleted line, two swapped lines,
a dropped rotated file, and an edit whose SHA-256 chain was recomputed by
someone without the key."""

from __future__ import annotations

import json
import secrets
import shutil

import pytest

import harness
from audit_helpers import (audit_config, audit_files, edit_lines, failure, line_of_seq, psql, read_records,
                           rechain, verify)

pytestmark = pytest.mark.proxy_only

STATEMENTS = 40


@pytest.fixture(scope="module")
def pristine(postgres, workdir, tmp_path_factory):
    """An audit directory written by pgwarden through psql traffic, rotated
    at 4 KiB, with an HMAC on every record; and the key file."""
    root = tmp_path_factory.mktemp("tamper")
    key = root / "audit.key"
    key.write_text(secrets.token_hex(32) + "\n")
    audit_dir = root / "audit"
    proxy = harness.Pgwarden(workdir, postgres.host, postgres.port, name="pgwarden-tamper")
    proxy.config_path.write_text(audit_config(postgres, audit_dir, hmac_key_file=key, rotate_bytes=4096)
                                 .replace("{listen_port}", str(proxy.port)))
    proxy.start()
    try:
        script = "CREATE TABLE tamper_t (id int, note text);\n" + "".join(
            f"INSERT INTO tamper_t VALUES ({i}, 'row {i}');\n" for i in range(STATEMENTS))
        r = psql(proxy.endpoint, script)
        assert r.returncode == 0, r.stderr
    finally:
        assert proxy.stop() == 0
    files = audit_files(audit_dir)
    assert len(files) >= 4, files
    return audit_dir, key


@pytest.fixture
def copy(pristine, tmp_path):
    """A copy of the pristine log to tamper with: (directory, key file)."""
    audit_dir, key = pristine
    target = tmp_path / "audit"
    shutil.copytree(audit_dir, target)
    return target, key


def middle_statement(audit_dir) -> int:
    """The seq of a statement record in the second file with another
    record after it in the same file (neither a checkpoint)."""
    second = audit_files(audit_dir)[1]
    records = [json.loads(line) for line in second.read_bytes().splitlines()]
    assert records[0]["event"] == "checkpoint" and len(records) >= 5
    assert records[2]["event"] == "statement" and records[3]["event"] == "statement"
    return records[2]["seq"]


# The untouched log verifies, HMACs included, across all its files: the
# baseline that makes every failure below meaningful.
def test_untouched_log_verifies_with_its_key(copy):
    audit_dir, key = copy
    result = verify(audit_dir, hmac_key_file=key)
    assert result.returncode == 0, result.stdout
    records = read_records(audit_dir)
    assert result.stdout == (f"ok: {len(records)} records (seq 1..{records[-1]['seq']}) in "
                             f"{len(audit_files(audit_dir))} files; last hash {records[-1]['hash']}; HMAC verified\n")
    assert sum(r["event"] == "statement" for r in records) == STATEMENTS + 1
    assert [r["reason"] for r in records if r["event"] == "checkpoint"][:2] == ["start", "rotate_size"]


# One field of one record changed (who ran it): verify names that record as edited.
def test_edited_field_is_named(copy):
    audit_dir, key = copy
    seq = middle_statement(audit_dir)
    path, index = line_of_seq(audit_dir, seq)

    def change(lines):
        assert b'"user":"harness"' in lines[index]
        lines[index] = lines[index].replace(b'"user":"harness"', b'"user":"someone"')
    edit_lines(path, change)
    for key_file in (None, key):
        bad_seq, problem, _ = failure(verify(audit_dir, hmac_key_file=key_file))
        assert (bad_seq, problem) == (seq, "edited")
    assert f"FAILED: {path}:{index + 1}: seq {seq}: edited" in verify(audit_dir).stdout


# One line removed from the middle of a file: verify names the missing seq as deleted.
def test_deleted_line_is_named(copy):
    audit_dir, key = copy
    seq = middle_statement(audit_dir)
    path, index = line_of_seq(audit_dir, seq)
    edit_lines(path, lambda lines: lines.pop(index))
    bad_seq, problem, message = failure(verify(audit_dir, hmac_key_file=key))
    assert (bad_seq, problem) == (seq, "deleted")
    assert f"record {seq} is missing" in message


# The last record of a rotated file removed: the next file's checkpoint
# still names it, so verify reports it deleted from the end of that file.
def test_deleted_last_line_of_a_rotated_file_is_named(copy):
    audit_dir, key = copy
    first = audit_files(audit_dir)[0]
    last_seq = json.loads(first.read_bytes().splitlines()[-1])["seq"]
    edit_lines(first, lambda lines: lines.pop())
    bad_seq, problem, message = failure(verify(audit_dir, hmac_key_file=key))
    assert (bad_seq, problem) == (last_seq, "deleted")
    assert "deleted from its end" in message


# Two adjacent lines swapped: the first record out of place (the later one,
# now in front) is named as reordered.
def test_swapped_lines_are_named(copy):
    audit_dir, key = copy
    seq = middle_statement(audit_dir)
    path, index = line_of_seq(audit_dir, seq)

    def swap(lines):
        lines[index], lines[index + 1] = lines[index + 1], lines[index]
    edit_lines(path, swap)
    bad_seq, problem, _ = failure(verify(audit_dir, hmac_key_file=key))
    assert (bad_seq, problem) == (seq + 1, "reordered")


# A whole rotated file removed from the middle of the sequence: the next
# file's checkpoint names it, and verify reports the first seq it held.
def test_dropped_rotated_file_is_named(copy):
    audit_dir, key = copy
    dropped = audit_files(audit_dir)[1]
    first_seq = json.loads(dropped.read_bytes().splitlines()[0])["seq"]
    dropped.unlink()
    bad_seq, problem, message = failure(verify(audit_dir, hmac_key_file=key))
    assert (bad_seq, problem) == (first_seq, "missing file")
    assert dropped.name in message


# A record changed and the SHA-256 chain recomputed from there on, across
# the following files, by someone without the HMAC key: without the key
# the chain looks intact (that is what an attacker achieves); with it,
# verify names the edited record as an HMAC mismatch.
def test_rehashed_edit_without_the_key_is_named(copy):
    audit_dir, key = copy
    seq = middle_statement(audit_dir)
    path, index = line_of_seq(audit_dir, seq)

    def change(lines):
        lines[index] = lines[index].replace(b'"decision":"allow"', b'"decision":"deny"')
    edit_lines(path, change)
    rechain(audit_dir, seq)
    unkeyed = verify(audit_dir)
    assert unkeyed.returncode == 0, unkeyed.stdout
    assert "note: records carry an HMAC that was not checked" in unkeyed.stdout
    bad_seq, problem, _ = failure(verify(audit_dir, hmac_key_file=key))
    assert (bad_seq, problem) == (seq, "hmac mismatch")
