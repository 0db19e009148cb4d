"""``broadcaster status`` reads with sqlite3, not the ORM: the same answers, and no SQLModel loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from broadcaster import schedules
from broadcaster.db import session_scope
from broadcaster.deliveries import BulletinStatus
from broadcaster.models import Bulletin, Delivery, Station
from broadcaster.scheduling.status import PROBLEM_STATUSES, read_overview
from broadcaster.timeutil import as_utc, utcnow, zone

PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "ninh-thuan-2023.toml"


def test_problem_statuses_are_the_log_owners():
    assert set(PROBLEM_STATUSES) == {BulletinStatus.MISSED, BulletinStatus.FAILED, BulletinStatus.STALE}


def _populate(run, app) -> None:  # noqa: ANN001
    run("plan", "import", str(PLAN))
    run("schedule", "add", "--station", "XA-01", "--cron", "30 5 * * *", "--length", "15m")
    run("schedule", "add", "--station", "XA-01", "--cron", "0 17 * * 1-5", "--length", "15m")
    run("schedule", "add", "--station", "XA-01", "--cron", "0 12 * * *", "--length", "15m")
    run("schedule", "pause", "3")
    now = utcnow()
    run("schedule", "add", "--station", "XA-01", "--at",
        (now + timedelta(days=1)).astimezone(zone("Asia/Ho_Chi_Minh"))
        .strftime("%Y-%m-%d %H:%M"), "--length", "1m")
    with session_scope(app.ready_engine()) as session:
        station = session.exec(select(Station)).one()
        for n, status in enumerate(["missed", "played", "failed", "stale", "missed", "failed", "missed", "ready"]):
            session.add(Bulletin(station_id=station.id, slot_time=now - timedelta(hours=n), status=status,
                                 reason=f"lý do {n}"))
        for n in range(14):
            sms = n % 3 == 0
            session.add(Delivery(channel="sms" if sms else "loudspeaker", status="sent" if sms else "played",
                                 recipient=f"+8491234{n:04d}" if sms else None, station_id=station.id,
                                 started_at=None if n % 4 == 0 else now - timedelta(minutes=n),
                                 updated_at=now - timedelta(minutes=n, seconds=30)))


def test_the_status_reader_answers_what_the_orm_answers(run, app):
    _populate(run, app)
    now = utcnow()
    overview = read_overview(app, now)
    with app.read_session() as session:
        expected = []
        for schedule in schedules.list_schedules(session, include_paused=False):
            station = session.get(Station, schedule.station_id)
            expected.append((schedules.next_fire_time(schedule, station.timezone, now), schedule.id, station.code,
                             schedule.channel))
        expected.sort(key=lambda row: row[0])
        recent = session.exec(select(Delivery).order_by(Delivery.id.desc()).limit(10)).all()
        problems = session.exec(select(Bulletin).where(Bulletin.status.in_(
            [BulletinStatus.MISSED, BulletinStatus.FAILED, BulletinStatus.STALE])).order_by(
            Bulletin.id.desc()).limit(5)).all()
    assert [(s.time, s.schedule_id, s.station_code, s.channel) for s in overview.next_slots] == expected
    assert len(expected) == 3 and all(as_utc(t) == t for t, *_ in expected)
    assert overview.last_deliveries == [
        {"id": d.id, "channel": d.channel, "status": d.status, "item": d.item_id, "recipient": d.recipient,
         "at": as_utc(d.started_at or d.updated_at)} for d in recent]
    assert overview.problems == [{"bulletin": b.id, "status": b.status, "slot_time": as_utc(b.slot_time),
                                  "reason": b.reason} for b in problems]
    assert [p["status"] for p in overview.problems] == ["missed", "failed", "missed", "stale", "failed"]


def test_status_masks_numbers_and_loads_no_orm(run, app, workspace):
    _populate(run, app)
    shown = json.loads(run("status", "--json").output)
    numbers = [row["recipient"] for row in shown["last_deliveries"] if row["recipient"]]
    assert numbers and all("*" in n and "+8491234" not in n for n in numbers)
    heavy = ("sqlmodel", "pydantic", "alembic", "apscheduler", "pydub", "numpy")
    if app.config.database_url.startswith("sqlite"):
        heavy += ("sqlalchemy",)  # PostgreSQL is read with SQLAlchemy Core
    code = ("import sys; from broadcaster.cli.main import cli\n"
            "try:\n    cli(['status'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{heavy!r})\n"
            "print('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Daemon: KHÔNG CHẠY / not running" in done.stdout
    assert "HEAVY []" in done.stdout, done.stdout


def test_status_on_a_folder_without_a_database_says_run_init(run, isolated_home):
    result = run("status", ok=False)
    assert "broadcaster init" in result.output
