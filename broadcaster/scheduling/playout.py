"""Getting one bulletin on air, and the station player that owns a station's loudspeakers.

:func:`air_bulletin` airs one bulletin through the log: it applies the
operator's decisions (:meth:`Bulletins.check_before_air`), opens the airing
(rows ``playing``, committed *before* the audio starts), plays, and closes
it with what really went out. The CLI uses it directly when no daemon runs.

:class:`StationPlayer` is the daemon's one thread per station, with a
priority queue: an emergency goes before anything queued and *preempts*
whatever holds the station (the bulletin on air is stopped and logged
interrupted). A slot whose audio is not ready does not hold the station
while it waits: it is parked, the renderer makes it, and it comes back to
the queue — so an emergency never waits behind a render.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .. import deliveries
from ..db import session_scope
from ..deliveries import BulletinStatus
from ..models import Bulletin, Station
from ..timeutil import as_utc
from .bulletins import Bulletins
from .wakeup import StopEvent, relay_stop

log = logging.getLogger("broadcaster.daemon")

EMERGENCY, ROUTINE = 0, 1


def air_bulletin(bulletins: Bulletins, bulletin_id: int, *, stop: threading.Event,
                 render_here: bool) -> str:
    """Air a claimed bulletin now. Returns its status afterwards, or ``"render"`` when it needs the renderer.

    ``render_here``: render in this thread when the audio is missing or must
    be made again (an emergency; the CLI) instead of answering ``"render"``.
    """
    from ..audio.players import PlayerError, make_player

    engine = bulletins.engine
    for _attempt in range(3):
        with session_scope(engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            status = bulletin.status
        if status in (BulletinStatus.RENDERING, BulletinStatus.STALE):
            if not render_here:
                return "render"
            if status == BulletinStatus.STALE and not deliveries.claim_bulletin(
                    engine, bulletin_id, expect=[BulletinStatus.STALE]):
                return _status(bulletins, bulletin_id)
            if not bulletins.render(bulletin_id):
                return _status(bulletins, bulletin_id)
        check = bulletins.check_before_air(bulletin_id)
        if check.verdict == "skip":
            return _status(bulletins, bulletin_id)
        if check.verdict == "render":
            continue
        break
    else:
        return _status(bulletins, bulletin_id)

    with session_scope(engine) as session:
        bulletin = session.get(Bulletin, bulletin_id)
        station = session.get(Station, bulletin.station_id)
        audio_path, station_code = Path(bulletin.audio_path), station.code
        player_kind, options = station.player, dict(station.player_options)
        if player_kind == "file":
            options.setdefault("timezone", station.timezone)  # dropped file names in station time
    try:
        player = make_player(player_kind, options)
    except ValueError as exc:
        airing = deliveries.open_airing(engine, bulletin_id, backend=player_kind, now=bulletins.clock())
        if airing is None:
            return _status(bulletins, bulletin_id)
        deliveries.close_airing(engine, airing, started_at=None, ended_at=bulletins.clock(), on_air_s=0.0,
                                error=str(exc))
        return BulletinStatus.FAILED
    if stop.is_set():
        return _status(bulletins, bulletin_id)
    airing = deliveries.open_airing(engine, bulletin_id, backend=player_kind, now=bulletins.clock())
    if airing is None:  # another process won the bulletin: it airs there, once
        return _status(bulletins, bulletin_id)
    try:
        result = player.play(audio_path, station_code=station_code, stop_event=stop,
                             on_start=lambda pid: deliveries.player_started(engine, bulletin_id, pid))
    except (PlayerError, OSError, ValueError) as exc:
        deliveries.close_airing(engine, airing, started_at=None, ended_at=bulletins.clock(), on_air_s=0.0,
                                error=str(exc))
        log.error("Phát bản tin %s tại %s lỗi / play failed: %s", bulletin_id, station_code, exc)
        return BulletinStatus.FAILED
    closed = deliveries.close_airing(engine, airing, started_at=as_utc(result.started_at),
                                     ended_at=as_utc(result.ended_at), on_air_s=result.duration_s,
                                     interrupted=result.interrupted, handed_over=player_kind == "file")
    log.info("Đã phát bản tin %s tại %s: %.1f s, trễ %.2f s%s / aired", bulletin_id, station_code,
             result.duration_s, closed.late_s or 0.0, " (bị ngắt / interrupted)" if result.interrupted else "")
    return closed.status


def _status(bulletins: Bulletins, bulletin_id: int) -> str:
    with session_scope(bulletins.engine) as session:
        return session.get(Bulletin, bulletin_id).status


@dataclass(order=True)
class Work:
    """Something for a station to air: a slot that fell due, or a claimed bulletin."""

    priority: int
    seq: int
    bulletin_id: int | None = field(default=None, compare=False)
    schedule_id: int | None = field(default=None, compare=False)
    slot_time: datetime | None = field(default=None, compare=False)

    @property
    def emergency(self) -> bool:
        return self.priority == EMERGENCY


_SEQ = itertools.count()


class StationPlayer(threading.Thread):
    """The one thread that airs a station's bulletins (see the module doc)."""

    def __init__(self, station_id: int, bulletins: Bulletins, *, stop: StopEvent,
                 send_to_renderer: Callable[[int, bool], None],
                 on_failed: Callable[[int], None], on_render_failed: Callable[[int], None]) -> None:
        """``on_failed``: a bulletin's player failed; ``on_render_failed``: an emergency's render (made
        here, not by the renderer) failed. Both are the daemon's to retry."""
        super().__init__(name=f"player-{station_id}", daemon=True)
        self.station_id = station_id
        self.bulletins = bulletins
        self.stop_event = stop
        self.queue: queue.PriorityQueue[Work] = queue.PriorityQueue()
        self._send_to_renderer = send_to_renderer
        self._on_failed = on_failed
        self._on_render_failed = on_render_failed
        self._current: Work | None = None
        self._current_stop: threading.Event | None = None
        self._guard = threading.Lock()
        self._busy = threading.Event()

    # ----------------------------------------------------------- from others
    def slot_due(self, schedule_id: int, slot_time: datetime) -> None:
        self._put(Work(ROUTINE, next(_SEQ), schedule_id=schedule_id, slot_time=as_utc(slot_time)))

    def air(self, bulletin_id: int, *, emergency: bool) -> None:
        self._put(Work(EMERGENCY if emergency else ROUTINE, next(_SEQ), bulletin_id=bulletin_id))
        if emergency:
            with self._guard:
                current, stop = self._current, self._current_stop
            if current is not None and not current.emergency and stop is not None:
                log.warning("Thông báo khẩn ngắt bản tin đang phát tại đài %s / an emergency preempts the "
                            "bulletin on air", self.station_id)
                stop.set()

    def wake(self) -> None:
        """Make the thread look at its stop event (it sleeps on its queue without a timeout)."""
        self.queue.put(Work(-1, next(_SEQ)))

    def _put(self, work: Work) -> None:
        self._busy.set()
        self.queue.put(work)

    @property
    def idle(self) -> bool:
        return self.queue.empty() and self._current is None

    def interrupt(self) -> None:
        with self._guard:
            if self._current_stop is not None:
                self._current_stop.set()

    # ---------------------------------------------------------------- thread
    def run(self) -> None:
        while not self.stop_event.is_set():
            work = self.queue.get()  # asleep until work, or a wake() after a stop
            if work.bulletin_id is None and work.schedule_id is None:
                continue
            stop = threading.Event()
            with self._guard:
                self._current, self._current_stop = work, stop
            relay_stop(self.stop_event, stop)
            try:
                self._handle(work, stop)
            except Exception as exc:  # one bad bulletin must not silence the station
                if type(exc).__name__ == "OperationalError" or isinstance(exc, OSError):  # a full disk, a lock
                    log.error("Lỗi khi phát tại đài %s / error while airing: %s", self.station_id,
                              str(getattr(exc, "orig", exc)).splitlines()[0])
                else:
                    log.exception("Lỗi khi phát tại đài %s / error while airing", self.station_id)
            finally:
                stop.set()
                with self._guard:
                    self._current, self._current_stop = None, None

    def _handle(self, work: Work, stop: threading.Event) -> None:
        bulletin_id = work.bulletin_id
        if bulletin_id is None:
            bulletin_id = self._claim_slot(work.schedule_id, work.slot_time)
            if bulletin_id is None:
                return
        status = air_bulletin(self.bulletins, bulletin_id, stop=stop, render_here=work.emergency)
        if status == "render":
            self._send_to_renderer(bulletin_id, True)
        elif status == BulletinStatus.FAILED:
            self._on_failed(bulletin_id)
        elif status == BulletinStatus.STALE and work.emergency:
            self._on_render_failed(bulletin_id)
        elif status == BulletinStatus.READY and not self.stop_event.is_set():
            # preempted before it went on air: it airs after the emergency
            self._put(Work(work.priority, next(_SEQ), bulletin_id=bulletin_id))

    def _claim_slot(self, schedule_id: int, slot_time: datetime) -> int | None:
        """The slot's bulletin to air now; None when it is being rendered (parked) or already handled."""
        engine = self.bulletins.engine
        with session_scope(engine) as session:
            bulletin = deliveries.find_slot_bulletin(session, schedule_id, slot_time)
            found = (bulletin.id, bulletin.status) if bulletin is not None else None
        if found is None:
            bulletin_id = self.bulletins.plan_slot(schedule_id, slot_time)
            if bulletin_id is not None:
                self._send_to_renderer(bulletin_id, True)
            return None
        bulletin_id, status = found
        if status == BulletinStatus.READY:
            return bulletin_id
        if status in (BulletinStatus.STALE, BulletinStatus.RENDERING):
            self._send_to_renderer(bulletin_id, True)  # rendered (again) first, marked to air when done
        elif status == BulletinStatus.SKIPPED and self._compose_again(bulletin_id):
            self._send_to_renderer(bulletin_id, True)
        else:
            log.info("Lịch %s lúc %s đã xử lý (%s) / slot already handled", schedule_id,
                     slot_time.isoformat(timespec="seconds"), status)
        return None


    def _compose_again(self, bulletin_id: int) -> bool:
        """A slot composed empty ahead of time gets a second chance when it falls due."""
        engine = self.bulletins.engine
        with session_scope(engine) as session:
            if not deliveries.composed_empty(session, session.get(Bulletin, bulletin_id)):
                return False  # skipped for a reason (paused, withdrawn): that decision holds
        if not deliveries.claim_bulletin(engine, bulletin_id, expect=[BulletinStatus.SKIPPED]):
            return False
        if self.bulletins.recompose(bulletin_id):
            return True
        with session_scope(engine) as session:
            deliveries.skip_bulletin(session, session.get(Bulletin, bulletin_id),
                                     "không có tin phù hợp / no content for this slot")
        return False
