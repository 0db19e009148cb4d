"""The delivery log as people read it: filtered, newest (or oldest) first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from ..errors import NotFoundError
from ..models import ContentItem, Delivery, Plan, Station, Topic
from ..plans import find_topic, get_plan
from ..stations import get_station
from ..timeutil import DEFAULT_TIMEZONE, as_utc, parse_date, parse_local_datetime, zone


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
    approved_by: str | None = None  # who approved the item, and when
    approved_at: datetime | None = None
    announced_by: str | None = None  # an emergency announcement: who sent it, and when
    announced_at: datetime | None = None

    def signed_off(self, tz_name: str, lang: str = "vi") -> str:
        """Who approved (or announced) the item and when, in station time; "" when nobody is recorded."""
        from ..timeutil import local

        if self.announced_at is not None:
            label, who, when = ("khẩn", "announced")[lang == "en"], self.announced_by, self.announced_at
        elif self.approved_at is not None:
            label, who, when = ("duyệt", "approved")[lang == "en"], self.approved_by, self.approved_at
        else:
            return ""
        return f"{who or '?'} ({label} {local(when, tz_name):%Y-%m-%d %H:%M})"


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
    query = (select(Delivery, Plan.code, Topic.code, ContentItem.title, Station.code, ContentItem.approved_by,
                    ContentItem.approved_at, ContentItem.announced_by, ContentItem.announced_at)
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
    for (delivery, plan_code, topic_code, item_title, station_code, approved_by, approved_at, announced_by,
         announced_at) in session.exec(query):
        rows.append(LogRow(
            id=delivery.id, created_at=delivery.created_at, updated_at=delivery.updated_at,
            channel=delivery.channel, status=delivery.status, plan=plan_code, topic=topic_code,
            item_id=delivery.item_id, item_title=item_title, station=station_code, recipient=delivery.recipient,
            bulletin_id=delivery.bulletin_id, campaign_id=delivery.campaign_id, started_at=delivery.started_at,
            duration_s=delivery.duration_s, late_s=delivery.late_s, attempts=delivery.attempts,
            error=" ".join(x for x in (delivery.error_code, delivery.error_message) if x) or None,
            approved_by=approved_by, approved_at=approved_at, announced_by=announced_by,
            announced_at=announced_at))
    return rows

