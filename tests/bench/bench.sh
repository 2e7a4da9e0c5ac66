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
# The nchan reference rows (tests/bench/compare.py) need nginx with nchan; only the
# bench does, so they are not in run-all.sh's list. Without them those rows are skipped.
bench_pkgs=()
for p in nginx-light libnginx-mod-nchan; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || bench_pkgs+=("$p")
done
if [ ${#bench_pkgs[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${bench_pkgs[@]}" || echo "bench: could not install ${bench_pkgs[*]}: no nchan rows" >&2
fi
cd "$top"
[ -x configure ] || ./autogen.sh
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
    "$top/configure" -q
fi
make -j"$(nproc)"
make bench "$@"
