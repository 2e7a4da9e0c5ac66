#!/bin/sh
# update.sh: re-fetches the vendored browser libraries of the web UI from npm, exactly
# the pinned versions below, checks them against the pinned integrity hashes and copies
# their plain browser builds and licence files here. Run it from anywhere; it needs npm,
# tar and network access to the npm registry. To move to a newer version, change the
# version and integrity (npm view PKG@VERSION dist.integrity) together, run this, test
# the page (tests/browser/webui.test) and update README.md here.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name version integrity (sha512, from the registry's dist.integrity)
pins='
marked 18.3.0 sha512-ed8zmPXlBb3UfGXN5iHMQyMhFpdqLgoV5umUXx/Q1R+FW3q8VpqpyoKUwlENL9appo2UMvNLURDVaT3AMOryGA==
dompurify 3.5.0 sha512-LYC0ZkE8P1V42JsRYTwMdme/2ET8SpOc5AA2eOFjP/IadvRd2fwiT4TVz5vkfy0XUx12aS2UaRkTnfVPNOv9vw==
'

fetch() { # name version integrity -> $tmp/name/package
    name=$1 version=$2 want=$3
    mkdir -p "$tmp/$name"
    (cd "$tmp/$name" && npm pack --silent "$name@$version" >/dev/null)
    tgz=$tmp/$name/$name-$version.tgz
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 | tr -d '\n')"
    if [ "$got" != "$want" ]; then
        echo "update.sh: $name@$version: integrity $got, expected $want" >&2
        exit 1
    fi
    tar xzf "$tgz" -C "$tmp/$name"
}

echo "$pins" | while read -r name version integrity; do
    [ -n "$name" ] || continue
    fetch "$name" "$version" "$integrity"
    p=$tmp/$name/package
    mkdir -p "$here/$name"
    case $name in
    marked)
        cp "$p/lib/marked.umd.js" "$p/LICENSE" "$here/marked/" ;;
    dompurify)
        cp "$p/dist/purify.min.js" "$p/LICENSE" "$p/LICENSE-MPL" "$here/dompurify/" ;;
    esac
    echo "$name $version: copied into $here/$name"
done
