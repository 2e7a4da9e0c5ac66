#!/usr/bin/env bash
# quickstart.sh: run chatgw on 127.0.0.1 with one command, on a fresh Debian 12 machine.
#
#   deploy/quickstart.sh          install what is missing, build, start everything
#   deploy/quickstart.sh stop     stop what it started (runs in flight keep going)
#   deploy/quickstart.sh status   show what is running
#
# Settings (environment):
#   CHATGW_STATE_DIR   where the database, Redis, sockets, logs and config live
#                      (default ~/.local/state/chatgw)
#   CHATGW_PORT        HTTP port on 127.0.0.1 (default 8080)
#   CHATGW_USER        first user (default: your login name)
#   CHATGW_PROJECTS    project roots sessions may use (default: your home directory)
#   CHATGW_CLAUDE_BIN, CHATGW_CODEX_BIN, CHATGW_CURSOR_BIN, CHATGW_GEMINI_BIN,
#   CHATGW_OPENCODE_BIN  provider CLIs to drive (a fixture or a local install)
#   CHATGW_BIN_DIR     use the programs already built there instead of building
#                      (the tests use it)
# It writes CHATGW_URL and CHATGW_TOKEN to $CHATGW_STATE_DIR/env for scripts.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
state=${CHATGW_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/chatgw}
port=${CHATGW_PORT:-8080}
user=${CHATGW_USER:-$(id -un)}
projects=${CHATGW_PROJECTS:-$HOME}
build=$top/build-quickstart

say() { printf 'quickstart: %s\n' "$*"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_one() {
    local name=$1 pidfile=$2
    if pid_alive "$pidfile"; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

cmd=${1:-start}
case "$cmd" in
stop)
    stop_one lighttpd "$state/lighttpd.pid"
    stop_one chatgw.fcgi "$state/chatgw.fcgi.pid"
    stop_one redis-server "$state/redis.pid"
    exit 0
    ;;
status)
    for p in lighttpd chatgw.fcgi redis; do
        if pid_alive "$state/$p.pid"; then say "$p running (pid $(cat "$state/$p.pid"))"; else say "$p not running"; fi
    done
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac

# 1. Packages.
packages=(build-essential autoconf automake pkg-config libfcgi-dev libjansson-dev
          libsqlite3-dev libhiredis-dev libsodium-dev libcurl4-openssl-dev redis-server
          lighttpd curl
          bubblewrap) # the provider CLIs' sandbox (runner.sandbox, doc/security.md)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. Build.
if [ -n "${CHATGW_BIN_DIR:-}" ]; then
    build=$CHATGW_BIN_DIR
else
    cd "$top"
    [ -x configure ] || ./autogen.sh >/dev/null
    mkdir -p "$build"
    if [ ! -f "$build/Makefile" ]; then
        (cd "$build" && "$top/configure" -q)
    fi
    make -C "$build" -s -j"$(nproc)" >/dev/null
fi
ctl=$build/chatgwctl
fcgi=$build/chatgw.fcgi

# 3. State directory and configuration.
mkdir -p "$state/redis" "$state/www" "$state/log"
chmod 700 "$state"
conf=$state/chatgw.conf
{
    echo "# written by deploy/quickstart.sh; edit freely, it is rewritten on each start"
    echo "db.path = $state/chatgw.db"
    echo "redis.address = unix:$state/redis.sock"
    echo "fcgi.socket = $state/chatgw.sock"
    echo "runner.path = $build/chatgw-runner"
    echo "projects.roots = $projects"
    for p in CLAUDE CODEX CURSOR GEMINI OPENCODE; do
        var=CHATGW_${p}_BIN
        if [ -n "${!var:-}" ]; then
            echo "$(echo "$p" | tr 'A-Z' 'a-z').bin = ${!var}"
        fi
    done
} > "$conf"
export CHATGW_CONFIG=$conf

# 4. Redis: private, unix socket only, AOF on.
if ! pid_alive "$state/redis.pid"; then
    redis-server --port 0 --unixsocket "$state/redis.sock" --unixsocketperm 700 \
        --dir "$state/redis" --appendonly yes --appendfsync everysec --save "" \
        --daemonize yes --pidfile "$state/redis.pid" --logfile "$state/log/redis.log"
    for _ in $(seq 100); do [ -S "$state/redis.sock" ] && break; sleep 0.05; done
    say "redis-server started (socket $state/redis.sock)"
fi

# 5. Database, first user and token.
"$ctl" init >/dev/null
token=""
if [ -f "$state/env" ]; then
    # shellcheck disable=SC1091
    token=$(. "$state/env"; echo "${CHATGW_TOKEN:-}")
fi
if ! "$ctl" user list 2>/dev/null | awk 'NR > 1 {print $2}' | grep -qx "$user"; then
    "$ctl" user add "$user" >/dev/null
    token=""
fi
if [ -z "$token" ]; then
    token=$("$ctl" token create "$user" --label quickstart)
fi
url="http://127.0.0.1:$port/api"
printf 'CHATGW_URL=%s\nCHATGW_TOKEN=%s\n' "$url" "$token" > "$state/env"
chmod 600 "$state/env"

# 6. The web page.
if [ -d "$top/deploy/www" ]; then
    cp -R "$top/deploy/www/." "$state/www/"
fi

# 7. chatgw.fcgi, detached from this shell (runs it starts are detached from it in turn).
if ! pid_alive "$state/chatgw.fcgi.pid"; then
    rm -f "$state/chatgw.sock"
    setsid "$fcgi" -c "$conf" </dev/null >>"$state/log/chatgw.fcgi.log" 2>&1 &
    echo $! > "$state/chatgw.fcgi.pid"
    for _ in $(seq 100); do [ -S "$state/chatgw.sock" ] && break; sleep 0.05; done
    [ -S "$state/chatgw.sock" ] || { say "chatgw.fcgi did not start; see $state/log/chatgw.fcgi.log"; exit 1; }
    say "chatgw.fcgi started (socket $state/chatgw.sock)"
fi

# 8. lighttpd on 127.0.0.1.
if ! pid_alive "$state/lighttpd.pid"; then
    sed -e "s|@BIND@|127.0.0.1|" -e "s|@PORT@|$port|" -e "s|@WWW@|$state/www|" \
        -e "s|@STATE@|$state|" -e "s|@PREFIX@|/api|" -e "s|@SOCKET@|$state/chatgw.sock|" \
        "$top/deploy/lighttpd/chatgw.conf.in" > "$state/lighttpd.conf"
    lighttpd -f "$state/lighttpd.conf"
    for _ in $(seq 100); do pid_alive "$state/lighttpd.pid" && break; sleep 0.05; done
    say "lighttpd started on 127.0.0.1:$port"
fi

curl -fsS "$url/health" >/dev/null || { say "health check failed; logs are in $state/log"; exit 1; }
# A token from an earlier start may have been revoked: make sure the one we print works.
if ! curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$url/sessions?limit=1"; then
    token=$("$ctl" token create "$user" --label quickstart)
    printf 'CHATGW_URL=%s\nCHATGW_TOKEN=%s\n' "$url" "$token" > "$state/env"
fi
cat <<EOT

chatgw is running at $url  (state: $state)
Token for $user: $token   (also in $state/env)
Web page: http://127.0.0.1:$port/  (paste the token to log in)

Try it:
  . $state/env
  curl -s -H "Authorization: Bearer \$CHATGW_TOKEN" \$CHATGW_URL/sessions
  curl -s -H "Authorization: Bearer \$CHATGW_TOKEN" -H 'Content-Type: application/json' \\
       -d '{"provider":"claude","projectPath":"$projects"}' \$CHATGW_URL/sessions

Stop it with: deploy/quickstart.sh stop
EOT
