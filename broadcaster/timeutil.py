"""Time helpers. The database stores aware UTC (SQLModel's UTCDateTime); stations speak local time."""

from __future__ import annotations

from datetime import UTC, date, datetime
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
    """'2026-12-01 06:00' (station time) or an ISO string with offset -> aware datetime."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text.replace("T", " ", 1) if "T" in text else text)
    except ValueError as exc:
        raise ValueError(
            f"thời điểm không hợp lệ / bad date-time {text!r} (dạng/format YYYY-MM-DD HH:MM)"
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
