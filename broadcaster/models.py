"""Database tables. Timestamps are aware UTC (see ``timeutil``).

Table models do not validate (a SQLModel property): every write from operator
input goes through the parsing in the noun modules (``plans``, ``content``,
``contacts``, ``stations``) first.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from .timeutil import DEFAULT_TIMEZONE, utcnow


class Channel(StrEnum):
    LOUDSPEAKER = "loudspeaker"
    SMS = "sms"
    ANY = "any"  # only for targets


class Metric(StrEnum):
    BROADCASTS = "broadcasts"
    AIRTIME_MINUTES = "airtime_minutes"
    SMS_SENT = "sms_sent"
    SMS_DELIVERED = "sms_delivered"
    PEOPLE_REACHED = "people_reached"


class TargetPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    PLAN = "plan"


class Priority(StrEnum):
    """Levels as in Circular 39/2020/TT-BTTTT."""

    NORMAL = "normal"  # thông thường
    PRIORITY = "priority"  # ưu tiên
    EMERGENCY = "emergency"  # khẩn cấp


PRIORITY_RANK = {Priority.EMERGENCY: 0, Priority.PRIORITY: 1, Priority.NORMAL: 2}


class ItemStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    RETIRED = "retired"


class Plan(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True)  # e.g. 911/KH-UBND
    title: str
    issuer: str = ""
    issued_on: date | None = None
    period_start: date
    period_end: date
    audiences: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = ""
    notes: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Topic(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("plan_id", "code", name="uq_topic_plan_code"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True, ondelete="CASCADE")
    code: str
    title: str
    description: str = ""
    position: int = 0


class Target(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True, ondelete="CASCADE")
    topic_id: int | None = Field(default=None, foreign_key="topic.id", ondelete="CASCADE")  # None: whole plan
    channel: str = Channel.ANY
    metric: str
    amount: float
    period: str = TargetPeriod.YEAR
    station_id: int | None = Field(default=None, foreign_key="station.id", ondelete="SET NULL")
    illustrative: bool = False  # the source gave no number; the example chose one
    note: str = ""


class Station(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True)
    name: str
    commune: str = ""
    timezone: str = DEFAULT_TIMEZONE
    player: str = "file"  # file | device | icecast
    player_options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    listeners: int | None = None  # estimated people in earshot, for "people reached"
    created_at: datetime = Field(default_factory=utcnow)


class ContentItem(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str
    topic_id: int | None = Field(default=None, foreign_key="topic.id", index=True, ondelete="SET NULL")
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    priority: str = Priority.NORMAL
    repeat: int = 1  # times to read it in one bulletin
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    status: str = ItemStatus.DRAFT
    sms_text: str | None = None  # a short text for SMS; the Vietnamese text otherwise
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Who signed it off: a console user's name, or "cli:<login>" for the CLI.
    approved_by: str | None = None
    approved_at: datetime | None = None
    announced_by: str | None = None  # an emergency announcement: who pressed the button
    announced_at: datetime | None = None


class ContentText(SQLModel, table=True):
    """What an item says in one language: text to synthesise, or a recording."""

    __table_args__ = (UniqueConstraint("item_id", "lang", name="uq_content_text_item_lang"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="contentitem.id", index=True, ondelete="CASCADE")
    lang: str = "vi"
    text: str | None = None
    audio_path: str | None = None  # copied into the data dir's recordings/


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(index=True, unique=True)  # E.164
    name: str = ""
    village: str = ""
    opted_out_at: datetime | None = None
    opt_out_reason: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class ContactGroup(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    description: str = ""


class ContactGroupMember(SQLModel, table=True):
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")
    group_id: int = Field(foreign_key="contactgroup.id", primary_key=True, ondelete="CASCADE")


class Schedule(SQLModel, table=True):
    """A broadcast slot: recurring (cron) or once (at), in station time."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = ""
    station_id: int = Field(foreign_key="station.id", index=True, ondelete="CASCADE")
    channel: str = Channel.LOUDSPEAKER
    cron: str | None = None
    at: datetime | None = None
    length_s: int = 900
    group_id: int | None = Field(default=None, foreign_key="contactgroup.id", ondelete="SET NULL")
    topic_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    paused: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Bulletin(SQLModel, table=True):
    """One firing of a slot (or an announcement): what was composed and what happened."""

    __table_args__ = (UniqueConstraint("schedule_id", "slot_time", name="uq_bulletin_slot"),)
    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int | None = Field(default=None, foreign_key="schedule.id", index=True, ondelete="SET NULL")
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True, ondelete="SET NULL")
    channel: str = Channel.LOUDSPEAKER
    kind: str = "slot"  # slot | announcement | manual
    slot_time: datetime  # when it was due
    status: str = "pending"  # see deliveries.BulletinStatus
    late_s: float | None = None
    reason: str = ""
    audio_path: str | None = None
    composed_at: datetime | None = None  # when its items were chosen (an item edited later is re-rendered)
    valid_until: datetime | None = None  # announcements: air no later than this (recovery after a crash)
    # airings tried: a failed player is retried inside the catch-up window
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    claimed_by: str | None = None  # "host:pid" of the process rendering or airing it
    player_pid: int | None = None  # the player process while playing (killed by recovery if orphaned)
    duration_s: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class BulletinItem(SQLModel, table=True):
    """What a bulletin carries, written when it is composed: the source of truth (the manifest is an export)."""

    __table_args__ = (UniqueConstraint("bulletin_id", "position", name="uq_bulletin_item_position"),)
    id: int | None = Field(default=None, primary_key=True)
    bulletin_id: int = Field(foreign_key="bulletin.id", index=True, ondelete="CASCADE")
    item_id: int | None = Field(default=None, foreign_key="contentitem.id", index=True, ondelete="SET NULL")
    position: int
    reason: str = ""  # why the composer chose it
    seconds: float | None = None  # estimated at compose time; the rendered airtime once rendered
    readings: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [[start_s, dur_s]]
    dropped: str = ""  # why it was taken out before airing (retired, expired, edited...)


class Campaign(SQLModel, table=True):
    """An SMS send of one item to one group."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="contentitem.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="contactgroup.id")
    schedule_id: int | None = Field(default=None, foreign_key="schedule.id", ondelete="SET NULL")
    bulletin_id: int | None = Field(default=None, foreign_key="bulletin.id", ondelete="SET NULL")
    body: str
    encoding: str = ""
    segments: int = 1
    not_before: datetime | None = None  # quiet hours / --at
    status: str = "open"  # see deliveries.CampaignStatus
    created_at: datetime = Field(default_factory=utcnow)


REACHED_WHERE = "channel = 'sms' AND status IN ('sent', 'delivered')"  # SMS that reached a person


class Delivery(SQLModel, table=True):
    """One thing that left (or should have left) the machine: an item aired, an SMS sent.

    Written *before* acting and updated after, so a crash leaves a trace.
    """

    __table_args__ = (
        UniqueConstraint("campaign_id", "item_id", "contact_id", name="uq_delivery_campaign_item_contact"),
        # Serves every report aggregate; with recipient, counting people reached never touches the table.
        Index("ix_delivery_report", "topic_id", "channel", "status", "created_at", "recipient"),
        Index("ix_delivery_plan_time", "plan_id", "created_at"),
        Index("ix_delivery_station_time", "station_id", "created_at"),
        # The SMS that reached someone, per person: the rollup's triggers find a person's first and last
        # reach here when the one that was first or last stops counting (``reports.rollup``).
        Index("ix_delivery_reached", "recipient", "topic_id", "created_at",
              sqlite_where=text(REACHED_WHERE), postgresql_where=text(REACHED_WHERE)),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel: str
    status: str = "pending"  # see deliveries.DeliveryStatus
    plan_id: int | None = Field(default=None, foreign_key="plan.id", ondelete="SET NULL")
    topic_id: int | None = Field(default=None, foreign_key="topic.id", ondelete="SET NULL")
    item_id: int | None = Field(default=None, foreign_key="contentitem.id", index=True, ondelete="SET NULL")
    station_id: int | None = Field(default=None, foreign_key="station.id", ondelete="SET NULL")
    bulletin_id: int | None = Field(default=None, foreign_key="bulletin.id", index=True, ondelete="SET NULL")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True, ondelete="SET NULL")
    contact_id: int | None = Field(default=None, foreign_key="contact.id", ondelete="SET NULL")
    recipient: str | None = None  # E.164, masked whenever shown
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    late_s: float | None = None
    segments: int | None = None
    attempts: int = 0
    backend: str | None = None
    provider_id: str | None = Field(default=None, index=True)  # Twilio message SID
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebUser(SQLModel, table=True):
    """An account of the web console (see ``broadcaster.users``)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    role: str  # users.Role
    password_hash: str  # argon2id, never the password
    created_at: datetime = Field(default_factory=utcnow)


class DaemonState(SQLModel, table=True):
    """One row per daemon run: who (host, pid, instance), which stations it was asked for, its heartbeat.

    Many daemons share a database; which one serves a station is its ``StationLease``.
    """

    id: int | None = Field(default=None, primary_key=True)
    pid: int | None = None
    host: str = ""
    instance: str | None = Field(default=None, index=True)  # leases.new_instance_id()
    stations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=True))  # [] = all
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    stopped_at: datetime | None = None


class StationLease(SQLModel, table=True):
    """Which daemon serves a station: taken by compare-and-swap on ``generation``, renewed by its heartbeat."""

    station_id: int = Field(foreign_key="station.id", primary_key=True, ondelete="CASCADE")
    generation: int = 1
    holder: str  # host:pid:instance
    instance: str = Field(index=True)
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    released_at: datetime | None = None  # a clean stop: free at once


class ContentStation(SQLModel, table=True):
    """An item published for some stations only (an item with no row is for every station)."""

    item_id: int = Field(foreign_key="contentitem.id", primary_key=True, ondelete="CASCADE")
    station_id: int = Field(foreign_key="station.id", primary_key=True, ondelete="CASCADE")


class DeliveryHour(SQLModel, table=True):
    """The delivery log counted by UTC hour (``reports.rollup``): kept by database triggers on ``delivery``.

    Key columns hold 0 where the log has NULL, so one unique index serves the upsert.
    An hour, not a day: a report's days are those of its time zone, chosen when it is run.
    """

    __table_args__ = (
        UniqueConstraint("topic_id", "channel", "hour", "station_id", "bulletin_id", "campaign_id", "status",
                         name="uq_deliveryhour_key"),
        Index("ix_deliveryhour_station", "station_id", "hour"),
        # covers a report's reading of a plan's topics (with n and seconds: no lookup of the row)
        Index("ix_deliveryhour_report", "topic_id", "channel", "hour", "status", "station_id", "bulletin_id",
              "campaign_id", "n", "seconds"),
    )
    id: int | None = Field(default=None, primary_key=True)
    hour: datetime  # created_at truncated to the hour (UTC)
    topic_id: int = 0
    station_id: int = 0
    channel: str
    bulletin_id: int = 0
    campaign_id: int = 0
    status: str
    n: int = 0  # deliveries
    seconds: float = 0.0  # their duration_s


class DeliveryReach(SQLModel, table=True):
    """Who an SMS reached (``sent``/``delivered``) per topic: how many such rows, the first and last written."""

    __table_args__ = (
        UniqueConstraint("topic_id", "recipient", name="uq_deliveryreach_key"),
        # covers counting the people a topic reached in a period
        Index("ix_deliveryreach_window", "topic_id", "first_at", "last_at", "recipient"),
    )
    id: int | None = Field(default=None, primary_key=True)
    topic_id: int = 0
    recipient: str
    n: int = 0
    first_at: datetime
    last_at: datetime


class DeliveryStationReach(SQLModel, table=True):
    """``DeliveryReach`` per station as well: who a station's SMS reached per topic (rows with a station only)."""

    __table_args__ = (
        UniqueConstraint("station_id", "topic_id", "recipient", name="uq_deliverystationreach_key"),
        # covers counting the people a station reached on a topic in a period
        Index("ix_deliverystationreach_window", "station_id", "topic_id", "first_at", "last_at", "recipient"),
    )
    id: int | None = Field(default=None, primary_key=True)
    station_id: int
    topic_id: int = 0
    recipient: str
    n: int = 0
    first_at: datetime
    last_at: datetime
