"""Getting one bulletin on air and logging it: compose, render, play, record.

Used by the daemon for slots and announcements, and directly by
``broadcaster announce`` when no daemon runs. Every play writes its delivery
rows (status ``playing``) and commits *before* the audio starts, then updates
them after, so a crash or power cut leaves rows a restart marks interrupted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from ..app import App
from ..db import session_scope
from ..errors import BroadcasterError
from ..models import (
    Bulletin,
    Channel,
    ContentItem,
    Delivery,
    DeliveryStatus,
    Schedule,
    Station,
    Topic,
)
from ..timeutil import as_utc, utcnow
from .composer import Choice, Slot, compose

log = logging.getLogger("broadcaster.daemon")

READY = "ready"
RENDERING = "rendering"
STALE = "stale"  # a render-ahead that did not finish: render again at slot time
# Overhead of intro, ident and outro in a bulletin, for filling a slot.
BULLETIN_OVERHEAD_S = 15.0


class Airing:
    def __init__(self, app: App) -> None:
        self.app = app
        self.config = app.config
        self.engine = app.ready_engine()
        self._renderer = None
        self._renderer_lock = threading.Lock()
        self._station_locks: dict[int, threading.Lock] = defaultdict(threading.Lock)
        self._playing: dict[int, threading.Event] = {}
        self._playing_guard = threading.Lock()

    # ----------------------------------------------------------------- render
    @property
    def renderer(self):  # noqa: ANN201
        with self._renderer_lock:
            if self._renderer is None:
                from ..audio.render import Renderer

                self._renderer = Renderer(self.config)
            return self._renderer

    def compose(self, session: Session, schedule: Schedule, station: Station, slot_time: datetime) -> list[Choice]:
        from ..audio.render import estimate_item_seconds

        slot = Slot(station=station, channel=schedule.channel, at=slot_time, length_s=schedule.length_s,
                    topic_codes=tuple(schedule.topic_codes))
        return compose(session, slot, seconds_of=lambda item: estimate_item_seconds(session, item, self.renderer),
                       repeat_gap=timedelta(hours=self.config.schedule.repeat_gap_hours),
                       overhead_s=BULLETIN_OVERHEAD_S)

    def _render_job(self, session: Session, item_ids: list[int], station: Station, slot_time: datetime,
                    label: str):
        """Read what a render needs inside the (short) session; render it later with ``_render``."""
        items = [session.get(ContentItem, item_id) for item_id in item_ids]
        stamp = as_utc(slot_time).strftime("%Y%m%dT%H%M%SZ")
        suffix = "mp3" if self.config.audio.format == "mp3" else "wav"
        output = self.config.output_dir / f"{station.code}_{stamp}_{label}.{suffix}"
        return self.renderer.prepare(session, items, station), output, f"Bản tin {station.name} {stamp}"

    def _render(self, work):  # noqa: ANN001, ANN202
        """Render outside any transaction: a slow TTS service must never hold the database lock."""
        job, output, title = work
        return self.renderer.render(job, output=output, title=title)

    def prepare(self, schedule_id: int, slot_time: datetime) -> int | None:
        """Compose and render a slot's bulletin ahead of time.

        The row is claimed as ``rendering`` (and committed) before the render, so
        a slot that fires meanwhile waits for it instead of rendering twice.
        """
        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            station = session.get(Station, schedule.station_id)
            if session.exec(select(Bulletin).where(Bulletin.schedule_id == schedule_id,
                                                   Bulletin.slot_time == slot_time)).first():
                return None
            choices = self.compose(session, schedule, station, slot_time)
            if not choices:
                return None
            bulletin = Bulletin(schedule_id=schedule_id, station_id=station.id, channel=Channel.LOUDSPEAKER,
                                kind="slot", slot_time=slot_time, status=RENDERING, reason=_reasons(choices))
            session.add(bulletin)
            session.flush()
            bulletin_id = bulletin.id
            work = self._render_job(session, [c.item_id for c in choices], station, slot_time, f"slot{schedule_id}")
        try:
            result = self._render(work)
            with session_scope(self.engine) as session:
                bulletin = session.get(Bulletin, bulletin_id)
                bulletin.status, bulletin.audio_path, bulletin.duration_s = READY, str(result.path), result.duration_s
                session.add(bulletin)
        except BaseException:
            with session_scope(self.engine) as session:
                bulletin = session.get(Bulletin, bulletin_id)
                if bulletin is not None and bulletin.status == RENDERING:
                    bulletin.status = STALE
                    session.add(bulletin)
            raise
        log.info("Đã dựng trước bản tin lịch %s lúc %s (%.0f s) / rendered ahead", schedule_id,
                 slot_time.isoformat(), result.duration_s)
        return bulletin_id

    def _wait_while_rendering(self, schedule_id: int, slot_time: datetime, timeout_s: float = 900) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with session_scope(self.engine) as session:
                bulletin = session.exec(select(Bulletin).where(Bulletin.schedule_id == schedule_id,
                                                               Bulletin.slot_time == slot_time)).first()
                if bulletin is None or bulletin.status != RENDERING:
                    return
            time.sleep(0.1)

    # ------------------------------------------------------------------ slots
    def air_slot(self, schedule_id: int, station_id: int, slot_time: datetime) -> None:
        self._wait_while_rendering(schedule_id, slot_time)
        with self._station_locks[station_id]:
            with session_scope(self.engine) as session:
                schedule = session.get(Schedule, schedule_id)
                station = session.get(Station, station_id)
                bulletin = session.exec(select(Bulletin).where(Bulletin.schedule_id == schedule_id,
                                                               Bulletin.slot_time == slot_time)).first()
                if bulletin is not None and bulletin.status not in (READY, STALE):
                    log.info("Lịch %s lúc %s đã xử lý / slot already handled", schedule_id, slot_time)
                    return
                if bulletin is None:
                    bulletin = Bulletin(schedule_id=schedule_id, station_id=station_id, slot_time=slot_time,
                                        channel=Channel.LOUDSPEAKER, kind="slot", status=STALE)
                    session.add(bulletin)
                    session.flush()
                bulletin_id = bulletin.id
                work = None
                if not bulletin.audio_path or not Path(bulletin.audio_path).exists():
                    choices = self.compose(session, schedule, station, slot_time)
                    if not choices:
                        bulletin.status = DeliveryStatus.SKIPPED
                        bulletin.reason = "không có tin phù hợp / no content for this slot"
                        session.add(bulletin)
                        log.warning("Lịch %s: không có tin để phát / nothing to air", schedule_id)
                        return
                    bulletin.reason = _reasons(choices)
                    session.add(bulletin)
                    work = self._render_job(session, [c.item_id for c in choices], station, slot_time,
                                            f"slot{schedule_id}")
            if work is not None:
                try:
                    result = self._render(work)
                except Exception as exc:
                    with session_scope(self.engine) as session:
                        bulletin = session.get(Bulletin, bulletin_id)
                        bulletin.status, bulletin.reason = DeliveryStatus.FAILED, f"dựng bản tin lỗi / render failed: {exc}"
                        session.add(bulletin)
                    log.error("Lịch %s: dựng bản tin lỗi / render failed: %s", schedule_id, exc)
                    return
                with session_scope(self.engine) as session:
                    bulletin = session.get(Bulletin, bulletin_id)
                    bulletin.audio_path, bulletin.duration_s = str(result.path), result.duration_s
                    bulletin.status = READY
                    session.add(bulletin)
            self.play_bulletin(bulletin_id)

    def record_missed(self, session: Session, schedule: Schedule, station: Station, slot_time: datetime,
                      reason: str) -> None:
        """A slot that never aired: a missed bulletin, and a missed delivery per item it would have carried."""
        bulletin = session.exec(select(Bulletin).where(Bulletin.schedule_id == schedule.id,
                                                       Bulletin.slot_time == slot_time)).first()
        if bulletin is not None and bulletin.status not in (READY, STALE, RENDERING):
            return
        bulletin = bulletin or Bulletin(schedule_id=schedule.id, station_id=station.id, slot_time=slot_time,
                                        channel=schedule.channel, kind="slot")
        bulletin.status, bulletin.reason = DeliveryStatus.MISSED, reason
        session.add(bulletin)
        session.flush()
        item_ids = _manifest_item_ids(bulletin.audio_path) if bulletin.audio_path else []
        topics = _item_topics(session, item_ids)
        for item_id in item_ids:
            topic_id, plan_id = topics.get(item_id, (None, None))
            session.add(Delivery(channel=schedule.channel, status=DeliveryStatus.MISSED, item_id=item_id,
                                 topic_id=topic_id, plan_id=plan_id, station_id=station.id, bulletin_id=bulletin.id,
                                 scheduled_for=slot_time, error_message=reason))
        log.warning("Lịch %s lúc %s bị lỡ: %s / slot missed", schedule.id, slot_time.isoformat(), reason)

    # ------------------------------------------------------------------- play
    def play_bulletin(self, bulletin_id: int) -> Bulletin:
        """Write deliveries as playing, play, then record what really went out."""
        from ..audio.players import PlayerError, make_player

        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            station = session.get(Station, bulletin.station_id)
            manifest = json.loads(Path(bulletin.audio_path).with_suffix(".json").read_text(encoding="utf-8"))
            timeline = manifest.get("timeline", [])
            item_ids = list(dict.fromkeys(e["item_id"] for e in timeline if e.get("item_id") is not None))
            topics = _item_topics(session, item_ids)
            bulletin.status = DeliveryStatus.PLAYING
            session.add(bulletin)
            deliveries = {}
            for item_id in item_ids:
                topic_id, plan_id = topics.get(item_id, (None, None))
                delivery = Delivery(channel=Channel.LOUDSPEAKER, status=DeliveryStatus.PLAYING, item_id=item_id,
                                    topic_id=topic_id, plan_id=plan_id, station_id=station.id,
                                    bulletin_id=bulletin.id, scheduled_for=bulletin.slot_time,
                                    backend=station.player)
                session.add(delivery)
                deliveries[item_id] = delivery
            session.flush()
            delivery_ids = {item_id: d.id for item_id, d in deliveries.items()}
            audio_path, station_code, slot_time = Path(bulletin.audio_path), station.code, bulletin.slot_time
            player = make_player(station.player, station.player_options)

        stop = threading.Event()
        with self._playing_guard:
            self._playing[bulletin.station_id] = stop
        started = utcnow()
        try:
            result = player.play(audio_path, station_code=station_code, stop_event=stop)
            error = None
        except (PlayerError, OSError, ValueError) as exc:
            result, error = None, str(exc)
        finally:
            with self._playing_guard:
                self._playing.pop(bulletin.station_id, None)
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            if result is None:
                bulletin.status, bulletin.reason = DeliveryStatus.FAILED, error or ""
                bulletin.started_at, bulletin.ended_at = started, utcnow()
                for delivery_id in delivery_ids.values():
                    delivery = session.get(Delivery, delivery_id)
                    delivery.status, delivery.error_message, delivery.updated_at = (
                        DeliveryStatus.FAILED, error, utcnow())
                    session.add(delivery)
                session.add(bulletin)
                log.error("Phát bản tin %s lỗi / play failed: %s", bulletin_id, error)
                return bulletin
            late_s = max(0.0, (as_utc(result.started_at) - as_utc(slot_time)).total_seconds())
            bulletin.started_at, bulletin.ended_at = result.started_at, result.ended_at
            bulletin.late_s = round(late_s, 3)
            bulletin.status = DeliveryStatus.INTERRUPTED if result.interrupted else DeliveryStatus.PLAYED
            on_air = result.duration_s
            for item_id, delivery_id in delivery_ids.items():
                readings = [e for e in timeline if e.get("item_id") == item_id]
                first = min(e["start_s"] for e in readings)
                end = max(e["start_s"] + e["duration_s"] for e in readings)
                seconds = sum(max(0.0, min(e["duration_s"], on_air - e["start_s"])) for e in readings)
                delivery = session.get(Delivery, delivery_id)
                complete = not result.interrupted or end <= on_air + 0.05
                delivery.status = DeliveryStatus.PLAYED if complete else DeliveryStatus.INTERRUPTED
                delivery.started_at = as_utc(result.started_at) + timedelta(seconds=first)
                delivery.ended_at = as_utc(result.started_at) + timedelta(seconds=min(end, on_air))
                delivery.duration_s = round(seconds, 3)
                delivery.late_s = bulletin.late_s
                delivery.updated_at = utcnow()
                if not complete:
                    delivery.error_message = "bị ngắt / interrupted"
                session.add(delivery)
            session.add(bulletin)
            log.info("Đã phát bản tin %s tại %s: %.1f s, trễ %.2f s%s / aired", bulletin_id, station_code,
                     on_air, late_s, " (bị ngắt / interrupted)" if result.interrupted else "")
            return bulletin

    def interrupt(self, station_id: int) -> bool:
        with self._playing_guard:
            stop = self._playing.get(station_id)
        if stop is not None:
            stop.set()
            return True
        return False

    def interrupt_all(self, reason: str) -> None:
        with self._playing_guard:
            events = list(self._playing.values())
        for stop in events:
            log.warning("Ngắt phát / interrupting: %s", reason)
            stop.set()

    # ----------------------------------------------------------- announcements
    def take_announcements(self) -> None:
        """Air announcements queued by ``broadcaster announce`` (emergency: they interrupt)."""
        with session_scope(self.engine) as session:
            queued = session.exec(select(Bulletin).where(Bulletin.kind == "announcement",
                                                         Bulletin.status == DeliveryStatus.PENDING)
                                  .order_by(Bulletin.id)).all()
            for bulletin in queued:
                bulletin.status = RENDERING
                session.add(bulletin)
            work = [(b.id, b.station_id) for b in queued]
        for bulletin_id, station_id in work:
            threading.Thread(target=self.air_announcement, args=(bulletin_id, station_id),
                             name=f"announce-{bulletin_id}", daemon=True).start()

    def air_announcement(self, bulletin_id: int, station_id: int) -> Bulletin:
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            station = session.get(Station, station_id)
            item_id = json.loads(bulletin.reason or "{}").get("item_id")
            work = self._render_job(session, [item_id], station, bulletin.slot_time, f"announce{bulletin_id}")
        result = self._render(work)
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            bulletin.audio_path, bulletin.duration_s, bulletin.status = str(result.path), result.duration_s, READY
            session.add(bulletin)
        if self.interrupt(station_id):
            log.warning("Thông báo khẩn ngắt bản tin đang phát / announcement interrupts the bulletin")
        with self._station_locks[station_id]:
            return self.play_bulletin(bulletin_id)

    # -------------------------------------------------------------------- sms
    def start_sms_slot(self, schedule_id: int, slot_time: datetime) -> int | None:
        from ..sms.campaigns import create_campaign

        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            station = session.get(Station, schedule.station_id)
            if session.exec(select(Bulletin).where(Bulletin.schedule_id == schedule_id,
                                                   Bulletin.slot_time == slot_time)).first():
                return None
            choices = self.compose(session, schedule, station, slot_time)
            bulletin = Bulletin(schedule_id=schedule_id, station_id=station.id, channel=Channel.SMS, kind="slot",
                                slot_time=slot_time, status=DeliveryStatus.SENT if choices else DeliveryStatus.SKIPPED,
                                reason=_reasons(choices) if choices else "không có tin SMS / no SMS content",
                                started_at=utcnow())
            session.add(bulletin)
            session.flush()
            if not choices:
                return None
            from ..models import ContactGroup

            group = session.get(ContactGroup, schedule.group_id)
            try:
                with session.begin_nested():
                    campaign = create_campaign(session, choices[0].item_id, group.name, schedule_id=schedule_id,
                                               bulletin_id=bulletin.id, config=self.config)
            except BroadcasterError as exc:  # e.g. nobody reachable in the group: the slot is logged, not lost
                bulletin.status, bulletin.reason = DeliveryStatus.FAILED, str(exc)
                session.add(bulletin)
                log.error("Lịch SMS %s không gửi được / SMS slot failed: %s", schedule_id, exc)
                return None
            log.info("Lịch SMS %s: chiến dịch %s, tin %s / SMS slot campaign", schedule_id, campaign.id,
                     choices[0].item_id)
            return campaign.id


def _reasons(choices: list[Choice]) -> str:
    return json.dumps([{"item_id": c.item_id, "reason": c.reason} for c in choices], ensure_ascii=False)


def _manifest_item_ids(audio_path: str) -> list[int]:
    try:
        manifest = json.loads(Path(audio_path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(dict.fromkeys(e["item_id"] for e in manifest.get("timeline", []) if e.get("item_id") is not None))


def _item_topics(session: Session, item_ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
    found = {}
    for item_id in item_ids:
        item = session.get(ContentItem, item_id)
        topic = session.get(Topic, item.topic_id) if item and item.topic_id else None
        found[item_id] = (topic.id if topic else None, topic.plan_id if topic else None)
    return found
