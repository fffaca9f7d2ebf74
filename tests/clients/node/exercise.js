'use strict';
// node-postgres through pgwarden with TLS verified against the test CA.
// Runs queries, a named prepared statement, a committed and a rolled-back
// transaction, COPY FROM STDIN and COPY TO STDOUT (pg-copy-streams), then a
// plaintext connection attempt, and prints one JSON object with what it saw
// for tests/integration/test_drivers_tls.py to check.
//
// Usage: node exercise.js '<json settings>'
//   settings: host, port, user, password (or null), database, ca (path),
//             servername, table (created empty by the caller: id int primary
//             key, v text), copy_rows (rows to COPY in).
// Exit status 0 with the result on stdout; 1 with {"error": ...} on stdout.

const crypto = require('node:crypto');
const fs = require('node:fs');
const { pipeline } = require('node:stream/promises');
const { Readable, Writable } = require('node:stream');
const pg = require('pg');
const copyStreams = require('pg-copy-streams');

const CONNECT_TIMEOUT_MS = 10000;
const COPY_CHUNK_BYTES = 4093; // odd size: rows straddle CopyData messages

function connectionSettings(settings, ssl) {
  return {
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password === null ? undefined : settings.password,
    database: settings.database,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ssl,
  };
}

function verifiedTls(settings) {
  return { ca: fs.readFileSync(settings.ca), servername: settings.servername, rejectUnauthorized: true };
}

// The row the COPY test writes for id `i`: text that needs COPY escaping
// (a tab and a backslash) and multi-byte characters.
function copyValue(i) {
  return `row ${i}\tsha=${crypto.createHash('sha256').update(String(i)).digest('hex')}\\ \u00e9\u4e2d`;
}

function escapeCopyText(value) {
  return value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
}

async function identity(client) {
  const socket = client.connection.stream;
  const peer = socket.getPeerCertificate();
  const res = await client.query(
    'SELECT current_user AS user, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  return {
    current_user: res.rows[0].user,
    backend_ssl: res.rows[0].ssl,
    backend_tls_version: res.rows[0].version,
    client_encrypted: socket.encrypted === true,
    client_authorized: socket.authorized === true,
    client_tls_version: socket.getProtocol(),
    peer_fingerprint256: peer.fingerprint256,
  };
}

async function queries(client, table) {
  const simple = await client.query('SELECT 40 + 2 AS answer');
  const params = await client.query('SELECT $1::int * 2 AS doubled, $2::text AS echoed', [21, 'caf\u00e9 \u4e2d']);
  const multi = await client.query('SELECT 1 AS a; SELECT 2 AS b');
  let error = null;
  try {
    await client.query('SELECT 1 / 0');
  } catch (e) {
    error = e.code;
  }
  const after = await client.query('SELECT count(*)::int AS n FROM ' + table);
  return {
    simple: simple.rows[0].answer,
    params: [params.rows[0].doubled, params.rows[0].echoed],
    multi: multi.map((r) => r.rows[0]),
    error_code: error,
    usable_after_error: after.rows[0].n,
  };
}

async function preparedStatement(client, table) {
  await client.query(`INSERT INTO ${table} (id, v) VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  const results = [];
  for (const id of [3, 1, 2]) {
    const res = await client.query({ name: 'pgw_by_id', text: `SELECT v FROM ${table} WHERE id = $1`, values: [id] });
    results.push(res.rows[0].v);
  }
  const seen = await client.query(
    "SELECT statement, parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'pgw_by_id'");
  await client.query(`DELETE FROM ${table}`);
  return { results, server_statement: seen.rows[0]?.statement ?? null, server_types: seen.rows[0]?.types ?? null };
}

async function transactions(client, table) {
  await client.query('BEGIN');
  await client.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [-1, 'committed']);
  await client.query('COMMIT');
  await client.query('BEGIN');
  await client.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [-2, 'rolled back']);
  const inside = await client.query(`SELECT count(*)::int AS n FROM ${table}`);
  await client.query('ROLLBACK');
  const outside = await client.query(`SELECT count(*)::int AS n FROM ${table}`);
  return { rows_inside: inside.rows[0].n, rows_after: outside.rows[0].n };
}

async function copyIn(client, table, rows) {
  let text = '';
  for (let i = 1; i <= rows; i++) text += `${i}\t${escapeCopyText(copyValue(i))}\n`;
  const bytes = Buffer.from(text, 'utf8');
  const chunks = [];
  for (let at = 0; at < bytes.length; at += COPY_CHUNK_BYTES) chunks.push(bytes.subarray(at, at + COPY_CHUNK_BYTES));
  const stream = client.query(copyStreams.from(`COPY ${table} (id, v) FROM STDIN`));
  await pipeline(Readable.from(chunks), stream);
  return { row_count: stream.rowCount, bytes: bytes.length };
}

async function copyOut(client, table) {
  const received = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      received.push(chunk);
      done();
    },
  });
  const stream = client.query(copyStreams.to(`COPY (SELECT id, v FROM ${table} ORDER BY id) TO STDOUT`));
  await pipeline(stream, sink);
  const data = Buffer.concat(received);
  const lines = data.toString('utf8').split('\n').filter((l) => l.length > 0);
  return {
    row_count: stream.rowCount,
    lines: lines.length,
    sha256: crypto.createHash('sha256').update(data).digest('hex'),
    first: lines[0] ?? null,
    last: lines[lines.length - 1] ?? null,
  };
}

// A plaintext connection to a pgwarden with tls.required: the error it gets.
async function plaintextAttempt(settings) {
  const client = new pg.Client(connectionSettings(settings, false));
  try {
    await client.connect();
    await client.end();
    return { refused: false };
  } catch (e) {
    return { refused: true, code: e.code ?? null, message: e.message };
  }
}

async function run(settings) {
  const client = new pg.Client(connectionSettings(settings, verifiedTls(settings)));
  await client.connect();
  try {
    const result = { identity: await identity(client) };
    result.queries = await queries(client, settings.table);
    result.prepared = await preparedStatement(client, settings.table);
    result.transactions = await transactions(client, settings.table);
    result.copy_in = await copyIn(client, settings.table, settings.copy_rows);
    result.copy_out = await copyOut(client, settings.table);
    result.plaintext = await plaintextAttempt(settings);
    return result;
  } finally {
    await client.end();
  }
}

async function main() {
  const settings = JSON.parse(process.argv[2]);
  try {
    const result = await run(settings);
    process.stdout.write(JSON.stringify({ versions: versions(), ...result }) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: e.message, code: e.code ?? null, stack: e.stack }) + '\n');
    process.exitCode = 1;
  }
}

function versions() {
  return {
    node: process.versions.node,
    pg: require('pg/package.json').version,
    'pg-copy-streams': require('pg-copy-streams/package.json').version,
  };
}

main();
