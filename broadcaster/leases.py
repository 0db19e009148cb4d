"""Station leases: which daemon serves which station when many PCs share one database.

A station is served by at most one daemon at a time. The daemon holds a row in
``stationlease`` (holder, expiry) and renews it with its heartbeat; it is taken
with a compare-and-swap on the row's ``generation`` (an INSERT for a station
never served), which is safe on SQLite and PostgreSQL alike. A lease that
expired (its daemon died, or its PC lost the network) or was released (a clean
stop) can be taken by another daemon; one that is alive cannot, and the
caller is told who holds it.

The holder names the host, the pid and an instance id that is random per
daemon: two cloned PCs with the same hostname (and even the same pids) never
look like one holder. The instance id starts with this machine's boot id, so
"was that process on this machine?" (before killing an orphaned player) has
an honest answer.

Times are the daemons' wall clocks: the PCs that share a database keep their
clocks in sync (NTP), which the lease length tolerates by a wide margin.
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .models import StationLease
from .timeutil import as_utc

_TABLE = StationLease.__table__


@cache
def machine_id() -> str:
    """A short id of this machine's current boot (differs between cloned PCs; changes at reboot)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip().replace("-", "")[:8]
    except OSError:  # not Linux: the network card's address is the best stable marker
        return f"{uuid.getnode():012x}"[-8:]


ANNOUNCE_PREFIX = "announce-"


def new_instance_id(*, announce: bool = False) -> str:
    """A daemon's identity for its life (or an ``announce`` airing without a daemon): this machine's id
    and a random part."""
    return f"{machine_id()}.{ANNOUNCE_PREFIX if announce else ''}{secrets.token_hex(3)}"


def is_announce(instance: str) -> bool:
    """The lease is held by ``announce`` airing directly for a moment, not by a daemon."""
    return instance.split(".", 1)[-1].startswith(ANNOUNCE_PREFIX)


def holder_tag(instance: str) -> str:
    """``host:pid:instance``, as shown to people and stored in the lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{instance}"


def on_this_machine(tag: str | None) -> bool:
    """True if a ``host:pid:instance`` (or ``host:pid:machine``) tag was written on this machine, this boot."""
    if not tag or tag.count(":") < 2:
        return False
    return tag.rsplit(":", 1)[1].split(".", 1)[0] == machine_id()


@dataclass(frozen=True)
class Lease:
    station_id: int
    holder: str
    instance: str
    renewed_at: datetime
    expires_at: datetime
    released_at: datetime | None

    def alive(self, now: datetime) -> bool:
        return self.released_at is None and as_utc(now) < self.expires_at

    def state(self, now: datetime) -> str:
        """``alive``, ``released`` (its daemon stopped cleanly) or ``expired`` (its daemon died or lost the DB)."""
        if self.released_at is not None:
            return "released"
        return "alive" if self.alive(now) else "expired"


def _lease(row) -> Lease:  # noqa: ANN001
    return Lease(row.station_id, row.holder, row.instance, as_utc(row.renewed_at), as_utc(row.expires_at),
                 as_utc(row.released_at) if row.released_at else None)


@dataclass(frozen=True)
class Taken:
    """A lease this daemon now holds; ``previous`` is the one it replaced (None: the station was never served)."""

    station_id: int
    previous: Lease | None


def take(engine: Engine, station_id: int, *, instance: str, holder: str, now: datetime,
         seconds: float, predecessor: str | None = None) -> Taken | Lease:
    """Take the station's lease: :class:`Taken` if this daemon holds it now, else the live :class:`Lease` of
    whoever does.

    ``predecessor``: the holder known to be dead although its lease runs (the previous daemon of this data
    folder, whose lock this daemon now holds): its stations are taken at once.
    """
    now = as_utc(now)
    values = {"holder": holder, "instance": instance, "acquired_at": now, "renewed_at": now,
              "expires_at": now + timedelta(seconds=seconds), "released_at": None}
    try:
        with engine.begin() as conn:
            row = conn.execute(select(_TABLE).where(_TABLE.c.station_id == station_id)).first()
            if row is None:
                conn.execute(insert(_TABLE).values(station_id=station_id, generation=1, **values))
                return Taken(station_id, None)
            current = _lease(row)
            if current.instance != instance and current.alive(now) and current.holder != predecessor:
                return current
            won = conn.execute(update(_TABLE).where(_TABLE.c.station_id == station_id,
                                                    _TABLE.c.generation == row.generation)
                               .values(generation=row.generation + 1, **values)).rowcount
            if won:
                return Taken(station_id, current)
    except IntegrityError:  # another daemon inserted the first lease of this station at the same moment
        pass
    with engine.connect() as conn:
        return _lease(conn.execute(select(_TABLE).where(_TABLE.c.station_id == station_id)).one())


def renew(engine: Engine, instance: str, station_ids: Iterable[int], *, now: datetime, seconds: float) -> set[int]:
    """Push the expiry of this daemon's leases forward; returns the stations it still holds (a lease
    another daemon took after it expired is lost)."""
    wanted = list(station_ids)
    if not wanted:
        return set()
    now = as_utc(now)
    with engine.begin() as conn:
        conn.execute(update(_TABLE).where(_TABLE.c.instance == instance, _TABLE.c.station_id.in_(wanted),
                                          _TABLE.c.released_at.is_(None))
                     .values(renewed_at=now, expires_at=now + timedelta(seconds=seconds)))
        kept = conn.execute(select(_TABLE.c.station_id).where(_TABLE.c.instance == instance,
                                                              _TABLE.c.station_id.in_(wanted),
                                                              _TABLE.c.released_at.is_(None))).scalars()
        return set(kept)


def release(engine: Engine, instance: str, station_ids: Iterable[int], *, now: datetime) -> None:
    """A clean stop: the stations can be taken at once by another daemon."""
    wanted = list(station_ids)
    if not wanted:
        return
    with engine.begin() as conn:
        conn.execute(update(_TABLE).where(_TABLE.c.instance == instance, _TABLE.c.station_id.in_(wanted))
                     .values(released_at=as_utc(now), expires_at=as_utc(now)))


def all_leases(engine: Engine) -> dict[int, Lease]:
    """Every station's lease (stations never served have none)."""
    from .db import READ_ONLY_OPTION

    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
        return {row.station_id: _lease(row) for row in conn.execute(select(_TABLE))}
