"""The daemon: owned threads and queues, as radio playout systems do it.

- **Control loop** (the main thread): reloads schedules into APScheduler,
  claims work (render-ahead, queued announcements, retries) and heartbeats.
  It never renders, plays or sends.
- **APScheduler jobs** are bound methods that only enqueue: a slot that falls
  due goes to its station's player queue (or the SMS queue).
- **One player per station** (:class:`~.playout.StationPlayer`) owns the
  station's loudspeakers with a priority queue; an emergency preempts.
- **One renderer** makes bulletins ahead of time (``render.ahead_minutes``)
  and, first, those whose slot is already due. The audio work itself runs in
  a child process (:mod:`.audio_worker`), warm while there is work and gone
  when idle: the idle daemon holds no audio stack.
- **One SMS thread** creates SMS-slot campaigns and dispatches what is due
  (emergencies first; quiet hours read at send time).

Every wait watches the stop event, so a stop is prompt whatever is stuck. An
idle daemon sleeps: the control loop until something is due or the CLI pokes
it (:mod:`.wakeup`), the other threads until work or a stop reaches their
queue. The clock is injected (``Daemon(app, clock=...)``): catch-up, missed slots,
render-ahead, the repeat gap and announcements are tested in-process.

Many daemons (on many PCs) can share one database: each serves the stations
it was given (``--station``, ``daemon.stations``; every station no other
daemon holds when neither) and holds each through a lease renewed by its
heartbeat (:mod:`broadcaster.leases`). A station held by a live daemon is
refused to a second one; a station whose daemon died is taken over once its
lease expires; a daemon that loses a lease stops airing that station.
Everything below — recovery, catch-up, jobs, render-ahead, announcements —
works on the stations held only. One daemon per data folder: an OS file lock
guards what is local to the PC.

A slot missed while no daemon served its station airs late if it is within
``schedule.catch_up_minutes`` (the latest one per schedule), otherwise it is
logged missed; whatever a dead daemon left half-done (rendering, playing,
announcements) is recovered the same way, station by station.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from .. import deliveries, leases
from .. import schedules as schedules_mod
from ..app import App
from ..db import session_scope
from ..deliveries import BulletinStatus
from ..errors import BroadcasterError
from ..fileutil import FileLock
from ..models import (
    Bulletin,
    Campaign,
    Channel,
    ContactGroup,
    ContentItem,
    DaemonState,
    Priority,
    Schedule,
    Station,
)
from ..timeutil import as_utc, utcnow
from .audio_worker import AudioWorker
from .bulletins import Bulletins
from .playout import StationPlayer
from .status import lock_path
from .wakeup import PostgresListener, StopEvent, Wakeup, psycopg_url, render_ahead_at

log = logging.getLogger("broadcaster.daemon")

Clock = Callable[[], datetime]
# A render that failed (full disk, no voice) is tried again after this long; an emergency's sooner.
RENDER_RETRY_S = 30.0
EMERGENCY_RENDER_RETRY_S = 10.0
# A loudspeaker slot whose player failed is tried again after this long, inside the catch-up window.
PLAY_RETRY_S = 30.0
PLAY_ATTEMPTS = 3
# A difference between the wall clock and the monotonic clock larger than this is a clock jump.
CLOCK_JUMP_S = 60.0
# The [retention] settings are applied once a day, the first time a while after start.
PRUNE_EVERY_S = 24 * 3600.0
PRUNE_FIRST_AFTER_S = 600.0
# The control loop looks at the database this often even without a poke (a writer that does not poke:
# a manual fix, another PC whose NOTIFY was lost). On PostgreSQL without LISTEN: daemon.reload_seconds.
SAFETY_LOOK_S = 300.0
# Sleeps end a little after the due moment rather than a little before it.
_OVERSLEEP_S = 0.005
_WAKE_ID = 0  # queued to a thread to make it look at the stop event (no bulletin has id 0)


class _Renderer(threading.Thread):
    """The one render thread: due slots first, then render-ahead in slot order."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(name="renderer", daemon=True)
        self.daemon = daemon
        self.queue: queue.PriorityQueue[tuple[int, datetime, int]] = queue.PriorityQueue()
        self._queued: set[int] = set()
        self._air_when_done: set[int] = set()
        self._guard = threading.Lock()
        self.current: int | None = None

    def submit(self, bulletin_id: int, slot_time: datetime, *, air_when_done: bool) -> None:
        with self._guard:
            if air_when_done:
                self._air_when_done.add(bulletin_id)
            if bulletin_id in self._queued or bulletin_id == self.current:
                return
            self._queued.add(bulletin_id)
        self.queue.put((0 if air_when_done else 1, as_utc(slot_time), bulletin_id))

    @property
    def idle(self) -> bool:
        return self.queue.empty() and self.current is None

    def waiting_to_air(self) -> set[int]:
        with self._guard:
            return set(self._air_when_done)

    def forget(self, bulletin_id: int) -> None:
        with self._guard:
            self._air_when_done.discard(bulletin_id)

    def wake(self) -> None:
        self.queue.put((-1, datetime.min.replace(tzinfo=UTC), _WAKE_ID))

    def run(self) -> None:
        stop = self.daemon.stop_event
        # The audio libraries and jingles load at the first render, not at start: an idle daemon stays small.
        while not stop.is_set():
            _rank, _slot_time, bulletin_id = self.queue.get()
            if bulletin_id == _WAKE_ID:
                continue
            with self._guard:
                self._queued.discard(bulletin_id)
                self.current = bulletin_id
            try:
                ok = self.daemon.bulletins.render(bulletin_id)
            except Exception:
                log.exception("Lỗi khi dựng bản tin %s / render error", bulletin_id)
                deliveries.render_failed(self.daemon.engine, bulletin_id, "lỗi bất ngờ / unexpected error")
                ok = False
            finally:
                with self._guard:
                    self.current = None
            if not ok:
                self.daemon.retry_later(self.daemon.render_retry_at, bulletin_id, RENDER_RETRY_S)
                continue
            with self._guard:
                air = bulletin_id in self._air_when_done
                self._air_when_done.discard(bulletin_id)
            if air:
                self.daemon.air_bulletin(bulletin_id, emergency=False)


class Daemon:
    def __init__(self, app: App, *, clock: Clock = utcnow, log_file: Path | None = None,
                 use_scheduler: bool = True, sms_poll_seconds: float = 5.0,
                 stations: Sequence[str] | None = None) -> None:
        self.app = app
        self.config = app.config
        codes = list(stations or ()) or list(self.config.daemon.stations)
        self.station_codes: list[str] | None = codes or None  # None: every station no other daemon holds
        self.instance = leases.new_instance_id()
        self.holder = leases.holder_tag(self.instance)
        self.lease_s = float(self.config.daemon.lease_seconds)
        # stations whose lease this daemon holds: the only ones it touches (rebound, never mutated in place)
        self.held: frozenset[int] = frozenset()
        self._station_stops: dict[int, threading.Event] = {}
        self._state_id: int | None = None
        self._predecessor: str | None = None  # the previous daemon of this data folder (see acquire)
        self.engine = app.ready_engine()
        self.clock = clock
        self.stop_event = StopEvent()
        self._log_file = log_file or Path(self.config.daemon.log_file or self.config.data_dir / "daemon.log")
        # renders and airtime estimates in a child process: the idle daemon holds no audio stack
        self.audio_worker = AudioWorker(self.config, log_file=self._log_file)
        self.bulletins = Bulletins(app, clock=clock, audio_worker=self.audio_worker)
        self.catch_up = timedelta(minutes=self.config.schedule.catch_up_minutes)
        self.ahead = timedelta(minutes=self.config.render.ahead_minutes)
        self.use_scheduler = use_scheduler
        self.sms_poll_seconds = sms_poll_seconds
        self.scheduler = None
        self.players: dict[int, StationPlayer] = {}
        self.renderer = _Renderer(self)
        self.render_retry_at: dict[int, datetime] = {}
        self.play_retry_at: dict[int, datetime] = {}
        self.sms_slots: queue.Queue[tuple[int, datetime]] = queue.Queue()
        self.sms_wake = threading.Event()
        self.sms_yield = StopEvent()  # an emergency campaign is waiting: the ordinary dispatch stops
        self._sms_thread: threading.Thread | None = None
        self._sms_busy = False
        self._fingerprint: tuple | None = None
        self._lock = FileLock(lock_path(app))
        self._ticking = threading.Lock()
        self._log_handler: logging.Handler | None = None
        self._webhook = None
        self._web_console = None
        self._last_heartbeat = self._last_reload = float("-inf")
        self.wakeup = Wakeup(self.config, on_get_ready=self._get_ready_for_an_announcement)
        self._pg_listener: PostgresListener | None = None
        self._looked_at: datetime | None = None  # the clock when the loop last looked for work
        self._next_render_at: datetime | None = None  # when the next slot enters the render-ahead window
        self._next_prune = time.monotonic() + PRUNE_FIRST_AFTER_S
        self._clock_seen: tuple[datetime, float] | None = None

    # ---------------------------------------------------------------- lifecycle
    def run(self) -> None:
        """Run until SIGTERM/SIGINT (or ``stop()``)."""
        self._setup_logging()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())
        try:
            self.start()
            self._start_webhook()
            self._start_web_console()
            log.info("Daemon đã chạy / daemon started (pid %s)", os.getpid())
            self.loop()
        finally:
            self.shutdown()

    def loop(self) -> None:
        """The control loop, until stopped: asleep until something is due or a poke says something changed."""
        while not self.stop_event.is_set():
            try:
                sleep_s = self.seconds_until_due()
            except Exception as exc:  # one bad computation must not stop the station: look again soon
                log.error("Lỗi tính giờ thức / could not work out the next due moment: %s", exc)
                sleep_s = 1.0
            poked = self.wakeup.wait(sleep_s)
            if self.stop_event.is_set():
                return
            self.tick(reload=poked)

    def start(self, *, lock_wait_s: float = 30.0) -> None:
        """Take the lock, recover what a crash left, start the threads and the jobs."""
        self.acquire(wait_s=lock_wait_s)
        try:
            taken = self.take_stations(refuse=True, wait_s=lock_wait_s)
        except BaseException:
            self.release()
            raise
        self._listen_for_pokes()
        self._start_state()
        self.renderer.start()
        self._sms_thread = threading.Thread(target=self._sms_loop, name="sms", daemon=True)
        self._sms_thread.start()
        self.recover_and_catch_up(taken)
        if self.use_scheduler:
            from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
            from apscheduler.schedulers.background import BackgroundScheduler

            self.scheduler = BackgroundScheduler(timezone="UTC")
            self.scheduler.add_listener(self._on_job_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
            self.sync_jobs(force=True)
            self.scheduler.start()
        self.tick()

    def stop(self) -> None:
        self.stop_event.set()
        for station_stop in list(self._station_stops.values()):
            station_stop.set()

    def _listen_for_pokes(self) -> None:
        self.wakeup.listen()
        if self.engine.dialect.name == "postgresql":
            self._pg_listener = PostgresListener(psycopg_url(self.config.database_url), self.wakeup,
                                                 self.stop_event)
            self._pg_listener.start()
        threading.Thread(target=self._wake_all_on_stop, name="stop-relay", daemon=True).start()

    def _get_ready_for_an_announcement(self) -> None:
        """``announce`` has started: the audio child starts now, while the announcement is being written
        (a cold start is most of an emergency's way to air after the daemon idled)."""
        threading.Thread(target=self._guard, args=(self.audio_worker.warm,), name="audio-warm", daemon=True).start()

    def _wake_all_on_stop(self) -> None:
        """The threads sleep without a timeout: a stop (a signal, ``shutdown``, a test) reaches them here."""
        self.stop_event.wait()
        self.wakeup.interrupt()
        self.sms_wake.set()
        self.renderer.wake()
        for player in list(self.players.values()):
            player.wake()

    def shutdown(self) -> None:
        log.info("Đang dừng / stopping")
        self.stop_event.set()
        for station_stop in self._station_stops.values():
            station_stop.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for thread in [*self.players.values(), self._sms_thread]:
            if thread is not None and thread.is_alive():
                thread.join(timeout=10)
        if self.renderer.is_alive():
            self.renderer.join(timeout=2)  # a render in progress is recovered as stale at the next start
        self.audio_worker.close()
        if self._webhook is not None:
            self._webhook.shutdown()
        self._stop_web_console()
        self.wakeup.close()
        if self._lock.held:
            try:
                leases.release(self.engine, self.instance, self.held, now=self.clock())
                self.held = frozenset()
                with session_scope(self.engine) as session:
                    state = session.get(DaemonState, self._state_id) if self._state_id else None
                    if state is not None:
                        state.stopped_at = state.heartbeat_at = utcnow()
                        session.add(state)
            except Exception as exc:  # a full disk must not keep the lock held or the process alive
                log.error("Không ghi được trạng thái dừng / could not record the stop: %s", str(exc)[:200])
        self.release()
        log.info("Đã dừng / stopped")
        if self._log_handler is not None:
            logging.getLogger("broadcaster").removeHandler(self._log_handler)
            try:
                self._log_handler.close()
            except OSError:  # the disk is full: what could be logged was
                pass
            self._log_handler = None

    def _setup_logging(self) -> None:
        logging.raiseExceptions = False  # a full disk must not turn every log line into a traceback
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        from ..logsetup import StationTimeFormatter

        handler = logging.FileHandler(self._log_file, encoding="utf-8")
        handler.setFormatter(StationTimeFormatter(self.config.broadcaster.timezone))
        root = logging.getLogger("broadcaster")
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        self._log_handler = handler

    # ------------------------------------------------------------------ locking
    def acquire(self, wait_s: float = 0.0) -> None:
        """Take this data folder's lock. The holder named in it before is this PC's previous daemon, dead
        now that the kernel let go of its lock: its stations need not wait for their leases to expire."""
        deadline = time.monotonic() + wait_s
        previous = self._lock.read_note()
        told = False
        while not self._lock.try_acquire(self.holder):
            other = self._lock.read_note() or "?"
            if not told and wait_s > 0:  # a restart waits for the old daemon to stop; say so, not silence
                told = True
                log.warning("Một daemon khác đang giữ thư mục dữ liệu này (%s); chờ nó dừng, tối đa %.0f s / "
                            "another daemon holds this data folder (%s): waiting up to %.0f s for it to stop",
                            other, wait_s, other, wait_s)
            if time.monotonic() >= deadline:
                raise BroadcasterError(
                    f"Chương trình chạy nền (daemon) đã chạy với thư mục dữ liệu này ({other}) / "
                    f"a daemon already runs on this data folder ({other})"
                )
            time.sleep(0.2)
            previous = self._lock.read_note()
        self._predecessor = previous or None

    def release(self) -> None:
        self._lock.release()

    def _start_state(self) -> None:
        """Record this daemon's run (one row per run: many daemons share the database); runs that
        stopped long ago are forgotten."""
        from sqlalchemy import delete

        with session_scope(self.engine) as session:
            session.exec(delete(DaemonState).where(DaemonState.stopped_at < utcnow() - timedelta(days=30)))
            state = DaemonState(pid=os.getpid(), host=socket.gethostname(), instance=self.instance,
                                stations=self.station_codes or [])
            state.started_at = state.heartbeat_at = utcnow()
            session.add(state)
            session.flush()
            self._state_id = state.id

    def heartbeat(self) -> None:
        """Renew the leases (stopping the stations lost), take over stations whose daemon died, beat."""
        kept = leases.renew(self.engine, self.instance, self.held, now=self.clock(), seconds=self.lease_s)
        if self.held - kept:
            self.lose_stations(self.held - kept)
        with session_scope(self.engine) as session:
            state = session.get(DaemonState, self._state_id)
            state.heartbeat_at = utcnow()
            session.add(state)
        taken = self.take_stations(refuse=False)
        if taken:
            self.recover_and_catch_up(taken)
            if self.scheduler is not None:
                self.sync_jobs(force=True)

    # ------------------------------------------------------------------- leases
    def take_stations(self, *, refuse: bool, wait_s: float = 0.0) -> dict[int, datetime | None]:
        """Take the lease of each station this daemon serves and does not hold (never served, released, or
        expired because its daemon died). Returns {station: when it was last served} for those taken.

        ``refuse``: at start, a station held by a live daemon is an error naming the holder (with
        ``daemon.stations`` or ``--station``; without them only when every station is held). An
        ``announce`` airing without a daemon holds its stations for a moment: it is waited for.
        """
        with self.app.read_session() as session:
            query = select(Station.id, Station.code).order_by(Station.code)
            if self.station_codes is not None:
                query = query.where(Station.code.in_(self.station_codes))
            stations = session.exec(query).all()
        if refuse and self.station_codes is not None:
            unknown = sorted(set(self.station_codes) - {code for _id, code in stations})
            if unknown:
                raise BroadcasterError(f"không có đài {', '.join(unknown)} / unknown station(s): "
                                       f"{', '.join(unknown)}")
        deadline = time.monotonic() + wait_s
        taken: dict[int, datetime | None] = {}
        while True:
            now = self.clock()
            current = leases.all_leases(self.engine)
            refused: dict[str, leases.Lease] = {}
            for station_id, code in stations:
                lease = current.get(station_id)
                if station_id in self.held or station_id in taken:
                    continue
                if lease is not None and lease.instance != self.instance and lease.alive(now) \
                        and lease.holder != self._predecessor:
                    refused[code] = lease
                    continue
                result = leases.take(self.engine, station_id, instance=self.instance, holder=self.holder,
                                     now=now, seconds=self.lease_s, predecessor=self._predecessor)
                if isinstance(result, leases.Taken):
                    taken[station_id] = result.previous.renewed_at if result.previous else None
                else:
                    refused[code] = result
            waiting_for_announce = refused and all(leases.is_announce(lease.instance)
                                                   for lease in refused.values())
            if not (refuse and waiting_for_announce and time.monotonic() < deadline):
                break
            time.sleep(0.2)
        if refuse and refused and (self.station_codes is not None or not taken):
            leases.release(self.engine, self.instance, taken, now=self.clock())
            code, lease = next(iter(refused.items()))
            more = f" (+{len(refused) - 1})" if len(refused) > 1 else ""
            raise BroadcasterError(f"Đài {code}{more} đang do daemon khác phục vụ ({lease.holder}) / station "
                                   f"{code}{more} is served by another daemon ({lease.holder})")
        if refused and refuse:
            log.warning("%d đài do daemon khác phục vụ, bỏ qua / %d station(s) served by other daemons: %s",
                        len(refused), len(refused), ", ".join(sorted(refused)))
        if taken:
            self.held = self.held | set(taken)
            log.info("Phục vụ %d đài / serving %d station(s) (%s)", len(taken), len(taken), self.holder)
        return taken

    def lose_stations(self, station_ids: set[int]) -> None:
        """Leases lost (expired and taken by another daemon): those stations stop airing here at once."""
        self.held = self.held - station_ids  # rebound, never mutated: other threads read it
        for station_id in station_ids:
            stop = self._station_stops.pop(station_id, None)
            if stop is not None:
                stop.set()
            self.players.pop(station_id, None)
        log.error("Mất quyền phục vụ %d đài (daemon khác đã nhận), ngừng phát / lost the lease of %d station(s) "
                  "to another daemon: no longer airing them", len(station_ids), len(station_ids))
        if self.scheduler is not None:
            self.sync_jobs(force=True)

    # ---------------------------------------------------------------- threads
    def player(self, station_id: int) -> StationPlayer:
        player = self.players.get(station_id)
        if player is None or not player.is_alive():
            stop = self._station_stops[station_id] = StopEvent()
            if self.stop_event.is_set():
                stop.set()
            player = StationPlayer(station_id, self.bulletins, stop=stop,
                                   send_to_renderer=self._to_renderer, on_failed=self._play_failed,
                                   on_render_failed=self._emergency_render_failed)
            self.players[station_id] = player
            player.start()
        return player

    def _to_renderer(self, bulletin_id: int, air_when_done: bool) -> None:
        """Queue a bulletin for the renderer, claiming it first when it is stale."""
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            slot_time, status = bulletin.slot_time, bulletin.status
        if status == BulletinStatus.STALE and not deliveries.claim_bulletin(self.engine, bulletin_id,
                                                                            expect=[BulletinStatus.STALE]):
            return
        if status not in (BulletinStatus.STALE, BulletinStatus.RENDERING):
            return
        self.renderer.submit(bulletin_id, slot_time, air_when_done=air_when_done)

    def retry_later(self, retries: dict[int, datetime], bulletin_id: int, seconds: float) -> None:
        """Note a retry moment (``render_retry_at`` or ``play_retry_at``); the control loop plans its sleep
        again with it (it may be asleep until a heartbeat a minute away)."""
        retries[bulletin_id] = self.clock() + timedelta(seconds=seconds)
        self.wakeup.interrupt()

    def _play_failed(self, bulletin_id: int) -> None:
        self.retry_later(self.play_retry_at, bulletin_id, PLAY_RETRY_S)

    def _emergency_render_failed(self, bulletin_id: int) -> None:
        """The announcement stays STALE; :meth:`retry_due` hands it to its player again."""
        self.retry_later(self.render_retry_at, bulletin_id, EMERGENCY_RENDER_RETRY_S)

    def air_bulletin(self, bulletin_id: int, *, emergency: bool) -> None:
        with session_scope(self.engine) as session:
            station_id = session.get(Bulletin, bulletin_id).station_id
        if station_id not in self.held:  # the lease was lost meanwhile: the new holder recovers it
            log.warning("Bản tin %s: đài không còn do daemon này phục vụ / bulletin %s: station no longer served "
                        "here", bulletin_id, bulletin_id)
            return
        self.player(station_id).air(bulletin_id, emergency=emergency)

    def idle(self) -> bool:
        """Nothing queued or in progress in any thread (for tests and the benchmark)."""
        return (self.renderer.idle and all(p.idle for p in self.players.values()) and not self._sms_busy
                and self.sms_slots.empty() and not self.sms_wake.is_set())

    def wait_idle(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        settled = 0
        while time.monotonic() < deadline:
            settled = settled + 1 if self.idle() else 0
            if settled >= 3:
                return
            time.sleep(0.05)
        raise TimeoutError(f"daemon did not settle: renderer idle {self.renderer.idle}, players "
                           f"{ {k: p.idle for k, p in self.players.items()} }, sms busy {self._sms_busy}, "
                           f"sms slots {self.sms_slots.qsize()}, sms wake {self.sms_wake.is_set()}")

    # ------------------------------------------------------------ control loop
    def tick(self, *, reload: bool = False) -> None:
        """One pass of the control loop: heartbeat, reload, claim work. Never blocks on audio or SMS.

        ``reload``: re-read schedules and claim render-ahead now, not only when :meth:`seconds_until_due` says.
        One pass at a time: a pass called from outside the loop (a test) waits for the loop's, so that
        what that pass claimed has been handed to its thread when this returns.
        """
        with self._ticking:
            self._tick(reload)

    def _tick(self, reload: bool) -> None:
        now_mono = time.monotonic()
        self._guard(lambda: self._watch_the_clock(now_mono))
        if reload:
            self._last_reload = float("-inf")
        if now_mono - self._last_heartbeat >= self.config.daemon.heartbeat_seconds:
            self._guard(self.heartbeat)
            self._last_heartbeat = now_mono
        self._guard(self.take_announcements)
        if reload or self._look_due(now_mono):
            self._last_reload = now_mono
            self._looked_at = self.clock()
            if self.scheduler is not None:
                self._guard(self.sync_jobs)
            self._guard(self.prepare_upcoming)
            self._guard(self.retry_due)
            self._guard(self._plan_next_look)
            self.sms_wake.set()
        if now_mono >= self._next_prune:
            self._next_prune = now_mono + PRUNE_EVERY_S
            threading.Thread(target=self._guard, args=(self.prune,), name="retention", daemon=True).start()

    # ------------------------------------------------------------ sleeping
    def _look_every_s(self) -> float:
        if self._pg_listener is not None and not self._pg_listener.listening.is_set():
            return float(self.config.daemon.reload_seconds)  # no LISTEN: a slow look is the fallback
        return SAFETY_LOOK_S

    def _retries_ahead(self) -> list[datetime]:
        """Retry moments the last look has not passed yet (older ones were that look's to handle)."""
        moments = [*self.render_retry_at.values(), *self.play_retry_at.values()]
        return [at for at in moments if self._looked_at is None or at > self._looked_at]

    def _look_due(self, now_mono: float) -> bool:
        now = self.clock()
        return (now_mono - self._last_reload >= self._look_every_s()
                or (self._next_render_at is not None and now >= self._next_render_at)
                or any(at <= now for at in self._retries_ahead()))

    def _plan_next_look(self) -> None:
        with self.app.read_session() as session:
            rows = session.exec(select(Schedule.cron, Schedule.at, Station.timezone).join(Station).where(
                Schedule.paused == False, Schedule.channel == Channel.LOUDSPEAKER)).all()  # noqa: E712
        self._next_render_at = render_ahead_at(rows, self.clock(), self.ahead)

    def seconds_until_due(self) -> float:
        """How long the control loop may sleep: until the heartbeat, the next render-ahead, a retry,
        retention or the fallback look, whichever comes first."""
        now_mono, now = time.monotonic(), self.clock()
        waits = [self._last_heartbeat + self.config.daemon.heartbeat_seconds - now_mono,
                 self._last_reload + self._look_every_s() - now_mono, self._next_prune - now_mono]
        waits += [(at - now).total_seconds() for at in [self._next_render_at, *self._retries_ahead()]
                  if at is not None]
        return max(0.0, min(waits)) + _OVERSLEEP_S

    def _watch_the_clock(self, now_mono: float) -> None:
        """A jump of the system clock (more than a minute either way) is logged once; the slots a jump
        forward skipped are handled by the catch-up rules instead of vanishing."""
        wall = self.clock()
        previous, self._clock_seen = self._clock_seen, (wall, now_mono)
        if previous is None:
            return
        drift = (wall - previous[0]).total_seconds() - (now_mono - previous[1])
        if abs(drift) <= CLOCK_JUMP_S:
            return
        log.warning("Đồng hồ máy nhảy %+.0f giây / the system clock jumped by %+.0f s", drift, drift)
        if drift > 0:
            latest: dict = {}
            with session_scope(self.engine) as session:
                self._slots_fallen_since(session, latest, dict.fromkeys(self.held, previous[0]), wall)
            self._air_late(latest)

    def _guard(self, func) -> None:  # noqa: ANN001
        try:
            func()
        except Exception as exc:  # one bad tick must not stop the station
            log.error("Lỗi trong vòng lặp / error in the daemon loop (%s): %s", getattr(func, "__name__", func),
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def prune(self) -> None:
        """Old rendered bulletins, dropped files, outbox and log lines go (the delivery log never does)."""
        from ..retention import prune

        summary = prune(self.app)
        log.info("Dọn dữ liệu cũ / retention applied: %s", summary)

    # ----------------------------------------------------------------- recovery
    def recover_and_catch_up(self, last_alive: dict[int, datetime | None]) -> None:
        """Recover what a dead daemon left half-done at the stations just taken, and account for every slot
        that fell while none served them. ``last_alive``: station -> when it was last served (None: never).

        Stations held by other live daemons are not touched: their bulletins on air stay on air.
        """
        if not last_alive:
            return
        now = self.clock()
        recovered = deliveries.recover(self.engine, station_ids=list(last_alive), now=now)
        if recovered.players_stopped:
            log.warning("Đã dừng %d trình phát mồ côi / stopped %d orphaned player(s)",
                        len(recovered.players_stopped), len(recovered.players_stopped))
        latest: dict[int, tuple[datetime, int | None]] = {}  # schedule -> (slot time, bulletin) to air late
        with session_scope(self.engine) as session:
            for bulletin_id in recovered.bulletins:
                bulletin = session.get(Bulletin, bulletin_id)
                slot_time = as_utc(bulletin.slot_time)
                if bulletin.kind == "announcement":
                    valid_until = as_utc(bulletin.valid_until) or slot_time + self.catch_up
                    if now <= valid_until:
                        if bulletin.status == BulletinStatus.QUEUED:
                            continue  # take_announcements claims it
                        deliveries.move_bulletin(session, bulletin, BulletinStatus.STALE) \
                            if bulletin.status in (BulletinStatus.READY, BulletinStatus.FAILED) else None
                        latest[-bulletin_id] = (slot_time, bulletin_id)
                    else:
                        deliveries.mark_missed(session, station_id=bulletin.station_id, slot_time=slot_time,
                                               reason="thông báo hết hiệu lực khi daemon dừng / the announcement "
                                                      "expired while no daemon ran", kind="announcement",
                                               bulletin=bulletin)
                    continue
                if slot_time > now or bulletin.schedule_id is None:
                    continue  # rendered ahead for a later slot: prepare_upcoming renders it again if stale
                self._keep_latest(session, latest, bulletin.schedule_id, slot_time, bulletin_id, now)
            self._slots_fallen_since(session, latest, last_alive, now)
        self._air_late(latest)

    def _slots_fallen_since(self, session, latest: dict, since: dict[int, datetime | None],  # noqa: ANN001
                            now: datetime) -> None:
        """Every slot of these stations due in (since[station], now] that has not aired: the latest per
        schedule to air late, the others missed."""
        if not since:
            return
        rows = session.exec(select(Schedule, Station).join(Station).where(
            Schedule.paused == False, Schedule.station_id.in_(list(since)))).all()  # noqa: E712
        for schedule, station in rows:
            start = max(as_utc(schedule.created_at), as_utc(since[station.id]) or as_utc(schedule.created_at))
            for slot_time in schedules_mod.fire_times(schedule, station.timezone, start, now):
                existing = deliveries.find_slot_bulletin(session, schedule.id, slot_time)
                if existing is not None and existing.status not in deliveries.BULLETIN_PLANNED \
                        and not deliveries.composed_empty(session, existing):
                    continue
                self._keep_latest(session, latest, schedule.id, slot_time, existing.id if existing else None, now)

    def _air_late(self, latest: dict) -> None:
        for key, (slot_time, bulletin_id) in sorted(latest.items(), key=lambda kv: kv[1][0]):
            if key < 0:
                log.warning("Phát lại thông báo khẩn %s sau khi dừng / airing an announcement left by a stop",
                            bulletin_id)
                if deliveries.claim_bulletin(self.engine, bulletin_id, expect=[BulletinStatus.STALE]):
                    self.air_bulletin(bulletin_id, emergency=True)
                continue
            log.warning("Phát bù lịch %s (%s) / catching up slot", key, slot_time.isoformat(timespec="seconds"))
            self.slot_due_at(key, slot_time)

    def _keep_latest(self, session, latest: dict, schedule_id: int, slot_time: datetime,  # noqa: ANN001
                     bulletin_id: int | None, now: datetime) -> None:
        """Per schedule only the latest slot inside the catch-up window airs late; the others are missed."""
        candidates = [(slot_time, bulletin_id)]
        if schedule_id in latest:
            candidates.append(latest.pop(schedule_id))
        candidates.sort(key=lambda c: c[0])
        *older, newest = candidates
        for moment, bid in older:
            if moment != newest[0]:
                self._missed(session, schedule_id, moment, bid, "máy tắt hoặc daemon không chạy / PC off or "
                                                                  "daemon not running")
        if now - newest[0] <= self.catch_up:
            latest[schedule_id] = newest
        else:
            self._missed(session, schedule_id, newest[0], newest[1], "máy tắt hoặc daemon không chạy, quá "
                         "thời gian phát bù / PC off or daemon not running, past the catch-up window")

    def _missed(self, session, schedule_id: int, slot_time: datetime, bulletin_id: int | None,  # noqa: ANN001
                reason: str) -> None:
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            return
        bulletin = session.get(Bulletin, bulletin_id) if bulletin_id else None
        deliveries.mark_missed(session, station_id=schedule.station_id, slot_time=slot_time, reason=reason,
                               schedule_id=schedule_id, channel=schedule.channel, bulletin=bulletin)

    # ------------------------------------------------------------------- jobs
    def sync_jobs(self, force: bool = False) -> None:
        from apscheduler.triggers.date import DateTrigger

        with self.app.read_session() as session:
            rows = session.exec(select(Schedule, Station).join(Station).where(
                Schedule.station_id.in_(list(self.held))).order_by(Schedule.id)).all()
            fingerprint = tuple((s.id, s.cron, s.at, s.paused, s.updated_at, st.timezone) for s, st in rows)
            if fingerprint == self._fingerprint and not force:
                return
            self._fingerprint = fingerprint
            wanted = {}
            now = self.clock()
            for schedule, station in rows:
                if schedule.paused:
                    continue
                if schedule.cron:
                    trigger = schedules_mod.cron_trigger(schedule.cron, station.timezone)
                elif schedule.at and as_utc(schedule.at) > now:
                    trigger = DateTrigger(run_date=as_utc(schedule.at))
                else:
                    continue
                wanted[f"slot-{schedule.id}"] = (schedule.id, trigger)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("slot-") and job.id not in wanted:
                job.remove()
                log.info("Bỏ lịch / schedule removed: %s", job.id)
        grace = int(self.catch_up.total_seconds())
        for job_id, (schedule_id, trigger) in wanted.items():
            self.scheduler.add_job(self.slot_due, trigger=trigger, args=[schedule_id], id=job_id,
                                   replace_existing=True, misfire_grace_time=grace, coalesce=True, max_instances=3)
        log.info("Đã nạp %d lịch / %d schedules loaded", len(wanted), len(wanted))

    def _on_job_event(self, event) -> None:  # noqa: ANN001
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED

        if event.code == EVENT_JOB_MISSED and event.job_id.startswith("slot-"):
            schedule_id = int(event.job_id.split("-", 1)[1])
            with session_scope(self.engine) as session:
                self._missed(session, schedule_id, as_utc(event.scheduled_run_time), None,
                             "quá thời gian phát bù / past the catch-up window")
        elif event.code == EVENT_JOB_ERROR:
            log.error("Lịch %s lỗi / job failed: %s", event.job_id, event.exception)

    def slot_due(self, schedule_id: int) -> None:
        """The APScheduler job: find which slot fell due, and enqueue it. Nothing else."""
        now = self.clock()
        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            station = schedule and session.get(Station, schedule.station_id)
            if schedule is None or station is None or schedule.paused:
                return
            recent = list(schedules_mod.fire_times(schedule, station.timezone, now - self.catch_up,
                                                   now + timedelta(seconds=2)))
        if not recent:
            log.warning("Lịch %s chạy ngoài giờ / slot fired off its time", schedule_id)
            return
        self.slot_due_at(schedule_id, recent[-1])

    def slot_due_at(self, schedule_id: int, slot_time: datetime) -> None:
        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            channel, station_id = schedule.channel, schedule.station_id
        if station_id not in self.held:  # a job of a station lost a moment ago
            return
        if channel == Channel.SMS:
            self.sms_slots.put((schedule_id, as_utc(slot_time)))
            self.sms_wake.set()
            return
        self.player(station_id).slot_due(schedule_id, slot_time)

    # ------------------------------------------------------------- claim work
    def prepare_upcoming(self) -> None:
        """Compose and queue for rendering the loudspeaker slots due within ``render.ahead_minutes``."""
        now = self.clock()
        due: list[int] = []
        stale: list[tuple[int, datetime]] = []
        with self.app.read_session() as session:
            rows = session.exec(select(Schedule, Station).join(Station).where(
                Schedule.paused == False, Schedule.channel == Channel.LOUDSPEAKER,  # noqa: E712
                Schedule.station_id.in_(list(self.held)))).all()
            for schedule, station in rows:
                for slot_time in schedules_mod.fire_times(schedule, station.timezone, now, now + self.ahead):
                    bulletin = deliveries.find_slot_bulletin(session, schedule.id, slot_time)
                    if bulletin is None:
                        due.append((slot_time, schedule.id))
                    elif bulletin.status == BulletinStatus.STALE:
                        stale.append((bulletin.id, as_utc(bulletin.slot_time)))
        for slot_time, schedule_id in sorted(due):
            bulletin_id = self.bulletins.plan_slot(schedule_id, slot_time)
            if bulletin_id is not None:
                self.renderer.submit(bulletin_id, slot_time, air_when_done=False)
        for bulletin_id, slot_time in stale:
            if self._retry_allowed(bulletin_id, now) and deliveries.claim_bulletin(
                    self.engine, bulletin_id, expect=[BulletinStatus.STALE]):
                if not self.bulletins.recompose(bulletin_id) and not self._has_items(bulletin_id):
                    continue
                self.renderer.submit(bulletin_id, slot_time, air_when_done=False)

    def _has_items(self, bulletin_id: int) -> bool:
        """False (and the slot logged skipped) when a re-composed bulletin carries nothing any more."""
        with session_scope(self.engine) as session:
            if deliveries.bulletin_items(session, bulletin_id):
                return True
            bulletin = session.get(Bulletin, bulletin_id)
            deliveries.move_bulletin(session, bulletin, BulletinStatus.SKIPPED,
                                     reason="không còn tin phù hợp / no content left for this slot")
            return False

    def _retry_allowed(self, bulletin_id: int, now: datetime) -> bool:
        at = self.render_retry_at.get(bulletin_id)
        if at is not None and now < at:
            return False
        self.render_retry_at.pop(bulletin_id, None)
        return True

    def retry_due(self) -> None:
        """Failed players inside the catch-up window; due slots and announcements whose render failed; give up
        after the window (an announcement's: its validity when it has one)."""
        now = self.clock()
        with self.app.read_session() as session:  # most of the time there is nothing: no write lock then
            stale_waiting = session.exec(select(Bulletin.id).where(
                Bulletin.status == BulletinStatus.STALE, Bulletin.slot_time <= now,
                Bulletin.channel == Channel.LOUDSPEAKER, Bulletin.station_id.in_(list(self.held)))).first()
        if stale_waiting is None and not any(at <= now for at in self.play_retry_at.values()):
            return
        waiting = self.renderer.waiting_to_air()
        to_air: list[int] = []
        to_render: list[int] = []
        emergencies: list[int] = []
        with session_scope(self.engine) as session:
            for bulletin_id, at in list(self.play_retry_at.items()):
                if now < at:
                    continue
                self.play_retry_at.pop(bulletin_id)
                bulletin = session.get(Bulletin, bulletin_id)
                if bulletin is None or bulletin.status != BulletinStatus.FAILED:
                    continue
                if now - as_utc(bulletin.slot_time) <= self.catch_up and bulletin.attempts < PLAY_ATTEMPTS:
                    deliveries.retry_airing(session, bulletin, "thử phát lại / retrying after a player error")
                    log.warning("Phát lại bản tin %s (lần %d) / retrying the airing", bulletin_id,
                                bulletin.attempts + 1)
                    to_air.append(bulletin_id)
            stale_due = session.exec(select(Bulletin).where(
                Bulletin.status == BulletinStatus.STALE, Bulletin.slot_time <= now,
                Bulletin.channel == Channel.LOUDSPEAKER, Bulletin.station_id.in_(list(self.held)))).all()
            for bulletin in stale_due:
                window_end = as_utc(bulletin.valid_until) or as_utc(bulletin.slot_time) + self.catch_up
                if now > window_end:
                    self.renderer.forget(bulletin.id)
                    self.render_retry_at.pop(bulletin.id, None)
                    deliveries.mark_missed(session, station_id=bulletin.station_id, slot_time=bulletin.slot_time,
                                           reason="không dựng được bản tin kịp giờ / the bulletin could not be "
                                                  "rendered in time", schedule_id=bulletin.schedule_id,
                                           kind=bulletin.kind, bulletin=bulletin)
                elif bulletin.kind == "announcement":
                    emergencies.append(bulletin.id)
                elif bulletin.id in waiting:
                    to_render.append(bulletin.id)
        for bulletin_id in to_render:
            if self._retry_allowed(bulletin_id, now):
                self._to_renderer(bulletin_id, True)
        for bulletin_id in emergencies:  # its player renders it at once, before anything queued there
            if self._retry_allowed(bulletin_id, now):
                log.warning("Thử lại thông báo khẩn %s / retrying announcement %s", bulletin_id, bulletin_id)
                self.air_bulletin(bulletin_id, emergency=True)
        for bulletin_id in to_air:
            self.air_bulletin(bulletin_id, emergency=False)

    def take_announcements(self) -> None:
        """Claim announcements queued by ``broadcaster announce`` and hand them to the stations' players."""
        with self.app.read_session() as session:  # every 0.2 s: never the write lock
            queued = session.exec(select(Bulletin.id, Bulletin.station_id).where(
                Bulletin.kind == "announcement", Bulletin.status == BulletinStatus.QUEUED,
                Bulletin.station_id.in_(list(self.held))).order_by(Bulletin.id)).all()
        for bulletin_id, _station_id in queued:
            if deliveries.claim_bulletin(self.engine, bulletin_id, expect=[BulletinStatus.QUEUED]):
                log.warning("Nhận thông báo khẩn %s / announcement %s accepted", bulletin_id, bulletin_id)
                self.air_bulletin(bulletin_id, emergency=True)
        if self._sms_busy and self._emergency_sms_waiting():
            self.sms_yield.set()  # the ordinary campaign being sent stops; the emergency goes first

    def _emergency_sms_waiting(self) -> bool:
        with self.app.read_session() as session:
            return session.exec(select(Campaign.id).join(ContentItem, Campaign.item_id == ContentItem.id).where(
                Campaign.status == deliveries.CampaignStatus.OPEN.value, ContentItem.priority == Priority.EMERGENCY.value,
                Campaign.id.in_(_campaigns_with_pending_rows()))).first() is not None

    # -------------------------------------------------------------------- sms
    def _sms_loop(self) -> None:
        while not self.stop_event.is_set():
            self.sms_wake.wait(self._sms_sleep_s())
            if self.stop_event.is_set():
                return
            self._sms_busy = True
            self.sms_wake.clear()
            try:
                while not self.sms_slots.empty():
                    schedule_id, slot_time = self.sms_slots.get_nowait()
                    self._guard(lambda s=schedule_id, t=slot_time: self.start_sms_slot(s, t))  # noqa: B023
                self.sms_yield.clear()
                self._guard(self._dispatch_if_open)
                if self.sms_yield.is_set():
                    self.sms_wake.set()  # go round again at once: the emergency first
            finally:
                self._sms_busy = False

    def _campaign_open(self) -> bool:
        with self.app.read_session() as session:
            return session.exec(select(Campaign.id).where(
                Campaign.status == deliveries.CampaignStatus.OPEN.value)).first() is not None

    def _dispatch_if_open(self) -> None:
        """Nothing open, nothing to send: the dispatcher (Twilio, phone numbers) loads at the first campaign."""
        if self._campaign_open():
            from ..sms.dispatcher import dispatch_due

            dispatch_due(self.app, now=self.clock, stop=self.stop_event, yield_to=self.sms_yield)

    def _sms_sleep_s(self) -> float | None:
        """The SMS thread sleeps until an open campaign's next attempt is due (``not_before``, a network
        wait, the end of quiet hours, an uncertain send to ask about: :func:`~..sms.campaigns.next_due_at`),
        or without a timeout when nothing waits; a slot, a poke (new campaigns) or a stop wakes it. A due
        moment already past after a pass is one the dispatcher declined (another process holds the dispatch
        lock, the provider did not answer): looked at again after ``sms_poll_seconds``."""
        try:
            if not self._campaign_open():
                return None
            from ..sms.campaigns import next_due_at
            from ..sms.dispatcher import RESOLVE_AFTER  # loaded already: a campaign is open

            with self.app.read_session() as session:
                due = next_due_at(session, self.config, self.clock(), resolve_after=RESOLVE_AFTER)
        except Exception as exc:  # a database error: look again soon
            log.error("Lỗi đọc chiến dịch / could not read the campaigns: %s", type(exc).__name__)
            return self.sms_poll_seconds
        if due is None:
            return None  # open, but nothing pending or uncertain (rows sent, awaiting their callbacks)
        wait = (due - self.clock()).total_seconds()
        return wait + _OVERSLEEP_S if wait > 0 else self.sms_poll_seconds

    def start_sms_slot(self, schedule_id: int, slot_time: datetime) -> int | None:
        """An SMS slot fell due: its bulletin (``sent`` or why not) and its campaign, in one transaction."""
        from sqlalchemy.exc import IntegrityError

        try:
            return self._start_sms_slot(schedule_id, slot_time)
        except IntegrityError:  # another daemon wrote this slot first (unique on schedule and slot time)
            return None

    def _start_sms_slot(self, schedule_id: int, slot_time: datetime) -> int | None:
        from ..deliveries import PlannedItem
        from ..sms.campaigns import create_campaign

        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            station = session.get(Station, schedule.station_id)
            if deliveries.find_slot_bulletin(session, schedule_id, slot_time) is not None:
                return None
            choices = self.bulletins.compose(session, schedule, station, slot_time)
            bulletin = deliveries.create_bulletin(
                session, station_id=station.id, slot_time=slot_time, status=BulletinStatus.RENDERING,
                planned=[PlannedItem(c.item_id, c.reason) for c in choices], schedule_id=schedule_id,
                channel=Channel.SMS, now=self.clock())
            if not choices:
                deliveries.skip_bulletin(session, bulletin, "không có tin SMS / no SMS content")
                return None
            group = session.get(ContactGroup, schedule.group_id)
            try:
                with session.begin_nested():
                    campaign = create_campaign(session, choices[0].item_id, group.name, schedule_id=schedule_id,
                                               bulletin_id=bulletin.id, config=self.config, now=self.clock())
            except BroadcasterError as exc:  # e.g. nobody reachable in the group: logged, not lost
                deliveries.sms_slot_failed(session, bulletin, str(exc))
                log.error("Lịch SMS %s không gửi được / SMS slot failed: %s", schedule_id, exc)
                return None
            deliveries.sms_slot_sent(session, bulletin, now=self.clock())
            log.info("Lịch SMS %s: chiến dịch %s, tin %s / SMS slot campaign", schedule_id, campaign.id,
                     choices[0].item_id)
            return campaign.id

    def _start_webhook(self) -> None:
        if not self.config.sms.status_callback_url:
            return
        from ..sms.webhook import make_webhook_server

        self._webhook = make_webhook_server(self.app, self.config.webhook.host, self.config.webhook.port)
        threading.Thread(target=self._webhook.serve_forever, name="webhook", daemon=True).start()
        log.info("Webhook nghe tại / listening on %s:%s", self.config.webhook.host, self.config.webhook.port)

    def _start_web_console(self) -> None:
        """``[web] enabled``: the console in a thread of this process (its own thread pool)."""
        if not self.config.web.enabled:
            return
        from ..web.server import WebThread

        try:
            self._web_console = WebThread(self.app, self.config.web.host, self.config.web.port).start()
        except OSError as exc:  # the port is taken: the station still airs, without its console
            log.error("Không mở được trang quản lý web / web console not started (%s:%s): %s",
                      self.config.web.host, self.config.web.port, exc)
            return
        log.info("Trang quản lý web / web console at http://%s:%s/", self.config.web.host, self._web_console.port)

    def _stop_web_console(self) -> None:
        if self._web_console is not None:
            self._web_console.stop()
            self._web_console = None


def _campaigns_with_pending_rows():  # noqa: ANN202
    from ..models import Delivery

    return select(Delivery.campaign_id).where(Delivery.status == deliveries.DeliveryStatus.PENDING,
                                              Delivery.channel == Channel.SMS)
