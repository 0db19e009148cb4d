"""Atomic file writes (a reader sees the old file or the new one, never half of one), and private modes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the owner only; an existing folder is left as is."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def make_private(path: Path) -> bool:
    """Take group and other permissions off ``path`` if it has any; True if its mode was repaired."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return False
    if not mode & 0o077:
        return False
    os.chmod(path, mode & 0o700)
    return True


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (before a library creates it wider)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


class FileLock:
    """An OS lock on a file that the kernel releases when the process dies (the ``filelock`` library:
    flock on POSIX, msvcrt on Windows), for what is local to one PC: its data folder.

    Held per open file: a second ``FileLock`` on the same path fails even in the same process.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def try_acquire(self, note: str = "") -> bool:
        """Take the lock without waiting; ``note`` (e.g. the pid) is written into the file."""
        import filelock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path), timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            return False
        if note:
            with open(self.path, "r+", encoding="utf-8") as handle:
                handle.truncate()
                handle.write(note)
        self._lock = lock
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def read_note(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""


def is_locked(path: Path) -> bool:
    """True if some process holds the lock on ``path`` now."""
    probe = FileLock(path)
    if probe.try_acquire():
        probe.release()
        return False
    return True
