"""The delivery log: one row per thing that left (or should have left) the machine.

Meaning of the rows, which the reports rest on:

- **Loudspeaker**: each firing of a slot (or announcement) is a ``Bulletin``.
  Each item aired in it is a ``Delivery`` with ``channel="loudspeaker"``,
  its ``topic_id``/``plan_id``, ``station_id``, ``bulletin_id``,
  ``duration_s`` = the seconds that item was on air (all its readings),
  ``started_at``/``ended_at``, and ``late_s`` when the slot aired late.
  Status ``played`` counts; ``interrupted``, ``failed`` and ``missed`` are
  shown apart and never count as achieved. A slot that never aired is a
  ``Bulletin`` with status ``missed`` and a reason, plus a ``missed``
  delivery per item it would have carried when it was composed.
- **SMS**: one ``Delivery`` per recipient of a ``Campaign``, with
  ``channel="sms"``, written ``pending`` before any send (unique on campaign,
  item, contact), then ``sending`` → ``sent`` → ``delivered`` /
  ``undelivered`` / ``failed``. ``uncertain`` means the process died between
  handing the message over and hearing back: it is never re-sent on its own.
- **People reached**: SMS: distinct recipients with ``sent`` or ``delivered``;
  loudspeaker: the ``listeners`` of each distinct station that aired the topic
  in the period.

Every write here commits at once: the row must survive a crash that follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from .db import session_scope
from .models import Delivery, DeliveryStatus
from .timeutil import utcnow

ACHIEVED_LOUDSPEAKER = {DeliveryStatus.PLAYED}
ACHIEVED_SMS_SENT = {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED}
ACHIEVED_SMS_DELIVERED = {DeliveryStatus.DELIVERED}
NOT_ACHIEVED = {DeliveryStatus.FAILED, DeliveryStatus.MISSED, DeliveryStatus.INTERRUPTED,
                DeliveryStatus.UNCERTAIN, DeliveryStatus.SKIPPED}


def record(engine: Engine, **fields) -> Delivery:
    """Write one delivery row and commit it before the caller acts."""
    with session_scope(engine) as session:
        delivery = Delivery(**fields)
        session.add(delivery)
        session.flush()
        return delivery


def update(engine: Engine, delivery_ids: Iterable[int], **fields) -> None:
    """Update rows and commit at once (``updated_at`` is set here)."""
    ids = list(delivery_ids)
    if not ids:
        return
    fields.setdefault("updated_at", utcnow())
    with session_scope(engine) as session:
        for delivery in session.exec(select(Delivery).where(Delivery.id.in_(ids))).all():
            for key, value in fields.items():
                setattr(delivery, key, value)
            session.add(delivery)


def set_status(session: Session, delivery: Delivery, status: str, *, at: datetime | None = None,
               **fields) -> None:
    delivery.status = status
    delivery.updated_at = at or utcnow()
    for key, value in fields.items():
        setattr(delivery, key, value)
    session.add(delivery)
