"""Many daemons on one database: station leases, takeover after a death, claims that hold with many
writers, and items published from the district for some stations.

The daemons are real ``Daemon`` objects (their renderer, players, espeak and file players) with an
injected clock, each with its own data folder (as on its own PC) and one shared database; the
operator's actions go through the CLI. The end-to-end test runs two daemon processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster import deliveries, leases, schedules
from broadcaster.app import App
from broadcaster.db import session_scope
from broadcaster.errors import BroadcasterError
from broadcaster.models import Bulletin, BulletinItem, Delivery, Station, StationLease
from broadcaster.scheduling.bulletins import Bulletins
from broadcaster.scheduling.daemon import Daemon
from broadcaster.timeutil import as_utc, local, utcnow
from tests.scheduling.helpers import crash
from tests.scheduling.test_daemon_inprocess import PLAN, Clock

TZ = "Asia/Ho_Chi_Minh"


class District:
    """One database, one config per PC (its own data folder), daemons started by the test."""

    def __init__(self, run, root: Path) -> None:
        self.run = run
        self.root = root
        self.clock = Clock(utcnow().replace(microsecond=0))
        self.daemons: list[Daemon] = []
        self.main = App.load(None)

    def pc(self, name: str) -> App:
        """The config of another PC: the same database, its own data folder."""
        source = self.main.config.path.read_text(encoding="utf-8")
        data = self.root / f"pc-{name}"
        path = self.root / f"{name}.toml"
        url = self.main.config.database_url
        text = source.replace('data_dir = ""', f'data_dir = "{data.as_posix()}"', 1)
        text = text.replace('url = ""', f'url = "{url}"', 1)
        text = text.replace(f'data_dir = "{self.main.config.data_dir.as_posix()}"',
                            f'data_dir = "{data.as_posix()}"', 1)
        path.write_text(text, encoding="utf-8")
        app = App.load(path)
        assert app.config.data_dir == data and app.config.database_url == url
        return app

    def daemon(self, name: str, *stations: str, loop: bool = True, clock: Clock | None = None) -> Daemon:
        daemon = Daemon(self.pc(name), clock=clock or self.clock, use_scheduler=False, sms_poll_seconds=0.2,
                        stations=list(stations))
        daemon.start(lock_wait_s=0)
        self.daemons.append(daemon)
        if loop:
            threading.Thread(target=daemon.loop, daemon=True).start()
        return daemon

    def crash(self, daemon: Daemon) -> None:
        crash(daemon)
        self.daemons.remove(daemon)

    def schedule(self, station: str, at) -> int:  # noqa: ANN001
        with session_scope(self.main.ready_engine()) as session:
            schedule = schedules.add_schedule(session, station_code=station, channel="loudspeaker", cron=None,
                                              at=at, length_s=300, topic_codes=[], group_name=None,
                                              now=at - timedelta(minutes=1))
            schedule.created_at = at - timedelta(hours=1)
            return schedule.id

    def bulletins(self) -> list[Bulletin]:
        with self.main.read_session() as session:
            return list(session.exec(select(Bulletin).order_by(Bulletin.id)).all())

    def played(self) -> list[tuple[int, int]]:
        """(bulletin, item) of every row that counts as aired."""
        with self.main.read_session() as session:
            return [(d.bulletin_id, d.item_id) for d in session.exec(select(Delivery).where(
                Delivery.status == "played").order_by(Delivery.id)).all()]

    def items_of(self, bulletin_id: int) -> list[int]:
        with self.main.read_session() as session:
            return [r.item_id for r in session.exec(select(BulletinItem).where(
                BulletinItem.bulletin_id == bulletin_id).order_by(BulletinItem.position)).all() if not r.dropped]

    def station_id(self, code: str) -> int:
        with self.main.read_session() as session:
            return session.exec(select(Station.id).where(Station.code == code)).one()

    def stop(self) -> None:
        for daemon in list(self.daemons):
            daemon.shutdown()
        self.daemons.clear()


@pytest.fixture
def district(run, workspace: Path):
    config = workspace / "config" / "broadcaster" / "config.toml"
    text = config.read_text(encoding="utf-8").replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]')
    config.write_text(text.replace("heartbeat_seconds = 5", "heartbeat_seconds = 1"), encoding="utf-8")
    run("station", "add", "XA-02", "--name", "Xã Phước Hải", "--commune", "Phước Hải",
        "--drop-dir", str(workspace / "drop2"))
    run("plan", "import", str(PLAN))
    run("content", "add", "--title", "Một cửa", "--topic", "911/KH-UBND:TTHC", "--approve",
        "--text", "Bà con làm thủ tục tại bộ phận một cửa.")
    world = District(run, workspace)
    yield world
    world.stop()


def test_two_daemons_share_one_database_and_each_airs_only_its_own_station(district):
    a = district.daemon("a", "XA-01")
    b = district.daemon("b", "XA-02")
    slot = district.clock.now + timedelta(minutes=1)
    one, two = district.schedule("XA-01", slot), district.schedule("XA-02", slot)
    district.clock.now = slot
    for daemon in (a, b):  # both schedulers fire both slots: only the holder of each station acts
        daemon.slot_due_at(one, slot)
        daemon.slot_due_at(two, slot)
    a.wait_idle()
    b.wait_idle()
    by_schedule = {x.schedule_id: x for x in district.bulletins()}
    assert {by_schedule[one].status, by_schedule[two].status} == {"played"}
    assert by_schedule[one].claimed_by.split(":")[1] == str(os.getpid())
    assert len(district.played()) == 2 and len(set(district.played())) == 2  # each slot aired once
    assert set(a.players) == {district.station_id("XA-01")} and set(b.players) == {district.station_id("XA-02")}
    assert len(list((district.root / "drop").iterdir())) == 1 and len(list((district.root / "drop2").iterdir())) == 1

    for daemon in (a, b):  # the clock moved a minute: their heartbeats renew the leases (the loop may sleep)
        daemon.heartbeat()
    with pytest.raises(BroadcasterError) as refused:  # a third PC asked for a held station
        district.daemon("c", "XA-02")
    assert f"station XA-02 is served by another daemon ({b.holder})" in str(refused.value)
    assert "Đài XA-02" in str(refused.value) and len(str(refused.value).splitlines()) == 1
    with pytest.raises(BroadcasterError, match="served by another daemon"):  # 'every station': all are held
        district.daemon("d")

    status = district.run("status").output
    assert f"{a.holder} phục vụ / serves 1 đài/stations: XA-01" in status
    assert f"{b.holder} phục vụ / serves 1 đài/stations: XA-02" in status
    held = {row["station"]: row for row in json.loads(district.run("status", "--json").output)["stations"]}
    assert held["XA-01"]["holder"] == a.holder and held["XA-01"]["lease"] == "alive"


def test_cloned_pcs_with_the_same_host_and_pid_are_still_two_holders(district):
    a = district.daemon("a", "XA-01", loop=False)
    b = Daemon(district.pc("b"), clock=district.clock, use_scheduler=False, stations=["XA-01"])
    assert a.holder.rsplit(":", 1)[0] == b.holder.rsplit(":", 1)[0]  # same host, same pid
    assert a.holder != b.holder
    with pytest.raises(BroadcasterError, match="served by another daemon"):
        b.start(lock_wait_s=0)


def test_a_dead_daemons_station_is_taken_over_after_its_lease_with_the_missed_slot_caught_up(district, caplog):
    a = district.daemon("a", "XA-01", loop=False)
    b = district.daemon("b", "XA-02", loop=False)
    # XA-02 is on air at B when A dies: the takeover of XA-01 must not touch it
    on_air = district.schedule("XA-02", district.clock.now + timedelta(minutes=20))
    b.prepare_upcoming()
    b.wait_idle()
    (b_bulletin,) = district.bulletins()
    assert b_bulletin.status == "ready"
    assert deliveries.open_airing(district.main.ready_engine(), b_bulletin.id, backend="file") is not None
    district.crash(a)
    missed_while_dead = district.clock.advance(seconds=10)
    schedule_id = district.schedule("XA-01", missed_while_dead)

    with pytest.raises(BroadcasterError, match=r"station XA-01 is served by another daemon \(.*\)"):
        district.daemon("a2", "XA-01", loop=False)  # the lease is still alive: refused, nothing done
    assert [x.id for x in district.bulletins()] == [b_bulletin.id]
    status = district.run("status").output
    assert f"{a.holder} phục vụ / serves 1 đài/stations: XA-01" in status  # not yet known dead

    district.clock.advance(seconds=a.lease_s)  # the lease runs out
    a2 = district.daemon("a2", "XA-01", loop=False)
    a2.wait_idle()
    aired = [x for x in district.bulletins() if x.schedule_id == schedule_id]
    assert len(aired) == 1 and aired[0].status == "played"
    assert f"Phát bù lịch {schedule_id}" in caplog.text  # by the catch-up rules
    with district.main.read_session() as session:
        assert session.get(Bulletin, b_bulletin.id).status == "playing"  # B's airing untouched
        assert session.get(Bulletin, b_bulletin.id).schedule_id == on_air
        lease = session.get(StationLease, district.station_id("XA-01"))
    assert lease.holder == a2.holder and lease.generation == 2


def test_status_says_a_station_whose_daemon_died(district):
    behind = Clock(district.clock.now - timedelta(minutes=5))  # its lease ran out minutes ago
    a = district.daemon("a", "XA-01", loop=False, clock=behind)
    district.crash(a)
    status = district.run("status").output
    assert f"XA-01: DAEMON ĐÃ CHẾT / daemon died (lease expired) {a.holder}" in status
    assert "XA-02: chưa có daemon / never served" in status


def test_a_daemon_that_lost_its_lease_stops_airing_the_station(district):
    a = district.daemon("a", "XA-01", loop=False)
    slot = district.clock.now + timedelta(minutes=2)
    schedule_id = district.schedule("XA-01", slot)
    district.clock.advance(seconds=a.lease_s + 1)  # A froze (no heartbeat) past its lease
    b = district.daemon("b", "XA-01", loop=False)
    a.heartbeat()  # A wakes up: its renewal fails, the station is no longer its
    assert a.held == set() and a.players == {}
    district.clock.now = slot
    a.slot_due_at(schedule_id, slot)
    b.slot_due_at(schedule_id, slot)
    a.wait_idle()
    b.wait_idle()
    (bulletin,) = district.bulletins()
    assert bulletin.status == "played" and len(district.played()) == 1
    assert list((district.root / "pc-a").glob("bulletins/**/*.mp3")) == []  # A rendered nothing for it


def test_a_clean_stop_frees_the_station_at_once(district):
    a = district.daemon("a", "XA-01", loop=False)
    a.shutdown()
    district.daemons.remove(a)
    b = district.daemon("b", "XA-01", loop=False)
    assert b.held == {district.station_id("XA-01")}


def test_two_writers_composing_one_slot_write_one_bulletin(district):
    """On PostgreSQL two daemons can both see "no bulletin yet": the unique (schedule, slot time) decides."""
    slot = district.clock.now + timedelta(minutes=5)
    schedule_id = district.schedule("XA-01", slot)
    first, second = Bulletins(district.pc("a"), clock=district.clock), Bulletins(district.pc("b"), clock=district.clock)
    assert first.plan_slot(schedule_id, slot) is not None
    with pytest.MonkeyPatch.context() as patch:  # the second writer's look-up ran before the first committed
        patch.setattr(deliveries, "find_slot_bulletin", lambda session, schedule_id, slot_time: None)
        assert second.plan_slot(schedule_id, slot) is None
    assert len(district.bulletins()) == 1


def test_two_writers_opening_one_airing_air_it_once(district):
    a = district.daemon("a", "XA-01", loop=False)
    slot = district.clock.now + timedelta(minutes=5)
    district.schedule("XA-01", slot)
    a.prepare_upcoming()
    a.wait_idle()
    (bulletin,) = district.bulletins()
    engine = district.main.ready_engine()
    results = []
    barrier = threading.Barrier(4)

    def open_it() -> None:
        barrier.wait()
        results.append(deliveries.open_airing(engine, bulletin.id, backend="file"))

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
    with district.main.read_session() as session:
        rows = session.exec(select(Delivery).where(Delivery.bulletin_id == bulletin.id)).all()
    assert [r.status for r in rows] == ["playing"]  # one airing's rows, not four


def test_announce_hands_a_served_station_to_its_daemon_and_airs_the_other_itself(district):
    a = district.daemon("a", "XA-01")
    result = district.run("announce", "--text", "Khẩn: nước sông lên nhanh.", "--repeat", "1")
    assert "1 đài không có daemon phục vụ, đã phát trực tiếp" in result.output
    assert "no daemon serves: aired directly" in result.output
    a.wait_idle()
    by_station = {x.station_id: x for x in district.bulletins()}
    assert {x.status for x in by_station.values()} == {"played"}
    assert by_station[district.station_id("XA-01")].claimed_by.endswith(leases.machine_id())
    with district.main.read_session() as session:  # announce let go of XA-02 when done
        lease = session.get(StationLease, district.station_id("XA-02"))
    assert lease.released_at is not None and leases.is_announce(lease.instance)
    b = district.daemon("b", "XA-02", loop=False)
    assert b.held == {district.station_id("XA-02")}


def test_district_items_air_only_at_their_stations(district):
    run = district.run
    run("content", "add", "--title", "Riêng Phước Hải", "--topic", "911/KH-UBND:CDS", "--approve",
        "--station", "XA-02", "--text", "Bà con Phước Hải nộp hồ sơ trực tuyến.")
    run("content", "add", "--title", "Riêng xã Phước Hà", "--topic", "911/KH-UBND:CDS", "--approve",
        "--commune", "Phước Hà", "--text", "Bà con Phước Hà cài ứng dụng VNeID.")
    listing = json.loads(run("content", "list", "--json").output)
    common, for_two, for_one = (row["id"] for row in listing)
    shown = json.loads(run("content", "show", str(for_two), "--json").output)
    assert shown["stations"] == ["XA-02"]
    assert "Đài / stations: XA-01" in run("content", "show", str(for_one)).output
    bad = run("content", "add", "--title", "x", "--topic", "911/KH-UBND:CDS", "--station", "XA-99",
              "--text", "x", ok=False)
    assert "unknown station 'XA-99'" in bad.output and len(run("content", "list", "--json").output) > 2
    assert len(json.loads(run("content", "list", "--json").output)) == 3  # nothing half-written

    daemon = district.daemon("a")  # every station
    slot = district.clock.now + timedelta(minutes=1)
    one, two = district.schedule("XA-01", slot), district.schedule("XA-02", slot)
    district.clock.now = slot
    daemon.slot_due_at(one, slot)
    daemon.slot_due_at(two, slot)
    daemon.wait_idle()
    by_schedule = {x.schedule_id: x for x in district.bulletins()}
    assert by_schedule[one].status == by_schedule[two].status == "played"
    assert sorted(district.items_of(by_schedule[one].id)) == sorted([common, for_one])
    assert sorted(district.items_of(by_schedule[two].id)) == sorted([common, for_two])


def test_an_item_taken_off_a_station_after_render_ahead_does_not_air_there(district):
    run = district.run
    run("content", "add", "--title", "Huyện", "--topic", "911/KH-UBND:CDS", "--approve",
        "--text", "Huyện thông báo lịch tiếp dân.")
    item_id = max(row["id"] for row in json.loads(run("content", "list", "--json").output))
    daemon = district.daemon("a", "XA-01")
    slot = district.clock.now + timedelta(minutes=5)
    schedule_id = district.schedule("XA-01", slot)
    daemon.tick(reload=True)
    daemon.wait_idle()
    (bulletin,) = district.bulletins()
    assert item_id in district.items_of(bulletin.id)
    with session_scope(district.main.ready_engine()) as session:  # the district re-publishes it for XA-02 only
        from broadcaster import content

        content.publish_for_stations(session, [content.get_item(session, item_id)], [district.station_id("XA-02")])
    district.clock.now = slot
    daemon.slot_due_at(schedule_id, slot)
    daemon.wait_idle()
    (bulletin,) = district.bulletins()
    assert bulletin.status == "played" and item_id not in district.items_of(bulletin.id)
    assert (bulletin.id, item_id) not in district.played()


# ---------------------------------------------------------------- processes


def _daemon_process(config: Path, *stations: str, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "broadcaster", "--config", str(config), "daemon"]
    for code in stations:
        args += ["--station", code]
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_daemon_processes_on_one_database_then_one_killed(district):
    """Two PCs (processes) share the database; one is killed -9. Another PC is refused its station while
    the lease runs; the killed PC's own daemon, restarted (systemd), serves again at once (the data
    folder's lock proves its predecessor dead). Every slot airs exactly once."""
    for name in ("a", "b", "c"):
        path = district.root / f"{name}.toml"
        district.pc(name)
        path.write_text(path.read_text(encoding="utf-8").replace("lease_seconds = 30", "lease_seconds = 60")
                        .replace("reload_seconds = 3", "reload_seconds = 1")
                        .replace("repeat_gap_hours = 20", "repeat_gap_hours = 0"), encoding="utf-8")
    start = utcnow() + timedelta(seconds=20)  # the processes start slowly on a loaded machine
    for station in ("XA-01", "XA-02"):
        for offset in (0, 15):
            moment = local(start + timedelta(seconds=offset), TZ).strftime("%Y-%m-%d %H:%M:%S")
            district.run("schedule", "add", "--station", station, "--at", moment, "--length", "1m")
    a = _daemon_process(district.root / "a.toml", "XA-01", log=district.root / "a.log")
    b = _daemon_process(district.root / "b.toml", "XA-02", log=district.root / "b.log")
    again = None
    try:
        _wait(lambda: len([x for x in district.bulletins() if x.status == "played"]) == 2, 90,
              district.root, "first slots")
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        refused = subprocess.run([sys.executable, "-m", "broadcaster", "--config", str(district.root / "c.toml"),
                                  "daemon", "--station", "XA-01"], capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        assert "station XA-01 is served by another daemon" in refused.stderr, refused.stderr
        again = _daemon_process(district.root / "a.toml", "XA-01", log=district.root / "a2.log")
        _wait(lambda: len([x for x in district.bulletins() if x.status == "played"]) == 4, 90,
              district.root, "all slots")
    finally:
        for process in (again, b):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                assert process.wait(30) == 0
    rows = district.bulletins()
    assert len(rows) == 4 and len({(x.schedule_id, as_utc(x.slot_time)) for x in rows}) == 4
    played = district.played()
    assert len(played) == 4 and len(set(played)) == 4  # nothing aired twice


def _wait(condition, seconds: float, root: Path, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(root.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{logs}")
