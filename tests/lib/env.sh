# env.sh: helpers for integration tests (bash): TAP output, a temp dir, free ports, servers.
#
# Source it from a test script (#!/bin/bash), then:
#   env_tmpdir TAG            make $ENV_TMP, removed (and every started process
#                             stopped, by pid) when the script exits
#   env_free_port             print a free 127.0.0.1 port
#   env_start NAME CMD...     start CMD in the background, output in $ENV_TMP/NAME.log;
#                             sets ENV_PID; stopped at exit
#   env_stop PID              SIGTERM, SIGKILL after 5 s, reap
#   env_wait_port PORT [S]    wait until something accepts on 127.0.0.1:PORT
#   env_redis_start [LINE...] private redis-server (extra redis.conf lines allowed);
#                             sets REDIS_PID REDIS_PORT REDIS_ADDRESS REDIS_DIR
#   env_redis_stop
#   env_redis_cmd ARG...      send one command to it; prints the reply's first line
#   env_store                 the store's backend for this run: "postgres" under
#                             make check-postgres (CHATGW_TEST_STORE), else "sqlite"
#   env_pg_database NAME      a fresh database on $CHATGW_TEST_PG_URL's server; prints
#                             its URL
#   env_sql TARGET SQL        one statement on TARGET, a SQLite file or a postgresql://
#                             URL: rows one a line, columns separated by "|"
#   run CMD...                run CMD; sets RUN_RC, RUN_OUT, RUN_ERR
#   ok STATUS DESC / is GOT WANT DESC / like GOT ERE DESC / unlike GOT ERE DESC
#   skip DESC REASON / skip_all REASON / diag TEXT / bail_out TEXT / done_testing
#
# $REDIS_SERVER names redis-server; when it is unset, PATH is searched; when it
# is set but empty there is none (env_redis_available fails).
# CHATGW_TEST_KEEP=1 keeps the temp dir for a post-mortem.

# ---- TAP --------------------------------------------------------------------

TAP_N=0
TAP_FAILED=0

ok() {
    local status=$1
    shift
    TAP_N=$((TAP_N + 1))
    if [ "$status" -eq 0 ] 2>/dev/null; then
        printf 'ok %d - %s\n' "$TAP_N" "$*"
        return 0
    fi
    TAP_FAILED=$((TAP_FAILED + 1))
    printf 'not ok %d - %s\n' "$TAP_N" "$*"
    return 1
}

diag() {
    printf '%s\n' "$*" | sed 's/^/# /'
}

is() {
    if [ "$1" = "$2" ]; then
        ok 0 "$3"
        return 0
    fi
    ok 1 "$3"
    diag "     got: '$1'"
    diag "expected: '$2'"
    return 1
}

like() {
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        ok 0 "$3"
        return 0
    fi
    ok 1 "$3"
    diag "     got: '$1'"
    diag "expected to match: $2"
    return 1
}

unlike() {
    if ! printf '%s\n' "$1" | grep -Eq -- "$2"; then
        ok 0 "$3"
        return 0
    fi
    ok 1 "$3"
    diag "     got: '$1'"
    diag "expected not to match: $2"
    return 1
}

skip() {
    TAP_N=$((TAP_N + 1))
    printf 'ok %d - %s # SKIP %s\n' "$TAP_N" "$1" "$2"
}

skip_all() {
    printf '1..0 # SKIP %s\n' "$*"
    exit 0
}

bail_out() {
    printf 'Bail out! %s\n' "$*"
    exit 1
}

# Prints the plan; the exit status stays 0 so that the TAP lines alone decide.
done_testing() {
    printf '1..%d\n' "$TAP_N"
    [ "$TAP_FAILED" -eq 0 ] || diag "$TAP_FAILED of $TAP_N failed"
    exit 0
}

# run CMD...: RUN_RC, RUN_OUT and RUN_ERR (trailing newlines stripped).
run() {
    local out="$ENV_TMP/.run.out" err="$ENV_TMP/.run.err"
    "$@" >"$out" 2>"$err"
    RUN_RC=$?
    RUN_OUT=$(cat "$out")
    RUN_ERR=$(cat "$err")
}

# ---- temp dir, processes ----------------------------------------------------

ENV_TMP=
ENV_PIDS=

env_cleanup() {
    local pid
    for pid in $ENV_PIDS; do
        env_stop "$pid"
    done
    ENV_PIDS=
    if [ -n "$ENV_TMP" ] && [ -d "$ENV_TMP" ]; then
        if [ "${CHATGW_TEST_KEEP:-0}" = 1 ]; then
            diag "kept $ENV_TMP"
        else
            rm -rf "$ENV_TMP"
        fi
    fi
}

env_tmpdir() {
    ENV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgw-${1:-test}.XXXXXX") || bail_out "mktemp failed"
    trap env_cleanup EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Stops one process we started: SIGTERM, then SIGKILL after 5 s; reaps it.
env_stop() {
    local pid=$1 i=0 p rest=
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    for p in $ENV_PIDS; do
        [ "$p" = "$pid" ] || rest="$rest $p"
    done
    ENV_PIDS=$rest
    return 0
}

# env_start NAME CMD...: background process with its output in $ENV_TMP/NAME.log.
env_start() {
    local name=$1
    shift
    "$@" >"$ENV_TMP/$name.log" 2>&1 </dev/null &
    ENV_PID=$!
    ENV_PIDS="$ENV_PID $ENV_PIDS"
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
env_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a port in 20000..59999 that nothing listens on (yet: callers retry when
# a server then fails to bind).
env_free_port() {
    local i port
    for i in $(seq 1 100); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! env_port_busy "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# env_wait_port PORT [SECONDS] [PID]: waits for a listener; fails early when PID dies.
env_wait_port() {
    local port=$1 tries=$((${2:-10} * 10)) pid=$3 i=0
    while [ "$i" -lt "$tries" ]; do
        env_port_busy "$port" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# ---- redis ------------------------------------------------------------------

env_redis_binary() {
    if [ "${REDIS_SERVER+set}" = set ]; then
        printf '%s\n' "$REDIS_SERVER"
    else
        command -v redis-server
    fi
}

env_redis_available() {
    local bin
    bin=$(env_redis_binary) && [ -n "$bin" ] && [ -x "$bin" ]
}

# PING over bash's /dev/tcp: no redis-cli needed.
env_redis_ping() {
    local reply
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'PING\r\n' >&3
        read -r -t 2 reply <&3 || exit 1
        [ "${reply%$'\r'}" = "+PONG" ]
    ) 2>/dev/null
}

# env_redis_start [REDIS.CONF LINE...]: starts a private redis-server in
# $ENV_TMP/redis on a free loopback port, retrying on another port if the bind fails.
env_redis_start() {
    local bin attempt port i line
    bin=$(env_redis_binary)
    [ -n "$bin" ] || return 1
    REDIS_DIR="$ENV_TMP/redis"
    mkdir -p "$REDIS_DIR" || return 1
    for attempt in 1 2 3 4 5; do
        port=$(env_free_port) || return 1
        {
            printf 'bind 127.0.0.1\nport %s\ndir %s\n' "$port" "$REDIS_DIR"
            printf 'daemonize no\nsave ""\nappendonly no\nlogfile ""\n'
            for line in "$@"; do
                printf '%s\n' "$line"
            done
        } >"$REDIS_DIR/redis.conf"
        env_start redis "$bin" "$REDIS_DIR/redis.conf"
        REDIS_PID=$ENV_PID
        for i in $(seq 1 100); do
            if env_redis_ping "$port"; then
                REDIS_PORT=$port
                REDIS_ADDRESS="127.0.0.1:$port"
                return 0
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        env_stop "$REDIS_PID"
        diag "redis-server did not start on port $port (attempt $attempt):"
        diag "$(tail -n 5 "$ENV_TMP/redis.log" 2>/dev/null)"
    done
    REDIS_PID=
    return 1
}

env_redis_stop() {
    env_stop "$REDIS_PID"
    REDIS_PID=
}

# env_redis_cmd ARG...: one command in RESP over /dev/tcp; prints the first reply line
# ("+OK", ":1", "-ERR ...", "$5" for a bulk string). Fails when Redis does not answer.
env_redis_cmd() {
    local port=${REDIS_PORT:?env_redis_start first}
    (
        LC_ALL=C # ${#a} must count bytes
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        {
            printf '*%d\r\n' "$#"
            for a in "$@"; do
                printf '$%d\r\n%s\r\n' "${#a}" "$a"
            done
        } >&3
        read -r -t 5 reply <&3 || exit 1
        printf '%s\n' "${reply%$'\r'}"
    )
}

# ---- the store: SQLite or PostgreSQL ------------------------------------------

env_store() {
    if [ "${CHATGW_TEST_STORE:-}" = postgres ]; then
        echo postgres
    else
        echo sqlite
    fi
}

# env_pg_database NAME: creates database chatgw_s_NAME (made safe) on the server that
# $CHATGW_TEST_PG_URL names (make check-postgres starts it) and prints its URL.
env_pg_database() {
    local url=${CHATGW_TEST_PG_URL:?make check-postgres sets CHATGW_TEST_PG_URL} db
    db=chatgw_s_$(printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' _)
    psql -X -q -v ON_ERROR_STOP=1 -d "$url" -c "CREATE DATABASE \"$db\"" >/dev/null || return 1
    printf '%s/%s\n' "${url%/*}" "$db"
}

# env_sql TARGET SQL: sqlite3 on a file, psql on a postgresql:// URL; both print a row
# per line with "|" between columns (sqlite3's list mode, psql -At). The SQL is the
# caller's: where the dialects differ (hex(x) / encode(x, 'hex'), char() / chr()) the
# test picks by env_store.
env_sql() {
    case $1 in
    postgresql://* | postgres://*)
        psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
        ;;
    *)
        sqlite3 "$1" "$2"
        ;;
    esac
}
