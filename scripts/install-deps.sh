#!/usr/bin/env bash
# Installs every Debian bookworm package pgwarden needs to build, test and benchmark,
# then the npm packages of the node-postgres client test (tests/clients/node).
# Idempotent and quiet: skips apt when everything is installed, and npm when
# node_modules is newer than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ccache clang pkg-config git
  libboost1.81-dev libboost-json1.81-dev libssl-dev openssl zlib1g-dev
  libyaml-cpp-dev libpg-query-dev libprotobuf-c-dev
  libgtest-dev libgmock-dev libbenchmark-dev libspdlog-dev libcli11-dev
  postgresql-15 postgresql-client-15 pgbouncer
  python3 python3-pytest python3-psycopg python3-asyncpg python3-psycopg2 python3-sqlalchemy
  python3-jwt python3-cryptography
  default-jdk-headless libpostgresql-jdbc-java
  prometheus prometheus-alertmanager rsyslog
  procps iproute2 util-linux
)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_updated=""
apt_install() {
  echo "installing: $*"
  [ -n "$apt_updated" ] || $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  apt_updated=yes
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# Node.js: usually there already (Node.js 20, whose package brings npm);
# otherwise Debian's nodejs, and its npm if nodejs did not bring one.
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm

# node-postgres and pg-copy-streams at the versions package-lock.json pins.
# A failure here (no registry) is reported and left to the node test, which
# then fails saying what is missing, so the rest of the suite still runs.
node_client=tests/clients/node
stamp="$node_client/node_modules/.package-lock.json"  # npm writes it after a complete install
if [ ! -f "$stamp" ] || [ "$node_client/package-lock.json" -nt "$stamp" ]; then
  if ! (cd "$node_client" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "install-deps: npm ci failed in $node_client; the node-postgres test will fail" >&2
  fi
fi
