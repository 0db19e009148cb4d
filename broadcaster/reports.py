"""Reports: what the delivery log achieved against a plan's targets, and the log itself.

Pure functions over a session; formatting lives in ``report_formats`` (and the
official form in ``report_document``), the commands in ``cli/reports``. What a
delivery row means is defined in ``deliveries``; this module only counts.
Every number has one meaning; the rules are printed under every report
(``report_formats.RULES``) and explained in ``docs/reports.md``:

- **Time.** A delivery belongs to the period in which it was *written*
  (``Delivery.created_at``), in the report's time zone (the station's, else
  the config's, Asia/Ho_Chi_Minh): a delivery written 2023-03-31 20:00 UTC is
  2023-04-01 03:00 local and counts in April. A bulletin belongs with the
  deliveries it carried.
- **Sessions** (buổi phát) are bulletins that aired plan content: a
  loudspeaker bulletin with at least one plan item ``played``, or an SMS send
  (campaign) with at least one plan message sent. Scheduled bulletins,
  announcements and SMS sends are separate rows of the channel table; a
  bulletin that aired nothing of the plan is shown on its own row ("outside
  the plan") and is in no total. A session is *late* when it started
  ``LATE_AFTER_S`` seconds or more after it was due.
- **Broadcasts** (lượt phát) are plan items ``played`` (one item in one
  bulletin, however many readings). **Content airtime** is their speech
  (``Delivery.duration_s``): what airtime targets count. **On-air time** is
  the whole of each session (``Bulletin.started_at..ended_at``, else
  ``duration_s``): jingles, ident and pauses included.
- **SMS sent** = ``sent``, ``delivered`` or ``undelivered`` (it left the
  machine); **delivered** = ``delivered``; **undelivered** apart.
- **Not done** are separate columns, counted in deliveries: pending or in
  progress (``pending``, ``sending``, ``playing``), ``cancelled``, ``failed``,
  ``missed``, ``interrupted``, ``uncertain``, ``skipped``. Only ``failed`` is a
  failure.
- **People reached** is a count of distinct people: the distinct SMS
  recipients with ``sent`` or ``delivered`` plus the ``listeners`` of each
  distinct station that played plan content (the two may overlap and are
  simply added). A total counts each person once, so rows can add up to more.
  A people target is never scaled by months: it is compared with the people
  reached from the start of the target's own period (the month, quarter or
  year holding the end of the report period; the plan's start for a
  whole-plan target) to the end of the report period.
- **Scaling** (every other metric). A target is stated per month, quarter,
  year or for the whole plan; the report period is measured in calendar months
  (``months_in``). The target for the period is ``amount × months`` (per
  month), ``× months / 3`` (quarter), ``× months / 12`` (year), ``× months /
  months of the plan`` (whole plan).
- **Pace.** Due by now = the target × the share of its window that has
  elapsed at ``as_of``. Status: *done* when achieved ≥ target; *on track* when
  achieved ≥ due by now; otherwise *behind*.
- **Totals.** The topic table and the channel table count the same deliveries
  and bulletins, so their totals are equal; a bulletin carrying two topics is
  a session of each topic and one session in the total.
- **Scope.** A delivery belongs to a plan through its topic. A target with a
  station counts only that station's deliveries; ``station_code`` filters
  everything (and drops targets of other stations).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from .deliveries import ACHIEVED_LOUDSPEAKER, ACHIEVED_SMS_DELIVERED, ACHIEVED_SMS_SENT
from .errors import InputError, NotFoundError
from .models import (
    Bulletin,
    Campaign,
    Channel,
    ContentItem,
    Delivery,
    DeliveryStatus,
    Metric,
    Plan,
    Station,
    TargetPeriod,
    Topic,
)
from .phones import mask_phone
from .plans import find_topic, get_plan, plan_targets, plan_topics
from .stations import get_station
from .timeutil import DEFAULT_TIMEZONE, as_utc, parse_date, parse_local_datetime, utcnow, zone

LATE_AFTER_S = 60.0
CANCELLED = "cancelled"  # DeliveryStatus.CANCELLED once the SMS cancel command lands: matched by its value
REAL_CHANNELS = (Channel.LOUDSPEAKER.value, Channel.SMS.value)
KNOWN_STATUSES = sorted({s.value for s in DeliveryStatus} | {CANCELLED})
PEOPLE_SMS = {DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value}

# Channel-table rows: loudspeaker deliveries split by the kind of bulletin that carried them.
SCHEDULED, ANNOUNCEMENT, SMS_ROW = "loudspeaker", "announcement", "sms"
CHANNEL_ROWS = (SCHEDULED, ANNOUNCEMENT, SMS_ROW)
OUTSIDE_PLAN = "outside_plan"

# Statuses that did not achieve anything, each in its own column (by the string value, so a status
# added to DeliveryStatus later is counted where it belongs or, if unknown, nowhere but the log).
STATUS_COLUMNS = {
    DeliveryStatus.PENDING.value: "in_progress",
    DeliveryStatus.SENDING.value: "in_progress",
    DeliveryStatus.PLAYING.value: "in_progress",
    CANCELLED: "cancelled",
    DeliveryStatus.FAILED.value: "failed",
    DeliveryStatus.MISSED.value: "missed",
    DeliveryStatus.INTERRUPTED.value: "interrupted",
    DeliveryStatus.UNCERTAIN.value: "uncertain",
    DeliveryStatus.SKIPPED.value: "skipped",
}

DONE, ON_TRACK, BEHIND = "done", "on_track", "behind"
STATUS_LABELS = {DONE: ("đạt", "done"), ON_TRACK: ("đúng tiến độ", "on track"), BEHIND: ("chậm", "behind")}
DELIVERY_STATUS_LABELS = {
    DeliveryStatus.PENDING.value: ("chờ gửi", "pending"),
    DeliveryStatus.SENDING.value: ("đang gửi", "sending"),
    DeliveryStatus.UNCERTAIN.value: ("không rõ kết quả", "uncertain"),
    DeliveryStatus.PLAYING.value: ("đang phát", "playing"),
    DeliveryStatus.PLAYED.value: ("đã phát", "played"),
    DeliveryStatus.SENT.value: ("đã gửi", "sent"),
    DeliveryStatus.DELIVERED.value: ("đã đến", "delivered"),
    DeliveryStatus.UNDELIVERED.value: ("không đến", "undelivered"),
    DeliveryStatus.FAILED.value: ("lỗi", "failed"),
    DeliveryStatus.MISSED.value: ("bị lỡ", "missed"),
    DeliveryStatus.INTERRUPTED.value: ("bị ngắt", "interrupted"),
    DeliveryStatus.SKIPPED.value: ("bỏ qua", "skipped"),
    CANCELLED: ("đã hủy", "cancelled"),
}
CHANNEL_LABELS = {
    Channel.LOUDSPEAKER.value: ("loa truyền thanh", "loudspeaker"),
    Channel.SMS.value: ("tin nhắn SMS", "SMS"),
    Channel.ANY.value: ("mọi kênh", "any channel"),
}
CHANNEL_ROW_LABELS = {
    SCHEDULED: ("Loa: bản tin theo lịch", "Loudspeaker: scheduled bulletins"),
    ANNOUNCEMENT: ("Loa: thông báo", "Loudspeaker: announcements"),
    SMS_ROW: ("Tin nhắn SMS", "SMS"),
    OUTSIDE_PLAN: ("Ngoài kế hoạch (không tính vào tổng)", "Outside the plan (in no total)"),
}
# What a target measures, in the report's words (airtime targets count content airtime).
METRIC_LABELS = {
    Metric.BROADCASTS.value: ("lượt phát", "broadcasts"),
    Metric.AIRTIME_MINUTES.value: ("phút nội dung", "content minutes"),
    Metric.SMS_SENT.value: ("tin nhắn đã gửi", "SMS sent"),
    Metric.SMS_DELIVERED.value: ("tin nhắn đã đến", "SMS delivered"),
    Metric.PEOPLE_REACHED.value: ("người được tiếp cận", "people reached"),
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
    scale: float  # 1 for people targets: people are counted, never scaled
    target: float  # what the period (for people: the counted window) has to reach
    achieved: float
    percent: float | None
    due: float  # what the pace says should be done by as_of
    shortfall: float  # target - achieved, when short of the target
    status: str
    counted_from: date  # the dates ``achieved`` covers
    counted_to: date
    illustrative: bool = False
    note: str = ""


@dataclass
class Totals:
    """One row of the topic or the channel table (see the module docstring for each meaning)."""

    key: str  # topic code, a CHANNEL_ROWS key, OUTSIDE_PLAN or "total"
    title: str = ""
    sessions: int = 0
    late_sessions: int = 0
    broadcasts: int = 0
    content_minutes: float = 0.0
    on_air_minutes: float = 0.0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_undelivered: int = 0
    people_reached: int = 0
    in_progress: int = 0
    cancelled: int = 0
    failed: int = 0
    missed: int = 0
    interrupted: int = 0
    uncertain: int = 0
    skipped: int = 0


@dataclass
class StationInfo:
    code: str
    name: str
    commune: str
    listeners: int | None


@dataclass
class Report:
    plan_code: str
    plan_title: str
    plan_issuer: str
    plan_start: date
    plan_end: date
    period: Period
    timezone: str
    station_code: str | None
    as_of: datetime
    elapsed: float
    commune: str = ""  # the config's broadcaster.commune, else the stations'
    plan_issued_on: date | None = None
    stations: list[StationInfo] = field(default_factory=list)  # the stations the report covers
    targets: list[TargetResult] = field(default_factory=list)
    topics: list[Totals] = field(default_factory=list)
    total: Totals = field(default_factory=lambda: Totals("total"))
    channels: list[Totals] = field(default_factory=list)
    outside_plan: Totals | None = None  # bulletins that aired no plan content
    log: list[LogRow] | None = None  # the period's deliveries, when asked for

    @property
    def illustrative(self) -> bool:
        return any(r.illustrative for r in self.targets)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["period"] = {"label": self.period.label, "kind": self.period.kind,
                          "start": self.period.start.isoformat(), "end": self.period.end.isoformat()}
        data["plan_start"], data["plan_end"] = self.plan_start.isoformat(), self.plan_end.isoformat()
        data["as_of"] = self.as_of.isoformat()
        for row in data["targets"]:
            row["counted_from"], row["counted_to"] = row["counted_from"].isoformat(), row["counted_to"].isoformat()
        if data["plan_issued_on"]:
            data["plan_issued_on"] = self.plan_issued_on.isoformat()
        for row in data["log"] or []:
            row["recipient"] = mask_phone(row["recipient"]) if row["recipient"] else None
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
    # Listing every channel (and status) lets SQLite seek ix_delivery_report
    # (topic_id, channel, status, created_at) with equalities and a range.
    # For one station there is no topic term, so that ix_delivery_station_time
    # (station_id, created_at) is the index that serves: ``_aggregate`` drops
    # topics of other plans.
    where = [Delivery.channel.in_(sorted(channels)), Delivery.status.in_(sorted(statuses)),
             Delivery.created_at >= scope.start, Delivery.created_at < scope.end]
    if scope.station_id is None:
        where.insert(0, Delivery.topic_id.in_(scope.topic_ids))
    else:
        where.insert(0, Delivery.station_id == scope.station_id)
    return where


def _statements(scope: _Scope) -> dict:
    loudspeaker = (select(Delivery.topic_id, Delivery.status, Delivery.station_id, Delivery.bulletin_id,
                          func.count(), func.coalesce(func.sum(Delivery.duration_s), 0.0))
                   .where(*_delivery_filter(scope, [Channel.LOUDSPEAKER.value], KNOWN_STATUSES))
                   .group_by(Delivery.topic_id, Delivery.status, Delivery.station_id, Delivery.bulletin_id))
    sms = (select(Delivery.topic_id, Delivery.status, func.count())
           .where(*_delivery_filter(scope, [Channel.SMS.value], KNOWN_STATUSES))
           .group_by(Delivery.topic_id, Delivery.status))
    reach = (select(Delivery.topic_id, Delivery.recipient)
             .where(*_delivery_filter(scope, [Channel.SMS.value], PEOPLE_SMS), Delivery.recipient.is_not(None))
             .group_by(Delivery.topic_id, Delivery.recipient))
    # An SMS send is a session when one of its messages was sent in the period: one probe per campaign
    # through ix_delivery_campaign_id (the topic is checked on the row found; ``station_id + 0`` keeps
    # SQLite from walking a station's whole period instead) rather than reading every message row.
    probe = [Delivery.campaign_id == Campaign.id, Delivery.status.in_(sorted(ACHIEVED_SMS_SENT)),
             Delivery.created_at >= scope.start, Delivery.created_at < scope.end]
    if scope.station_id is not None:
        probe.append(Delivery.station_id + 0 == scope.station_id)
    sent = select(Delivery.topic_id).where(*probe).limit(1).correlate(Campaign).scalar_subquery()
    sends = select(Campaign.id, sent.label("topic_id")).where(Campaign.created_at < scope.end)
    aired = (select(*_BULLETIN_COLUMNS)
             .where(Bulletin.channel == Channel.LOUDSPEAKER.value, Bulletin.slot_time >= scope.start,
                    Bulletin.slot_time < scope.end,
                    Bulletin.status.in_([DeliveryStatus.PLAYED.value, DeliveryStatus.INTERRUPTED.value])))
    if scope.station_id is not None:
        aired = aired.where(Bulletin.station_id == scope.station_id)
    return {"loudspeaker": loudspeaker, "sms": sms, "reach": reach, "sends": sends, "aired": aired}


_BULLETIN_COLUMNS = (Bulletin.id, Bulletin.kind, Bulletin.status, Bulletin.late_s, Bulletin.duration_s,
                     Bulletin.started_at, Bulletin.ended_at)


def _bulletins_by_id(session: Session, ids: set[int], chunk: int = 1000) -> dict[int, _Bulletin]:
    found = {}
    ordered = sorted(ids)
    for first in range(0, len(ordered), chunk):
        statement = select(*_BULLETIN_COLUMNS).where(Bulletin.id.in_(ordered[first:first + chunk]))
        found.update(_bulletin(r) for r in session.exec(statement))
    return found


@dataclass
class _Bulletin:
    kind: str
    late: bool
    on_air_s: float


@dataclass
class _Agg:
    """The period's deliveries, grouped finely enough that every table row is a filter over them."""

    loudspeaker: list = field(default_factory=list)  # (topic_id, status, station_id, bulletin_id, n, seconds)
    sms: list = field(default_factory=list)  # (topic_id, status, n)
    sends: dict = field(default_factory=lambda: defaultdict(set))  # topic_id -> {campaign_id} that sent
    recipients: dict = field(default_factory=lambda: defaultdict(set))  # topic_id -> {E.164} sent or delivered
    bulletins: dict = field(default_factory=dict)  # bulletin_id -> _Bulletin (those that carried plan items)
    aired: dict = field(default_factory=dict)  # bulletin_id -> _Bulletin (every loudspeaker bulletin aired)
    # topic_id -> [(status, station_id, bulletin_id, n, seconds, channel-table row)]: what the tables filter
    facts: dict = field(default_factory=lambda: defaultdict(list))

    def index(self) -> _Agg:
        self.facts = defaultdict(list)
        for topic_id, status, station_id, bulletin_id, n, seconds in self.loudspeaker:
            bulletin = self.bulletins.get(bulletin_id)
            row = ANNOUNCEMENT if bulletin is not None and bulletin.kind == ANNOUNCEMENT else SCHEDULED
            self.facts[topic_id].append((status, station_id, bulletin_id, n, seconds, row))
        return self


def _bulletin(row) -> tuple[int, _Bulletin]:
    bulletin_id, kind, status, late_s, duration_s, started_at, ended_at = row
    # A bulletin played to its end was on air for its length (a file-drop player returns at once, so
    # its clock times span nothing); an interrupted one for as long as its clock times say.
    span = (max(0.0, (as_utc(ended_at) - as_utc(started_at)).total_seconds())
            if started_at is not None and ended_at is not None else None)
    if status == DeliveryStatus.PLAYED:
        on_air = duration_s if duration_s is not None else (span or 0.0)
    else:
        on_air = min(x for x in (span, duration_s, float("inf")) if x is not None) if span is not None else 0.0
    late = late_s is not None and late_s >= LATE_AFTER_S
    return bulletin_id, _Bulletin(kind or "slot", late, on_air)


ALL_PARTS = ("loudspeaker", "sms", "reach", "sends", "sessions", "aired")


def _aggregate(session: Session, scope: _Scope, parts: Iterable[str] = ALL_PARTS) -> _Agg:
    agg = _Agg()
    if not scope.topic_ids:
        return agg
    statements = _statements(scope)
    ours = set(scope.topic_ids)
    parts = set(parts)
    if "loudspeaker" in parts:
        agg.loudspeaker = [tuple(r) for r in session.exec(statements["loudspeaker"]) if r[0] in ours]
    if "sms" in parts:
        agg.sms = [tuple(r) for r in session.exec(statements["sms"]) if r[0] in ours]
    if "reach" in parts:
        for topic_id, recipient in session.exec(statements["reach"]):
            if topic_id in ours:
                agg.recipients[topic_id].add(recipient)
    if "sends" in parts:
        for campaign_id, topic_id in session.exec(statements["sends"]):
            if topic_id in ours:
                agg.sends[topic_id].add(campaign_id)
    if "sessions" in parts:
        agg.bulletins = _bulletins_by_id(session, {r[3] for r in agg.loudspeaker if r[3] is not None})
    if "aired" in parts:
        agg.aired = dict(_bulletin(r) for r in session.exec(statements["aired"]))
    return agg.index()


# --------------------------------------------------------------------------- measuring

@dataclass
class _Selection:
    """Which deliveries a figure counts: topics, channel-table rows, and optionally one station."""

    topic_ids: set[int]
    rows: frozenset = frozenset(CHANNEL_ROWS)
    station_id: int | None = None

    def loudspeaker(self, agg: _Agg) -> Iterable[tuple]:
        """(status, station_id, bulletin_id, n, seconds, row) of the selected loudspeaker deliveries."""
        for topic_id in self.topic_ids:
            for fact in agg.facts.get(topic_id, ()):
                if fact[5] in self.rows and self.station_id in (None, fact[1]):
                    yield fact

    def sms(self, agg: _Agg) -> Iterable[tuple]:
        """SMS facts of the topics (``agg`` holds one station's only when a station is selected)."""
        if SMS_ROW not in self.rows:
            return
        for row in agg.sms:
            if row[0] in self.topic_ids:
                yield row


def _played(sel: _Selection, agg: _Agg) -> list[tuple]:
    return [r for r in sel.loudspeaker(agg) if r[0] in ACHIEVED_LOUDSPEAKER]


def _sms_count(sel: _Selection, agg: _Agg, statuses: Iterable[str]) -> int:
    statuses = set(statuses)
    return sum(r[2] for r in sel.sms(agg) if r[1] in statuses)


def _people(sel: _Selection, agg: _Agg, listeners: dict[int, int]) -> int:
    stations = {r[1] for r in _played(sel, agg) if r[1] is not None}
    people = sum(listeners.get(s) or 0 for s in stations)
    if SMS_ROW in sel.rows:
        people += len(set().union(*(agg.recipients.get(t, set()) for t in sel.topic_ids)))
    return people


def _measure(sel: _Selection, agg: _Agg, metric: str, listeners: dict[int, int]) -> float:
    if metric == Metric.BROADCASTS:
        return sum(r[3] for r in _played(sel, agg))
    if metric == Metric.AIRTIME_MINUTES:
        return sum(r[4] or 0.0 for r in _played(sel, agg)) / 60
    if metric == Metric.SMS_SENT:
        return _sms_count(sel, agg, ACHIEVED_SMS_SENT)
    if metric == Metric.SMS_DELIVERED:
        return _sms_count(sel, agg, ACHIEVED_SMS_DELIVERED)
    return _people(sel, agg, listeners)


def _totals(agg: _Agg, key: str, title: str, sel: _Selection, listeners: dict[int, int]) -> Totals:
    row = Totals(key, title)
    played = _played(sel, agg)
    row.broadcasts = sum(r[3] for r in played)
    row.content_minutes = sum(r[4] or 0.0 for r in played) / 60
    sessions = {r[2] for r in played if r[2] is not None}
    row.late_sessions = sum(1 for b in sessions if agg.bulletins[b].late)
    row.on_air_minutes = sum(agg.bulletins[b].on_air_s for b in sessions) / 60
    sends = set().union(*(agg.sends.get(t, set()) for t in sel.topic_ids)) if SMS_ROW in sel.rows else set()
    row.sessions = len(sessions) + len(sends)
    row.sms_sent = _sms_count(sel, agg, ACHIEVED_SMS_SENT)
    row.sms_delivered = _sms_count(sel, agg, ACHIEVED_SMS_DELIVERED)
    row.sms_undelivered = _sms_count(sel, agg, {DeliveryStatus.UNDELIVERED.value})
    row.people_reached = _people(sel, agg, listeners)
    for status, n in [(r[0], r[3]) for r in sel.loudspeaker(agg)] + [(r[1], r[2]) for r in sel.sms(agg)]:
        column = STATUS_COLUMNS.get(status)
        if column:
            setattr(row, column, getattr(row, column) + n)
    return row


def _outside_plan(agg: _Agg) -> Totals | None:
    """Loudspeaker bulletins of the period that aired none of the plan's items (e.g. an announcement)."""
    carried = {r[3] for r in agg.loudspeaker}
    others = [b for bulletin_id, b in agg.aired.items() if bulletin_id not in carried]
    if not others:
        return None
    return Totals(OUTSIDE_PLAN, sessions=len(others), late_sessions=sum(1 for b in others if b.late),
                  on_air_minutes=sum(b.on_air_s for b in others) / 60)


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
                 as_of: datetime | None = None, *, tz_name: str | None = None, commune: str = "",
                 with_log: bool = False) -> Report:
    """Measure the plan's targets over ``period`` (default: the whole plan) as of ``as_of`` (default: now).

    ``commune`` names the commune in the heading (the config's
    ``broadcaster.commune``; empty: the stations' commune). ``with_log`` adds the
    period's delivery log (``Report.log``, oldest first).
    """
    plan, topics, report_period, station, tz_name, scope = _resolve(session, plan_code, period, station_code,
                                                                    tz_name)
    as_of = as_utc(as_of) if as_of else utcnow()
    elapsed = elapsed_fraction(report_period, tz_name, as_of)
    stations = {s.id: s for s in session.exec(select(Station).order_by(Station.code)).all()}
    listeners = {sid: s.listeners or 0 for sid, s in stations.items()}
    agg = _aggregate(session, scope)
    all_ids = set(scope.topic_ids)
    topic_by_id = {t.id: t for t in topics}
    covered = [station] if station else list(stations.values())

    report = Report(plan.code, plan.title, plan.issuer, plan.period_start, plan.period_end, report_period,
                    tz_name, station.code if station else None, as_of, elapsed,
                    commune=commune.strip() or next((s.commune for s in covered if s.commune), ""),
                    plan_issued_on=plan.issued_on,
                    stations=[StationInfo(s.code, s.name, s.commune, s.listeners) for s in covered])
    windows: dict[tuple[date, date, int | None], dict] = {}
    for target in plan_targets(session, plan):
        if station and target.station_id not in (None, station.id):
            continue
        topic = topic_by_id.get(target.topic_id)
        rows = {Channel.LOUDSPEAKER.value: frozenset({SCHEDULED, ANNOUNCEMENT}),
                Channel.SMS.value: frozenset({SMS_ROW})}.get(target.channel, frozenset(CHANNEL_ROWS))
        sel = _Selection({topic.id} if topic else all_ids, rows, target.station_id)
        if target.metric == Metric.PEOPLE_REACHED:
            counted, whole = people_window(target.period, report_period, plan)
            scale, goal = 1.0, target.amount
            due = goal * elapsed_fraction(whole, tz_name, as_of)
        else:
            counted = whole = report_period
            scale = target_scale(target.period, report_period, plan)
            goal = target.amount * scale
            due = goal * elapsed
        source = agg
        if (counted.start, counted.end) != (report_period.start, report_period.end):
            source = _window_agg(session, scope, counted, tz_name, windows)
        if target.station_id is not None and station is None and SMS_ROW in rows:
            # The shared aggregate keeps loudspeaker rows per station, not SMS rows: ask for that station's.
            own = _station_sms(session, scope, counted, tz_name, target.station_id, windows)
            source = _Agg(loudspeaker=source.loudspeaker, bulletins=source.bulletins, sms=own.sms,
                          recipients=own.recipients).index()
        achieved = _measure(sel, source, target.metric, listeners)
        report.targets.append(TargetResult(
            topic_code=topic.code if topic else None, topic_title=topic.title if topic else None,
            channel=target.channel, metric=target.metric, period=target.period,
            station_code=stations[target.station_id].code if target.station_id in stations else None,
            amount=target.amount, scale=scale, target=goal, achieved=achieved,
            percent=100 * achieved / goal if goal else None, due=due, shortfall=max(0.0, goal - achieved),
            status=pace_status(achieved, goal, due), counted_from=counted.start, counted_to=counted.end,
            illustrative=target.illustrative, note=target.note))

    for topic in topics:
        report.topics.append(_totals(agg, topic.code, topic.title, _Selection({topic.id}), listeners))
    report.total = _totals(agg, "total", "", _Selection(all_ids), listeners)
    for key in CHANNEL_ROWS:
        report.channels.append(_totals(agg, key, "", _Selection(all_ids, frozenset({key})), listeners))
    report.outside_plan = _outside_plan(agg)
    if with_log:
        report.log = query_log(session, tz_name=tz_name, between=(scope.start, scope.end), plan=plan.code,
                               station=station.code if station else None, limit=None, oldest_first=True)
    return report


def _window_agg(session: Session, scope: _Scope, counted: Period, tz_name: str, cache: dict) -> _Agg:
    """What a people target needs (who played, who received) over its own window."""
    key = (counted.start, counted.end, None)
    if key not in cache:
        start, end = counted.bounds(tz_name)
        cache[key] = _aggregate(session, _Scope(scope.topic_ids, start, end, scope.station_id),
                                ("loudspeaker", "reach"))
    return cache[key]


def _station_sms(session: Session, scope: _Scope, counted: Period, tz_name: str, station_id: int,
                 cache: dict) -> _Agg:
    key = (counted.start, counted.end, station_id)
    if key not in cache:
        start, end = counted.bounds(tz_name)
        cache[key] = _aggregate(session, _Scope(scope.topic_ids, start, end, station_id), ("sms", "reach"))
    return cache[key]


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
              item_id: int | None = None, limit: int | None = 200,
              between: tuple[datetime, datetime] | None = None, oldest_first: bool = False) -> list[LogRow]:
    """Deliveries, newest first (or oldest first).

    ``since``/``until`` are local dates (whole days) or date-times; ``between``
    is an aware [start, end) as a report period's ``bounds``.
    """
    query = (select(Delivery, Plan.code, Topic.code, ContentItem.title, Station.code)
             .outerjoin(Plan, Delivery.plan_id == Plan.id)
             .outerjoin(Topic, Delivery.topic_id == Topic.id)
             .outerjoin(ContentItem, Delivery.item_id == ContentItem.id)
             .outerjoin(Station, Delivery.station_id == Station.id))
    if since:
        query = query.where(Delivery.created_at >= parse_moment(since, tz_name))
    if until:
        query = query.where(Delivery.created_at < parse_moment(until, tz_name, end=True))
    if between:
        query = query.where(Delivery.created_at >= between[0], Delivery.created_at < between[1])
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
    # ids follow the order rows were written
    query = query.order_by(Delivery.id if oldest_first else Delivery.id.desc())
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
