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
from broadcaster.models import DaemonState, Schedule, Station
from broadcaster.timeutil import as_utc, utcnow
from tests.scheduling.helpers import (
    DaemonProcess,
    app_for,
    bulletins,
    cli,
    deliveries,
    local_text,
    wait_for,
)


def test_slots_air_on_time_and_are_logged(station_env):
    env = station_env
    start = utcnow()
    first, second = start + timedelta(seconds=12), start + timedelta(seconds=18)
    cli(env, "schedule", "add", "--station", "XA-01", "--at", local_text(first), "--length", "2m")
    daemon = DaemonProcess(env)
    try:
        # Added while the daemon runs: picked up without a restart.
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
    assert {(d.bulletin_id, d.item_id) for d in rows} == {(played[0].id, 1), (played[0].id, 2), (played[1].id, 2)}
    assert all(d.status == "played" and d.duration_s > 1 and d.topic_id and d.plan_id for d in rows)
    drops = sorted((Path(env["_TMP"]) / "drop").iterdir())
    assert len(drops) == 2 and all(p.stat().st_size > 10_000 for p in drops)
    with app_for(env).session() as session:
        assert session.get(DaemonState, 1).stopped_at is not None


def test_second_daemon_refuses(station_env):
    daemon = DaemonProcess(station_env)
    try:
        result = cli(station_env, "daemon", check=False)
        assert result.returncode != 0
        assert "already runs" in result.stderr and str(daemon.proc.pid) in result.stderr
    finally:
        daemon.stop()


def _slot_passed_while_down(env: dict, seconds_ago: float) -> datetime:
    """A one-off schedule whose time passed while no daemon ran."""
    slot = utcnow() + timedelta(seconds=3)
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


def test_sigterm_while_playing_logs_interrupted(station_env):
    app = app_for(station_env)
    with app.session() as session:
        station = session.exec(select(Station)).one()
        # A player that takes real time: ffmpeg reads the file at its own pace into nothing.
        station.player, station.player_options = "device", {"command": "ffmpeg -nostdin -re -i {file} -f null -"}
        session.add(station)
    slot = utcnow() + timedelta(seconds=6)
    cli(station_env, "schedule", "add", "--station", "XA-01", "--at", local_text(slot), "--length", "2m")
    daemon = DaemonProcess(station_env)
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
