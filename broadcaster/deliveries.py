"""THE delivery log: its status vocabularies, the moves allowed between them, and every write.

No other module writes ``Delivery``, ``Bulletin`` (status and what it carries)
or ``Campaign`` status: they call the functions here, which check each move
against the tables below and raise :class:`IllegalMove` for anything else.

Meaning of the rows, which the reports rest on:

- **Loudspeaker**: each firing of a slot (or announcement) is a ``Bulletin``;
  what it carries is its ``BulletinItem`` rows, written when it is composed
  (position, why chosen, and — once rendered — each reading's place in the
  audio). The JSON manifest beside the audio file is an export, never read
  back. Each item aired is a ``Delivery`` with ``channel="loudspeaker"``, its
  ``topic_id``/``plan_id``, ``station_id``, ``bulletin_id``, ``duration_s`` =
  the seconds that item was on air (all its readings), ``started_at``/
  ``ended_at``, and ``late_s`` when the slot aired late. Rows are written
  ``playing`` and committed *before* the audio starts (:func:`open_airing`),
  then closed (:func:`close_airing`). Status ``played`` counts;
  ``interrupted``, ``failed`` and ``missed`` are shown apart and never count
  as achieved. A slot that never aired is a ``Bulletin`` ``missed`` with a
  reason, plus a ``missed`` delivery per item it would have carried (one row
  without an item when it carried nothing yet) — every missed slot is in the log.
- **SMS**: one ``Delivery`` per recipient of a ``Campaign``, with
  ``channel="sms"``, written ``pending`` before any send (unique on campaign,
  item, contact), then ``sending`` → ``sent`` → ``delivered`` /
  ``undelivered`` / ``failed``. ``uncertain`` means the process died between
  handing the message over and hearing back (or the answer was lost): it is
  never re-sent blindly; the provider is asked (:func:`resolve_uncertain`),
  and only a row its complete listing does not show goes back to ``pending``.
  A row that could not reach the provider at all is ``pending`` with
  ``error_code="network"`` and its next attempt in ``scheduled_for``.
  ``cancelled``: the operator stopped the campaign before that row was sent.
- **People reached**: SMS: distinct recipients with ``sent`` or ``delivered``;
  loudspeaker: the ``listeners`` of each distinct station that aired the topic
  in the period.

Functions that take an ``Engine`` commit before they return: the row must
survive a crash that follows. Functions that take a ``Session`` join the
caller's transaction (used when the write must be atomic with others).

The reports' rollup of this log (``reports.rollup``) is kept by database
triggers on ``delivery``: every write here, by row or set-based, updates it in
the same transaction, and nothing here calls it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, bindparam, case, cast, func, insert, literal, null, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from .db import durable, session_scope
from .errors import BroadcasterError
from .models import Bulletin, BulletinItem, Campaign, Channel, Contact, ContentItem, Delivery, Topic
from .timeutil import as_utc, utcnow

log = logging.getLogger("broadcaster.deliveries")


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # written before acting
    SENDING = "sending"  # handed to the provider, no answer yet
    UNCERTAIN = "uncertain"  # crashed or lost the answer while sending: the provider is asked before any re-send
    PLAYING = "playing"
    PLAYED = "played"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    MISSED = "missed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"  # e.g. recipient opted out after the campaign was written
    CANCELLED = "cancelled"  # the operator cancelled the campaign before this row was sent


class BulletinStatus(StrEnum):
    QUEUED = "pending"  # an announcement waiting for whoever airs it (daemon or CLI) to claim it
    RENDERING = "rendering"  # claimed: being composed into audio
    READY = "ready"  # audio made, not aired yet
    STALE = "stale"  # must be rendered again (render cut short, or an item dropped at air time)
    PLAYING = "playing"
    PLAYED = "played"
    SENT = "sent"  # an SMS slot: its campaign is written
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    MISSED = "missed"
    SKIPPED = "skipped"  # nothing to air, or the slot was paused/removed before it aired


class CampaignStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


D, B, C = DeliveryStatus, BulletinStatus, CampaignStatus

DELIVERY_MOVES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    D.PENDING: frozenset({D.SENDING, D.SKIPPED, D.CANCELLED, D.FAILED}),
    D.SENDING: frozenset({D.SENT, D.FAILED, D.UNCERTAIN, D.PENDING}),
    D.UNCERTAIN: frozenset({D.PENDING, D.SENT, D.DELIVERED, D.UNDELIVERED, D.FAILED}),
    D.SENT: frozenset({D.DELIVERED, D.UNDELIVERED, D.FAILED}),
    D.PLAYING: frozenset({D.PLAYED, D.INTERRUPTED, D.FAILED}),
}
BULLETIN_MOVES: dict[BulletinStatus, frozenset[BulletinStatus]] = {
    B.QUEUED: frozenset({B.RENDERING, B.MISSED, B.SKIPPED}),
    B.RENDERING: frozenset({B.READY, B.STALE, B.FAILED, B.MISSED, B.SKIPPED, B.SENT}),
    B.STALE: frozenset({B.RENDERING, B.MISSED, B.SKIPPED}),
    B.READY: frozenset({B.PLAYING, B.STALE, B.MISSED, B.SKIPPED}),
    B.PLAYING: frozenset({B.PLAYED, B.INTERRUPTED, B.FAILED}),
    # a player error is retried inside the catch-up window; a crash mid-air is aired again likewise
    B.FAILED: frozenset({B.READY, B.STALE, B.MISSED}),
    B.INTERRUPTED: frozenset({B.READY, B.STALE}),
    # a slot that had nothing to carry is composed again when it falls due (items may fit by then)
    B.SKIPPED: frozenset({B.RENDERING}),
}
CAMPAIGN_MOVES: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    C.OPEN: frozenset({C.DONE, C.CANCELLED}),
    C.DONE: frozenset({C.OPEN}),  # uncertain rows re-queued by the operator
}

#: Loudspeaker rows that count towards targets; SMS rows the provider accepted (paid for); delivered.
ACHIEVED_LOUDSPEAKER = frozenset({D.PLAYED})
ACHIEVED_SMS_SENT = frozenset({D.SENT, D.DELIVERED, D.UNDELIVERED})
ACHIEVED_SMS_DELIVERED = frozenset({D.DELIVERED})
NOT_ACHIEVED = frozenset({D.FAILED, D.MISSED, D.INTERRUPTED, D.UNCERTAIN, D.SKIPPED, D.CANCELLED})
#: SMS row states that keep a campaign open.
SMS_ACTIVE = (D.PENDING, D.SENDING, D.UNCERTAIN)
#: Every status an SMS row can take, in display order.
SMS_STATUSES = (D.PENDING, D.SENDING, D.UNCERTAIN, D.SENT, D.DELIVERED, D.UNDELIVERED, D.FAILED, D.SKIPPED,
                D.CANCELLED)
#: A bulletin in one of these has not aired yet: its items are planned.
BULLETIN_PLANNED = frozenset({B.QUEUED, B.RENDERING, B.READY, B.STALE})


class IllegalMove(BroadcasterError):
    """A write that the log's rules do not allow (a programming error, or a race lost)."""


def _check(table: dict, kind: str, current: str, new: str) -> None:
    if current == new:
        return
    allowed = table.get(current, frozenset())
    if new not in allowed:
        raise IllegalMove(f"{kind}: không được chuyển / illegal move {current} → {new}")


def process_tag() -> str:
    """Who claims a row: ``host:pid:machine`` (the machine part tells cloned PCs apart, see ``leases``)."""
    from .leases import machine_id

    return f"{socket.gethostname()}:{os.getpid()}:{machine_id()}"


# --------------------------------------------------------------------------
# Bulletins: compose, claim, render, air, miss
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedItem:
    """One item a bulletin carries, as the composer chose it."""

    item_id: int
    reason: str = ""
    seconds: float | None = None


def move_bulletin(session: Session, bulletin: Bulletin, to: BulletinStatus, **fields: Any) -> Bulletin:
    _check(BULLETIN_MOVES, f"bản tin/bulletin {bulletin.id}", bulletin.status, to)
    bulletin.status = to
    for key, value in fields.items():
        setattr(bulletin, key, value)
    session.add(bulletin)
    return bulletin


def find_slot_bulletin(session: Session, schedule_id: int, slot_time: datetime) -> Bulletin | None:
    return session.exec(select(Bulletin).where(Bulletin.schedule_id == schedule_id,
                                               Bulletin.slot_time == as_utc(slot_time))).first()


def create_bulletin(session: Session, *, station_id: int, slot_time: datetime, status: BulletinStatus,
                    planned: Sequence[PlannedItem], schedule_id: int | None = None,
                    channel: str = Channel.LOUDSPEAKER, kind: str = "slot", reason: str = "",
                    valid_until: datetime | None = None, claimed_by: str | None = None,
                    now: datetime | None = None) -> Bulletin:
    """A new bulletin and what it carries, in the caller's transaction (unique per schedule and slot time)."""
    now = as_utc(now) if now is not None else utcnow()
    # composed_at is compared with ContentItem.updated_at, which people's commands stamp with the wall clock
    bulletin = Bulletin(schedule_id=schedule_id, station_id=station_id, channel=channel, kind=kind,
                        slot_time=as_utc(slot_time), status=status, reason=reason, composed_at=utcnow(),
                        valid_until=as_utc(valid_until) if valid_until else None, claimed_by=claimed_by,
                        created_at=now)
    session.add(bulletin)
    session.flush()
    _write_items(session, bulletin, planned)
    return bulletin


def _write_items(session: Session, bulletin: Bulletin, planned: Sequence[PlannedItem]) -> None:
    for position, entry in enumerate(planned):
        session.add(BulletinItem(bulletin_id=bulletin.id, item_id=entry.item_id, position=position,
                                 reason=entry.reason, seconds=entry.seconds))
    session.flush()


def recompose(session: Session, bulletin: Bulletin, planned: Sequence[PlannedItem]) -> None:
    """Replace what a not-yet-aired bulletin carries (its render must be made again)."""
    if bulletin.status not in BULLETIN_PLANNED:
        raise IllegalMove(f"bản tin/bulletin {bulletin.id} đã phát, không soạn lại được / already aired")
    for row in bulletin_items(session, bulletin.id, include_dropped=True):
        session.delete(row)
    session.flush()
    _write_items(session, bulletin, planned)
    bulletin.composed_at = utcnow()
    bulletin.audio_path = None
    bulletin.duration_s = None
    session.add(bulletin)


def bulletin_items(session: Session, bulletin_id: int, *, include_dropped: bool = False) -> list[BulletinItem]:
    query = select(BulletinItem).where(BulletinItem.bulletin_id == bulletin_id).order_by(BulletinItem.position)
    rows = list(session.exec(query).all())
    return rows if include_dropped else [r for r in rows if not r.dropped and r.item_id is not None]


def composed_empty(session: Session, bulletin: Bulletin) -> bool:
    """A slot skipped because it had nothing to carry (not for a decision such as pause or withdrawal)."""
    return bulletin.status == B.SKIPPED and not bulletin_items(session, bulletin.id, include_dropped=True)


def drop_items(session: Session, bulletin: Bulletin, reasons: dict[int, str]) -> None:
    """Take items out of a bulletin that has not aired (the operator's decision changed); it needs a new render."""
    if bulletin.status not in BULLETIN_PLANNED:
        raise IllegalMove(f"bản tin/bulletin {bulletin.id} đã phát / already aired")
    for row in bulletin_items(session, bulletin.id):
        if row.item_id in reasons:
            row.dropped = reasons[row.item_id]
            session.add(row)
    if bulletin.status == B.READY:
        move_bulletin(session, bulletin, B.STALE)
    bulletin.audio_path = None
    session.add(bulletin)


def claim_bulletin(engine: Engine, bulletin_id: int, *, expect: Iterable[str],
                   to: BulletinStatus = B.RENDERING, claimed_by: str | None = None) -> bool:
    """Move a bulletin from one of ``expect`` to ``to`` with one conditional UPDATE; True if this caller won.

    Two processes (the CLI and the daemon, or two daemons) can never both claim it.
    """
    expect = [str(s) for s in expect]
    for status in expect:
        _check(BULLETIN_MOVES, "claim", status, to)
    table = Bulletin.__table__
    with engine.begin() as conn:
        won = conn.execute(update(table).where(table.c.id == bulletin_id, table.c.status.in_(expect))
                           .values(status=str(to), claimed_by=claimed_by or process_tag())).rowcount
    return bool(won)


def rendered(engine: Engine, bulletin_id: int, *, audio_path: str, duration_s: float,
             timeline: Sequence[dict], item_seconds: dict[int, float], read_at: datetime) -> None:
    """RENDERING → READY; each item's readings in the audio are kept for the airing's durations.

    ``read_at``: when the render read the items (wall clock): an item edited after it is rendered again.
    """
    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, bulletin_id)
        readings: dict[int, list[list[float]]] = {}
        for entry in timeline:
            if entry.get("item_id") is not None:
                readings.setdefault(int(entry["item_id"]), []).append(
                    [round(float(entry["start_s"]), 3), round(float(entry["duration_s"]), 3)])
        for row in bulletin_items(session, bulletin_id):
            row.readings = readings.get(row.item_id, [])
            row.seconds = item_seconds.get(row.item_id, row.seconds)
            session.add(row)
        move_bulletin(session, bulletin, B.READY, audio_path=audio_path, duration_s=duration_s,
                      composed_at=as_utc(read_at))


def render_failed(engine: Engine, bulletin_id: int, reason: str) -> None:
    """RENDERING → STALE: it will be tried again (and logged missed once its window has passed)."""
    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, bulletin_id)
        if bulletin is None or bulletin.status != B.RENDERING:
            return
        move_bulletin(session, bulletin, B.STALE, reason=reason[:1000])


def skip_bulletin(session: Session, bulletin: Bulletin, reason: str) -> None:
    move_bulletin(session, bulletin, B.SKIPPED, reason=reason)


def sms_slot_sent(session: Session, bulletin: Bulletin, *, now: datetime) -> None:
    move_bulletin(session, bulletin, B.SENT, started_at=as_utc(now))


def sms_slot_failed(session: Session, bulletin: Bulletin, reason: str) -> None:
    move_bulletin(session, bulletin, B.FAILED, reason=reason)


def _item_topics(session: Session, item_ids: Iterable[int]) -> dict[int, tuple[int | None, int | None]]:
    found: dict[int, tuple[int | None, int | None]] = {}
    for item_id in item_ids:
        item = session.get(ContentItem, item_id)
        topic = session.get(Topic, item.topic_id) if item and item.topic_id else None
        found[item_id] = (topic.id if topic else None, topic.plan_id if topic else None)
    return found


def mark_missed(session: Session, *, station_id: int, slot_time: datetime, reason: str,
                schedule_id: int | None = None, channel: str = Channel.LOUDSPEAKER,
                planned: Sequence[PlannedItem] = (), kind: str = "slot",
                bulletin: Bulletin | None = None) -> Bulletin | None:
    """A slot (or announcement) that will never air: the bulletin ``missed`` and a ``missed`` delivery per item.

    ``planned`` is used when the bulletin did not exist yet (what it would have
    carried). Returns None when the slot was already aired or logged.
    """
    if bulletin is None and schedule_id is not None:
        bulletin = find_slot_bulletin(session, schedule_id, slot_time)
    if bulletin is not None and bulletin.status not in BULLETIN_PLANNED | {B.FAILED}:
        return None
    if bulletin is None:
        try:
            with session.begin_nested():  # another daemon may write this slot at the same moment
                bulletin = create_bulletin(session, station_id=station_id, slot_time=slot_time, status=B.MISSED,
                                           planned=planned, schedule_id=schedule_id, channel=channel, kind=kind,
                                           reason=reason)
        except IntegrityError:
            return None
    else:
        move_bulletin(session, bulletin, B.MISSED, reason=reason)
    item_ids = [row.item_id for row in bulletin_items(session, bulletin.id)]
    topics = _item_topics(session, item_ids)
    for item_id in item_ids or [None]:
        topic_id, plan_id = topics.get(item_id, (None, None)) if item_id else (None, None)
        session.add(Delivery(channel=bulletin.channel, status=D.MISSED, item_id=item_id, topic_id=topic_id,
                             plan_id=plan_id, station_id=station_id, bulletin_id=bulletin.id,
                             scheduled_for=as_utc(slot_time), error_message=reason))
    session.flush()
    log.warning("Lịch %s lúc %s bị lỡ: %s / slot missed", schedule_id or bulletin.kind,
                as_utc(slot_time).isoformat(timespec="seconds"), reason)
    return bulletin


@dataclass
class Airing:
    """An airing opened in the log: the bulletin is ``playing``, one ``playing`` row per item."""

    bulletin_id: int
    station_id: int
    slot_time: datetime
    deliveries: dict[int, int] = field(default_factory=dict)  # item id -> delivery id
    readings: dict[int, list[list[float]]] = field(default_factory=dict)


def open_airing(engine: Engine, bulletin_id: int, *, backend: str, now: datetime | None = None) -> Airing | None:
    """READY → PLAYING and a ``playing`` delivery per item, committed *before* the audio starts.

    The move is one conditional UPDATE: of two processes opening the same bulletin only one wins; the
    other gets None and must not play.
    """
    now = as_utc(now) if now is not None else utcnow()
    table = Bulletin.__table__
    with session_scope(engine) as session:
        won = session.connection().execute(
            update(table).where(table.c.id == bulletin_id, table.c.status == B.READY.value)
            .values(status=B.PLAYING.value, attempts=func.coalesce(table.c.attempts, 0) + 1,
                    claimed_by=process_tag(), player_pid=None)).rowcount
        if not won:
            log.warning("Bản tin %s đã do tiến trình khác phát / bulletin %s is aired by another process",
                        bulletin_id, bulletin_id)
            return None
        bulletin = session.get(Bulletin, bulletin_id)
        session.refresh(bulletin)
        rows = bulletin_items(session, bulletin_id)
        topics = _item_topics(session, [r.item_id for r in rows])
        airing = Airing(bulletin_id, bulletin.station_id, as_utc(bulletin.slot_time))
        created = {}
        for row in rows:
            topic_id, plan_id = topics.get(row.item_id, (None, None))
            delivery = Delivery(channel=Channel.LOUDSPEAKER, status=D.PLAYING, item_id=row.item_id,
                                topic_id=topic_id, plan_id=plan_id, station_id=bulletin.station_id,
                                bulletin_id=bulletin_id, scheduled_for=bulletin.slot_time, backend=backend,
                                created_at=now, updated_at=now)
            session.add(delivery)
            created[row.item_id] = delivery
            airing.readings[row.item_id] = [list(r) for r in row.readings or []]
        session.flush()
        airing.deliveries = {item_id: d.id for item_id, d in created.items()}
    return airing


def player_started(engine: Engine, bulletin_id: int, pid: int) -> None:
    """Remember the player process, so recovery can stop it if this daemon dies."""
    table = Bulletin.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == bulletin_id, table.c.status == B.PLAYING.value)
                     .values(player_pid=pid))


def close_airing(engine: Engine, airing: Airing, *, started_at: datetime | None, ended_at: datetime,
                 on_air_s: float, interrupted: bool = False, error: str | None = None,
                 handed_over: bool = False) -> Bulletin:
    """PLAYING → PLAYED / INTERRUPTED / FAILED, with each item's real seconds on air.

    ``handed_over``: the file was given to another system (a file drop) that plays it later; every
    row is stamped with the moment of the handover, not with a computed future time.
    """
    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, airing.bulletin_id)
        if error is not None:
            move_bulletin(session, bulletin, B.FAILED, reason=error[:1000], started_at=started_at,
                          ended_at=ended_at, player_pid=None)
            for delivery_id in airing.deliveries.values():
                _close_delivery(session, delivery_id, D.FAILED, error_message=error[:500], ended_at=ended_at)
            return bulletin
        late_s = round(max(0.0, (as_utc(started_at) - airing.slot_time).total_seconds()), 3)
        move_bulletin(session, bulletin, B.INTERRUPTED if interrupted else B.PLAYED, started_at=started_at,
                      ended_at=ended_at, late_s=late_s, player_pid=None)
        for item_id, delivery_id in airing.deliveries.items():
            readings = airing.readings.get(item_id) or []
            if readings:
                first = min(r[0] for r in readings)
                end = max(r[0] + r[1] for r in readings)
                seconds = sum(max(0.0, min(r[1], on_air_s - r[0])) for r in readings)
            else:
                first = end = seconds = 0.0
            complete = not interrupted or end <= on_air_s + 0.05
            if handed_over:
                first = end = 0.0
            _close_delivery(session, delivery_id, D.PLAYED if complete else D.INTERRUPTED,
                            started_at=as_utc(started_at) + timedelta(seconds=first),
                            ended_at=as_utc(started_at) + timedelta(seconds=min(end, on_air_s)),
                            duration_s=round(seconds, 3), late_s=late_s,
                            error_message=None if complete else "bị ngắt / interrupted")
        return bulletin


def _close_delivery(session: Session, delivery_id: int, status: DeliveryStatus, **fields: Any) -> None:
    delivery = session.get(Delivery, delivery_id)
    _check(DELIVERY_MOVES, f"giao nhận/delivery {delivery_id}", delivery.status, status)
    delivery.status = status
    delivery.updated_at = utcnow()
    for key, value in fields.items():
        setattr(delivery, key, value)
    session.add(delivery)


def retry_airing(session: Session, bulletin: Bulletin, reason: str) -> None:
    """A failed (player error) or crash-interrupted bulletin goes back to READY to be aired again."""
    to = B.READY if bulletin.audio_path else B.STALE
    move_bulletin(session, bulletin, to, reason=reason)


# --------------------------------------------------------------------------
# Recovery after a crash
# --------------------------------------------------------------------------


@dataclass
class Recovered:
    interrupted_rows: int = 0
    bulletins: list[int] = field(default_factory=list)  # bulletins to air again or log missed
    players_stopped: list[int] = field(default_factory=list)


def _stop_orphan_player(pid: int | None, claimed_by: str | None) -> bool:
    """Kill a player process a dead daemon of this machine left behind (its own process group).

    A player started on another PC (or before this machine rebooted) is not ours to kill.
    """
    from .leases import on_this_machine

    if not pid or pid == os.getpid() or not on_this_machine(claimed_by):
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    except OSError:  # pragma: no cover - not a group leader
        try:
            os.kill(pid, signal.SIGKILL)
            return True
        except OSError:
            return False


def recover(engine: Engine, *, station_ids: Iterable[int] | None = None, now: datetime | None = None) -> Recovered:
    """What a dead process left half-done becomes an honest state, and is returned for re-airing.

    - a ``playing`` bulletin: its player process is killed (so two bulletins
      never play at once), its rows become ``interrupted``, and it goes back to
      READY to be aired again inside the catch-up window;
    - a ``rendering`` bulletin: STALE (render again);
    - queued announcements and READY/STALE/FAILED bulletins are returned as they are.
    The caller (the daemon) airs each inside its window or logs it missed.
    """
    now = as_utc(now) if now is not None else utcnow()
    station_ids = list(station_ids) if station_ids is not None else None
    result = Recovered()
    with session_scope(engine) as session:
        query = select(Bulletin).where(Bulletin.status.in_(
            [str(s) for s in (B.PLAYING, B.RENDERING, B.QUEUED, B.READY, B.STALE, B.FAILED)]))
        if station_ids is not None:
            query = query.where(Bulletin.station_id.in_(list(station_ids)))
        for bulletin in session.exec(query.order_by(Bulletin.slot_time, Bulletin.id)).all():
            if bulletin.status == B.PLAYING:
                if _stop_orphan_player(bulletin.player_pid, bulletin.claimed_by):
                    result.players_stopped.append(bulletin.player_pid)
                for delivery in session.exec(select(Delivery).where(Delivery.bulletin_id == bulletin.id,
                                                                    Delivery.status == D.PLAYING)).all():
                    _close_delivery(session, delivery.id, D.INTERRUPTED, ended_at=now,
                                    error_message="daemon dừng khi đang phát / daemon stopped while playing")
                    result.interrupted_rows += 1
                move_bulletin(session, bulletin, B.INTERRUPTED, player_pid=None,
                              reason="daemon dừng khi đang phát / daemon stopped while playing")
                retry_airing(session, bulletin, "phát lại sau khi daemon dừng / aired again after a stop")
            elif bulletin.status == B.RENDERING:
                move_bulletin(session, bulletin, B.STALE, reason="daemon dừng khi đang dựng / stopped while rendering")
            result.bulletins.append(bulletin.id)
        # rows left playing without a bulletin in that state (should not happen; never leave them open)
        orphans = select(Delivery).where(Delivery.status == D.PLAYING)
        if station_ids is not None:
            orphans = orphans.where(Delivery.station_id.in_(list(station_ids)))
        for delivery in session.exec(orphans).all():
            bulletin = session.get(Bulletin, delivery.bulletin_id) if delivery.bulletin_id else None
            if bulletin is None or bulletin.status != B.PLAYING:
                _close_delivery(session, delivery.id, D.INTERRUPTED, ended_at=now,
                                error_message="daemon dừng khi đang phát / daemon stopped while playing")
                result.interrupted_rows += 1
    return result


# --------------------------------------------------------------------------
# SMS rows and campaigns
# --------------------------------------------------------------------------


def add_sms_rows(session: Session, campaign: Campaign, recipients: Select, *, plan_id: int | None,
                 topic_id: int | None, now: datetime) -> int:
    """Every recipient's row ``pending``, in the caller's transaction (the one that creates the campaign).

    ``recipients`` selects (contact id, phone) — :func:`broadcaster.contacts.recipients_query`. One
    ``INSERT … SELECT``: the rows never pass through Python, so time and memory do not grow with them.
    """
    people = recipients.subquery()
    constants = {"channel": Channel.SMS.value, "status": D.PENDING.value, "plan_id": plan_id, "topic_id": topic_id,
                 "item_id": campaign.item_id, "bulletin_id": campaign.bulletin_id, "campaign_id": campaign.id,
                 "scheduled_for": campaign.not_before, "segments": campaign.segments, "attempts": 0,
                 "created_at": now, "updated_at": now}

    def constant(name: str) -> Any:
        column, value = _TABLE.c[name], constants[name]
        # typed, so that PostgreSQL knows a NULL's type inside a SELECT list
        return cast(null(), column.type) if value is None else literal(value, column.type)

    source = (select(*(constant(name) for name in constants), people.c[0], people.c[1])
              .order_by(people.c[0]))
    connection = session.connection()
    connection.execute(insert(_TABLE).from_select([*constants, "contact_id", "recipient"], source))
    # counted, not read from rowcount: psycopg reports -1 for an INSERT … SELECT
    return int(connection.execute(select(func.count()).select_from(_TABLE)
                                  .where(_TABLE.c.campaign_id == campaign.id)).scalar_one())


def campaign_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """status -> rows, every SMS status present (0 when none)."""
    counts = {str(status): 0 for status in SMS_STATUSES}
    rows = session.exec(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
                        .group_by(Delivery.status)).all()
    for status, count in rows:
        counts[str(status)] = count
    return counts


def refresh_campaign_status(session: Session, campaign: Campaign) -> str:
    """``open`` while any row is pending, sending or uncertain; ``done`` otherwise; ``cancelled`` stays."""
    if campaign.status == C.CANCELLED:
        return campaign.status
    active = session.exec(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign.id, Delivery.status.in_([str(s) for s in SMS_ACTIVE]))).one()
    status = C.OPEN if active else C.DONE
    if campaign.status != status:
        _check(CAMPAIGN_MOVES, f"chiến dịch/campaign {campaign.id}", campaign.status, status)
        campaign.status = status
        session.add(campaign)
    return str(status)


@dataclass
class Cancelled:
    campaign_id: int
    cancelled: int  # pending rows that will never be sent
    in_flight: int  # rows being sent at that moment (they finish)
    already: bool = False  # it was cancelled before


def cancel_campaign(engine: Engine, campaign_id: int, *, now: datetime | None = None) -> Cancelled:
    """Pending rows → ``cancelled`` (never sent), the campaign ``cancelled``. Rows already sent stay as they are."""
    from .sms.campaigns import find_campaign

    moment = as_utc(now) if now is not None else utcnow()
    table = Delivery.__table__
    with _WRITE_LOCK, session_scope(engine) as session:
        campaign = find_campaign(session, campaign_id)
        if campaign.status == C.CANCELLED:
            return Cancelled(campaign_id, 0, 0, already=True)
        if campaign.status == C.DONE:
            raise BroadcasterError(f"chiến dịch {campaign_id} đã gửi xong, không hủy được / campaign "
                                   f"{campaign_id} is finished: nothing left to cancel")
        result = session.connection().execute(
            update(table).where(table.c.campaign_id == campaign_id, table.c.status == D.PENDING.value)
            .values(status=D.CANCELLED.value, updated_at=moment, error_code="cancelled",
                    error_message="người vận hành đã hủy / cancelled by the operator"))
        in_flight = session.exec(select(func.count()).select_from(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.status == D.SENDING)).one()
        _check(CAMPAIGN_MOVES, f"chiến dịch/campaign {campaign_id}", campaign.status, C.CANCELLED)
        campaign.status = C.CANCELLED
        session.add(campaign)
        return Cancelled(campaign_id, result.rowcount, int(in_flight))


# SQLite lets one writer in at a time and a blocked writer backs off in sleeps of
# 1, 2, 5, 10 … ms (its busy handler). Worker threads of one process therefore
# take turns on a mutex first: the short transactions below never meet each
# other inside SQLite, only writers of other processes do.
_WRITE_LOCK = threading.Lock()

_TABLE = Delivery.__table__
_CONTACT = Contact.__table__
_SENDABLE = (D.SENDING, D.UNCERTAIN)
# Statements are built once with bind parameters: building a SQLAlchemy
# statement per batch cost more than the SQLite work itself.
def _claim_statement() -> Any:
    """The claim, one ``UPDATE … RETURNING``: each pending row of the batch becomes ``sending``, or
    ``skipped`` when its contact opted out or was deleted (``contact_id`` set NULL), with their reason.

    The rows are chosen by a subquery that on PostgreSQL locks them and passes over rows another
    dispatcher holds (``FOR UPDATE SKIP LOCKED``). SQLite has no row locks and needs none: the claim runs
    under its one write lock (``BEGIN IMMEDIATE``). Every lookup is by primary key, so the cost does not
    grow with the contact table or the campaign.
    """
    contact = _CONTACT.c
    has_contact = select(contact.id).where(contact.id == _TABLE.c.contact_id).exists()
    sendable = select(contact.id).where(contact.id == _TABLE.c.contact_id, contact.opted_out_at.is_(None)).exists()
    chosen = (select(_TABLE.c.id)
              .where(_TABLE.c.id.in_(bindparam("ids", expanding=True)), _TABLE.c.status == D.PENDING.value)
              .with_for_update(skip_locked=True))
    moment = bindparam("moment", type_=_TABLE.c.updated_at.type)
    return (
        update(_TABLE)
        .where(_TABLE.c.id.in_(chosen.scalar_subquery()))
        .values(status=case((sendable, D.SENDING.value), else_=D.SKIPPED.value),
                attempts=_TABLE.c.attempts + case((sendable, 1), else_=0),
                backend=case((sendable, bindparam("backend")), else_=_TABLE.c.backend),
                updated_at=moment,
                started_at=case((sendable & _TABLE.c.started_at.is_(None), moment), else_=_TABLE.c.started_at),
                error_code=case((sendable, _TABLE.c.error_code), (has_contact, "opted_out"), else_="no_contact"),
                error_message=case((sendable, _TABLE.c.error_message), (has_contact, _OPTED_OUT),
                                   else_=_CONTACT_REMOVED))
        .returning(_TABLE.c.id, _TABLE.c.status)
    )


_OPTED_OUT = "đã từ chối nhận tin / opted out"
_CONTACT_REMOVED = "đã xóa khỏi danh bạ / contact removed"
_CLAIM = _claim_statement()

# SQLite: the claim and the group commit as single statements run on the driver's connection, the rows
# passed as one JSON text. Each statement step lets the interpreter lock go, and each row of an
# ``executemany`` or of a ``RETURNING`` is a step: beside the sending threads, every such release is a
# hand-over of the lock and back. Two steps per claim and one per group commit, with no per-row binding
# by SQLAlchemy, cost the senders a fraction of it. The rows they write are the same as the statements
# above (tests run both).
_SQLITE_CLAIMABLE = (
    "SELECT json_group_array(json_array(d.id, "
    "EXISTS (SELECT 1 FROM contact c WHERE c.id = d.contact_id AND c.opted_out_at IS NULL), "
    "EXISTS (SELECT 1 FROM contact c WHERE c.id = d.contact_id))) "
    "FROM delivery d WHERE d.id IN (SELECT value FROM json_each(:ids)) AND d.status = 'pending'"
)
_SQLITE_CLAIM = (  # :rows is the list above: [id, sendable, has a contact]
    "UPDATE delivery SET status = iif(r.value ->> 1, 'sending', 'skipped'), "
    "attempts = delivery.attempts + (r.value ->> 1), backend = iif(r.value ->> 1, :backend, delivery.backend), "
    "updated_at = :moment, "
    "started_at = iif(r.value ->> 1 AND delivery.started_at IS NULL, :moment, delivery.started_at), "
    "error_code = iif(r.value ->> 1, delivery.error_code, iif(r.value ->> 2, 'opted_out', 'no_contact')), "
    "error_message = iif(r.value ->> 1, delivery.error_message, iif(r.value ->> 2, :opted_out, :removed)) "
    "FROM json_each(:rows) AS r WHERE delivery.id = r.value ->> 0 AND delivery.status = 'pending'"
)


def _on_the_driver(conn: Any) -> bool:
    """Claims and group commits on this connection run as the SQLite statements below."""
    return conn.dialect.name == "sqlite"


def _claim_sqlite(conn: Any, delivery_ids: Sequence[int], backend: str, moment: datetime) -> dict[int, str]:
    driver = conn.connection.driver_connection
    rows_json = driver.execute(_SQLITE_CLAIMABLE, {"ids": json.dumps(list(delivery_ids))}).fetchone()[0]
    rows = json.loads(rows_json)
    if rows:
        driver.execute(_SQLITE_CLAIM, {"rows": rows_json, "backend": backend, "moment": _sqlite_time(conn)(moment),
                                       "opted_out": _OPTED_OUT, "removed": _CONTACT_REMOVED})
    return {delivery_id: D.SENDING if sendable else D.SKIPPED for delivery_id, sendable, _ in rows}


def _sqlite_time(conn: Any) -> Any:
    """How SQLAlchemy writes a ``delivery`` time on this connection (the driver statements write the same)."""
    return _TABLE.c.updated_at.type._cached_bind_processor(conn.dialect)


_FINISH_FIELDS = frozenset(("status", "updated_at", "error_code", "error_message", "provider_id", "backend",
                            "ended_at", "scheduled_for"))
_FINISH_CACHE: dict[frozenset[str], Any] = {}
#: SQLite's group commit: a field a row's JSON object leaves out keeps its value; one given as null is cleared.
_SQLITE_FINISH = (
    "UPDATE delivery SET "
    + ", ".join(f"{name} = iif(json_type(r.value, '$.{name}') IS NULL, delivery.{name}, r.value ->> '$.{name}')"
                for name in sorted(_FINISH_FIELDS))
    + " FROM json_each(:rows) AS r WHERE delivery.id = r.value ->> '$.id'"
    + f" AND delivery.status IN ({', '.join(repr(s.value) for s in _SENDABLE)})"
)


def _finish_rows(conn: Any, rows: list[tuple[int, dict[str, Any]]]) -> int:
    """The group commit's rows, by ``executemany`` of one statement per set of fields given."""
    batches: dict[frozenset[str], list[dict[str, Any]]] = {}
    for delivery_id, values in rows:
        params = {f"v_{name}": value for name, value in values.items()}
        params["delivery_id"] = delivery_id
        batches.setdefault(frozenset(values), []).append(params)
    return sum(max(0, conn.execute(_finish_statement(fields), params).rowcount)
               for fields, params in batches.items())


def _finish_sqlite(conn: Any, rows: list[tuple[int, dict[str, Any]]]) -> int:
    """The group commit's rows in one statement (why: the note above :data:`_SQLITE_CLAIMABLE`)."""
    time = _sqlite_time(conn)
    payload = [{"id": delivery_id, **{name: time(value) if isinstance(value, datetime) else value
                                      for name, value in values.items()}}
               for delivery_id, values in rows]
    return max(0, conn.connection.driver_connection.execute(_SQLITE_FINISH, {"rows": json.dumps(payload)}).rowcount)


def _finish_statement(fields: frozenset[str]) -> Any:
    statement = _FINISH_CACHE.get(fields)
    if statement is None:
        statement = (update(_TABLE)
                     # or-ed equalities, not IN: an expanding IN cannot be run with executemany
                     .where(_TABLE.c.id == bindparam("delivery_id"),
                            or_(*(_TABLE.c.status == s.value for s in _SENDABLE)))
                     .values({name: bindparam(f"v_{name}", type_=_TABLE.c[name].type) for name in sorted(fields)}))
        _FINISH_CACHE[fields] = statement
    return statement


@dataclass
class SmsClaim:
    """What :func:`claim_sms` did with a batch of rows."""

    send: list[int] = field(default_factory=list)  #: now ``sending``, claimed by this caller, in the order asked
    skipped: list[int] = field(default_factory=list)  #: the contact opted out or was deleted: ``skipped``
    #: the rest of the batch was no longer pending (sent, cancelled) or another dispatcher holds it


def claim_sms(engine: Engine, delivery_ids: Sequence[int], backend: str, moment: datetime) -> SmsClaim:
    """A batch of rows pending → sending, or → skipped if the contact opted out (or was deleted) since the
    campaign was written; committed *durably* (``synchronous=FULL`` on SQLite) before any of them is sent.

    One statement (:func:`_claim_statement`): on PostgreSQL the rows are taken with ``FOR UPDATE SKIP
    LOCKED``, on SQLite under the database's write lock, so two dispatchers (threads, processes or PCs)
    never claim one row.
    """
    claim = SmsClaim()
    if not delivery_ids:
        return claim
    with _WRITE_LOCK, durable(engine).begin() as conn:
        if _on_the_driver(conn):
            moved = _claim_sqlite(conn, delivery_ids, backend, moment)
        else:
            moved = dict(conn.execute(_CLAIM, {"ids": list(delivery_ids), "backend": backend, "moment": moment}).all())
    for delivery_id in delivery_ids:
        status = moved.get(delivery_id)
        if status == D.SENDING:
            claim.send.append(delivery_id)
        elif status == D.SKIPPED:
            claim.skipped.append(delivery_id)
    return claim


@dataclass(frozen=True)
class SmsOutcome:
    """How one claimed row ended, for :func:`finish_sms_many`."""

    delivery_id: int
    status: DeliveryStatus
    moment: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    opt_out_phone: str | None = None


def finish_sms(engine: Engine, delivery_id: int, status: DeliveryStatus, moment: datetime, *,
               opt_out_phone: str | None = None, **fields: Any) -> bool:
    """sending (or uncertain) → ``status``; a row someone else moved meanwhile is left alone (returns False).

    ``opt_out_phone``: the provider said the person unsubscribed; their contact is opted out in the same
    transaction.
    """
    return finish_sms_many(engine, [SmsOutcome(delivery_id, status, moment, fields, opt_out_phone)]) == 1


def finish_sms_many(engine: Engine, outcomes: Sequence[SmsOutcome]) -> int:
    """:func:`finish_sms` for many rows in one transaction (a group commit). Returns the rows moved.

    These commits need not be durable against a power cut: a result lost with the last commits leaves
    its row ``sending``, which recovery turns ``uncertain`` and the provider is asked about — never re-sent
    blindly.
    """
    from sqlmodel import Session as _Session

    if not outcomes:
        return 0
    rows = []
    for outcome in outcomes:
        _check(DELIVERY_MOVES, f"sms {outcome.delivery_id}", D.SENDING, outcome.status)
        values = {"status": str(outcome.status), "updated_at": outcome.moment, **outcome.fields}
        unknown = values.keys() - _FINISH_FIELDS
        if unknown:  # pragma: no cover - programming error
            raise TypeError(f"unexpected delivery fields {sorted(unknown)}")
        rows.append((outcome.delivery_id, values))
    with _WRITE_LOCK, engine.begin() as conn:
        moved = (_finish_sqlite if _on_the_driver(conn) else _finish_rows)(conn, rows)
        opt_outs = [o for o in outcomes if o.opt_out_phone]
        if opt_outs:
            from .contacts import opt_out

            with _Session(bind=conn) as session:  # joins this transaction
                for outcome in opt_outs:
                    opt_out(session, outcome.opt_out_phone,
                            f"Twilio {outcome.fields.get('error_code')}: người nhận đã hủy đăng ký / "
                            "recipient unsubscribed (STOP)", when=outcome.moment)
    if moved < len(outcomes):
        log.warning("%d SMS row(s) were changed by someone else while being sent; left as they are",
                    len(outcomes) - moved)
    return moved


_RELEASE = (
    update(_TABLE)
    .where(_TABLE.c.id.in_(bindparam("ids", expanding=True)), _TABLE.c.status == D.SENDING.value)
    .values(status=D.PENDING.value, attempts=_TABLE.c.attempts - 1,
            updated_at=bindparam("moment", type_=_TABLE.c.updated_at.type))
)


def release_sms(engine: Engine, delivery_ids: Sequence[int], moment: datetime) -> int:
    """Rows this caller claimed and never handed to the provider: sending → pending, the claim's attempt
    given back (the dispatch stopped: quiet hours began, the daemon stopped, the network is down)."""
    _check(DELIVERY_MOVES, "sms", D.SENDING, D.PENDING)
    if not delivery_ids:
        return 0
    with _WRITE_LOCK, engine.begin() as conn:
        return int(conn.execute(_RELEASE, {"ids": list(delivery_ids), "moment": moment}).rowcount)


#: PostgreSQL advisory lock: every dispatcher sending holds it shared; recovery needs it alone.
SMS_DISPATCH_LOCK_KEY = 0x534D5344  # "SMSD"


@contextmanager
def sms_dispatching(engine: Engine) -> Iterator[None]:
    """Mark this process as sending SMS from the database, for as long as the block runs.

    On PostgreSQL, several PCs may dispatch from one database, each under its own data folder's
    lock: each holds :data:`SMS_DISPATCH_LOCK_KEY` shared (session level: the server drops it when
    the process dies), so that :func:`recover_sms_sending` can tell rows a live dispatcher is sending
    from rows a dead one left. SQLite needs nothing: its dispatchers share one data folder's lock.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock_shared(:key)"), {"key": SMS_DISPATCH_LOCK_KEY})
        conn.commit()  # the lock is the session's: no transaction is left open while sending
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock_shared(:key)"), {"key": SMS_DISPATCH_LOCK_KEY})
            conn.commit()


def recover_sms_sending(engine: Engine, *, now: datetime) -> int:
    """Rows left ``sending`` by a dead process → ``uncertain`` (call only while holding the dispatch lock).

    On PostgreSQL only when no dispatcher anywhere is sending (:func:`sms_dispatching`): otherwise its
    rows would be taken for a dead one's; the rows wait for a moment when none is (returns 0).
    """
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            alone = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SMS_DISPATCH_LOCK_KEY}).scalar()
            conn.commit()
            if not alone:
                log.info("another dispatcher is sending from this database: rows left 'sending' are "
                         "recovered when none is")
                return 0
            try:
                return _recover_sms_sending(engine)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SMS_DISPATCH_LOCK_KEY})
                conn.commit()
    return _recover_sms_sending(engine)


def _recover_sms_sending(engine: Engine) -> int:
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.channel == Channel.SMS,
                                                   Delivery.status == D.SENDING)).all()
        for row in rows:
            _close_delivery(session, row.id, D.UNCERTAIN, error_code="interrupted",
                            error_message="tiến trình dừng khi đang gửi (có thể đã gửi) / the process stopped "
                                          "while sending: the message may have left")
        for campaign_id in {row.campaign_id for row in rows if row.campaign_id is not None}:
            campaign = session.get(Campaign, campaign_id)
            if campaign is not None:
                refresh_campaign_status(session, campaign)
    if rows:
        log.warning("%d SMS left 'sending' by a stopped process are now 'uncertain' (Twilio is asked before any re-send)", len(rows))
    return len(rows)


def requeue_uncertain(engine: Engine, campaign_id: int | None = None, *, now: datetime,
                      ids: Iterable[int] | None = None) -> int:
    """``uncertain`` → ``pending`` (the operator chose to re-send them, or the provider's complete listing
    does not have them: ``ids``). Returns the rows changed."""
    with _WRITE_LOCK, session_scope(engine) as session:
        query = select(Delivery).where(Delivery.channel == Channel.SMS, Delivery.status == D.UNCERTAIN)
        if campaign_id is not None:
            query = query.where(Delivery.campaign_id == campaign_id)
        if ids is not None:
            query = query.where(Delivery.id.in_(list(ids)))
        rows = session.exec(query).all()
        for row in rows:
            campaign = session.get(Campaign, row.campaign_id) if row.campaign_id else None
            if campaign is not None and campaign.status == C.CANCELLED:
                continue
            _close_delivery(session, row.id, D.PENDING, scheduled_for=None)
            if campaign is not None:
                refresh_campaign_status(session, campaign)
    return len(rows)


def uncertain_rows(session: Session, campaign_id: int) -> list[Delivery]:
    return list(session.exec(select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                    Delivery.status == D.UNCERTAIN).order_by(Delivery.id)).all())


def provider_ids_in_use(session: Session, provider_ids: Iterable[str]) -> set[str]:
    """Which of these provider ids some delivery row already holds."""
    wanted = list(provider_ids)
    if not wanted:
        return set()
    return set(session.exec(select(Delivery.provider_id).where(Delivery.provider_id.in_(wanted))).all())


def resolve_uncertain(engine: Engine, delivery_id: int, provider_id: str, status: DeliveryStatus, *,
                      now: datetime) -> bool:
    """An ``uncertain`` row the provider shows it accepted: ``status`` (sent or further) with its id."""
    with _WRITE_LOCK, session_scope(engine) as session:
        row = session.get(Delivery, delivery_id)
        if row is None or row.status != D.UNCERTAIN:
            return False
        _close_delivery(session, delivery_id, status, provider_id=provider_id, error_code=None,
                        error_message=None, ended_at=row.ended_at or as_utc(now))
        campaign = session.get(Campaign, row.campaign_id) if row.campaign_id else None
        if campaign is not None:
            refresh_campaign_status(session, campaign)
    return True


def resolve_by_reference(session: Session, delivery_id: int, provider_id: str, new: DeliveryStatus, *,
                         error_code: str | None = None) -> bool:
    """A signed status callback whose URL carries our reference for a row that never heard its SID
    (``sending``/``uncertain`` after a timeout or a crash): the row takes the SID and the status."""
    row = session.get(Delivery, delivery_id)
    if row is None or row.channel != Channel.SMS or row.provider_id not in (None, provider_id):
        return False
    if row.status in (D.SENDING, D.UNCERTAIN):
        _close_delivery(session, row.id, D.SENT, provider_id=provider_id, error_code=None, error_message=None)
    elif row.provider_id is None:
        return False
    apply_provider_status(session, row, new, error_code=error_code)
    campaign = session.get(Campaign, row.campaign_id) if row.campaign_id else None
    if campaign is not None:
        refresh_campaign_status(session, campaign)
    return True


def wait_for_network(engine: Engine, campaign_id: int, until: datetime, *, now: datetime) -> int:
    """Every pending row of the campaign waits until ``until`` (the provider could not be reached)."""
    table = _TABLE
    with _WRITE_LOCK, engine.begin() as conn:
        return conn.execute(update(table).where(
            table.c.campaign_id == campaign_id, table.c.status == D.PENDING.value,
            (table.c.scheduled_for.is_(None)) | (table.c.scheduled_for < until))
            .values(scheduled_for=until, updated_at=now)).rowcount


def expire_unsent(engine: Engine, campaign_id: int, created_before: datetime, *, now: datetime) -> int:
    """Pending rows written before ``created_before`` (never accepted, ``sms.max_age_hours``) → ``failed``."""
    with _WRITE_LOCK, session_scope(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                   Delivery.status == D.PENDING,
                                                   Delivery.created_at < as_utc(created_before))).all()
        for row in rows:
            _close_delivery(session, row.id, D.FAILED, error_code="expired", ended_at=as_utc(now),
                            error_message="quá hạn, chưa gửi được (mất mạng) / too old: never reached the "
                                          "provider")
        campaign = session.get(Campaign, campaign_id)
        if rows and campaign is not None:
            refresh_campaign_status(session, campaign)
    return len(rows)


def waiting_for_network(session: Session, campaign_id: int) -> tuple[int, datetime | None]:
    """Pending rows that could not reach the provider, and the next attempt."""
    count, until = session.exec(select(func.count(), func.max(Delivery.scheduled_for)).where(
        Delivery.campaign_id == campaign_id, Delivery.status == D.PENDING, Delivery.error_code == "network")).one()
    return int(count or 0), as_utc(until) if until else None


#: Rows only move to a higher rank; the final states share the top rank.
STATUS_RANK = {D.PENDING: 0, D.SENDING: 1, D.UNCERTAIN: 1, D.SENT: 2, D.DELIVERED: 3, D.UNDELIVERED: 3,
               D.FAILED: 3, D.SKIPPED: 3, D.CANCELLED: 3}


def provider_status_advances(current: str, new: DeliveryStatus) -> bool:
    """True if a provider's report ``new`` moves a row forward (never backwards, never between final states)."""
    return STATUS_RANK.get(new, 0) > STATUS_RANK.get(DeliveryStatus(current), 0)


def apply_provider_status(session: Session, row: Delivery, new: DeliveryStatus, *,
                          error_code: str | None = None) -> bool:
    """A status the provider reported (callback or lookup); never backwards. True if the row changed."""
    if not provider_status_advances(row.status, new):
        return False
    fields: dict[str, Any] = {}
    if error_code and new in (D.UNDELIVERED, D.FAILED):
        fields["error_code"] = error_code
    _close_delivery(session, row.id, new, **fields)
    return True
