#!/usr/bin/env bash
# Make the PostgreSQL server binaries (initdb, pg_ctl) available for
# tests/integration/test_postgres_instance.py, which starts its own throw-away cluster.
#
# Run by CI as root on Debian 12 (bookworm), with network access to the package registries only.
# Idempotent: when initdb is already present under /usr/lib/postgresql/*/bin it changes nothing;
# otherwise it runs `apt-get update` and installs Debian's `postgresql` package, and nothing else
# system-wide. (Debian's package may create and start a default cluster on port 5432; the test does
# not use it and picks a free port of its own.)
set -euo pipefail

find_initdb() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1
}

if initdb_path="$(find_initdb)" && [ -n "$initdb_path" ]; then
    echo "postgres.sh: found $("$initdb_path" --version) at $initdb_path; nothing to install"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: no initdb under /usr/lib/postgresql/*/bin and not root;" \
         "install Debian's 'postgresql' package (apt-get install postgresql) first" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends postgresql

if initdb_path="$(find_initdb)" && [ -n "$initdb_path" ]; then
    echo "postgres.sh: installed $("$initdb_path" --version) at $initdb_path"
else
    echo "postgres.sh: 'postgresql' installed but no initdb under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
