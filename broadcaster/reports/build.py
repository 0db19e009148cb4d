"""Measuring a plan's targets over a period: the ``Report`` and the tables it carries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime

from sqlmodel import Session, select

from ..deliveries import ACHIEVED_SMS_DELIVERED, ACHIEVED_SMS_SENT, DeliveryStatus
from ..models import Channel, Metric, Plan, Station, Topic
from ..phones import mask_phone
from ..plans import get_plan, plan_targets, plan_topics
from ..stations import get_station
from ..timeutil import DEFAULT_TIMEZONE, as_utc, utcnow
from .aggregate import (
    _Agg,
    _aggregate,
    _chosen_statements,
    _measure,
    _people,
    _played,
    _Scope,
    _Selection,
    _sms_count,
)
from .log import LogRow, query_log
from .periods import Period, elapsed_fraction, pace_status, parse_report_period, people_window, target_scale
from .terms import (
    ANNOUNCEMENT,
    BEHIND,
    CHANNEL_ROWS,
    DONE,
    LATE_AFTER_S,
    ON_TRACK,
    OUTSIDE_PLAN,
    SCHEDULED,
    SMS_ROW,
    STATUS_COLUMNS,
)

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
    """One row of the topic or the channel table (each meaning: the ``broadcaster.reports`` docstring)."""

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
class StationResult:
    """One station's row of ``report --by station``: its totals and how its targets stand."""

    code: str
    name: str
    commune: str
    totals: Totals
    targets: int  # its targets: its own, and the plan's where it has none of its own
    behind: int  # of them behind pace
    pace: float | None  # the lowest "achieved ÷ due by now" among them, in percent (None: nothing due yet)
    status: str | None  # the worst of their statuses (None: no targets)


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
    by_station: list[StationResult] | None = None  # one row per station, furthest behind pace first

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


def _totals(agg: _Agg, key: str, title: str, sel: _Selection, listeners: dict[int, int]) -> Totals:
    row = Totals(key, title)
    row.broadcasts, seconds, sessions, _ = _played(sel, agg)
    row.content_minutes = seconds / 60
    row.late_sessions = sum(1 for b in sessions if agg.bulletins[b].late)
    row.on_air_minutes = sum(agg.bulletins[b].on_air_s for b in sessions) / 60
    sends = set().union(*(agg.sends.get(t, set()) for t in sel.topic_ids)) if SMS_ROW in sel.rows else set()
    row.sessions = len(sessions) + len(sends)
    row.sms_sent = _sms_count(sel, agg, ACHIEVED_SMS_SENT)
    row.sms_delivered = _sms_count(sel, agg, ACHIEVED_SMS_DELIVERED)
    row.sms_undelivered = _sms_count(sel, agg, {DeliveryStatus.UNDELIVERED.value})
    row.people_reached = _people(sel, agg, listeners)
    counted = [pair for _, cell in sel.loudspeaker(agg) for pair in cell.statuses.items()]
    for status, n in counted + [(r[1], r[2]) for r in sel.sms(agg)]:
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


def _resolve(session: Session, plan_code: str, period: str | None, station_code: str | None,
             tz_name: str | None, rollup: bool = True) -> tuple[Plan, list[Topic], Period, Station | None, str,
                                                               _Scope]:
    plan = get_plan(session, plan_code)
    station = get_station(session, station_code) if station_code else None
    tz_name = station.timezone if station else (tz_name or DEFAULT_TIMEZONE)
    report_period = parse_report_period(period, plan)
    topics = plan_topics(session, plan)
    start, end = report_period.bounds(tz_name)
    scope = _Scope([t.id for t in topics], start, end, station.id if station else None, rollup)
    return plan, topics, report_period, station, tz_name, scope


def aggregate_statements(session: Session, plan_code: str, period: str | None = None,
                         station_code: str | None = None, tz_name: str | None = None, *,
                         rollup: bool = True) -> list:
    """The SQL statements a report's aggregate runs (for the benchmark and EXPLAIN QUERY PLAN).

    From the rollup, people are counted from the log when someone straddles the period (``_aggregate``):
    then the log's statement is listed, as it is the one that runs.
    """
    *_, scope = _resolve(session, plan_code, period, station_code, tz_name, rollup)
    statements, people_rolled_up = _chosen_statements(session, scope)
    if people_rolled_up:
        for name in ("reach", "reach_by_topic"):  # people per topic, and in all the plan's topics
            statements[name] = statements[name].params(topics=scope.topic_ids)
    return list(statements.values())


def build_report(session: Session, plan_code: str, period: str | None = None, station_code: str | None = None,
                 as_of: datetime | None = None, *, tz_name: str | None = None, commune: str = "",
                 with_log: bool = False, rollup: bool = True, by_station: bool = False,
                 _known: tuple[dict[int, Station], list] | None = None) -> Report:
    """Measure the plan's targets over ``period`` (default: the whole plan) as of ``as_of`` (default: now).

    ``commune`` names the commune in the heading (the config's
    ``broadcaster.commune``; empty: the stations' commune). ``with_log`` adds the
    period's delivery log (``Report.log``, oldest first). ``rollup=False``
    counts from the log itself (the reference the rollup is tested against).
    ``by_station`` adds one row per station (``Report.by_station``): each is
    what ``station_code`` would report for that station.
    """
    plan, topics, report_period, station, tz_name, scope = _resolve(session, plan_code, period, station_code,
                                                                    tz_name, rollup)
    as_of = as_utc(as_of) if as_of else utcnow()
    elapsed = elapsed_fraction(report_period, tz_name, as_of)
    # ``_known``: the stations and the plan's targets, already read for every station's row of ``by_station``
    stations, targets = _known or ({s.id: s for s in session.exec(select(Station).order_by(Station.code)).all()},
                                   plan_targets(session, plan))
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
    for target in _targets_for(targets, station):
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
            source = _window_agg(session, scope, agg, counted, tz_name, windows)
        if target.station_id is not None and station is None and SMS_ROW in rows:
            # The shared aggregate keeps loudspeaker rows per station, not SMS rows: ask for that station's.
            own = _station_sms(session, scope, counted, tz_name, target.station_id, windows)
            source = _Agg(loudspeaker=source.loudspeaker, bulletins=source.bulletins, sms=own.sms,
                          recipients=own.recipients, reach_count=own.reach_count).index()
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
    if by_station:
        report.by_station = _by_station(session, plan.code, period, as_of, tz_name, scope.rollup,
                                        (stations, targets))
    if with_log:
        report.log = query_log(session, tz_name=tz_name, between=(scope.start, scope.end), plan=plan.code,
                               station=station.code if station else None, limit=None, oldest_first=True)
    return report


def _window_agg(session: Session, scope: _Scope, agg: _Agg, counted: Period, tz_name: str,
                cache: dict) -> _Agg:
    """What a people target needs (who played, who received) over its own window.

    Counting the log, a window that ends with the report period and starts
    before it is the period's aggregate plus only the part before the period
    (the rollup counts any window as cheaply).
    """
    key = (counted.start, counted.end, None)
    if key not in cache:
        start, end = counted.bounds(tz_name)
        if start < scope.start and end == scope.end and not scope.rollup:
            earlier = _aggregate(session, replace(scope, start=start, end=scope.start),
                                 ("loudspeaker", "reach"))
            merged = _Agg(loudspeaker=earlier.loudspeaker + agg.loudspeaker, bulletins=agg.bulletins)
            for part in (earlier, agg):
                for topic_id, people in part.recipients.items():
                    merged.recipients[topic_id] |= people
            cache[key] = merged.index()
        else:
            cache[key] = _aggregate(session, replace(scope, start=start, end=end),
                                    ("loudspeaker", "reach"))
    return cache[key]


def _station_sms(session: Session, scope: _Scope, counted: Period, tz_name: str, station_id: int,
                 cache: dict) -> _Agg:
    key = (counted.start, counted.end, station_id)
    if key not in cache:
        start, end = counted.bounds(tz_name)
        cache[key] = _aggregate(session, replace(scope, start=start, end=end, station_id=station_id), ("sms", "reach"))
    return cache[key]




def _targets_for(targets: list, station: Station | None) -> list:
    """A station's targets: its own, and the plan's for whatever (topic, channel, metric) it has none of its own.

    Without a station: every target (the plan's count every station, a station's count that station).
    """
    if station is None:
        return list(targets)
    own = {(t.topic_id, t.channel, t.metric) for t in targets if t.station_id == station.id}
    return [t for t in targets if t.station_id == station.id
            or (t.station_id is None and (t.topic_id, t.channel, t.metric) not in own)]


STATUS_ORDER = {BEHIND: 0, ON_TRACK: 1, DONE: 2}


def pace_summary(targets: list[TargetResult]) -> tuple[int, float | None, str | None]:
    """(targets behind, the lowest achieved ÷ due by now in percent, the worst status) of a report's targets."""
    ratios = [100 * r.achieved / r.due for r in targets if r.due > 0]
    worst = min((r.status for r in targets), key=STATUS_ORDER.__getitem__, default=None)
    return sum(1 for r in targets if r.status == BEHIND), min(ratios, default=None), worst


def _by_station(session: Session, plan_code: str, period: str | None, as_of: datetime, tz_name: str,
                rollup: bool, known: tuple[dict[int, Station], list]) -> list[StationResult]:
    rows = []
    for station in known[0].values():
        one = build_report(session, plan_code, period, station.code, as_of, tz_name=tz_name, rollup=rollup,
                           _known=known)
        behind, pace, status = pace_summary(one.targets)
        one.total.key, one.total.title = station.code, station.name
        rows.append(StationResult(station.code, station.name, station.commune, one.total, len(one.targets),
                                  behind, pace, status))
    # Furthest behind first: the lowest pace, then the most targets behind; stations with nothing due last.
    rows.sort(key=lambda r: (r.pace is None, r.pace if r.pace is not None else 0.0, -r.behind, r.code))
    return rows
