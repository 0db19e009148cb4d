#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, then pytest on SQLite and again on PostgreSQL.
#
#   scripts/test.sh [PYTEST ARGS]               both databases
#   scripts/test.sh --sqlite [PYTEST ARGS]      SQLite only
#   scripts/test.sh --postgresql [PYTEST ARGS]  PostgreSQL only
#
# PostgreSQL: the server in $BROADCASTER_TEST_DATABASE_URL when set (each test gets its own database
# there), else a throw-away cluster (scripts/pg_cluster.sh) that is removed on exit, even on failure.
# Tests run in $BROADCASTER_TEST_WORKERS processes (pytest-xdist, default 4): most of the suite waits on
# daemons, players and ffmpeg, so four workers on two cores halve the time.
set -euo pipefail
cd "$(dirname "$0")/.."

databases=(sqlite postgresql)
case ${1:-} in
--sqlite) databases=(sqlite); shift ;;
--postgresql) databases=(postgresql); shift ;;
esac

scripts/setup.sh
.venv/bin/ruff check broadcaster tests scripts

cluster=""
stop_cluster() { [ -z "$cluster" ] || scripts/pg_cluster.sh stop "$cluster" || rm -rf "$cluster"; }
trap stop_cluster EXIT
trap 'exit 130' INT TERM  # exit through the EXIT trap

workers=(-n "${BROADCASTER_TEST_WORKERS:-4}")
failed=0
for database in "${databases[@]}"; do
    started=$SECONDS
    if [ "$database" = sqlite ]; then
        env -u BROADCASTER_TEST_DATABASE_URL .venv/bin/pytest -q "${workers[@]}" "$@" || failed=1
    else
        if [ -z "${BROADCASTER_TEST_DATABASE_URL:-}" ]; then
            cluster=$(mktemp -d "${TMPDIR:-/tmp}/broadcaster-pg.XXXXXX")
            BROADCASTER_TEST_DATABASE_URL=$(scripts/pg_cluster.sh start "$cluster")
            export BROADCASTER_TEST_DATABASE_URL
        fi
        # After a SQLite run, the tests marked sqlite (SQLite-only features) have run already, and the
        # import fuzzer's mutations have: 300 of its cases check that a refusal changes nothing here too
        # (each case costs PostgreSQL round trips: the 1050 cases would take about two minutes). The rooms
        # whose subject is not the database (audio, screen layout, the wheel) have run on SQLite.
        if ((${#databases[@]} == 2)); then
            selection=("$@")
            ((${#selection[@]})) || selection=(tests --ignore=tests/audio --ignore=tests/screen --ignore=tests/ops)
            BROADCASTER_FUZZ_CASES=${BROADCASTER_FUZZ_CASES:-300} \
                .venv/bin/pytest -q "${workers[@]}" -m "not sqlite" "${selection[@]}" || failed=1
        else
            .venv/bin/pytest -q "${workers[@]}" "$@" || failed=1
        fi
    fi
    echo "== $database: $((SECONDS - started)) s"
done
exit $failed
