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

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
unit_tests=$(cd tests/unit && ls *_test.cpp | sed 's/\.cpp$//' | tr '\n' ' ')
BUILD_TYPE=Sanitize TARGETS="$unit_tests" ./scripts/build.sh
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-sanitize -L unit --output-on-failure -j"${JOBS:-2}"

# Fuzz targets: built with clang's libFuzzer, each run for a bounded time.
./scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
