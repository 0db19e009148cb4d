"""Bulletin assembly and export.

A bulletin is an ordered list of parts (intro jingle, station ident, the
items, outro; optional explicit pauses). :func:`assemble_bulletin` joins them
into one mono segment with silences between them and returns a timeline the
caller can store with the delivery. :func:`export_bulletin` writes the audio
and a JSON manifest beside it atomically, so a player or a smart speaker
polling the folder never sees half a file.

Gaps between parts:

* between two readings of the same item (``repeat`` > 1): ``pause_ms``; an
  item's ``repeat_intro`` ("Xin nhắc lại") is said at the start of every
  reading after the first, ``pause_ms`` before the reading itself;
* between two different items: ``item_gap_ms``;
* between any other neighbours (intro → ident, ident → item, item → outro):
  ``pause_ms``;
* next to an explicit ``"pause"`` part: nothing — the pause part *is* the gap.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

from pydub import AudioSegment

from broadcaster.audio.loudness import Loudness, measure_loudness, normalize_loudness

__all__ = [
    "PART_KINDS",
    "BulletinPart",
    "ExportResult",
    "assemble_bulletin",
    "audio_duration_s",
    "export_bulletin",
]

PART_KINDS = ("intro", "ident", "item", "outro", "pause")
EXPORT_FORMATS = ("mp3", "wav")


@dataclass
class BulletinPart:
    kind: str  # "intro" | "ident" | "item" | "outro" | "pause"
    audio: AudioSegment
    item_id: int | None = None
    title: str = ""
    topic: str | None = None
    backend: str | None = None  # e.g. the TTS backend, or "recording"
    repeat: int = 1
    repeat_intro: AudioSegment | None = None  # said before each reading after the first

    def __post_init__(self) -> None:
        if self.kind not in PART_KINDS:
            raise ValueError(
                f"Loại phần bản tin không hợp lệ: {self.kind!r} (hợp lệ: {', '.join(PART_KINDS)}). / "
                f"Invalid bulletin part kind {self.kind!r} (valid: {', '.join(PART_KINDS)})."
            )
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise ValueError(
                f"Số lần đọc phải >= 1, nhận {self.repeat!r}. / repeat must be an integer >= 1, got {self.repeat!r}."
            )


def _conform(segment: AudioSegment, sample_rate: int) -> AudioSegment:
    if segment.channels != 1:
        segment = segment.set_channels(1)
    if segment.sample_width != 2:
        segment = segment.set_sample_width(2)
    if segment.frame_rate != sample_rate:
        segment = segment.set_frame_rate(sample_rate)
    return segment


def assemble_bulletin(
    parts: list[BulletinPart],
    *,
    pause_ms: int = 800,
    item_gap_ms: int = 1200,
    sample_rate: int = 22050,
    part_lufs: float | None = None,
) -> tuple[AudioSegment, list[dict]]:
    """Join ``parts`` into one mono 16-bit segment at ``sample_rate``.

    Items are read ``repeat`` times with ``pause_ms`` between readings. With
    ``part_lufs`` set, every non-pause part is first loudness-normalised to
    that level, so a quiet operator recording does not follow a loud jingle
    (normalise the whole bulletin afterwards as usual).

    Returns the audio and a timeline: one dict per reading, in order, with
    ``kind, item_id, title, topic, backend, repeat, reading, start_s,
    duration_s`` (times in seconds, exact to the sample). A reading that
    starts with the part's ``repeat_intro`` includes it and the pause after
    it in its ``start_s``/``duration_s``; ``intro_s`` says where in the
    reading the item itself starts.
    """
    if not parts:
        raise ValueError("Bản tin không có phần nào. / The bulletin has no parts.")
    if pause_ms < 0 or item_gap_ms < 0:
        raise ValueError("Khoảng lặng không được âm. / Pauses must not be negative.")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")

    def silence_frames(ms: int) -> int:
        return int(round(ms * sample_rate / 1000))

    chunks: list[bytes] = []
    timeline: list[dict] = []
    frames = 0
    prev: BulletinPart | None = None

    for part in parts:
        audio = part.audio
        if part_lufs is not None and part.kind != "pause":
            audio = normalize_loudness(audio, target_lufs=part_lufs, sample_rate=sample_rate)
        audio = _conform(audio, sample_rate)
        if part.kind == "pause":
            # An explicit pause is always silence, whatever the segment holds.
            audio = AudioSegment(
                data=b"\0\0" * int(audio.frame_count()), sample_width=2, frame_rate=sample_rate, channels=1
            )
        data = audio.raw_data
        intro = b""
        if part.repeat_intro is not None and part.repeat > 1:
            spoken = part.repeat_intro
            if part_lufs is not None:
                spoken = normalize_loudness(spoken, target_lufs=part_lufs, sample_rate=sample_rate)
            intro = _conform(spoken, sample_rate).raw_data + b"\0\0" * silence_frames(pause_ms)
        for reading in range(1, part.repeat + 1):
            reading_data = intro + data if reading > 1 else data
            n = len(reading_data) // 2
            if prev is not None and part.kind != "pause" and prev.kind != "pause":
                if reading > 1:
                    gap = pause_ms
                elif part.kind == "item" and prev.kind == "item":
                    gap = item_gap_ms
                else:
                    gap = pause_ms
                gap_frames = silence_frames(gap)
                chunks.append(b"\0\0" * gap_frames)
                frames += gap_frames
            timeline.append(
                {
                    "kind": part.kind,
                    "item_id": part.item_id,
                    "title": part.title,
                    "topic": part.topic,
                    "backend": part.backend,
                    "repeat": part.repeat,
                    "reading": reading,
                    "start_s": round(frames / sample_rate, 3),
                    "duration_s": round(n / sample_rate, 3),
                }
            )
            if reading > 1 and intro:
                timeline[-1]["intro_s"] = round(len(intro) // 2 / sample_rate, 3)
            chunks.append(reading_data)
            frames += n
            prev = part

    out = AudioSegment(data=b"".join(chunks), sample_width=2, frame_rate=sample_rate, channels=1)
    return out, timeline


@dataclass
class ExportResult:
    path: Path
    manifest_path: Path
    duration_s: float
    loudness: Loudness
    manifest: dict = field(default_factory=dict)


def audio_duration_s(path: str | PathLike) -> float:
    """Duration of an audio file in seconds, read by ffprobe (independent of pydub).

    For MP3 the container duration counts the encoder delay that decoders
    skip (about 50 ms at 22.05 kHz); it is subtracted, so the value is within
    one MP3 frame (26 ms at 22.05 kHz) of the audio actually heard.
    """
    exe = shutil.which("ffprobe")
    if not exe:
        raise RuntimeError(
            "Không tìm thấy ffprobe; hãy cài đặt ffmpeg. / ffprobe was not found; please install ffmpeg."
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Không tìm thấy tệp âm thanh / audio file not found: {path}")
    proc = subprocess.run(
        [
            exe,
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "format=duration,format_name:stream=start_time",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(proc.stdout)
        duration = float(info["format"]["duration"])
        if info["format"].get("format_name") == "mp3":
            start = (info.get("streams") or [{}])[0].get("start_time")
            if start not in (None, "N/A") and 0 < float(start) < 1:
                duration -= float(start)
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"Không đọc được thời lượng của {path.name} / could not read the duration of {path}: "
            f"{proc.stderr.strip()[-300:]}"
        ) from exc
    if math.isnan(duration) or duration < 0:
        raise RuntimeError(f"Invalid duration {duration} for {path}")
    return duration


def _tmp_in(dirpath: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dirpath)
    os.close(fd)
    return Path(tmp)


def _fsync_dir(dirpath: Path) -> None:
    try:
        fd = os.open(dirpath, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    """The process umask, read without changing it (os.umask is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Loudness):
        return value.as_dict()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def export_bulletin(
    audio: AudioSegment,
    path: str | PathLike,
    *,
    fmt: str = "mp3",
    bitrate: str = "64k",
    tags: dict | None = None,
    manifest: dict | None = None,
) -> ExportResult:
    """Write ``audio`` to ``path`` and a JSON manifest to ``path.with_suffix(".json")``.

    Both files are written to temporary files in the destination folder and
    moved into place with ``os.replace``: readers see either the old files or
    the complete new ones. MP3 carries ID3v2.3 tags from ``tags`` (e.g.
    ``title``, ``artist`` = station, ``date``, ``comment``, ``genre`` =
    topics); WAV is plain PCM. The manifest is the caller's ``manifest`` plus
    ``audio`` (file name), ``format``, ``bitrate``, ``tags``, ``duration_s``
    (ffprobe), ``loudness`` (ebur128), ``sha256``, ``size_bytes``,
    ``exported_at``.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(
            f"Định dạng không hỗ trợ: {fmt!r} (hỗ trợ: mp3, wav). / Unsupported format {fmt!r} (mp3 or wav)."
        )
    path = Path(path)
    if path.suffix.lower() == ".json":
        raise ValueError(
            f"Tệp âm thanh không được có đuôi .json / the audio path must not end in .json: {path}"
        )
    manifest_path = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = {str(k): "" if v is None else str(v) for k, v in (tags or {}).items()}

    audio_tmp = _tmp_in(path.parent, path.name)
    manifest_tmp: Path | None = None
    try:
        with open(audio_tmp, "wb") as fh:
            if fmt == "mp3":
                audio.export(fh, format="mp3", bitrate=bitrate, tags=tags, id3v2_version="3")
            else:
                audio.export(fh, format="wav")
            fh.flush()
            os.fsync(fh.fileno())

        duration = audio_duration_s(audio_tmp)
        loudness = measure_loudness(audio_tmp)
        data = audio_tmp.read_bytes()
        full_manifest = dict(manifest or {})
        full_manifest.update(
            {
                "audio": path.name,
                "format": fmt,
                "bitrate": bitrate if fmt == "mp3" else None,
                "sample_rate": audio.frame_rate,
                "channels": audio.channels,
                "tags": tags,
                "duration_s": round(duration, 3),
                "loudness": loudness.as_dict(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        manifest_tmp = _tmp_in(path.parent, manifest_path.name)
        with open(manifest_tmp, "w", encoding="utf-8") as fh:
            json.dump(full_manifest, fh, ensure_ascii=False, indent=2, default=_json_default)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())

        # mkstemp creates files 0600; give the published files normal permissions.
        umask = _current_umask()
        for tmp in (audio_tmp, manifest_tmp):
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(audio_tmp, path)
        os.replace(manifest_tmp, manifest_path)
        _fsync_dir(path.parent)
    except BaseException:
        for tmp in (audio_tmp, manifest_tmp):
            if tmp is not None:
                try:
                    tmp.unlink()
                except FileNotFoundError:
                    pass
        raise

    return ExportResult(
        path=path,
        manifest_path=manifest_path,
        duration_s=duration,
        loudness=loudness,
        manifest=json.loads(json.dumps(full_manifest, default=_json_default)),
    )
