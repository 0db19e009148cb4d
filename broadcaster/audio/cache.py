"""On-disk cache of rendered speech.

Every text that went through a synthesizer is kept as a mono WAV file so a
broadcast can be rebuilt without calling the TTS service again (the gTTS
endpoint is undocumented and rate-limited) and so a daemon and a CLI can share
renders.

Layout: ``<directory>/<key[:2]>/<key>.wav`` where ``key`` is the SHA-256 of the
NFC-normalised text, the backend name, the language and the settings that
change the sound (see :func:`cache_key`).

Concurrency: files are written to a temporary file in the same directory and
moved into place with :func:`os.replace`, which is atomic on POSIX and Windows.
A reader therefore sees either no file or a complete file, never a half-written
one, whether the writer is another thread, the daemon or the CLI. Two writers
racing on the same key both write complete files; the last one wins, and both
hold the same sound. Reads refresh the file's access time so pruning removes
the least recently *used* renders first, even on ``noatime`` mounts.

Mastered clips (:meth:`AudioCache.put_clip`): a sentence's speech *after* loudness matching,
keyed with the mastering settings as well, stored as a plain 16-bit mono WAV with one extra
RIFF chunk (``bmst``, JSON) holding its loudness, true peak and K-weighted energy per 100 ms,
so a warm render reads it and measures nothing. Other WAV readers skip the extra chunk. These
files are not fsynced (a cache is rebuilt, not recovered): a file torn by a power cut has a
data chunk shorter than its header says and reads as a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydub import AudioSegment

if TYPE_CHECKING:
    from broadcaster.audio.mastering import MasteredClip

log = logging.getLogger("broadcaster.audio")

_CLIP_CHUNK = b"bmst"

__all__ = ["AudioCache", "CacheStats", "PruneResult", "cache_key"]

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_TMP_SUFFIX = ".tmp"
# A temporary file older than this was left by a writer that crashed.
_STALE_TMP_SECONDS = 3600.0


def cache_key(text: str, backend: str, lang: str, settings: dict[str, Any]) -> str:
    """Return the cache key of one render.

    The text is NFC-normalised first, so the same Vietnamese sentence typed
    with combining marks (NFD) or precomposed letters (NFC) shares a key.
    ``settings`` must be JSON-serialisable (voice, speed, tld, ...).
    """
    payload = {
        "text": unicodedata.normalize("NFC", text),
        "backend": backend,
        "lang": lang,
        "settings": settings,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PruneResult:
    files_removed: int
    bytes_freed: int


@dataclass(frozen=True)
class CacheStats:
    directory: Path
    files: int
    total_bytes: int
    oldest_access: float | None  # epoch seconds, None when empty
    newest_access: float | None


@dataclass(frozen=True)
class _Entry:
    path: Path
    size: int
    last_used: float


class AudioCache:
    """A directory of rendered speech, keyed by :func:`cache_key`."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    # -- keys -------------------------------------------------------------
    @staticmethod
    def key(text: str, backend: str, lang: str, settings: dict[str, Any]) -> str:
        return cache_key(text, backend, lang, settings)

    def path_for(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(
                f"Khoá bộ nhớ đệm không hợp lệ: {key!r} / Invalid cache key: {key!r} "
                "(expected 64 lowercase hex digits)"
            )
        return self.directory / key[:2] / f"{key}.wav"

    # -- read / write -----------------------------------------------------
    def get(self, key: str) -> AudioSegment | None:
        """Return the cached render, or None on a miss.

        A file that cannot be decoded (e.g. truncated by a disk error) is
        removed and reported as a miss so it gets rendered again.
        """
        path = self.path_for(key)
        try:
            seg = AudioSegment.from_wav(str(path))
        except FileNotFoundError:
            return None
        except Exception as exc:  # pydub raises several types on bad data
            log.warning(
                "Tệp âm thanh trong bộ nhớ đệm bị hỏng, sẽ tạo lại: %s / "
                "Corrupt cache file removed and will be re-rendered: %s (%s)",
                path,
                path,
                exc,
            )
            path.unlink(missing_ok=True)
            return None
        _touch(path)
        return seg

    def put(self, key: str, seg: AudioSegment) -> Path:
        """Store ``seg`` as a mono WAV under ``key`` (atomic replace)."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if seg.channels != 1:
            seg = seg.set_channels(1)
        _write_atomic(path, lambda fh: seg.export(fh, format="wav"), durable=True)
        return path

    def put_clip(self, key: str, clip: MasteredClip) -> Path:
        """Store a mastered clip and its measurement under ``key`` (atomic replace, no fsync).

        The clip's samples then leave memory: it reads them from the file when used."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps(clip.meta(), separators=(",", ":")).encode("utf-8")
        meta += b" " * (len(meta) % 2)  # RIFF chunks are word-aligned
        data = clip.pcm.astype("<i2").tobytes()
        fmt = struct.pack("<HHIIHH", 1, 1, clip.sample_rate, clip.sample_rate * 2, 2, 16)
        body = b"".join([b"WAVE", b"fmt ", struct.pack("<I", len(fmt)), fmt,
                         _CLIP_CHUNK, struct.pack("<I", len(meta)), meta, b"data", struct.pack("<I", len(data)), data])
        _write_atomic(path, lambda fh: fh.write(b"RIFF" + struct.pack("<I", len(body)) + body), durable=False)
        saved = self.get_clip(key)
        if saved is not None and saved.frames == clip.frames:
            clip.release(saved._source)
        return path

    def get_clip(self, key: str) -> MasteredClip | None:
        """The mastered clip stored under ``key``, or None (a missing, torn or foreign file is a miss).

        Only the header and the measurement are read now; the samples when the clip is used."""
        import numpy as np

        from broadcaster.audio.mastering import MasteredClip

        path = self.path_for(key)
        try:
            header = _read_clip_header(path)
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, TypeError, struct.error) as exc:
            log.warning("Tệp trong bộ nhớ đệm bị hỏng, sẽ tạo lại: %s / corrupt cache file, re-rendering: %s (%s)",
                        path, path, exc)
            path.unlink(missing_ok=True)
            return None
        rate, meta, offset, frames = header

        def read_samples() -> np.ndarray:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return np.frombuffer(fh.read(frames * 2), dtype="<i2")

        _touch(path)
        return MasteredClip(None, rate, float(meta["integrated_lufs"]), float(meta["true_peak_dbtp"]),
                            np.asarray(meta["energies"], dtype=np.float64), source=read_samples, frames=frames)

    def __contains__(self, key: str) -> bool:
        return self.path_for(key).is_file()

    # -- housekeeping -----------------------------------------------------
    def _entries(self) -> list[_Entry]:
        entries: list[_Entry] = []
        if not self.directory.is_dir():
            return entries
        for path in self.directory.glob("??/*.wav"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append(_Entry(path, st.st_size, max(st.st_atime, st.st_mtime)))
        return entries

    def _remove(self, path: Path) -> int | None:
        """Delete ``path``; return its size, or None if another process got there first."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return None
        return size

    def prune(self, max_age_days: float | None = None, max_bytes: int | None = None) -> PruneResult:
        """Remove renders not used for ``max_age_days`` days, then the least
        recently used ones until the cache holds at most ``max_bytes``.

        Temporary files left behind by a crashed writer (older than an hour)
        are removed as well.
        """
        removed = 0
        freed = 0
        now = time.time()

        if self.directory.is_dir():
            for tmp in self.directory.glob(f"??/*{_TMP_SUFFIX}"):
                try:
                    if now - tmp.stat().st_mtime < _STALE_TMP_SECONDS:
                        continue
                except FileNotFoundError:
                    continue
                size = self._remove(tmp)
                if size is not None:
                    removed += 1
                    freed += size

        entries = sorted(self._entries(), key=lambda e: e.last_used)
        kept: list[_Entry] = []
        if max_age_days is not None:
            cutoff = now - max_age_days * 86400.0
            for entry in entries:
                if entry.last_used < cutoff:
                    size = self._remove(entry.path)
                    if size is not None:
                        removed += 1
                        freed += size
                else:
                    kept.append(entry)
        else:
            kept = entries

        if max_bytes is not None:
            total = sum(e.size for e in kept)
            for entry in kept:  # oldest-used first
                if total <= max_bytes:
                    break
                size = self._remove(entry.path)
                if size is not None:
                    removed += 1
                    freed += size
                total -= entry.size

        for sub in self.directory.glob("??") if self.directory.is_dir() else ():
            try:
                sub.rmdir()  # only succeeds when empty
            except OSError:
                pass
        return PruneResult(files_removed=removed, bytes_freed=freed)

    def stats(self) -> CacheStats:
        entries = self._entries()
        times = [e.last_used for e in entries]
        return CacheStats(
            directory=self.directory,
            files=len(entries),
            total_bytes=sum(e.size for e in entries),
            oldest_access=min(times) if times else None,
            newest_access=max(times) if times else None,
        )


def _touch(path: Path) -> None:
    """Mark a render as used now (pruning removes the least recently used first)."""
    try:
        now = time.time()
        os.utime(path, (now, now))
    except OSError:
        pass  # pruned meanwhile, or read-only cache: the audio is still good


def _write_atomic(path: Path, write: Callable[[Any], Any], *, durable: bool) -> None:
    """``write(file)`` to a temporary file beside ``path``, then move it into place (fsync if ``durable``)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


def _read_clip_header(path: Path) -> tuple[int, dict, int, int]:
    """(sample rate, measurement, data offset, frames) of a mastered clip file; ValueError if it is not one."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        riff = fh.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise ValueError("not a WAV file")
        rate = channels = bits = None
        meta = None
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("no data chunk")
            name, length = head[:4], struct.unpack("<I", head[4:])[0]
            if name == b"data":
                if fh.tell() + length > size:
                    raise ValueError("data chunk cut short")
                if (channels, bits) != (1, 16) or meta is None:
                    raise ValueError("not a mastered 16-bit mono clip")
                return rate, meta, fh.tell(), length // 2
            body = fh.read(length + length % 2)
            if name == b"fmt ":
                _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            elif name == _CLIP_CHUNK:
                meta = json.loads(body[:length])
