#!/usr/bin/env bash
# bench.sh: `make bench` from a clean checkout in one command. Installs the Debian
# packages (as tests/run-all.sh does), configures a build without sanitizers in
# build-bench/ (sanitizers multiply the costs), builds, and runs `make bench`; the
# arguments go to make, e.g.
#
#   tests/bench/bench.sh                                  # N = 100, 1 000, 10 000; 3 runs
#   tests/bench/bench.sh BENCH_N="100 1000" BENCH_RUNS=1  # quicker
#
# The table is printed; every figure and the setup are in build-bench/bench-results.json.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$top/build-bench}

CHATGW_DEPS_ONLY=1 bash "$top/tests/run-all.sh"
cd "$top"
[ -x configure ] || ./autogen.sh
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
    "$top/configure" -q
fi
make -j"$(nproc)"
make bench "$@"
