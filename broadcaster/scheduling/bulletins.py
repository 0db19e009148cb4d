"""The bridge between the log and the audio: compose a slot, render a bulletin, check it just before air.

Used by the daemon's threads and by ``broadcaster announce`` when no daemon
runs. It decides nothing about *when*; it answers *what*. In the daemon, the
audio work (renders, airtime estimates for composing) runs in its child
process (:mod:`.audio_worker`), which calls the same methods there:

- :meth:`Bulletins.plan_slot` composes a slot and writes its bulletin with
  what it carries (``BulletinItem`` rows) in one transaction, claimed
  ``rendering`` by this process;
- :meth:`Bulletins.render` makes the audio outside any transaction and records
  it (READY) — or records why not (STALE, to be tried again);
- :meth:`Bulletins.check_before_air` applies the operator's decisions at the
  moment of delivery: an item retired, un-approved, expired, moved off the
  loudspeaker channel or out of the slot's topics is dropped (and the
  bulletin rendered again without it); an item edited since the bulletin was
  composed is rendered again; a slot paused or removed is skipped. Each
  reason is written in the log (``BulletinItem.dropped``, ``Bulletin.reason``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from .. import deliveries
from ..app import App
from ..db import session_scope
from ..deliveries import BulletinStatus, PlannedItem
from ..models import Bulletin, Channel, ContentItem, Schedule, Station
from ..timeutil import as_utc, local, utcnow
from .composer import Choice, Slot, compose, item_fits, not_for_station, wanted_topic_ids

if TYPE_CHECKING:
    from .audio_worker import AudioWorker

log = logging.getLogger("broadcaster.daemon")

Clock = Callable[[], datetime]
# Overhead of intro, ident and outro in a bulletin, for filling a slot.
BULLETIN_OVERHEAD_S = 15.0


@dataclass(frozen=True)
class AirCheck:
    """What :meth:`Bulletins.check_before_air` decided."""

    verdict: str  # "air" | "render" (render again first) | "skip" (nothing left, or the slot is off)
    reason: str = ""


class Bulletins:
    def __init__(self, app: App, *, clock: Clock = utcnow, audio_worker: AudioWorker | None = None) -> None:
        """``audio_worker``: renders and airtime estimates run in that child process (the daemon's way,
        see :mod:`.audio_worker`); without one, in this process."""
        self.app = app
        self.config = app.config
        self.engine = app.ready_engine()
        self.clock = clock
        self.audio_worker = audio_worker
        self._lock = threading.Lock()
        self._renderers: dict[bool, object] = {}

    # ------------------------------------------------------------ renderers
    def renderer(self, *, emergency: bool = False):  # noqa: ANN201
        """One renderer per kind for the process' life; an emergency's speaks with local backends only."""
        with self._lock:
            if emergency not in self._renderers:
                from ..audio.render import Renderer

                self._renderers[emergency] = Renderer(self.config, local_only=emergency)
            return self._renderers[emergency]

    # -------------------------------------------------------------- compose
    def compose(self, session: Session, schedule: Schedule, station: Station, slot_time: datetime,
                exclude_bulletin_id: int | None = None) -> list[Choice]:
        slot = Slot(station=station, channel=schedule.channel, at=slot_time, length_s=schedule.length_s,
                    topic_codes=tuple(schedule.topic_codes), group_id=schedule.group_id)
        return compose(session, slot, seconds_of=lambda item: self._item_seconds(session, item),
                       repeat_gap=timedelta(hours=self.config.schedule.repeat_gap_hours),
                       overhead_s=BULLETIN_OVERHEAD_S, exclude_bulletin_id=exclude_bulletin_id)

    def plan_slot(self, schedule_id: int, slot_time: datetime) -> int | None:
        """Compose a loudspeaker slot and write its bulletin claimed ``rendering``; None if it already exists.

        A slot with nothing to carry is written ``skipped`` (and None returned), so it is in the log.
        """
        from sqlalchemy.exc import IntegrityError

        try:
            return self._plan_slot(schedule_id, as_utc(slot_time))
        except IntegrityError:  # another daemon wrote this slot first (unique on schedule and slot time)
            log.info("Lịch %s lúc %s đã có tiến trình khác soạn / slot composed by another process", schedule_id,
                     as_utc(slot_time).isoformat(timespec="seconds"))
            return None

    def _warm_audio(self) -> None:
        """Before a transaction that composes a loudspeaker slot: the audio child's start-up must not
        happen while this process holds the database's write lock."""
        if self.audio_worker is not None:
            self.audio_worker.warm()

    def _plan_slot(self, schedule_id: int, slot_time: datetime) -> int | None:
        self._warm_audio()
        with session_scope(self.engine) as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None or deliveries.find_slot_bulletin(session, schedule_id, slot_time) is not None:
                return None
            station = session.get(Station, schedule.station_id)
            choices = self.compose(session, schedule, station, slot_time)
            if not choices:
                bulletin = deliveries.create_bulletin(
                    session, station_id=station.id, slot_time=slot_time, status=BulletinStatus.SKIPPED,
                    planned=(), schedule_id=schedule_id, reason="không có tin phù hợp / no content for this slot",
                    now=self.clock())
                log.warning("Lịch %s lúc %s: không có tin để phát / nothing to air", schedule_id,
                            local(slot_time, station.timezone).strftime("%H:%M"))
                return None
            bulletin = deliveries.create_bulletin(
                session, station_id=station.id, slot_time=slot_time, status=BulletinStatus.RENDERING,
                planned=[PlannedItem(c.item_id, c.reason, c.seconds) for c in choices], schedule_id=schedule_id,
                claimed_by=deliveries.process_tag(), now=self.clock())
            return bulletin.id

    def recompose(self, bulletin_id: int) -> bool:
        """Compose a not-yet-aired slot again (its render was lost); False if it now carries nothing."""
        self._warm_audio()
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            schedule = session.get(Schedule, bulletin.schedule_id) if bulletin.schedule_id else None
            if schedule is None:
                return bool(deliveries.bulletin_items(session, bulletin_id))
            station = session.get(Station, bulletin.station_id)
            choices = self.compose(session, schedule, station, as_utc(bulletin.slot_time),
                                   exclude_bulletin_id=bulletin_id)
            deliveries.recompose(session, bulletin, [PlannedItem(c.item_id, c.reason, c.seconds) for c in choices])
            return bool(choices)

    def _item_seconds(self, session: Session, item: ContentItem) -> float:
        if self.audio_worker is not None:
            return self.audio_worker.call("estimate", item.id)
        return self.estimate_seconds(item.id, session)

    def estimate_seconds(self, item_id: int, session: Session | None = None) -> float:
        """Seconds an item takes on air (see ``estimate_item_seconds``); in its own read session if none."""
        from ..audio.render import estimate_item_seconds

        if session is None:
            with self.app.read_session() as own:
                return self.estimate_seconds(item_id, own)
        return estimate_item_seconds(session, session.get(ContentItem, item_id), self.renderer())

    # --------------------------------------------------------------- render
    def render(self, bulletin_id: int) -> bool:
        """Render a bulletin claimed ``rendering`` by the caller; True when READY, False when it must wait.

        The session is closed during the render: a slow TTS service never holds
        the database. A failure (the disk is full, no backend can speak, the
        audio child died or did not answer in time) is logged in one line and
        leaves the bulletin STALE to be tried again.
        """
        if self.audio_worker is None:
            return self.render_here(bulletin_id, self.clock())
        from .audio_worker import AudioWorkerError, deadline_s

        with self.app.read_session() as session:
            emergency = session.get(Bulletin, bulletin_id).kind == "announcement"
            air_s = sum(row.seconds or 0.0 for row in deliveries.bulletin_items(session, bulletin_id))
        try:
            return self.audio_worker.call("render", bulletin_id, self.clock(),
                                          deadline=deadline_s("render", air_s=air_s, emergency=emergency))
        except AudioWorkerError as exc:
            return self._failed(bulletin_id, exc)

    def render_here(self, bulletin_id: int, now: datetime) -> bool:
        """:meth:`render` in this process; ``now`` names the output's folder (the caller's clock)."""
        read_at = utcnow()
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            station = session.get(Station, bulletin.station_id)
            emergency = bulletin.kind == "announcement"
            rows = deliveries.bulletin_items(session, bulletin_id)
            items = [session.get(ContentItem, row.item_id) for row in rows]
            items = [item for item in items if item is not None]
            unreadable = self._unreadable_recordings(session, items, emergency)
            if unreadable:
                deliveries.drop_items(session, bulletin, unreadable)
                for item_id, why in unreadable.items():
                    log.error("Bản tin %s: bỏ tin %s, %s / item dropped", bulletin_id, item_id, why)
                items = [item for item in items if item.id not in unreadable]
            if not items:
                deliveries.move_bulletin(session, bulletin, BulletinStatus.SKIPPED,
                                         reason="không còn tin nào / nothing left to air")
                return False
            renderer = self.renderer(emergency=emergency)
            job = renderer.prepare(session, items, station)
            label = "khan" if emergency else f"lich{bulletin.schedule_id}"
            stem = f"{station.code}_b{bulletin_id}_{label}"
            slot_local = local(bulletin.slot_time, station.timezone)
            title = f"Bản tin {station.name} {slot_local:%d/%m/%Y %H:%M}"
        from ..audio.render import default_output_path

        try:
            output = default_output_path(self.config, stem, renderer.format, now, station.timezone)
            output.parent.mkdir(parents=True, exist_ok=True)
            # an emergency is encoded once and not measured again: the clips are mastered, seconds count
            result = renderer.render(job, output=output, title=title, check=not emergency)
        except Exception as exc:  # disk full, no voice...: logged, retried; never a stuck row
            return self._failed(bulletin_id, exc)
        deliveries.rendered(self.engine, bulletin_id, audio_path=str(result.path), duration_s=result.duration_s,
                            timeline=result.timeline, item_seconds=result.item_seconds, read_at=read_at)
        log.info("Đã dựng bản tin %s (%.0f s) / rendered", bulletin_id, result.duration_s)
        return True

    def _failed(self, bulletin_id: int, exc: BaseException) -> bool:
        reason = _one_line(exc)
        deliveries.render_failed(self.engine, bulletin_id, f"dựng bản tin lỗi / render failed: {reason}")
        log.error("Bản tin %s: dựng lỗi, sẽ thử lại / render failed, will retry: %s", bulletin_id, reason)
        return False

    def preview(self, session: Session, schedule: Schedule, station: Station,
                slot_time: datetime) -> tuple[str, list[dict]]:
        """What the slot will really air: its bulletin's items when already composed (with what the
        check before air will drop), else what the composer would choose now. Returns (source, items)."""
        from ..models import Topic

        bulletin = deliveries.find_slot_bulletin(session, schedule.id, slot_time)
        if bulletin is None or bulletin.status not in deliveries.BULLETIN_PLANNED:
            if bulletin is not None:
                return str(bulletin.status), []
            choices = self.compose(session, schedule, station, slot_time)
            return "composed", [{"id": c.item_id, "title": c.title, "topic": c.topic_code,
                                 "seconds": round(c.seconds), "reason": c.reason, "dropped": None}
                                for c in choices]
        wanted = wanted_topic_ids(session, schedule.topic_codes)
        items = []
        for row in deliveries.bulletin_items(session, bulletin.id, include_dropped=True):
            item = session.get(ContentItem, row.item_id) if row.item_id else None
            topic = session.get(Topic, item.topic_id) if item and item.topic_id else None
            drop = row.dropped or ("tin đã bị xóa / item removed" if item is None else
                                   item_fits(item, schedule.channel, as_utc(slot_time), wanted)
                                   or not_for_station(session, item.id, station.id))
            items.append({"id": row.item_id, "title": item.title if item else "", "topic": topic.code if topic
                          else None, "seconds": round(row.seconds or 0), "reason": row.reason, "dropped": drop})
        return str(bulletin.status), items

    def upcoming(self, session: Session, start: datetime, end: datetime) -> list[dict]:
        """Every slot of an active schedule firing in (start, end], soonest first, each with what it will
        really air (:meth:`preview`): what ``schedule preview`` and the web console show."""
        from ..schedules import fire_times, list_schedules

        slots = []
        for schedule in list_schedules(session, include_paused=False):
            station = session.get(Station, schedule.station_id)
            for slot_time in fire_times(schedule, station.timezone, start, end):
                source, items = self.preview(session, schedule, station, slot_time)
                slots.append({"schedule": schedule.id, "station": station.code, "channel": schedule.channel,
                              "time": local(slot_time, station.timezone), "utc": as_utc(slot_time),
                              "bulletin": source, "items": items})
        slots.sort(key=lambda slot: slot["utc"])
        return slots

    def _unreadable_recordings(self, session: Session, items: list[ContentItem],
                               emergency: bool) -> dict[int, str]:
        """Items whose stored recording cannot be read: dropped with the reason, the rest still airs."""
        from .. import content

        renderer = self.renderer(emergency=emergency)
        found: dict[int, str] = {}
        for item in items:
            for text in content.item_texts(session, item).values():
                if not text.audio_path:
                    continue
                path = renderer.recording_path(text.audio_path)
                try:
                    content.probe_duration(path)
                except ValueError as exc:
                    found[item.id] = f"không đọc được ghi âm {path.name} / recording unreadable: {exc}"
                    break
        return found

    # ------------------------------------------------------------- at air time
    def check_before_air(self, bulletin_id: int) -> AirCheck:
        """The operator's decisions, applied just before a READY bulletin airs (see the module doc)."""
        now = self.clock()
        with session_scope(self.engine) as session:
            bulletin = session.get(Bulletin, bulletin_id)
            if bulletin.status != BulletinStatus.READY:
                return AirCheck("render" if bulletin.status in (BulletinStatus.STALE, BulletinStatus.RENDERING)
                                else "skip", bulletin.status)
            rows = deliveries.bulletin_items(session, bulletin_id)
            drops: dict[int, str] = {}
            edited = False
            if bulletin.kind == "announcement":
                wanted = None
                if bulletin.valid_until and as_utc(bulletin.valid_until) < now:
                    reason = "thông báo đã hết hiệu lực / the announcement expired"
                    deliveries.mark_missed(session, station_id=bulletin.station_id, slot_time=bulletin.slot_time,
                                           reason=reason, kind=bulletin.kind, bulletin=bulletin)
                    return AirCheck("skip", reason)
            else:
                schedule = session.get(Schedule, bulletin.schedule_id) if bulletin.schedule_id else None
                if schedule is None or schedule.paused:
                    reason = "lịch đã bị xóa hoặc tạm dừng / the slot was removed or paused"
                    deliveries.skip_bulletin(session, bulletin, reason)
                    log.warning("Bản tin %s không phát: %s", bulletin_id, reason)
                    return AirCheck("skip", reason)
                wanted = wanted_topic_ids(session, schedule.topic_codes)
            for row in rows:
                item = session.get(ContentItem, row.item_id)
                if item is None:
                    drops[row.item_id] = "tin đã bị xóa / item removed"
                    continue
                if bulletin.kind == "announcement":
                    why = None if item.status != "retired" else "đã thôi dùng / retired"
                else:
                    why = item_fits(item, Channel.LOUDSPEAKER, as_utc(bulletin.slot_time), wanted) or \
                        not_for_station(session, item.id, bulletin.station_id)
                if why:
                    drops[row.item_id] = why
                elif bulletin.composed_at and item.updated_at and as_utc(item.updated_at) > as_utc(
                        bulletin.composed_at):
                    edited = True
            if drops:
                deliveries.drop_items(session, bulletin, drops)
                for item_id, why in drops.items():
                    log.warning("Bản tin %s: bỏ tin %s (%s) / item dropped at air time", bulletin_id, item_id, why)
                if len(drops) == len(rows):
                    reason = "mọi tin đã bị rút: " + "; ".join(sorted(set(drops.values())))
                    deliveries.skip_bulletin(session, bulletin, reason + " / every item was withdrawn")
                    return AirCheck("skip", reason)
                bulletin.reason = json.dumps({"dropped": {str(k): v for k, v in drops.items()}}, ensure_ascii=False)
                session.add(bulletin)
                return AirCheck("render", "tin bị rút / items withdrawn")
            if edited:
                deliveries.move_bulletin(session, bulletin, BulletinStatus.STALE,
                                         reason="tin đã được sửa sau khi dựng / an item was edited after rendering")
                return AirCheck("render", "tin đã sửa / item edited")
        return AirCheck("air")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]
