"""``station``: the commune's loudspeaker systems."""

from __future__ import annotations

from pathlib import Path

import click

from .. import stations
from .common import BroadcasterGroup, echo_changes, echo_json, echo_table, get_app, json_option


@click.group("station", cls=BroadcasterGroup)
def station_group() -> None:
    """Đài truyền thanh / stations."""


@station_group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Tên đài / station name.")
@click.option("--commune", default="", help="Xã / commune.")
@click.option("--timezone", default=None, help="Múi giờ / time zone (mặc định/default Asia/Ho_Chi_Minh).")
@click.option("--player", type=click.Choice(stations.PLAYER_KINDS), default="file", show_default=True,
              help="Cách đưa âm thanh ra loa / how audio reaches the speakers.")
@click.option("--drop-dir", type=click.Path(file_okay=False, path_type=Path),
              help="player=file: thư mục nhận tệp / folder the station software picks files up from.")
@click.option("--device-command", default=None,
              help="player=device: lệnh phát, {file} là tệp / play command, {file} is the file.")
@click.option("--url", default=None, help="player=icecast: icecast://source:PASSWORD@HOST:PORT/MOUNT")
@click.option("--listeners", type=int, default=None,
              help="Ước tính số người nghe được / estimated people in earshot.")
def station_add(code: str, name: str, commune: str, timezone: str | None, player: str, drop_dir: Path | None,
                device_command: str | None, url: str | None, listeners: int | None) -> None:
    """Thêm đài / add a station."""
    app = get_app()
    options = {}
    if drop_dir is None and player == "file":
        drop_dir = app.config.data_dir / "outbox" / code
    if drop_dir is not None:
        options["drop_dir"] = str(drop_dir.expanduser().resolve())
    if device_command:
        options["command"] = device_command
    if url:
        options["url"] = url
    with app.session() as session:
        station = stations.add_station(
            session, code=code, name=name, commune=commune,
            timezone=timezone or app.config.broadcaster.timezone, player=player,
            player_options=options, listeners=listeners,
        )
    click.echo(f"Đã thêm đài / station added: {station.code} ({station.name}, {station.player})")


@station_group.command("list")
@json_option
def station_list(as_json: bool) -> None:
    """Liệt kê đài / list stations."""
    with get_app().session() as session:
        rows = stations.list_stations(session)
        data = [
            {"code": s.code, "name": s.name, "commune": s.commune, "timezone": s.timezone,
             "player": s.player, "options": stations.public_options(s), "listeners": s.listeners}
            for s in rows
        ]
    if as_json:
        echo_json(data)
        return
    echo_table(["Mã/code", "Tên/name", "Xã/commune", "Múi giờ/tz", "Phát/player", "Tùy chọn/options",
                "Người nghe/listeners"],
               ([d["code"], d["name"], d["commune"], d["timezone"], d["player"],
                 " ".join(f"{k}={v}" for k, v in d["options"].items()), d["listeners"]] for d in data),
               title="Đài truyền thanh / stations")


@station_group.command("edit")
@click.argument("code")
@click.option("--name", default=None, help="Tên đài mới / new station name.")
@click.option("--commune", default=None, help="Xã / commune.")
@click.option("--timezone", default=None, help="Múi giờ / time zone, e.g. Asia/Ho_Chi_Minh.")
@click.option("--player", type=click.Choice(stations.PLAYER_KINDS), default=None,
              help="Cách đưa âm thanh ra loa / how audio reaches the speakers.")
@click.option("--drop-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="player=file: thư mục nhận tệp / folder the station software picks files up from.")
@click.option("--device-command", default=None,
              help="player=device: lệnh phát, {file} là tệp ('' = bỏ) / play command ('' removes it).")
@click.option("--url", default=None, help="player=icecast: icecast://source:PASSWORD@HOST:PORT/MOUNT ('' = bỏ).")
@click.option("--listeners", type=int, default=None,
              help="Ước tính số người nghe được / estimated people in earshot.")
def station_edit(code: str, name: str | None, commune: str | None, timezone: str | None, player: str | None,
                 drop_dir: Path | None, device_command: str | None, url: str | None,
                 listeners: int | None) -> None:
    """Sửa thông tin đài / correct a station."""
    option_changes = {"drop_dir": str(drop_dir.expanduser().resolve()) if drop_dir else None,
                      "command": device_command, "url": url}
    with get_app().session() as session:
        _station, changes = stations.edit_station(
            session, code, dict(name=name, commune=commune, timezone=timezone, player=player, listeners=listeners),
            option_changes)
    if not changes:
        click.echo(f"Không có gì thay đổi / nothing changed: {code}")
        return
    click.echo(f"Đã sửa đài / station edited: {code}")
    echo_changes(changes)


@station_group.command("remove")
@click.argument("code")
@click.option("--force", is_flag=True, help="Xóa cả lịch phát của đài / also remove the station's schedules.")
def station_remove(code: str, force: bool) -> None:
    """Xóa đài chưa từng phát (đài đã có trong nhật ký thì giữ) / remove a station that never aired."""
    with get_app().session() as session:
        removed = stations.remove_station(session, code, force=force)
    extra = f", {removed.schedules} lịch phát/schedules" if removed.schedules else ""
    click.echo(f"Đã xóa đài / station removed: {removed.code}{extra}")


COMMANDS = [station_group]
