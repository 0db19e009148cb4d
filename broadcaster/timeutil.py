"""Time helpers. The database stores aware UTC (SQLModel's UTCDateTime); stations speak local time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def utcnow() -> datetime:
    """Aware UTC now, the form every timestamp takes in the database."""
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """Any datetime -> aware UTC; a naive one is taken to be UTC already."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"múi giờ không hợp lệ / unknown time zone: {name!r}") from exc


def local(moment: datetime, tz_name: str) -> datetime:
    return as_utc(moment).astimezone(zone(tz_name))


def parse_local_datetime(text: str, tz_name: str) -> datetime:
    """A local date-time, as an operator types it, -> aware datetime.

    Accepts ``DD/MM/YYYY HH:MM`` (Vietnamese order), ``YYYY-MM-DD HH:MM`` (station time, seconds
    optional, ``6h30`` for the clock too) or an ISO string with an offset. The one parser behind every
    ``--at``, ``--since``, ``--until`` and ``--as-of``.
    """
    text = " ".join(text.strip().split())
    day, _, clock = text.partition(" ")
    clock = re.sub(r"^(\d{1,2})h(\d{2})?$", lambda m: f"{int(m[1]):02d}:{m[2] or '00'}", clock)
    try:
        if "/" in day:
            if not clock:
                raise ValueError(text)
            hour, minute, *second = (int(part) for part in clock.split(":"))
            moment = datetime.combine(parse_date(day), time(hour, minute, *second))
        else:
            moment = datetime.fromisoformat(f"{day} {clock}" if clock else day)
    except ValueError as exc:
        raise ValueError(
            f"thời điểm không hợp lệ / bad date-time {text!r} (dạng/format DD/MM/YYYY HH:MM hoặc/or "
            "YYYY-MM-DD HH:MM)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz_name))
    return moment


def parse_date(text: str) -> date:
    """ISO 2023-03-15 or Vietnamese 15/3/2023."""
    text = str(text).strip()
    try:
        if "/" in text:
            day, month, year = (int(part) for part in text.split("/"))
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"ngày không hợp lệ / bad date {text!r} (YYYY-MM-DD hoặc/or DD/MM/YYYY)") from exc
