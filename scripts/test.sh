#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite:
# unit tests, integration tests against a real PostgreSQL 15, and a short
# libFuzzer run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/build.sh

# Unit and integration tests (CTest labels `unit` and `integration`).
ctest --test-dir build --output-on-failure --timeout 900 -j"${JOBS:-2}"

# Fuzz targets: built with clang's libFuzzer, each run for a bounded time.
./scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
