'use strict';
// node-postgres features beyond the matrix's scenario, driven by
// tests/integration/test_tools.py and test_faults.py. Prints one JSON object.
//
// Usage: node tools.js '<json settings>'
//   settings: mode (pid | cursor | stream), host, port, user, database, rows.
//   pid:    the driver's processID, pg_backend_pid() and the pid of a NOTIFY
//           this session sends itself.
//   cursor: pg-cursor reads `rows` rows 100 at a time (a portal suspended
//           and resumed), then the session runs another query.
//   stream: pg-query-stream streams `rows` rows with backpressure (a slow
//           consumer), then the session runs another query.

const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { Writable } = require('node:stream');
const pg = require('pg');
const Cursor = require('pg-cursor');
const QueryStream = require('pg-query-stream');

const ROWS_SQL = 'SELECT g AS n, md5(g::text) AS h FROM generate_series(1, $1::int) g';

async function pid(client) {
  const notified = new Promise((resolve) => client.once('notification', resolve));
  await client.query('LISTEN tools_pid');
  await client.query("NOTIFY tools_pid, 'self'");
  const msg = await notified;
  const backend = (await client.query('SELECT pg_backend_pid() AS p')).rows[0].p;
  return { process_id: client.processID, backend_pid: backend, notify_pid: msg.processId };
}

function digestOf(rows) {
  const h = crypto.createHash('sha256');
  for (const r of rows) h.update(`${r.n}:${r.h}\n`);
  return h.digest('hex');
}

async function cursor(client, rows) {
  const c = client.query(new Cursor(ROWS_SQL, [rows]));
  const all = [];
  let reads = 0;
  for (;;) {
    const batch = await c.read(100);
    reads++;
    if (batch.length === 0) break;
    all.push(...batch);
  }
  await c.close();
  const after = (await client.query('SELECT 7 AS seven')).rows[0].seven;
  return { rows: all.length, reads, sha256: digestOf(all), after };
}

async function stream(client, rows) {
  const all = [];
  const slow = new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(row, _enc, done) {
      all.push(row);
      if (all.length % 1000 === 0) setTimeout(done, 5); else done();
    },
  });
  await pipeline(client.query(new QueryStream(ROWS_SQL, [rows], { batchSize: 250 })), slow);
  const after = (await client.query('SELECT 7 AS seven')).rows[0].seven;
  return { rows: all.length, sha256: digestOf(all), after };
}

async function main() {
  const s = JSON.parse(process.argv[2]);
  const client = new pg.Client({ host: s.host, port: s.port, user: s.user, database: s.database,
    password: s.password || undefined, connectionTimeoutMillis: 10000 });
  await client.connect();
  try {
    const modes = { pid: () => pid(client), cursor: () => cursor(client, s.rows), stream: () => stream(client, s.rows) };
    process.stdout.write(JSON.stringify(await modes[s.mode]()) + '\n');
  } finally {
    await client.end();
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }) + '\n');
  process.exit(1);
});
