"""Schedules: when a station airs a bulletin or a group gets an SMS.

Schedules live in the project's own table; the daemon rebuilds APScheduler
jobs from it (APScheduler's own job stores drop rows that fail to unpickle and
must never be shared by two processes).

Cron expressions are standard five-field crontab in *station* time with Vixie
cron's meaning (see :mod:`broadcaster.cron`); APScheduler only runs the trigger
built from them, never reads the expression itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from . import cron as cron_mod
from .errors import InputError, NotFoundError
from .models import Channel, ContactGroup, Schedule, Station
from .timeutil import as_utc, utcnow, zone

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

_LENGTH_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|m|min|s|sec)?\s*$", re.IGNORECASE)


def parse_length(text: str) -> int:
    """'15m' -> 900, '90s' -> 90, '1h' -> 3600, '600' -> 600 seconds."""
    match = _LENGTH_RE.match(str(text))
    if not match:
        raise InputError(f"độ dài không hợp lệ / bad length {text!r} (vd/e.g. 15m, 90s, 1h)", field="length")
    value, unit = float(match.group(1)), (match.group(2) or "s").lower()
    seconds = int(value * {"h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}[unit])
    if not 10 <= seconds <= 4 * 3600:
        raise InputError("độ dài phải từ 10 giây đến 4 giờ / length must be 10 s to 4 h", field="length")
    return seconds


def _station_zone(tz_name: str):
    try:
        return zone(tz_name)
    except ValueError as exc:
        raise InputError(str(exc), field="timezone") from exc


def cron_trigger(expression: str, tz_name: str) -> BaseTrigger:
    """An APScheduler 3 trigger for ``expression`` in the station's zone; bad input raises InputError."""
    return cron_mod.apscheduler_trigger(cron_mod.parse(expression), _station_zone(tz_name))


def fire_times(schedule: Schedule, tz_name: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """Fire times (aware UTC) in (start, end]."""
    start, end = as_utc(start), as_utc(end)
    if schedule.cron:
        expression, tz = cron_mod.parse(schedule.cron), _station_zone(tz_name)
        moment = expression.next_after(start, tz)
        while moment is not None and moment <= end:
            yield moment
            moment = expression.next_after(moment, tz)
    elif schedule.at is not None:
        at = as_utc(schedule.at)
        if start < at <= end:
            yield at


def next_fire_time(schedule: Schedule, tz_name: str, after: datetime) -> datetime | None:
    return cron_mod.next_slot(schedule.cron, schedule.at, _station_zone(tz_name), as_utc(after))


def add_schedule(session: Session, *, station_code: str, channel: str, cron: str | None, at: datetime | None,
                 length_s: int, group_name: str | None = None, topic_codes: list[str] | None = None,
                 name: str = "", now: datetime | None = None) -> Schedule:
    station = session.exec(select(Station).where(Station.code == station_code)).first()
    if station is None:
        raise NotFoundError(f"không có đài '{station_code}' / unknown station '{station_code}'")
    if channel not in (Channel.LOUDSPEAKER, Channel.SMS):
        raise InputError("kênh phải là loudspeaker hoặc sms / channel must be loudspeaker or sms", field="channel")
    if bool(cron) == bool(at):
        raise InputError("cần đúng một trong --cron hoặc --at / give exactly one of --cron or --at")
    if cron:
        cron = " ".join(cron.split())
        cron_mod.parse(cron)
    if at is not None and as_utc(at) <= as_utc(now or utcnow()):
        raise InputError(f"thời điểm {at.isoformat(' ', 'minutes')} đã qua / that time is in the past",
                         field="at")
    group_id = None
    if channel == Channel.SMS:
        if not group_name:
            raise InputError("lịch SMS cần --group / an SMS schedule needs --group", field="group")
        group = session.exec(select(ContactGroup).where(ContactGroup.name == group_name)).first()
        if group is None:
            raise NotFoundError(f"không có nhóm '{group_name}' / unknown contact group '{group_name}'")
        group_id = group.id
    if topic_codes:
        from .plans import find_topic

        for code in topic_codes:
            find_topic(session, code)
    schedule = Schedule(name=name, station_id=station.id, channel=channel, cron=cron,
                        at=as_utc(at) if at else None, length_s=length_s, group_id=group_id,
                        topic_codes=list(topic_codes or []))
    session.add(schedule)
    session.flush()
    return schedule


def get_schedule(session: Session, schedule_id: int) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFoundError(f"không có lịch số {schedule_id} / no schedule {schedule_id}")
    return schedule


def list_schedules(session: Session, *, include_paused: bool = True) -> list[Schedule]:
    query = select(Schedule).order_by(Schedule.id)
    if not include_paused:
        query = query.where(Schedule.paused == False)  # noqa: E712
    return list(session.exec(query).all())


def overview(session: Session, now: datetime) -> list[dict]:
    """Every schedule as ``schedule list`` and the web console show it, times in station time."""
    from .timeutil import local

    rows = []
    for schedule in list_schedules(session):
        station = session.get(Station, schedule.station_id)
        upcoming = None if schedule.paused else next_fire_time(schedule, station.timezone, now)
        rows.append({
            "id": schedule.id, "name": schedule.name, "station": station.code, "channel": schedule.channel,
            "cron": schedule.cron, "at": local(schedule.at, station.timezone) if schedule.at else None,
            "length_s": schedule.length_s, "topics": schedule.topic_codes, "paused": schedule.paused,
            "next": local(upcoming, station.timezone) if upcoming else None,
        })
    return rows


def set_paused(session: Session, schedule_id: int, paused: bool) -> Schedule:
    schedule = get_schedule(session, schedule_id)
    schedule.paused = paused
    schedule.updated_at = utcnow()
    session.add(schedule)
    return schedule


def remove_schedule(session: Session, schedule_id: int) -> None:
    session.delete(get_schedule(session, schedule_id))


def describe(schedule: Schedule) -> str:
    return f"cron '{schedule.cron}'" if schedule.cron else f"at {as_utc(schedule.at).isoformat()}"

