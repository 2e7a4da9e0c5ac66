#!/bin/sh
# test_store_pg.sh: the store's unit tests (test_store, test_auth) against a private
# PostgreSQL (tests/lib/pg.sh). Skips (77) without a PostgreSQL server or libpq build.
srcdir=${srcdir:-$(dirname "$0")/../..}
. "$srcdir/tests/lib/pg.sh"
if ! grep -q '^#define HAVE_POSTGRES 1' ./config.h 2>/dev/null; then
    echo "1..0 # SKIP built without PostgreSQL support"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/test_store_pg.XXXXXX")
trap 'pg_stop; rm -rf "$dir"' EXIT INT TERM
pg_start "$dir/pg"
rc=$?
if [ $rc = 77 ]; then
    echo "1..0 # SKIP no PostgreSQL server (apt-get install postgresql-15)"
    exit 77
fi
[ $rc = 0 ] || { echo "Bail out! PostgreSQL did not start"; exit 1; }
./tests/unit/test_store
