#!/bin/sh
# System packages the project uses when they are there: bubblewrap (`bwrap`), which sandboxes the
# REPL worker (no network, read-only system, private /tmp, new PID namespace; see docs/sandbox.md).
# Installs it with apt-get when it is missing and we are root on a machine with apt; otherwise
# prints one line and exits 0: the REPL then runs as a plain subprocess with reduced isolation.
set -u

if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: bubblewrap (bwrap) is not installed; the REPL will run without its sandbox" \
        "(install the 'bubblewrap' package for full isolation, see docs/sandbox.md)"
    exit 0
fi
echo "installing bubblewrap (the REPL sandbox) with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends bubblewrap >/dev/null 2>&1; then
    # A fresh machine may have no package lists yet.
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q --no-install-recommends bubblewrap >/dev/null 2>&1 || true
fi
if command -v bwrap >/dev/null 2>&1; then
    echo "bubblewrap installed: $(bwrap --version)"
else
    echo "note: could not install bubblewrap; the REPL will run without its sandbox" \
        "(see docs/sandbox.md)"
fi
exit 0
