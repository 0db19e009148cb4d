"""Shared fixtures: every test runs in its own workspace, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from broadcaster.app import App
from broadcaster.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config and data dirs at a temp dir and clear env that would leak in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("BROADCASTER_CONFIG", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Runner:
    """Invoke the CLI as a user would; fail loudly with its output."""

    def __init__(self) -> None:
        self.runner = CliRunner()

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
