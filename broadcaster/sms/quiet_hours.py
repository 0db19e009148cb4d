"""Quiet hours: nobody wants an SMS at night.

``sms.quiet_hours`` is ``"HH:MM-HH:MM"`` in station time (``broadcaster.timezone``);
the window may wrap midnight (``"21:00-07:00"``: from 21:00 until 07:00 the next
morning). The start is inside the window, the end is not. An empty string (or
``"off"``) means no quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from ..timeutil import as_utc, zone

__all__ = ["QuietHours", "parse_quiet_hours"]


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    tz_name: str

    def contains(self, moment: datetime) -> bool:
        """True if ``moment`` (aware; naive = UTC) falls inside the window, in station time."""
        t = as_utc(moment).astimezone(zone(self.tz_name)).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, moment: datetime) -> datetime:
        """The end of the window ``moment`` is in (aware UTC); ``moment`` itself if it is outside."""
        moment = as_utc(moment)
        if not self.contains(moment):
            return moment
        local = moment.astimezone(zone(self.tz_name))
        candidate = datetime.combine(local.date(), self.end, tzinfo=zone(self.tz_name))
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone(self.tz_name))
        return as_utc(candidate)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(spec: str, tz_name: str) -> QuietHours | None:
    """``"21:00-07:00"`` → :class:`QuietHours`; ``""`` / ``"off"`` → ``None``."""
    text = (spec or "").strip()
    if not text or text.lower() in ("off", "none", "no"):
        return None
    zone(tz_name)  # validate early
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start = time.fromisoformat(start_text)
        end = time.fromisoformat(end_text)
    except ValueError as exc:
        raise ValueError(
            f"sms.quiet_hours không hợp lệ / invalid quiet hours {spec!r} (dạng/format \"21:00-07:00\")"
        ) from exc
    return QuietHours(start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0), tz_name)
