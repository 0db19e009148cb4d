"""Stations: the commune's loudspeaker systems and how audio reaches them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from .errors import AlreadyExistsError, InputError, NotFoundError, did_you_mean
from .models import Bulletin, Delivery, Schedule, Station, Target
from .timeutil import zone

PLAYER_KINDS = ("file", "device", "icecast")
CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _check_station(*, code: str, name: str, timezone: str, player: str, options: dict,
                   listeners: int | None) -> None:
    if not CODE_RE.match(code):
        raise InputError("mã đài chỉ gồm chữ, số, '-', '_' / station code: letters, digits, '-', '_'",
                         field="code")
    if not name.strip():
        raise InputError("tên đài trống / station name is empty", field="name")
    if player not in PLAYER_KINDS:
        raise InputError(f"cách phát '{player}' không có; chọn / unknown player, choose: {', '.join(PLAYER_KINDS)}",
                         field="player")
    try:
        zone(timezone)
    except ValueError as exc:
        raise InputError(str(exc), field="timezone") from exc
    if listeners is not None and listeners < 0:
        raise InputError("số người nghe phải >= 0 / listeners must be >= 0", field="listeners")
    if player == "icecast" and not options.get("url"):
        raise InputError("đài icecast cần --url icecast://source:MẬT_KHẨU@máy:cổng/mount / "
                         "an icecast station needs --url", field="url")
    if player == "file" and not options.get("drop_dir"):
        raise InputError("đài 'file' cần --drop-dir / a file station needs --drop-dir", field="drop_dir")


def add_station(session: Session, *, code: str, name: str, commune: str = "", timezone: str,
                player: str = "file", player_options: dict | None = None,
                listeners: int | None = None) -> Station:
    options = dict(player_options or {})
    _check_station(code=code, name=name, timezone=timezone, player=player, options=options, listeners=listeners)
    if session.exec(select(Station).where(Station.code == code)).first():
        raise AlreadyExistsError(f"đài '{code}' đã có / station '{code}' already exists")
    station = Station(code=code, name=name.strip(), commune=commune, timezone=timezone, player=player,
                      player_options=options, listeners=listeners)
    session.add(station)
    session.flush()
    return station


STATION_FIELDS = ("name", "commune", "timezone", "player", "listeners")


def edit_station(session: Session, code: str, changes: dict, option_changes: dict | None = None
                 ) -> tuple[Station, list[tuple[str, object, object]]]:
    """Correct a station in the caller's transaction. Returns (station, [(field, before, after)]).

    ``changes`` holds fields of ``STATION_FIELDS`` (None: not given); ``option_changes`` player options
    (``drop_dir``, ``command``, ``url``; "" removes one). Secrets in a URL are masked in what is returned.
    """
    station = get_station(session, code)
    values = {key: getattr(station, key) for key in STATION_FIELDS}
    values.update({key: value for key, value in changes.items() if value is not None})
    options = dict(station.player_options)
    for key, value in (option_changes or {}).items():
        if value is None:
            continue
        if value == "":
            options.pop(key, None)
        else:
            options[key] = value
    values["name"] = str(values["name"]).strip()
    _check_station(code=station.code, name=values["name"], timezone=values["timezone"], player=values["player"],
                   options=options, listeners=values["listeners"])
    changed: list[tuple[str, object, object]] = [
        (key, getattr(station, key), values[key]) for key in STATION_FIELDS if getattr(station, key) != values[key]]
    before_shown, after_shown = public_options(station), _masked(options)
    for key in sorted(set(before_shown) | set(after_shown)):
        if before_shown.get(key) != after_shown.get(key):
            changed.append((key, before_shown.get(key), after_shown.get(key)))
    if changed:
        for key in STATION_FIELDS:
            setattr(station, key, values[key])
        station.player_options = options
        session.add(station)
        session.flush()
    return station, changed


@dataclass
class StationRemoval:
    code: str
    schedules: int


def remove_station(session: Session, code: str, *, force: bool = False) -> StationRemoval:
    """Delete a station. Refused while the delivery log names it (reports count per station); refused
    while schedules use it, unless ``force``, which removes those schedules too."""
    station = get_station(session, code)
    logged = session.exec(select(func.count()).select_from(Delivery).where(Delivery.station_id == station.id)).one()
    logged += session.exec(select(func.count()).select_from(Bulletin).where(Bulletin.station_id == station.id)).one()
    if logged:
        raise InputError(
            f"đài {code} có {logged} lượt trong nhật ký nên không xóa được (báo cáo cần nó); đổi tên bằng "
            f"'station edit' hoặc tạm dừng lịch bằng 'schedule pause' / station {code} appears {logged} times in "
            "the delivery log and cannot be removed: rename it with 'station edit' or pause its schedules")
    schedules = session.exec(select(Schedule).where(Schedule.station_id == station.id)).all()
    if schedules and not force:
        ids = ", ".join(f"#{s.id}" for s in schedules)
        raise InputError(
            f"đài {code} còn lịch phát {ids}; xóa lịch trước hoặc dùng --force để xóa cả lịch / station {code} "
            f"still has schedules {ids}: remove them first, or use --force to remove them too")
    targets = session.exec(select(Target).where(Target.station_id == station.id)).all()
    if targets:
        raise InputError(
            f"đài {code} có trong chỉ tiêu của kế hoạch; sửa tệp kế hoạch rồi nhập lại (--replace) / "
            f"station {code} is named by a plan's targets: edit the plan file and import it again (--replace)")
    for schedule in schedules:
        session.delete(schedule)
    session.delete(station)
    session.flush()
    return StationRemoval(code, len(schedules))


def get_station(session: Session, code: str) -> Station:
    station = session.exec(select(Station).where(Station.code == code)).first()
    if station is None:
        known = session.exec(select(Station.code)).all()
        raise NotFoundError(f"không có đài '{code}' / unknown station '{code}'{did_you_mean(code, known)}")
    return station


def list_stations(session: Session) -> list[Station]:
    return list(session.exec(select(Station).order_by(Station.code)).all())


def public_options(station: Station) -> dict:
    """Player options safe to print: passwords in URLs masked."""
    return _masked(station.player_options)


def _masked(options: dict) -> dict:
    shown = dict(options)
    if "url" in shown:
        shown["url"] = re.sub(r"(//[^:/@]+:)[^@]+@", r"\1***@", shown["url"])
    return shown


RENDERED_AHEAD = "ready"  # Bulletin.status of a slot rendered ahead and waiting for its time (scheduling.airing)


def next_rendered_bulletin(session: Session, code: str, now: datetime) -> Bulletin | None:
    """The station's next bulletin already rendered ahead (its file exists), or None."""
    station = get_station(session, code)
    rows = session.exec(select(Bulletin).where(Bulletin.station_id == station.id, Bulletin.status == RENDERED_AHEAD,
                                               Bulletin.audio_path.is_not(None), Bulletin.slot_time >= now)
                        .order_by(Bulletin.slot_time)).all()
    return next((row for row in rows if Path(row.audio_path).is_file()), None)
