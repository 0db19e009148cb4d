"""The daemon: fires slots on time, airs bulletins, sends SMS, logs everything.

- Jobs are rebuilt from the ``schedule`` table at start and whenever the CLI
  changes it (polled every ``daemon.reload_seconds``); APScheduler keeps them
  in memory only.
- Loudspeaker bulletins are composed and rendered ``render.ahead_minutes``
  before their slot, so air time never waits for text-to-speech.
- A slot missed while the daemon was down airs late if it is within
  ``schedule.catch_up_minutes``, otherwise it is logged as missed.
- One daemon per database: a lock file beside the database and a heartbeat
  row in it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from sqlmodel import select

from .. import schedules as schedules_mod
from ..app import App
from ..db import session_scope
from ..errors import BroadcasterError
from ..models import Bulletin, Channel, DaemonState, Delivery, DeliveryStatus, Schedule, Station
from ..timeutil import as_utc, utcnow, zone
from . import jobs
from .airing import READY, RENDERING, STALE, Airing

log = logging.getLogger("broadcaster.daemon")


@dataclass
class DaemonStatus:
    alive: bool
    pid: int | None
    host: str
    started_at: datetime | None
    heartbeat_at: datetime | None


def read_status(app: App, now: datetime | None = None) -> DaemonStatus:
    now = now or utcnow()
    with app.read_session() as session:
        state = session.get(DaemonState, 1)
    if state is None or state.heartbeat_at is None:
        return DaemonStatus(False, None, "", None, None)
    fresh = now - as_utc(state.heartbeat_at) < timedelta(seconds=3 * app.config.daemon.heartbeat_seconds + 2)
    alive = state.stopped_at is None and fresh
    return DaemonStatus(alive, state.pid, state.host, as_utc(state.started_at), as_utc(state.heartbeat_at))


class Daemon:
    def __init__(self, app: App, *, log_file: Path | None = None) -> None:
        self.app = app
        self.config = app.config
        self.engine = app.ready_engine()
        self.stop_event = threading.Event()
        self.airing = Airing(app)
        self.catch_up = timedelta(minutes=self.config.schedule.catch_up_minutes)
        self.ahead = timedelta(minutes=self.config.render.ahead_minutes)
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self.render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.sms_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sms")
        self._rendering: set[tuple[int, datetime]] = set()
        self._fingerprint: tuple | None = None
        self._lock_handle = None
        self._log_file = log_file or Path(self.config.daemon.log_file or self.config.data_dir / "daemon.log")
        self._log_handler: logging.Handler | None = None
        self._webhook = None

    # ---------------------------------------------------------------- lifecycle
    def run(self) -> None:
        """Run until SIGTERM/SIGINT (or ``stop()``)."""
        self._setup_logging()
        self.acquire()
        previous_heartbeat = self._start_state()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())
        try:
            jobs.bind(self)
            self.recover()
            self.sync_jobs(force=True)
            self.scheduler.start()
            self.catch_up_missed(previous_heartbeat)
            self.prepare_upcoming()
            self._start_webhook()
            log.info("Daemon đã chạy / daemon started (pid %s)", os.getpid())
            self._loop()
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def _loop(self) -> None:
        heartbeat_every = self.config.daemon.heartbeat_seconds
        reload_every = self.config.daemon.reload_seconds
        last_heartbeat = last_reload = time.monotonic()
        while not self.stop_event.wait(0.25):
            now = time.monotonic()
            self._guard(self.airing.take_announcements)
            if now - last_heartbeat >= heartbeat_every:
                self._guard(self.heartbeat)
                last_heartbeat = now
            if now - last_reload >= reload_every:
                self._guard(self.sync_jobs)
                self._guard(self.prepare_upcoming)
                self._guard(self._dispatch_sms)
                last_reload = now

    def _guard(self, func) -> None:  # noqa: ANN001
        try:
            func()
        except Exception:  # one bad tick must not stop the station
            log.exception("Lỗi trong vòng lặp / error in the daemon loop (%s)", getattr(func, "__name__", func))

    def shutdown(self) -> None:
        log.info("Đang dừng / stopping")
        self.airing.interrupt_all("daemon dừng / daemon stopped")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.render_pool.shutdown(wait=False, cancel_futures=True)
        self.sms_pool.shutdown(wait=True, cancel_futures=True)
        if self._webhook is not None:
            self._webhook.shutdown()
        with session_scope(self.engine) as session:
            state = session.get(DaemonState, 1)
            if state is not None and state.pid == os.getpid():
                state.stopped_at = utcnow()
                state.heartbeat_at = utcnow()
                session.add(state)
        jobs.bind(None)
        self.release()
        log.info("Đã dừng / stopped")
        if self._log_handler is not None:
            logging.getLogger("broadcaster").removeHandler(self._log_handler)
            self._log_handler.close()

    def _setup_logging(self) -> None:
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self._log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("broadcaster")
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        self._log_handler = handler

    # ------------------------------------------------------------------ locking
    def _lock_path(self) -> Path:
        return self.config.data_dir / "daemon.lock"

    def acquire(self) -> None:
        path = self._lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "?"
            handle.close()
            raise BroadcasterError(
                f"Daemon đã chạy với cơ sở dữ liệu này (pid {other}) / "
                f"a daemon already runs on this database (pid {other})"
            ) from None
        status = read_status(self.app)
        if status.alive and status.host != socket.gethostname():
            handle.close()
            raise BroadcasterError(
                f"Daemon đang chạy trên máy {status.host} (pid {status.pid}) / "
                f"a daemon runs on host {status.host} (pid {status.pid})"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    def release(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def _start_state(self) -> datetime | None:
        """Record this daemon's start; return when the previous one was last alive."""
        with session_scope(self.engine) as session:
            state = session.get(DaemonState, 1) or DaemonState(id=1)
            previous = as_utc(state.heartbeat_at)
            state.pid, state.host = os.getpid(), socket.gethostname()
            state.started_at = state.heartbeat_at = utcnow()
            state.stopped_at = None
            session.add(state)
        return previous

    def heartbeat(self) -> None:
        with session_scope(self.engine) as session:
            state = session.get(DaemonState, 1)
            state.heartbeat_at = utcnow()
            session.add(state)

    # ----------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Rows a crashed daemon left mid-air become interrupted; nothing is lost."""
        reason = "daemon dừng khi đang phát / daemon stopped while playing"
        with session_scope(self.engine) as session:
            for delivery in session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.PLAYING)).all():
                delivery.status = DeliveryStatus.INTERRUPTED
                delivery.error_message = reason
                delivery.updated_at = utcnow()
                session.add(delivery)
            for bulletin in session.exec(select(Bulletin).where(Bulletin.status.in_(
                    [DeliveryStatus.PLAYING, RENDERING]))).all():
                bulletin.status = DeliveryStatus.INTERRUPTED if bulletin.status == DeliveryStatus.PLAYING else STALE
                bulletin.reason = reason
                session.add(bulletin)

    def catch_up_missed(self, last_alive: datetime | None) -> None:
        """Slots that fell while no daemon ran: air the latest late if recent, log the rest missed."""
        now = utcnow()
        with session_scope(self.engine) as session:
            rows = session.exec(select(Schedule, Station).join(Station).where(Schedule.paused == False)).all()  # noqa: E712
            pending: list[tuple[int, datetime]] = []
            for schedule, station in rows:
                start = max(as_utc(schedule.created_at), last_alive or as_utc(schedule.created_at))
                due = list(schedules_mod.fire_times(schedule, station.timezone, start, now))
                done = {as_utc(b.slot_time) for b in session.exec(
                    select(Bulletin).where(Bulletin.schedule_id == schedule.id)).all()
                    if b.status not in (READY, STALE)}
                due = [t for t in due if t not in done]
                if not due:
                    continue
                latest = due[-1]
                catchable = now - latest <= self.catch_up
                for slot_time in due[:-1] if catchable else due:
                    self.airing.record_missed(session, schedule, station, slot_time,
                                              "máy tắt hoặc daemon không chạy / PC off or daemon not running")
                if catchable:
                    pending.append((schedule.id, latest))
        for schedule_id, slot_time in pending:
            log.warning("Phát bù lịch %s (%s) / catching up slot", schedule_id, slot_time.isoformat())
            self.scheduler.add_job(self._run_slot_at, args=[schedule_id, slot_time], id=f"catchup-{schedule_id}",
                                   replace_existing=True, misfire_grace_time=None)

    # ------------------------------------------------------------------- jobs
    def sync_jobs(self, force: bool = False) -> None:
        with session_scope(self.engine) as session:
            rows = session.exec(select(Schedule, Station).join(Station).order_by(Schedule.id)).all()
            fingerprint = tuple((s.id, s.cron, s.at, s.paused, s.updated_at, st.timezone) for s, st in rows)
            if fingerprint == self._fingerprint and not force:
                return
            self._fingerprint = fingerprint
            wanted = {}
            now = utcnow()
            for schedule, station in rows:
                if schedule.paused:
                    continue
                if schedule.cron:
                    trigger = schedules_mod.cron_trigger(schedule.cron, station.timezone)
                elif schedule.at and as_utc(schedule.at) > now:
                    trigger = DateTrigger(run_date=as_utc(schedule.at), timezone=zone(station.timezone))
                else:
                    continue
                wanted[f"slot-{schedule.id}"] = (schedule.id, trigger)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("slot-") and job.id not in wanted:
                job.remove()
                log.info("Bỏ lịch / schedule removed: %s", job.id)
        grace = int(self.catch_up.total_seconds())
        for job_id, (schedule_id, trigger) in wanted.items():
            self.scheduler.add_job(jobs.RUN_SLOT, trigger=trigger, args=[schedule_id], id=job_id,
                                   replace_existing=True, misfire_grace_time=grace, coalesce=True, max_instances=3)
        log.info("Đã nạp %d lịch / %d schedules loaded", len(wanted), len(wanted))

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED and event.job_id.startswith("slot-"):
            schedule_id = int(event.job_id.split("-", 1)[1])
            with session_scope(self.engine) as session:
                schedule = session.get(Schedule, schedule_id)
                station = schedule and session.get(Station, schedule.station_id)
                if schedule and station:
                    self.airing.record_missed(session, schedule, station, as_utc(event.scheduled_run_time),
                                              "quá thời gian phát bù / past the catch-up window")
        elif event.code == EVENT_JOB_ERROR:
            log.error("Lịch %s lỗi / job failed: %s", event.job_id, event.exception)

    def run_slot(self, schedule_id: int) -> None:
        """Called by APScheduler at the slot time."""
        now = utcnow()
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
        self._run_slot_at(schedule_id, recent[-1])

    def _run_slot_at(self, schedule_id: int, slot_time: datetime) -> None:
        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            station = session.get(Station, schedule.station_id)
            channel = schedule.channel
        if channel == Channel.SMS:
            campaign_id = self.airing.start_sms_slot(schedule_id, slot_time)
            if campaign_id is not None:
                self.sms_pool.submit(self._guard, self._dispatch_sms)
            return
        self.airing.air_slot(schedule_id, station.id, slot_time)

    def prepare_upcoming(self) -> None:
        """Render bulletins whose slot is within ``render.ahead_minutes``."""
        now = utcnow()
        with session_scope(self.engine) as session:
            rows = session.exec(select(Schedule, Station).join(Station).where(
                Schedule.paused == False, Schedule.channel == Channel.LOUDSPEAKER)).all()  # noqa: E712
            due = []
            for schedule, station in rows:
                slot_time = schedules_mod.next_fire_time(schedule, station.timezone, now)
                if slot_time is None or slot_time - now > self.ahead:
                    continue
                key = (schedule.id, slot_time)
                exists = session.exec(select(Bulletin.id).where(Bulletin.schedule_id == schedule.id,
                                                                Bulletin.slot_time == slot_time)).first()
                if not exists and key not in self._rendering:
                    due.append(key)
        for key in due:
            self._rendering.add(key)
            self.render_pool.submit(self._prepare, *key)

    def _prepare(self, schedule_id: int, slot_time: datetime) -> None:
        try:
            self.airing.prepare(schedule_id, slot_time)
        except Exception:
            log.exception("Không dựng trước được bản tin / could not render ahead (schedule %s)", schedule_id)
        finally:
            self._rendering.discard((schedule_id, slot_time))

    def _dispatch_sms(self) -> None:
        from ..sms.dispatcher import dispatch_due

        dispatch_due(self.app)

    def _start_webhook(self) -> None:
        if not self.config.sms.status_callback_url:
            return
        from ..sms.webhook import make_webhook_server

        self._webhook = make_webhook_server(self.app, self.config.webhook.host, self.config.webhook.port)
        threading.Thread(target=self._webhook.serve_forever, name="webhook", daemon=True).start()
        log.info("Webhook nghe tại / listening on %s:%s", self.config.webhook.host, self.config.webhook.port)
