"""Render content items into one finished bulletin: the glue of the audio pipeline.

::

    intro jingle → station ident → item 1 (× repeat) → item 2 … → outro jingle

For every item, each language it carries becomes one *piece*, Vietnamese
first, then the other languages in alphabetical order:

* a language with a recording (``ContentText.audio_path``) plays that
  recording (backend ``"recorded"``), whatever the text says;
* a language with text is normalised (:func:`normalize_text`: abbreviations,
  numbers, dates… one string per sentence) and every sentence is spoken by
  the TTS chain (cache first, then ``config.audio.tts`` in order), the
  sentences joined by :data:`SENTENCE_PAUSE_MS` of silence.

Loudness (EBU R128): pieces, the ident and the jingles are each brought to
the target loudness before assembly - one measurement, then gain, and a
4x-oversampled peak limiter when the gain would break the true-peak ceiling
(espeak's voice has a peak-to-loudness ratio near 19 dB) - so an operator's
quiet phone recording does not follow a loud jingle. The assembled bulletin
is finished the same way (ffmpeg's two-pass loudnorm only if that misses),
exported atomically with a JSON manifest beside it, and the written file is
measured again (MP3 encoding moves loudness and true peak by up to a dB) and
corrected with plain gain if needed.

Database use: :meth:`Renderer.prepare` reads everything into plain data
(:class:`BulletinJob`) inside the caller's session; :meth:`Renderer.render`
needs no session. Every transaction here is ``BEGIN IMMEDIATE``, so callers
that can should close the session between the two (the CLI does).

A backend falling back (gTTS unreachable → espeak) is logged as a WARNING and
listed in the manifest under ``fallbacks``; it never produces silence. When
no backend can speak a Vietnamese sentence, :class:`RenderError` is raised
and nothing is written.

:func:`estimate_item_seconds` tells the daemon's composer how long an item
will take on air without synthesising anything: exact when every sentence is
already in the render cache, otherwise estimated from the number of spoken
syllables (see :data:`SYLLABLES_PER_SECOND`).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import unicodedata
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydub import AudioSegment

from broadcaster.audio.assemble import BulletinPart, assemble_bulletin, audio_duration_s, export_bulletin
from broadcaster.audio.cache import AudioCache
from broadcaster.audio.jingles import load_jingle
from broadcaster.audio.loudness import Loudness, LoudnessError, measure_loudness, normalize_loudness
from broadcaster.audio.normalize import normalize_text
from broadcaster.audio.tts import LOCAL_BACKENDS, SynthesisChain, SynthesisError, build_chain, load_recording
from broadcaster.errors import BroadcasterError
from broadcaster.timeutil import DEFAULT_TIMEZONE, local, utcnow

log = logging.getLogger("broadcaster.audio.render")

__all__ = [
    "RECORDED",
    "SENTENCE_PAUSE_MS",
    "SYLLABLES_PER_SECOND",
    "BulletinJob",
    "ItemEstimate",
    "ItemSnapshot",
    "RenderError",
    "RenderResult",
    "Renderer",
    "default_output_path",
    "estimate_item_seconds",
    "render_items",
]

RECORDED = "recorded"

# Silence between two sentences of one text (normalize_text splits them).
SENTENCE_PAUSE_MS = 400

# Spoken syllables per second, used when an item's audio is not yet cached.
# A Vietnamese word is one syllable, so the count is the number of
# whitespace-separated tokens of the *normalised* text (numbers already
# written out as words). Measured on four administrative sentences
# (90 syllables, the digits read out) with espeak-ng 1.51 voice "vi":
# 2.88 syll/s at speed 120, 3.61 at 150, 4.23 at 175 - proportional to the
# speed setting, 0.0241 × speed. Google's voice could not be measured here
# (no network; the test fake speaks with espeak); 3.6 syll/s is an assumed,
# deliberately slowish rate for a news voice, so an estimate errs long and a
# slot is not overfilled.
SYLLABLES_PER_SECOND = {"gtts": 3.6, "espeak_per_speed_unit": 3.61 / 150}

# The written file may miss the loudness target by this much before it is corrected and written
# again (the tolerance normalize_loudness works to); the true peak stays this far under the ceiling.
_EXPORT_TOLERANCE_LU = 0.5
_EXPORT_PEAK_MARGIN_DB = 0.3
# Parts are limited this far under the bulletin's true-peak ceiling (MP3 encoding adds up to ~1.3 dB).
_PART_CEILING_BELOW_DB = 1.5
# Plain gain finishes the bulletin only if the true peak stays this far under the ceiling (MP3 headroom).
_FINISH_PEAK_MARGIN_DB = 0.3
# MP3 encoding raises the true peak: the in-memory ceiling for an MP3 bulletin is this much lower.
_MP3_PEAK_HEADROOM_DB = 1.0

_PIECE_KIND_TEXT = "text"
_PIECE_KIND_RECORDING = "recording"


class RenderError(BroadcasterError):
    """A bulletin could not be rendered. The message is Vietnamese first, then English."""


@dataclass
class RenderResult:
    path: Path
    manifest_path: Path
    duration_s: float  # ffprobe's duration of the written file
    loudness: Loudness  # measured on the written file
    timeline: list[dict]  # one entry per reading, see assemble_bulletin
    item_seconds: dict[int, float]  # airtime of each item, all its readings and the pauses between them
    backends: dict[int, str]  # e.g. "gtts", "espeak", "recorded", "gtts+recorded"
    fallbacks: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @property
    def fell_back(self) -> bool:
        return bool(self.fallbacks)


@dataclass(frozen=True)
class ItemEstimate:
    seconds: float  # airtime including every reading and the pauses between readings
    reading_s: float  # one reading
    repeat: int
    exact: bool  # True: every piece was in the cache (or a recording); False: estimated from text


@dataclass
class _Piece:
    lang: str
    kind: str  # "text" | "recording"
    audio: AudioSegment
    backend: str  # "gtts" | "espeak" | "recorded" | "gtts+espeak" ...
    sentences: list[dict] = field(default_factory=list)  # text pieces: per sentence, who spoke it

    def describe(self, item_id: int | None, part: str) -> dict:
        return {
            "part": part,
            "item_id": item_id,
            "lang": self.lang,
            "kind": self.kind,
            "backend": self.backend,
            "duration_s": round(len(self.audio) / 1000.0, 3),
            "sentences": self.sentences,
        }


class _WarningCatcher(logging.Handler):
    """Collects WARNING records of the speech backends emitted by *this* thread."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # pragma: no cover - a bad format string in someone's log call
                self.messages.append(str(record.msg))


@contextmanager
def _catch_backend_warnings() -> Iterator[_WarningCatcher]:
    catcher = _WarningCatcher()
    logger = logging.getLogger("broadcaster.audio")
    logger.addHandler(catcher)
    try:
        yield catcher
    finally:
        logger.removeHandler(catcher)


def _gain_and_limit(seg: AudioSegment, gain_db: float, ceiling_dbtp: float) -> AudioSegment:
    """``gain_db`` then a look-ahead peak limiter at 4x oversampling, so the true peak stays near the ceiling."""
    rate = seg.frame_rate
    limit = 10 ** ((ceiling_dbtp - 0.3) / 20)
    af = (f"aformat=sample_fmts=dbl,volume={gain_db:.2f}dB,aresample={rate * 4},"
          f"alimiter=limit={limit:.4f}:attack=1:release=50:level=false:latency=true,aresample={rate}")
    cmd = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
           "-i", "pipe:0", "-af", af, "-ar", str(rate), "-ac", "1", "-f", "s16le", "pipe:1"]
    try:
        done = subprocess.run(cmd, input=seg.raw_data, capture_output=True, check=False)
    except OSError as exc:
        raise RenderError(f"Không chạy được ffmpeg / could not run ffmpeg: {exc}") from exc
    if done.returncode != 0:
        tail = " | ".join(done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
        raise RenderError(f"ffmpeg lỗi khi giới hạn đỉnh / ffmpeg failed while limiting peaks: {tail}")
    return AudioSegment(data=done.stdout, sample_width=2, frame_rate=rate, channels=1)


def _join_backends(names: list[str]) -> str:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return "+".join(seen)


def _lang_order(lang: str) -> tuple[int, str]:
    return (0 if lang.split("-")[0].lower() == "vi" else 1, lang)


def _silence(ms: int, frame_rate: int) -> AudioSegment:
    return AudioSegment.silent(duration=ms, frame_rate=frame_rate)


def _wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else None
    except (OSError, EOFError, wave.Error):
        return None


def default_output_path(config, station_code: str | None, fmt: str, when: datetime | None = None,
                        tz_name: str | None = None) -> Path:
    """``output_dir/<station or bulletin>_<YYYYmmdd-HHMMSS>.<fmt>`` in station time; never an existing file."""
    when = local(when or utcnow(), tz_name or DEFAULT_TIMEZONE)
    stem = f"{station_code or 'bulletin'}_{when.strftime('%Y%m%d-%H%M%S')}"
    path = Path(config.output_dir) / f"{stem}.{fmt}"
    n = 1
    while path.exists() or path.with_suffix(".json").exists():
        path = Path(config.output_dir) / f"{stem}-{n}.{fmt}"
        n += 1
    return path


class Renderer:
    """Everything a render needs, built once from the configuration.

    A daemon keeps one Renderer for its lifetime: the TTS chain remembers a
    gTTS outage (its cooldown) and the normalised jingles are kept in memory.
    """

    def __init__(self, config, *, chain: SynthesisChain | None = None, local_only: bool = False):
        """``local_only``: speak with backends that need no network (an emergency never waits on one)."""
        audio = config.audio
        self.config = config
        self.target_lufs = float(audio.target_lufs)
        self.max_true_peak_dbtp = float(audio.max_true_peak_dbtp)
        self.format = str(audio.format).lower()
        self.bitrate = str(audio.bitrate)
        self.sample_rate = int(audio.sample_rate)
        self.pause_ms = int(audio.pause_ms)
        self.item_gap_ms = int(audio.item_gap_ms)
        self.ident = str(audio.ident)
        self.abbreviations = dict(audio.abbreviations)
        self.sentence_pause_ms = SENTENCE_PAUSE_MS
        if chain is None:
            try:
                names = list(audio.tts)
                if local_only:
                    names = [n for n in names if n in LOCAL_BACKENDS] or sorted(LOCAL_BACKENDS)
                chain = build_chain(
                    names,
                    cache_dir=Path(config.cache_dir),
                    gtts_options=dict(audio.gtts),
                    espeak_options=dict(audio.espeak),
                    retry_seconds=float(audio.tts_retry_seconds),
                )
            except ValueError as exc:
                raise RenderError(f"[audio] tts: {exc}") from exc
        self.chain = chain
        self._jingles: dict[str, AudioSegment] = {}
        self._lock = threading.Lock()

    # -- text -------------------------------------------------------------
    def normalize(self, text: str) -> list[str]:
        """The sentences exactly as they will be spoken."""
        return normalize_text(text, self.abbreviations)

    def ident_text(self, station_name: str | None) -> str | None:
        if not station_name or not self.ident.strip():
            return None
        return self.ident.replace("{station}", station_name)

    # -- speech -----------------------------------------------------------
    def speak_text(self, text: str, lang: str, *, catcher: _WarningCatcher | None = None,
                   fallbacks: list[dict] | None = None, where: str = "") -> _Piece:
        """Normalise ``text`` and speak every sentence through the chain."""
        sentences = self.normalize(text)
        if not sentences:
            raise RenderError(f"{where}: không có gì để đọc / nothing to speak")
        preferred = self.chain.names[0]
        audio: AudioSegment | None = None
        spoken: list[dict] = []
        for sentence in sentences:
            mark = len(catcher.messages) if catcher is not None else 0
            try:
                speech = self.chain.speak(sentence, lang)
            except SynthesisError as exc:
                raise RenderError(f"{where}: {exc}") from exc
            seg = speech.audio
            if seg.channels != 1:
                seg = seg.set_channels(1)
            seg = seg.set_frame_rate(self.sample_rate).set_sample_width(2)
            audio = seg if audio is None else audio + _silence(self.sentence_pause_ms, self.sample_rate) + seg
            entry = {"text": sentence, "backend": speech.backend, "voice": speech.voice, "cached": speech.cached}
            spoken.append(entry)
            if speech.backend != preferred and fallbacks is not None:
                reasons = catcher.messages[mark:] if catcher is not None else []
                fallbacks.append(
                    {"where": where, "lang": lang, "text": sentence, "wanted": preferred,
                     "backend": speech.backend, "reasons": reasons}
                )
        assert audio is not None
        return _Piece(lang=lang, kind=_PIECE_KIND_TEXT, audio=audio,
                      backend=_join_backends([s["backend"] for s in spoken]), sentences=spoken)

    def recording_path(self, audio_path: str) -> Path:
        path = Path(audio_path).expanduser()
        return path if path.is_absolute() else Path(self.config.recordings_dir) / path

    def load_recording(self, audio_path: str, lang: str, where: str) -> _Piece:
        path = self.recording_path(audio_path)
        try:
            seg = load_recording(path)
        except SynthesisError as exc:
            raise RenderError(f"{where}: {exc}") from exc
        if seg.channels != 1:
            seg = seg.set_channels(1)
        return _Piece(lang=lang, kind=_PIECE_KIND_RECORDING, audio=seg, backend=RECORDED,
                      sentences=[{"file": str(path), "backend": RECORDED}])

    def level(self, seg: AudioSegment, ceiling_dbtp: float | None = None) -> AudioSegment:
        """Bring a finished bulletin to the target loudness under the true-peak ceiling (EBU R128)."""
        ceiling = self.max_true_peak_dbtp if ceiling_dbtp is None else ceiling_dbtp
        try:
            return normalize_loudness(seg, self.target_lufs, ceiling, sample_rate=self.sample_rate)
        except LoudnessError as exc:
            raise RenderError(str(exc)) from exc

    def finish(self, seg: AudioSegment, fmt: str = "wav") -> AudioSegment:
        """Bring the assembled bulletin to the target loudness under the true-peak ceiling.

        MP3 encoding raises the true peak by up to ~1.3 dB (low-pass ringing,
        quantisation), so for MP3 the in-memory ceiling is
        :data:`_MP3_PEAK_HEADROOM_DB` lower. The parts are already near the
        target and peak-limited (:meth:`match`), so plain gain - or gain and
        one fast limiter pass - nearly always does; the result is measured,
        and only if it misses does the two-pass loudnorm (:meth:`level`,
        ~35 s for 10 minutes of audio) run.
        """
        ceiling = self.max_true_peak_dbtp - (_MP3_PEAK_HEADROOM_DB if fmt == "mp3" else 0.0)
        try:
            got = measure_loudness(seg)
            if got.is_silent:
                raise RenderError("bản tin chỉ có im lặng / the bulletin is silent")
            gain = self.target_lufs - got.integrated_lufs
            if got.true_peak_dbtp + gain <= ceiling - _FINISH_PEAK_MARGIN_DB:
                return seg.apply_gain(gain) if abs(gain) >= 0.05 else seg
            out = _gain_and_limit(seg, gain, ceiling)
            check = measure_loudness(out)
        except LoudnessError as exc:
            raise RenderError(str(exc)) from exc
        if abs(check.integrated_lufs - self.target_lufs) <= _EXPORT_TOLERANCE_LU and check.true_peak_dbtp <= ceiling:
            return out
        log.info("limiter pass gave %.2f LUFS, %.2f dBTP; running loudnorm", check.integrated_lufs,
                 check.true_peak_dbtp)
        return self.level(seg, ceiling)

    def match(self, seg: AudioSegment) -> AudioSegment:
        """Bring one part (a piece, the ident, a jingle) to the target loudness, peaks limited.

        One ebur128 measurement, then plain gain when the true peak stays
        under the part ceiling (:data:`_PART_CEILING_BELOW_DB` under the
        bulletin's, leaving room for MP3 encoding); otherwise gain and a
        look-ahead limiter at 4× the sample rate in one ffmpeg pass. espeak's
        voice has a peak-to-loudness ratio near 19 dB, so -16 LUFS under a
        -1 dBTP ceiling needs a few dB of peak limiting somewhere; doing it per
        part is cheap and lets the whole bulletin finish with plain gain
        instead of a two-pass loudnorm at 192 kHz (≈ 35 s for 10 minutes).
        """
        seg = seg.set_channels(1) if seg.channels != 1 else seg
        seg = seg.set_frame_rate(self.sample_rate).set_sample_width(2)
        try:
            got = measure_loudness(seg)
        except LoudnessError as exc:
            raise RenderError(str(exc)) from exc
        if got.is_silent:
            return seg
        gain = self.target_lufs - got.integrated_lufs
        ceiling = self.max_true_peak_dbtp - _PART_CEILING_BELOW_DB
        if got.true_peak_dbtp + gain <= ceiling:
            return seg.apply_gain(gain) if abs(gain) >= 0.05 else seg
        return _gain_and_limit(seg, gain, ceiling)

    def jingle(self, name: str) -> AudioSegment:
        with self._lock:
            if name not in self._jingles:
                self._jingles[name] = self.match(load_jingle(name))
            return self._jingles[name]

    # -- items ------------------------------------------------------------
    def item_pieces(self, item: ItemSnapshot, *, catcher=None, fallbacks=None) -> list[_Piece]:
        """The pieces of one reading of ``item``: Vietnamese first, recordings where there are any."""
        where = f"tin/item {item.id} «{item.title}»"
        pieces: list[_Piece] = []
        skipped: list[str] = []
        for lang, text, audio_path in item.texts:
            label = f"{where} [{lang}]"
            if audio_path:
                pieces.append(self.load_recording(audio_path, lang, label))
            elif text and text.strip():
                try:
                    pieces.append(self.speak_text(text, lang, catcher=catcher, fallbacks=fallbacks, where=label))
                except RenderError as exc:
                    if _lang_order(lang)[0] == 0:
                        raise  # Vietnamese must be heard
                    # Text-to-speech covers Vietnamese only: a minority-language text
                    # without a recording is left out, loudly, instead of failing the bulletin.
                    log.warning(
                        "Bỏ qua phần tiếng %s của %s: không có bản ghi âm và không đọc được (%s) / "
                        "Skipping the %s text of %s: no recording and no voice can read it (%s)",
                        lang, where, exc, lang, where, exc,
                    )
                    skipped.append(lang)
                    if fallbacks is not None:
                        fallbacks.append({"where": label, "lang": lang, "text": text[:80], "wanted": "tts",
                                          "backend": None, "reasons": [str(exc)], "skipped": True})
        if not pieces:
            extra = f" (bỏ qua/skipped: {', '.join(skipped)})" if skipped else ""
            raise RenderError(
                f"{where}: không có nội dung để phát (cần văn bản tiếng Việt hoặc bản ghi âm){extra} / "
                f"nothing to play (needs Vietnamese text or a recording){extra}"
            )
        return pieces

    def join_pieces(self, pieces: list[_Piece]) -> AudioSegment:
        audio: AudioSegment | None = None
        for piece in pieces:
            leveled = self.match(piece.audio)
            audio = leveled if audio is None else audio + _silence(self.pause_ms, self.sample_rate) + leveled
        assert audio is not None
        return audio

    # -- estimation ------------------------------------------------------
    def cached_sentence_seconds(self, sentence: str, lang: str) -> float | None:
        """Duration of the render the chain would take from its cache, or None. Never synthesises."""
        cache = self.chain.cache
        if cache is None:
            return None
        text = unicodedata.normalize("NFC", sentence).strip()
        for synth in self.chain.synthesizers:
            key = AudioCache.key(text, synth.name, lang, synth.cache_key_settings())
            seconds = _wav_seconds(cache.path_for(key))
            if seconds is not None and seconds > 0:
                return seconds
        return None

    def syllables_per_second(self) -> float:
        """Speaking rate assumed for text not yet in the cache (first backend of the chain)."""
        first = self.chain.synthesizers[0]
        if first.name == "espeak":
            return SYLLABLES_PER_SECOND["espeak_per_speed_unit"] * float(getattr(first, "speed", 150))
        return SYLLABLES_PER_SECOND["gtts"]

    def estimate_text_seconds(self, text: str, lang: str = "vi") -> tuple[float, bool]:
        """(seconds of one spoken text, exact?) - exact when every sentence is in the cache."""
        sentences = self.normalize(text)
        if not sentences:
            return 0.0, True
        exact = True
        total = 0.0
        rate = self.syllables_per_second()
        for sentence in sentences:
            seconds = self.cached_sentence_seconds(sentence, lang)
            if seconds is None:
                exact = False
                seconds = max(1, len(sentence.split())) / rate
            total += seconds
        total += (len(sentences) - 1) * self.sentence_pause_ms / 1000.0
        return total, exact

    def estimate_snapshot(self, item: ItemSnapshot) -> ItemEstimate:
        parts: list[float] = []
        exact = True
        for lang, text, audio_path in item.texts:
            if audio_path:
                try:
                    parts.append(audio_duration_s(self.recording_path(audio_path)))
                except (OSError, RuntimeError):
                    exact = False  # a missing recording fails the render anyway
            elif text and text.strip():
                seconds, known = self.estimate_text_seconds(text, lang)
                parts.append(seconds)
                exact = exact and known
        reading = sum(parts) + max(0, len(parts) - 1) * self.pause_ms / 1000.0
        repeat = item.repeat
        seconds = repeat * reading + (repeat - 1) * self.pause_ms / 1000.0
        return ItemEstimate(seconds=round(seconds, 3), reading_s=round(reading, 3), repeat=repeat, exact=exact)

    def estimate_item(self, session, item) -> ItemEstimate:
        """How long ``item`` takes on air, and whether that is exact; see :func:`estimate_item_seconds`."""
        return self.estimate_snapshot(ItemSnapshot.load(session, item))

    # -- the bulletin -----------------------------------------------------
    def prepare(self, session, items: list, station=None) -> BulletinJob:
        """Read everything a render needs from the database into plain data.

        Every write transaction of this project is ``BEGIN IMMEDIATE`` (SQLite
        write lock): keep the session short, call :meth:`prepare` inside it
        and :meth:`render` after it is closed, so a render that waits on the
        network never blocks the daemon or another command.
        """
        if not items:
            raise RenderError("bản tin không có tin nào / the bulletin has no items")
        topic_cache: dict[int, Any] = {}
        snapshots = [ItemSnapshot.load(session, item, topic_cache) for item in items]
        return BulletinJob(
            items=snapshots,
            station_code=getattr(station, "code", None),
            station_name=getattr(station, "name", None),
            timezone=getattr(station, "timezone", None) or str(self.config.broadcaster.timezone or DEFAULT_TIMEZONE),
        )

    def render_items(self, session, items: list, station=None, *, output: Path | None = None,
                     progress: Callable[[int, int, str], Any] | None = None,
                     title: str | None = None) -> RenderResult:
        """:meth:`prepare` then :meth:`render` (the session stays open during the render: see prepare)."""
        return self.render(self.prepare(session, items, station), output=output, progress=progress, title=title)

    def render(self, job: BulletinJob, *, output: Path | None = None,
               progress: Callable[[int, int, str], Any] | None = None, title: str | None = None) -> RenderResult:
        """Render a prepared bulletin into one file (and its manifest); see the module docstring.

        ``progress(done, total, label)`` is called as the work advances
        (``total`` = items + 2: jingles and ident, then loudness and export).
        """
        total = len(job.items) + 2
        step = 0

        def advance(label: str) -> None:
            nonlocal step
            step += 1
            if progress is not None:
                progress(step, total, label)

        if progress is not None:
            progress(0, total, "bắt đầu / starting")
        now = utcnow()
        now_local = local(now, job.timezone)
        fmt = self.format
        if output is not None:
            output = Path(output).expanduser()
            suffix = output.suffix.lower().lstrip(".")
            if suffix in ("mp3", "wav"):
                fmt = suffix
            else:
                output = output.with_name(f"{output.name}.{fmt}")
        else:
            output = default_output_path(self.config, job.station_code, fmt, now, job.timezone)

        fallbacks: list[dict] = []
        pieces_log: list[dict] = []
        parts: list[BulletinPart] = []
        item_seconds: dict[int, float] = {}
        backends: dict[int, str] = {}
        manifest_items: list[dict] = []
        topics: list[str] = []

        with _catch_backend_warnings() as catcher:
            parts.append(BulletinPart("intro", self.jingle("intro"), title="intro", backend="jingle"))
            ident = self.ident_text(job.station_name)
            if ident:
                piece = self.speak_text(ident, "vi", catcher=catcher, fallbacks=fallbacks, where="ident")
                pieces_log.append(piece.describe(None, "ident"))
                parts.append(BulletinPart("ident", self.match(piece.audio), title=ident, backend=piece.backend))
            advance("nhạc hiệu, giới thiệu đài / jingles, ident")

            for item in job.items:
                pieces = self.item_pieces(item, catcher=catcher, fallbacks=fallbacks)
                audio = self.join_pieces(pieces)
                if item.topic_code and item.topic_code not in topics:
                    topics.append(item.topic_code)
                backend = _join_backends([p.backend for p in pieces])
                backends[item.id] = backend
                reading = len(audio) / 1000.0
                airtime = item.repeat * reading + (item.repeat - 1) * self.pause_ms / 1000.0
                item_seconds[item.id] = round(airtime, 3)
                pieces_log.extend(piece.describe(item.id, "item") for piece in pieces)
                parts.append(BulletinPart("item", audio, item_id=item.id, title=item.title, topic=item.topic_code,
                                          backend=backend, repeat=item.repeat))
                manifest_items.append(
                    {"id": item.id, "title": item.title, "topic": item.topic_code, "topic_title": item.topic_title,
                     "priority": item.priority, "repeat": item.repeat, "languages": [p.lang for p in pieces],
                     "backend": backend, "reading_s": round(reading, 3), "airtime_s": item_seconds[item.id]}
                )
                advance(f"tin/item {item.id}")

            parts.append(BulletinPart("outro", self.jingle("outro"), title="outro", backend="jingle"))

        assembled, timeline = assemble_bulletin(parts, pause_ms=self.pause_ms, item_gap_ms=self.item_gap_ms,
                                                sample_rate=self.sample_rate)
        assembled = self.finish(assembled, fmt)

        if fallbacks:  # the chain already warned once when the backend failed; this is the bulletin's account
            used = ", ".join(sorted({f["backend"] for f in fallbacks if f.get("backend")})) or "-"
            log.info(
                "Bản tin %s: %d đoạn không đọc được bằng %s, đã dùng %s / "
                "bulletin %s: %d piece(s) could not use %s and fell back to %s",
                output.name, len(fallbacks), self.chain.names[0], used,
                output.name, len(fallbacks), self.chain.names[0], used,
            )

        if not title:
            title = f"Bản tin {job.station_name} {now_local:%d/%m/%Y %H:%M}" if job.station_name \
                else f"Bản tin {now_local:%d/%m/%Y %H:%M}"
        tags = {
            "title": title,
            "artist": job.station_name or "",
            "album": "Bản tin truyền thanh",
            "date": now_local.strftime("%Y-%m-%d"),
            "genre": ", ".join(topics),
            "comment": "items " + ",".join(str(i.id) for i in job.items),
        }
        manifest = {
            "title": title,
            "station": {"code": job.station_code, "name": job.station_name} if job.station_code else None,
            "rendered_at": now.isoformat(timespec="seconds"),
            "rendered_at_local": now_local.isoformat(timespec="seconds"),
            "items": manifest_items,
            "topics": topics,
            "backends": {str(k): v for k, v in backends.items()},
            "item_seconds": {str(k): v for k, v in item_seconds.items()},
            "pieces": pieces_log,
            "fallbacks": fallbacks,
            "tts_chain": self.chain.names,
            "target_lufs": self.target_lufs,
            "max_true_peak_dbtp": self.max_true_peak_dbtp,
            "timeline": timeline,
        }
        exported = self._export(assembled, output, fmt, tags, manifest)
        advance("âm lượng, xuất tệp / loudness, export")
        return RenderResult(
            path=exported.path,
            manifest_path=exported.manifest_path,
            duration_s=exported.duration_s,
            loudness=exported.loudness,
            timeline=timeline,
            item_seconds=item_seconds,
            backends=backends,
            fallbacks=fallbacks,
            manifest=exported.manifest,
        )

    def _export(self, audio: AudioSegment, output: Path, fmt: str, tags: dict, manifest: dict):
        """Export, then check the *file*: MP3 encoding (low-pass, quantisation) moves the loudness by a
        few tenths of a LU and the true peak up by as much; correct with plain gain and export again
        (at most twice). The true-peak ceiling always wins over the loudness target; if a correction
        made things worse, the best version is written again (LAME is deterministic)."""
        tried: list[tuple[float, AudioSegment, Any]] = []

        def badness(loud: Loudness) -> float:
            over = max(0.0, loud.true_peak_dbtp - self.max_true_peak_dbtp)
            return 100.0 * over + abs(self.target_lufs - loud.integrated_lufs)

        for attempt in range(3):
            exported = export_bulletin(audio, output, fmt=fmt, bitrate=self.bitrate, tags=tags, manifest=manifest)
            got = exported.loudness
            tried.append((badness(got), audio, exported))
            if got.is_silent or attempt == 2:
                break
            error = self.target_lufs - got.integrated_lufs
            headroom = self.max_true_peak_dbtp - got.true_peak_dbtp
            if headroom < 0:
                gain = headroom - _EXPORT_PEAK_MARGIN_DB
            elif error < -_EXPORT_TOLERANCE_LU:
                gain = error
            elif error > _EXPORT_TOLERANCE_LU:
                # encoding raises the true peak by more than the gain: keep a margin
                gain = min(error, headroom - _EXPORT_PEAK_MARGIN_DB)
                if gain < 0.05:
                    break  # too quiet, but the ceiling leaves no room: keep what we have
            else:
                break
            if abs(gain) < 0.05:
                break
            log.info("after encoding: %.2f LUFS, true peak %.2f dBTP; gain %+.2f dB and export again",
                     got.integrated_lufs, got.true_peak_dbtp, gain)
            audio = audio.apply_gain(gain)
        best = min(tried, key=lambda t: t[0])
        if best is not tried[-1]:
            exported = export_bulletin(best[1], output, fmt=fmt, bitrate=self.bitrate, tags=tags, manifest=manifest)
        return exported


@dataclass(frozen=True)
class ItemSnapshot:
    """What a render needs of one item, read from the database."""

    id: int
    title: str
    priority: str
    repeat: int
    topic_code: str | None
    topic_title: str | None
    texts: tuple[tuple[str, str | None, str | None], ...]  # (lang, text, audio_path), Vietnamese first

    @classmethod
    def load(cls, session, item, topic_cache: dict | None = None) -> ItemSnapshot:
        from broadcaster import content
        from broadcaster.models import Topic

        topic = None
        if item.topic_id is not None:
            cache = topic_cache if topic_cache is not None else {}
            if item.topic_id not in cache:
                cache[item.topic_id] = session.get(Topic, item.topic_id)
            topic = cache[item.topic_id]
        rows = content.item_texts(session, item)
        texts = tuple((lang, rows[lang].text, rows[lang].audio_path) for lang in sorted(rows, key=_lang_order))
        return cls(
            id=item.id,
            title=item.title,
            priority=str(item.priority),
            repeat=max(1, int(content.effective_repeat(item))),
            topic_code=topic.code if topic is not None else None,
            topic_title=topic.title if topic is not None else None,
            texts=texts,
        )


@dataclass(frozen=True)
class BulletinJob:
    """A bulletin ready to render without the database (see :meth:`Renderer.prepare`)."""

    items: list[ItemSnapshot]
    station_code: str | None
    station_name: str | None
    timezone: str


def render_items(session, items: list, station=None, *, renderer: Renderer, output: Path | None = None,
                 progress: Callable[[int, int, str], Any] | None = None, title: str | None = None) -> RenderResult:
    """Functional form of :meth:`Renderer.render_items`."""
    return renderer.render_items(session, items, station, output=output, progress=progress, title=title)


def estimate_item_seconds(session, item, renderer: Renderer) -> float:
    """Seconds ``item`` takes on air in a bulletin: every reading and the pauses between them.

    Exact (to the millisecond) when all its sentences are in the render cache
    and its recordings are readable; otherwise estimated from the syllable
    count of the normalised text (:data:`SYLLABLES_PER_SECOND`). Never
    synthesises, never touches the network. The gap before the next item
    (``item_gap_ms``) is not included. :meth:`Renderer.estimate_item` also
    says whether the figure is exact.
    """
    return renderer.estimate_item(session, item).seconds
