"""The real daemon in a subprocess, with slots seconds apart."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster.audio.assemble import audio_duration_s
from broadcaster.models import DaemonState, Schedule, StationLease
from broadcaster.timeutil import as_utc, utcnow
from tests.scheduling.helpers import (
    DaemonProcess,
    app_for,
    bulletins,
    cli,
    deliveries,
    local_text,
    use_realtime_player,
    wait_for,
)


def test_slots_air_on_time_and_are_logged(station_env):
    env = station_env
    first = utcnow() + timedelta(seconds=12)
    cli(env, "schedule", "add", "--station", "XA-01", "--at", local_text(first), "--length", "2m",
        "--topic", "911/KH-UBND:TTHC")
    daemon = DaemonProcess(env)
    try:
        # Added while the daemon runs: picked up without a restart. A loaded machine may take a while to
        # start the daemon: the slot is set from now, so it is never already in the past.
        second = max(first + timedelta(seconds=6), utcnow() + timedelta(seconds=8))
        cli(env, "schedule", "add", "--station", "XA-01", "--at", local_text(second), "--length", "2m",
            "--topic", "911/KH-UBND:CDS")
        wait_for(lambda: len([b for b in bulletins(env) if b.status == "played"]) == 2, 60, "two bulletins")
        status = json.loads(cli(env, "status", "--json").stdout)
        assert status["daemon"]["alive"] is True
    finally:
        assert daemon.stop() == 0, daemon.output()
    played = bulletins(env)
    assert [as_utc(b.slot_time).replace(microsecond=0) for b in played] == [first.replace(microsecond=0),
                                                                              second.replace(microsecond=0)]
    for bulletin in played:
        assert 0 <= bulletin.late_s < 1.0, bulletin.late_s  # playback starts within a second of the slot
        assert bulletin.duration_s == pytest.approx(audio_duration_s(bulletin.audio_path), abs=0.05)
    rows = deliveries(env)
    assert {(d.bulletin_id, d.item_id) for d in rows} == {(played[0].id, 1), (played[1].id, 2)}
    assert all(d.status == "played" and d.duration_s > 1 and d.topic_id and d.plan_id for d in rows)
    drops = sorted((Path(env["_TMP"]) / "drop").iterdir())
    assert len(drops) == 2 and all(p.stat().st_size > 10_000 for p in drops)
    with app_for(env).session() as session:
        state = session.exec(select(DaemonState).where(DaemonState.pid == daemon.proc.pid)).one()
        assert state.stopped_at is not None
        assert all(lease.released_at is not None for lease in session.exec(select(StationLease)).all())


def test_second_daemon_refuses(station_env):
    daemon = DaemonProcess(station_env)
    try:
        result = cli(station_env, "daemon", check=False)
        assert result.returncode != 0
        assert "already runs" in result.stderr and str(daemon.proc.pid) in result.stderr
        assert result.stderr.index("waiting up to 30 s") < result.stderr.index("already runs")  # not 30 s of silence
    finally:
        daemon.stop()


def _slot_passed_while_down(env: dict, seconds_ago: float) -> datetime:
    """A one-off schedule whose time passed while no daemon ran."""
    slot = utcnow() + timedelta(seconds=8)  # the command itself takes seconds on a loaded machine
    cli(env, "schedule", "add", "--station", "XA-01", "--at", local_text(slot), "--length", "2m")
    time.sleep(max(0.0, (slot - utcnow()).total_seconds() + seconds_ago))
    return slot


def test_restart_inside_catch_up_airs_late(station_env):
    slot = _slot_passed_while_down(station_env, 2)
    daemon = DaemonProcess(station_env)
    try:
        wait_for(lambda: any(b.status == "played" for b in bulletins(station_env)), 60, "late bulletin")
    finally:
        daemon.stop()
    (bulletin,) = bulletins(station_env)
    assert as_utc(bulletin.slot_time).replace(microsecond=0) == slot.replace(microsecond=0)
    assert bulletin.late_s >= 2
    assert all(d.late_s >= 2 and d.status == "played" for d in deliveries(station_env))


def test_restart_outside_catch_up_logs_missed(station_env):
    config = Path(station_env["BROADCASTER_CONFIG"])
    config.write_text(config.read_text().replace("catch_up_minutes = 30", "catch_up_minutes = 0"))
    _slot_passed_while_down(station_env, 1)
    daemon = DaemonProcess(station_env)
    try:
        wait_for(lambda: any(b.status == "missed" for b in bulletins(station_env)), 30, "missed bulletin")
    finally:
        daemon.stop()
    (bulletin,) = bulletins(station_env)
    assert bulletin.status == "missed" and "not running" in bulletin.reason
    assert not [d for d in deliveries(station_env) if d.status == "played"]
    log_lines = (Path(station_env["_TMP"]) / "data" / "daemon.log").read_text(encoding="utf-8").splitlines()
    assert log_lines and all(" +0700 " in line[:35] for line in log_lines if line[:4].isdigit())  # station time


def test_sigterm_while_playing_logs_interrupted(station_env):
    app = app_for(station_env)
    use_realtime_player(station_env)
    daemon = DaemonProcess(station_env)
    # the slot is set once the daemon runs (a loaded machine may take a while to start it), and poked to it
    slot = utcnow() + timedelta(seconds=8)
    cli(station_env, "schedule", "add", "--station", "XA-01", "--at", local_text(slot), "--length", "2m")
    wait_for(lambda: any(b.status == "playing" for b in bulletins(station_env)), 60, "playing")
    time.sleep(1.0)
    assert daemon.stop(signal.SIGTERM) == 0, daemon.output()
    (bulletin,) = bulletins(station_env)
    assert bulletin.status == "interrupted"
    rows = deliveries(station_env)
    assert rows and all(d.status in ("interrupted", "played") for d in rows)
    assert rows[-1].status == "interrupted"
    with app.session() as session:
        assert not session.exec(select(Schedule).where(Schedule.paused == True)).all()  # noqa: E712


CONTACTS = Path(__file__).resolve().parents[2] / "examples" / "contacts" / "phuoc-ha.csv"


def test_status_stays_alive_while_a_campaign_sends(station_env):
    """The SMS thread sends; the control loop keeps its heartbeat: status never says the daemon is dead."""
    config = Path(station_env["BROADCASTER_CONFIG"])
    config.write_text(config.read_text().replace("rate_per_second = 10.0", "rate_per_second = 1.0")
                      .replace('quiet_hours = "21:00-07:00"', 'quiet_hours = "off"'))
    cli(station_env, "contacts", "import", str(CONTACTS))
    cli(station_env, "content", "add", "--title", "Dịch vụ công", "--topic", "911/KH-UBND:CDS", "--approve",
        "--channel", "sms", "--text", "Bà con nộp hồ sơ trực tuyến tại dichvucong.gov.vn.")
    daemon = DaemonProcess(station_env)
    try:
        cli(station_env, "sms", "send", "--item", "3", "--group", "toan-xa", "--no-wait")
        seen = []
        for _ in range(6):
            seen.append(json.loads(cli(station_env, "status", "--json").stdout)["daemon"])
            time.sleep(1.0)
        sending = [d for d in deliveries(station_env) if d.channel == "sms"]
    finally:
        daemon.stop()
    assert all(s["alive"] and s["responding"] for s in seen), seen
    assert 0 < len([d for d in sending if d.status == "sent"]) < len(sending)  # it was still sending meanwhile


def test_offline_default_tts_chain_speaks_without_tracebacks(station_env):
    config = Path(station_env["BROADCASTER_CONFIG"])
    config.write_text(config.read_text().replace('tts = ["espeak"]', 'tts = ["gtts", "espeak"]'))
    first = cli(station_env, "render", "--item", "1")
    second = cli(station_env, "render", "--item", "2")
    for result in (first, second):
        assert "Traceback" not in result.stderr
    warnings = [line for line in (first.stderr + second.stderr).splitlines() if "gtts" in line.lower()]
    assert len(warnings) <= 1, warnings  # one line when gTTS is found unreachable; the next command knows it


def _player_processes(audio_path: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if audio_path.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_kill_9_while_playing_leaves_no_orphan_and_airs_again_once(station_env):
    use_realtime_player(station_env)
    daemon = DaemonProcess(station_env)
    # the slot is set once the daemon runs (a loaded machine may take a while to start it), and poked to it
    slot = utcnow() + timedelta(seconds=8)
    cli(station_env, "schedule", "add", "--station", "XA-01", "--at", local_text(slot), "--length", "2m")
    wait_for(lambda: any(b.status == "playing" and b.player_pid for b in bulletins(station_env)), 60, "playing")
    (playing,) = bulletins(station_env)
    assert _player_processes(playing.audio_path)
    daemon.stop(signal.SIGKILL)
    wait_for(lambda: not _player_processes(playing.audio_path), 10, "the player to die with the daemon")
    again = DaemonProcess(station_env)
    try:
        wait_for(lambda: bulletins(station_env)[0].status == "played", 90, "the bulletin aired again")
    finally:
        again.stop()
    (bulletin,) = bulletins(station_env)
    rows = deliveries(station_env)
    assert bulletin.attempts == 2
    assert sorted(d.status for d in rows) == ["interrupted", "interrupted", "played", "played"]


def test_a_poke_from_the_cli_reaches_the_running_daemon(station_env):
    config = Path(station_env["BROADCASTER_CONFIG"])
    text = config.read_text(encoding="utf-8").replace("heartbeat_seconds = 1", "heartbeat_seconds = 90")
    config.write_text(text.replace("lease_seconds = 30", "lease_seconds = 270"), encoding="utf-8")
    daemon = DaemonProcess(station_env)
    try:
        assert (Path(station_env["_TMP"]) / "data" / "daemon.wake").is_socket()
        started = time.monotonic()
        cli(station_env, "schedule", "add", "--station", "XA-01", "--at",
            local_text(utcnow() + timedelta(minutes=10)), "--length", "2m")
        # rendered ahead at once: the heartbeat is 90 s away and nothing polls, only the poke woke it
        wait_for(lambda: [b.status for b in bulletins(station_env)] == ["ready"], 45, "the render-ahead")
        assert time.monotonic() - started < 45
    finally:
        assert daemon.stop() == 0, daemon.output()
    assert not (Path(station_env["_TMP"]) / "data" / "daemon.wake").exists()
