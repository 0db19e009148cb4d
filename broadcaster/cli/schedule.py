"""``schedule``: when stations air bulletins and groups get SMS."""

from __future__ import annotations

from datetime import timedelta

import click

from .. import schedules
from ..models import Channel
from ..stations import get_station
from ..timeutil import local, parse_local_datetime, utcnow
from .common import BroadcasterGroup, echo_json, echo_table, get_app, json_option


@click.group("schedule", cls=BroadcasterGroup)
def schedule_group() -> None:
    """Lịch phát / broadcast schedules."""


@schedule_group.command("add")
@click.option("--station", "station_code", required=True, help="Mã đài / station code.")
@click.option("--channel", type=click.Choice([Channel.LOUDSPEAKER, Channel.SMS]), default=Channel.LOUDSPEAKER,
              show_default=True, help="Phát loa hay gửi SMS / loudspeaker or SMS.")
@click.option("--cron", default=None, help='Lặp lại, giờ địa phương / repeating, station time: "0 6,17 * * *".')
@click.option("--at", "at_text", default=None, help='Một lần / once: "2026-12-01 06:00" (giờ đài / station time).')
@click.option("--length", default="15m", show_default=True, help="Độ dài / length: 15m, 90s, 1h.")
@click.option("--group", "group_name", default=None, help="Nhóm nhận SMS / contact group (channel sms).")
@click.option("--topic", "topics", multiple=True, help="Chỉ các chủ đề này / only these topics (repeatable).")
@click.option("--name", default="", help="Tên lịch / a name.")
def schedule_add(station_code: str, channel: str, cron: str | None, at_text: str | None, length: str,
                 group_name: str | None, topics: tuple[str, ...], name: str) -> None:
    """Thêm lịch phát / add a schedule."""
    app = get_app()
    with app.session() as session:
        station = get_station(session, station_code)
        at = parse_local_datetime(at_text, station.timezone) if at_text else None
        schedule = schedules.add_schedule(
            session, station_code=station_code, channel=channel, cron=cron, at=at,
            length_s=schedules.parse_length(length), group_name=group_name, topic_codes=list(topics), name=name)
        upcoming = schedules.next_fire_time(schedule, station.timezone, utcnow())
        schedule_id = schedule.id
        warnings = []
        if upcoming is not None:
            from ..plans import period_warning, plans_of_topics
            from ..scheduling.composer import wanted_topic_ids

            wanted = wanted_topic_ids(session, schedule.topic_codes) or set()
            for plan in plans_of_topics(session, sorted(wanted)):
                warnings.append(period_warning(plan, local(upcoming, station.timezone).date()))
    when = local(upcoming, station.timezone).strftime("%Y-%m-%d %H:%M") if upcoming else "-"
    click.echo(f"Đã thêm lịch / schedule added: #{schedule_id}, lần tới / next: {when} ({station.timezone})")
    for warning in filter(None, warnings):
        click.echo(warning, err=True)


@schedule_group.command("list")
@json_option
def schedule_list(as_json: bool) -> None:
    """Liệt kê lịch / list schedules."""
    app = get_app()
    now = utcnow()
    with app.session() as session:
        data = schedules.overview(session, now)
    if as_json:
        echo_json(data)
        return
    echo_table(["#", "Tên/name", "Đài/station", "Kênh/channel", "Lịch/when", "Độ dài/length", "Chủ đề/topics",
                "Lần tới/next"],
               ([d["id"], d["name"], d["station"], d["channel"],
                 d["cron"] or d["at"].strftime("%Y-%m-%d %H:%M"), f"{d['length_s'] // 60}m{d['length_s'] % 60:02d}s",
                 ",".join(d["topics"]), "tạm dừng/paused" if d["paused"] else
                 (d["next"].strftime("%Y-%m-%d %H:%M") if d["next"] else "-")] for d in data),
               title="Lịch phát / schedules", optional=[1, 5, 3])


@schedule_group.command("remove")
@click.argument("schedule_id", type=int)
def schedule_remove(schedule_id: int) -> None:
    """Xóa lịch / remove a schedule."""
    with get_app().session() as session:
        schedules.remove_schedule(session, schedule_id)
    click.echo(f"Đã xóa lịch / removed schedule #{schedule_id}")


@schedule_group.command("pause")
@click.argument("schedule_id", type=int)
def schedule_pause(schedule_id: int) -> None:
    """Tạm dừng lịch / pause a schedule."""
    with get_app().session() as session:
        schedules.set_paused(session, schedule_id, True)
    click.echo(f"Đã tạm dừng lịch / paused schedule #{schedule_id}")


@schedule_group.command("resume")
@click.argument("schedule_id", type=int)
def schedule_resume(schedule_id: int) -> None:
    """Chạy lại lịch / resume a schedule."""
    with get_app().session() as session:
        schedules.set_paused(session, schedule_id, False)
    click.echo(f"Đã chạy lại lịch / resumed schedule #{schedule_id}")


@schedule_group.command("preview")
@click.option("--days", type=int, default=7, show_default=True, help="Xem bao nhiêu ngày tới / days ahead.")
@json_option
def schedule_preview(days: int, as_json: bool) -> None:
    """Các lần phát tới và tin sẽ thật sự phát, kèm lý do / next slots, what will really air, and why.

    Bản tin đã dựng trước được hiện đúng như sẽ phát (tin bị rút được ghi rõ) /
    bulletins already rendered ahead are shown as they will air (withdrawn items marked).
    """
    from ..scheduling.bulletins import Bulletins

    app = get_app()
    now = utcnow()
    with app.read_session() as session:
        data = Bulletins(app).upcoming(session, now, now + timedelta(days=days))
    if as_json:
        echo_json(data)
        return
    labels = {"composed": "", "ready": " [đã dựng / rendered]", "rendering": " [đang dựng / rendering]",
              "stale": " [sẽ dựng lại / to re-render]"}
    for slot in data:
        click.echo(f"{slot['time']:%Y-%m-%d %H:%M} {slot['station']} #{slot['schedule']} ({slot['channel']})"
                   f"{labels.get(slot['bulletin'], ' [' + slot['bulletin'] + ']')}")
        for item in slot["items"]:
            mark = f" — SẼ BỎ / WILL NOT AIR: {item['dropped']}" if item["dropped"] else ""
            click.echo(f"    - [{item['id']}] {item['title']} ({item['topic'] or '-'}, ~{item['seconds']} s): "
                       f"{item['reason']}{mark}")
        if not slot["items"]:
            click.echo("    (không có tin / nothing to air)")
    if not data:
        click.echo("Không có lần phát nào / no slots in that window.")


COMMANDS = [schedule_group]
