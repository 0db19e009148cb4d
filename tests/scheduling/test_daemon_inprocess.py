"""The daemon in-process with an injected clock: decisions at air time, repeat gap, catch-up, recovery.

Every test drives the real Daemon (its renderer, player and SMS threads, espeak, file players)
and the real CLI (CliRunner) for the operator's actions; only time is injected.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster import schedules
from broadcaster.app import App
from broadcaster.db import session_scope
from broadcaster.deliveries import BulletinStatus
from broadcaster.models import Bulletin, BulletinItem, Delivery, Station, StationLease
from broadcaster.scheduling.daemon import Daemon
from broadcaster.timeutil import as_utc, utcnow, zone
from tests.scheduling.helpers import HangingEspeak, crash, gone, wait_for

PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "ninh-thuan-2023.toml"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = as_utc(now)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Live:
    """A workspace, a clock and helpers; the daemon is started by the test."""

    def __init__(self, run, root: Path) -> None:
        self.run = run
        self.root = root
        self.clock = Clock(utcnow().replace(microsecond=0))
        self.daemon: Daemon | None = None

    @property
    def app(self) -> App:
        return App.load(None)

    def add_item(self, title: str, topic: str, text: str, *extra: str) -> int:
        self.run("content", "add", "--title", title, "--topic", topic, "--approve", "--text", text, *extra)
        return max(row["id"] for row in json.loads(self.run("content", "list", "--json").output))

    def schedule(self, at: datetime, *, topics: tuple[str, ...] = (), length_s: int = 300,
                 channel: str = "loudspeaker", group: str | None = None) -> int:
        with session_scope(self.app.ready_engine()) as session:
            schedule = schedules.add_schedule(session, station_code="XA-01", channel=channel, cron=None, at=at,
                                              length_s=length_s, topic_codes=list(topics), group_name=group,
                                              now=at - timedelta(minutes=1))
            schedule.created_at = at - timedelta(hours=1)
            return schedule.id

    def start(self) -> Daemon:
        """The daemon with its control loop running (APScheduler left out: slots are fired by the test)."""
        self.daemon = Daemon(self.app, clock=self.clock, use_scheduler=False, sms_poll_seconds=0.2)
        self.daemon.start(lock_wait_s=0)
        threading.Thread(target=self.daemon.loop, daemon=True).start()
        return self.daemon

    def crash(self) -> None:
        """The process dies: its threads stop, its lock is released; nothing is cleaned up in the log.
        The next daemon starts once its leases have expired."""
        daemon = self.daemon
        crash(daemon)
        self.clock.advance(seconds=daemon.lease_s + 1)
        self.daemon = None

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.shutdown()
            self.daemon = None

    def bulletins(self) -> list[Bulletin]:
        with self.app.read_session() as session:
            return list(session.exec(select(Bulletin).order_by(Bulletin.id)).all())

    def items_of(self, bulletin_id: int, *, dropped: bool = False) -> list[int]:
        with self.app.read_session() as session:
            rows = session.exec(select(BulletinItem).where(BulletinItem.bulletin_id == bulletin_id)
                                .order_by(BulletinItem.position)).all()
        return [r.item_id for r in rows if bool(r.dropped) == dropped]

    def deliveries(self) -> list[Delivery]:
        with self.app.read_session() as session:
            return list(session.exec(select(Delivery).order_by(Delivery.id)).all())


@pytest.fixture
def live(run, workspace: Path):
    config = workspace / "config" / "broadcaster" / "config.toml"
    text = config.read_text(encoding="utf-8").replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]')
    text = text.replace("heartbeat_seconds = 5", "heartbeat_seconds = 1")
    config.write_text(text, encoding="utf-8")
    run("plan", "import", str(PLAN))
    world = Live(run, workspace)
    world.one = world.add_item("Một cửa", "911/KH-UBND:TTHC", "Bà con làm thủ tục tại bộ phận một cửa.")
    world.two = world.add_item("Chuyển đổi số", "911/KH-UBND:CDS", "Bà con hãy cài ứng dụng VNeID.")
    yield world
    world.stop()


def test_an_item_retired_after_render_ahead_does_not_air(live):
    slot = live.clock.now + timedelta(minutes=10)
    live.schedule(slot)
    daemon = live.start()
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "ready" and live.items_of(bulletin.id) == [live.one, live.two]

    live.run("content", "retire", str(live.one))
    preview = live.run("schedule", "preview", "--days", "1").output
    assert "WILL NOT AIR" in preview and "retired" in preview  # preview says what will really air

    live.clock.now = slot
    daemon.slot_due_at(bulletin.schedule_id, slot)
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "played"
    assert live.items_of(bulletin.id) == [live.two] and live.items_of(bulletin.id, dropped=True) == [live.one]
    assert [(d.item_id, d.status) for d in live.deliveries()] == [(live.two, "played")]
    (row,) = live.deliveries()  # a file drop: stamped at the handover, its airtime counted
    assert as_utc(row.started_at) == as_utc(row.ended_at) == as_utc(bulletin.started_at) and row.duration_s > 1
    manifest = json.loads(Path(bulletin.audio_path).with_suffix(".json").read_text())
    assert [i["id"] for i in manifest["items"]] == [live.two]  # the aired file was rendered again without it


def test_an_item_edited_after_render_ahead_airs_as_edited(live):
    slot = live.clock.now + timedelta(minutes=10)
    live.schedule(slot)
    daemon = live.start()
    daemon.wait_idle()
    (before,) = live.bulletins()
    with session_scope(live.app.ready_engine()) as session:  # what 'content edit' does: new text, updated_at
        from broadcaster.models import ContentItem, ContentText

        text = session.exec(select(ContentText).where(ContentText.item_id == live.two)).one()
        text.text = "Bà con hãy cài ứng dụng VNeID và kích hoạt tài khoản định danh mức hai ngay hôm nay."
        item = session.get(ContentItem, live.two)
        item.updated_at = utcnow()
        session.add_all([text, item])
    live.clock.now = slot
    daemon.slot_due_at(before.schedule_id, slot)
    daemon.wait_idle()
    (after,) = live.bulletins()
    assert after.status == "played" and after.audio_path != before.audio_path
    assert after.duration_s > before.duration_s + 2


def test_two_slots_rendered_together_never_carry_the_same_items(live):
    first = live.clock.now + timedelta(minutes=5)
    live.schedule(first, length_s=60)
    live.schedule(first + timedelta(seconds=10), length_s=60)
    daemon = live.start()
    daemon.wait_idle()
    a, b = live.bulletins()
    assert a.status == "ready" and live.items_of(a.id) == [live.one, live.two]
    assert b.status == "skipped" and live.items_of(b.id) == []  # the repeat gap counts planned items


def test_a_paused_slot_rendered_ahead_is_skipped(live):
    slot = live.clock.now + timedelta(minutes=10)
    schedule_id = live.schedule(slot)
    daemon = live.start()
    daemon.wait_idle()
    live.run("schedule", "pause", str(schedule_id))
    live.clock.now = slot
    daemon.slot_due_at(schedule_id, slot)
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "skipped" and "paused" in bulletin.reason and live.deliveries() == []


def test_an_announcement_airs_once_then_ends(live):
    daemon = live.start()
    live.run("announce", "--text", "Bão số 3 sắp đổ bộ.", "--repeat", "1", "--no-wait")
    daemon.tick(reload=True)
    daemon.wait_idle()
    (announcement,) = live.bulletins()
    assert announcement.kind == "announcement" and announcement.status == "played"
    later = live.clock.advance(minutes=1)
    schedule_id = live.schedule(later + timedelta(minutes=1))
    live.clock.advance(minutes=1)
    daemon.slot_due_at(schedule_id, live.clock.now)
    daemon.wait_idle()
    _, slot = live.bulletins()
    assert slot.status == "played" and live.items_of(slot.id) == [live.one, live.two]  # not the announcement
    aired = [(d.bulletin_id, d.item_id) for d in live.deliveries() if d.status == "played"]
    assert aired.count((announcement.id, live.items_of(announcement.id)[0])) == 1


def test_an_announcement_until_rides_along_but_never_in_another_topics_slot(live):
    daemon = live.start()
    until = (live.clock.now + timedelta(hours=2)).astimezone(zone("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M")
    live.run("announce", "--text", "Mất điện từ 14h00.", "--repeat", "1", "--no-wait", "--topic",
             "911/KH-UBND:TTHC", "--until", until)
    daemon.tick(reload=True)
    daemon.wait_idle()
    (announcement,) = live.bulletins()
    (emergency_item,) = live.items_of(announcement.id)
    other = live.schedule(live.clock.now + timedelta(minutes=5), topics=("911/KH-UBND:CDS",))
    same = live.schedule(live.clock.now + timedelta(minutes=6), topics=("911/KH-UBND:TTHC",))
    daemon.tick(reload=True)
    daemon.wait_idle()
    by_schedule = {b.schedule_id: b for b in live.bulletins() if b.kind == "slot"}
    assert live.items_of(by_schedule[other].id) == [live.two]
    assert live.items_of(by_schedule[same].id) == [emergency_item, live.one]


def test_an_emergency_does_not_wait_for_a_slot_still_rendering(live, monkeypatch):
    from broadcaster.scheduling.bulletins import Bulletins

    release = threading.Event()
    real_render = Bulletins.render

    def slow_render(self, bulletin_id):
        with session_scope(self.engine) as session:
            kind = session.get(Bulletin, bulletin_id).kind
        if kind == "slot":
            release.wait(30)
        return real_render(self, bulletin_id)

    monkeypatch.setattr(Bulletins, "render", slow_render)
    schedule_id = live.schedule(live.clock.now + timedelta(hours=2))
    daemon = live.start()
    daemon.slot_due_at(schedule_id, live.clock.now)  # due now, its render hangs
    live.run("announce", "--text", "Thông báo khẩn: đê sông có nguy cơ vỡ.", "--repeat", "1", "--no-wait")
    daemon.tick(reload=True)
    deadline = utcnow() + timedelta(seconds=20)
    while utcnow() < deadline and not any(b.kind == "announcement" and b.status == "played"
                                          for b in live.bulletins()):
        threading.Event().wait(0.05)
    statuses = {b.kind: b.status for b in live.bulletins()}
    assert statuses == {"slot": "rendering", "announcement": "played"}
    release.set()
    daemon.wait_idle()
    assert {b.kind: b.status for b in live.bulletins()} == {"slot": "played", "announcement": "played"}


def test_catch_up_airs_the_latest_missed_slot_and_logs_the_others(live):
    now = live.clock.now
    old, recent = now - timedelta(hours=2), now - timedelta(minutes=3)
    for moment in (old, recent):
        live.schedule(moment)
    with session_scope(live.app.ready_engine()) as session:  # the last daemon served it before both slots
        station = session.exec(select(Station).where(Station.code == "XA-01")).one()
        seen = now - timedelta(hours=3)
        session.add(StationLease(station_id=station.id, holder="x:1:old", instance="old", acquired_at=seen,
                                 renewed_at=seen, expires_at=seen, released_at=seen))
    daemon = live.start()
    daemon.wait_idle()
    missed, aired = live.bulletins()
    assert missed.status == "missed" and "not running" in missed.reason
    assert aired.status == "played" and as_utc(aired.slot_time) == recent
    (missed_row,) = [d for d in live.deliveries() if d.bulletin_id == missed.id]
    assert missed_row.status == "missed"  # every missed slot is in the log


def test_a_crash_while_rendering_an_announcement_airs_it_on_restart(live):
    from broadcaster.scheduling.bulletins import Bulletins

    with pytest.MonkeyPatch.context() as patch:  # the render never finishes: the process dies during it
        patch.setattr(Bulletins, "render", lambda self, bulletin_id: threading.Event().wait(3) and False)
        daemon = live.start()
        live.run("announce", "--text", "Khẩn: lũ quét.", "--repeat", "1", "--no-wait")
        daemon.tick(reload=True)
        wait_for(lambda: [b.status for b in live.bulletins()] == ["rendering"], 20, "the render to start")
        live.crash()
    live.start().wait_idle()
    (announcement,) = live.bulletins()
    assert announcement.status == "played"
    assert [d.status for d in live.deliveries()] == ["played"]


def test_a_crash_while_rendering_a_due_slot_airs_it_late_on_restart(live):
    from broadcaster.scheduling.bulletins import Bulletins

    slot = live.clock.now
    schedule_id = live.schedule(slot + timedelta(hours=1))
    with session_scope(live.app.ready_engine()) as session:
        from broadcaster.models import Schedule

        schedule = session.get(Schedule, schedule_id)
        schedule.at = slot
        session.add(schedule)
    started, running = threading.Event(), {}

    def render_until_the_crash(self, bulletin_id: int) -> bool:
        started.set()
        running["daemon"].stop_event.wait(30)
        return False

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Bulletins, "render", render_until_the_crash)
        daemon = running["daemon"] = live.start()
        daemon.slot_due_at(schedule_id, slot)
        assert started.wait(30)
        assert live.bulletins()[0].status == "rendering"
        live.crash()
    live.clock.advance(minutes=2)
    live.start().wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "played"


def test_a_render_that_cannot_write_fails_fast_and_is_retried(live):
    slot = live.clock.now + timedelta(minutes=10)
    live.schedule(slot)
    output_dir = live.app.config.output_dir
    output_dir.rename(output_dir.with_name("bulletins-moved"))
    output_dir.write_text("not a folder")  # writing a bulletin there fails at once, like a full disk
    daemon = live.start()
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "stale" and "render failed" in bulletin.reason
    output_dir.unlink()
    live.clock.advance(seconds=31)
    daemon.tick(reload=True)
    daemon.wait_idle()
    assert live.bulletins()[0].status == "ready"


def test_a_render_child_killed_mid_render_is_a_render_failure_retried(live, monkeypatch):
    """The audio child dies (OOM killer, kill -9) with a render in flight: the bulletin is stale with the
    reason, the daemon does not hang, and the retry (in a new child) renders it."""
    from broadcaster.scheduling import audio_worker

    real_send, killed = audio_worker._send, []

    def send_then_die(stream, message):  # noqa: ANN001
        real_send(stream, message)
        if isinstance(message, tuple) and message[1:2] == ("render",) and not killed:
            killed.append(live.daemon.audio_worker.pid)
            live.daemon.audio_worker.kill()

    monkeypatch.setattr(audio_worker, "_send", send_then_die)
    slot = live.clock.now + timedelta(minutes=10)
    live.schedule(slot)
    daemon = live.start()
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert killed and bulletin.status == "stale" and "audio process died" in bulletin.reason
    live.clock.advance(seconds=31)
    daemon.tick(reload=True)
    daemon.wait_idle()
    assert live.bulletins()[0].status == "ready"
    assert daemon.audio_worker.pid not in (None, killed[0])


def test_a_render_that_hangs_is_killed_with_its_speech_processes_and_retried(live, monkeypatch):
    """espeak-ng never answers: the render's deadline kills the audio child and the espeak-ng runs it
    started, the bulletin is stale with the reason, and the retry (espeak-ng answering again) makes it."""
    from broadcaster.scheduling import audio_worker

    monkeypatch.setattr(audio_worker, "RENDER_DEADLINE_FLOOR_S", 2.0)
    monkeypatch.setattr(audio_worker, "RENDER_DEADLINE_PER_AIR_S", 0.0)
    espeak = HangingEspeak(live.root / "fake-bin", monkeypatch)
    espeak.hang()
    slot = live.clock.now + timedelta(minutes=10)
    live.schedule(slot)
    daemon = live.start()
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "stale" and "did not answer within 2 s (render)" in bulletin.reason
    assert espeak.hung_pids()
    wait_for(lambda: all(gone(pid) for pid in espeak.hung_pids()), 10, "the hung espeak-ng runs to die")
    espeak.release()
    monkeypatch.setattr(audio_worker, "RENDER_DEADLINE_FLOOR_S", 60.0)  # a new child starts in seconds
    live.clock.advance(seconds=31)
    daemon.tick(reload=True)
    daemon.wait_idle()
    assert live.bulletins()[0].status == "ready"
    live.clock.now = slot
    daemon.slot_due_at(bulletin.schedule_id, slot)
    daemon.wait_idle()
    assert live.bulletins()[0].status == "played"


def test_an_announcement_whose_render_failed_is_retried_while_the_daemon_runs(live, monkeypatch):
    """An emergency's render hangs once and is killed at its (short) deadline: the announcement is not
    left stale until a restart; the control loop, asleep until a heartbeat a minute away, plans the retry
    at once, and the announcement airs once."""
    from broadcaster.scheduling import audio_worker
    from broadcaster.scheduling import daemon as daemon_module

    monkeypatch.setattr(audio_worker, "EMERGENCY_RENDER_DEADLINE_FLOOR_S", 2.0)
    monkeypatch.setattr(daemon_module, "EMERGENCY_RENDER_RETRY_S", 0.5)
    _slow_heartbeat(live)
    espeak = HangingEspeak(live.root / "fake-bin", monkeypatch)
    daemon = live.start()
    espeak.hang()
    live.run("announce", "--text", "Khẩn: nước sông dâng cao, bà con di dời ngay.", "--repeat", "1", "--no-wait")
    daemon.tick(reload=True)
    wait_for(lambda: [b.status for b in live.bulletins()] == ["stale"], 30, "the hung render to be killed")
    (announcement,) = live.bulletins()
    assert "did not answer within 2 s (render)" in announcement.reason
    espeak.release()
    monkeypatch.setattr(audio_worker, "EMERGENCY_RENDER_DEADLINE_FLOOR_S", 60.0)  # a new child starts in seconds
    wait_for(lambda: announcement.id in daemon.render_retry_at, 10, "the player to report the failure")
    daemon.tick()
    assert live.bulletins()[0].status == "stale"  # not before its retry moment
    # past the retry moment, and past the announcement's own time (the CLI's wall clock, not the test's)
    live.clock.now = max(live.clock.now, as_utc(announcement.slot_time)) + timedelta(seconds=1)
    wait_for(lambda: [b.status for b in live.bulletins()] == ["played"], 20, "the retry, by the loop alone")
    assert [d.status for d in live.deliveries()] == ["played"]


def test_a_failed_player_is_retried_inside_the_catch_up_window(live):
    with session_scope(live.app.ready_engine()) as session:
        station = session.exec(select(Station)).one()
        station.player, station.player_options = "device", {"command": "false"}
        session.add(station)
    slot = live.clock.now + timedelta(minutes=1)
    schedule_id = live.schedule(slot)
    daemon = live.start()
    daemon.wait_idle()
    live.clock.now = slot
    daemon.slot_due_at(schedule_id, slot)
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "failed"
    with session_scope(live.app.ready_engine()) as session:
        station = session.exec(select(Station)).one()
        station.player, station.player_options = "file", {"drop_dir": str(live.root / "drop")}
        session.add(station)
    live.clock.advance(seconds=31)
    daemon.tick(reload=True)
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "played" and bulletin.attempts == 2
    assert sorted(d.status for d in live.deliveries()) == ["failed", "failed", "played", "played"]


def test_status_says_running_from_the_lock(live):
    daemon = live.start()
    out = json.loads(live.run("status", "--json").output)
    assert out["daemon"]["alive"] is True
    daemon.shutdown()
    live.daemon = None
    assert json.loads(live.run("status", "--json").output)["daemon"]["alive"] is False


def test_bulletin_status_vocabulary_is_owned_by_deliveries():
    import broadcaster.scheduling.bulletins as bulletins_mod
    import broadcaster.scheduling.daemon as daemon_mod

    assert BulletinStatus.READY == "ready"
    for module in (daemon_mod, bulletins_mod):
        assert not [name for name in vars(module) if name in ("READY", "RENDERING", "STALE")]


def test_cron_schedules_become_apscheduler_jobs_at_their_cron_times(live):
    from broadcaster.cron import parse

    live.run("schedule", "add", "--station", "XA-01", "--cron", "30 5 * * 1-5", "--length", "10m")
    daemon = Daemon(live.app, clock=live.clock, sms_poll_seconds=0.2)
    daemon.start(lock_wait_s=0)
    live.daemon = daemon
    (job,) = [j for j in daemon.scheduler.get_jobs() if j.id.startswith("slot-")]
    expected = parse("30 5 * * 1-5").next_after(utcnow(), zone("Asia/Ho_Chi_Minh"))
    assert as_utc(job.next_run_time) == expected
    assert job.func == daemon.slot_due  # a bound method that only enqueues


def test_the_daemon_applies_retention_once_a_day(live):
    import os
    import time

    old = live.app.config.output_dir / "XA-01_b99_old.mp3"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"ID3")
    year_ago = time.time() - 400 * 86400
    os.utime(old, (year_ago, year_ago))
    daemon = live.start()
    daemon._next_prune = 0.0  # due now (normally ten minutes after start, then daily)
    daemon.tick(reload=True)
    deadline = time.monotonic() + 10
    while old.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not old.exists()
    assert daemon._next_prune > time.monotonic() + 23 * 3600


def test_a_clock_jump_forward_is_caught_up_not_lost(live, caplog):
    import logging

    first, second = live.clock.now + timedelta(minutes=5), live.clock.now + timedelta(minutes=15)
    live.schedule(first)
    live.schedule(second)
    daemon = live.start()
    daemon.wait_idle()
    caplog.set_level(logging.WARNING, logger="broadcaster.daemon")
    daemon.tick()  # a fresh clock sample: the idle loop's last one may be up to a heartbeat old
    live.clock.advance(minutes=40)  # set forward past both: the first falls outside the catch-up window
    daemon.tick()
    daemon.wait_idle()
    missed, aired = live.bulletins()
    assert missed.status == "missed" and aired.status == "played" and as_utc(aired.slot_time) == second
    assert [r.getMessage() for r in caplog.records if "jumped" in r.getMessage()] == [
        "Đồng hồ máy nhảy +2400 giây / the system clock jumped by +2400 s"]


def test_an_unreadable_stored_recording_drops_that_item_not_the_bulletin(live):
    import subprocess

    wav = live.root / "loi-moi.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(wav), "Xin mời bà con đến nhà văn hóa thôn."], check=True)
    live.run("content", "add", "--title", "Ghi âm", "--topic", "911/KH-UBND:TTHC", "--approve", "--audio", wav,
             "--channel", "loudspeaker")
    with live.app.read_session() as session:
        from broadcaster.models import ContentText

        stored = session.exec(select(ContentText).where(ContentText.audio_path.is_not(None))).one()
    recording = live.app.config.recordings_dir / stored.audio_path
    recording.write_bytes(b"not audio any more")  # the stored copy got damaged on disk
    live.schedule(live.clock.now + timedelta(minutes=10), length_s=600)
    daemon = live.start()
    daemon.wait_idle()
    (bulletin,) = live.bulletins()
    assert bulletin.status == "ready"
    assert live.items_of(bulletin.id) == [live.one, live.two]
    assert live.items_of(bulletin.id, dropped=True) == [stored.item_id]


def _slow_heartbeat(live, seconds: int = 60) -> None:
    """A heartbeat far away: whatever wakes the daemon in the test is the due moment or a poke."""
    config = live.root / "config" / "broadcaster" / "config.toml"
    text = config.read_text(encoding="utf-8").replace("heartbeat_seconds = 1", f"heartbeat_seconds = {seconds}")
    config.write_text(text.replace("lease_seconds = 30", f"lease_seconds = {3 * seconds}"), encoding="utf-8")


def _count_ticks(daemon: Daemon) -> list[float]:
    ticks: list[float] = []
    tick = daemon.tick

    def counted(**kwargs) -> None:  # noqa: ANN003
        ticks.append(time.monotonic())
        tick(**kwargs)

    daemon.tick = counted
    return ticks


def test_the_idle_daemon_sleeps_until_a_slot_enters_the_render_ahead_window(live):
    _slow_heartbeat(live)
    live.clock = utcnow  # real time: the sleep's end is the wall clock's due moment
    ahead = timedelta(minutes=live.app.config.render.ahead_minutes)
    enters = utcnow() + timedelta(seconds=8)
    live.schedule(enters + ahead)
    daemon = live.start()
    daemon.wait_idle()
    assert live.bulletins() == []  # not in the window yet
    remaining = (enters - utcnow()).total_seconds()
    assert abs(daemon.seconds_until_due() - remaining) < 0.5  # asleep until then, not a heartbeat (60 s)
    ticks = _count_ticks(daemon)
    time.sleep(max(0.0, min(1.5, remaining - 1.0)))
    assert ticks == []  # asleep: no look at the database in between
    deadline = time.monotonic() + 15
    while not live.bulletins() and time.monotonic() < deadline:
        time.sleep(0.05)
    (bulletin,) = live.bulletins()
    assert as_utc(bulletin.composed_at) >= enters.replace(microsecond=0)  # woke when due, not before
    assert 1 <= len(ticks) <= 2
    daemon.wait_idle()
    assert live.bulletins()[0].status == "ready"


def test_a_schedule_added_or_an_announcement_wakes_the_sleeping_daemon_at_once(live):
    _slow_heartbeat(live)
    daemon = live.start()
    daemon.wait_idle()
    ticks = _count_ticks(daemon)
    assert daemon.seconds_until_due() > 30
    slot = live.clock.now + timedelta(minutes=5)
    added = time.monotonic()
    live.run("schedule", "add", "--station", "XA-01", "--at", slot.astimezone(zone("Asia/Ho_Chi_Minh"))
             .strftime("%Y-%m-%d %H:%M:%S"), "--length", "5m")
    done = time.monotonic()
    while not live.bulletins() and time.monotonic() < done + 10:
        time.sleep(0.02)
    assert ticks and added < ticks[0] < done + 2.0  # the command's poke woke it, not the heartbeat (60 s away)
    assert daemon.wakeup.pokes >= 1
    (bulletin,) = live.bulletins()  # rendered ahead for the new slot
    daemon.wait_idle()

    started = time.monotonic()
    out = live.run("announce", "--station", "XA-01", "--no-wait", "--repeat", "1", "--text", "Mất điện lúc 14 giờ.")
    assert "handed to the running daemon" in out.output
    assert time.monotonic() - started < 10  # claimed at the poke (without it: refused after 15 s)
    daemon.wait_idle()
    announcement = [b for b in live.bulletins() if b.kind == "announcement"]
    assert [b.status for b in announcement] == ["played"]


def test_announce_gets_the_audio_child_ready_before_it_writes_anything(live, monkeypatch):
    """``announce`` tells the daemon first, so the child's cold start runs while the command loads and
    writes; that datagram starts the child and is not a poke (the daemon does not look again for it)."""
    from broadcaster import announcements
    from broadcaster.scheduling import wakeup

    _slow_heartbeat(live)
    daemon = live.start()
    daemon.wait_idle()
    assert daemon.audio_worker.pid is None
    pokes = daemon.wakeup.pokes
    assert wakeup.poke(live.app.config, wakeup.GET_READY)
    wait_for(lambda: daemon.audio_worker.pid is not None, 20, "the audio child to start")
    assert daemon.wakeup.pokes == pokes and live.bulletins() == []

    events = []
    real_poke, real_announce = wakeup.poke, announcements.announce
    monkeypatch.setattr(wakeup, "poke", lambda config, message=wakeup.WAKE: events.append(message)
                        or real_poke(config, message))
    monkeypatch.setattr(announcements, "announce", lambda *a, **k: events.append("announce") or real_announce(*a, **k))
    live.run("announce", "--station", "XA-01", "--no-wait", "--repeat", "1", "--text", "Mất điện lúc 14 giờ.")
    assert events[:2] == [wakeup.GET_READY, "announce"]
    daemon.wait_idle()
    assert [b.status for b in live.bulletins()] == ["played"]


def test_a_stopped_daemon_leaves_no_thread_waiting_and_no_socket(live):
    daemon = live.start()
    daemon.wait_idle()
    socket_file = live.app.config.data_dir / "daemon.wake"
    assert socket_file.exists()
    player = daemon.player(1)  # station XA-01's player, asleep on its queue
    live.stop()
    daemon.renderer.join(5)
    player.join(5)
    assert not daemon.renderer.is_alive() and not player.is_alive()
    assert not socket_file.exists()
    from broadcaster.scheduling.wakeup import poke

    assert poke(live.app.config) is False  # nobody listens: nothing happens, no error
