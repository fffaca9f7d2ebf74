#!/usr/bin/env bash
# Configures and builds pgwarden into build/ (Release by default).
# BUILD_TYPE=Sanitize ./scripts/build.sh builds with ASan+UBSan into build-sanitize/;
# TARGETS="a b" builds only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."

build_type="${BUILD_TYPE:-Release}"
build_dir="build"
[ "$build_type" = "Release" ] || build_dir="build-$(echo "$build_type" | tr '[:upper:]' '[:lower:]')"

# Cache hits across clones in different directories.
export CCACHE_BASEDIR="$(pwd)"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
cmake --build "$build_dir" -j"${JOBS:-2}" ${TARGETS:+--target $TARGETS}
