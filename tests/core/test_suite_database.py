"""The suite's database switch: BROADCASTER_TEST_DATABASE_URL moves every workspace to PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from broadcaster.app import App
from tests.conftest import TEST_DATABASE_URL


def test_workspace_is_on_the_suite_database_in_process_and_in_subprocesses(workspace, suite_database_url):
    engine = App.load(None).engine
    if TEST_DATABASE_URL:
        assert engine.dialect.name == "postgresql"
        assert engine.url.database == make_url(suite_database_url).database != make_url(TEST_DATABASE_URL).database
    else:
        assert suite_database_url is None and engine.dialect.name == "sqlite"
    assert "station" in inspect(engine).get_table_names()
    status = subprocess.run([sys.executable, "-m", "broadcaster", "db", "status"], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    assert f"database: {engine.url.render_as_string(hide_password=True)}\n" in status


@pytest.mark.sqlite
def test_sqlite_marked_tests_keep_their_sqlite_file(workspace, suite_database_url):
    assert suite_database_url is None
    assert App.load(None).engine.dialect.name == "sqlite"


def test_database_url_from_the_environment_serves_a_config_that_names_none(run, isolated_home, monkeypatch):
    database = isolated_home / "elsewhere" / "chosen.db"
    monkeypatch.setenv("BROADCASTER_DATABASE_URL", f"sqlite:///{database}")
    run("init")
    assert database.is_file()
    assert str(App.load(None).engine.url) == f"sqlite:///{database}"
    named = isolated_home / "named.db"
    (isolated_home / "broadcaster.toml").write_text(f'[database]\nurl = "sqlite:///{named}"\n')
    run("init")
    assert str(App.load(None).engine.url) == f"sqlite:///{named}" and named.is_file()


def test_demo_keeps_its_own_sqlite_file_whatever_the_environment_names(isolated_home, monkeypatch):
    from broadcaster.demo import prepare_workspace

    monkeypatch.setenv("BROADCASTER_DATABASE_URL", f"sqlite:///{isolated_home / 'production.db'}")
    app = prepare_workspace(isolated_home / "demo")
    assert str(app.engine.url) == f"sqlite:///{isolated_home / 'demo' / 'data' / 'broadcaster.db'}"
    assert not (isolated_home / "production.db").exists()


def test_timestamps_are_stored_in_utc_whatever_the_servers_zone(workspace):
    from datetime import UTC, datetime

    from sqlalchemy import text
    from sqlmodel import select

    from broadcaster.models import Station
    from broadcaster.timeutil import as_utc

    app = App.load(None)
    if app.engine.dialect.name == "postgresql":
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'ALTER DATABASE "{app.engine.url.database}" SET timezone = \'Asia/Ho_Chi_Minh\''))
        app = App.load(None)  # new connections take the database's zone
    moment = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    with app.session() as session:
        session.add(Station(code="XA-09", name="Xã thử", created_at=moment))
    with app.session() as session:
        stored = session.exec(select(Station.created_at).where(Station.code == "XA-09")).one()
    assert as_utc(stored) == moment
