#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl) exist for the tests and benchmarks,
# which start their own throwaway server (tests/pgserver.py). Installs only when missing:
#   Debian/Ubuntu: apt-get install -y postgresql   (sudo when not root)
# Nothing is started or enabled here; the package's own cluster is not needed by the tests.
set -euo pipefail

have_binaries() {
    if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/pg_ctl" ]; then return 0; fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then return 0; fi
    if command -v pg_config >/dev/null 2>&1; then
        local b; b="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$b" ] && [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ]; then return 0; fi
    fi
    for b in /usr/lib/postgresql/*/bin; do
        if [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ]; then return 0; fi
    done
    return 1
}

if have_binaries; then
    exit 0
fi

echo "ensure-postgres: initdb/pg_ctl not found; installing PostgreSQL server binaries" >&2
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            echo "ensure-postgres: need root or sudo to run apt-get install -y postgresql" >&2; exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq postgresql >/dev/null
elif command -v brew >/dev/null 2>&1; then
    brew install postgresql@15
else
    echo "ensure-postgres: no apt-get or brew here; install PostgreSQL (initdb, pg_ctl) and set PG_BINDIR" >&2
    exit 1
fi

if ! have_binaries; then
    echo "ensure-postgres: PostgreSQL installed but initdb/pg_ctl still not found; set PG_BINDIR" >&2
    exit 1
fi
echo "ensure-postgres: ok" >&2
