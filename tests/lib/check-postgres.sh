#!/bin/sh
# check-postgres.sh: `make check-postgres`: the integration suite again, every stack on
# the PostgreSQL backend (a fresh database per stack on one private PostgreSQL 15 that
# this script starts, tests/lib/pg.sh), plus the store's unit tests on it.
# CHATGW_PG_TESTS overrides the list. Run from the build directory.
top=${top_srcdir:-$(dirname "$0")/../..}
. "$top/tests/lib/pg.sh"
# Every integration test whose stack has a store runs here; the tests that reach into
# the store themselves (ctl, runner, hardening, sandbox) do it through env_sql
# (tests/lib/env.sh) or Stack.sql / store_sql (tests/lib/stack.py), psql on PostgreSQL.
# Left out, none of them for a reason of the store:
#   install.test     checks the layout of `make install` and that the installed programs
#                    find each other (doctor's runner line; no database is made);
#   quickstart.test  checks deploy/quickstart.sh, the README's one-command start, which
#                    sets up its own embedded SQLite store by design (no db.url to give).
tests=${CHATGW_PG_TESTS:-"tests/unit/test_store_pg.sh tests/integration/sessions.test
    tests/integration/subscribe.test tests/integration/chat.test tests/integration/runs.test
    tests/integration/runlimit.test tests/integration/feed.test tests/integration/rules.test
    tests/integration/tickets.test tests/integration/hardening-abort.test
    tests/integration/hardening-accept.test tests/integration/codex.test
    tests/integration/homes.test tests/integration/attachments.test
    tests/integration/fencing.test tests/integration/dataloss.test tests/integration/cursor.test
    tests/integration/gemini.test tests/integration/opencode.test tests/integration/stream.test
    tests/integration/metrics.test tests/integration/subscribe-cache.test
    tests/integration/owner-cache.test
    tests/integration/cli-chat.test tests/integration/hardening-argv.test
    tests/integration/sentinel.test tests/integration/smoke-lighttpd.test
    tests/integration/ctl.test tests/integration/runner.test tests/integration/hardening.test
    tests/integration/sandbox.test tests/integration/hardening-listen.test
    tests/integration/cli-chat-tmux.test tests/integration/hosting.test
    tests/integration/smoke-apache-proxy.test tests/integration/smoke-apache-fcgid.test"}
dir=$(mktemp -d "${TMPDIR:-/tmp}/check-postgres.XXXXXX")
trap 'pg_stop; rm -rf "$dir"' EXIT INT TERM
pg_start "$dir/pg" || { echo "check-postgres: PostgreSQL did not start (postgresql-15 installed?)" >&2; exit 1; }
CHATGW_TEST_STORE=postgres
export CHATGW_TEST_STORE
# test_store_pg.sh starts its own server; the stacks use this one.
${MAKE:-make} check TESTS="$(echo $tests)"
