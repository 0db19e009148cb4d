"""SMS campaigns: one item sent to one contact group, one ``Delivery`` row per recipient.

:func:`create_campaign` expands the group (Vietnamese mobiles, not opted out)
and writes every recipient's row ``pending`` in **one transaction, before
anything is sent** (one ``INSERT … SELECT`` from the group's membership: a
100,000-recipient campaign takes seconds and no memory per row). Rows are unique on (campaign, item, contact), so a person
can never get two messages from one campaign; the dispatcher
(:mod:`broadcaster.sms.dispatcher`) only ever sends a row it moved from
``pending`` to ``sending`` itself.

Sending the same item to the same group again:

- while a campaign for it is **open** (rows still pending, sending or
  uncertain), a second ``broadcaster sms send`` *resumes* that campaign: same
  body, same rows, same schedule — no new messages for people already served;
- once it is **done** (every row sent / delivered / undelivered / failed /
  skipped), sending again is a deliberate second campaign and needs
  ``again=True`` (``--again``), so a repeated command cannot spam a village;
- a campaign started by the daemon for a bulletin (``bulletin_id``) is unique
  per (item, group, bulletin): re-running the job returns the existing campaign,
  open or done.

Only what the operator decided is sent: the item must be approved, not
retired, and carry the ``sms`` channel (a loudspeaker-only item is never
texted). ``not_before`` is ``--at`` only. Quiet hours (``sms.quiet_hours``)
are *not* frozen into the campaign: the dispatcher reads them from the current
config at the moment it sends, so changing the config releases (or holds) a
campaign at once; an emergency item is never held by them. The campaign
stores the final body (diacritics stripped when ``sms.strip_diacritics``):
editing the item later does not change what a resumed campaign sends.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from ..config import DEFAULTS, Config, load_config
from ..deliveries import (
    ACHIEVED_SMS_SENT,
    CampaignStatus,
    DeliveryStatus,
    add_sms_rows,
    campaign_counts,
    refresh_campaign_status,
)
from ..errors import AlreadyExistsError, ConfigError, InputError
from ..models import (
    Campaign,
    Channel,
    ContactGroup,
    ContentItem,
    Delivery,
    ItemStatus,
    Priority,
    Topic,
)
from ..timeutil import as_utc, utcnow
from .encoding import encode_sms
from .quiet_hours import QuietHours, parse_quiet_hours

__all__ = [
    "CampaignOpening",
    "campaign_counts",
    "create_campaign",
    "default_config",
    "find_campaign",
    "held_by_quiet_hours",
    "open_campaign",
    "open_campaigns",
    "quiet_hours_of",
    "refresh_campaign_status",
    "require_sendable",
]

OPEN = CampaignStatus.OPEN
DONE = CampaignStatus.DONE
#: Statuses for which the operator paid (the provider accepted the message).
PAID_STATUSES = tuple(ACHIEVED_SMS_SENT)


def default_config() -> Config:
    """For callers that pass no configuration: the one the usual lookup finds, else the built-in defaults.

    Pass ``config=app.config`` whenever you have it: a ``--config`` given to the
    caller is not visible from here.
    """
    try:
        return load_config()
    except ConfigError:
        return Config(path=Path("broadcaster.toml"), exists=False, values=copy.deepcopy(DEFAULTS))


def quiet_hours_of(config: Config) -> QuietHours | None:
    return parse_quiet_hours(config.sms.quiet_hours, config.broadcaster.timezone)


def held_by_quiet_hours(config: Config, item: ContentItem | None, moment: datetime) -> datetime | None:
    """When quiet hours (read now, from the current config) hold this item's SMS: until when; else None.

    An emergency item is never held.
    """
    hold = quiet_hold(config, item)
    return hold(moment) if hold is not None else None


def quiet_hold(config: Config, item: ContentItem | None) -> Callable[[datetime], datetime | None] | None:
    """:func:`held_by_quiet_hours` for many moments (the config's quiet hours parsed once); None when
    quiet hours never hold this item (none are set, or it is an emergency)."""
    quiet = None if item is not None and item.priority == Priority.EMERGENCY else quiet_hours_of(config)
    if quiet is None:
        return None

    def held_until(moment: datetime) -> datetime | None:
        return quiet.end_after(moment) if quiet.contains(moment) else None

    return held_until


def require_sendable(item: ContentItem) -> None:
    """Only an approved item with the SMS channel is ever texted."""
    if item.status == ItemStatus.RETIRED:
        raise InputError(f"tin số {item.id} đã thôi dùng, không gửi SMS / item {item.id} is retired: "
                         "not sent by SMS", field="item")
    if item.status != ItemStatus.APPROVED:
        raise InputError(f"tin số {item.id} chưa được duyệt (content approve {item.id}) / item {item.id} is "
                         "not approved: approve it first", field="item")
    if Channel.SMS not in (item.channels or []):
        raise InputError(f"tin số {item.id} không dành cho SMS (kênh: {', '.join(item.channels) or '-'}) / "
                         f"item {item.id} is not for SMS (channels: {', '.join(item.channels) or '-'})",
                         field="channels")


@dataclass
class CampaignOpening:
    campaign: Campaign
    created: bool  #: False: an existing campaign was returned (resumed)
    recipients: int  #: rows of the campaign


def _group(session: Session, group_name: str) -> ContactGroup:
    from ..contacts import get_group

    return get_group(session, group_name)


def find_campaign(session: Session, campaign_id: int) -> Campaign:
    from ..errors import NotFoundError

    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"không có chiến dịch SMS số {campaign_id} / no SMS campaign {campaign_id}")
    return campaign


def _same(column, value):  # noqa: ANN001, ANN202 - SQL "IS" for None, "=" otherwise
    return column.is_(None) if value is None else column == value


def _count_rows(session: Session, campaign_id: int) -> int:
    return session.exec(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)).one()


def open_campaign(session: Session, item_id: int, group_name: str, at: datetime | None = None,
                  schedule_id: int | None = None, bulletin_id: int | None = None, *,
                  config: Config | None = None, now: datetime | None = None,
                  again: bool = False) -> CampaignOpening:
    """Create the campaign and all its pending rows (or return the one already there). See the module doc.

    Runs in the caller's transaction: commit it before dispatching. Raises
    ``NotFoundError`` (item, group), ``InputError`` (no recipients, retired
    item, no SMS text), ``SmsTooLong`` (a ``ValueError``) or
    ``AlreadyExistsError`` (already sent, without ``again``).
    """
    from ..contacts import recipients_query
    from ..content import get_item, sms_body

    config = config or default_config()
    now = as_utc(now) if now is not None else utcnow()
    item = get_item(session, item_id)
    require_sendable(item)
    group = _group(session, group_name)

    existing = session.exec(
        select(Campaign).where(Campaign.item_id == item.id, Campaign.group_id == group.id,
                               _same(Campaign.schedule_id, schedule_id), _same(Campaign.bulletin_id, bulletin_id))
        .order_by(Campaign.id.desc())
    ).all()
    for campaign in existing:
        if campaign.status == OPEN or bulletin_id is not None:
            return CampaignOpening(campaign, False, _count_rows(session, campaign.id))
    if existing and not again:
        last = existing[0]
        raise AlreadyExistsError(
            f"tin số {item.id} đã gửi tới nhóm '{group.name}' (chiến dịch số {last.id}); "
            f"thêm --again để gửi lại / item {item.id} was already sent to group '{group.name}' "
            f"(campaign {last.id}): add --again to send it again"
        )

    enc = encode_sms(sms_body(session, item), strip=bool(config.sms.strip_diacritics))
    people = recipients_query(group.id)
    if session.exec(people.limit(1)).first() is None:
        raise InputError(f"nhóm '{group.name}' không có số di động nào nhận được tin / "
                         f"group '{group.name}' has no mobile number that can receive SMS")
    not_before = as_utc(at) if at is not None and as_utc(at) > now else None
    plan_id = topic_id = None
    if item.topic_id is not None:
        topic = session.get(Topic, item.topic_id)
        if topic is not None:
            plan_id, topic_id = topic.plan_id, topic.id

    campaign = Campaign(item_id=item.id, group_id=group.id, schedule_id=schedule_id, bulletin_id=bulletin_id,
                        body=enc.text, encoding=enc.encoding, segments=enc.segments, not_before=not_before,
                        status=OPEN, created_at=now)
    session.add(campaign)
    session.flush()
    written = add_sms_rows(session, campaign, people, plan_id=plan_id, topic_id=topic_id, now=now)
    return CampaignOpening(campaign, True, written)


def create_campaign(session: Session, item_id: int, group_name: str, at: datetime | None = None,
                    schedule_id: int | None = None, bulletin_id: int | None = None, *,
                    config: Config | None = None, now: datetime | None = None, again: bool = False) -> Campaign:
    """:func:`open_campaign`, returning only the campaign (new or resumed)."""
    return open_campaign(session, item_id, group_name, at, schedule_id, bulletin_id, config=config, now=now,
                         again=again).campaign


def open_campaigns(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).where(Campaign.status == OPEN).order_by(Campaign.id)).all())


def next_due_at(session: Session, config: Config, now: datetime, *, resolve_after: timedelta) -> datetime | None:
    """When the dispatcher next has something to do for the open campaigns; None when nothing waits.

    The earliest of: a pending row's moment to be sent (now, or its
    ``scheduled_for`` after a network wait, not before its campaign's
    ``not_before``, moved to the end of the quiet hours that would hold its
    item then) and an ``uncertain`` row's moment to be asked about
    (``resolve_after`` once it became uncertain). It may be in the past.
    """
    now = as_utc(now)
    moments: list[datetime] = []
    for campaign in open_campaigns(session):
        pending = (Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.PENDING)
        unscheduled = session.exec(select(Delivery.id).where(*pending, Delivery.scheduled_for.is_(None))
                                   .limit(1)).first()
        scheduled = session.exec(select(func.min(Delivery.scheduled_for)).where(*pending)).one()
        if unscheduled is not None or scheduled is not None:
            due = max(now if unscheduled is not None else as_utc(scheduled), as_utc(campaign.not_before) or now)
            item = session.get(ContentItem, campaign.item_id)
            moments.append(held_by_quiet_hours(config, item, due) or due)
        unsure = session.exec(select(func.min(Delivery.updated_at)).where(
            Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.UNCERTAIN)).one()
        if unsure is not None:
            moments.append(as_utc(unsure) + resolve_after)
    return min(moments, default=None)
