'use strict';
// node-postgres runs the compatibility matrix's scenario, the same steps and
// values as tests/clients/matrix/scenario.py (read its docstring): one JSON
// line per operation on stdout, driven by tests/integration/test_matrix.py.
//
// Usage: node matrix.js '<json settings>'

const crypto = require('node:crypto');
const fs = require('node:fs');
const { pipeline } = require('node:stream/promises');
const { Readable, Writable } = require('node:stream');
const pg = require('pg');
const copyStreams = require('pg-copy-streams');

const QUERY = "SELECT 40 + 2 AS a, 'caf\u00e9 \u4e2d' AS b";
const PREPARED_LISTED = "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE '%$1::int * 3%'";
const TABLE = 'CREATE TEMP TABLE matrix_rows (id int PRIMARY KEY, v text NOT NULL)';
const COPY_IN_CHECK = "SELECT count(*)::int AS n, md5(string_agg(v, ',' ORDER BY id)) AS md5 FROM matrix_rows WHERE id > 1000";
const CANCEL_AFTER_MS = 300;

function emit(op, ok, fields) {
  process.stdout.write(JSON.stringify({ op, ok, ...fields }) + '\n');
}

async function step(op, body) {
  try {
    emit(op, true, { value: await body() });
  } catch (e) {
    emit(op, false, { error: String(e && e.message ? e.message : e), sqlstate: (e && e.code) || null });
  }
}

function tlsSettings(s) {
  if (s.tls === 'disable') return { ssl: false };
  if (s.tls === 'require') return { ssl: { rejectUnauthorized: false } };
  const ssl = { ca: fs.readFileSync(s.ca), servername: s.servername, rejectUnauthorized: true };
  return s.tls === 'direct' ? { ssl, sslNegotiation: 'direct' } : { ssl };
}

function copyValue(i) {
  return `r${i}\t\\ \u00e9\u4e2d`;
}

function copyInText(rows) {
  let text = '';
  for (let i = 1; i <= rows; i++) {
    text += `${1000 + i}\t${copyValue(i).replace(/\\/g, '\\\\').replace(/\t/g, '\\t')}\n`;
  }
  return Buffer.from(text, 'utf8');
}

async function main() {
  const s = JSON.parse(process.argv[2]);
  const base = {
    host: s.host, port: s.port, user: s.user, database: s.database || s.dbname,
    password: s.password === null ? undefined : s.password, connectionTimeoutMillis: 10000,
  };
  const client = new pg.Client({ ...base, ...tlsSettings(s) });
  try {
    await client.connect();
    const res = await client.query('SELECT current_user AS u');
    emit('login', true, { value: { user: res.rows[0].u, client_tls: client.connection.stream.encrypted === true } });
  } catch (e) {
    emit('login', false, { error: String(e.message || e), sqlstate: e.code || null });
    return;
  }
  await step('query', async () => {
    const r = await client.query({ text: QUERY, rowMode: 'array' });
    return r.rows[0];
  });
  await step('prepared', async () => {
    const results = [];
    for (const i of [1, 2, 3]) {
      const r = await client.query({ name: 'triple', text: 'SELECT $1::int * 3 AS n', values: [i] });
      results.push(r.rows[0].n);
    }
    const listed = (await client.query(PREPARED_LISTED)).rows[0].n >= 1;
    return { results, listed };
  });
  await step('transaction', async () => {
    await client.query(TABLE);
    await client.query('BEGIN');
    await client.query("INSERT INTO matrix_rows VALUES (1, 'kept')");
    await client.query('COMMIT');
    await client.query('BEGIN');
    await client.query("INSERT INTO matrix_rows VALUES (2, 'rolled back')");
    await client.query('ROLLBACK');
    return (await client.query('SELECT id FROM matrix_rows ORDER BY id')).rows.map((r) => r.id);
  });
  await step('copy_in', async () => {
    const stream = client.query(copyStreams.from('COPY matrix_rows (id, v) FROM STDIN'));
    await pipeline(Readable.from([copyInText(s.rows)]), stream);
    const r = (await client.query(COPY_IN_CHECK)).rows[0];
    return { count: r.n, md5: r.md5 };
  });
  await step('copy_out', async () => {
    const digest = crypto.createHash('sha256');
    let lines = 0;
    const sink = new Writable({
      write(chunk, _enc, done) {
        digest.update(chunk);
        for (const b of chunk) if (b === 10) lines++;
        done();
      },
    });
    await pipeline(client.query(copyStreams.to(
      `COPY (SELECT g, md5(g::text) FROM generate_series(1, ${s.rows}) g) TO STDOUT`)), sink);
    return { rows: lines, sha256: digest.digest('hex') };
  });
  await step('cancel', async () => {
    const start = Date.now();
    const query = new pg.Query('SELECT pg_sleep(20)');
    const running = new Promise((resolve) => {
      query.on('end', () => resolve(null));
      query.on('error', (e) => resolve(e));
    });
    client.query(query);
    await new Promise((r) => setTimeout(r, CANCEL_AFTER_MS));
    // node-postgres cancels through a second client with the same settings,
    // which sends the CancelRequest on a connection of its own (plaintext).
    new pg.Client({ ...base, ssl: false }).cancel(client, query);
    const error = await running;
    const seconds = (Date.now() - start) / 1000;
    const after = (await client.query('SELECT 1 AS one')).rows[0].one;
    return { sqlstate: error ? error.code : null, seconds, after };
  });
  await client.end();
}

main().catch((e) => {
  emit('crash', false, { error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
