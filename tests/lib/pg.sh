# pg.sh: a private PostgreSQL 15 for tests, in a temp dir on a free loopback port.
# Source it, then: pg_start DIR (sets PG_PID, PG_PORT, CHATGW_TEST_PG_URL; returns 77
# when no PostgreSQL server is installed), pg_stop (ends that server by its pid).
# initdb and postgres refuse to run as root: as root, the cluster belongs to `nobody`
# and both run under setpriv (no fork: $! is the postmaster itself).

pg_bindir() {
    for d in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
    pg_dir=$1
    bin=$(pg_bindir) || return 77
    mkdir -p "$pg_dir"
    # nobody must reach it through the (root-only) temp dirs above it.
    chmod 711 "$(dirname "$pg_dir")" 2>/dev/null
    as=""
    if [ "$(id -u)" = 0 ]; then
        chown nobody "$pg_dir"
        as="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
    fi
    $as "$bin/initdb" -D "$pg_dir/data" -A trust -U chatgw -E UTF8 --no-sync \
        >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; return 1; }
    PG_PORT=$(pg_free_port)
    # No fsync: a test cluster; one socket on loopback and one in the temp dir.
    $as "$bin/postgres" -D "$pg_dir/data" -p "$PG_PORT" -k "$pg_dir" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=200 >"$pg_dir/postgres.log" 2>&1 &
    PG_PID=$!
    # Ready when it answers (bounded: a server that dies or never answers fails).
    tries=0
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
        tries=$((tries + 1))
        if ! kill -0 "$PG_PID" 2>/dev/null || [ $tries -gt 600 ]; then
            cat "$pg_dir/postgres.log" >&2
            return 1
        fi
        sleep 0.1
    done
    CHATGW_TEST_PG_URL="postgresql://chatgw@127.0.0.1:$PG_PORT/postgres"
    export PG_PID PG_PORT CHATGW_TEST_PG_URL
}

pg_stop() {
    if [ -n "${PG_PID:-}" ]; then
        kill -INT "$PG_PID" 2>/dev/null # fast shutdown
        wait "$PG_PID" 2>/dev/null
        PG_PID=
    fi
}
