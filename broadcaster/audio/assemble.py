"""Bulletin assembly and export.

A bulletin is an ordered list of parts (intro jingle, station ident, the
items, outro; optional explicit pauses). :func:`assemble_bulletin` joins them
into one mono segment with silences between them and returns a timeline the
caller can store with the delivery. :func:`export_bulletin` writes the audio
and a JSON manifest beside it atomically, so a player or a smart speaker
polling the folder never sees half a file.

Gaps between parts:

* between two readings of the same item (``repeat`` > 1): ``pause_ms``;
* between two different items: ``item_gap_ms``;
* between any other neighbours (intro → ident, ident → item, item → outro):
  ``pause_ms``;
* next to an explicit ``"pause"`` part: nothing — the pause part *is* the gap.

An item read more than once may carry a ``repeat_intro`` ("Xin nhắc lại"): it
is said at the start of every reading after the first, followed by
``pause_ms``; that reading's timeline entry includes both and says with
``intro_s`` where the item itself starts.

The render's path (:func:`lay_out` then :func:`encode_bulletin`) never joins the bulletin
into one buffer: a part's audio may be a :class:`ClipSequence` (mastered clips and the
silences between them, each held once), the layout lists where every clip starts, and the
encoder is fed clip by clip with the final gain applied on the way. The written file is then
checked by decoding it and measuring it in-process (:mod:`broadcaster.audio.meter`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydub import AudioSegment

from broadcaster.audio.loudness import Loudness, LoudnessError, measure_loudness, normalize_loudness

if TYPE_CHECKING:
    import numpy as np

    from broadcaster.audio.mastering import MasteredClip

__all__ = [
    "MP3_ENCODER_ARGS",
    "PART_KINDS",
    "BulletinLayout",
    "BulletinPart",
    "ClipSequence",
    "ExportResult",
    "assemble_bulletin",
    "audio_duration_s",
    "encode_bulletin",
    "export_bulletin",
    "lay_out",
    "publish_encoded",
]

# LAME's algorithm quality 7 ("fast, ok quality" in LAME's own words): at 64 kbit/s mono speech it is
# not told apart from the default (3) and encodes about twice as fast.
MP3_ENCODER_ARGS = ("-c:a", "libmp3lame", "-compression_level", "7")

PART_KINDS = ("intro", "ident", "item", "outro", "pause")
EXPORT_FORMATS = ("mp3", "wav")


@dataclass
class ClipSequence:
    """A part's audio as mastered clips and silences (in frames), each held once, never joined."""

    items: list[MasteredClip | int]
    sample_rate: int

    @property
    def frames(self) -> int:
        return sum(item if isinstance(item, int) else item.frames for item in self.items)

    def __len__(self) -> int:  # milliseconds, as for a pydub segment
        return round(self.frames * 1000 / self.sample_rate)


@dataclass
class BulletinPart:
    kind: str  # "intro" | "ident" | "item" | "outro" | "pause"
    audio: AudioSegment | ClipSequence
    item_id: int | None = None
    title: str = ""
    topic: str | None = None
    backend: str | None = None  # e.g. the TTS backend, or "recording"
    repeat: int = 1
    repeat_intro: AudioSegment | ClipSequence | None = None  # said before each reading after the first

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
    duration_s`` (times in seconds, exact to the sample), and ``intro_s`` on a
    reading that starts with the part's ``repeat_intro``.
    """
    _check_layout_args(parts, pause_ms, item_gap_ms, sample_rate)
    pause = b"\0\0" * int(round(pause_ms * sample_rate / 1000))
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
            intro = _conform(spoken, sample_rate).raw_data + pause
        for reading in range(1, part.repeat + 1):
            gap_frames = _gap_frames(prev, part, reading, pause_ms, item_gap_ms, sample_rate)
            if gap_frames:
                chunks.append(b"\0\0" * gap_frames)
                frames += gap_frames
            reading_data = intro + data if reading > 1 else data
            n = len(reading_data) // 2
            timeline.append(_timeline_entry(part, reading, frames, n, sample_rate))
            if reading > 1 and intro:
                timeline[-1]["intro_s"] = round(len(intro) // 2 / sample_rate, 3)
            chunks.append(reading_data)
            frames += n
            prev = part

    out = AudioSegment(data=b"".join(chunks), sample_width=2, frame_rate=sample_rate, channels=1)
    return out, timeline


def _check_layout_args(parts: list[BulletinPart], pause_ms: int, item_gap_ms: int, sample_rate: int) -> None:
    if not parts:
        raise ValueError("Bản tin không có phần nào. / The bulletin has no parts.")
    if pause_ms < 0 or item_gap_ms < 0:
        raise ValueError("Khoảng lặng không được âm. / Pauses must not be negative.")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")


def _gap_frames(prev: BulletinPart | None, part: BulletinPart, reading: int, pause_ms: int, item_gap_ms: int,
                sample_rate: int) -> int:
    """Silence before this reading of ``part`` (see the module docstring)."""
    if prev is None or part.kind == "pause" or prev.kind == "pause":
        return 0
    gap = item_gap_ms if reading == 1 and part.kind == "item" and prev.kind == "item" else pause_ms
    return int(round(gap * sample_rate / 1000))


def _timeline_entry(part: BulletinPart, reading: int, start: int, frames: int, sample_rate: int) -> dict:
    return {
        "kind": part.kind,
        "item_id": part.item_id,
        "title": part.title,
        "topic": part.topic,
        "backend": part.backend,
        "repeat": part.repeat,
        "reading": reading,
        "start_s": round(start / sample_rate, 3),
        "duration_s": round(frames / sample_rate, 3),
    }


@dataclass
class BulletinLayout:
    """Where every mastered clip of a bulletin starts: the bulletin, without joining it."""

    sample_rate: int
    placed: list[tuple[int, MasteredClip]]  # (start frame, clip), in order, not overlapping
    frames: int
    timeline: list[dict]

    def energies(self) -> np.ndarray:
        """K-weighted energy per 100 ms of the whole bulletin, from the clips' own measurements.

        A clip's 100 ms grid starts at its first sample; it is put on the bulletin's grid at
        the nearest sub-block, which moves its energy by under 50 ms: the gated loudness
        changes by a few hundredths of a LU at most (the encoded file is measured anyway).
        """
        import numpy as np

        subblock = max(1, round(self.sample_rate / 10))
        total = np.zeros(self.frames // subblock + 2 + max((len(c.energies) for _, c in self.placed), default=0))
        for start, clip in self.placed:
            first = round(start / subblock)
            total[first : first + len(clip.energies)] += clip.energies
        return total

    @property
    def true_peak_dbtp(self) -> float:
        return max((clip.true_peak_dbtp for _, clip in self.placed), default=float("-inf"))

    def chunks(self, transform: Callable[[MasteredClip], np.ndarray] | None = None) -> Iterator[bytes]:
        """The bulletin as little-endian 16-bit PCM, clip by clip (``transform`` gives each clip's samples)."""
        import numpy as np

        position = 0
        for start, clip in self.placed:
            if start > position:
                yield b"\0\0" * (start - position)
            pcm = clip.pcm if transform is None else transform(clip)
            yield memoryview(np.ascontiguousarray(pcm, dtype="<i2")).cast("B")
            position = start + clip.frames
        if self.frames > position:
            yield b"\0\0" * (self.frames - position)


def lay_out(parts: list[BulletinPart], *, pause_ms: int = 800, item_gap_ms: int = 1200,
            sample_rate: int = 22050) -> BulletinLayout:
    """:func:`assemble_bulletin` for parts whose audio is a :class:`ClipSequence`: same gaps, same
    timeline, but nothing is copied - the result says where each clip goes."""
    _check_layout_args(parts, pause_ms, item_gap_ms, sample_rate)
    placed: list[tuple[int, MasteredClip]] = []
    timeline: list[dict] = []
    frames = 0
    prev: BulletinPart | None = None
    pause = int(round(pause_ms * sample_rate / 1000))
    for part in parts:
        if not isinstance(part.audio, ClipSequence) or part.audio.sample_rate != sample_rate:
            raise ValueError(f"lay_out needs ClipSequence audio at {sample_rate} Hz (part {part.kind})")
        intro: list[MasteredClip | int] = []
        if isinstance(part.repeat_intro, ClipSequence) and part.repeat > 1:
            intro = [*part.repeat_intro.items, pause]
        for reading in range(1, part.repeat + 1):
            items = intro + part.audio.items if reading > 1 else part.audio.items
            n = sum(item if isinstance(item, int) else item.frames for item in items)
            frames += _gap_frames(prev, part, reading, pause_ms, item_gap_ms, sample_rate)
            timeline.append(_timeline_entry(part, reading, frames, n, sample_rate))
            if reading > 1 and intro:
                timeline[-1]["intro_s"] = round((n - part.audio.frames) / sample_rate, 3)
            if part.kind != "pause":
                offset = frames
                for item in items:
                    if isinstance(item, int):
                        offset += item
                    else:
                        placed.append((offset, item))
                        offset += item.frames
            frames += n
            prev = part
    return BulletinLayout(sample_rate=sample_rate, placed=placed, frames=frames, timeline=timeline)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = {str(k): "" if v is None else str(v) for k, v in (tags or {}).items()}

    audio_tmp = _tmp_in(path.parent, path.name)
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
    except BaseException:
        audio_tmp.unlink(missing_ok=True)
        raise
    extra = {"bitrate": bitrate if fmt == "mp3" else None, "sample_rate": audio.frame_rate,
             "channels": audio.channels}
    return _publish(audio_tmp, path, fmt, tags, manifest, extra, duration, loudness)


def _publish(audio_tmp: Path, path: Path, fmt: str, tags: dict, manifest: dict | None, extra: dict,
             duration: float, loudness: Loudness) -> ExportResult:
    """Write the manifest beside the finished temporary audio file and move both into place."""
    manifest_path = path.with_suffix(".json")
    manifest_tmp: Path | None = None
    try:
        data = audio_tmp.read_bytes()
        full_manifest = dict(manifest or {})
        full_manifest.update(
            {
                "audio": path.name,
                "format": fmt,
                **extra,
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


@dataclass
class Encoded:
    """A bulletin written to a temporary file next to its destination, not yet published."""

    tmp: Path
    frames: int  # what was encoded: a decoder that honours the MP3's LAME header gives back exactly these
    checked: Loudness | None  # measured on the written file (None: the check was skipped)


def _ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if not exe:
        raise LoudnessError("Không tìm thấy ffmpeg; hãy cài đặt ffmpeg. / ffmpeg was not found; please install it.")
    return exe


def _ffmpeg_failed(what: str, stderr: bytes) -> LoudnessError:
    tail = " | ".join(stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
    return LoudnessError(f"ffmpeg lỗi khi {what[0]} / ffmpeg failed while {what[1]}: {tail}")


def _write_mp3(chunks: Iterator[bytes], tmp: Path, sample_rate: int, bitrate: str, tags: dict,
               gain_db: float = 0.0) -> None:
    metadata = [arg for key, value in tags.items() for arg in ("-metadata", f"{key}={value}")]
    # the encoder applies plain gain on its way in (float, so nothing is rounded twice)
    volume = ["-af", f"volume={gain_db:.3f}dB:precision=float"] if abs(gain_db) >= 0.005 else []
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
           "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", *volume,
           *MP3_ENCODER_ARGS, "-b:a", bitrate, "-id3v2_version", "3", *metadata, "-f", "mp3", str(tmp)]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit code and message say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.wait() != 0:
            errors.seek(0)
            raise _ffmpeg_failed(("mã hoá MP3", "encoding MP3"), errors.read())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())


def _write_wav(chunks: Iterator[bytes], tmp: Path, sample_rate: int, frames: int) -> None:
    size = frames * 2
    header = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", size)
    with open(tmp, "wb") as fh:
        fh.write(header)
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())


class _PcmCheck:
    """Measures 16-bit PCM bytes as they come: loudness here, true peak on a second thread
    (numpy's FFTs release the GIL). :meth:`result` gives (loudness, frames)."""

    def __init__(self, sample_rate: int) -> None:
        import queue

        from broadcaster.audio.meter import LoudnessMeter, TruePeakMeter

        self.meter = LoudnessMeter(sample_rate, true_peak=False)
        self.peaks = TruePeakMeter()
        self._todo: queue.Queue = queue.Queue(maxsize=2)
        self._leftover = b""
        self._worker = threading.Thread(target=self._measure_peaks, name="true-peak", daemon=True)
        self._worker.start()

    def _measure_peaks(self) -> None:
        while (samples := self._todo.get()) is not None:
            self.peaks.add(samples)

    def take(self, data: bytes) -> None:
        import numpy as np

        data = self._leftover + data
        whole = len(data) // 2 * 2
        self._leftover = data[whole:]
        if whole:
            samples = np.frombuffer(data[:whole], dtype="<i2")
            self._todo.put(samples)
            self.meter.add(samples)

    def close(self) -> None:
        if self._worker.is_alive():
            self._todo.put(None)
            self._worker.join()

    def result(self) -> tuple[Loudness, int]:
        self.close()
        measured = self.meter.result()
        return Loudness(measured.integrated_lufs, self.peaks.dbtp, measured.lra), self.meter.frames


_READ_BLOCK = 1 << 18  # 128k samples: small float copies in the meter


def _check_wav(path: Path, sample_rate: int) -> tuple[Loudness, int]:
    check = _PcmCheck(sample_rate)
    try:
        with open(path, "rb") as fh:
            fh.seek(44)
            while data := fh.read(_READ_BLOCK):
                check.take(data)
    finally:
        check.close()
    return check.result()


def _write_mp3_checked(chunks: Iterator[bytes], tmp: Path, sample_rate: int, bitrate: str,
                       tags: dict, gain_db: float = 0.0) -> tuple[Loudness, int]:
    """Encode, and decode and measure the file *while* it is being written (the two overlap).

    The decoder is fed the file's bytes as the encoder appends them. The one part of the file
    rewritten at the end, the Info frame at its start, carries no audio (frame count, encoder
    delay): the decoder then keeps the encoder's ~50 ms of leading silence, which has no
    loudness, so the figures are the file's. The frame count it returns is not the file's
    (see :func:`publish_encoded`)."""
    exe = _ffmpeg_exe()
    decode = [exe, "-hide_banner", "-nostats", "-loglevel", "error", "-f", "mp3", "-i", "pipe:0",
              "-f", "s16le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"]
    encoded = threading.Event()
    failures: list[BaseException] = []
    check = _PcmCheck(sample_rate)
    with tempfile.TemporaryFile() as decode_errors:
        decoder = subprocess.Popen(decode, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=decode_errors)

        def tail() -> None:
            try:
                with open(tmp, "rb") as fh:
                    while True:
                        data = fh.read(1 << 16)
                        if data:
                            decoder.stdin.write(data)
                        elif encoded.is_set():
                            if not (rest := fh.read()):
                                break
                            decoder.stdin.write(rest)
                        else:
                            time.sleep(0.005)
            except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
                failures.append(exc)
            finally:
                try:
                    decoder.stdin.close()
                except OSError:
                    pass

        def measure() -> None:
            try:
                while data := decoder.stdout.read(_READ_BLOCK):
                    check.take(data)
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)

        threads = [threading.Thread(target=tail, name="mp3-tail", daemon=True),
                   threading.Thread(target=measure, name="mp3-check", daemon=True)]
        for thread in threads:
            thread.start()
        try:
            _write_mp3(chunks, tmp, sample_rate, bitrate, tags, gain_db)
        except BaseException:
            decoder.kill()
            raise
        finally:
            encoded.set()
            for thread in threads:
                thread.join()
            check.close()
        if decoder.wait() != 0:
            decode_errors.seek(0)
            raise _ffmpeg_failed(("kiểm tra tệp", "checking the file"), decode_errors.read())
    if failures:
        raise failures[0]
    return check.result()


def encode_bulletin(layout: BulletinLayout, path: str | PathLike, *, gain_db: float = 0.0,
                    transform: Callable[[MasteredClip], np.ndarray] | None = None, fmt: str = "mp3",
                    bitrate: str = "64k", tags: dict | None = None, check: bool = True) -> Encoded:
    """Encode ``layout`` once into a temporary file beside ``path``: plain ``gain_db`` (applied by
    the MP3 encoder itself), or ``transform`` giving each clip's final samples. With ``check``,
    decode and measure what was written. Publish with :func:`publish_encoded` or throw away with
    ``Encoded.tmp.unlink()``."""
    from broadcaster.audio.mastering import apply_gain

    if transform is not None and gain_db:
        raise ValueError("give gain_db or transform, not both")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(
            f"Định dạng không hỗ trợ: {fmt!r} (hỗ trợ: mp3, wav). / Unsupported format {fmt!r} (mp3 or wav)."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = {str(k): "" if v is None else str(v) for k, v in (tags or {}).items()}
    tmp = _tmp_in(path.parent, path.name)
    try:
        checked = None
        if fmt == "mp3" and check:
            checked, _ = _write_mp3_checked(layout.chunks(transform), tmp, layout.sample_rate, bitrate, tags, gain_db)
        elif fmt == "mp3":
            _write_mp3(layout.chunks(transform), tmp, layout.sample_rate, bitrate, tags, gain_db)
        else:
            if transform is None:
                def transform(clip: MasteredClip) -> np.ndarray:
                    return apply_gain(clip.pcm, gain_db)
            _write_wav(layout.chunks(transform), tmp, layout.sample_rate, layout.frames)
            if check:
                checked, frames = _check_wav(tmp, layout.sample_rate)
                if frames != layout.frames:
                    raise LoudnessError(f"tệp WAV thiếu dữ liệu / the WAV file is short: {frames} of "
                                        f"{layout.frames} frames")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Encoded(tmp=tmp, frames=layout.frames, checked=checked)


def publish_encoded(encoded: Encoded, path: str | PathLike, *, fmt: str, bitrate: str, sample_rate: int,
                    tags: dict | None, manifest: dict | None, loudness: Loudness) -> ExportResult:
    """Move an :func:`encode_bulletin` result into place with its manifest (see :func:`export_bulletin`).

    The duration is the frames encoded: an MP3's LAME header tells decoders to drop the
    encoder's delay and padding, so that is what a player plays (ffprobe agrees within a frame)."""
    path = Path(path)
    tags = {str(k): "" if v is None else str(v) for k, v in (tags or {}).items()}
    frames = encoded.frames
    extra = {"bitrate": bitrate if fmt == "mp3" else None, "sample_rate": sample_rate, "channels": 1}
    return _publish(encoded.tmp, path, fmt, tags, manifest, extra, frames / sample_rate, loudness)
