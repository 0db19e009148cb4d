"""``daemon``, ``status`` and ``announce``: the running station."""

from __future__ import annotations

import click

from ..timeutil import local, parse_local_datetime
from .common import cli_signer, echo_json, get_app, json_option


@click.command("daemon")
@click.option("--station", "stations", multiple=True, metavar="CODE",
              help="Chỉ phục vụ đài này (lặp lại được; mặc định: daemon.stations, hoặc mọi đài chưa có daemon) / "
                   "serve this station only (repeatable; default: daemon.stations, or every station no other "
                   "daemon holds).")
def daemon_command(stations: tuple[str, ...]) -> None:
    """Chạy chương trình chạy nền (daemon) trong cửa sổ này; Ctrl-C để dừng / run the daemon here.

    Daemon là chương trình chạy nền: phát bản tin đúng giờ, gửi SMS, ghi nhật ký. Trên máy xã nó
    thường chạy bằng systemd (docs/commune-pc.md) / the daemon airs bulletins on time, sends SMS and
    logs every delivery; on a commune PC systemd usually runs it. Many PCs can share one PostgreSQL,
    each serving its own stations (docs/province.md).
    """
    import logging
    import sys

    from ..logsetup import stderr_formatter
    from ..scheduling.daemon import Daemon

    app = get_app()
    handler = logging.StreamHandler(sys.stderr)
    # journald-friendly under systemd; station time at a terminal
    handler.setFormatter(stderr_formatter(app.config.broadcaster.timezone))
    logger = logging.getLogger("broadcaster")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    Daemon(app, stations=list(stations)).run()


@click.command("status")
@json_option
def status_command(as_json: bool) -> None:
    """Daemon có chạy không, các lần phát tới, lần phát gần nhất / daemon, next slots, last deliveries."""
    from ..scheduling.status import read_overview

    app = get_app()
    overview = read_overview(app)
    state = overview.daemon
    tz = app.config.broadcaster.timezone
    data = {
        "daemon": {"alive": state.alive, "responding": state.responding, "pid": state.pid, "host": state.host,
                   "heartbeat_at": state.heartbeat_at, "started_at": state.started_at},
        "next": [{"time": local(slot.time, slot.station_timezone), "schedule": slot.schedule_id,
                  "station": slot.station_code, "channel": slot.channel} for slot in overview.next_slots],
        "last_deliveries": [{**row, "recipient": _masked(row["recipient"])} for row in overview.last_deliveries],
        "problems": overview.problems,
        "stations": [{"station": h.code, "holder": h.holder, "lease": h.state, "expires_at": h.expires_at}
                     for h in state.stations],
    }
    if as_json:
        echo_json(data)
        return
    if state.alive:
        seen = f"{local(state.heartbeat_at, tz):%H:%M:%S}" if state.heartbeat_at else "-"
        note = "" if state.responding else " — CHƯA TRẢ LỜI / not responding"
        click.echo(f"Daemon: ĐANG CHẠY / running (pid {state.pid} @ {state.host}, "
                   f"lần báo gần nhất / last seen {seen}){note}")
    else:
        last = f", lần cuối / last seen {local(state.heartbeat_at, tz):%Y-%m-%d %H:%M}" if state.heartbeat_at else ""
        click.echo(f"Daemon: KHÔNG CHẠY / not running{last}")
    _print_holders(state.stations, tz)
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


def _masked(recipient: str | None) -> str | None:
    if not recipient:
        return None
    from ..phones import mask_phone  # phonenumbers loads only when there is a number to mask

    return mask_phone(recipient)


@click.command("announce")
@click.option("--text", required=True, help="Nội dung thông báo / announcement text.")
@click.option("--station", "stations", multiple=True, help="Đài / station (mặc định: tất cả / default: all).")
@click.option("--sms-group", default=None, help="Gửi SMS tới nhóm này (kể cả giờ yên tĩnh) / also SMS this "
                                                 "group (even in quiet hours).")
@click.option("--title", default=None, help="Tiêu đề / title (mặc định/default: Thông báo khẩn + giờ).")
@click.option("--topic", default=None, help="Chủ đề / topic code.")
@click.option("--repeat", type=int, default=None, help="Số lần đọc / times to read (mặc định/default 2).")
@click.option("--until", "until_text", metavar="'YYYY-MM-DD HH:MM'", default=None,
              help="Phát lại trong các bản tin sau đến giờ này / also carry it in later bulletins until then "
                   "(mặc định: chỉ phát một lần / default: aired once, on its own).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Chờ phát xong / wait until aired (when a daemon runs).")
def announce_command(text: str, stations: tuple[str, ...], sms_group: str | None, title: str | None,
                     topic: str | None, repeat: int | None, until_text: str | None, wait: bool) -> None:
    """Phát thông báo khẩn ngay, mỗi đài đúng một lần / air an emergency announcement now, once per station."""
    from ..scheduling.wakeup import GET_READY, poke

    app = get_app()
    poke(app.config, GET_READY)  # before the ORM loads: the daemon's audio child starts meanwhile

    from sqlmodel import select

    from ..announcements import announce
    from ..deliveries import BulletinStatus
    from ..models import Station

    until = parse_local_datetime(until_text, app.config.broadcaster.timezone) if until_text else None
    if not stations:
        with app.read_session() as session:
            stations = tuple(s.code for s in session.exec(select(Station).order_by(Station.code)).all())
    result = announce(app, text=text, station_codes=list(stations), sms_group=sms_group, title=title,
                      topic_code=topic, repeat=repeat, until=until, wait=wait, by=cli_signer(),
                      on_handover=lambda: click.echo("Đã chuyển cho chương trình chạy nền (daemon) / handed to "
                                                     "the running daemon"))
    if not result.handed_to_daemon:
        click.echo("Không có daemon, đã phát trực tiếp / no daemon running: aired directly")
    elif result.aired_here:
        click.echo(f"{len(result.aired_here)} đài không có daemon phục vụ, đã phát trực tiếp / "
                   f"{len(result.aired_here)} station(s) no daemon serves: aired directly")
    _print_outcome(app, result)
    failed = [b for b, status in result.statuses.items()
              if status in (BulletinStatus.FAILED, BulletinStatus.MISSED, BulletinStatus.SKIPPED)]
    if failed:
        raise click.ClickException(f"thông báo không phát được ở {len(failed)} đài / the announcement did not "
                                   f"air at {len(failed)} station(s)")


LEASE_LABELS = {"expired": "DAEMON ĐÃ CHẾT / daemon died (lease expired)",
                "released": "đã dừng / stopped", "none": "chưa có daemon / never served"}


def _print_holders(holders, tz: str) -> None:  # noqa: ANN001
    """Stations whose daemon died or that none serves, one per line; the served ones grouped by daemon
    (a district has hundreds)."""
    import textwrap

    if not holders:
        return
    click.echo("Đài và daemon phục vụ / stations and their daemon:")
    served: dict[str, list[str]] = {}
    order = {"expired": 0, "none": 1, "released": 2}
    for holder in sorted(holders, key=lambda h: (order.get(h.state, 3), h.code)):
        if holder.state == "alive":
            served.setdefault(holder.holder, []).append(holder.code)
            continue
        until = f" đến/until {local(holder.expires_at, tz):%H:%M:%S}" if holder.expires_at else ""
        who = f" {holder.holder}" if holder.holder else ""
        click.echo(f"  {holder.code}: {LEASE_LABELS[holder.state]}{who}{until}")
    for who, codes in sorted(served.items()):
        line = f"{who} phục vụ / serves {len(codes)} đài/stations: {', '.join(codes)}"
        click.echo(textwrap.fill(line, width=78, initial_indent="  ", subsequent_indent="      "))


def _print_outcome(app, announcement) -> None:  # noqa: ANN001
    from ..deliveries import BulletinStatus
    from ..models import Bulletin, Station

    labels = {BulletinStatus.PLAYED: "đã phát / aired", BulletinStatus.RENDERING: "daemon đã nhận / accepted",
              BulletinStatus.READY: "daemon đã nhận / accepted", BulletinStatus.PLAYING: "đang phát / on air"}
    with app.read_session() as session:
        for bulletin_id in announcement.bulletin_ids:
            bulletin = session.get(Bulletin, bulletin_id)
            station = session.get(Station, bulletin.station_id)
            duration = f" {bulletin.duration_s:.1f} s" if bulletin.duration_s else ""
            reason = f": {bulletin.reason}" if bulletin.status == BulletinStatus.FAILED and bulletin.reason else ""
            click.echo(f"  {station.code}: {labels.get(bulletin.status, bulletin.status)}{duration}{reason}")
    if announcement.campaign_id:
        click.echo(f"  SMS: chiến dịch / campaign #{announcement.campaign_id}")


COMMANDS = [daemon_command, status_command, announce_command]
