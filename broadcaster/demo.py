"""The demo: a commune's broadcast day in under two minutes, with no network.

It builds a workspace, imports an example plan, contacts and content, adds a
file-drop station, schedules two loudspeaker slots and an SMS slot a few
seconds apart, and runs the real daemon until they have fired.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from . import contacts as contacts_mod
from . import content as content_mod
from . import plans, schedules, stations
from .app import App, initialise
from .assets import EXAMPLES_DIR
from .config import render_config_toml
from .deliveries import BulletinStatus, DeliveryStatus
from .errors import BroadcasterError
from .models import Bulletin, Campaign, Delivery
from .timeutil import utcnow

EXAMPLES = EXAMPLES_DIR
PLAN_FILE = EXAMPLES / "plans" / "ninh-thuan-2023.toml"
CONTENT_FILE = EXAMPLES / "content" / "ninh-thuan-2023.toml"
CONTACTS_FILE = EXAMPLES / "contacts" / "phuoc-ha.csv"
PLAN_CODE = "911/KH-UBND"
MARKER = ".broadcaster-demo"

log = logging.getLogger("broadcaster.demo")


@dataclass
class DemoResult:
    workspace: Path
    app: App
    plan_code: str
    bulletins: list[Bulletin]
    sms_sent: int
    outbox: Path
    drop_dir: Path


def prepare_workspace(directory: Path) -> App:
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists() and any(directory.iterdir()):
            raise BroadcasterError(f"{directory}: thư mục đã có dữ liệu khác, chọn --dir khác / "
                                   "folder is not empty and not a demo workspace: choose another --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by `broadcaster demo`; safe to delete\n", encoding="utf-8")
    config_path = directory / "broadcaster.toml"
    # Its own SQLite file, whatever $BROADCASTER_DATABASE_URL names: fictitious residents stay out of it.
    database_url = f"sqlite:///{(directory / 'data' / 'broadcaster.db').as_posix()}"
    config = render_config_toml(directory / "data").replace('\nurl = ""', f'\nurl = "{database_url}"', 1)
    config_path.write_text(config, encoding="utf-8")
    initialise(config_path)
    text = config_path.read_text(encoding="utf-8")
    # Offline by design: espeak-ng speaks (gTTS would be tried first and fall back anyway), SMS go to the
    # outbox file, no quiet hours so the demo sends at any hour, quick heartbeats.
    for old, new in [('tts = ["gtts", "espeak"]', 'tts = ["espeak"]'), ('quiet_hours = "21:00-07:00"',
                     'quiet_hours = "off"'), ("heartbeat_seconds = 5", "heartbeat_seconds = 1"),
                     ("reload_seconds = 3", "reload_seconds = 1"), ("rate_per_second = 10.0", "rate_per_second = 50.0")]:
        text = text.replace(old, new)
    config_path.write_text(text, encoding="utf-8")
    return App.load(config_path)


def this_years_plan() -> plans.PlanFile:
    """The example plan moved to the current year, so today's deliveries count against its targets."""
    from datetime import date

    spec = plans.read_plan_file(PLAN_FILE)
    year = utcnow().year
    spec.plan.period_start, spec.plan.period_end = date(year, 1, 1), date(year, 12, 31)
    spec.plan.notes = (f"Bản demo: kỳ kế hoạch chuyển sang năm {year} / demo copy: period moved to {year}. "
                       + spec.plan.notes)
    return spec


def load_examples(app: App, drop_dir: Path) -> None:
    with app.session() as session:
        stations.add_station(session, code="PHUOC-HA", name="xã Phước Hà", commune="Phước Hà",
                             timezone=app.config.broadcaster.timezone, player="file",
                             player_options={"drop_dir": str(drop_dir)}, listeners=1200)
        plans.import_plan(session, this_years_plan(), source=str(PLAN_FILE))
    residents = contacts_mod.read_contacts_csv(CONTACTS_FILE)
    with app.session() as session:
        contacts_mod.import_contacts(session, residents.rows)
    items = content_mod.read_content_file(CONTENT_FILE, app.config.broadcaster.timezone)
    with content_mod.StagedFiles() as staged, app.session() as session:
        imported = content_mod.import_items(session, items, recordings_dir=app.config.recordings_dir,
                                            staged=staged, emergency_repeat=app.config.audio.emergency_repeat)
        # The storm warning is aired the way an operator would: `broadcaster announce`, mid-day.
        for item in imported:
            if item.priority == "emergency":
                item.status = "draft"
                session.add(item)


def storm_warning(app: App) -> str:
    from .models import ContentItem

    with app.read_session() as session:
        item = session.exec(select(ContentItem).where(ContentItem.priority == "emergency")).first()
        return content_mod.spoken_text(session, item) if item else "Thông báo khẩn của Ủy ban nhân dân xã."


def presynthesise(app: App) -> int:
    """Speak every approved loudspeaker item into the cache, as days of render-ahead would have.

    The demo compresses a day into seconds; without this its first bulletin
    would wait on text-to-speech, which the real 30-minute render-ahead hides.
    """
    from .audio.render import ItemSnapshot, Renderer
    from .models import ContentItem, ItemStatus

    renderer = Renderer(app.config)
    with app.session() as session:
        items = session.exec(select(ContentItem).where(ContentItem.status == ItemStatus.APPROVED)).all()
        snapshots = [ItemSnapshot.load(session, item) for item in items if "loudspeaker" in item.channels]
    for snapshot in snapshots:
        renderer.item_pieces(snapshot)
    return len(snapshots)


def schedule_day(app: App, start_in_s: float) -> list[int]:
    """Two loudspeaker slots and an SMS slot, seconds apart (standing for 06:00, 12:00 and 17:00)."""
    now = utcnow()
    with app.session() as session:
        ids = []
        for offset, channel, length, group, topics, name in [
            (start_in_s, "loudspeaker", 150, None, [], "Bản tin sáng / morning"),
            (start_in_s + 6, "sms", 60, "toan-xa", [], "SMS trưa / midday SMS"),
            (start_in_s + 12, "loudspeaker", 90, None, [f"{PLAN_CODE}:CDS", f"{PLAN_CODE}:TTHC"],
             "Bản tin chiều / evening"),
        ]:
            schedule = schedules.add_schedule(session, station_code="PHUOC-HA", channel=channel, cron=None,
                                              at=now + timedelta(seconds=offset), length_s=length,
                                              group_name=group, topic_codes=topics, name=name)
            ids.append(schedule.id)
    return ids


def _all_fired(app: App, schedule_ids: list[int]) -> bool:
    """Every slot and the announcement have aired or failed, and no SMS is still on its way."""
    final = (BulletinStatus.PLAYED, BulletinStatus.SENT, BulletinStatus.FAILED, BulletinStatus.MISSED,
             BulletinStatus.SKIPPED, BulletinStatus.INTERRUPTED)
    with app.read_session() as session:
        slots = session.exec(select(Bulletin).where(Bulletin.schedule_id.in_(schedule_ids))).all()
        announcements = session.exec(select(Bulletin).where(Bulletin.kind == "announcement")).all()
        open_sms = session.exec(select(Delivery.id).where(Delivery.channel == "sms", Delivery.status.in_(
            [DeliveryStatus.PENDING, DeliveryStatus.SENDING]))).first()
    return (len([b for b in slots if b.status in final]) == len(schedule_ids) and bool(announcements)
            and all(b.status in final for b in announcements) and open_sms is None)


def run_demo(directory: Path, *, start_in_s: float = 30.0, timeout_s: float = 240.0,
             progress=print) -> DemoResult:  # noqa: ANN001
    from .scheduling.daemon import Daemon

    app = prepare_workspace(directory)
    drop_dir = directory.resolve() / "loa-drop"
    progress(f"Không gian làm việc / workspace: {directory.resolve()}")
    load_examples(app, drop_dir)
    progress(f"Đã nhập kế hoạch {PLAN_CODE}, danh bạ và tin bài / imported plan, contacts and content")
    count = presynthesise(app)
    progress(f"Đã tổng hợp giọng đọc {count} tin (espeak-ng, ngoại tuyến) / synthesised {count} items offline")
    schedule_ids = schedule_day(app, start_in_s)
    progress(f"Đã lên {len(schedule_ids)} lịch cách nhau vài giây / scheduled {len(schedule_ids)} slots "
             "seconds apart; daemon chạy / daemon running...")
    daemon = Daemon(app)
    deadline = time.monotonic() + timeout_s

    announce_at = time.monotonic() + start_in_s + 8

    def watch() -> None:
        try:
            follow()
        except Exception:
            log.exception("demo watcher failed")
            daemon.stop()

    def follow() -> None:
        announced = False
        while not daemon.stop_event.is_set():
            if not announced and time.monotonic() >= announce_at:
                from .announcements import create_announcement

                queued = create_announcement(app, text=storm_warning(app), station_codes=["PHUOC-HA"],
                                             sms_group=None, title="Cảnh báo bão / storm warning", repeat=2)
                progress(f"Thông báo khẩn (bão) gửi tới daemon / storm warning queued: bulletin {queued.bulletin_ids}")
                announced = True
            if _all_fired(app, schedule_ids) or time.monotonic() > deadline:
                daemon.stop()
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="demo-watch", daemon=True).start()
    daemon.run()
    with app.session() as session:
        bulletins = list(session.exec(select(Bulletin).order_by(Bulletin.slot_time)).all())
        campaigns = session.exec(select(Campaign)).all()
        sent = session.exec(select(Delivery).where(Delivery.channel == "sms",
                                                   Delivery.status == DeliveryStatus.SENT)).all()
    if not _all_fired(app, schedule_ids):
        raise BroadcasterError("Demo hết giờ trước khi phát xong / demo timed out before every slot fired")
    log.info("demo done: %d bulletins, %d campaigns", len(bulletins), len(campaigns))
    return DemoResult(workspace=directory.resolve(), app=app, plan_code=PLAN_CODE, bulletins=bulletins,
                      sms_sent=len(sent), outbox=app.config.sms_outbox_path, drop_dir=drop_dir)
