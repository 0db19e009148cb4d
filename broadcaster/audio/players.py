"""Players: how a rendered bulletin reaches the loudspeakers.

* :class:`FilePlayer` drops the file into a folder (a smart-speaker server or
  a sync tool picks it up there);
* :class:`DevicePlayer` plays it through the PC's sound card into the
  amplifier and blocks until it has finished;
* :class:`IcecastPlayer` streams it in real time to an Icecast mount that IP
  speakers listen to.

All block for the length of the broadcast (except the file drop), can be
interrupted with a :class:`threading.Event`, and raise :class:`PlayerError`
with a message an operator can read (Vietnamese first, then English) and
never a password.

A player process runs in its own process group and, on Linux, is killed by
the kernel if the thread that started it dies (``setpriv --pdeathsig``), so a
``kill -9`` of the daemon never leaves a bulletin playing on its own; its pid
is handed to ``on_start`` so the delivery log can record it and recovery can
stop it too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from broadcaster.audio.assemble import audio_duration_s

__all__ = [
    "DevicePlayer",
    "FilePlayer",
    "IcecastPlayer",
    "PLAYER_KINDS",
    "PlayResult",
    "Player",
    "PlayerError",
    "make_player",
    "mask_secrets",
]


class PlayerError(RuntimeError):
    """A broadcast could not be played. The message is safe to show and log."""


@dataclass
class PlayResult:
    started_at: datetime  # UTC, timezone-aware
    ended_at: datetime
    duration_s: float  # seconds actually on air (file drop: the audio's length)
    detail: str
    interrupted: bool = False


@runtime_checkable
class Player(Protocol):
    def play(
        self, path: Path, *, station_code: str, stop_event: threading.Event | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> PlayResult: ...


def _now() -> datetime:
    return datetime.now(UTC)


_URL_CRED_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@", re.I)


def mask_secrets(text: str, secrets: Sequence[str] = ()) -> str:
    """Replace passwords in ``text``: credentials in URLs and every given secret."""
    text = _URL_CRED_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise PlayerError(f"Không tìm thấy tệp bản tin: {path} / Bulletin file not found: {path}")
    return path


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _tied_to_parent(cmd: list[str]) -> list[str]:
    """``cmd`` killed by the kernel when its parent thread dies (Linux ``setpriv``), else as it is."""
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *cmd] if _SETPRIV else cmd


def _run_realtime(
    cmd: list[str],
    *,
    stop_event: threading.Event | None,
    secrets: Sequence[str] = (),
    poll_s: float = 0.05,
    on_start: Callable[[int], None] | None = None,
) -> tuple[datetime, datetime, int | None, str, bool]:
    """Run ``cmd`` until it exits or ``stop_event`` is set.

    Returns (started_at, ended_at, returncode or None if interrupted, masked
    stderr tail, interrupted).
    """
    stderr_file = tempfile.TemporaryFile()
    started = _now()
    try:
        proc = subprocess.Popen(_tied_to_parent(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr_file, start_new_session=True)
    except OSError as exc:
        stderr_file.close()
        raise PlayerError(
            mask_secrets(
                f"Không chạy được lệnh phát {cmd[0]!r}: {exc} / Could not run player command {cmd[0]!r}: {exc}",
                secrets,
            )
        ) from None
    interrupted = False
    if on_start is not None:
        try:
            on_start(proc.pid)
        except Exception:  # recording the pid must never stop the broadcast
            pass
    try:
        while True:
            try:
                proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                if stop_event is not None and stop_event.is_set():
                    interrupted = True
                    proc.terminate()
                    try:
                        proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    break
    except BaseException:
        # KeyboardInterrupt or similar in the caller's thread: never leave the
        # subprocess playing on its own.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr_file.close()
        raise
    ended = _now()
    stderr_file.seek(0)
    err = stderr_file.read()[-4000:].decode("utf-8", "replace")
    stderr_file.close()
    return (
        started,
        ended,
        (None if interrupted else proc.returncode),
        mask_secrets(err.strip(), secrets),
        interrupted,
    )


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# File drop


_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


# A rendered bulletin's own ``<station>_<stamp>_`` prefix, so a dropped name does not carry it twice.
_RENDERED_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+?_(\d{8}T\d{6}Z|\d{8}-\d{6})(-\d+)?_")


def dropped_name(station_code: str, source_name: str, handed_over: datetime, tz_name: str, n: int = 0) -> str:
    """``<station>_<YYYYmmdd-HHMMSS station time>[-n]_<label>``: when it was handed over, as people read it."""
    station = _SAFE_RE.sub("-", station_code).strip("-") or "station"
    label = _RENDERED_PREFIX_RE.sub("", source_name, count=1) or source_name
    stamp = handed_over.astimezone(ZoneInfo(tz_name)).strftime("%Y%m%d-%H%M%S")
    return f"{station}_{stamp}{f'-{n}' if n else ''}_{label}"


class FilePlayer:
    """Copy the bulletin atomically into ``drop_dir`` as ``<station>_<station-time stamp>_<label>``."""

    kind = "file"

    def __init__(self, drop_dir: str | os.PathLike, timezone: str = "Asia/Ho_Chi_Minh") -> None:
        self.drop_dir = Path(drop_dir)
        self.timezone = timezone

    def play(self, path: Path, *, station_code: str, stop_event: threading.Event | None = None,
             on_start: Callable[[int], None] | None = None) -> PlayResult:
        path = _check_file(path)
        started = _now()
        if stop_event is not None and stop_event.is_set():
            return PlayResult(started, _now(), 0.0, "interrupted before the copy", interrupted=True)
        try:
            self.drop_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PlayerError(
                f"Không tạo được thư mục chuyển tệp {self.drop_dir}: {exc.strerror} / "
                f"Cannot create drop folder {self.drop_dir}: {exc.strerror}"
            ) from None
        duration = audio_duration_s(path)
        target = self.drop_dir / dropped_name(station_code, path.name, started, self.timezone)
        n = 1
        while target.exists():
            target = self.drop_dir / dropped_name(station_code, path.name, started, self.timezone, n)
            n += 1
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=self.drop_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise PlayerError(
                f"Không chép được bản tin vào {self.drop_dir}: {exc.strerror} / "
                f"Could not copy the bulletin into {self.drop_dir}: {exc.strerror}"
            ) from None
        return PlayResult(started, _now(), duration, f"copied to {target}")


# ---------------------------------------------------------------------------
# Sound card

# Tried in order when no command is configured. ``{file}`` is the audio file.
DEFAULT_DEVICE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("ffplay", "-nodisp", "-autoexit", "-hide_banner", "-loglevel", "error", "{file}"),
    ("paplay", "{file}"),
    ("aplay", "-q", "{file}"),
)
_WAV_ONLY = {"paplay", "aplay"}


class DevicePlayer:
    """Play through the sound card and block until the bulletin has finished.

    ``command`` is a list of arguments or a shell-like string; ``{file}`` is
    replaced by the audio file (appended at the end if absent). Without a
    command, ffplay, paplay and aplay are tried in that order (files other
    than WAV are decoded to a temporary WAV for paplay/aplay).
    """

    kind = "device"

    def __init__(self, command: str | Sequence[str] | None = None) -> None:
        if isinstance(command, str):
            command = shlex.split(command)
        self.command: list[str] | None = list(command) if command else None

    def _resolve(self) -> list[str]:
        if self.command:
            if not shutil.which(self.command[0]):
                raise PlayerError(
                    f"Không tìm thấy chương trình phát '{self.command[0]}'. Kiểm tra cấu hình lệnh phát. / "
                    f"Player program '{self.command[0]}' was not found; check the configured command."
                )
            return list(self.command)
        for candidate in DEFAULT_DEVICE_COMMANDS:
            if shutil.which(candidate[0]):
                return list(candidate)
        raise PlayerError(
            "Không tìm thấy chương trình phát âm thanh (ffplay, paplay hoặc aplay). Hãy cài ffmpeg "
            "hoặc cấu hình lệnh phát. / No audio player found (ffplay, paplay or aplay). Install ffmpeg "
            "or configure a player command."
        )

    def play(self, path: Path, *, station_code: str, stop_event: threading.Event | None = None,
             on_start: Callable[[int], None] | None = None) -> PlayResult:
        path = _check_file(path)
        template = self._resolve()
        with tempfile.TemporaryDirectory(prefix="broadcaster-play-") as tmpdir:
            source = path
            if Path(template[0]).name in _WAV_ONLY and path.suffix.lower() != ".wav":
                source = Path(tmpdir) / "bulletin.wav"
                proc = subprocess.run(
                    [
                        "ffmpeg",
                        "-hide_banner",
                        "-nostdin",
                        "-loglevel",
                        "error",
                        "-i",
                        str(path),
                        str(source),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    raise PlayerError(
                        f"Không giải mã được {path.name}: {_tail(proc.stderr)} / Could not decode {path.name}"
                    )
            if any("{file}" in arg for arg in template):
                cmd = [arg.replace("{file}", str(source)) for arg in template]
            else:
                cmd = [*template, str(source)]
            started, ended, rc, err, interrupted = _run_realtime(cmd, stop_event=stop_event, on_start=on_start)
        elapsed = (ended - started).total_seconds()
        if interrupted:
            return PlayResult(started, ended, elapsed, f"interrupted: {Path(cmd[0]).name}", interrupted=True)
        if rc != 0:
            raise PlayerError(
                f"Phát qua loa bị lỗi (mã {rc}): {_tail(err)} / Playback through the sound card failed "
                f"(exit code {rc}) for station {station_code}."
            )
        return PlayResult(started, ended, elapsed, f"played with {Path(cmd[0]).name}")


# ---------------------------------------------------------------------------
# Icecast


class IcecastPlayer:
    """Stream the bulletin in real time to ``icecast://source:PASSWORD@host:port/mount`` with ffmpeg."""

    kind = "icecast"

    def __init__(
        self,
        url: str,
        bitrate: str = "64k",
        *,
        name: str | None = None,
        description: str | None = None,
        ffmpeg: str = "ffmpeg",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("icecast", "http") or not parts.hostname or not parts.path.strip("/"):
            raise ValueError(
                f"Địa chỉ Icecast không hợp lệ: {mask_secrets(url)} (dạng icecast://source:MẬT_KHẨU@máy:cổng/điểm_phát). / "
                f"Invalid Icecast URL {mask_secrets(url)} (expected icecast://source:PASSWORD@host:port/mount)."
            )
        self.url = url if parts.scheme == "icecast" else "icecast" + url[len("http") :]
        self._password = parts.password or ""
        self.bitrate = bitrate
        self.name = name
        self.description = description
        self.ffmpeg = ffmpeg
        self.host = parts.hostname
        self.port = parts.port or 8000
        self.mount = parts.path

    @property
    def display_url(self) -> str:
        return mask_secrets(self.url)

    def __repr__(self) -> str:
        return f"IcecastPlayer({self.display_url!r}, bitrate={self.bitrate!r})"

    def _command(self, path: Path, station_code: str) -> list[str]:
        cmd = [self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", str(path), "-vn"]
        cmd += ["-ac", "1", "-c:a", "libmp3lame", "-b:a", self.bitrate, "-content_type", "audio/mpeg"]
        cmd += ["-ice_name", self.name or station_code]
        if self.description:
            cmd += ["-ice_description", self.description]
        cmd += ["-f", "mp3", self.url]
        return cmd

    def _explain(self, err: str) -> str:
        where = f"{self.host}:{self.port}"
        low = err.lower()
        if "connection refused" in low:
            return (
                f"Không kết nối được máy chủ Icecast {where} (máy chủ chưa chạy hoặc sai cổng). / "
                f"Could not connect to the Icecast server at {where} (not running, or wrong port)."
            )
        if "401" in err or "unauthorized" in low:
            return (
                f"Máy chủ Icecast {where} từ chối mật khẩu nguồn (source). Kiểm tra mật khẩu. / "
                f"The Icecast server at {where} rejected the source password; check it."
            )
        if "403" in err or "forbidden" in low:
            return (
                f"Điểm phát {self.mount} trên {where} đang bận hoặc bị cấm (có nguồn khác đang phát?). / "
                f"Mount {self.mount} on {where} is busy or forbidden (another source streaming?)."
            )
        if "timed out" in low or "timeout" in low:
            return f"Hết thời gian chờ máy chủ Icecast {where}. / Timed out talking to the Icecast server at {where}."
        if "name or service not known" in low or "resolve" in low:
            return f"Không tìm thấy máy chủ {self.host}. / Unknown Icecast host {self.host}."
        return (
            f"Phát lên Icecast {where}{self.mount} bị lỗi: {_tail(err)} / "
            f"Streaming to Icecast {where}{self.mount} failed: {_tail(err)}"
        )

    def play(self, path: Path, *, station_code: str, stop_event: threading.Event | None = None,
             on_start: Callable[[int], None] | None = None) -> PlayResult:
        path = _check_file(path)
        if not shutil.which(self.ffmpeg):
            raise PlayerError(
                "Không tìm thấy ffmpeg; hãy cài đặt ffmpeg. / ffmpeg was not found; please install it."
            )
        t0 = time.monotonic()
        started, ended, rc, err, interrupted = _run_realtime(
            self._command(path, station_code), stop_event=stop_event, secrets=[self._password], on_start=on_start
        )
        elapsed = time.monotonic() - t0
        if interrupted:
            return PlayResult(started, ended, elapsed, f"interrupted: {self.display_url}", interrupted=True)
        if rc != 0:
            raise PlayerError(mask_secrets(self._explain(err), [self._password]))
        return PlayResult(started, ended, elapsed, f"streamed to {self.display_url}")


# ---------------------------------------------------------------------------

PLAYER_KINDS = {"file": FilePlayer, "device": DevicePlayer, "icecast": IcecastPlayer}


def make_player(kind: str, options: dict | None = None) -> Player:
    """Build a player by name: ``file`` (drop_dir), ``device`` (command), ``icecast`` (url, bitrate)."""
    try:
        cls = PLAYER_KINDS[kind]
    except (KeyError, TypeError):
        known = ", ".join(PLAYER_KINDS)
        raise ValueError(
            f"Không có kiểu phát {kind!r} (có: {known}). / Unknown player kind {kind!r} (known: {known})."
        ) from None
    options = dict(options or {})
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(
            f"Tùy chọn không hợp lệ cho kiểu phát {kind!r}: {mask_secrets(str(exc))} / "
            f"Invalid options for player {kind!r}: {mask_secrets(str(exc))}"
        ) from None
