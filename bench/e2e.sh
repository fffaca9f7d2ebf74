#!/usr/bin/env bash
# End-to-end benchmark: PostgreSQL 15 direct vs pgbouncer (session mode) vs
# pgwarden (20-rule policy), interleaved A B C A B C ... so machine drift
# cancels out. Prints a markdown table of median TPS, p50/p99 latency and the
# ratios pgwarden/pgbouncer and pgwarden/direct, plus resident memory per idle
# client connection, and writes it to bench/results/YYYY-MM-DD-HHMM.md.
#
#   bench/e2e.sh                 full run (ROUNDS=3, DURATION=10 s per run)
#   bench/e2e.sh --smoke         a few seconds; what CI runs so the harness cannot rot
#   bench/e2e.sh --unix          pgbouncer and pgwarden reach PostgreSQL over its Unix socket
#   bench/e2e.sh --no-install --no-build   use what is there (PGWARDEN_BIN, default build/pgwarden)
#   bench/e2e.sh --out FILE      write the results there instead
#   bench/e2e.sh --profile       instead of the rounds: CPU time and context switches per
#                                transaction of pgbouncer and pgwarden (pgbench -S, 8 clients,
#                                simple), then a perf profile of pgwarden under the same load
#
# Environment: ROUNDS, DURATION (seconds per pgbench run), IDLE (idle
# connections for the memory measurement, default 1000), SCALE (pgbench -i -s,
# default 10), PGWARDEN_BIN, PG_BIN (default /usr/lib/postgresql/15/bin).
#
# Latency: every pgbench run writes a per-transaction log (-l, one line per
# transaction, third column = latency in microseconds); p50 and p99 are the
# nearest-rank percentiles over all transactions of the run, and the value
# reported is the median over rounds. TPS is pgbench's own "tps =" line
# (PostgreSQL 15: without initial connection time; with -C every connection is
# inside the transaction). Everything runs in plaintext (sslmode=disable
# everywhere, ssl=off on the server) and on loopback only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

smoke=0; install=1; build=1; transport=tcp; out=""; profile=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --unix) transport=unix ;;
    --profile) profile=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$smoke" = 1 ]; then
  ROUNDS="${ROUNDS:-1}"; DURATION="${DURATION:-1}"; IDLE="${IDLE:-20}"; SCALE="${SCALE:-1}"
else
  ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10}"; IDLE="${IDLE:-1000}"; SCALE="${SCALE:-10}"
fi
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PGWARDEN_BIN="${PGWARDEN_BIN:-$root/build/pgwarden}"
PY=/usr/bin/python3
LO=127.0.0.1
DB=bench
DBUSER=bench
RUN_TIMEOUT=$((DURATION + 60))   # hard bound on every pgbench run

log() { echo "[e2e $(date +%H:%M:%S)] $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Install and build.
if [ "$install" = 1 ]; then "$root/scripts/install-deps.sh"; fi
if [ "$build" = 1 ]; then (cd "$root" && ./scripts/build.sh); fi
[ -x "$PGWARDEN_BIN" ] || die "pgwarden binary not found at $PGWARDEN_BIN"
for b in "$PG_BIN/initdb" "$PG_BIN/postgres" "$PG_BIN/pg_isready"; do [ -x "$b" ] || die "missing $b"; done
command -v pgbench >/dev/null || die "pgbench not installed (postgresql-client-15)"
command -v pgbouncer >/dev/null || die "pgbouncer not installed"
PGBENCH="$(command -v pgbench)"

# The revision is taken now, before the runs: HEAD may move while they run.
rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD -- 2>/dev/null || rev="$rev (working tree modified)"
bin_info="$PGWARDEN_BIN, built $(date -u -r "$PGWARDEN_BIN" '+%Y-%m-%d %H:%M UTC')"

# 64 clients x 3 systems + 1000 idle (pgwarden opens one server connection per
# client) need file descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Temp dir, processes and cleanup.
tmp="$(mktemp -d /tmp/pgwarden-e2e.XXXXXX)"
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "$rc" != 0 ]; then
    for f in "$tmp"/postgres.log "$tmp"/pgbouncer.log "$tmp"/pgwarden*.log; do
      [ -s "$f" ] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL and pgbouncer refuse to run as root: drop to the postgres user.
# setpriv execs (no intermediate process), so $! is the server's own PID.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  chown postgres:postgres "$tmp"
fi
chmod 755 "$tmp"
mkdir -p "$tmp/runs"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {  # host port pid what
  for _ in $(seq 300); do
    kill -0 "$3" 2>/dev/null || die "$4 exited during startup"
    if "$PY" -c "import socket,sys; socket.create_connection(('$1',$2),0.5).close()" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$4 not listening on $1:$2 after 30 s"
}

# ---------------------------------------------------------------------------
# PostgreSQL 15.
pg_port="$(free_port)"
log "PostgreSQL 15 on $LO:$pg_port (socket dir $tmp), transport to proxies: $transport"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$tmp/data" -U "$DBUSER" --auth=trust -E UTF8 --locale=C --no-sync \
  >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die initdb; }
cat >>"$tmp/data/postgresql.conf" <<EOF
# bench/e2e.sh
listen_addresses = '$LO'
port = $pg_port
unix_socket_directories = '$tmp'
ssl = off
max_connections = 1400          # 64 clients x 3 systems + 1000 idle + margin
shared_buffers = 256MB
fsync = off                     # the proxies are measured, not the disk
synchronous_commit = off
full_page_writes = off
log_min_messages = fatal
log_checkpoints = off
EOF
cat >"$tmp/data/pg_hba.conf" <<EOF
local all all trust
host  all all $LO/32 trust
EOF
"${as_pg[@]}" "$PG_BIN/postgres" -D "$tmp/data" >"$tmp/postgres.log" 2>&1 </dev/null &
pids+=($!); pg_pid=$!
for _ in $(seq 300); do
  kill -0 "$pg_pid" 2>/dev/null || die "postgres exited"
  "$PG_BIN/pg_isready" -q -h "$LO" -p "$pg_port" -U "$DBUSER" -d postgres -t 1 && break
  sleep 0.1
done
"$PG_BIN/pg_isready" -q -h "$LO" -p "$pg_port" -U "$DBUSER" -d postgres -t 1 || die "postgres not ready"

export PGSSLMODE=disable PGCONNECT_TIMEOUT=10 PGUSER="$DBUSER" LC_ALL=C
unset PGHOST PGPORT PGDATABASE PGPASSWORD PGSERVICE || true
psql -X -q -h "$LO" -p "$pg_port" -d postgres -c "CREATE DATABASE $DB" >/dev/null
log "pgbench -i -s $SCALE"
timeout 600 "$PGBENCH" -i -q -s "$SCALE" -h "$LO" -p "$pg_port" "$DB" >"$tmp/pgbench-init.log" 2>&1 \
  || { cat "$tmp/pgbench-init.log" >&2; die "pgbench -i"; }

if [ "$transport" = unix ]; then up_host="$tmp"; else up_host="$LO"; fi

# ---------------------------------------------------------------------------
# pgbouncer, session mode.
pgb_port="$(free_port)"
cat >"$tmp/userlist.txt" <<EOF
"$DBUSER" ""
EOF
cat >"$tmp/pgbouncer.ini" <<EOF
[databases]
$DB = host=$up_host port=$pg_port dbname=$DB

[pgbouncer]
listen_addr = $LO
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $tmp/userlist.txt
pool_mode = session
max_client_conn = 1200
default_pool_size = 80
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
logfile = $tmp/pgbouncer.log
log_connections = 0
log_disconnections = 0
server_tls_sslmode = disable
EOF
[ "$(id -u)" = 0 ] && chown postgres:postgres "$tmp/pgbouncer.ini" "$tmp/userlist.txt"
"${as_pg[@]}" pgbouncer "$tmp/pgbouncer.ini" >>"$tmp/pgbouncer.stdout" 2>&1 </dev/null &
pids+=($!); pgb_pid=$!
wait_port "$LO" "$pgb_port" "$pgb_pid" pgbouncer
log "pgbouncer on $LO:$pgb_port (pid $pgb_pid)"

# ---------------------------------------------------------------------------
# pgwarden: a 20-rule policy none of whose deny rules matches pgbench.
policy_rules() {
cat <<'EOF'
networks:
  dev_hosts: [10.20.0.0/16, 192.168.0.0/16, 127.0.0.2/32]
  admin_hosts: [10.10.0.0/24, 127.0.0.1/32, local]
  batch_hosts: [10.30.0.0/16]
groups:
  admins: [alice, dba, postgres]
  juniors: [bob, carol]
  analysts: [dana, erin]
  etl: [loader, nightly]
rules:
  - name: no-drop-for-non-admins
    when: { command: ["DROP *", TRUNCATE], user_not_in: admins }
    action: deny
    message: only admins may DROP or TRUNCATE
    alert: true
  - name: prod-credentials-from-dev-hosts
    when: { client_in: dev_hosts, class: [DDL, WRITE, ROLE] }
    action: deny
    alert: true
  - name: juniors-read-only
    when: { user_in: juniors, class: [WRITE, DDL, ROLE, FUNCTION] }
    action: deny
  - name: analysts-read-only
    when: { user_in: analysts, class: [WRITE, DDL, ROLE] }
    action: deny
  - name: no-server-file-access
    when: { user_not_in: admins, function: ["lo_*", "pg_read_*", "pg_ls_dir", "dblink*"] }
    action: deny
  - name: no-backend-signalling
    when: { user_not_in: admins, function: [pg_terminate_backend, pg_cancel_backend, pg_reload_conf] }
    action: deny
  - name: no-update-delete-without-where
    when: { update_or_delete_without_where: true, user_not_in: admins }
    action: deny
    enforce: false
  - name: no-role-changes-outside-admins
    when: { role_change: true, user_not_in: admins }
    action: deny
  - name: no-dynamic-sql-for-juniors
    when: { dynamic_sql: true, user_in: juniors }
    action: deny
  - name: no-unparseable-from-dev-hosts
    when: { unparseable: true, client_in: dev_hosts }
    action: deny
  - name: alert-on-ddl
    when: { class: [DDL] }
    action: allow
    alert: true
  - name: alert-on-role-ddl
    when: { class: [ROLE] }
    action: allow
    alert: true
  - name: etl-only-from-batch-hosts
    when: { user_in: etl, client_not_in: batch_hosts, class: [WRITE] }
    action: deny
  - name: no-copy-program-for-non-admins
    when: { command: ["COPY"], user_in: juniors }
    action: deny
  - name: no-vacuum-full-in-business-hours
    when: { command: ["VACUUM"], user_in: juniors, time: { days: [mon, tue, wed, thu, fri], hours: "09:00-18:00", zone: UTC } }
    action: deny
  - name: reporting-app-read-only
    when: { application_name: ["reporting*"], class: [WRITE, DDL] }
    action: deny
  - name: no-alter-system
    when: { command: ["ALTER SYSTEM"], user_not_in: admins }
    action: deny
  - name: no-writes-to-postgres-db
    when: { database: [postgres, template*], class: [WRITE, DDL], user_not_in: admins }
    action: deny
  - name: juniors-from-dev-hosts-connect
    on: connect
    when: { user_in: juniors, client_in: dev_hosts }
    action: allow
  - name: replication-for-admins
    on: connect
    when: { user_in: admins, client_in: admin_hosts, protocol: replication }
    action: allow
default: allow
EOF
}

pgwarden_config() {  # port name [audit-durability]
  local upstream
  if [ "$transport" = unix ]; then
    upstream="{ unix_socket: $tmp, port: $pg_port, tls: disable }"
  else
    upstream="{ host: $LO, port: $pg_port, tls: disable }"
  fi
  {
    echo "listen: $LO:$1"
    echo "upstream: $upstream"
    echo "log: { level: warn, statements: false }"
    echo "limits: { max_client_connections: 2000, idle_timeout: 0 }"
    echo "environment: production"
    policy_rules
    if [ -n "${3:-}" ]; then
      echo "audit: { file: $tmp/audit-$2/pgwarden.jsonl, durability: $3, on_failure: block, parameters: none }"
    fi
  } >"$tmp/$2.yaml"
  if [ -n "${3:-}" ]; then mkdir -p "$tmp/audit-$2"; fi
  n_rules="$(grep -c '^  - name:' "$tmp/$2.yaml")"
  [ "$n_rules" = 20 ] || die "policy has $n_rules rules, not 20"
}

declare -A sys_port sys_pid
start_pgwarden() {  # name [audit-durability]
  local port; port="$(free_port)"
  pgwarden_config "$port" "$1" "${2:-}"
  "$PGWARDEN_BIN" check --config "$tmp/$1.yaml" >"$tmp/$1.check" 2>&1 \
    || { cat "$tmp/$1.check" >&2; die "pgwarden check rejected $1.yaml"; }
  "$PGWARDEN_BIN" serve --config "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1 </dev/null &
  pids+=($!); sys_pid[$1]=$!
  sys_port[$1]=$port
  wait_port "$LO" "$port" "${sys_pid[$1]}" "$1"
  log "$1 on $LO:$port (pid ${sys_pid[$1]})"
}

systems=(direct pgbouncer pgwarden)
sys_port[direct]=$pg_port; sys_pid[direct]=$pg_pid
sys_port[pgbouncer]=$pgb_port; sys_pid[pgbouncer]=$pgb_pid
start_pgwarden pgwarden

# Audit: priced only if this build has it. A build without the audit log
# refuses to serve with audit.file set, or serves and writes nothing there;
# both are detected here, and then the audit rounds are skipped, not faked.
audit_note=""
audit_port="$(free_port)"
pgwarden_config "$audit_port" pgwarden-audit buffered
"$PGWARDEN_BIN" serve --config "$tmp/pgwarden-audit.yaml" >"$tmp/pgwarden-audit.log" 2>&1 </dev/null &
pids+=($!); audit_pid=$!
audit_up=0
for _ in $(seq 100); do
  kill -0 "$audit_pid" 2>/dev/null || break
  if "$PY" -c "import socket; socket.create_connection(('$LO',$audit_port),0.5).close()" 2>/dev/null; then
    audit_up=1; break
  fi
  sleep 0.1
done
if [ "$audit_up" = 0 ]; then
  audit_note="audit not available in this build: pgwarden serve with audit.file set exits with \"$(tail -n1 "$tmp/pgwarden-audit.log" | sed "s|$tmp/||")\""
else
  sys_port[pgwarden-audit]=$audit_port; sys_pid[pgwarden-audit]=$audit_pid
  psql -X -q -h "$LO" -p "$audit_port" -d "$DB" \
    -c "SELECT 1" -c "SELECT count(*) FROM pgbench_branches" >/dev/null 2>"$tmp/audit-probe.err" || true
  sleep 1.5
  if [ -n "$(find "$tmp/audit-pgwarden-audit" -type f -size +0 2>/dev/null)" ]; then
    start_pgwarden pgwarden-synced synced
    systems+=(pgwarden-audit pgwarden-synced)
    log "audit file written: pricing audit buffered and synced"
  else
    audit_note="audit not available in this build: pgwarden accepted audit.file but wrote nothing there"
    kill -TERM "$audit_pid" 2>/dev/null || true
  fi
fi
if [ -n "$audit_note" ]; then
  audit_note="$audit_note; the audit-on (buffered) and synced rounds were skipped"
  log "$audit_note"
fi

# ---------------------------------------------------------------------------
# --profile: what a transaction costs each proxy, and where pgwarden's time goes.
proc_stats() {  # pid -> "cpu-ticks voluntary-switches involuntary-switches" over all threads
  "$PY" - "$1" <<'EOF'
import glob, sys
pid = sys.argv[1]
f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
v = n = 0
for st in glob.glob(f"/proc/{pid}/task/*/status"):
    for line in open(st):
        if line.startswith("voluntary_ctxt_switches"): v += int(line.split()[1])
        if line.startswith("nonvoluntary_ctxt_switches"): n += int(line.split()[1])
print(int(f[11]) + int(f[12]), v, n)
EOF
}
if [ "$profile" = 1 ]; then
  command -v perf >/dev/null || die "perf not installed (apt-get install -y linux-perf)"
  hz="$(getconf CLK_TCK)"
  pargs=(-n -S -M simple -c 8 -j 2 -T "$DURATION" "$DB")
  echo "## Cost per transaction, pgbench -S -M simple -c 8, ${DURATION}s, transport $transport"
  echo
  echo "| system | TPS | CPU µs per transaction | voluntary switches per tx | involuntary per tx | threads |"
  echo "|---|---:|---:|---:|---:|---:|"
  for s in pgbouncer pgwarden pgbouncer pgwarden; do
    pid="${sys_pid[$s]}"
    read -r t0 v0 n0 <<<"$(proc_stats "$pid")"
    o="$(timeout "$RUN_TIMEOUT" "$PGBENCH" -h "$LO" -p "${sys_port[$s]}" "${pargs[@]}" 2>/dev/null)" || die "pgbench on $s"
    read -r t1 v1 n1 <<<"$(proc_stats "$pid")"
    tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$o" | head -n1)"
    tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$o")"
    awk -v s="$s" -v tps="$tps" -v tx="$tx" -v dt=$((t1 - t0)) -v dv=$((v1 - v0)) -v dn=$((n1 - n0)) -v hz="$hz" \
        -v th="$(ls /proc/"$pid"/task | wc -l)" \
      'BEGIN { printf "| %s | %.0f | %.1f | %.2f | %.2f | %d |\n", s, tps, dt / hz * 1e6 / tx, dv / tx, dn / tx, th }'
  done
  echo
  perf record -e cpu-clock -F 1999 -p "${sys_pid[pgwarden]}" -o "$tmp/perf.data" -- sleep "$DURATION" \
    >/dev/null 2>"$tmp/perf-record.err" &
  perf_pid=$!
  sleep 0.3
  timeout "$RUN_TIMEOUT" "$PGBENCH" -h "$LO" -p "${sys_port[pgwarden]}" "${pargs[@]}" >/dev/null 2>&1 || die "pgbench under perf"
  wait "$perf_pid" || { cat "$tmp/perf-record.err" >&2; die "perf record"; }
  echo "## perf profile of pgwarden (cpu-clock, 1999 Hz, pgbench -S -M simple -c 8)"
  echo
  echo '```'
  echo "by object:"
  perf report -i "$tmp/perf.data" --stdio --no-children --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 8
  echo
  echo "top symbols:"
  perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | head -n 40 | cut -c1-160
  echo '```'
  exit 0
fi

# ---------------------------------------------------------------------------
# Workloads: name|pgbench arguments|clients
if [ "$smoke" = 1 ]; then
  workloads=("S-simple-8|-S -M simple|8" "S-C-8|-S -C -M simple|8")
else
  workloads=()
  for mode in simple extended prepared; do
    for c in 1 8 64; do workloads+=("S-$mode-$c|-S -M $mode|$c"); done
  done
  workloads+=("N-simple-8|-N -M simple|8" "S-C-8|-S -C -M simple|8")
fi

results="$tmp/results.tsv"   # workload system round tps p50_ms p99_ms
: >"$results"
run_one() {  # workload-name args clients system round
  local name="$1" args="$2" clients="$3" sys="$4" round="$5"
  local port="${sys_port[$sys]}" j=$(( $3 < 2 ? $3 : 2 ))
  local dir="$tmp/runs/$name.$sys.$round"
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  if ! (cd "$dir" && timeout "$RUN_TIMEOUT" "$PGBENCH" -h "$LO" -p "$port" -n $args -c "$clients" -j "$j" \
          -T "$DURATION" -l --log-prefix=tx "$DB" >"$dir/out" 2>"$dir/err"); then
    cat "$dir/err" >&2; die "pgbench $name on $sys failed"
  fi
  local tps
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out" | head -n1)"
  [ -n "$tps" ] || { cat "$dir/out" "$dir/err" >&2; die "no tps from pgbench $name on $sys"; }
  grep -q '^number of failed transactions: 0 ' "$dir/out" || ! grep -q '^number of failed transactions' "$dir/out" \
    || { cat "$dir/out" >&2; die "pgbench $name on $sys had failed transactions"; }
  local pct
  pct="$(cat "$dir"/tx.* | "$PY" -c '
import sys
lat = sorted(int(l.split()[2]) for l in sys.stdin if l.strip())
if not lat: print("nan nan"); sys.exit()
pick = lambda q: lat[max(0, min(len(lat) - 1, -(-len(lat) * q // 100) - 1))]
print(f"{pick(50) / 1000:.3f} {pick(99) / 1000:.3f}")')"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$sys" "$round" "$tps" "${pct// /$'\t'}" >>"$results"
  rm -f "$dir"/tx.*
  log "round $round  $name  $sys  tps=$tps  p50/p99 ms=$pct"
}

total=$(( ${#workloads[@]} * ${#systems[@]} * ROUNDS ))
log "$total pgbench runs of ${DURATION}s (${#workloads[@]} workloads x ${#systems[@]} systems x $ROUNDS rounds)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
  for w in "${workloads[@]}"; do
    IFS='|' read -r name args clients <<<"$w"
    for s in "${systems[@]}"; do run_one "$name" "$args" "$clients" "$s" "$r"; done
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------
# Resident memory per idle client connection: open IDLE connections that
# complete startup (trust), then compare VmRSS before and after.
cat >"$tmp/idle.py" <<'EOF'
import socket, struct, sys, time
settle = 2 if int(sys.argv[4]) >= 100 else 0.3
host, port, pid, n, user, db = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
def startup():
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    return struct.pack("!I", len(body) + 4) + body
def until_ready(s):
    buf = b""
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit(f"connection closed during startup after {len(socks)} connections")
            buf += chunk
        kind, length = buf[:1], struct.unpack("!I", buf[1:5])[0]
        payload, buf = buf[5:1 + length], buf[1 + length:]
        if kind == b"E":
            raise SystemExit("startup failed: " + payload.decode(errors="replace"))
        if kind == b"R" and struct.unpack("!I", payload[:4])[0] != 0:
            raise SystemExit("server asked for a password; trust expected")
        if kind == b"Z":
            return
time.sleep(settle)
before = rss_kib()
socks = []
deadline = time.monotonic() + 300
while len(socks) < n:
    if time.monotonic() > deadline:
        raise SystemExit("timed out opening idle connections")
    batch = []
    for _ in range(min(50, n - len(socks))):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(startup())
        batch.append(s)
    for s in batch:
        until_ready(s)
        socks.append(s)
time.sleep(settle)
after = rss_kib()
print(before, after, len(socks), f"{(after - before) / len(socks):.1f}")
for s in socks:
    s.close()
EOF
declare -A rss
for s in pgbouncer pgwarden; do
  log "opening $IDLE idle connections to $s"
  rss[$s]="$(timeout 600 "$PY" "$tmp/idle.py" "$LO" "${sys_port[$s]}" "${sys_pid[$s]}" "$IDLE" "$DBUSER" "$DB")" \
    || die "idle connections to $s"
  log "$s RSS before/after KiB, connections, KiB per connection: ${rss[$s]}"
  [ "$smoke" = 1 ] || sleep 2   # let the closed connections drain before the next system
done

# ---------------------------------------------------------------------------
# Report.
pg_version="$("$PG_BIN/postgres" --version)"
pgb_version="$(pgbouncer --version 2>/dev/null | head -n1)"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
stamp="$(date -u +%Y-%m-%d-%H%M)"
report="$tmp/report.md"
"$PY" - "$results" "${systems[*]}" >"$tmp/table.md" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
systems = sys.argv[2].split()
order, data = [], {}
for w, s, r, tps, p50, p99 in rows:
    if w not in order: order.append(w)
    data.setdefault((w, s), []).append((float(tps), float(p50), float(p99)))
med = lambda xs: statistics.median(xs)
def agg(w, s):
    v = data.get((w, s), [])
    return (med([x[0] for x in v]), med([x[1] for x in v]), med([x[2] for x in v])) if v else None
wardens = [s for s in systems if s.startswith("pgwarden")]
hdr = ["workload"]
for s in systems: hdr += [f"{s} TPS"]
for s in systems: hdr += [f"{s} p50/p99 ms"]
for s in wardens:
    tag = "" if s == "pgwarden" else f" ({s})"
    hdr += [f"pgwarden/pgbouncer{tag}", f"pgwarden/direct{tag}"]
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(hdr))) + "|")
for w in order:
    a = {s: agg(w, s) for s in systems}
    cells = [w]
    cells += [f"{a[s][0]:.0f}" for s in systems]
    cells += [f"{a[s][1]:.2f} / {a[s][2]:.2f}" for s in systems]
    for s in wardens:
        cells += [f"{a[s][0] / a['pgbouncer'][0]:.2f}", f"{a[s][0] / a['direct'][0]:.2f}"]
    print("| " + " | ".join(cells) + " |")
if "pgwarden-audit" in systems:
    print()
    print("| workload | audit buffered / audit off | synced / buffered |")
    print("|---|---:|---:|")
    for w in order:
        off, buf, syn = agg(w, "pgwarden")[0], agg(w, "pgwarden-audit")[0], agg(w, "pgwarden-synced")[0]
        print(f"| {w} | {buf / off:.2f} | {syn / buf:.2f} |")
EOF
{
  echo "# pgwarden end-to-end benchmark, $stamp UTC"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION IDLE=$IDLE SCALE=$SCALE bench/e2e.sh$([ "$smoke" = 1 ] && echo ' --smoke')$([ "$transport" = unix ] && echo ' --unix')\`"
  echo
  echo "- pgwarden revision: $rev at the start; binary $bin_info"
  echo "- machine: $(nproc) CPUs ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- $pg_version; $pgb_version (session mode); pgbench $("$PGBENCH" --version | awk '{print $3}')"
  echo "- load average (1/5/15 min) before the runs: $load_before; after: $load_after"
  echo "- upstream transport for pgbouncer and pgwarden: $transport; plaintext everywhere (sslmode=disable, ssl=off)"
  echo "- pgbench -i -s $SCALE; $ROUNDS rounds of ${DURATION}s per workload and system, interleaved direct / pgbouncer / pgwarden...; -j = min(clients, 2)"
  echo "- pgwarden: 20-rule policy (none denies pgbench), log level warn"
  echo "- TPS = median over rounds of pgbench's tps; p50/p99 = median over rounds of the per-transaction latency percentiles from pgbench -l"
  [ -n "$audit_note" ] && echo "- $audit_note"
  echo
  cat "$tmp/table.md"
  echo
  echo "Resident memory holding $IDLE idle client connections (VmRSS after startup completed, minus before):"
  echo
  echo "| system | RSS before KiB | RSS after KiB | connections | KiB per connection |"
  echo "|---|---:|---:|---:|---:|"
  for s in pgbouncer pgwarden; do
    read -r b a n k <<<"${rss[$s]}"
    echo "| $s | $b | $a | $n | $k |"
  done
} >"$report"

echo
cat "$report"
if [ -z "$out" ] && [ "$smoke" = 0 ]; then
  mkdir -p "$here/results"
  suffix=""; [ "$transport" = unix ] && suffix="-unix"
  out="$here/results/$stamp$suffix.md"
fi
if [ -n "$out" ]; then
  cp "$report" "$out"
  log "results written to $out"
fi
