"""``daemon``, ``status`` and ``announce``: the running station."""

from __future__ import annotations

import time

import click
from sqlmodel import select

from .. import schedules
from ..announcements import create_announcement
from ..models import Bulletin, Delivery, DeliveryStatus, Station
from ..scheduling.daemon import Daemon, read_status
from ..timeutil import local, utcnow
from .common import echo_json, get_app, json_option


@click.command("daemon")
def daemon_command() -> None:
    """Chạy chương trình chạy nền (daemon) trong cửa sổ này; Ctrl-C để dừng / run the daemon here.

    Daemon là chương trình chạy nền: phát bản tin đúng giờ, gửi SMS, ghi nhật ký. Trên máy xã nó
    thường chạy bằng systemd (docs/commune-pc.md) / the daemon airs bulletins on time, sends SMS and
    logs every delivery; on a commune PC systemd usually runs it.
    """
    import logging
    import sys

    from ..logsetup import stderr_formatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stderr_formatter())  # journald-friendly under systemd
    logger = logging.getLogger("broadcaster")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    Daemon(get_app()).run()


@click.command("status")
@json_option
def status_command(as_json: bool) -> None:
    """Daemon có chạy không, các lần phát tới, lần phát gần nhất / daemon, next slots, last deliveries."""
    from ..phones import mask_phone

    app = get_app()
    state = read_status(app)
    now = utcnow()
    upcoming = []
    with app.read_session() as session:
        for schedule in schedules.list_schedules(session, include_paused=False):
            station = session.get(Station, schedule.station_id)
            moment = schedules.next_fire_time(schedule, station.timezone, now)
            if moment:
                upcoming.append((moment, schedule, station))
        upcoming.sort(key=lambda row: row[0])
        recent = session.exec(select(Delivery).order_by(Delivery.id.desc()).limit(10)).all()
        recent_bulletins = session.exec(select(Bulletin).where(Bulletin.status.in_(
            [DeliveryStatus.MISSED, DeliveryStatus.FAILED])).order_by(Bulletin.id.desc()).limit(5)).all()
    tz = app.config.broadcaster.timezone
    data = {
        "daemon": {"alive": state.alive, "pid": state.pid, "host": state.host,
                   "heartbeat_at": state.heartbeat_at, "started_at": state.started_at},
        "next": [{"time": local(m, st.timezone), "schedule": s.id, "station": st.code, "channel": s.channel}
                 for m, s, st in upcoming[:10]],
        "last_deliveries": [{"id": d.id, "channel": d.channel, "status": d.status, "item": d.item_id,
                             "recipient": mask_phone(d.recipient) if d.recipient else None,
                             "at": d.started_at or d.updated_at} for d in recent],
        "problems": [{"bulletin": b.id, "status": b.status, "slot_time": b.slot_time, "reason": b.reason}
                     for b in recent_bulletins],
    }
    if as_json:
        echo_json(data)
        return
    if state.alive:
        click.echo(f"Daemon: ĐANG CHẠY / running (pid {state.pid} @ {state.host}, "
                   f"tín hiệu gần nhất / heartbeat {local(state.heartbeat_at, tz):%H:%M:%S})")
    else:
        last = f", lần cuối / last seen {local(state.heartbeat_at, tz):%Y-%m-%d %H:%M}" if state.heartbeat_at else ""
        click.echo(f"Daemon: KHÔNG CHẠY / not running{last}")
    click.echo("Lần phát tới / next slots:")
    for row in data["next"] or [None]:
        click.echo(f"  {row['time']:%Y-%m-%d %H:%M} #{row['schedule']} {row['station']} {row['channel']}"
                   if row else "  (không có / none)")
    click.echo("Giao nhận gần nhất / last deliveries:")
    for row in data["last_deliveries"] or [None]:
        if row is None:
            click.echo("  (không có / none)")
            continue
        at = local(row["at"], tz).strftime("%Y-%m-%d %H:%M:%S") if row["at"] else ""
        click.echo(f"  #{row['id']} {at} {row['channel']} {row['status']} tin/item {row['item'] or '-'}"
                   f"{' ' + row['recipient'] if row['recipient'] else ''}")
    for row in data["problems"]:
        click.echo(f"  ! bản tin/bulletin #{row['bulletin']} {row['status']}: {row['reason']}")


@click.command("announce")
@click.option("--text", required=True, help="Nội dung thông báo / announcement text.")
@click.option("--station", "stations", multiple=True, help="Đài / station (mặc định: tất cả / default: all).")
@click.option("--sms-group", default=None, help="Gửi SMS tới nhóm này / also SMS this group.")
@click.option("--title", default=None, help="Tiêu đề ghi vào nhật ký / title shown in the log.")
@click.option("--topic", default=None, help="Chủ đề / topic code.")
@click.option("--repeat", type=int, default=None, help="Số lần đọc / times to read (mặc định/default 2).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Chờ phát xong / wait until aired (when a daemon runs).")
def announce_command(text: str, stations: tuple[str, ...], sms_group: str | None, title: str | None,
                     topic: str | None, repeat: int | None, wait: bool) -> None:
    """Phát thông báo khẩn ngay / air an emergency announcement now."""
    app = get_app()
    if not stations:
        with app.session() as session:
            stations = tuple(s.code for s in session.exec(select(Station).order_by(Station.code)).all())
    state = read_status(app)
    announcement = create_announcement(app, text=text, station_codes=list(stations), sms_group=sms_group,
                                       title=title, topic_code=topic, repeat=repeat)
    if state.alive:
        click.echo(f"Đã chuyển cho daemon (pid {state.pid}) / queued to the running daemon")
        if wait and announcement.bulletin_ids:
            _wait_for(app, announcement.bulletin_ids)
    else:
        from ..scheduling.airing import Airing

        click.echo("Không có daemon, phát trực tiếp / no daemon running: airing directly")
        airing = Airing(app)
        with app.read_session() as session:
            queued = [(b, session.get(Bulletin, b).station_id) for b in announcement.bulletin_ids]
        for bulletin_id, station_id in queued:
            airing.air_announcement(bulletin_id, station_id)
        if announcement.campaign_id:
            from ..sms.dispatcher import dispatch_due

            dispatch_due(app)
    _print_outcome(app, announcement)


def _wait_for(app, bulletin_ids: list[int], timeout_s: float = 600) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    done = {DeliveryStatus.PLAYED, DeliveryStatus.FAILED, DeliveryStatus.INTERRUPTED}
    while time.monotonic() < deadline:
        with app.session() as session:
            statuses = [session.get(Bulletin, b).status for b in bulletin_ids]
        if all(s in done for s in statuses):
            return
        time.sleep(0.5)


def _print_outcome(app, announcement) -> None:  # noqa: ANN001
    with app.read_session() as session:
        for bulletin_id in announcement.bulletin_ids:
            bulletin = session.get(Bulletin, bulletin_id)
            station = session.get(Station, bulletin.station_id)
            duration = f"{bulletin.duration_s:.1f} s" if bulletin.duration_s else ""
            click.echo(f"  {station.code}: {bulletin.status} {duration}")
    if announcement.campaign_id:
        click.echo(f"  SMS: chiến dịch / campaign #{announcement.campaign_id}")


COMMANDS = [daemon_command, status_command, announce_command]
