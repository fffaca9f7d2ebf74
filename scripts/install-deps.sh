#!/usr/bin/env bash
# Installs every Debian bookworm package pgwarden needs to build, test and benchmark.
# Idempotent: skips apt entirely when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake ccache clang pkg-config git
  libboost1.81-dev libboost-json1.81-dev libssl-dev openssl
  libyaml-cpp-dev libpg-query-dev libprotobuf-c-dev
  libgtest-dev libgmock-dev libbenchmark-dev libspdlog-dev libcli11-dev
  postgresql-15 postgresql-client-15 pgbouncer
  python3 python3-pytest python3-psycopg python3-asyncpg
  prometheus
  procps iproute2 util-linux
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
