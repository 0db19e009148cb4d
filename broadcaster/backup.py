"""Backing up and restoring the SQLite database.

Both go through SQLite's online backup API: a backup taken while the daemon
writes is a consistent snapshot, and a restore replaces the live database in
one write transaction (the WAL is honoured, nothing half-copied is ever seen).
A restore refuses while a daemon runs, and first keeps a copy of what it
replaces. On PostgreSQL, ``pg_dump`` and ``pg_restore`` do this job.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .app import App
from .db import head_revision
from .errors import BroadcasterError, InputError
from .fileutil import atomic_path
from .timeutil import local, utcnow

BUSY_TIMEOUT_S = 30


def sqlite_path(app: App) -> Path:
    from sqlalchemy.engine import make_url

    url = make_url(app.config.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BroadcasterError(
            "cơ sở dữ liệu không phải tệp SQLite; với PostgreSQL hãy dùng pg_dump / pg_restore / the database is "
            "not a SQLite file: on PostgreSQL use pg_dump and pg_restore")
    return Path(url.database)


def default_backup_path(app: App, now: datetime | None = None) -> Path:
    stamp = local(now or utcnow(), app.config.broadcaster.timezone).strftime("%Y-%m-%d_%H%M%S")
    return app.config.data_dir / "backups" / f"broadcaster_{stamp}.db"


@dataclass
class BackupResult:
    path: Path
    size: int
    revision: str | None


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}{'?mode=ro' if read_only else ''}"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def backup(app: App, target: Path | None = None, now: datetime | None = None) -> BackupResult:
    """Copy the live database to ``target`` (default ``data_dir/backups/broadcaster_<local time>.db``).

    The copy is one self-contained file (journal mode DELETE), written beside the target and renamed
    into place, so a backup interrupted by a power cut never leaves a half file under the final name.
    """
    source = sqlite_path(app)
    if not source.is_file():
        raise BroadcasterError(f"{source}: chưa có cơ sở dữ liệu, hãy chạy 'broadcaster init' / no database yet")
    target = Path(target) if target is not None else default_backup_path(app, now)
    if target.resolve() == source.resolve():
        raise InputError("tệp sao lưu trùng với cơ sở dữ liệu / the backup file is the database itself",
                         source=str(target))
    if target.is_dir():
        raise InputError("đây là thư mục, hãy ghi tên tệp / this is a folder: give a file name", source=str(target))
    with atomic_path(target) as tmp:
        src = _connect(source, read_only=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                revision = _revision(dst)
            finally:
                dst.close()
        finally:
            src.close()
    return BackupResult(target, target.stat().st_size, revision)


def check_backup_file(path: Path) -> str:
    """The schema revision of a backup file, after checking it is a whole SQLite database of ours."""
    path = Path(path)
    if not path.is_file():
        raise InputError("không tìm thấy tệp / file not found", source=str(path))
    try:
        connection = _connect(path, read_only=True)
        try:
            verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
            revision = _revision(connection)
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"không phải tệp sao lưu SQLite / not a SQLite backup ({exc})", source=str(path)) from exc
    if verdict != "ok":
        raise InputError(f"tệp sao lưu bị hỏng / the backup is damaged: {verdict}", source=str(path))
    if revision is None:
        raise InputError("không phải cơ sở dữ liệu broadcaster / not a broadcaster database", source=str(path))
    return revision


def daemon_running(app: App) -> str | None:
    """Why a daemon looks alive (its lock is held, or its heartbeat is fresh), or None.

    Reads the daemon's lock file and heartbeat row the way ``scheduling.daemon`` writes them; changes neither.
    """
    from .fileutil import FileLock, is_locked

    lock = app.config.data_dir / "daemon.lock"
    if lock.exists() and is_locked(lock):
        return f"pid {FileLock(lock).read_note() or '?'}"
    from .scheduling.status import read_status

    try:
        status = read_status(app)
    except BroadcasterError:  # no schema yet, or behind: no daemon can be running on it
        return None
    if status.alive:
        return f"pid {status.pid} @ {status.host}"
    return None


@dataclass
class RestoreResult:
    source: Path
    revision: str
    safety_copy: Path
    needs_upgrade: bool


def restore(app: App, source: Path, now: datetime | None = None) -> RestoreResult:
    """Replace the live database with a backup, in one transaction. Refused while a daemon runs.

    What is replaced is first backed up to ``data_dir/backups`` (named in the result).
    """
    live = sqlite_path(app)
    source = Path(source)
    revision = check_backup_file(source)
    if live.exists() and source.resolve() == live.resolve():
        raise InputError("tệp này chính là cơ sở dữ liệu đang dùng / this is the live database", source=str(source))
    running = daemon_running(app) if live.exists() else None
    if running:
        raise BroadcasterError(
            f"chương trình chạy nền (daemon) đang chạy ({running}); dừng nó trước khi khôi phục "
            f"(systemctl stop broadcaster) / the daemon is running ({running}): stop it before restoring")
    replaced = default_backup_path(app, now)
    safety = backup(app, replaced.with_name(replaced.stem + "_truoc-khoi-phuc.db")) if live.exists() else None
    app.engine.dispose()
    src = _connect(source, read_only=True)
    try:
        dst = _connect(live)
        try:
            src.backup(dst)  # all pages in one step: readers see the old database or the new one
        finally:
            dst.close()
    finally:
        src.close()
    app.__dict__.pop("engine", None)  # the cached engine was disposed: the next use opens the restored file
    app._checked = False
    return RestoreResult(source, revision, safety.path if safety else None, revision != head_revision())
