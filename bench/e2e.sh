#!/usr/bin/env bash
# End-to-end benchmark: PostgreSQL 15 direct vs pgbouncer (session mode) vs
# pgwarden (20-rule policy; audit off, buffered and synced), interleaved
# A B C C B A ... so machine drift cancels out. Prints a markdown table of
# median TPS, p50/p99 latency and the ratios to pgbouncer and to direct, the
# audit ratios, the connection (TLS handshake) rate, resident memory per idle
# client connection and the audit verification, and writes it to
# bench/results/YYYY-MM-DD-HHMM[-suffixes].md.
#
#   bench/e2e.sh                 full run (ROUNDS=3, DURATION=10 s per run), plaintext, trust
#   bench/e2e.sh --smoke         a few seconds; what CI runs so the harness cannot rot: a
#                                plaintext pass (S-simple-8 on every system, so audit buffered
#                                and synced, and idle), then a --tls --auth scram pass (S-C-8
#                                on direct, pgbouncer, pgwarden, and idle)
#   bench/e2e.sh --tls           TLS on the client hop of all three: PostgreSQL ssl=on,
#                                pgbouncer client_tls_sslmode=require, pgwarden tls:
#                                {cert, key, required}; one certificate from a throwaway CA;
#                                pgbench sslmode=require
#   bench/e2e.sh --upstream-tls require   TLS on the proxies' hop to PostgreSQL too
#                                (pgbouncer server_tls_sslmode, pgwarden upstream.tls)
#   bench/e2e.sh --auth md5      all three authenticate clients with md5 (both proxies from the
#                                same auth_file, and both pool server connections)
#   bench/e2e.sh --auth scram    all three authenticate clients with SCRAM-SHA-256: pg_hba
#                                scram-sha-256, pgbouncer auth_type=scram-sha-256 and pgwarden
#                                auth: scram with the same auth_file (the user's SCRAM secret)
#   bench/e2e.sh --only LIST     only these workloads (comma-separated names, `idle` for the
#                                memory measurement); also WORKLOADS=LIST
#   bench/e2e.sh --only tls-connect   the TLS handshake rate alone: --tls, S-C-8 on direct,
#                                pgbouncer and pgwarden (ROUNDS=3 DURATION=5: about a minute)
#   bench/e2e.sh --unix          pgbouncer and pgwarden reach PostgreSQL over its Unix socket
#   bench/e2e.sh --no-install --no-build   use what is there (PGWARDEN_BIN, default build/pgwarden)
#   bench/e2e.sh --out FILE      write the results there instead
#   bench/e2e.sh --profile       instead of the rounds: CPU time and context switches per
#                                transaction of pgbouncer and pgwarden (S-simple-8, or the one
#                                workload --only names), then a perf profile of pgwarden under
#                                the same load; SYSTEMS="pgbouncer pgwarden pgwarden-audit" adds
#                                the audited pgwardens to the costs, PROFILE_SYSTEM=pgwarden-audit
#                                profiles that one
#
# Workloads: S-{simple,extended,prepared}-{1,8,64} (pgbench -S), N-simple-8
# (pgbench -N), S-C-8 (pgbench -S -C: a new connection, with --tls a full TLS
# handshake, per transaction), idle. Systems: direct, pgbouncer, pgwarden
# (audit off), pgwarden-audit (buffered), pgwarden-synced (synced; 8-client
# workloads only).
#
# Environment: ROUNDS, DURATION (seconds per pgbench run), IDLE (idle
# connections for the memory measurement, default 1000), SCALE (pgbench -i -s,
# default 10), SYSTEMS (space- or comma-separated subset of the systems),
# WORKLOADS (as --only), TLS_KEY (rsa = RSA 2048, the default, or ec = P-256),
# PGWARDEN_BIN, PG_BIN (default /usr/lib/postgresql/15/bin), WORKERS (pgwarden's
# workers: setting; unset = its default, one event loop per usable CPU),
# TMPDIR (where the work directory goes: PostgreSQL's data and the audit
# files; default /tmp), SETTLE (seconds of pause after each pgwarden-synced
# run, default 5).
#
# Latency: every pgbench run writes a per-transaction log (-l, one line per
# transaction, third column = latency in microseconds); p50 and p99 are the
# nearest-rank percentiles over all transactions of the run, and the value
# reported is the median over rounds. TPS is pgbench's own "tps =" line
# (PostgreSQL 15: without initial connection time; with -C every connection is
# inside the transaction, so TPS is connections per second). sslmode is always
# passed explicitly (PGSSLMODE=disable, or require with --tls): libpq would
# otherwise use TLS whenever a server offers it. Loopback only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
orig_args=("$@")

smoke=0; install=1; build=1; transport=tcp; out=""; profile=0
tls=0; upstream_tls=disable; auth=trust; only="${WORKLOADS:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --unix) transport=unix ;;
    --tls) tls=1 ;;
    --upstream-tls) upstream_tls="${2:-}"; shift ;;
    --auth) auth="${2:-}"; shift ;;
    --only) only="${2:-}"; shift ;;
    --profile) profile=1 ;;
    --out) out="${2:-}"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case "$upstream_tls" in disable|require) ;; *) echo "e2e.sh: --upstream-tls takes disable or require" >&2; exit 2 ;; esac
case "$auth" in trust|scram|md5) ;; *) echo "e2e.sh: --auth takes trust, scram or md5" >&2; exit 2 ;; esac
if [ "$transport" = unix ] && [ "$upstream_tls" != disable ]; then
  echo "e2e.sh: --upstream-tls $upstream_tls cannot be used with --unix (PostgreSQL offers no TLS on its socket)" >&2; exit 2
fi

# --smoke on its own is two passes, each a separate run of this script: the
# plaintext one (trust, every system) and a TLS one with SCRAM, so both the
# audit and the TLS code paths of the harness run in CI.
if [ "$smoke" = 1 ] && [ -z "${E2E_SMOKE_PASS:-}" ] && [ "$tls" = 0 ] && [ "$auth" = trust ] \
   && [ "$upstream_tls" = disable ] && [ -z "$only" ] && [ "$profile" = 0 ]; then
  if [ "$install" = 1 ]; then "$root/scripts/install-deps.sh"; fi
  if [ "$build" = 1 ]; then (cd "$root" && ./scripts/build.sh); fi
  pass=("$0" --smoke --no-install --no-build)
  [ "$transport" = unix ] && pass+=(--unix)
  out_plain=(); out_tls=()
  if [ -n "$out" ]; then out_plain=(--out "$out"); out_tls=(--out "${out%.md}-tls.md"); fi
  E2E_SMOKE_PASS=plain "${pass[@]}" "${out_plain[@]}" || exit $?
  E2E_SMOKE_PASS=tls SYSTEMS="${SYSTEMS:-direct pgbouncer pgwarden}" \
    "${pass[@]}" --tls --auth scram --only S-C-8,idle "${out_tls[@]}"
  exit $?
fi

if [ "$smoke" = 1 ]; then
  ROUNDS="${ROUNDS:-1}"; DURATION="${DURATION:-1}"; IDLE="${IDLE:-20}"; SCALE="${SCALE:-1}"
else
  ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10}"; IDLE="${IDLE:-1000}"; SCALE="${SCALE:-10}"
fi
TLS_KEY="${TLS_KEY:-rsa}"
case "$TLS_KEY" in rsa|ec) ;; *) echo "e2e.sh: TLS_KEY is rsa or ec" >&2; exit 2 ;; esac
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
# What runs: workloads (name|pgbench arguments|clients) and systems.
all_workloads=()
for mode in simple extended prepared; do
  for c in 1 8 64; do all_workloads+=("S-$mode-$c|-S -M $mode|$c"); done
done
all_workloads+=("N-simple-8|-N -M simple|8" "S-C-8|-S -C -M simple|8")
all_systems=(direct pgbouncer pgwarden pgwarden-audit pgwarden-synced)

systems_default="${all_systems[*]}"
if [ -z "$only" ]; then
  if [ "$smoke" = 1 ]; then only="S-simple-8,idle"; else only="all"; fi
fi
declare -A wanted=()
do_idle=0
for w in ${only//,/ }; do
  case "$w" in
    all) for x in "${all_workloads[@]}"; do wanted[${x%%|*}]=1; done; do_idle=1 ;;
    idle) do_idle=1 ;;
    tls-connect) tls=1; wanted[S-C-8]=1; systems_default="direct pgbouncer pgwarden" ;;
    *) found=0
       for x in "${all_workloads[@]}"; do [ "${x%%|*}" = "$w" ] && found=1; done
       [ "$found" = 1 ] || { echo "e2e.sh: unknown workload $w (known: all idle tls-connect $(for x in "${all_workloads[@]}"; do printf '%s ' "${x%%|*}"; done))" >&2; exit 2; }
       wanted[$w]=1 ;;
  esac
done
workloads=()
for x in "${all_workloads[@]}"; do [ -n "${wanted[${x%%|*}]:-}" ] && workloads+=("$x"); done

systems=()
requested="${SYSTEMS:-$systems_default}"
for s in "${all_systems[@]}"; do
  for r in ${requested//,/ }; do [ "$r" = "$s" ] && systems+=("$s"); done
done
for r in ${requested//,/ }; do
  case " ${all_systems[*]} " in *" $r "*) ;; *) echo "e2e.sh: unknown system $r (known: ${all_systems[*]})" >&2; exit 2 ;; esac
done
[ "${#systems[@]}" -gt 0 ] || { echo "e2e.sh: SYSTEMS selects nothing" >&2; exit 2; }
selected() { case " ${systems[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
# Synced durability is priced at 8 clients only (issue 8: the synced/buffered ratio).
runs_on() {  # system clients
  [ "$1" != pgwarden-synced ] || [ "$2" = 8 ]
}
restricted=0
[ -n "${SYSTEMS:-}" ] && restricted=1
[ "$only" = all ] || [ "$smoke" = 1 ] || restricted=1

if [ "$tls" = 1 ]; then sslmode=require; else sslmode=disable; fi
server_tls=0   # PostgreSQL runs with ssl=on when any hop to it uses TLS
if [ "$tls" = 1 ] || [ "$upstream_tls" != disable ]; then server_tls=1; fi

# ---------------------------------------------------------------------------
# Install and build.
if [ "$install" = 1 ]; then "$root/scripts/install-deps.sh"; fi
if [ "$build" = 1 ]; then (cd "$root" && ./scripts/build.sh); fi
[ -x "$PGWARDEN_BIN" ] || die "pgwarden binary not found at $PGWARDEN_BIN"
for b in "$PG_BIN/initdb" "$PG_BIN/postgres" "$PG_BIN/pg_isready"; do [ -x "$b" ] || die "missing $b"; done
command -v pgbench >/dev/null || die "pgbench not installed (postgresql-client-15)"
command -v pgbouncer >/dev/null || die "pgbouncer not installed"
[ "$server_tls" = 0 ] || command -v openssl >/dev/null || die "openssl not installed"
PGBENCH="$(command -v pgbench)"

# The revision is taken now, before the runs: HEAD may move while they run.
rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD -- 2>/dev/null || rev="$rev (working tree modified)"
bin_info="$PGWARDEN_BIN, built $(date -u -r "$PGWARDEN_BIN" '+%Y-%m-%d %H:%M UTC')"
machine="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"

# 64 clients x 5 systems + 1000 idle (pgwarden opens one server connection per
# client) need file descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Temp dir, processes and cleanup.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pgwarden-e2e.XXXXXX")"
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
give_pg() { [ "$(id -u)" != 0 ] || chown -R postgres:postgres "$@"; }

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
# Certificates: a throwaway CA and one server certificate (localhost,
# 127.0.0.1) that PostgreSQL, pgbouncer and pgwarden all present, so every
# handshake signs with the same kind of key.
pki="$tmp/pki"
make_pki() {
  local newkey ku ssl_log="$tmp/openssl.log"
  if [ "$TLS_KEY" = ec ]; then
    newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); ku="digitalSignature"
  else
    newkey=(-newkey rsa:2048); ku="digitalSignature,keyEncipherment"
  fi
  mkdir -p "$pki"
  {
    openssl req -x509 "${newkey[@]}" -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 \
      -subj "/CN=pgwarden bench CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req "${newkey[@]}" -nodes -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=localhost" &&
    printf '%s\n' "subjectAltName=DNS:localhost,IP:$LO" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,$ku" "extendedKeyUsage=serverAuth" >"$pki/server.ext" &&
    openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -out "$pki/server.crt" -days 2 -sha256 -extfile "$pki/server.ext"
  } >"$ssl_log" 2>&1 || { cat "$ssl_log" >&2; die "openssl could not make the certificates"; }
  chmod 600 "$pki/server.key" "$pki/ca.key"
  give_pg "$pki"
}
if [ "$server_tls" = 1 ]; then
  make_pki
  key_desc="$([ "$TLS_KEY" = ec ] && echo "EC P-256" || echo "RSA 2048")"
  log "certificates: throwaway CA and one $key_desc server certificate in $pki"
fi

# ---------------------------------------------------------------------------
# PostgreSQL 15.
pg_port="$(free_port)"
log "PostgreSQL 15 on $LO:$pg_port (socket dir $tmp), transport to proxies: $transport, ssl: $([ "$server_tls" = 1 ] && echo on || echo off), auth: $auth"
initdb_args=(-D "$tmp/data" -U "$DBUSER" --auth=trust -E UTF8 --locale=C --no-sync)
if [ "$auth" != trust ]; then
  password="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')"
  printf '%s\n' "$password" >"$tmp/pwfile"
  give_pg "$tmp/pwfile"
  initdb_args+=(--pwfile="$tmp/pwfile")
fi
"${as_pg[@]}" "$PG_BIN/initdb" "${initdb_args[@]}" >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die initdb; }
rm -f "$tmp/pwfile"
cat >>"$tmp/data/postgresql.conf" <<EOF
# bench/e2e.sh
listen_addresses = '$LO'
port = $pg_port
unix_socket_directories = '$tmp'
max_connections = 1400          # 64 clients x 5 systems + 1000 idle + margin
shared_buffers = 256MB
fsync = off                     # the proxies are measured, not the disk
synchronous_commit = off
full_page_writes = off
log_min_messages = fatal
log_checkpoints = off
password_encryption = scram-sha-256
EOF
if [ "$server_tls" = 1 ]; then
  cat >>"$tmp/data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = '$pki/server.crt'
ssl_key_file = '$pki/server.key'
EOF
else
  echo "ssl = off" >>"$tmp/data/postgresql.conf"
fi
hba_method=trust
[ "$auth" = scram ] && hba_method=scram-sha-256
[ "$auth" = md5 ] && hba_method=md5
cat >"$tmp/data/pg_hba.conf" <<EOF
local all all $hba_method
host  all all $LO/32 $hba_method
EOF
"${as_pg[@]}" "$PG_BIN/postgres" -D "$tmp/data" >"$tmp/postgres.log" 2>&1 </dev/null &
pids+=($!); pg_pid=$!
for _ in $(seq 300); do
  kill -0 "$pg_pid" 2>/dev/null || die "postgres exited"
  "$PG_BIN/pg_isready" -q -h "$LO" -p "$pg_port" -U "$DBUSER" -d postgres -t 1 && break
  sleep 0.1
done
"$PG_BIN/pg_isready" -q -h "$LO" -p "$pg_port" -U "$DBUSER" -d postgres -t 1 || die "postgres not ready"

export PGSSLMODE="$sslmode" PGCONNECT_TIMEOUT=10 PGUSER="$DBUSER" LC_ALL=C
unset PGHOST PGPORT PGDATABASE PGPASSWORD PGSERVICE PGSSLROOTCERT PGCHANNELBINDING PGPASSFILE || true
[ "$auth" != trust ] && export PGPASSWORD="$password"
if [ "$auth" = md5 ]; then  # initdb stored a SCRAM secret; md5 needs an md5 one
  psql -X -q -h "$LO" -p "$pg_port" -d postgres \
    -c "SET password_encryption = 'md5'" -c "ALTER ROLE $DBUSER PASSWORD '$password'" >/dev/null
fi
psql -X -q -h "$LO" -p "$pg_port" -d postgres -c "CREATE DATABASE $DB" >/dev/null
log "pgbench -i -s $SCALE"
timeout 600 "$PGBENCH" -i -q -s "$SCALE" -h "$LO" -p "$pg_port" "$DB" >"$tmp/pgbench-init.log" 2>&1 \
  || { cat "$tmp/pgbench-init.log" >&2; die "pgbench -i"; }

if [ "$transport" = unix ]; then up_host="$tmp"; else up_host="$LO"; fi

# The auth_file both proxies read (pgbouncer's userlist format): with --auth
# scram the user's SCRAM secret as PostgreSQL stores it.
if [ "$auth" != trust ]; then
  secret="$(psql -X -At -h "$LO" -p "$pg_port" -d postgres \
    -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$DBUSER'")"
  case "$auth:$secret" in scram:SCRAM-SHA-256\$*|md5:md5*) ;; *) die "no $auth secret for $DBUSER in pg_authid" ;; esac
else
  secret=""
fi
printf '"%s" "%s"\n' "$DBUSER" "$secret" >"$tmp/userlist.txt"
chmod 600 "$tmp/userlist.txt"
give_pg "$tmp/userlist.txt"

# ---------------------------------------------------------------------------
# pgbouncer, session mode.
pgb_port="$(free_port)"
cat >"$tmp/pgbouncer.ini" <<EOF
[databases]
$DB = host=$up_host port=$pg_port dbname=$DB

[pgbouncer]
listen_addr = $LO
listen_port = $pgb_port
unix_socket_dir =
auth_type = $(case "$auth" in scram) echo scram-sha-256 ;; md5) echo md5 ;; *) echo trust ;; esac)
auth_file = $tmp/userlist.txt
pool_mode = session
max_client_conn = 1200
default_pool_size = 80
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
logfile = $tmp/pgbouncer.log
log_connections = 0
log_disconnections = 0
server_tls_sslmode = $upstream_tls
EOF
if [ "$tls" = 1 ]; then
  cat >>"$tmp/pgbouncer.ini" <<EOF
client_tls_sslmode = require
client_tls_cert_file = $pki/server.crt
client_tls_key_file = $pki/server.key
EOF
else
  echo "client_tls_sslmode = disable" >>"$tmp/pgbouncer.ini"
fi
give_pg "$tmp/pgbouncer.ini"
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
    upstream="{ host: $LO, port: $pg_port, tls: $upstream_tls }"
  fi
  {
    echo "listen: $LO:$1"
    echo "upstream: $upstream"
    if [ "$tls" = 1 ]; then echo "tls: { cert: $pki/server.crt, key: $pki/server.key, required: true }"; fi
    if [ "$auth" != trust ]; then  # md5 secrets work in pgwarden's own authentication too
      echo "auth: { mode: scram, auth_file: $tmp/userlist.txt }"
    else
      echo "auth: passthrough"
    fi
    echo "log: { level: warn, statements: false }"
    echo "limits: { max_client_connections: 2000, idle_timeout: 0 }"
    echo "environment: production"
    if [ -n "${WORKERS:-}" ]; then echo "workers: $WORKERS"; fi
    policy_rules
    if [ -n "${3:-}" ]; then
      echo "audit: { file: $tmp/audit-$2/pgwarden.jsonl, durability: $3, on_failure: block, parameters: none, rotate_bytes: 256MiB }"
    fi
  } >"$tmp/$2.yaml"
  if [ -n "${3:-}" ]; then mkdir -p "$tmp/audit-$2"; fi
  n_rules="$(grep -c '^  - name:' "$tmp/$2.yaml")"
  [ "$n_rules" = 20 ] || die "policy has $n_rules rules, not 20"
}

declare -A sys_port sys_pid durability sys_admin
start_pgwarden() {  # name [audit-durability]
  local port; port="$(free_port)"
  pgwarden_config "$port" "$1" "${2:-}"
  if [ -n "${2:-}" ]; then  # its /metrics: the audit writer's syncs and records per round
    sys_admin[$1]="$(free_port)"
    echo "admin: { listen: $LO:${sys_admin[$1]} }" >>"$tmp/$1.yaml"
  fi
  "$PGWARDEN_BIN" check --config "$tmp/$1.yaml" >"$tmp/$1.check" 2>&1 \
    || { cat "$tmp/$1.check" >&2; die "pgwarden check rejected $1.yaml"; }
  "$PGWARDEN_BIN" serve --config "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1 </dev/null &
  pids+=($!); sys_pid[$1]=$!
  sys_port[$1]=$port
  wait_port "$LO" "$port" "${sys_pid[$1]}" "$1"
  log "$1 on $LO:$port (pid ${sys_pid[$1]})"
}

sys_port[direct]=$pg_port; sys_pid[direct]=$pg_pid
sys_port[pgbouncer]=$pgb_port; sys_pid[pgbouncer]=$pgb_pid
start_pgwarden pgwarden

# Audit: each audited pgwarden must write its file before it is measured;
# a build that accepts audit.file and writes nothing fails here, not after
# the runs.
audit_systems=()
if [ "$profile" = 0 ] || [ -n "${SYSTEMS:-}" ]; then
  for s in pgwarden-audit pgwarden-synced; do
    selected "$s" || continue
    durability[$s]="$([ "$s" = pgwarden-audit ] && echo buffered || echo synced)"
    start_pgwarden "$s" "${durability[$s]}"
    psql -X -q -h "$LO" -p "${sys_port[$s]}" -d "$DB" -c "SELECT 1" >/dev/null 2>"$tmp/$s.probe.err" \
      || { cat "$tmp/$s.probe.err" >&2; die "a query through $s failed"; }
    for _ in $(seq 50); do
      [ -n "$(find "$tmp/audit-$s" -type f -size +0 2>/dev/null)" ] && break
      sleep 0.1
    done
    [ -n "$(find "$tmp/audit-$s" -type f -size +0 2>/dev/null)" ] \
      || die "$s (audit ${durability[$s]}) wrote nothing to $tmp/audit-$s after a query"
    audit_systems+=("$s")
  done
  [ "${#audit_systems[@]}" = 0 ] || log "audit files written by ${audit_systems[*]}"
fi

# ---------------------------------------------------------------------------
# What each hop really is. The client hop of every system is probed with a
# TLS handshake of our own (SSLRequest, then verification against the CA);
# PostgreSQL's pg_stat_ssl says whether the connection it got (from pgbench
# for direct, from the proxy otherwise) uses TLS. With SCRAM over TLS, a
# login with channel_binding=require says whether the system offers
# SCRAM-SHA-256-PLUS.
cat >"$tmp/tls_probe.py" <<'EOF'
import socket, ssl, struct, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)
s.sendall(struct.pack("!II", 8, 80877103))
answer = s.recv(1)
if answer != b"S":
    raise SystemExit(f"answered {answer!r} to SSLRequest, not b'S'")
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(s, server_hostname=host)
print(t.version(), t.cipher()[0])
t.close()
EOF
declare -A hop_info
for s in "${all_systems[@]}"; do
  [ -n "${sys_port[$s]:-}" ] || continue
  client_hop=plaintext
  if [ "$tls" = 1 ]; then
    client_hop="$("$PY" "$tmp/tls_probe.py" "$LO" "${sys_port[$s]}" "$pki/ca.crt" 2>&1)" \
      || die "TLS handshake with $s failed: $client_hop"
  fi
  seen="$(psql -X -At -F ' ' -h "$LO" -p "${sys_port[$s]}" -d "$DB" \
    -c "SELECT CASE WHEN ssl THEN version ELSE 'plaintext' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)" \
    || die "query through $s failed: $seen"
  if [ "$s" = direct ]; then seen="PostgreSQL's pg_stat_ssl: $seen"; else seen="upstream hop (pg_stat_ssl): $seen"; fi
  hop_info[$s]="client hop $client_hop; $seen"
  if [ "$auth" = scram ] && [ "$tls" = 1 ]; then
    if psql -X -At "host=$LO port=${sys_port[$s]} dbname=$DB channel_binding=require" -c "SELECT 1" >/dev/null 2>&1; then
      hop_info[$s]="${hop_info[$s]}; offers SCRAM-SHA-256-PLUS (libpq binds the channel)"
    else
      hop_info[$s]="${hop_info[$s]}; no SCRAM-SHA-256-PLUS (libpq authenticates without channel binding)"
    fi
  fi
  log "$s: ${hop_info[$s]}"
done

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
profile_pgbench() {  # system -> pgbench's output for one run of the profiled workload
  timeout "$RUN_TIMEOUT" "$PGBENCH" -h "$LO" -p "${sys_port[$1]}" "${pargs[@]}" 2>/dev/null
}
transactions_of() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$1"; }
perf_top() {  # lines, perf report options...: the report without its comments
  local n="$1"; shift
  perf report -i "$tmp/perf.data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n "1,${n}p" | cut -c1-180
}
if [ "$profile" = 1 ]; then
  command -v perf >/dev/null || die "perf not installed (apt-get install -y linux-perf)"
  hz="$(getconf CLK_TCK)"
  # The workload: S-simple-8, or the one --only names.
  pw="S-simple-8|-S -M simple|8"
  if [ "${#workloads[@]}" = 1 ]; then pw="${workloads[0]}"; fi
  IFS='|' read -r pname pbargs pclients <<<"$pw"
  pj=$(( pclients < 2 ? pclients : 2 ))
  # shellcheck disable=SC2206
  pargs=(-n $pbargs -c "$pclients" -j "$pj" -T "$DURATION" "$DB")
  echo "# pgwarden profile, $(date -u '+%Y-%m-%d %H:%M') UTC"
  echo
  echo "Command: \`${SYSTEMS:+SYSTEMS=\"$SYSTEMS\" }${PROFILE_SYSTEM:+PROFILE_SYSTEM=$PROFILE_SYSTEM }${WORKERS:+WORKERS=$WORKERS }${PERF_CALLGRAPH:+PERF_CALLGRAPH=$PERF_CALLGRAPH }DURATION=$DURATION bench/e2e.sh ${orig_args[*]}\`"
  echo
  echo "- pgwarden revision: $rev at the start; binary $bin_info"
  echo "- machine: $machine"
  echo "- load average (1/5/15 min) before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "## Cost per transaction, $pname (pgbench $pbargs -c $pclients, ${DURATION}s), transport $transport, sslmode=$sslmode, auth $auth"
  echo
  echo "| system | TPS | CPU µs per transaction | voluntary switches per tx | involuntary per tx | threads |"
  echo "|---|---:|---:|---:|---:|---:|"
  # Twice each, interleaved; SYSTEMS adds the audited pgwardens (then the
  # perf profile is of PROFILE_SYSTEM, default pgwarden).
  cost_systems=(pgbouncer pgwarden "${audit_systems[@]}")
  for s in "${cost_systems[@]}" "${cost_systems[@]}"; do
    pid="${sys_pid[$s]}"
    read -r t0 v0 n0 <<<"$(proc_stats "$pid")"
    o="$(profile_pgbench "$s")" || die "pgbench on $s"
    read -r t1 v1 n1 <<<"$(proc_stats "$pid")"
    tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$o" | head -n1)"
    tx="$(transactions_of "$o")"
    awk -v s="$s" -v tps="$tps" -v tx="$tx" -v dt=$((t1 - t0)) -v dv=$((v1 - v0)) -v dn=$((n1 - n0)) -v hz="$hz" \
        -v th="$(ls /proc/"$pid"/task | wc -l)" \
      'BEGIN { printf "| %s | %.0f | %.1f | %.2f | %.2f | %d |\n", s, tps, dt / hz * 1e6 / tx, dv / tx, dn / tx, th }'
  done
  echo
  if command -v strace >/dev/null; then
    # System calls per transaction (strace slows each proxy down; the counts
    # per transaction stay what they are).
    echo "System calls per transaction under strace -f -c (top 12 of each):"
    echo
    for s in pgbouncer pgwarden; do
      strace -f -c -o "$tmp/strace.$s" -p "${sys_pid[$s]}" 2>/dev/null &
      st_pid=$!
      sleep 0.5
      o="$(profile_pgbench "$s")" || die "pgbench on $s under strace"
      kill -INT "$st_pid"; wait "$st_pid" || true
      tx="$(transactions_of "$o")"
      echo "$s ($tx transactions):"
      echo '```'
      # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
      awk -v tx="$tx" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "%.6f %s\n", $4 / tx, $NF }' \
        "$tmp/strace.$s" | sort -rn \
        | awk 'NR <= 12 { printf "%8.2f  %s\n", $1, $2 } { n += $1 } END { printf "%8.2f  all system calls\n", n }'
      echo '```'
      echo
    done
  fi
  # PERF_CALLGRAPH=dwarf adds call graphs (the build keeps no frame pointers).
  psys="${PROFILE_SYSTEM:-pgwarden}"
  [ -n "${sys_pid[$psys]:-}" ] || die "PROFILE_SYSTEM $psys is not running (SYSTEMS must include it)"
  perf record -e cpu-clock -F 1999 ${PERF_CALLGRAPH:+--call-graph "$PERF_CALLGRAPH"} -p "${sys_pid[$psys]}" \
    -o "$tmp/perf.data" -- sleep "$DURATION" \
    >/dev/null 2>"$tmp/perf-record.err" &
  perf_pid=$!
  sleep 0.3
  profile_pgbench "$psys" >/dev/null || die "pgbench under perf"
  wait "$perf_pid" || { cat "$tmp/perf-record.err" >&2; die "perf record"; }
  echo "## perf profile of $psys (cpu-clock, 1999 Hz, $pname)"
  echo
  echo '```'
  echo "by object:"
  perf_top 8 --no-children --sort dso
  echo
  echo "top symbols:"
  perf_top 40 --no-children --sort dso,symbol
  echo
  echo "top symbols in pgwarden's own code and libc (percent of all samples):"
  perf_top 40 --no-children --dsos pgwarden,libc.so.6 --sort dso,symbol
  echo '```'
  if [ -n "${PERF_CALLGRAPH:-}" ]; then
    echo
    echo "inclusive time of pgwarden's functions (children included, percent of all samples):"
    echo
    echo '```'
    perf_top 60 --children --dsos pgwarden --sort symbol -g none
    echo '```'
  fi
  exit 0
fi

# ---------------------------------------------------------------------------
# Rounds.
results="$tmp/results.tsv"   # workload system round tps p50_ms p99_ms steal_pct
audit_results="$tmp/audit.tsv"   # workload system round records syncs sync_seconds waits wait_seconds
: >"$audit_results"
audit_counters() {  # system -> "records syncs sync-seconds waits wait-seconds" from its /metrics
  "$PY" - "$LO" "${sys_admin[$1]}" <<'PYEOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/metrics", timeout=10).read().decode()
v = {}
for line in text.splitlines():
    if line.startswith("#") or not line.strip():
        continue
    name, value = line.rsplit(" ", 1)
    v[name] = float(value)
print(int(v.get("pgwarden_audit_records_total", 0)), int(v.get("pgwarden_audit_sync_seconds_count", 0)),
      v.get("pgwarden_audit_sync_seconds_sum", 0.0), int(v.get("pgwarden_audit_durable_wait_seconds_count", 0)),
      v.get("pgwarden_audit_durable_wait_seconds_sum", 0.0))
PYEOF
}
: >"$results"
cpu_ticks() {  # "stolen total": the host's share of this machine's CPU time (steal), and all of it
  awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}
run_one() {  # workload-name args clients system round
  local name="$1" args="$2" clients="$3" sys="$4" round="$5"
  local port="${sys_port[$sys]}" j=$(( $3 < 2 ? $3 : 2 ))
  local dir="$tmp/runs/$name.$sys.$round"
  mkdir -p "$dir"
  local before=""
  # The writer's counters of the buffered runs of the synced rounds would count twice.
  [ -n "${sys_admin[$sys]:-}" ] && [ "$sys:${round:0:1}" != pgwarden-audit:s ] && before="$(audit_counters "$sys")"
  local st0 all0 st1 all1
  read -r st0 all0 <<<"$(cpu_ticks)"
  # shellcheck disable=SC2086
  if ! (cd "$dir" && timeout "$RUN_TIMEOUT" "$PGBENCH" -h "$LO" -p "$port" -n $args -c "$clients" -j "$j" \
          -T "$DURATION" -l --log-prefix=tx "$DB" >"$dir/out" 2>"$dir/err"); then
    cat "$dir/err" >&2; die "pgbench $name on $sys failed"
  fi
  read -r st1 all1 <<<"$(cpu_ticks)"
  local steal
  steal="$(awk -v s=$((st1 - st0)) -v a=$((all1 - all0)) 'BEGIN { printf "%.1f", (a > 0 ? 100 * s / a : 0) }')"
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
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$sys" "$round" "$tps" "${pct// /$'\t'}" "$steal" >>"$results"
  if [ -n "$before" ]; then
    read -r r0 c0 s0 w0 ws0 <<<"$before"
    read -r r1 c1 s1 w1 ws1 <<<"$(audit_counters "$sys")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$sys" "$round" "$((r1 - r0))" "$((c1 - c0))" \
      "$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.6f", b - a }')" "$((w1 - w0))" \
      "$(awk -v a="$ws0" -v b="$ws1" 'BEGIN { printf "%.6f", b - a }')" >>"$audit_results"
  fi
  rm -f "$dir"/tx.*
  log "round $round  $name  $sys  tps=$tps  p50/p99 ms=$pct  steal=$steal%"
}

total=0
for w in "${workloads[@]}"; do
  IFS='|' read -r _ _ clients <<<"$w"
  for s in "${systems[@]}"; do runs_on "$s" "$clients" && total=$((total + 1)); done
  # the buffered run paired with each synced one
  if selected pgwarden-synced && selected pgwarden-audit && runs_on pgwarden-synced "$clients"; then total=$((total + 1)); fi
done
total=$((total * ROUNDS))
log "$total pgbench runs of ${DURATION}s (${#workloads[@]} workloads, systems ${systems[*]}, $ROUNDS rounds; pgwarden-synced at 8 clients only)"
started="$(date +%s)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# Every other round runs the systems in reverse order, so no system always
# follows the same one (a run can leave the server warmer or busier).
# pgwarden-synced runs apart, after all other rounds: its syncs leave this
# machine slower for a while after its run (the host writes its disk for it;
# the stolen CPU in the runs after it shows it), which interleaved made
# whichever system followed it look slower: audit buffered / off came out
# 0.85 with it interleaved and 1.10 without, in 6 rounds of S-prepared-8
# each on 2026-12-03. Its rounds pair it with a buffered run of their own
# (round "s<n>", alternating which goes first) and wait SETTLE seconds after
# it, a sync(1) first.
SETTLE="${SETTLE:-5}"
plain_systems=() reversed_systems=()
for s in "${systems[@]}"; do [ "$s" = pgwarden-synced ] || plain_systems+=("$s"); done
for ((i = ${#plain_systems[@]} - 1; i >= 0; i--)); do reversed_systems+=("${plain_systems[$i]}"); done
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then round_systems=("${plain_systems[@]}"); else round_systems=("${reversed_systems[@]}"); fi
  for w in "${workloads[@]}"; do
    IFS='|' read -r name args clients <<<"$w"
    for s in "${round_systems[@]}"; do
      runs_on "$s" "$clients" || continue
      run_one "$name" "$args" "$clients" "$s" "$r"
    done
  done
done
if selected pgwarden-synced; then
  for ((r = 1; r <= ROUNDS; r++)); do
    if ! selected pgwarden-audit; then pair=(pgwarden-synced)
    elif ((r % 2)); then pair=(pgwarden-audit pgwarden-synced)
    else pair=(pgwarden-synced pgwarden-audit); fi
    for w in "${workloads[@]}"; do
      IFS='|' read -r name args clients <<<"$w"
      runs_on pgwarden-synced "$clients" || continue
      for s in "${pair[@]}"; do
        run_one "$name" "$args" "$clients" "$s" "s$r"
        if [ "$s" = pgwarden-synced ]; then sync; sleep "$SETTLE"; fi
      done
    done
  done
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
runs_seconds=$(( $(date +%s) - started ))

# ---------------------------------------------------------------------------
# Resident memory per idle client connection: open IDLE connections (libpq
# through psycopg, with the same sslmode and authentication as pgbench) that
# complete startup, then compare VmRSS before and after.
cat >"$tmp/idle.py" <<'EOF'
import asyncio, sys, time
import psycopg
host, port, pid, n, user, db, sslmode = sys.argv[1:8]
port, n = int(port), int(n)
settle = 2 if n >= 100 else 0.3
def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
async def main():
    await asyncio.sleep(settle)
    before = rss_kib()
    conns = []
    while len(conns) < n:
        batch = [psycopg.AsyncConnection.connect(host=host, port=port, user=user, dbname=db, sslmode=sslmode,
                                                 connect_timeout=30, autocommit=True)
                 for _ in range(min(50, n - len(conns)))]
        try:
            conns += await asyncio.gather(*batch)
        except psycopg.Error as e:
            raise SystemExit(f"connection failed after {len(conns)} connections: {e}")
    await asyncio.sleep(settle)
    after = rss_kib()
    print(before, after, len(conns), f"{(after - before) / len(conns):.1f}")
    for c in conns:
        await c.close()
asyncio.run(asyncio.wait_for(main(), 300))
EOF
declare -A rss
idle_systems=()
if [ "$do_idle" = 1 ]; then
  for s in pgbouncer pgwarden; do
    selected "$s" || continue
    log "opening $IDLE idle connections to $s"
    rss[$s]="$(timeout 600 "$PY" "$tmp/idle.py" "$LO" "${sys_port[$s]}" "${sys_pid[$s]}" "$IDLE" "$DBUSER" "$DB" "$sslmode")" \
      || die "idle connections to $s"
    log "$s RSS before/after KiB, connections, KiB per connection: ${rss[$s]}"
    idle_systems+=("$s")
    [ "$smoke" = 1 ] || sleep 2   # let the closed connections drain before the next system
  done
fi

# ---------------------------------------------------------------------------
# Audit files: stop each audited pgwarden (SIGTERM drains and flushes), then
# count its records and run `pgwarden audit verify` on its directory.
audit_failed=0
declare -A audit_line
for s in "${audit_systems[@]}"; do
  pid="${sys_pid[$s]}"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    audit_failed=1; stop="did not exit within 40 s of SIGTERM (killed)"
  fi
  rc=0; wait "$pid" 2>/dev/null || rc=$?
  [ -n "${stop:-}" ] || stop="exit status $rc after SIGTERM"
  [ "$rc" = 0 ] || audit_failed=1
  dir="$tmp/audit-$s"
  bytes="$(du -sb "$dir" | cut -f1)"
  vrc=0; verify="$("$PGWARDEN_BIN" audit verify "$dir" 2>&1)" || vrc=$?
  case "$verify" in "ok: 0 records"*) vrc="$vrc (no records)"; audit_failed=1 ;; esac
  [ "$vrc" = 0 ] || audit_failed=1
  audit_line[$s]="$s (durability ${durability[$s]}): $stop; $bytes bytes; \`pgwarden audit verify\` exit $vrc: $(echo "$verify" | tr '\n' ' ' | sed 's/ *$//')"
  log "${audit_line[$s]}"
  [ "$vrc" = 0 ] || { echo "$verify" >&2; tail -n 20 "$tmp/$s.log" >&2; }
  unset stop
done

# pgwarden's own log (level warn): anything there during a benchmark is worth
# a look, so the report counts it and quotes a few lines.
declare -A warden_log
for s in pgwarden "${audit_systems[@]}"; do
  f="$tmp/$s.log"
  n="$(grep -c . "$f" 2>/dev/null || true)"
  warden_log[$s]="${n:-0} lines"
  if [ "${n:-0}" -gt 0 ]; then
    warden_log[$s]="${warden_log[$s]}, e.g. $(sed -E 's/^[0-9T:.+-]+Z? +//' "$f" | sort | uniq -c | sort -rn | head -n 3 \
      | sed -E 's/^ *([0-9]+) (.*)$/"\2" (x\1)/' | cut -c1-200 | paste -sd ';' -)"
    log "$s logged ${warden_log[$s]}"
  fi
done

# ---------------------------------------------------------------------------
# Report.
pg_version="$("$PG_BIN/postgres" --version)"
pgb_version="$(pgbouncer --version 2>/dev/null | head -n1)"
stamp="$(date -u +%Y-%m-%d-%H%M)"
report="$tmp/report.md"
"$PY" - "$results" "${systems[*]}" "$tls" >"$tmp/table.md" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
systems = sys.argv[2].split()
tls = sys.argv[3] == "1"
order, data, by_round, steal = [], {}, {}, {}
for w, s, r, tps, p50, p99, st in rows:
    if w not in order: order.append(w)
    steal.setdefault(s, []).append(float(st))
    by_round[(w, s, r)] = float(tps)
    # The buffered runs paired with synced ones (rounds "s<n>") are for that ratio only.
    if r.startswith("s") and s != "pgwarden-synced": continue
    data.setdefault((w, s), []).append((float(tps), float(p50), float(p99)))
def agg(w, s):
    v = data.get((w, s))
    return tuple(statistics.median(x[i] for x in v) for i in range(3)) if v else None
def tps(w, s):
    a = agg(w, s)
    return a[0] if a else None
def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"
def table(hdr, lines):
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(hdr))) + "|")
    for cells in lines: print("| " + " | ".join(cells) + " |")
present = [s for s in systems if any((w, s) in data for w in order)]
wardens = [s for s in present if s.startswith("pgwarden")]
bases = [b for b in ("pgbouncer", "direct") if b in present]
if order:
    hdr = ["workload"] + [f"{s} TPS" for s in present] + [f"{s} p50/p99 ms" for s in present]
    hdr += [f"{s}/{b}" for s in wardens for b in bases]
    lines = []
    for w in order:
        cells = [w] + [f"{tps(w, s):.0f}" if agg(w, s) else "–" for s in present]
        cells += [f"{agg(w, s)[1]:.2f} / {agg(w, s)[2]:.2f}" if agg(w, s) else "–" for s in present]
        cells += [ratio(tps(w, s), tps(w, b)) for s in wardens for b in bases]
        lines.append(cells)
    table(hdr, lines)
    print()
    # On a virtual machine the host can take CPU from it (its own I/O work
    # for this machine's disk among others); more of it in one system's
    # runs than in another's is a difference this machine made, not the system.
    print("CPU time the host took from this machine during each system's runs (steal, /proc/stat): " +
          "; ".join(f"{s} median {statistics.median(steal[s]):.1f}%, max {max(steal[s]):.1f}%" for s in present) + ".")
if "pgwarden" in present and "pgwarden-audit" in present:
    print()
    print("Price of the audit log (ratios of TPS; pgwarden-synced runs at 8 clients only, in rounds of its own after all others, each paired with a buffered run and followed by a sync and a SETTLE pause, so its after-effects slow none of the other runs; synced / buffered uses those buffered runs). The first of each pair of columns divides the medians over rounds; the second takes the ratio within each round, where the two systems ran one after the other, and gives the median, the range and how many rounds the first system was at least as fast:")
    print()
    # The two systems of a ratio run back to back in each round, so the
    # ratio within a round cancels the machine's drift between rounds.
    def paired(w, a, b):
        rs = sorted(by_round[(w, a, r)] / by_round[(w, b, r)] for (w2, s2, r) in by_round
                    if w2 == w and s2 == a and (w, b, r) in by_round and by_round[(w, b, r)])
        if not rs: return "–"
        return f"{statistics.median(rs):.2f} ({rs[0]:.2f}–{rs[-1]:.2f}, {sum(x >= 1 for x in rs)} of {len(rs)} ≥ 1)"
    def synced_round_tps(w, s):  # median over the synced rounds ("s<n>")
        v = [t for (w2, s2, r), t in by_round.items() if w2 == w and s2 == s and r.startswith("s")]
        return statistics.median(v) if v else None
    lines = [[w, ratio(tps(w, "pgwarden-audit"), tps(w, "pgwarden")), paired(w, "pgwarden-audit", "pgwarden"),
              ratio(synced_round_tps(w, "pgwarden-synced"), synced_round_tps(w, "pgwarden-audit")),
              paired(w, "pgwarden-synced", "pgwarden-audit")]
             for w in order if agg(w, "pgwarden-audit")]
    table(["workload", "audit buffered / audit off", "per round: median (range, rounds ≥ 1)",
           "synced / buffered", "per round: median (range, rounds ≥ 1)"], lines)
if "S-C-8" in order:
    print()
    if tls:
        print("TLS handshake rate: `pgbench -S -C -M simple -c 8` over TLS, a new connection and a full TLS handshake per transaction (TPS = connections per second):")
    else:
        print("Connection rate: `pgbench -S -C -M simple -c 8`, plaintext, a new connection per transaction (TPS = connections per second):")
    print()
    lines = []
    for s in present:
        a = agg("S-C-8", s)
        if a:
            lines.append([s, f"{a[0]:.0f}", f"{a[1]:.2f} / {a[2]:.2f}"] + [ratio(a[0], tps("S-C-8", b)) for b in bases])
    table(["system", "connections/s", "p50 / p99 ms (connect + SELECT)"] + [f"/ {b}" for b in bases], lines)
EOF

if [ "$tls" = 1 ]; then
  client_hop="TLS on all three (pgbench sslmode=require): PostgreSQL ssl=on, pgbouncer client_tls_sslmode=require, pgwarden tls: {cert, key, required: true}; all three present the same $key_desc certificate from a throwaway CA"
else
  client_hop="plaintext on all three (pgbench sslmode=disable; PostgreSQL ssl=$([ "$server_tls" = 1 ] && echo on || echo off), pgbouncer client_tls_sslmode=disable, pgwarden without tls)"
fi
if [ "$auth" = md5 ]; then
  auth_desc="md5 in each system (cheap for the client, unlike SCRAM's PBKDF2, so a connection per transaction measures the proxies). direct: pg_hba md5. pgbouncer: auth_type=md5 against the auth_file (the user's md5 secret from pg_authid); it pools server connections. pgwarden: auth: scram with the same auth_file (it asks the client for md5, logs into PostgreSQL with the stored secret) and pools server connections. pgbench and the idle clients get PGPASSWORD"
elif [ "$auth" = scram ]; then
  auth_desc="SCRAM-SHA-256 in each system, libpq's default channel_binding=prefer (which systems offer -PLUS over TLS: see the probes above). direct: PostgreSQL, pg_hba scram-sha-256 (a password set for $DBUSER). pgbouncer: auth_type=scram-sha-256 against the auth_file (the user's SCRAM secret from pg_authid); its server connections log in with the client's SCRAM keys. pgwarden: auth: scram with the same auth_file; it logs into PostgreSQL with the client's recovered ClientKey. pgbench and the idle clients get PGPASSWORD"
else
  auth_desc="none (trust) in all three. direct: pg_hba trust. pgbouncer: auth_type=trust (accepts the client without a password; its server connections log in with trust). pgwarden: auth: passthrough (relays PostgreSQL's trust exchange)"
fi
fs_type="$(df -PT "$tmp" | awk 'NR == 2 {print $2}')"
command_line="ROUNDS=$ROUNDS DURATION=$DURATION IDLE=$IDLE SCALE=$SCALE"
[ -n "${TMPDIR:-}" ] && command_line="TMPDIR=$TMPDIR $command_line"
[ -n "${SYSTEMS:-}" ] && command_line="$command_line SYSTEMS=\"$SYSTEMS\""
[ -n "${WORKERS:-}" ] && command_line="$command_line WORKERS=$WORKERS"
[ "$server_tls" = 1 ] && command_line="$command_line TLS_KEY=$TLS_KEY"
command_line="$command_line bench/e2e.sh${orig_args[*]:+ ${orig_args[*]}}"
{
  echo "# pgwarden end-to-end benchmark, $stamp UTC"
  echo
  echo "Command: \`$command_line\`"
  echo
  echo "- pgwarden revision: $rev at the start; binary $bin_info"
  echo "- machine: $machine"
  echo "- $pg_version; $pgb_version (session mode); pgbench $("$PGBENCH" --version | awk '{print $3}')"
  echo "- load average (1/5/15 min) before the runs: $load_before; after: $load_after"
  echo "- $total pgbench runs took $((runs_seconds / 60)) min $((runs_seconds % 60)) s"
  echo "- client hop: $client_hop"
  echo "- upstream hop of pgbouncer and pgwarden: $transport, TLS $upstream_tls (pgbouncer server_tls_sslmode, pgwarden upstream.tls)"
  for s in "${all_systems[@]}"; do
    [ -n "${hop_info[$s]:-}" ] && echo "  - $s, as probed: ${hop_info[$s]}"
  done
  echo "- authentication: $auth_desc"
  echo "- pgbouncer in session mode gives each new client a pooled server connection, so its S-C-8 starts no backend and logs into PostgreSQL not at all per connection; direct and pgwarden start a PostgreSQL backend for every connection"
  echo "- pgbench -i -s $SCALE; $ROUNDS rounds of ${DURATION}s per workload and system, interleaved ${plain_systems[*]} (every other round in reverse order)$(selected pgwarden-synced && echo "; then $ROUNDS rounds of pgwarden-synced, each paired with a pgwarden-audit run (alternating which goes first) and followed by sync and ${SETTLE}s"); -j = min(clients, 2)"
  echo "- pgwarden: 20-rule policy (none denies pgbench), log level warn, workers ${WORKERS:-default (one event loop per usable CPU)}; pgwarden = audit off, pgwarden-audit = audit durability buffered, pgwarden-synced = synced (8-client workloads only); audit on_failure block, parameters none, rotate_bytes 256MiB, files on $fs_type in $tmp"
  echo "- pgwarden log at level warn during the run: $(for s in pgwarden "${audit_systems[@]}"; do printf '%s: %s. ' "$s" "${warden_log[$s]}"; done | sed 's/ $//')"
  echo "- TPS = median over rounds of pgbench's tps; p50/p99 = median over rounds of the per-transaction latency percentiles from pgbench -l"
  echo
  cat "$tmp/table.md"
  if [ "${#idle_systems[@]}" -gt 0 ]; then
    echo
    echo "Resident memory holding $IDLE idle client connections (sslmode=$sslmode, auth $auth; VmRSS after startup completed, minus before):"
    echo
    echo "| system | RSS before KiB | RSS after KiB | connections | KiB per connection |"
    echo "|---|---:|---:|---:|---:|"
    for s in "${idle_systems[@]}"; do
      read -r b a n k <<<"${rss[$s]}"
      echo "| $s | $b | $a | $n | $k |"
    done
  fi
  if [ -s "$audit_results" ]; then
    echo
    echo "The audit writer during the rounds (pgwarden's /metrics before and after each run: pgwarden_audit_records_total, pgwarden_audit_sync_seconds, pgwarden_audit_durable_wait_seconds; medians over rounds). A wait is one Query or extended batch waiting for its records to be durable:"
    echo
    echo "| workload | system | records/s | syncs/s | mean sync µs | records per sync | mean wait µs | waits per sync |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    "$PY" - "$audit_results" "$DURATION" <<'PYEOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w, s, _, records, syncs, secs, waits, wait_secs = line.split("\t")
    rows.setdefault((w, s), []).append((int(records), int(syncs), float(secs), int(waits), float(wait_secs)))
d = float(sys.argv[2])
for (w, s), runs in rows.items():
    med = lambda f: statistics.median(f(r) for r in runs)
    synced = s == "pgwarden-synced"  # buffered syncs only when a file rotates
    print(f"| {w} | {s} | {med(lambda r: r[0] / d):.0f} | " +
          (f"{med(lambda r: r[1] / d):.0f} | {med(lambda r: 1e6 * r[2] / r[1] if r[1] else 0):.0f} | "
           f"{med(lambda r: r[0] / r[1] if r[1] else 0):.1f} | {med(lambda r: 1e6 * r[4] / r[3] if r[3] else 0):.0f} | "
           f"{med(lambda r: r[3] / r[1] if r[1] else 0):.1f} |" if synced else "– | – | – | – | – |"))
PYEOF
  fi
  if [ "${#audit_systems[@]}" -gt 0 ]; then
    echo
    echo "Audit files after the run:"
    echo
    for s in "${audit_systems[@]}"; do echo "- ${audit_line[$s]//$tmp\//}"; done
  fi
} >"$report"

echo
cat "$report"
if [ -z "$out" ] && [ "$smoke" = 0 ]; then
  mkdir -p "$here/results"
  suffix=""
  [ "$transport" = unix ] && suffix="$suffix-unix"
  [ "$tls" = 1 ] && suffix="$suffix-tls"
  [ "$upstream_tls" != disable ] && suffix="$suffix-upstream-tls"
  [ "$auth" != trust ] && suffix="$suffix-$auth"
  [ "$restricted" = 1 ] && suffix="$suffix-partial"
  out="$here/results/$stamp$suffix.md"
fi
if [ -n "$out" ]; then
  cp "$report" "$out"
  log "results written to $out"
fi
[ "$audit_failed" = 0 ] || die "an audit file did not verify, or an audited pgwarden did not stop cleanly (see above)"
