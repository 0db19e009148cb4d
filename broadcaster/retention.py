"""Keeping the commune PC's disk from filling up: the ``[retention]`` settings.

``prune(app, now)`` removes what is older than its setting:

- rendered bulletins in ``data_dir/bulletins`` (and their manifests): ``bulletins_days``;
- files this program handed to a ``file`` station (``<STATION>_…`` in its drop folder, and copies
  left half-written): ``dropped_days`` (other files in that folder are never touched);
- lines of the offline SMS outbox older than ``outbox_days``;
- daemon log lines older than ``logs_days`` (and rotated ``daemon.log.*`` files).

The delivery log in the database is never pruned: reports count from it. The daemon is to call
``prune`` once a day; ``broadcaster cache prune`` and ``broadcaster db prune`` call it on demand.
Age is a file's modification time, or a line's own timestamp.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from .app import App
from .models import Station
from .timeutil import as_utc, utcnow

_LOG_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})")
_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")  # as audio.players names dropped files
HALF_WRITTEN_AGE = timedelta(days=1)


@dataclass
class Pruned:
    """What one kind of thing lost: files removed (or lines, for the outbox and the log) and bytes freed."""

    what: str
    keep_days: int
    files: int = 0
    lines: int = 0
    bytes: int = 0


@dataclass
class PruneSummary:
    now: datetime
    dry_run: bool
    parts: list[Pruned]

    @property
    def bytes(self) -> int:
        return sum(part.bytes for part in self.parts)


def prune(app: App, now: datetime | None = None, *, dry_run: bool = False) -> PruneSummary:
    """Apply the ``[retention]`` settings once; returns what was (or, with ``dry_run``, would be) removed."""
    now = as_utc(now) if now else utcnow()
    keep = app.config.retention
    config = app.config
    bulletins = Pruned("bulletins", keep.bulletins_days)
    _prune_files(bulletins, [p for p in _files(config.output_dir)], now, dry_run)
    dropped = Pruned("dropped", keep.dropped_days)
    _prune_files(dropped, _dropped_files(app), now, dry_run)
    half_written = [p for p in _dropped_files(app, half_written=True)
                    if _mtime(p) < now - HALF_WRITTEN_AGE]
    _remove(dropped, half_written, dry_run)
    outbox = Pruned("outbox", keep.outbox_days)
    from .sms.backends import _outbox_lock  # the lock the outbox writer of this process takes

    with _outbox_lock(config.sms_outbox_path):
        _prune_lines(outbox, config.sms_outbox_path, now - timedelta(days=keep.outbox_days), _outbox_time,
                     dry_run)
    logs = Pruned("logs", keep.logs_days)
    log_file = _log_file(app)
    cutoff = now - timedelta(days=keep.logs_days)
    _prune_files(logs, sorted(log_file.parent.glob(log_file.name + ".*")) if log_file.parent.is_dir() else [],
                 now, dry_run)
    _prune_lines(logs, log_file, cutoff, _log_time, dry_run)
    return PruneSummary(now, dry_run, [bulletins, dropped, outbox, logs])


def _log_file(app: App) -> Path:
    configured = app.config.daemon.log_file
    return Path(configured).expanduser() if configured else app.config.data_dir / "daemon.log"


def _files(directory: Path) -> list[Path]:
    if not Path(directory).is_dir():
        return []
    return sorted(p for p in Path(directory).rglob("*") if p.is_file())


def _dropped_files(app: App, *, half_written: bool = False) -> list[Path]:
    with app.read_session() as session:
        stations = [(s.code, s.player_options.get("drop_dir")) for s in session.exec(select(Station)).all()
                    if s.player == "file"]
    found: list[Path] = []
    for code, drop_dir in stations:
        if not drop_dir or not Path(drop_dir).is_dir():
            continue
        prefix = (_SAFE_RE.sub("-", code).strip("-") or "station") + "_"
        for path in Path(drop_dir).iterdir():
            ours = path.name.startswith(f".{prefix}") and path.name.endswith(".part") if half_written \
                else path.name.startswith(prefix)
            if ours and path.is_file():
                found.append(path)
    return sorted(found)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _prune_files(part: Pruned, paths: list[Path], now: datetime, dry_run: bool) -> None:
    cutoff = now - timedelta(days=part.keep_days)
    _remove(part, [p for p in paths if _mtime(p) < cutoff], dry_run)


def _remove(part: Pruned, paths: list[Path], dry_run: bool) -> None:
    for path in paths:
        try:
            size = path.stat().st_size
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        part.files += 1
        part.bytes += size


def _outbox_time(line: str) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(json.loads(line)["time"]))
    except (ValueError, KeyError, TypeError):
        return None


def _log_time(line: str) -> datetime | None:
    """A daemon.log line's time: logging's asctime, the machine's local clock."""
    match = _LOG_STAMP.match(line)
    if not match:
        return None
    return as_utc(datetime.fromisoformat(match[1].replace("T", " ")).astimezone())


def _prune_lines(part: Pruned, path: Path, cutoff: datetime, stamp, dry_run: bool) -> None:  # noqa: ANN001
    """Drop the leading lines older than ``cutoff`` (a line without a time goes with the one before it).

    The file is rewritten in place, not replaced, because the daemon keeps it open for appending;
    whatever it appended while we read is carried over before the file is cut to length.
    """
    if not path.is_file():
        return
    with open(path, "r+b") as handle:
        data = handle.read()
        keep_from = 0
        removed = 0
        old = True
        for line in data.splitlines(keepends=True):
            moment = stamp(line.decode("utf-8", "replace"))
            if moment is not None:
                old = moment < cutoff
            if not old:
                break
            keep_from += len(line)
            removed += 1
        if not keep_from:
            return
        part.lines += removed
        part.bytes += keep_from
        if dry_run:
            return
        handle.seek(len(data))
        appended = handle.read()
        handle.seek(0)
        handle.write(data[keep_from:] + appended)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())
