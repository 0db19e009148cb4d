#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests, in its own folder, listening on 127.0.0.1 only.
#
#   scripts/pg_cluster.sh start DIR   # initdb + start on a free port; prints the server's URL
#   scripts/pg_cluster.sh stop DIR    # stop it and delete DIR
#
# Trust authentication (no password) is safe only because it listens on loopback alone. Durability is
# off (fsync, synchronous_commit): the data is thrown away. Needs the Debian package `postgresql`.
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user the package
# creates, so DIR must be reachable by that user (a folder under /tmp is).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
(($# == 2)) || usage
action=$1
dir=$2

bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bindir/pg_ctl" ] || { echo "$0: PostgreSQL not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $action in
start)
    [ ! -e "$dir/data" ] || { echo "$0: $dir/data exists: stop that cluster first" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    as_owner "$bindir/initdb" --pgdata="$dir/data" --username=postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --silent start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=200" \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -f "$dir/data/PG_VERSION" ] || { echo "$0: no cluster in $dir" >&2; exit 1; }
    as_owner "$bindir/pg_ctl" --pgdata="$dir/data" --mode=immediate --silent stop 2>/dev/null || true
    rm -rf "$dir"
    ;;
*)
    usage
    ;;
esac
