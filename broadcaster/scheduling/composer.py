"""Choosing what a slot carries.

For one slot (station, channel, time, length) the composer takes approved
items valid at that time for the channel and published for that station (an
item published for no station in particular is for every station), and
orders them:

1. emergency items, then priority items;
2. then items whose topic is furthest behind the pace of its targets:
   ``behind = (expected by now - achieved) / target amount`` for the topic's
   worst target on this channel (a target set for another station does not
   count; one set for this station counts its airings only), where
   "expected by now" is linear over
   the target's current period (month, quarter, year or the whole plan);
3. ties: the item aired longest ago on this station first (never aired
   first), then the lower id.

It fills the slot length with the items' spoken durations (real ones from the
render cache where known), skipping what does not fit, and does not repeat a
non-emergency item within ``repeat_gap`` of its airing on the same station —
counting both what aired and what is already planned in bulletins not yet
aired (rendered ahead), so two slots rendered together never carry the same
items. A slot filtered to topics carries only items of those topics
(emergencies included: an announcement never takes over another topic's
slot). An SMS slot carries one item: the first in that order that its group
has not been texted yet. The same
database state and time always give the same choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, select

from ..deliveries import ACHIEVED_SMS_DELIVERED, ACHIEVED_SMS_SENT, BULLETIN_PLANNED, DeliveryStatus
from ..models import (
    PRIORITY_RANK,
    Bulletin,
    BulletinItem,
    Campaign,
    Channel,
    ContentItem,
    ContentStation,
    Delivery,
    ItemStatus,
    Metric,
    Plan,
    Priority,
    Station,
    Target,
    TargetPeriod,
    Topic,
)
from ..timeutil import as_utc, zone

LOUDSPEAKER_PROGRESS = {Metric.BROADCASTS, Metric.AIRTIME_MINUTES, Metric.PEOPLE_REACHED}
SMS_PROGRESS = {Metric.SMS_SENT, Metric.SMS_DELIVERED, Metric.PEOPLE_REACHED}


@dataclass(frozen=True)
class Choice:
    item_id: int
    title: str
    topic_code: str | None
    priority: str
    seconds: float
    behind: float
    reason: str


@dataclass(frozen=True)
class Slot:
    station: Station
    channel: str
    at: datetime  # aware
    length_s: float
    topic_codes: tuple[str, ...] = ()
    group_id: int | None = None  # SMS slots: the group texted


def period_bounds(period: str, moment: datetime, tz_name: str, plan: Plan) -> tuple[datetime, datetime]:
    """The target period containing ``moment`` (station time), as aware UTC bounds."""
    local = as_utc(moment).astimezone(zone(tz_name))
    if period == TargetPeriod.MONTH:
        start = date(local.year, local.month, 1)
        end = date(local.year + (local.month == 12), local.month % 12 + 1, 1)
    elif period == TargetPeriod.QUARTER:
        first_month = (local.month - 1) // 3 * 3 + 1
        start = date(local.year, first_month, 1)
        end = date(local.year + (first_month == 10), (first_month + 2) % 12 + 1, 1)
    elif period == TargetPeriod.YEAR:
        start, end = date(local.year, 1, 1), date(local.year + 1, 1, 1)
    else:
        start, end = plan.period_start, plan.period_end + timedelta(days=1)
    tz = zone(tz_name)
    return (as_utc(datetime.combine(start, time(), tz)), as_utc(datetime.combine(end, time(), tz)))


def _achieved(session: Session, target: Target, channel: str, start: datetime, end: datetime) -> float:
    conditions = [Delivery.topic_id == target.topic_id, Delivery.channel == channel,
                  Delivery.created_at >= start, Delivery.created_at < end]
    if target.station_id:
        conditions.append(Delivery.station_id == target.station_id)
    if channel == Channel.LOUDSPEAKER:
        conditions.append(Delivery.status == DeliveryStatus.PLAYED)
        if target.metric == Metric.AIRTIME_MINUTES:
            seconds = session.exec(select(func.coalesce(func.sum(Delivery.duration_s), 0.0)).where(*conditions)).one()
            return float(seconds) / 60
    else:
        statuses = ACHIEVED_SMS_DELIVERED if target.metric == Metric.SMS_DELIVERED else ACHIEVED_SMS_SENT
        conditions.append(Delivery.status.in_([str(status) for status in statuses]))
    return float(session.exec(select(func.count()).select_from(Delivery).where(*conditions)).one())


def topic_behind(session: Session, topic: Topic, plan: Plan, channel: str, at: datetime, tz_name: str,
                 station_id: int | None) -> float:
    """How far the topic's worst target is behind its pace, as a fraction of that target (0 to 1)."""
    metrics = LOUDSPEAKER_PROGRESS if channel == Channel.LOUDSPEAKER else SMS_PROGRESS
    behind = 0.0
    targets = session.exec(select(Target).where(Target.topic_id == topic.id,
                                                or_(Target.channel == channel, Target.channel == Channel.ANY))).all()
    for target in targets:
        if target.metric not in metrics or target.metric == Metric.PEOPLE_REACHED:
            continue
        if target.station_id and target.station_id != station_id:
            continue
        start, end = period_bounds(target.period, at, tz_name, plan)
        elapsed = min(1.0, max(0.0, (as_utc(at) - start) / (end - start)))
        expected = target.amount * elapsed
        achieved = _achieved(session, target, channel, start, end)
        behind = max(behind, max(0.0, expected - achieved) / target.amount)
    return behind


def _last_aired(session: Session, station_id: int) -> dict[int, datetime]:
    rows = session.exec(
        select(Delivery.item_id, func.max(Delivery.created_at))
        .where(Delivery.station_id == station_id, Delivery.channel == Channel.LOUDSPEAKER,
               Delivery.status == DeliveryStatus.PLAYED, Delivery.item_id.is_not(None))
        .group_by(Delivery.item_id)
    ).all()
    return {item_id: as_utc(moment) for item_id, moment in rows}


def _planned(session: Session, station_id: int, exclude_bulletin_id: int | None) -> dict[int, list[datetime]]:
    """Items in this station's bulletins that have not aired yet, with their slot times."""
    query = (select(BulletinItem.item_id, Bulletin.slot_time)
             .join(Bulletin, BulletinItem.bulletin_id == Bulletin.id)
             .where(Bulletin.station_id == station_id, Bulletin.channel == Channel.LOUDSPEAKER,
                    Bulletin.status.in_([str(s) for s in BULLETIN_PLANNED]), BulletinItem.dropped == "",
                    BulletinItem.item_id.is_not(None)))
    if exclude_bulletin_id is not None:
        query = query.where(Bulletin.id != exclude_bulletin_id)
    found: dict[int, list[datetime]] = {}
    for item_id, slot_time in session.exec(query).all():
        found.setdefault(item_id, []).append(as_utc(slot_time))
    return found


def item_fits(item: ContentItem, channel: str, at: datetime, wanted_topics: set[int] | None) -> str | None:
    """None if the item may go out on ``channel`` at ``at``; else why not (Vietnamese / English)."""
    at = as_utc(at)
    if item.status == ItemStatus.RETIRED:
        return "đã thôi dùng / retired"
    if item.status != ItemStatus.APPROVED:
        return "chưa duyệt / not approved"
    if channel not in (item.channels or []):
        return f"không dành cho kênh {channel} / not for the {channel} channel"
    if item.valid_from and as_utc(item.valid_from) > at:
        return "chưa đến ngày hiệu lực / not valid yet"
    if item.valid_until and as_utc(item.valid_until) < at:
        return "đã hết hiệu lực / expired"
    if wanted_topics is not None and item.topic_id not in wanted_topics:
        return "ngoài chủ đề của lịch / outside the slot's topics"
    return None


def wanted_topic_ids(session: Session, topic_codes: tuple[str, ...] | list[str]) -> set[int] | None:
    if not topic_codes:
        return None
    from ..plans import find_topic

    return {find_topic(session, code).id for code in topic_codes}


def published_elsewhere(session: Session, station_id: int) -> set[int]:
    """Items published for some stations, not this one (an item with no station is for every station)."""
    mine = select(ContentStation.item_id).where(ContentStation.station_id == station_id)
    return set(session.exec(select(ContentStation.item_id).where(ContentStation.item_id.not_in(mine))).all())


def not_for_station(session: Session, item_id: int, station_id: int) -> str | None:
    """Why an item does not air at this station (it was published for others only), or None."""
    stations = set(session.exec(select(ContentStation.station_id).where(ContentStation.item_id == item_id)).all())
    if stations and station_id not in stations:
        return "không dành cho đài này / not published for this station"
    return None


def candidates(session: Session, slot: Slot) -> list[ContentItem]:
    items = session.exec(select(ContentItem).where(ContentItem.status == ItemStatus.APPROVED)
                         .order_by(ContentItem.id)).all()
    wanted = wanted_topic_ids(session, slot.topic_codes)
    elsewhere = published_elsewhere(session, slot.station.id)
    return [item for item in items
            if item.id not in elsewhere and item_fits(item, slot.channel, slot.at, wanted) is None]


def compose(session: Session, slot: Slot, *, seconds_of: Callable[[ContentItem], float],
            repeat_gap: timedelta, overhead_s: float = 0.0, exclude_bulletin_id: int | None = None) -> list[Choice]:
    """``exclude_bulletin_id``: the bulletin being composed again (its own items are not a repeat)."""
    at = as_utc(slot.at)
    items = candidates(session, slot)
    loudspeaker = slot.channel == Channel.LOUDSPEAKER
    last_aired = _last_aired(session, slot.station.id) if loudspeaker else {}
    planned = _planned(session, slot.station.id, exclude_bulletin_id) if loudspeaker else {}
    topics = {t.id: t for t in session.exec(select(Topic)).all()}
    plans = {p.id: p for p in session.exec(select(Plan)).all()}
    behind_cache: dict[int, float] = {}

    def behind_of(item: ContentItem) -> float:
        if item.topic_id is None:
            return 0.0
        if item.topic_id not in behind_cache:
            topic = topics[item.topic_id]
            behind_cache[item.topic_id] = topic_behind(session, topic, plans[topic.plan_id], slot.channel, at,
                                                       slot.station.timezone, slot.station.id)
        return behind_cache[item.topic_id]

    never = datetime.min.replace(tzinfo=at.tzinfo)
    texted: set[int] = set()
    if slot.channel == Channel.SMS and slot.group_id is not None:  # a slot never texts a group the same item twice
        texted = set(session.exec(select(Campaign.item_id).where(Campaign.group_id == slot.group_id)).all())
    eligible = []
    for item in items:
        if item.id in texted:
            continue
        if item.priority != Priority.EMERGENCY:
            times = planned.get(item.id, []) + ([last_aired[item.id]] if item.id in last_aired else [])
            if any(abs(at - moment) < repeat_gap for moment in times):
                continue
        eligible.append(item)
    eligible.sort(key=lambda it: (PRIORITY_RANK[Priority(it.priority)], -round(behind_of(it), 6),
                                  last_aired.get(it.id, never), it.id))

    choices: list[Choice] = []
    budget = slot.length_s - overhead_s
    for item in eligible:
        seconds = seconds_of(item) if slot.channel == Channel.LOUDSPEAKER else 0.0
        if slot.channel == Channel.LOUDSPEAKER and seconds > budget:
            continue
        budget -= seconds
        topic = topics.get(item.topic_id)
        choices.append(Choice(item_id=item.id, title=item.title, topic_code=topic.code if topic else None,
                              priority=item.priority, seconds=seconds, behind=behind_of(item),
                              reason=_reason(item, behind_of(item), last_aired.get(item.id))))
        if slot.channel == Channel.SMS:
            break
    return choices


def _reason(item: ContentItem, behind: float, aired: datetime | None) -> str:
    if item.priority == Priority.EMERGENCY:
        return "khẩn cấp / emergency"
    if item.priority == Priority.PRIORITY:
        return "ưu tiên / priority"
    if behind > 0:
        return f"chủ đề chậm {behind:.0%} so với tiến độ / topic {behind:.0%} behind pace"
    if aired is None:
        return "chưa phát lần nào / never aired"
    return "đúng tiến độ, phát lâu nhất / on pace, aired longest ago"
