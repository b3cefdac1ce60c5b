#!/usr/bin/env bash
# Make sure the server binaries the tests start themselves exist: PostgreSQL (initdb,
# pg_ctl: tests/pgserver.py runs a throwaway server) and redis-server (the Celery test's
# broker, when no Redis answers on 127.0.0.1:6379). Installs only what is missing:
#   Debian/Ubuntu: apt-get install -y postgresql redis-server   (sudo when not root)
# Nothing is started or enabled here; the packages' own services are not needed.
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

packages=()
have_binaries || packages+=(postgresql)
if ! command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    packages+=(redis-server)
fi
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi

echo "ensure-test-services: installing ${packages[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            echo "ensure-test-services: need root or sudo to run apt-get install -y ${packages[*]}" >&2; exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
else
    echo "ensure-test-services: no apt-get here; install ${packages[*]} (and set PG_BINDIR for PostgreSQL)" >&2
    exit 1
fi

if ! have_binaries; then
    echo "ensure-test-services: PostgreSQL installed but initdb/pg_ctl still not found; set PG_BINDIR" >&2
    exit 1
fi
echo "ensure-test-services: ok" >&2
