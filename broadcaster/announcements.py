"""Emergency announcements: aired at once, interrupting or preceding the bulletin."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import select

from .app import App
from .errors import InputError
from .models import Bulletin, Channel, ContentItem, ContentText, DeliveryStatus, ItemStatus, Priority, Station
from .timeutil import utcnow


@dataclass
class Announcement:
    item_id: int
    bulletin_ids: list[int] = field(default_factory=list)
    campaign_id: int | None = None


def create_announcement(app: App, *, text: str, station_codes: list[str], sms_group: str | None,
                        title: str | None = None, topic_code: str | None = None,
                        repeat: int | None = None) -> Announcement:
    """Write the item, one queued bulletin per station and the SMS campaign, in one transaction."""
    import unicodedata

    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        raise InputError("nội dung thông báo trống / announcement text is empty", field="text")
    channels = ([Channel.LOUDSPEAKER] if station_codes else []) + ([Channel.SMS] if sms_group else [])
    with app.session() as session:
        topic_id = None
        if topic_code:
            from .plans import find_topic

            topic_id = find_topic(session, topic_code).id
        stations = []
        for code in station_codes:
            station = session.exec(select(Station).where(Station.code == code)).first()
            if station is None:
                raise InputError(f"không có đài '{code}' / unknown station", field="station")
            stations.append(station)
        now = utcnow()
        item = ContentItem(title=title or f"Thông báo khẩn {now:%Y-%m-%d %H:%M}", topic_id=topic_id,
                           channels=channels, priority=Priority.EMERGENCY,
                           repeat=repeat or app.config.audio.emergency_repeat, status=ItemStatus.APPROVED,
                           valid_from=now)
        session.add(item)
        session.flush()
        session.add(ContentText(item_id=item.id, lang="vi", text=text))
        result = Announcement(item_id=item.id)
        for station in stations:
            bulletin = Bulletin(station_id=station.id, channel=Channel.LOUDSPEAKER, kind="announcement",
                                slot_time=now, status=DeliveryStatus.PENDING,
                                reason=json.dumps({"item_id": item.id}))
            session.add(bulletin)
            session.flush()
            result.bulletin_ids.append(bulletin.id)
        if sms_group:
            from .sms.campaigns import create_campaign

            result.campaign_id = create_campaign(session, item.id, sms_group, config=app.config).id
    return result
