"""Emergency announcements: on the speakers at once, exactly once per station, and then they end.

:func:`announce` is what ``broadcaster announce`` does:

- it writes the announcement (an approved emergency item, one queued
  bulletin per station, the SMS campaign) in one transaction;
- a station served by a daemon — on this PC or another sharing the database,
  decided by the station's lease, never by a heartbeat that can lag — is
  handed over: that daemon claims the bulletin (a conditional update, so
  nobody else can) and airs it, preempting what is on air; the command waits
  until every such bulletin is claimed (``accepted``) and, with ``wait``, aired;
- a station no daemon serves: the command takes the station's lease itself
  for the moment it airs (so no daemon can start on it and air the same
  announcement), claims the bulletin the same way and airs it directly; the
  SMS is sent directly too when no daemon runs at all.

Either way an emergency never waits on a network speech backend (it is
spoken with espeak-ng) and is never held by quiet hours. Without ``until`` it
airs in its own bulletin only (the item's validity ends when it is written);
with ``until`` the composer also puts it in every later bulletin until then.
It never enters a slot filtered to other topics. A bulletin a crash left
unaired is aired by the next daemon while it is valid (``until``, or the
catch-up window), or logged missed.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import select

from . import deliveries, leases
from .app import App
from .deliveries import BulletinStatus, PlannedItem
from .errors import BroadcasterError, InputError
from .models import Bulletin, Channel, ContentItem, ContentText, ItemStatus, Priority, Station
from .timeutil import as_utc, local, utcnow

#: How long ``announce`` waits for a running daemon to claim the announcement.
ACCEPT_TIMEOUT_S = 15.0


@dataclass
class Announcement:
    item_id: int
    bulletin_ids: list[int] = field(default_factory=list)
    campaign_id: int | None = None
    handed_to_daemon: bool = False  # at least one station (or the SMS) went to a running daemon
    aired_here: list[int] = field(default_factory=list)  # bulletins of stations no daemon served
    statuses: dict[int, str] = field(default_factory=dict)  # bulletin -> status when announce returned


def create_announcement(app: App, *, text: str, station_codes: list[str], sms_group: str | None,
                        title: str | None = None, topic_code: str | None = None, repeat: int | None = None,
                        until: datetime | None = None, now: datetime | None = None,
                        by: str | None = None) -> Announcement:
    """Write the item, one queued bulletin per station and the SMS campaign, in one transaction.

    ``by``: who announced it (recorded on the item as its announcer and approver)."""
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        raise InputError("nội dung thông báo trống / announcement text is empty", field="text")
    now = as_utc(now) if now is not None else utcnow()
    if until is not None and as_utc(until) <= now:
        raise InputError("--until đã qua / --until is in the past", field="until")
    catch_up = timedelta(minutes=app.config.schedule.catch_up_minutes)
    channels = ([Channel.LOUDSPEAKER] if station_codes else []) + ([Channel.SMS] if sms_group else [])
    with app.session() as session:
        topic_id = None
        if topic_code:
            from .plans import find_topic

            topic_id = find_topic(session, topic_code).id
        stations = []
        for code in station_codes:
            station = session.exec(select(Station).where(Station.code == code)).first()
            if station is None:
                raise InputError(f"không có đài '{code}' / unknown station '{code}'", field="station")
            stations.append(station)
        default_title = f"Thông báo khẩn {local(now, app.config.broadcaster.timezone):%Y-%m-%d %H:%M}"  # station time
        item = ContentItem(title=title or default_title, topic_id=topic_id,
                           channels=channels, priority=Priority.EMERGENCY,
                           repeat=repeat or app.config.audio.emergency_repeat, status=ItemStatus.APPROVED,
                           valid_from=now, valid_until=as_utc(until) if until else now,
                           created_at=now, updated_at=now, approved_by=by, approved_at=now, announced_by=by,
                           announced_at=now)
        session.add(item)
        session.flush()
        session.add(ContentText(item_id=item.id, lang="vi", text=text))
        result = Announcement(item_id=item.id)
        for station in stations:
            bulletin = deliveries.create_bulletin(
                session, station_id=station.id, slot_time=now, status=BulletinStatus.QUEUED,
                planned=[PlannedItem(item.id, "thông báo khẩn / emergency announcement")], kind="announcement",
                valid_until=max(as_utc(until), now + catch_up) if until else now + catch_up, now=now)
            result.bulletin_ids.append(bulletin.id)
        if sms_group:
            from .sms.campaigns import create_campaign

            result.campaign_id = create_campaign(session, item.id, sms_group, config=app.config, now=now).id
    return result


def announce(app: App, *, text: str, station_codes: list[str], sms_group: str | None = None,
             title: str | None = None, topic_code: str | None = None, repeat: int | None = None,
             until: datetime | None = None, wait: bool = True, wait_s: float = 600.0,
             on_handover: Callable[[], None] | None = None, by: str | None = None) -> Announcement:
    """Create and air an announcement (see the module doc). Raises when it was neither aired nor accepted."""
    from .scheduling.status import read_status
    from .scheduling.wakeup import tell_daemons

    engine = app.ready_engine()
    daemons_run = read_status(app).alive
    with app.read_session() as session:
        station_ids = {code: sid for sid, code in session.exec(
            select(Station.id, Station.code).where(Station.code.in_(station_codes))).all()}
    instance = leases.new_instance_id(announce=True)
    keeper = _LeaseKeeper(app, instance)
    try:
        for code in station_codes:
            if code in station_ids and isinstance(leases.take(
                    engine, station_ids[code], instance=instance, holder=leases.holder_tag(instance),
                    now=utcnow(), seconds=keeper.seconds), leases.Taken):
                keeper.held.add(station_ids[code])
        keeper.start()
        result = create_announcement(app, text=text, station_codes=station_codes, sms_group=sms_group,
                                     title=title, topic_code=topic_code, repeat=repeat, until=until, by=by)
        with app.read_session() as session:
            here = {b for b in result.bulletin_ids if session.get(Bulletin, b).station_id in keeper.held}
        handed = [b for b in result.bulletin_ids if b not in here]
        send_sms_here = result.campaign_id is not None and not daemons_run
        result.handed_to_daemon = bool(handed) or (result.campaign_id is not None and not send_sms_here)
        if result.handed_to_daemon:
            tell_daemons(app)
            if on_handover is not None:
                on_handover()
        _air_directly(app, result, sorted(here), send_sms=send_sms_here)
    finally:
        keeper.stop()
    if handed:
        _wait_for(app, result, accepted_within=ACCEPT_TIMEOUT_S, aired_within=wait_s if wait else 0.0)
    return result


class _LeaseKeeper(threading.Thread):
    """Holds the leases of the stations ``announce`` airs itself, renewed until it is done, then released."""

    def __init__(self, app: App, instance: str) -> None:
        super().__init__(name="announce-lease", daemon=True)
        self.engine = app.ready_engine()
        self.instance = instance
        self.seconds = float(app.config.daemon.lease_seconds)
        self.every = float(app.config.daemon.heartbeat_seconds)
        self.held: set[int] = set()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            leases.renew(self.engine, self.instance, self.held, now=utcnow(), seconds=self.seconds)

    def stop(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join(timeout=5)
        leases.release(self.engine, self.instance, self.held, now=utcnow())


def _air_directly(app: App, result: Announcement, bulletin_ids: list[int], *, send_sms: bool) -> None:
    from .scheduling.bulletins import Bulletins
    from .scheduling.playout import air_bulletin

    bulletins = Bulletins(app)
    stop = threading.Event()
    for bulletin_id in bulletin_ids:
        if deliveries.claim_bulletin(app.ready_engine(), bulletin_id, expect=[BulletinStatus.QUEUED]):
            result.aired_here.append(bulletin_id)
            result.statuses[bulletin_id] = air_bulletin(bulletins, bulletin_id, stop=stop, render_here=True)
    if send_sms:
        from .sms.dispatcher import dispatch_campaign

        dispatch_campaign(app, result.campaign_id)
    _read_statuses(app, result)


def _read_statuses(app: App, result: Announcement) -> None:
    with app.read_session() as session:
        for bulletin_id in result.bulletin_ids:
            result.statuses[bulletin_id] = session.get(Bulletin, bulletin_id).status


def _wait_for(app: App, result: Announcement, *, accepted_within: float, aired_within: float) -> None:
    aired = {BulletinStatus.PLAYED, BulletinStatus.FAILED, BulletinStatus.INTERRUPTED, BulletinStatus.MISSED,
             BulletinStatus.SKIPPED}
    start = time.monotonic()
    while True:
        _read_statuses(app, result)
        statuses = set(result.statuses.values())
        if BulletinStatus.QUEUED not in statuses and (aired_within <= 0 or statuses <= aired):
            return
        waited = time.monotonic() - start
        if BulletinStatus.QUEUED in statuses and waited > accepted_within:
            raise BroadcasterError(
                f"Daemon chưa nhận thông báo sau {accepted_within:.0f} giây; thông báo đang chờ và sẽ phát khi "
                f"daemon nhận / the running daemon did not accept the announcement within {accepted_within:.0f} "
                "s: it is queued and airs when the daemon takes it")
        if waited > accepted_within + aired_within:
            return  # accepted: the daemon airs it; waiting longer is the operator's choice
        time.sleep(0.1)
