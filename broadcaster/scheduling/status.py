"""What ``broadcaster status`` shows, read without the ORM, so the command starts in a blink.

SQLite is read with the standard library's ``sqlite3`` in one deferred
transaction (one snapshot; no write lock, so a busy daemon is never held up);
PostgreSQL with SQLAlchemy Core. Either way the schema is checked against
:data:`broadcaster.db.HEAD_REVISION` first, as every command does. The SQL names
the columns of :mod:`broadcaster.models`; tests/scheduling compares the
answers with the ORM's.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
class DaemonStatus:
    alive: bool  # a daemon holds the lock (or, on another host, heartbeats)
    responding: bool  # its heartbeat is fresh
    pid: int | None
    host: str
    started_at: datetime | None
    heartbeat_at: datetime | None


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


def daemon_status(app: App, query: Query, now: datetime | None = None) -> DaemonStatus:
    now = now or utcnow()
    rows = query("SELECT pid, host, started_at, heartbeat_at, stopped_at FROM daemonstate WHERE id = 1")
    running = daemon_running(app)
    if not rows or rows[0][3] is None:
        return DaemonStatus(running, False, None, "", None, None)
    pid, host, started_at, heartbeat_at, stopped_at = rows[0]
    heartbeat_at, started_at = _moment(heartbeat_at), _moment(started_at)
    fresh = now - heartbeat_at < timedelta(seconds=3 * app.config.daemon.heartbeat_seconds + 2)
    remote = host != socket.gethostname() and stopped_at is None and fresh
    return DaemonStatus(running or remote, fresh and stopped_at is None, pid, host, started_at, heartbeat_at)


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
