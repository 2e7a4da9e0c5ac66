#!/bin/sh
# check-cluster.sh: `make check-cluster`: the scenarios of tests/cluster/ (two chatgw
# hosts on one PostgreSQL, one Redis with Sentinels, HAProxy in front; tests/lib/
# cluster.py): follow, hostdown, homes, failover, dataloss, and partition (host A's
# Redis through a proxy it cuts; that one on a plain Redis, see its docstring). The
# list is CLUSTER_TESTS in Makefile.am. One private PostgreSQL 15 (tests/lib/pg.sh)
# serves every test, each in a database of its own. CHATGW_CLUSTER_TESTS overrides the
# list. Run from the build dir.
top=${top_srcdir:-$(dirname "$0")/../..}
. "$top/tests/lib/pg.sh"
tests=${CHATGW_CLUSTER_TESTS:-$CLUSTER_TESTS}
dir=$(mktemp -d "${TMPDIR:-/tmp}/check-cluster.XXXXXX")
trap 'pg_stop; rm -rf "$dir"' EXIT INT TERM
pg_start "$dir/pg" || { echo "check-cluster: PostgreSQL did not start (postgresql-15 installed?)" >&2; exit 1; }
# One test at a time: each starts two hosts, five Redis processes and HAProxy.
${MAKE:-make} check TESTS="$(echo $tests)" TEST_SUITE_LOG=tests/cluster/test-suite.log -j1
