"""Five-field crontab expressions with Vixie cron's meaning, in a station's time zone.

``minute hour day-of-month month day-of-week``; each field takes ``*``, numbers,
lists ``a,b``, ranges ``a-b`` and steps ``*/n``, ``a-b/n``, ``a/n`` (= ``a-max/n``).
Months and week days may also be three-letter English names (``jan``, ``mon``;
any case), alone or in ranges and lists. Day of week 0 and 7 are both Sunday.
The macros @yearly @annually @monthly @weekly @daily @midnight @hourly stand
for the expressions crontab(5) gives them.

Day of month and day of week follow Vixie's rule: if either field *starts
with* ``*`` a day must match both (so ``*`` alone leaves the other field to
decide, and ``*/2`` really is "odd days, and the week day too"); otherwise a
day matching either fires (``0 7 1 * 1`` = every 1st and every Monday).

Daylight-saving changes are handled as ISC/Debian cron does (zones such as
Asia/Ho_Chi_Minh have none, so this only matters elsewhere):

- A *fixed-time* expression (neither minute nor hour starts with ``*``) is read
  in wall-clock time. A time the clock skips fires once, at the first minute
  after the jump (``30 2 * * *`` fires at 03:00 on spring-forward day). A time
  the clock shows twice fires once, at its first occurrence.
- A *wildcard* expression (minute or hour starts with ``*``) follows real time:
  it fires whenever the clock shows a matching minute, so skipped minutes are
  skipped and a repeated hour fires in both passes (hourly stays hourly).

The module is pure; APScheduler is imported only by :func:`apscheduler_trigger`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_LONGEST_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
# A valid expression fires at least once in this many years (Feb 29 on a given week day is the rarest).
_SEARCH_YEARS = 50
_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class _FieldSpec:
    vi: str
    en: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0

    @property
    def accepted(self) -> str:
        numbers = f"{self.low}–{self.high}"
        return f"{numbers}, {self.names[0]}–{self.names[-1]}" if self.names else numbers


_FIELDS = (
    _FieldSpec("phút", "minute", 0, 59),
    _FieldSpec("giờ", "hour", 0, 23),
    _FieldSpec("ngày", "day-of-month", 1, 31),
    _FieldSpec("tháng", "month", 1, 12, tuple(_MONTH_NAMES), 1),
    _FieldSpec("thứ", "day-of-week", 0, 7, tuple(_DAY_NAMES), 0),
)
_TERM_RE = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?$")


class _FieldError(ValueError):
    pass


def _value(text: str, spec: _FieldSpec) -> int:
    if text.isdigit():
        value = int(text)
    elif text in spec.names:
        value = spec.names.index(text) + spec.name_base
    else:
        raise _FieldError
    if not spec.low <= value <= spec.high:
        raise _FieldError
    return value


def _parse_field(text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for term in text.lower().split(","):
        match = _TERM_RE.match(term)
        if not match:
            raise _FieldError
        star, first, last, step_text = match.groups()
        if star:
            low, high = spec.low, spec.high
        else:
            low = _value(first, spec)
            if last is not None:
                high = _value(last, spec)
            else:
                high = spec.high if step_text else low
        step = int(step_text) if step_text else 1
        if high < low or not 1 <= step <= spec.high:
            raise _FieldError
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _bad_field(spec: _FieldSpec, text: str) -> InputError:
    return InputError(f"lịch cron: trường '{spec.vi}' không hợp lệ '{text}' ({spec.accepted}) / "
                      f"cron: bad {spec.en} '{text}' ({spec.accepted})", field="cron")


def _next_in(values: tuple[int, ...], current: int) -> int | None:
    """The smallest value >= current, or None."""
    index = bisect_left(values, current)
    return values[index] if index < len(values) else None


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression; build it with :func:`parse`."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # Python's numbering: Monday 0 ... Sunday 6
    days_and: bool
    fixed_time: bool

    def day_matches(self, day: date) -> bool:
        by_date = day.day in self.days
        by_weekday = day.weekday() in self.weekdays
        return (by_date and by_weekday) if self.days_and else (by_date or by_weekday)

    def next_wall_time(self, wall: datetime) -> datetime | None:
        """The first naive wall-clock minute >= ``wall`` that the fields match (None: none in 50 years)."""
        if wall.second or wall.microsecond:
            wall = wall.replace(second=0, microsecond=0) + _MINUTE
        limit = wall.year + _SEARCH_YEARS
        while wall.year <= limit:
            if wall.month not in self.months:
                month = _next_in(self.months, wall.month + 1)
                year = wall.year if month else wall.year + 1
                wall = datetime(year, month or self.months[0], 1)
                continue
            if not self.day_matches(wall.date()):
                wall = datetime.combine(wall.date() + _DAY, datetime.min.time())
                continue
            hour = _next_in(self.hours, wall.hour)
            if hour is None:
                wall = datetime.combine(wall.date() + _DAY, datetime.min.time())
                continue
            if hour != wall.hour:
                wall = wall.replace(hour=hour, minute=0)
            minute = _next_in(self.minutes, wall.minute)
            if minute is None:
                wall = wall.replace(minute=0) + timedelta(hours=1)
                continue
            return wall.replace(minute=minute)
        return None

    def next_after(self, moment: datetime, tz: tzinfo) -> datetime | None:
        """The first fire time strictly after the aware ``moment``, as aware UTC (None: never)."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        moment = moment.astimezone(UTC)
        if self.fixed_time:
            return self._next_fixed(moment, tz)
        return self._next_wildcard(moment, tz)

    def _next_fixed(self, moment: datetime, tz: tzinfo) -> datetime | None:
        wall = self.next_wall_time(moment.astimezone(tz).replace(tzinfo=None, fold=0, second=0, microsecond=0))
        while wall is not None:
            instant = _first_instant_showing(wall, tz)
            if instant > moment:
                return instant
            wall = self.next_wall_time(wall + _MINUTE)
        return None

    def _next_wildcard(self, moment: datetime, tz: tzinfo) -> datetime | None:
        start = moment.replace(second=0, microsecond=0) + _MINUTE
        while True:
            offset = start.astimezone(tz).utcoffset()
            wall = self.next_wall_time((start + offset).replace(tzinfo=None))
            if wall is None:
                return None
            candidate = (wall - offset).replace(tzinfo=UTC)
            change = _first_offset_change(tz, start, candidate, offset)
            if change is None:
                return candidate
            start = change


def _first_instant_showing(wall: datetime, tz: tzinfo) -> datetime:
    """The UTC instant a clock first shows ``wall`` or, if it skips it, the first minute after the jump."""
    while True:
        instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall:
            return instant
        wall += _MINUTE


def _first_offset_change(tz: tzinfo, start: datetime, end: datetime, offset: timedelta) -> datetime | None:
    """The first whole minute in (start, end] whose UTC offset is not ``offset``, or None.

    Probes a day apart, so it assumes no zone changes offset and back within one day.
    """
    low = start
    while low < end:
        high = min(low + _DAY, end)
        if high.astimezone(tz).utcoffset() != offset:
            while high - low > _MINUTE:  # low keeps the old offset, high has the new one
                middle = low + (high - low) // 2
                middle = middle.replace(second=0, microsecond=0)
                if middle <= low:
                    middle = low + _MINUTE
                if middle.astimezone(tz).utcoffset() != offset:
                    high = middle
                else:
                    low = middle
            return high
        low = high
    return None


def parse(expression: str) -> CronExpression:
    """Parse a five-field expression or macro; bad input raises a bilingual InputError naming the field."""
    text = " ".join(str(expression).split())
    fields = MACROS.get(text.lower(), text).split()
    if text.startswith("@") and text.lower() not in MACROS:
        raise InputError(f"lịch cron: không có macro '{text}' / cron: unknown macro '{text}' "
                         f"({' '.join(MACROS)})", field="cron")
    if len(fields) != 5:
        raise InputError(f"lịch cron cần 5 trường (phút giờ ngày tháng thứ) / cron needs 5 fields "
                         f"(minute hour day month weekday): {text!r}", field="cron")
    parsed = []
    for field_text, spec in zip(fields, _FIELDS, strict=True):
        try:
            parsed.append(_parse_field(field_text, spec))
        except _FieldError:
            raise _bad_field(spec, field_text) from None
    minutes, hours, days, months, cron_weekdays = parsed
    days_and = fields[2].startswith("*") or fields[4].startswith("*")
    if days_and and min(days) > max(_LONGEST_MONTH[month] for month in months):
        raise InputError(f"lịch cron: ngày '{fields[2]}' không có trong tháng '{fields[3]}' / "
                         f"cron: day-of-month '{fields[2]}' never occurs in month '{fields[3]}'", field="cron")
    return CronExpression(
        text=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=tuple(sorted(months)),
        weekdays=frozenset((day - 1) % 7 for day in cron_weekdays),
        days_and=days_and,
        fixed_time=not (fields[0].startswith("*") or fields[1].startswith("*")),
    )


@cache
def _trigger_class() -> type[BaseTrigger]:
    from apscheduler.triggers.base import BaseTrigger

    class CronExpressionTrigger(BaseTrigger):
        """APScheduler 3 trigger firing at a :class:`CronExpression`'s times in a time zone."""

        def __init__(self, expression: CronExpression, timezone: tzinfo) -> None:
            self.expression = expression
            self.timezone = timezone

        def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
            # As APScheduler's CronTrigger: the first time after the previous one, else the first from now on.
            if previous_fire_time is None:
                return self.expression.next_after(now - _MICROSECOND, self.timezone)
            start = min(now, previous_fire_time + _MICROSECOND)
            if start == previous_fire_time:
                start += _MICROSECOND
            return self.expression.next_after(start - _MICROSECOND, self.timezone)

        def __str__(self) -> str:
            return f"cron[{self.expression.text}]"

        def __repr__(self) -> str:
            return f"<CronExpressionTrigger ({self.expression.text!r}, timezone='{self.timezone}')>"

    CronExpressionTrigger.__module__ = __name__
    CronExpressionTrigger.__qualname__ = "CronExpressionTrigger"
    return CronExpressionTrigger


def __getattr__(name: str):
    # CronExpressionTrigger is built on first use, so that importing this module needs no APScheduler.
    if name == "CronExpressionTrigger":
        return _trigger_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def next_slot(cron_text: str | None, at: datetime | None, tz: tzinfo, after: datetime) -> datetime | None:
    """A schedule's next fire time (aware UTC) after ``after``: its cron expression's, or its one-off ``at``."""
    after = after.replace(tzinfo=UTC) if after.tzinfo is None else after
    if cron_text:
        return parse(cron_text).next_after(after, tz)
    if at is None:
        return None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at if at > after else None


def apscheduler_trigger(expression: CronExpression, timezone: tzinfo) -> BaseTrigger:
    """An APScheduler 3 trigger (a BaseTrigger) firing at ``expression``'s times in ``timezone``."""
    return _trigger_class()(expression, timezone)
