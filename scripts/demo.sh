#!/usr/bin/env bash
# Installs dependencies, builds pgwarden, starts a throwaway PostgreSQL 15 (as
# the postgres user, in a temporary directory) and pgwarden in front of it
# with the example policy, prints how to connect, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

./scripts/install-deps.sh
./scripts/build.sh

pg_bin=/usr/lib/postgresql/15/bin
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port="${PG_PORT:-$(free_port)}"
proxy_port="${PGWARDEN_PORT:-6432}"

work="$(mktemp -d /tmp/pgwarden-demo.XXXXXX)"
chmod 755 "$work"
mkdir -p "$work/pgdata" "$work/run"
chown -R postgres:postgres "$work/pgdata" "$work/run" 2>/dev/null || true
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null || true
  as_postgres "$pg_bin/pg_ctl" -D "$work/pgdata" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

as_postgres "$pg_bin/initdb" -D "$work/pgdata" -U postgres --auth=trust >/dev/null
as_postgres "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/run/postgres.log" -w \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/run" start >/dev/null

# Roles the example policy talks about.
as_postgres psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres <<'SQL'
CREATE ROLE alice LOGIN SUPERUSER;
CREATE ROLE dba LOGIN SUPERUSER;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
CREATE ROLE app LOGIN;
GRANT ALL ON SCHEMA public TO bob, carol, app;
CREATE TABLE public.accounts (id int PRIMARY KEY, owner text, balance numeric);
INSERT INTO public.accounts VALUES (1, 'alice', 100), (2, 'bob', 50);
GRANT ALL ON public.accounts TO bob, carol, app;
SQL

admin_port="${PGWARDEN_ADMIN_PORT:-$(free_port)}"
# The example with this run's ports: `listen:` and the upstream's `port:`.
sed -e "s/^listen:.*/listen: 127.0.0.1:$proxy_port/" \
    -e "/^upstream:/,/^[^ ]/ s/^  port: .*/  port: $pg_port/" \
    examples/pgwarden.yaml > "$work/pgwarden.yaml"
grep -q "^  port: $pg_port\$" "$work/pgwarden.yaml" || { echo "demo: could not set the upstream port" >&2; exit 1; }
cat >> "$work/pgwarden.yaml" <<YAML
admin: { listen: 127.0.0.1:$admin_port }
audit: { file: $work/audit/pgwarden.jsonl, durability: buffered, on_failure: block }
YAML
./build/pgwarden check --config "$work/pgwarden.yaml"

./build/pgwarden serve --config "$work/pgwarden.yaml" &
proxy_pid=$!
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$proxy_port") 2>/dev/null && break
  sleep 0.1
done

cat <<MSG

pgwarden is listening on 127.0.0.1:$proxy_port in front of PostgreSQL on 127.0.0.1:$pg_port.
Policy: $repo/examples/pgwarden.yaml (running copy: $work/pgwarden.yaml)

  psql "host=127.0.0.1 port=$proxy_port user=bob dbname=postgres sslmode=disable"    # a junior: read-only
  psql "host=127.0.0.1 port=$proxy_port user=alice dbname=postgres sslmode=disable"  # an admin

Try as bob:  SELECT * FROM accounts;   DELETE FROM accounts;   DROP TABLE accounts;

Then read what happened:
  $repo/build/pgwarden audit search $work/audit    # who ran what, from where, allowed or not
  $repo/build/pgwarden audit verify $work/audit    # the hash chain is intact
  curl -s http://127.0.0.1:$admin_port/metrics     # metrics; also /healthz and /readyz

Press Ctrl-C to stop pgwarden and PostgreSQL.
MSG
wait "$proxy_pid"
