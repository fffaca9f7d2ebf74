"""psql scripts give byte-identical output through pgwarden and directly.

Each script runs twice on an emptied database, once against PostgreSQL and
once against the target; the output (stdout and stderr as one stream) and the
exit status must match exactly (only the port number is normalised).
"""

import os
import re
import subprocess

import pytest

from harness import SUPERUSER, client_env

DB = "psqltest"

SCRIPTS = {
    "ddl_dml": (r"""
\conninfo
CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                   tags text[], meta jsonb, data bytea, seen timestamptz);
CREATE INDEX item_name ON item (name);
INSERT INTO item VALUES
  (1, 'apple', 1.25, '{red,fruit}', '{"origin": "NZ"}', '\x00ff10', '2024-01-02 03:04:05+00'),
  (2, 'bread', 3.50, '{}', '{"gluten": true}', NULL, NULL),
  (3, 'café ☕', NULL, '{hot,"with space"}', 'null', '\x', '1999-12-31 23:59:59.999+00');
SELECT * FROM item ORDER BY id;
UPDATE item SET price = price * 2 WHERE price IS NOT NULL RETURNING id, price;
DELETE FROM item WHERE id = 2 RETURNING *;
ALTER TABLE item ADD COLUMN stock int DEFAULT 7;
CREATE VIEW cheap AS SELECT id, name FROM item WHERE price < 10;
SELECT * FROM cheap;
\d item
\x on
SELECT * FROM item WHERE id = 1;
\x off
\pset format csv
SELECT id, name, tags FROM item ORDER BY id;
\pset format aligned
SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 3000) g;
SELECT 'SELECT count(*) AS n_' || relname || ' FROM ' || relname
  FROM pg_class WHERE relname IN ('item') \gexec
SELECT count(*) AS total, sum(id) AS ids FROM item \gset
\echo total :total ids :ids
DROP VIEW cheap;
DROP TABLE item;
""", ["apple", "café ☕", "Table \"public.item\"", "n_item", "total 2 ids 4", "3000"]),

    "errors": (r"""
SELECT 1 +;
SELECT 1/0;
SELECT * FROM no_such_table;
CREATE TABLE u (k int PRIMARY KEY);
INSERT INTO u VALUES (1);
INSERT INTO u VALUES (1);
SELECT nosuchcolumn FROM u;
SELECT 'abc'::int;
\set VERBOSITY verbose
SELECT 1/0;
INSERT INTO u VALUES (1);
DO $$ BEGIN RAISE EXCEPTION 'custom failure %', 42 USING DETAIL = 'some detail', HINT = 'some hint', ERRCODE = 'P0042'; END $$;
\set VERBOSITY default
CREATE FUNCTION f(x int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 10 / x; END $$;
SELECT f(0);
\echo last error :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
SELECT 'still connected' AS status;
DROP FUNCTION f;
DROP TABLE u;
""", ["syntax error", "division by zero", "duplicate key value", "22012", "P0042",
      "custom failure 42", "still connected", "PL/pgSQL function f(integer)"]),

    "copy": (r"""
CREATE TABLE c (id int, label text, amount numeric);
COPY c FROM STDIN;
1	one	1.5
2	two	\N
3	tab\there	3
\.
COPY c FROM STDIN WITH (FORMAT csv, HEADER true);
id,label,amount
4,"quoted, comma",4.25
5,"line
break",5
\.
COPY c TO STDOUT;
COPY c TO STDOUT WITH (FORMAT csv, HEADER true);
COPY (SELECT id, upper(label) FROM c ORDER BY id DESC) TO STDOUT;
\copy c to '@DIR@/c.tsv'
CREATE TABLE c2 (LIKE c);
\copy c2 from '@DIR@/c.tsv'
SELECT count(*), sum(id) FROM c2;
COPY c FROM STDIN;
6	six	6
7	seven	not-a-number
\.
SELECT count(*) FROM c;
\copy c from '@DIR@/does-not-exist.tsv'
\copy (SELECT g, g * g FROM generate_series(1, 5000) g) to '@DIR@/big.tsv'
CREATE TABLE big (a int, b int);
\copy big from '@DIR@/big.tsv'
SELECT count(*), sum(b) FROM big;
DROP TABLE c, c2, big;
""", ["tab\\there", "quoted, comma", "COPY 5", "invalid input syntax for type numeric",
      "COPY c, line 2", "41679167500"]),

    "notices": (r"""
DROP TABLE IF EXISTS not_there;
DO $$ BEGIN RAISE NOTICE 'hello %', 'world'; END $$;
DO $$ BEGIN RAISE WARNING 'careful'; RAISE INFO 'fyi'; END $$;
DO $$ BEGIN RAISE NOTICE 'with extras' USING DETAIL = 'd', HINT = 'h'; END $$;
CREATE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN RAISE NOTICE 'row %', i; RETURN i * 10; END $$;
SELECT noisy(g) FROM generate_series(1, 5) g;
SET client_min_messages = warning;
DO $$ BEGIN RAISE NOTICE 'hidden'; RAISE WARNING 'shown'; END $$;
RESET client_min_messages;
DO $$ BEGIN FOR i IN 1..300 LOOP RAISE NOTICE 'bulk %', i; END LOOP; END $$;
DROP FUNCTION noisy;
""", ["NOTICE:  hello world", "WARNING:  careful", "INFO:  fyi", "DETAIL:  d", "HINT:  h",
      "row 5", "bulk 300", "does not exist, skipping", "shown"]),

    "multi_statement": (r"""
CREATE TABLE m (v int);
SELECT 1 AS a \; SELECT 2 AS b \; SELECT 3 AS c;
INSERT INTO m VALUES (1) \; INSERT INTO m VALUES (2) \; SELECT count(*) AS after_two FROM m;
INSERT INTO m VALUES (3) \; SELECT 1/0 \; INSERT INTO m VALUES (4);
SELECT array_agg(v ORDER BY v) AS implicit_tx_rolled_back FROM m;
BEGIN \; INSERT INTO m VALUES (5) \; COMMIT \; SELECT count(*) AS five FROM m;
SELECT 'a' \; DO $$ BEGIN RAISE NOTICE 'between'; END $$ \; SELECT 'b';
;
SELECT '' \; ;
DROP TABLE m;
""", ["after_two", "division by zero", "{1,2}", "between"]),

    "transactions": (r"""
CREATE TABLE t (v int UNIQUE);
BEGIN;
INSERT INTO t VALUES (1);
INSERT INTO t VALUES (1);
SELECT * FROM t;
COMMIT;
SELECT count(*) AS after_failed_tx FROM t;
BEGIN;
INSERT INTO t VALUES (10);
SAVEPOINT s1;
INSERT INTO t VALUES (10);
ROLLBACK TO SAVEPOINT s1;
INSERT INTO t VALUES (11);
RELEASE SAVEPOINT s1;
COMMIT;
SELECT array_agg(v ORDER BY v) AS kept FROM t;
BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY;
SHOW transaction_isolation;
INSERT INTO t VALUES (99);
ROLLBACK;
PREPARE ins(int) AS INSERT INTO t VALUES ($1);
EXECUTE ins(20);
EXECUTE ins(20);
DEALLOCATE ins;
BEGIN;
DECLARE cur CURSOR FOR SELECT g FROM generate_series(1, 10) g;
FETCH 3 FROM cur;
FETCH 3 FROM cur;
CLOSE cur;
COMMIT;
COMMIT;
ROLLBACK;
\echo :ERROR
SELECT array_agg(v ORDER BY v) AS final FROM t;
DROP TABLE t;
""", ["current transaction is aborted", "after_failed_tx", "{10,11}", "read-only transaction",
      "there is no transaction in progress", "{10,11,20}"]),
}


def normalise(text: str, port: int) -> str:
    return re.sub(rf'(port "?){port}\b', r"\1PORT", text)


@pytest.fixture(scope="module", autouse=True)
def database(postgres):
    postgres.psql_admin(f"CREATE DATABASE {DB}")


def run_psql(endpoint, args, postgres):
    # An empty schema for every run, so both runs start from the same state.
    postgres.psql_admin("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;", DB)
    r = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=0", "-h", endpoint.host,
                        "-p", str(endpoint.port), "-U", SUPERUSER, "-d", DB] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                       env=client_env(PGSSLMODE="disable"))
    # One stream, so the order of results, errors and notices is compared too.
    return r.returncode, normalise(r.stdout.decode("utf-8", "replace"), endpoint.port)


# Each psql script (DDL and DML, errors, COPY and \copy, notices,
# multi-statement strings, transactions with errors) prints exactly what it
# prints when connected to PostgreSQL directly.
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_output_identical(name, target, direct, postgres, tmp_path):
    text, expected = SCRIPTS[name]
    script = tmp_path / f"{name}.sql"
    script.write_text(text.replace("@DIR@", str(tmp_path)))
    want = run_psql(direct, ["-f", str(script)], postgres)
    got = run_psql(target, ["-f", str(script)], postgres)
    # The reference run did what the script is about (so equality means something).
    for marker in expected:
        assert marker in want[1], f"{marker!r} missing from the direct run"
    assert "could not connect" not in want[1] + got[1]
    assert got[1] == want[1], "output differs"
    assert got[0] == want[0], "exit status differs"


# psql -c with several statements sends them as one simple Query: every
# result, and the error that aborts the rest, come back as directly.
def test_multi_statement_command_identical(target, direct, postgres):
    cmd = ("CREATE TABLE x (v int); INSERT INTO x VALUES (1), (2); "
           "SELECT sum(v) FROM x; SELECT v / 0 FROM x; SELECT 'unreached'")
    want = run_psql(direct, ["-c", cmd], postgres)
    got = run_psql(target, ["-c", cmd], postgres)
    assert "division by zero" in want[1]
    assert "unreached" not in want[1]
    assert got == want


FUNCTION_CALL_ALLOWED = """listen: 127.0.0.1:{listen_port}
upstream: { host: @HOST@, port: @PORT@ }
rules:
  - { name: fastpath-allowed, when: { protocol: function_call }, action: allow }
default: allow
"""


# psql's \lo_import and \lo_export (libpq's large-object calls, sent with the
# FunctionCall message) store and fetch a 3 MB file unchanged. pgwarden
# refuses FunctionCall unless a rule allows it, so its proxy here has one.
def test_large_object_round_trip(target, postgres, tmp_path, pgwarden_factory):
    if target.kind == "proxy":
        target = pgwarden_factory(FUNCTION_CALL_ALLOWED.replace("@HOST@", postgres.host)
                                  .replace("@PORT@", str(postgres.port))).endpoint
    original = tmp_path / "original.bin"
    original.write_bytes(os.urandom(3 << 20))
    exported = tmp_path / "exported.bin"
    script = tmp_path / "lo.sql"
    script.write_text(f"\\lo_import '{original}'\n"
                      f"\\lo_export :LASTOID '{exported}'\n"
                      "SELECT count(*) AS objects FROM pg_largeobject_metadata;\n"
                      "\\lo_unlink :LASTOID\n")
    rc, out = run_psql(target, ["-f", str(script)], postgres)
    assert rc == 0, out
    assert re.search(r"^lo_import \d+$", out, re.MULTILINE), out
    assert "lo_export" in out and "lo_unlink" in out, out
    assert exported.read_bytes() == original.read_bytes()
