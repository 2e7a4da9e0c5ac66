#!/bin/sh
# check-postgres.sh: `make check-postgres`: the integration suite again, every stack on
# the PostgreSQL backend (a fresh database per stack on one private PostgreSQL 15 that
# this script starts, tests/lib/pg.sh), plus the store's unit tests on it.
# CHATGW_PG_TESTS overrides the list. Run from the build directory.
top=${top_srcdir:-$(dirname "$0")/../..}
. "$top/tests/lib/pg.sh"
# The integration suite minus the tests that read the SQLite file itself (ctl, runner,
# hardening, sandbox) and the web-server/packaging tiers (apache, install, quickstart,
# hosting), which do not touch the store's backend.
tests=${CHATGW_PG_TESTS:-"tests/unit/test_store_pg.sh tests/integration/sessions.test
    tests/integration/subscribe.test tests/integration/chat.test tests/integration/runs.test
    tests/integration/runlimit.test tests/integration/feed.test tests/integration/rules.test
    tests/integration/tickets.test tests/integration/hardening-abort.test
    tests/integration/hardening-accept.test tests/integration/codex.test
    tests/integration/homes.test tests/integration/attachments.test
    tests/integration/fencing.test tests/integration/dataloss.test tests/integration/cursor.test
    tests/integration/gemini.test tests/integration/opencode.test tests/integration/stream.test
    tests/integration/metrics.test tests/integration/subscribe-cache.test
    tests/integration/cli-chat.test tests/integration/hardening-argv.test
    tests/integration/sentinel.test tests/integration/smoke-lighttpd.test"}
dir=$(mktemp -d "${TMPDIR:-/tmp}/check-postgres.XXXXXX")
trap 'pg_stop; rm -rf "$dir"' EXIT INT TERM
pg_start "$dir/pg" || { echo "check-postgres: PostgreSQL did not start (postgresql-15 installed?)" >&2; exit 1; }
CHATGW_TEST_STORE=postgres
export CHATGW_TEST_STORE
# test_store_pg.sh starts its own server; the stacks use this one.
${MAKE:-make} check TESTS="$(echo $tests)"
