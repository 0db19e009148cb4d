"""Driving the real CLI and daemon in subprocesses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster.app import App
from broadcaster.models import Bulletin, DaemonState, Delivery
from broadcaster.timeutil import as_utc, zone
from tests.conftest import Runner

TZ = "Asia/Ho_Chi_Minh"
PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "ninh-thuan-2023.toml"


def cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "broadcaster", *args], env=env, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed: {result.stdout}{result.stderr}")
    return result


def local_text(moment: datetime) -> str:
    return as_utc(moment).astimezone(zone(TZ)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def station_env(tmp_path: Path) -> dict:
    """A workspace with offline TTS, a file-drop station, a plan and two approved items."""
    config = tmp_path / "broadcaster.toml"
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    # the setup in this process (a CLI process loads the ORM, a second or more on a loaded machine);
    # what the tests are about runs in subprocesses, as the user runs it
    cli_here = Runner(env={"BROADCASTER_CONFIG": str(config)})
    cli_here("init", "--data-dir", str(tmp_path / "data"))
    text = config.read_text(encoding="utf-8").replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]')
    text = text.replace("heartbeat_seconds = 5", "heartbeat_seconds = 1").replace("reload_seconds = 3",
                                                                                  "reload_seconds = 1")
    config.write_text(text, encoding="utf-8")
    cli_here("station", "add", "XA-01", "--name", "Phước Hà", "--drop-dir", str(tmp_path / "drop"))
    cli_here("plan", "import", str(PLAN))
    cli_here("content", "add", "--title", "Một cửa", "--topic", "911/KH-UBND:TTHC", "--approve",
             "--text", "UBND xã thông báo: bà con làm TTHC tại bộ phận một cửa từ 7h30.")
    cli_here("content", "add", "--title", "Chuyển đổi số", "--topic", "911/KH-UBND:CDS", "--approve",
             "--text", "Bà con hãy cài ứng dụng VNeID để nộp hồ sơ trực tuyến.")
    env["_TMP"] = str(tmp_path)
    return env


def app_for(env: dict) -> App:
    return App.load(env["BROADCASTER_CONFIG"])


class DaemonProcess:
    def __init__(self, env: dict) -> None:
        self.env = env
        self.log = open(Path(env["_TMP"]) / f"daemon-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "broadcaster", "daemon"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        app = app_for(env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with app.session() as session:
                state = session.exec(select(DaemonState).where(DaemonState.pid == self.proc.pid)).first()
                if state and state.stopped_at is None:
                    return
            assert self.proc.poll() is None, self.output()
            time.sleep(0.1)
        raise AssertionError("daemon did not start:\n" + self.output())

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


def use_realtime_player(env: dict) -> None:
    """The station plays through a process that takes the bulletin's real time (ffmpeg -re into nothing)."""
    from broadcaster.models import Station

    with app_for(env).session() as session:
        station = session.exec(select(Station)).one()
        station.player, station.player_options = "device", {"command": "ffmpeg -nostdin -re -i {file} -f null -"}
        session.add(station)


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def bulletins(env: dict) -> list[Bulletin]:
    with app_for(env).session() as session:
        return list(session.exec(select(Bulletin).order_by(Bulletin.id)).all())


def deliveries(env: dict) -> list[Delivery]:
    with app_for(env).session() as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)).all())


def crash(daemon) -> None:  # noqa: ANN001
    """The daemon's process dies: its threads stop, its data folder's lock is let go; nothing is written
    (its leases stay until they expire)."""
    daemon.stop_event.set()
    for stop in daemon._station_stops.values():
        stop.set()
    for player in daemon.players.values():
        player.join(5)
    daemon.renderer.join(5)
    daemon.audio_worker.close()  # its requests pipe closes with the process: the child exits
    daemon.release()


class HangingEspeak:
    """An ``espeak-ng`` first on PATH that hangs (sleeps) while :meth:`hang` is on, and is the real one
    otherwise: a TTS process that never answers, for the audio child's deadlines. Processes started
    after the PATH change (the audio child and its espeak-ng runs) see it."""

    def __init__(self, folder: Path, monkeypatch) -> None:  # noqa: ANN001
        real = shutil.which("espeak-ng")
        assert real, "espeak-ng is needed"
        folder.mkdir(parents=True, exist_ok=True)
        self.flag, self.pid_file = folder / "hang", folder / "pids"
        script = folder / "espeak-ng"
        script.write_text(f'#!/bin/sh\nif [ -e "{self.flag}" ]; then echo $$ >> "{self.pid_file}"; '
                          f'exec sleep 3600; fi\nexec "{real}" "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def hang(self) -> None:
        self.flag.touch()

    def release(self) -> None:
        self.flag.unlink(missing_ok=True)

    def hung_pids(self) -> list[int]:
        """The espeak-ng runs that hung so far."""
        return [int(line) for line in self.pid_file.read_text().split()] if self.pid_file.exists() else []


def gone(pid: int) -> bool:
    """The process has ended (a zombie left for init to reap counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")
