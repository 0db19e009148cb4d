"""db backup while something writes, and db restore (refused while a daemon runs)."""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster.app import App
from broadcaster.models import DaemonState, Delivery
from broadcaster.timeutil import utcnow
from tests.conftest import db_snapshot

pytestmark = pytest.mark.sqlite  # db backup and db restore copy the SQLite file (PostgreSQL: pg_dump)


def _count(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return connection.execute("SELECT count(*) FROM delivery").fetchone()[0]
    finally:
        connection.close()


def test_backup_is_consistent_while_another_process_writes(run, app, workspace):
    stop = threading.Event()
    written = []

    def writer() -> None:
        writer_app = App.load(None)
        while not stop.is_set():
            with writer_app.session() as session:
                for _ in range(20):
                    session.add(Delivery(channel="sms", status="sent", recipient="+84912345678"))
            written.append(20)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3:
            time.sleep(0.01)
        result = run("db", "backup", workspace / "copy.db")
    finally:
        stop.set()
        thread.join()
    assert "backed up:" in result.output and "copy.db" in result.output
    copied = _count(workspace / "copy.db")
    assert copied % 20 == 0 and 60 <= copied <= sum(written)  # whole transactions only
    assert not Path(str(workspace / "copy.db") + "-wal").exists()  # one self-contained file


def test_default_backup_name_is_local_time_in_the_data_dir(run, app):
    result = run("db", "backup")
    path = Path(result.output.split("backed up: ")[1].split(" (")[0])
    assert path.parent == app.config.data_dir / "backups"
    assert path.name.startswith("broadcaster_20") and path.suffix == ".db"


def test_restore_brings_back_the_backup_and_keeps_what_it_replaced(run, app, workspace):
    run("db", "backup", workspace / "before.db")
    run("station", "add", "XA-02", "--name", "Thôn 2", "--drop-dir", workspace / "d2")
    result = run("db", "restore", workspace / "before.db", "--yes")
    assert "restored:" in result.output
    codes = [s["code"] for s in json.loads(run("station", "list", "--json").output)]
    assert codes == ["XA-01"]
    safety = Path(result.output.split("kept in: ")[1].strip())
    assert safety.is_file()
    connection = sqlite3.connect(safety)
    assert [r[0] for r in connection.execute("SELECT code FROM station ORDER BY code")] == ["XA-01", "XA-02"]
    connection.close()


def test_restore_asks_first(run, app, workspace):
    run("db", "backup", workspace / "before.db")
    run("station", "add", "XA-02", "--name", "Thôn 2", "--drop-dir", workspace / "d2")
    snapshot = db_snapshot(app)
    run("db", "restore", workspace / "before.db", input="n\n", ok=False)
    assert db_snapshot(app) == snapshot


def test_restore_refused_while_the_daemon_holds_its_lock(run, app, workspace):
    run("db", "backup", workspace / "before.db")
    lock = app.config.data_dir / "daemon.lock"
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("4242")
        handle.flush()
        snapshot = db_snapshot(app)
        result = run("db", "restore", workspace / "before.db", "--yes", ok=False)
        assert "daemon is running (pid 4242)" in result.output
        assert db_snapshot(app) == snapshot


def test_restore_refused_while_a_heartbeat_is_fresh(run, app, workspace):
    run("db", "backup", workspace / "before.db")
    with app.session() as session:
        session.add(DaemonState(id=1, pid=99, host="may-xa", started_at=utcnow(), heartbeat_at=utcnow()))
    result = run("db", "restore", workspace / "before.db", "--yes", ok=False)
    assert "pid 99 @ may-xa" in result.output


def test_restore_refuses_a_file_that_is_not_a_backup(run, app, workspace):
    bad = workspace / "notes.db"
    bad.write_text("không phải cơ sở dữ liệu", encoding="utf-8")
    snapshot = db_snapshot(app)
    assert "not a SQLite backup" in run("db", "restore", bad, "--yes", ok=False).output
    empty = workspace / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE x (y)").connection.close()
    assert "not a broadcaster database" in run("db", "restore", empty, "--yes", ok=False).output
    assert db_snapshot(app) == snapshot
    with app.read_session() as session:
        assert session.exec(select(DaemonState)).all() == []


def test_postgres_says_pg_dump(run, workspace, monkeypatch):
    config = workspace / "pg.toml"
    config.write_text('[database]\nurl = "postgresql://u:p@127.0.0.1:1/x"\n', encoding="utf-8")
    result = run("--config", config, "db", "backup", ok=False)
    assert "pg_dump" in result.output
