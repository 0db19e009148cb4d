"""Shared fixtures: every test runs in its own workspace, never the user's.

``BROADCASTER_TEST_DATABASE_URL`` (a PostgreSQL server URL, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5433/postgres``) switches the suite to PostgreSQL: every test
gets a fresh, empty database on that server, named after the URL's database, and dropped afterwards.
The CLI, in-process and in subprocesses, reaches it through ``$BROADCASTER_DATABASE_URL``. Tests marked
``sqlite`` (SQLite-only features: the file backup, the database file's modes) keep their SQLite file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from broadcaster.app import App
from broadcaster.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TEST_DATABASE_URL = os.environ.get("BROADCASTER_TEST_DATABASE_URL", "")
_database_numbers = itertools.count(1)


@pytest.fixture
def suite_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A fresh, empty PostgreSQL database for this test (None: the suite runs on SQLite)."""
    if not TEST_DATABASE_URL or request.node.get_closest_marker("sqlite"):
        yield None
        return
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    server = make_url(TEST_DATABASE_URL)
    name = f"{server.database}_t{os.getpid()}_{next(_database_numbers)}"
    admin_url = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # FILE_COPY: a small database is copied in ~20 ms instead of ~300 ms of WAL (PostgreSQL 15+).
        strategy = " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'" + strategy)
                      .format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # FORCE: connections the test left open (an App's engine pool) would block the drop.
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_database_url: str | None) -> Path:
    """Point config and data dirs at a temp dir and clear env that would leak in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("BROADCASTER_CONFIG", "BROADCASTER_DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    if suite_database_url:
        monkeypatch.setenv("BROADCASTER_DATABASE_URL", suite_database_url)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Runner:
    """Invoke the CLI as a user would; fail loudly with its output."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        """``env``: variables set while each command runs (e.g. another workspace's BROADCASTER_CONFIG)."""
        self.runner = CliRunner(env=env)

    def __call__(self, *args: str, ok: bool = True, input: str | None = None):
        result = self.runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"broadcaster {' '.join(map(str, args))} exited {result.exit_code}:\n"
                                 f"{result.output}")
        if not ok and result.exit_code == 0:
            raise AssertionError(f"broadcaster {' '.join(map(str, args))} should have failed:\n{result.output}")
        return result


@pytest.fixture
def run() -> Runner:
    return Runner()


@pytest.fixture
def workspace(run: Runner, isolated_home: Path) -> Path:
    """An initialised workspace with one file-player station XA-01."""
    run("init")
    run("station", "add", "XA-01", "--name", "Xã Phước Hà", "--commune", "Phước Hà",
        "--drop-dir", str(isolated_home / "drop"))
    return isolated_home


@pytest.fixture
def app(workspace: Path) -> App:
    return App.load(None)


def db_snapshot(app: App) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a refused command changed nothing."""
    from sqlalchemy import inspect, text

    snapshot = {}
    with app.engine.connect() as connection:
        for table in sorted(inspect(app.engine).get_table_names()):
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            snapshot[table] = sorted(map(tuple, rows), key=repr)
    return snapshot


def environ_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
