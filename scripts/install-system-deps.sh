#!/bin/sh
# Debian packages the project uses when they are there, each optional:
#   bubblewrap  `bwrap`, the REPL worker's sandbox (docs/sandbox.md); without it the REPL runs as a
#               plain subprocess with reduced isolation
#   postgresql  the PostgreSQL server binaries, for the tests of the shared run store (a test
#               starts a private server under a temporary folder); without them those tests skip
#   chromium    headless Chromium, for the tests that load the HTML run viewer in a real browser;
#               without it those tests skip
# Installs what is missing with apt-get when we are root on a machine with apt; otherwise prints
# one line per missing package and exits 0. Never fails the build: the main job needs none of them.
set -u

missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
    || missing="$missing postgresql"
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || missing="$missing chromium"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not installed:$missing (needs root and apt-get); the REPL runs without its" \
        "sandbox if bubblewrap is missing, and the tests that need the others skip"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for pkg in $missing; do
    echo "installing $pkg with apt-get"
    if ! apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1; then
        # A fresh machine may have no package lists yet.
        apt-get update -q >/dev/null 2>&1 || true
        apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1 \
            || echo "note: could not install $pkg (see the comment at the top of $0)"
    fi
done
exit 0
