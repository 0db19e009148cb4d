"""How the idle daemon sleeps, and what wakes it.

The control loop sleeps until the next moment something is due (a slot
entering the render-ahead window, a retry, the heartbeat, retention) and is
woken at once by a *poke*: a datagram on the Unix socket ``daemon.wake`` in
the data folder, which the CLI sends after it commits a change (an
announcement, a schedule, content, a campaign). Nobody polls the database for
changes on SQLite.

A poke is best-effort and carries no data: it only means "look again now".
No daemon, a stale socket a dead daemon left, a full receive queue: the poke
is dropped without an error (the daemon then already has a poke waiting, or
there is no daemon to tell). Only the daemon that holds the data folder's lock
binds the socket, replacing a stale one.

One other datagram, :data:`GET_READY`, is sent by ``announce`` as it starts,
before it has written anything: an emergency is on its way, and the daemon
starts its audio child meanwhile instead of after the announcement is written.

On PostgreSQL the poke is also a ``NOTIFY`` on :data:`CHANNEL`, which a daemon
on another PC hears through ``LISTEN`` (:class:`PostgresListener`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .. import cron
from ..errors import BroadcasterError
from ..timeutil import as_utc, zone

if TYPE_CHECKING:
    from ..app import App
    from ..config import Config

log = logging.getLogger("broadcaster.daemon")

SOCKET_NAME = "daemon.wake"
WAKE = b"wake"
GET_READY = b"ready"
CHANNEL = "broadcaster_wake"
# AF_UNIX addresses hold about 108 bytes; a longer path is reached through its directory's descriptor.
_MAX_ADDRESS = 100


class StopEvent(threading.Event):
    """A stop that also sets, at once, every event relayed from it (:func:`relay_stop`): whatever sleeps
    on one of those hears the stop without a thread polling for it."""

    def __init__(self) -> None:
        super().__init__()
        self._relayed: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._relaying = threading.RLock()  # set() may run in a signal handler on the thread relaying

    def set(self) -> None:
        super().set()
        with self._relaying:
            relayed = list(self._relayed)
        for event in relayed:
            event.set()

    def relay_to(self, inner: threading.Event) -> None:
        with self._relaying:
            self._relayed.add(inner)
        if self.is_set():
            inner.set()


def relay_stop(outer: StopEvent | Iterable[StopEvent], inner: threading.Event) -> None:
    """From now on ``inner`` is set when ``outer`` is (or any of them; an object with ``events``, such as
    the dispatcher's ``AnyEvent``, stands for its events). Held weakly: an ``inner`` nobody keeps any
    more (the airing or dispatch it stopped has ended) drops out by itself."""
    for event in getattr(outer, "events", None) or ([outer] if isinstance(outer, threading.Event) else outer):
        if not isinstance(event, StopEvent):
            raise TypeError(f"relay_stop needs StopEvent, not {type(event).__name__}")
        event.relay_to(inner)


def socket_path(config: Config) -> Path:
    return config.data_dir / SOCKET_NAME


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A socket address for ``path``: the path itself, or (too long, Linux) through /proc/self/fd."""
    if len(os.fsencode(str(path))) < _MAX_ADDRESS or not os.path.isdir("/proc/self/fd"):
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def poke(config: Config, message: bytes = WAKE) -> bool:
    """Ask a daemon on this data folder (on this PC) to look again now (or, :data:`GET_READY`, to get its
    audio ready). True: a daemon got it."""
    path = socket_path(config)
    if not hasattr(socket, "AF_UNIX") or not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, _address(path) as address:
            sock.setblocking(False)
            sock.sendto(message, address)
    except OSError:  # no daemon behind a stale socket, or its queue is full (a poke is waiting already)
        return False
    return True


def tell_daemons(app: App) -> None:
    """After committing a change a daemon acts on: poke this PC's daemon and NOTIFY those on other PCs."""
    poke(app.config)
    if not app.config.database_url.startswith("sqlite"):
        notify_postgres(app.engine)


def notify_postgres(engine) -> None:  # noqa: ANN001
    """The poke for daemons on other PCs sharing a PostgreSQL database (best-effort)."""
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    try:
        with engine.connect() as connection:
            connection.execute(text(f"NOTIFY {CHANNEL}"))
            connection.commit()
    except Exception as exc:  # the change is committed; a daemon finds it at its next look
        log.debug("NOTIFY failed: %s", exc)


class Wakeup:
    """The control loop's sleep: :meth:`wait` returns at the timeout, on a poke, or on :meth:`interrupt`."""

    def __init__(self, config: Config, *, on_get_ready: Callable[[], None] | None = None) -> None:
        """``on_get_ready``: called (on the listening thread: it must not block) for a :data:`GET_READY`."""
        self.path = socket_path(config)
        self.on_get_ready = on_get_ready
        self.pokes = 0  # pokes received since start (for tests and the benchmark)
        self._event = threading.Event()
        self._guard = threading.Lock()
        self._poked = False
        self._sock: socket.socket | None = None
        self._inode: int | None = None

    def listen(self) -> None:
        """Bind the socket (the caller holds the daemon lock) and start the thread that hears pokes."""
        if not hasattr(socket, "AF_UNIX"):
            log.warning("Không có socket Unix: thay đổi chỉ được thấy khi đến giờ / no Unix sockets here: "
                        "changes are seen at the next due moment")
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a daemon that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with _address(self.path) as address:
                sock.bind(address)
            os.chmod(self.path, 0o600)
            self._inode = self.path.stat().st_ino
        except OSError as exc:
            sock.close()
            log.error("Không mở được %s / could not open the wake-up socket: %s", self.path, exc)
            return
        self._sock = sock
        threading.Thread(target=self._hear, args=(sock,), name="wakeup", daemon=True).start()

    def _hear(self, sock: socket.socket) -> None:
        while True:
            try:
                message = sock.recv(64)
            except OSError:
                return
            if not message:
                return  # shut down
            if message == GET_READY:
                if self.on_get_ready is not None:
                    self.on_get_ready()
            else:
                self.poked()

    def poked(self) -> None:
        with self._guard:
            self._poked = True
            self.pokes += 1
            self._event.set()

    def interrupt(self) -> None:
        """End the current (or next) wait without a poke, e.g. to stop."""
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds. True when a poke came (something changed: look again)."""
        self._event.wait(timeout)
        with self._guard:
            self._event.clear()
            poked, self._poked = self._poked, False
        return poked

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the listening thread
        sock.close()
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()


class PostgresListener(threading.Thread):
    """``LISTEN`` on :data:`CHANNEL` with its own connection; every notification pokes ``wakeup``.

    A lost connection is opened again after ``retry_s``; meanwhile the daemon's
    fallback look (``daemon.reload_seconds``) still finds what changed.
    """

    def __init__(self, url: str, wakeup: Wakeup, stop: threading.Event, *, retry_s: float = 10.0) -> None:
        super().__init__(name="pg-listen", daemon=True)
        self.url = url
        self.wakeup = wakeup
        self.stop_event = stop
        self.retry_s = retry_s
        self.listening = threading.Event()

    def run(self) -> None:
        import psycopg

        while not self.stop_event.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self.stop_event.is_set():
                        # the timeout only lets a stop end the thread; notifications arrive at once
                        for _notice in connection.notifies(timeout=5.0, stop_after=1):
                            self.wakeup.poked()
            except Exception as exc:
                self.listening.clear()
                log.warning("Mất LISTEN PostgreSQL / lost the PostgreSQL LISTEN: %s", str(exc).splitlines()[0]
                            if str(exc) else type(exc).__name__)
                self.stop_event.wait(self.retry_s)


def psycopg_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy's spelling) as libpq takes it."""
    scheme, rest = sqlalchemy_url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else sqlalchemy_url


def render_ahead_at(schedules: Iterable[tuple[str | None, datetime | None, str]], now: datetime,
                    ahead: timedelta) -> datetime | None:
    """When the next slot enters the render-ahead window (now, now + ahead].

    ``schedules``: (cron, at, station time zone) of each loudspeaker schedule that is not paused.
    """
    horizon = as_utc(now) + ahead
    soonest = None
    for cron_text, at, tz_name in schedules:
        try:
            moment = cron.next_slot(cron_text, at, zone(tz_name), horizon)
        except (BroadcasterError, ValueError):  # a bad row is reported where it is used
            continue
        if moment is not None and (soonest is None or moment < soonest):
            soonest = moment
    return soonest - ahead if soonest is not None else None
