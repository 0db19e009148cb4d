"""Reports: what the delivery log achieved against a plan's targets, and the log itself.

Pure functions over a session; formatting lives in ``report_formats`` and the
commands in ``cli/reports``. What a delivery row means is defined in
``deliveries``; this module only counts.

Rules (also printed under every report):

- **Time.** A delivery belongs to the period in which it was *written*
  (``Delivery.created_at``: the moment a slot composed it or a campaign queued
  it). One timestamp for every channel keeps the figures additive and lets one
  index serve the query. Periods are calendar periods in the report's time
  zone (the station's, else the config's, Asia/Ho_Chi_Minh): a delivery
  written 2023-03-31 20:00 UTC is 2023-04-01 03:00 local and counts in April.
  Slots (``Bulletin`` rows) belong to the period of their ``slot_time``.
- **Achieved.** Only real deliveries count (``deliveries.ACHIEVED_*``):
  broadcasts = ``played`` loudspeaker deliveries (one item aired in one slot,
  however many readings); airtime = their ``duration_s``; SMS sent = ``sent``,
  ``delivered`` or ``undelivered`` (it left the machine); SMS delivered =
  ``delivered``; people reached = distinct SMS recipients with ``sent`` or
  ``delivered`` plus the ``listeners`` of each distinct station that played the
  topic (a station without an estimate adds 0; the two audiences may overlap
  and are simply added). ``failed``, ``missed``, ``interrupted``,
  ``uncertain`` and ``skipped`` are shown apart as "not achieved"; ``pending``,
  ``sending`` and ``playing`` as "in progress".
- **Scaling.** A target is stated per month, quarter, year or for the whole
  plan. The report period is measured in calendar months, a partial month
  counting by its days (``months_in``). The target for the report period is
  ``amount × months`` (per month), ``× months / 3`` (per quarter),
  ``× months / 12`` (per year), ``× months / months of the plan`` (whole
  plan). So a monthly target over a quarter is ×3, a yearly target in a month
  is /12, and a whole-plan target over the whole plan is ×1.
- **Pace.** Due by now = target for the period × the share of the period that
  has elapsed at ``as_of`` (linear in time, clipped to 0..1). Status: *done*
  (đạt) when achieved ≥ target; *on track* (đúng tiến độ) when achieved ≥ due
  by now; otherwise *behind* (chậm).
- **Scope.** A delivery belongs to a plan through its topic. A target with a
  station counts only that station's deliveries; ``station_code`` filters
  everything (and drops targets of other stations). Slots late or missed per
  topic are the slots that carried (or would have carried) the topic; per
  channel they are every slot of the station(s) in the period. A slot is late
  when it started ``LATE_AFTER_S`` seconds or more after it was due.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from .deliveries import (
    ACHIEVED_LOUDSPEAKER,
    ACHIEVED_SMS_DELIVERED,
    ACHIEVED_SMS_SENT,
    NOT_ACHIEVED,
    DeliveryStatus,
)
from .errors import InputError, NotFoundError
from .models import (
    Bulletin,
    Channel,
    ContentItem,
    Delivery,
    Metric,
    Plan,
    Station,
    TargetPeriod,
    Topic,
)
from .plans import find_topic, get_plan, plan_targets, plan_topics
from .stations import get_station
from .timeutil import DEFAULT_TIMEZONE, as_utc, parse_date, parse_local_datetime, utcnow, zone

LATE_AFTER_S = 60.0
IN_PROGRESS = {DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.PLAYING}
ALL_STATUSES = sorted(s.value for s in DeliveryStatus)
REAL_CHANNELS = (Channel.LOUDSPEAKER.value, Channel.SMS.value)
PEOPLE_SMS = {DeliveryStatus.SENT, DeliveryStatus.DELIVERED}

DONE, ON_TRACK, BEHIND = "done", "on_track", "behind"
STATUS_LABELS = {DONE: ("đạt", "done"), ON_TRACK: ("đúng tiến độ", "on track"), BEHIND: ("chậm", "behind")}
DELIVERY_STATUS_LABELS = {
    DeliveryStatus.PENDING: ("chờ gửi", "pending"),
    DeliveryStatus.SENDING: ("đang gửi", "sending"),
    DeliveryStatus.UNCERTAIN: ("không rõ kết quả", "uncertain"),
    DeliveryStatus.PLAYING: ("đang phát", "playing"),
    DeliveryStatus.PLAYED: ("đã phát", "played"),
    DeliveryStatus.SENT: ("đã gửi", "sent"),
    DeliveryStatus.CANCELLED: ("đã hủy", "cancelled"),
    DeliveryStatus.DELIVERED: ("đã đến", "delivered"),
    DeliveryStatus.UNDELIVERED: ("không đến", "undelivered"),
    DeliveryStatus.FAILED: ("lỗi", "failed"),
    DeliveryStatus.MISSED: ("bị lỡ", "missed"),
    DeliveryStatus.INTERRUPTED: ("bị ngắt", "interrupted"),
    DeliveryStatus.SKIPPED: ("bỏ qua", "skipped"),
}
CHANNEL_LABELS = {
    Channel.LOUDSPEAKER: ("loa truyền thanh", "loudspeaker"),
    Channel.SMS: ("tin nhắn SMS", "SMS"),
    Channel.ANY: ("mọi kênh", "any channel"),
}
WHOLE_PLAN_LABEL = ("toàn kế hoạch", "whole plan")


# --------------------------------------------------------------------------- periods

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


# --------------------------------------------------------------------------- results

@dataclass
class TargetResult:
    topic_code: str | None  # None: whole plan
    topic_title: str | None
    channel: str
    metric: str
    period: str  # the target's own period kind
    station_code: str | None
    amount: float  # as written in the plan
    scale: float
    target: float  # for the report period
    achieved: float
    percent: float | None
    due: float  # what the pace says should be done by as_of
    status: str
    not_achieved: int  # deliveries in NOT_ACHIEVED statuses within the target's scope
    illustrative: bool = False
    note: str = ""


@dataclass
class Totals:
    key: str  # topic code, channel, or "total"
    title: str = ""
    slots: int = 0  # loudspeaker slots (bulletins) in scope
    late_slots: int = 0
    missed_slots: int = 0
    broadcasts: int = 0
    airtime_minutes: float = 0.0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_undelivered: int = 0
    sms_failed: int = 0
    people_reached: int = 0
    not_achieved: int = 0
    in_progress: int = 0


@dataclass
class NotAchievedRow:
    topic_code: str | None
    channel: str
    status: str
    count: int
    airtime_minutes: float  # what did go on air before an interruption
    kind: str  # "not_achieved" | "in_progress" | "undelivered"


@dataclass
class Report:
    plan_code: str
    plan_title: str
    plan_start: date
    plan_end: date
    period: Period
    timezone: str
    station_code: str | None
    as_of: datetime
    elapsed: float
    targets: list[TargetResult] = field(default_factory=list)
    topics: list[Totals] = field(default_factory=list)
    total: Totals = field(default_factory=lambda: Totals("total"))
    channels: list[Totals] = field(default_factory=list)
    not_achieved: list[NotAchievedRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["period"] = {"label": self.period.label, "kind": self.period.kind,
                          "start": self.period.start.isoformat(), "end": self.period.end.isoformat()}
        data["plan_start"], data["plan_end"] = self.plan_start.isoformat(), self.plan_end.isoformat()
        data["as_of"] = self.as_of.isoformat()
        data["rules"] = {"timestamp": "created_at", "late_after_s": LATE_AFTER_S}
        return data


# --------------------------------------------------------------------------- aggregation (SQL)

@dataclass
class _Scope:
    topic_ids: list[int]
    start: datetime
    end: datetime
    station_id: int | None = None


def _delivery_filter(scope: _Scope, channels: Iterable[str], statuses: Iterable[str]) -> list:
    # Listing every channel and status lets SQLite seek ix_delivery_report
    # (topic_id, channel, status, created_at) with equalities and a range.
    # For one station there is no topic term, so that ix_delivery_station_time
    # (station_id, created_at) is the index that serves: the statements group
    # by topic and ``_aggregate`` drops topics of other plans.
    where = [Delivery.channel.in_(sorted(channels)), Delivery.status.in_(sorted(statuses)),
             Delivery.created_at >= scope.start, Delivery.created_at < scope.end]
    if scope.station_id is None:
        where.insert(0, Delivery.topic_id.in_(scope.topic_ids))
    else:
        where.insert(0, Delivery.station_id == scope.station_id)
    return where


def _statements(scope: _Scope) -> dict:
    counts = (select(Delivery.topic_id, Delivery.channel, Delivery.status, func.count())
              .where(*_delivery_filter(scope, REAL_CHANNELS, ALL_STATUSES))
              .group_by(Delivery.topic_id, Delivery.channel, Delivery.status))
    loudspeaker = (select(Delivery.topic_id, Delivery.status, Delivery.station_id, func.count(),
                          func.coalesce(func.sum(Delivery.duration_s), 0.0))
                   .where(*_delivery_filter(scope, [Channel.LOUDSPEAKER.value], ALL_STATUSES))
                   .group_by(Delivery.topic_id, Delivery.status, Delivery.station_id))
    reach = (select(Delivery.topic_id, Delivery.recipient)
             .where(*_delivery_filter(scope, [Channel.SMS.value], PEOPLE_SMS), Delivery.recipient.is_not(None))
             .group_by(Delivery.topic_id, Delivery.recipient))
    carried = (select(Delivery.topic_id, Bulletin.id, Bulletin.status, Bulletin.late_s)
               .join(Bulletin, Delivery.bulletin_id == Bulletin.id)
               .where(Delivery.topic_id.in_(scope.topic_ids), Bulletin.slot_time >= scope.start,
                      Bulletin.slot_time < scope.end)
               .distinct())
    slots = (select(Bulletin.channel, Bulletin.status, Bulletin.late_s >= LATE_AFTER_S, func.count())
             .where(Bulletin.slot_time >= scope.start, Bulletin.slot_time < scope.end)
             .group_by(Bulletin.channel, Bulletin.status, Bulletin.late_s >= LATE_AFTER_S))
    if scope.station_id is not None:
        carried = carried.where(Bulletin.station_id == scope.station_id)
        slots = slots.where(Bulletin.station_id == scope.station_id)
    return {"counts": counts, "loudspeaker": loudspeaker, "reach": reach, "carried": carried, "slots": slots}


@dataclass
class _Agg:
    counts: Counter = field(default_factory=Counter)  # (topic_id, channel, status) -> n
    airtime_s: Counter = field(default_factory=Counter)  # (topic_id, status) -> seconds
    played_stations: dict = field(default_factory=lambda: defaultdict(set))  # topic_id -> {station_id}
    recipients: dict = field(default_factory=lambda: defaultdict(set))  # topic_id -> {E.164}
    carried: dict = field(default_factory=lambda: defaultdict(dict))  # topic_id -> {bulletin_id: (missed, late)}
    slots: Counter = field(default_factory=Counter)  # (channel, "slots"|"late"|"missed") -> n
    loudspeaker: list = field(default_factory=list)  # (topic_id, status, station_id, n, seconds)

    def add_loudspeaker(self, topic_id: int, status: str, station_id: int | None, n: int, seconds: float) -> None:
        self.loudspeaker.append((topic_id, status, station_id, n, seconds))
        self.counts[(topic_id, Channel.LOUDSPEAKER.value, status)] += n
        self.airtime_s[(topic_id, status)] += seconds or 0.0
        if status in ACHIEVED_LOUDSPEAKER and station_id is not None:
            self.played_stations[topic_id].add(station_id)


def _aggregate(session: Session, scope: _Scope) -> _Agg:
    agg = _Agg()
    if not scope.topic_ids:
        return agg
    statements = _statements(scope)
    ours = set(scope.topic_ids)
    for topic_id, channel, status, n in session.exec(statements["counts"]):
        if channel != Channel.LOUDSPEAKER and topic_id in ours:  # loudspeaker: with its stations below
            agg.counts[(topic_id, channel, status)] += n
    for row in session.exec(statements["loudspeaker"]):
        if row[0] in ours:
            agg.add_loudspeaker(*row)
    for topic_id, recipient in session.exec(statements["reach"]):
        if topic_id in ours:
            agg.recipients[topic_id].add(recipient)
    for topic_id, bulletin_id, status, late_s in session.exec(statements["carried"]):
        agg.carried[topic_id][bulletin_id] = _slot_flags(status, late_s)
    for channel, status, late, n in session.exec(statements["slots"]):
        missed, is_late = _slot_flags(status, LATE_AFTER_S if late else None)
        agg.slots[(channel, "slots")] += n
        agg.slots[(channel, "missed")] += n if missed else 0
        agg.slots[(channel, "late")] += n if is_late else 0
    return agg


def _station_agg(session: Session, agg: _Agg, scope: _Scope, station_id: int, sms: bool) -> _Agg:
    """The part of ``agg`` one station did: loudspeaker rows from ``agg``, SMS (if needed) queried anew."""
    part = _Agg()
    for topic_id, status, row_station, n, seconds in agg.loudspeaker:
        if row_station == station_id:
            part.add_loudspeaker(topic_id, status, row_station, n, seconds)
    if sms:
        statements = _statements(_Scope(scope.topic_ids, scope.start, scope.end, station_id))
        ours = set(scope.topic_ids)
        for topic_id, channel, status, n in session.exec(statements["counts"].where(
                Delivery.channel == Channel.SMS.value)):
            if topic_id in ours:
                part.counts[(topic_id, channel, status)] += n
        for topic_id, recipient in session.exec(statements["reach"]):
            if topic_id in ours:
                part.recipients[topic_id].add(recipient)
    return part


def _slot_flags(status: str, late_s: float | None) -> tuple[bool, bool]:
    missed = status == DeliveryStatus.MISSED
    return missed, (not missed and late_s is not None and late_s >= LATE_AFTER_S)


# --------------------------------------------------------------------------- measuring

def _metric_channels(metric: str, channel: str) -> tuple[str, ...]:
    if metric in (Metric.BROADCASTS, Metric.AIRTIME_MINUTES):
        return (Channel.LOUDSPEAKER.value,)
    if metric in (Metric.SMS_SENT, Metric.SMS_DELIVERED):
        return (Channel.SMS.value,)
    return REAL_CHANNELS if channel == Channel.ANY else (channel,)


def _sum_counts(agg: _Agg, topic_ids: Iterable[int], channel: str, statuses: Iterable[str]) -> int:
    statuses = set(statuses)
    return sum(n for (t, c, s), n in agg.counts.items() if t in topic_ids and c == channel and s in statuses)


def _measure(agg: _Agg, topic_ids: set[int], metric: str, channel: str, listeners: dict[int, int]) -> float:
    if metric == Metric.BROADCASTS:
        return _sum_counts(agg, topic_ids, Channel.LOUDSPEAKER, ACHIEVED_LOUDSPEAKER)
    if metric == Metric.AIRTIME_MINUTES:
        return sum(v for (t, s), v in agg.airtime_s.items() if t in topic_ids and s in ACHIEVED_LOUDSPEAKER) / 60
    if metric == Metric.SMS_SENT:
        return _sum_counts(agg, topic_ids, Channel.SMS, ACHIEVED_SMS_SENT)
    if metric == Metric.SMS_DELIVERED:
        return _sum_counts(agg, topic_ids, Channel.SMS, ACHIEVED_SMS_DELIVERED)
    return _people(agg, topic_ids, _metric_channels(metric, channel), listeners)


def _people(agg: _Agg, topic_ids: set[int], channels: Iterable[str], listeners: dict[int, int]) -> int:
    people = 0
    if Channel.LOUDSPEAKER in channels:
        stations = set().union(*(agg.played_stations.get(t, set()) for t in topic_ids))
        people += sum(listeners.get(s) or 0 for s in stations)
    if Channel.SMS in channels:
        people += len(set().union(*(agg.recipients.get(t, set()) for t in topic_ids)))
    return people


def _totals(agg: _Agg, key: str, title: str, topic_ids: set[int], channels: tuple[str, ...],
            listeners: dict[int, int]) -> Totals:
    row = Totals(key, title)
    if Channel.LOUDSPEAKER in channels:
        row.broadcasts = int(_measure(agg, topic_ids, Metric.BROADCASTS, Channel.LOUDSPEAKER, listeners))
        row.airtime_minutes = _measure(agg, topic_ids, Metric.AIRTIME_MINUTES, Channel.LOUDSPEAKER, listeners)
        carried: dict[int, tuple[bool, bool]] = {}
        for topic_id in topic_ids:
            carried.update(agg.carried.get(topic_id, {}))
        row.slots = len(carried)
        row.missed_slots = sum(1 for missed, _ in carried.values() if missed)
        row.late_slots = sum(1 for _, late in carried.values() if late)
    if Channel.SMS in channels:
        row.sms_sent = _sum_counts(agg, topic_ids, Channel.SMS, ACHIEVED_SMS_SENT)
        row.sms_delivered = _sum_counts(agg, topic_ids, Channel.SMS, ACHIEVED_SMS_DELIVERED)
        row.sms_undelivered = _sum_counts(agg, topic_ids, Channel.SMS, {DeliveryStatus.UNDELIVERED})
        row.sms_failed = _sum_counts(agg, topic_ids, Channel.SMS, {DeliveryStatus.FAILED})
    row.people_reached = _people(agg, topic_ids, channels, listeners)
    for channel in channels:
        row.not_achieved += _sum_counts(agg, topic_ids, channel, NOT_ACHIEVED)
        row.in_progress += _sum_counts(agg, topic_ids, channel, IN_PROGRESS)
    return row


# --------------------------------------------------------------------------- the report

def _resolve(session: Session, plan_code: str, period: str | None, station_code: str | None,
             tz_name: str | None) -> tuple[Plan, list[Topic], Period, Station | None, str, _Scope]:
    plan = get_plan(session, plan_code)
    station = get_station(session, station_code) if station_code else None
    tz_name = station.timezone if station else (tz_name or DEFAULT_TIMEZONE)
    report_period = parse_report_period(period, plan)
    topics = plan_topics(session, plan)
    start, end = report_period.bounds(tz_name)
    scope = _Scope([t.id for t in topics], start, end, station.id if station else None)
    return plan, topics, report_period, station, tz_name, scope


def aggregate_statements(session: Session, plan_code: str, period: str | None = None,
                         station_code: str | None = None, tz_name: str | None = None) -> list:
    """The SQL statements a report runs (for the benchmark and EXPLAIN QUERY PLAN)."""
    *_, scope = _resolve(session, plan_code, period, station_code, tz_name)
    return list(_statements(scope).values())


def build_report(session: Session, plan_code: str, period: str | None = None, station_code: str | None = None,
                 as_of: datetime | None = None, *, tz_name: str | None = None) -> Report:
    """Measure the plan's targets over ``period`` (default: the whole plan) as of ``as_of`` (default: now)."""
    plan, topics, report_period, station, tz_name, scope = _resolve(session, plan_code, period, station_code,
                                                                    tz_name)
    as_of = as_utc(as_of) if as_of else utcnow()
    elapsed = elapsed_fraction(report_period, tz_name, as_of)
    stations = {s.id: s for s in session.exec(select(Station)).all()}
    listeners = {sid: s.listeners or 0 for sid, s in stations.items()}
    agg = _aggregate(session, scope)
    by_station: dict[tuple[int, bool], _Agg] = {}
    all_ids = set(scope.topic_ids)
    topic_by_id = {t.id: t for t in topics}

    report = Report(plan.code, plan.title, plan.period_start, plan.period_end, report_period, tz_name,
                    station.code if station else None, as_of, elapsed)
    for target in plan_targets(session, plan):
        if station and target.station_id not in (None, station.id):
            continue
        source = agg
        if target.station_id is not None and station is None:
            sms = Channel.SMS in _metric_channels(target.metric, target.channel)
            key = (target.station_id, sms)
            if key not in by_station:
                by_station[key] = _station_agg(session, agg, scope, target.station_id, sms)
            source = by_station[key]
        topic = topic_by_id.get(target.topic_id)
        ids = {topic.id} if topic else all_ids
        scale = target_scale(target.period, report_period, plan)
        goal = target.amount * scale
        achieved = _measure(source, ids, target.metric, target.channel, listeners)
        due = goal * elapsed
        not_achieved = sum(_sum_counts(source, ids, c, NOT_ACHIEVED)
                           for c in _metric_channels(target.metric, target.channel))
        report.targets.append(TargetResult(
            topic_code=topic.code if topic else None, topic_title=topic.title if topic else None,
            channel=target.channel, metric=target.metric, period=target.period,
            station_code=stations[target.station_id].code if target.station_id in stations else None,
            amount=target.amount, scale=scale, target=goal, achieved=achieved,
            percent=100 * achieved / goal if goal else None, due=due,
            status=pace_status(achieved, goal, due), not_achieved=not_achieved,
            illustrative=target.illustrative, note=target.note))

    for topic in topics:
        report.topics.append(_totals(agg, topic.code, topic.title, {topic.id}, REAL_CHANNELS, listeners))
    report.total = _totals(agg, "total", "", all_ids, REAL_CHANNELS, listeners)
    for channel in REAL_CHANNELS:
        row = _totals(agg, channel, "", all_ids, (channel,), listeners)
        row.slots = agg.slots[(channel, "slots")]
        row.late_slots = agg.slots[(channel, "late")]
        row.missed_slots = agg.slots[(channel, "missed")]
        report.channels.append(row)
    order = {t.id: i for i, t in enumerate(topics)}
    for (topic_id, channel, status), n in sorted(agg.counts.items(),
                                                 key=lambda kv: (order.get(kv[0][0], 0), kv[0][1], kv[0][2])):
        if status in NOT_ACHIEVED:
            kind = "not_achieved"
        elif status in IN_PROGRESS:
            kind = "in_progress"
        elif status == DeliveryStatus.UNDELIVERED:
            kind = "undelivered"
        else:
            continue
        topic = topic_by_id.get(topic_id)
        report.not_achieved.append(NotAchievedRow(
            topic.code if topic else None, channel, status, n,
            agg.airtime_s.get((topic_id, status), 0.0) / 60 if channel == Channel.LOUDSPEAKER else 0.0, kind))
    return report


# --------------------------------------------------------------------------- the log

@dataclass
class LogRow:
    id: int
    created_at: datetime
    updated_at: datetime
    channel: str
    status: str
    plan: str | None
    topic: str | None
    item_id: int | None
    item_title: str | None
    station: str | None
    recipient: str | None
    bulletin_id: int | None
    campaign_id: int | None
    started_at: datetime | None
    duration_s: float | None
    late_s: float | None
    attempts: int
    error: str | None


def parse_moment(text: str, tz_name: str, *, end: bool = False) -> datetime:
    """A date (the whole day: its start, or with ``end`` the next midnight) or a local date-time."""
    text = text.strip()
    if len(text) <= 10:
        day = parse_date(text)
        if end:
            day += timedelta(days=1)
        return as_utc(datetime.combine(day, time(0), zone(tz_name)))
    moment = as_utc(parse_local_datetime(text, tz_name))
    return moment + timedelta(microseconds=1) if end else moment


def query_log(session: Session, *, tz_name: str = DEFAULT_TIMEZONE, since: str | None = None,
              until: str | None = None, channel: str | None = None, statuses: Iterable[str] = (),
              topic: str | None = None, station: str | None = None, plan: str | None = None,
              item_id: int | None = None, limit: int | None = 200) -> list[LogRow]:
    """Deliveries, newest first. ``since``/``until`` are local dates (whole days) or date-times."""
    query = (select(Delivery, Plan.code, Topic.code, ContentItem.title, Station.code)
             .outerjoin(Plan, Delivery.plan_id == Plan.id)
             .outerjoin(Topic, Delivery.topic_id == Topic.id)
             .outerjoin(ContentItem, Delivery.item_id == ContentItem.id)
             .outerjoin(Station, Delivery.station_id == Station.id))
    if since:
        query = query.where(Delivery.created_at >= parse_moment(since, tz_name))
    if until:
        query = query.where(Delivery.created_at < parse_moment(until, tz_name, end=True))
    if channel:
        query = query.where(Delivery.channel == channel)
    statuses = list(statuses)
    if statuses:
        query = query.where(Delivery.status.in_(statuses))
    if plan:
        query = query.where(Delivery.plan_id == get_plan(session, plan).id)
    if topic:
        query = query.where(Delivery.topic_id == find_topic(session, topic, plan).id)
    if station:
        query = query.where(Delivery.station_id == get_station(session, station).id)
    if item_id is not None:
        if session.get(ContentItem, item_id) is None:
            raise NotFoundError(f"không có tin bài số {item_id} / no content item {item_id}")
        query = query.where(Delivery.item_id == item_id)
    query = query.order_by(Delivery.id.desc())  # ids follow the order rows were written
    if limit:
        query = query.limit(limit)
    rows = []
    for delivery, plan_code, topic_code, item_title, station_code in session.exec(query):
        rows.append(LogRow(
            id=delivery.id, created_at=delivery.created_at, updated_at=delivery.updated_at,
            channel=delivery.channel, status=delivery.status, plan=plan_code, topic=topic_code,
            item_id=delivery.item_id, item_title=item_title, station=station_code, recipient=delivery.recipient,
            bulletin_id=delivery.bulletin_id, campaign_id=delivery.campaign_id, started_at=delivery.started_at,
            duration_s=delivery.duration_s, late_s=delivery.late_s, attempts=delivery.attempts,
            error=" ".join(x for x in (delivery.error_code, delivery.error_message) if x) or None))
    return rows
