"""The SQL a report runs, and the figures as filters over what it returns."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, case, func, or_
from sqlmodel import Session, select

from ..deliveries import ACHIEVED_LOUDSPEAKER, ACHIEVED_SMS_DELIVERED, ACHIEVED_SMS_SENT, DeliveryStatus
from ..models import (
    Bulletin,
    Campaign,
    Channel,
    Delivery,
    DeliveryHour,
    DeliveryReach,
    DeliveryStationReach,
    Metric,
)
from ..timeutil import as_utc
from .terms import ANNOUNCEMENT, CHANNEL_ROWS, KNOWN_STATUSES, LATE_AFTER_S, PEOPLE_SMS, SCHEDULED, SMS_ROW


@dataclass
class _Scope:
    topic_ids: list[int]
    start: datetime
    end: datetime
    station_id: int | None = None
    # Read the rollup (``rollup``) where it holds the answer; False: scan the log (the reference).
    rollup: bool = True

    def on_hours(self) -> bool:
        """Both bounds on whole UTC hours: the period is a sum of the rollup's hours."""
        return all(as_utc(t).minute == t.second == t.microsecond == 0 for t in (self.start, self.end))


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


# A bulletin played to its end whose length is known needs no clock times (``_bulletin``): not read, not parsed.
_SPAN_NEEDED = or_(Bulletin.status != DeliveryStatus.PLAYED.value, Bulletin.duration_s.is_(None))
_BULLETIN_COLUMNS = (Bulletin.id, Bulletin.kind, Bulletin.status, Bulletin.late_s, Bulletin.duration_s,
                     case((_SPAN_NEEDED, Bulletin.started_at)), case((_SPAN_NEEDED, Bulletin.ended_at)))


def _bulletins_by_id(session: Session, ids: set[int], chunk: int = 1000) -> dict[int, _Bulletin]:
    found = {}
    ordered = sorted(ids)
    for first in range(0, len(ordered), chunk):
        statement = select(*_BULLETIN_COLUMNS).where(Bulletin.id.in_(ordered[first:first + chunk]))
        found.update(_bulletin(r) for r in session.connection().execute(statement))
    return found


@dataclass
class _Bulletin:
    kind: str
    late: bool
    on_air_s: float


@dataclass
class _Agg:
    """The period's deliveries, grouped finely enough that every table row is a filter over them."""

    # (topic_id, status, station_id, bulletin_id, n, seconds); a key may come more than once (rollup hours)
    loudspeaker: list = field(default_factory=list)
    sms: list = field(default_factory=list)  # (topic_id, status, n)
    sends: dict = field(default_factory=lambda: defaultdict(set))  # topic_id -> {campaign_id} that sent
    recipients: dict = field(default_factory=lambda: defaultdict(set))  # topic_id -> {E.164} sent or delivered
    # Read from the rollup instead of ``recipients``: topics -> how many distinct people those topics reached.
    reach_count: Callable[[frozenset[int]], int] | None = None
    bulletins: dict = field(default_factory=dict)  # bulletin_id -> _Bulletin (those that carried plan items)
    aired: dict = field(default_factory=dict)  # bulletin_id -> _Bulletin (every loudspeaker bulletin aired)
    # topic_id -> {(channel-table row, station_id): _Cell}: what the tables filter
    cells: dict = field(default_factory=lambda: defaultdict(dict))

    def reached(self, topic_ids: Iterable[int]) -> int:
        """Distinct people the SMS of these topics reached."""
        if self.reach_count is not None:
            return self.reach_count(frozenset(topic_ids))
        return len(set().union(*(self.recipients.get(t, set()) for t in topic_ids)))

    def index(self) -> _Agg:
        self.cells = defaultdict(dict)
        played = ACHIEVED_LOUDSPEAKER
        for topic_id, status, station_id, bulletin_id, n, seconds in self.loudspeaker:
            bulletin = self.bulletins.get(bulletin_id)
            row = ANNOUNCEMENT if bulletin is not None and bulletin.kind == ANNOUNCEMENT else SCHEDULED
            cell = self.cells[topic_id].get((row, station_id))
            if cell is None:
                cell = self.cells[topic_id][(row, station_id)] = _Cell()
            cell.statuses[status] += n
            if status in played:
                cell.played += n
                cell.seconds += seconds or 0.0
                if bulletin_id is not None:
                    cell.bulletins.add(bulletin_id)
        return self


@dataclass
class _Cell:
    """One topic's loudspeaker deliveries in one channel-table row at one station."""

    statuses: Counter = field(default_factory=Counter)  # status -> deliveries
    played: int = 0  # deliveries played
    seconds: float = 0.0  # their content seconds
    bulletins: set = field(default_factory=set)  # the bulletins that played them


def _bulletin(row) -> tuple[int, _Bulletin]:
    bulletin_id, kind, status, late_s, duration_s, started_at, ended_at = row
    # A bulletin played to its end was on air for its length (a file-drop player returns at once, so
    # its clock times span nothing); an interrupted one for as long as its clock times say.
    if status == DeliveryStatus.PLAYED and duration_s is not None:
        on_air = duration_s
    else:
        span = (max(0.0, (as_utc(ended_at) - as_utc(started_at)).total_seconds())
                if started_at is not None and ended_at is not None else None)
        if status == DeliveryStatus.PLAYED:
            on_air = span or 0.0
        elif span is None:
            on_air = 0.0
        else:
            on_air = span if duration_s is None else min(span, duration_s)
    late = late_s is not None and late_s >= LATE_AFTER_S
    return bulletin_id, _Bulletin(kind or "slot", late, on_air)


ALL_PARTS = ("loudspeaker", "sms", "reach", "sends", "sessions", "aired")


def _rollup_statements(scope: _Scope) -> dict:
    """What ``_statements`` asks of the log, asked of the rollup (same rows, same order of columns)."""
    h = DeliveryHour

    def where(channel: str, statuses: Iterable[str]) -> list:
        terms = [h.topic_id.in_(scope.topic_ids), h.channel == channel, h.status.in_(sorted(statuses)),
                 h.hour >= scope.start, h.hour < scope.end, h.n > 0]
        if scope.station_id is not None:
            terms.append(h.station_id == scope.station_id)
        return terms

    # Not grouped: a bulletin's rows are its hours' (nearly always one), ``_Agg.index`` adds them up,
    # and a sort of every row would cost more than the reading.
    loudspeaker = (select(h.topic_id, h.status, func.nullif(h.station_id, 0), func.nullif(h.bulletin_id, 0),
                          h.n, h.seconds)
                   .where(*where(Channel.LOUDSPEAKER.value, KNOWN_STATUSES)))
    sms = (select(h.topic_id, h.status, func.sum(h.n)).where(*where(Channel.SMS.value, KNOWN_STATUSES))
           .group_by(h.topic_id, h.status))
    sends = (select(h.campaign_id, h.topic_id).where(*where(Channel.SMS.value, ACHIEVED_SMS_SENT), h.campaign_id != 0)
             .group_by(h.campaign_id, h.topic_id))
    statements = {"loudspeaker": loudspeaker, "sms": sms, "sends": sends}
    # One station's people: the station's reach rows.
    r = DeliveryReach if scope.station_id is None else DeliveryStationReach
    station = [] if scope.station_id is None else [r.station_id == scope.station_id]
    # Someone first reached before the period and last reached after it may or may not have been
    # reached in it ("straddles"): then the log answers (``_aggregate``). Without such a row, a
    # recipient was reached in the period exactly when their first reach is before its end and
    # their last one after its start.
    window = [*station, r.topic_id.in_(bindparam("topics", expanding=True)), r.first_at < scope.end,
              r.last_at >= scope.start]
    statements["reach"] = select(func.count(func.distinct(r.recipient))).where(*window)
    statements["reach_by_topic"] = (select(r.topic_id, func.count()).where(*window)
                                    .group_by(r.topic_id))
    statements["straddles"] = select(r.id).where(*station, r.topic_id.in_(scope.topic_ids),
                                                 r.first_at < scope.start, r.last_at >= scope.end).limit(1)
    return statements


def _chosen_statements(session: Session, scope: _Scope) -> tuple[dict, bool]:
    """The statements ``_aggregate`` runs, and whether people are counted from the rollup."""
    statements = _statements(scope)
    if not (scope.rollup and scope.on_hours()):
        return statements, False
    rolled = _rollup_statements(scope)
    if session.exec(rolled.pop("straddles")).first() is not None:
        rolled.pop("reach")
        rolled.pop("reach_by_topic")
    statements.update(rolled)
    return statements, "reach_by_topic" in statements


def _aggregate(session: Session, scope: _Scope, parts: Iterable[str] = ALL_PARTS) -> _Agg:
    agg = _Agg()
    if not scope.topic_ids:
        return agg
    statements, people_rolled_up = _chosen_statements(session, scope)
    ours = set(scope.topic_ids)
    parts = set(parts)
    run = session.connection().execute  # Core rows: the ORM's per-row work cost more than the SQL
    if "loudspeaker" in parts:
        agg.loudspeaker = [r for r in run(statements["loudspeaker"]).all() if r[0] in ours]
    if "sms" in parts:
        agg.sms = [tuple(r) for r in run(statements["sms"]).all() if r[0] in ours]
    if "reach" in parts and people_rolled_up:
        counts = {frozenset({topic_id}): n for topic_id, n in
                  run(statements["reach_by_topic"], {"topics": scope.topic_ids}).all()}

        def reach_count(topics: frozenset[int]) -> int:
            if topics not in counts:
                counts[topics] = 0 if len(topics) == 1 else (
                    run(statements["reach"], {"topics": sorted(topics)}).scalar() or 0)
            return counts[topics]
        agg.reach_count = reach_count
    elif "reach" in parts:
        for topic_id, recipient in run(statements["reach"]).all():
            if topic_id in ours:
                agg.recipients[topic_id].add(recipient)
    if "sends" in parts:
        for campaign_id, topic_id in run(statements["sends"]).all():
            if topic_id in ours:
                agg.sends[topic_id].add(campaign_id)
    if "aired" in parts:
        agg.aired = dict(_bulletin(r) for r in run(statements["aired"]).all())
    if "sessions" in parts:
        carried = {r[3] for r in agg.loudspeaker if r[3] is not None}
        agg.bulletins = {b: agg.aired[b] for b in carried if b in agg.aired}
        agg.bulletins.update(_bulletins_by_id(session, carried - agg.bulletins.keys()))
    return agg.index()


# --------------------------------------------------------------------------- measuring

@dataclass
class _Selection:
    """Which deliveries a figure counts: topics, channel-table rows, and optionally one station."""

    topic_ids: set[int]
    rows: frozenset = frozenset(CHANNEL_ROWS)
    station_id: int | None = None

    def loudspeaker(self, agg: _Agg) -> Iterable[tuple[int | None, _Cell]]:
        """(station_id, cell) of the selected loudspeaker deliveries."""
        for topic_id in self.topic_ids:
            for (row, station_id), cell in agg.cells.get(topic_id, {}).items():
                if row in self.rows and self.station_id in (None, station_id):
                    yield station_id, cell

    def sms(self, agg: _Agg) -> Iterable[tuple]:
        """SMS facts of the topics (``agg`` holds one station's only when a station is selected)."""
        if SMS_ROW not in self.rows:
            return
        for row in agg.sms:
            if row[0] in self.topic_ids:
                yield row


def _played(sel: _Selection, agg: _Agg) -> tuple[int, float, set[int], set[int]]:
    """Deliveries played, their content seconds, the bulletins and the stations that played them."""
    n, seconds, bulletins, stations = 0, 0.0, set(), set()
    for station_id, cell in sel.loudspeaker(agg):
        if cell.played:
            n += cell.played
            seconds += cell.seconds
            bulletins |= cell.bulletins
            if station_id is not None:
                stations.add(station_id)
    return n, seconds, bulletins, stations


def _sms_count(sel: _Selection, agg: _Agg, statuses: Iterable[str]) -> int:
    statuses = set(statuses)
    return sum(r[2] for r in sel.sms(agg) if r[1] in statuses)


def _people(sel: _Selection, agg: _Agg, listeners: dict[int, int]) -> int:
    stations = _played(sel, agg)[3]
    people = sum(listeners.get(s) or 0 for s in stations)
    if SMS_ROW in sel.rows:
        people += agg.reached(sel.topic_ids)
    return people


def _measure(sel: _Selection, agg: _Agg, metric: str, listeners: dict[int, int]) -> float:
    if metric == Metric.BROADCASTS:
        return _played(sel, agg)[0]
    if metric == Metric.AIRTIME_MINUTES:
        return _played(sel, agg)[1] / 60
    if metric == Metric.SMS_SENT:
        return _sms_count(sel, agg, ACHIEVED_SMS_SENT)
    if metric == Metric.SMS_DELIVERED:
        return _sms_count(sel, agg, ACHIEVED_SMS_DELIVERED)
    return _people(sel, agg, listeners)


