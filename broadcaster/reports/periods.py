"""Report periods, how a target scales to one, and the pace (shared with the composer)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ..errors import InputError
from ..models import Plan, TargetPeriod
from ..timeutil import as_utc, parse_date, zone
from .terms import BEHIND, DONE, ON_TRACK


@dataclass(frozen=True)
class Period:
    label: str  # 2023, 2023-Q2, 2023-05, the plan's dates
    kind: str  # year | quarter | month | plan | range
    start: date
    end: date  # inclusive

    def bounds(self, tz_name: str) -> tuple[datetime, datetime]:
        """Aware UTC [start, end) of the period in local time."""
        tz = zone(tz_name)
        start = datetime.combine(self.start, time(0), tz)
        end = datetime.combine(self.end + timedelta(days=1), time(0), tz)
        return as_utc(start), as_utc(end)


_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$|^[Qq]([1-4])[/-](\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$|^(\d{1,2})/(\d{4})$")


def parse_report_period(text: str | None, plan: Plan) -> Period:
    """'2023', '2023-Q2' (or 'Q2/2023'), '2023-05' (or '5/2023'), 'YYYY-MM-DD..YYYY-MM-DD'; None = the plan.

    A period that overlaps the plan only in part is cut to the plan's dates;
    one outside it is an error.
    """
    if text is None or not str(text).strip():
        return Period(f"{plan.period_start}..{plan.period_end}", "plan", plan.period_start, plan.period_end)
    text = str(text).strip()
    period = _parse_period_text(text)
    if period.end < plan.period_start or period.start > plan.period_end:
        raise InputError(
            f"kỳ báo cáo {text} ({period.start} → {period.end}) nằm ngoài thời gian của kế hoạch {plan.code} "
            f"({plan.period_start} → {plan.period_end}) / the report period is outside the plan's period",
            field="period")
    start, end = max(period.start, plan.period_start), min(period.end, plan.period_end)
    if (start, end) != (period.start, period.end):
        return Period(f"{text} ({start}..{end})", "range", start, end)
    return period


def _parse_period_text(text: str) -> Period:
    bad = InputError(f"kỳ báo cáo không hợp lệ / bad period {text!r} (2023, 2023-Q2, 2023-05 hoặc/or "
                     "2023-05-01..2023-05-15)", field="period")
    try:
        if text.isdigit() and len(text) == 4:
            year = int(text)
            return Period(text, "year", date(year, 1, 1), date(year, 12, 31))
        if match := _QUARTER.match(text):
            year = int(match.group(1) or match.group(4))
            quarter = int(match.group(2) or match.group(3))
            first = 3 * quarter - 2
            end = date(year, first + 2, calendar.monthrange(year, first + 2)[1])
            return Period(f"{year}-Q{quarter}", "quarter", date(year, first, 1), end)
        if match := _MONTH.match(text):
            year = int(match.group(1) or match.group(4))
            month = int(match.group(2) or match.group(3))
            end = date(year, month, calendar.monthrange(year, month)[1])
            return Period(f"{year}-{month:02d}", "month", date(year, month, 1), end)
        if ".." in text:
            first, last = (parse_date(part) for part in text.split("..", 1))
            if last < first:
                raise bad
            return Period(f"{first}..{last}", "range", first, last)
    except ValueError as exc:
        raise bad from exc
    raise bad


def months_in(start: date, end: date) -> float:
    """Calendar months from ``start`` to ``end`` inclusive; a partial month counts by its days."""
    total = 0.0
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        days = calendar.monthrange(year, month)[1]
        first = max(start, date(year, month, 1))
        last = min(end, date(year, month, days))
        total += ((last - first).days + 1) / days
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return total


def target_scale(target_period: str, period: Period, plan: Plan) -> float:
    """The factor from a target as written to the target for ``period`` (see the module docstring)."""
    months = months_in(period.start, period.end)
    if target_period == TargetPeriod.MONTH:
        return months
    if target_period == TargetPeriod.QUARTER:
        return months / 3
    if target_period == TargetPeriod.YEAR:
        return months / 12
    return months / months_in(plan.period_start, plan.period_end)


def elapsed_fraction(period: Period, tz_name: str, as_of: datetime) -> float:
    start, end = period.bounds(tz_name)
    share = (as_utc(as_of) - start) / (end - start)
    return min(1.0, max(0.0, share))


def pace_status(achieved: float, target: float, due: float) -> str:
    eps = 1e-9
    if achieved + eps >= target:
        return DONE
    if achieved + eps >= due:
        return ON_TRACK
    return BEHIND


def people_window(target_period: str, period: Period, plan: Plan) -> tuple[Period, Period]:
    """What a people target is compared over, and the whole of its own period (for the pace).

    People are counted, never scaled: from the start of the target's own period
    that holds the end of ``period`` (the plan's start for a whole-plan target)
    to the end of ``period``, within the plan.
    """
    end = period.end
    if target_period == TargetPeriod.MONTH:
        first, last = date(end.year, end.month, 1), date(end.year, end.month, calendar.monthrange(end.year,
                                                                                                 end.month)[1])
    elif target_period == TargetPeriod.QUARTER:
        month = 3 * ((end.month - 1) // 3) + 1
        first = date(end.year, month, 1)
        last = date(end.year, month + 2, calendar.monthrange(end.year, month + 2)[1])
    elif target_period == TargetPeriod.YEAR:
        first, last = date(end.year, 1, 1), date(end.year, 12, 31)
    else:
        first, last = plan.period_start, plan.period_end
    first, last = max(first, plan.period_start), min(last, plan.period_end)
    counted = Period(f"{first}..{end}", "range", first, end)
    return counted, Period(f"{first}..{last}", "range", first, last)


