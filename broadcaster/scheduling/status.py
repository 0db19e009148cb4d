"""What ``broadcaster status`` shows, read without the ORM, so the command starts in a blink.

SQLite is read with the standard library's ``sqlite3`` in one deferred
transaction (one snapshot; no write lock, so a busy daemon is never held up);
PostgreSQL with SQLAlchemy Core. Either way the schema is checked against
:data:`broadcaster.db.HEAD_REVISION` first, as every command does. The SQL names
the columns of :mod:`broadcaster.models`; tests/scheduling compares the
answers with the ORM's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import cron, db
from ..errors import BroadcasterError
from ..fileutil import is_locked
from ..timeutil import as_utc, utcnow, zone

if TYPE_CHECKING:
    from ..app import App

Query = Callable[..., list[tuple]]
LOCK_NAME = "daemon.lock"
# What status lists among the bulletins (the values of deliveries.BulletinStatus; a test checks them).
PROBLEM_STATUSES = ("missed", "failed", "stale")


def lock_path(app: App) -> Path:
    return app.config.data_dir / LOCK_NAME


def daemon_running(app: App) -> bool:
    """A daemon holds this data folder's lock right now (the kernel releases it when the process dies)."""
    return is_locked(lock_path(app))


@dataclass
class StationHolder:
    """Who serves a station: ``state`` is alive, expired (its daemon died) or released (stopped cleanly)."""

    code: str
    holder: str | None
    state: str  # alive | expired | released | none (never served); broadcaster.leases.Lease.state
    expires_at: datetime | None


@dataclass
class DaemonStatus:
    alive: bool  # a daemon holds this data folder's lock, or some daemon heartbeats or holds a live lease
    responding: bool  # its heartbeat is fresh
    pid: int | None
    host: str
    started_at: datetime | None
    heartbeat_at: datetime | None
    stations: list[StationHolder] = field(default_factory=list)


@dataclass
class NextSlot:
    time: datetime  # aware UTC
    schedule_id: int
    station_code: str
    station_timezone: str
    channel: str


@dataclass
class Overview:
    daemon: DaemonStatus
    next_slots: list[NextSlot]
    last_deliveries: list[dict[str, Any]]  # id, channel, status, item, recipient (unmasked), at
    problems: list[dict[str, Any]]  # bulletin, status, slot_time, reason


@contextmanager
def reader(app: App) -> Iterator[Query]:
    """``query(sql, **params)`` -> rows, on a current schema, in one read-only snapshot."""
    url = app.config.database_url
    if url.startswith("sqlite"):
        yield from _sqlite_reader(url)
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            def query(sql: str, **params: Any) -> list[tuple]:
                return [tuple(row) for row in connection.execute(text(sql), params)]

            db.require_revision(_revision(query))
            yield query
    finally:
        engine.dispose()


def _sqlite_reader(url: str) -> Iterator[Query]:
    import sqlite3

    database = url.split("///", 1)[-1]
    if not database or database == ":memory:" or not Path(database).exists():
        db.require_revision(None)
    connection = sqlite3.connect(database, timeout=db.SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        connection.execute("BEGIN")  # deferred: a snapshot that takes no write lock

        def query(sql: str, **params: Any) -> list[tuple]:
            return connection.execute(sql, params).fetchall()

        db.require_revision(_revision(query))
        yield query
    finally:
        connection.close()


def _revision(query: Query) -> str | None:
    try:
        rows = query("SELECT version_num FROM alembic_version")
    except Exception as exc:  # no such table: not initialised
        if "alembic_version" not in str(exc):
            raise
        return None
    return rows[0][0] if rows else None


def _moment(value: Any) -> datetime | None:
    """A stored date-time as the ORM returns it: aware UTC (SQLite keeps naive UTC text)."""
    if value is None:
        return None
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def station_holders(query: Query, now: datetime) -> list[StationHolder]:
    """Every station and its lease (:mod:`broadcaster.leases`), by station code."""
    leases = {row[0]: row[1:] for row in query(
        "SELECT station_id, holder, expires_at, released_at FROM stationlease")}
    holders = []
    for station_id, code in query("SELECT id, code FROM station ORDER BY code"):
        if station_id not in leases:
            holders.append(StationHolder(code, None, "none", None))
            continue
        holder, expires_at, released_at = leases[station_id]
        expires_at = _moment(expires_at)
        state = "released" if released_at is not None else "alive" if now < expires_at else "expired"
        holders.append(StationHolder(code, holder, state, expires_at))
    return holders


def daemon_status(app: App, query: Query, now: datetime | None = None) -> DaemonStatus:
    """The daemons on this database: the freshest run's heartbeat (one row per run), each station's holder."""
    now = now or utcnow()
    stations = station_holders(query, now)
    runs = query("SELECT pid, host, started_at, heartbeat_at, stopped_at FROM daemonstate "
                 "WHERE heartbeat_at IS NOT NULL ORDER BY heartbeat_at DESC")
    running = daemon_running(app)
    live = [run for run in runs if run[4] is None]
    run = live[0] if live else (runs[0] if runs else None)
    if run is None:
        return DaemonStatus(running, False, None, "", None, None, stations)
    pid, host, started_at, heartbeat_at, stopped_at = run
    heartbeat_at = _moment(heartbeat_at)
    fresh = now - heartbeat_at < timedelta(seconds=3 * app.config.daemon.heartbeat_seconds + 2)
    responding = fresh and stopped_at is None
    serving = any(station.state == "alive" for station in stations)
    return DaemonStatus(running or serving or responding, responding, pid, host, _moment(started_at),
                        heartbeat_at, stations)


def read_status(app: App, now: datetime | None = None) -> DaemonStatus:
    with reader(app) as query:
        return daemon_status(app, query, now)


def read_overview(app: App, now: datetime | None = None, *, slots: int = 10, deliveries: int = 10,
                  problems: int = 5) -> Overview:
    """The daemon, the next slots of the schedules not paused, the newest deliveries and bulletin problems."""
    now = as_utc(now) if now is not None else utcnow()
    with reader(app) as query:
        state = daemon_status(app, query, now)
        upcoming = []
        for schedule_id, cron_text, at, channel, code, tz_name in query(
                "SELECT schedule.id, schedule.cron, schedule.at, schedule.channel, station.code, station.timezone "
                "FROM schedule JOIN station ON station.id = schedule.station_id "
                "WHERE NOT schedule.paused ORDER BY schedule.id"):
            try:
                moment = cron.next_slot(cron_text, _moment(at), zone(tz_name), now)
            except ValueError as exc:
                raise BroadcasterError(str(exc)) from exc
            if moment:
                upcoming.append(NextSlot(moment, schedule_id, code, tz_name, channel))
        upcoming.sort(key=lambda slot: slot.time)
        recent = [{"id": row[0], "channel": row[1], "status": row[2], "item": row[3], "recipient": row[4],
                   "at": _moment(row[5] or row[6])}
                  for row in query("SELECT id, channel, status, item_id, recipient, started_at, updated_at "
                                   "FROM delivery ORDER BY id DESC LIMIT :n", n=deliveries)]
        marks = ", ".join(f":s{n}" for n in range(len(PROBLEM_STATUSES)))
        troubled = [{"bulletin": row[0], "status": row[1], "slot_time": _moment(row[2]), "reason": row[3]}
                    for row in query(f"SELECT id, status, slot_time, reason FROM bulletin WHERE status IN ({marks}) "
                                     "ORDER BY id DESC LIMIT :n", n=problems,
                                     **{f"s{n}": s for n, s in enumerate(PROBLEM_STATUSES)})]
    return Overview(state, upcoming[:slots], recent, troubled)
