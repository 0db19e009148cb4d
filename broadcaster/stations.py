"""Stations: the commune's loudspeaker systems and how audio reaches them."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from .errors import AlreadyExistsError, InputError, NotFoundError
from .models import Station
from .timeutil import zone

PLAYER_KINDS = ("file", "device", "icecast")
CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def add_station(session: Session, *, code: str, name: str, commune: str = "", timezone: str,
                player: str = "file", player_options: dict | None = None,
                listeners: int | None = None) -> Station:
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
    options = dict(player_options or {})
    if player == "icecast" and not options.get("url"):
        raise InputError("đài icecast cần --url icecast://source:MẬT_KHẨU@máy:cổng/mount / "
                         "an icecast station needs --url", field="url")
    if player == "file" and not options.get("drop_dir"):
        raise InputError("đài 'file' cần --drop-dir / a file station needs --drop-dir", field="drop_dir")
    if session.exec(select(Station).where(Station.code == code)).first():
        raise AlreadyExistsError(f"đài '{code}' đã có / station '{code}' already exists")
    station = Station(code=code, name=name.strip(), commune=commune, timezone=timezone, player=player,
                      player_options=options, listeners=listeners)
    session.add(station)
    session.flush()
    return station


def get_station(session: Session, code: str) -> Station:
    station = session.exec(select(Station).where(Station.code == code)).first()
    if station is None:
        raise NotFoundError(f"không có đài '{code}' / unknown station '{code}'")
    return station


def list_stations(session: Session) -> list[Station]:
    return list(session.exec(select(Station).order_by(Station.code)).all())


def public_options(station: Station) -> dict:
    """Player options safe to print: passwords in URLs masked."""
    shown = dict(station.player_options)
    if "url" in shown:
        shown["url"] = re.sub(r"(//[^:/@]+:)[^@]+@", r"\1***@", shown["url"])
    return shown
