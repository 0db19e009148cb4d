"""The README's first command, and emergency announcements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster.app import App
from broadcaster.audio.assemble import audio_duration_s
from broadcaster.audio.loudness import measure_loudness
from broadcaster.models import Bulletin, Delivery
from tests.scheduling.helpers import DaemonProcess, app_for, cli, use_realtime_player, wait_for


@pytest.mark.sqlite  # the demo keeps its own SQLite file whatever the suite's database: a second run repeats it
def test_demo_runs_offline_and_reports(tmp_path: Path):
    workspace = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "BROADCASTER_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "broadcaster", "demo", "--dir", str(workspace)], env=env,
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    app = App.load(workspace / "broadcaster.toml")
    with app.session() as session:
        bulletins = session.exec(select(Bulletin).order_by(Bulletin.slot_time)).all()
        rows = session.exec(select(Delivery)).all()
    slots = [b for b in bulletins if b.kind == "slot"]
    assert [(b.channel, b.status) for b in slots] == [("loudspeaker", "played"), ("sms", "sent"),
                                                       ("loudspeaker", "played")]
    (storm,) = [b for b in bulletins if b.kind == "announcement"]
    assert storm.status == "played"
    for bulletin in (slots[0], slots[2]):
        # Rendered ahead, so on air on time; the one-second promise is checked in test_daemon, here the
        # margin allows for a loaded CI machine.
        assert bulletin.late_s < 3.0
        assert abs(audio_duration_s(bulletin.audio_path) - bulletin.duration_s) < 0.05
        loudness = measure_loudness(bulletin.audio_path)
        assert abs(loudness.integrated_lufs + 16) <= 1.0 and loudness.true_peak_dbtp <= -1.0
    played = [d for d in rows if d.channel == "loudspeaker"]
    sms = [d for d in rows if d.channel == "sms"]
    assert played and all(d.status == "played" and d.topic_id is not None or d.item_id for d in played)
    outbox = [json.loads(line) for line in (workspace / "data" / "sms-outbox.jsonl").read_text().splitlines()]
    assert len(outbox) == len(sms) == len({m["to"] for m in outbox}) > 20
    assert all(d.status == "sent" for d in sms)
    assert len(list((workspace / "loa-drop").iterdir())) == 3
    # It ends by printing the report against the plan's targets.
    assert "911/KH-UBND" in result.stdout
    assert "Cải cách thủ tục hành chính" in result.stdout or "TTHC" in result.stdout


def test_announce_without_daemon_airs_directly(station_env):
    out = cli(station_env, "announce", "--text", "Bão số 3 sắp đổ bộ. Bà con không ra khơi.").stdout
    assert "trực tiếp" in out or "directly" in out
    with app_for(station_env).session() as session:
        (bulletin,) = session.exec(select(Bulletin)).all()
        (delivery,) = session.exec(select(Delivery)).all()
    assert bulletin.kind == "announcement" and bulletin.status == "played"
    timeline = json.loads(Path(bulletin.audio_path).with_suffix(".json").read_text())["timeline"]
    assert [e["reading"] for e in timeline if e["kind"] == "item"] == [1, 2]  # emergency: read twice
    assert delivery.status == "played" and delivery.duration_s > 2


def test_announce_through_running_daemon_interrupts_the_bulletin(station_env):
    from datetime import timedelta

    from broadcaster.timeutil import utcnow
    from tests.scheduling.helpers import local_text

    app = app_for(station_env)
    use_realtime_player(station_env)
    daemon = DaemonProcess(station_env)
    try:  # the slot is added to the running daemon (its poke), so a slow start cannot put it in the past
        cli(station_env, "schedule", "add", "--station", "XA-01", "--at",
            local_text(utcnow() + timedelta(seconds=5)), "--length", "2m")
        wait_for(lambda: any(b.status == "playing" for b in _bulletins(app)), 60, "bulletin playing")
        out = cli(station_env, "announce", "--text", "Thông báo khẩn: mất điện từ 14h00.", "--repeat", "1").stdout
        assert "daemon" in out
    finally:
        daemon.stop()
    slot, announcement = _bulletins(app)
    assert slot.status == "interrupted" and announcement.kind == "announcement"
    assert announcement.status == "played" and announcement.started_at >= slot.ended_at


def _bulletins(app: App) -> list[Bulletin]:
    with app.session() as session:
        return list(session.exec(select(Bulletin).order_by(Bulletin.id)).all())


def test_an_announcement_without_a_title_is_named_in_station_time(app):
    """The operator reads the title in lists and reports: station time, not UTC."""
    from datetime import UTC, datetime

    from broadcaster.announcements import create_announcement
    from broadcaster.models import ContentItem

    result = create_announcement(app, text="Mất điện từ 14 giờ", station_codes=["XA-01"], sms_group=None,
                                 now=datetime(2026, 12, 1, 2, 30, tzinfo=UTC))
    with app.read_session() as session:
        assert session.get(ContentItem, result.item_id).title == "Thông báo khẩn 2026-12-01 09:30"
