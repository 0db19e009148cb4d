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

Loudness (EBU R128): every sentence, recording and jingle is mastered on its
own (:mod:`broadcaster.audio.mastering`, in-process: gain, a 4x-oversampled
peak limiter when needed and the loudness it took made up) so an operator's
quiet phone recording does not follow a loud jingle. A spoken sentence is
cached *after* mastering, keyed by text, voice, backend and the mastering
settings, with its measurement: a warm render reads finished clips. An
operator's recording and a jingle are cached the same way, keyed by the hash
of their content and the mastering settings (a warm render does not decode a
recording again).

The bulletin is then laid out without being joined (:func:`lay_out`), its
loudness computed from the clips' own measurements, and the final gain chosen
*before* encoding from that figure and the encoder's known shift
(:data:`ENCODER_LOUDNESS_SHIFT_LU`), so it is encoded once: one ffmpeg pass
for MP3, none for WAV. The written file is decoded and measured (the check);
only when it misses the target by more than :data:`_EXPORT_TOLERANCE_LU` or
breaks the true-peak ceiling is it corrected and encoded again. A short
announcement that must air at once can skip the check (``check=False``): the
manifest then gives the predicted loudness and says so.

Cold sentences are synthesised in parallel, one worker per CPU (each espeak-ng
run is a process of its own), in the order the bulletin needs them.

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

import hashlib
import logging
import os
import threading
import unicodedata
import wave
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydub import AudioSegment

from broadcaster.audio.assemble import (
    BulletinLayout,
    BulletinPart,
    ClipSequence,
    audio_duration_s,
    encode_bulletin,
    lay_out,
    publish_encoded,
)
from broadcaster.audio.cache import AudioCache
from broadcaster.audio.jingles import load_jingle
from broadcaster.audio.loudness import Loudness, LoudnessError
from broadcaster.audio.mastering import MasteredClip, apply_gain, limit_peaks, master_clip
from broadcaster.audio.meter import loudness_of_energies
from broadcaster.audio.normalize import normalize_text
from broadcaster.audio.tts import (
    LOCAL_BACKENDS,
    MasteredSpeech,
    SynthesisChain,
    SynthesisError,
    build_chain,
    load_recording,
)
from broadcaster.errors import BroadcasterError
from broadcaster.timeutil import DEFAULT_TIMEZONE, local, utcnow

log = logging.getLogger("broadcaster.audio.render")

__all__ = [
    "ENCODER_LOUDNESS_SHIFT_LU",
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
# Clips are mastered this far under the bulletin's true-peak ceiling: room for MP3 (below) and for the
# final gain (about +0.5 dB, the encoder's shift), so that gain needs no limiter pass.
_PART_CEILING_BELOW_DB = 2.0
# MP3 encoding (LAME at 64 kbit/s, 22.05 kHz) moves the true peak by up to about a dB either way: the
# bulletin's ceiling before encoding is this much lower.
_MP3_PEAK_HEADROOM_DB = 1.0
# Loudness of the encoded file minus loudness of what was fed to the encoder, measured on espeak and
# gTTS speech with the project's jingles at 64 kbit/s (LAME's low-pass removes a little energy); the
# final gain makes up for it before encoding. The check after encoding catches any other content.
ENCODER_LOUDNESS_SHIFT_LU = {"mp3": -0.4, "wav": 0.0}
# Bump when mastering changes its output: cached mastered clips then miss and are made again.
_MASTERING_VERSION = 1

_PIECE_KIND_TEXT = "text"
_PIECE_KIND_RECORDING = "recording"


class RenderError(BroadcasterError):
    """A bulletin could not be rendered. The message is Vietnamese first, then English."""


@dataclass
class RenderResult:
    path: Path
    manifest_path: Path
    duration_s: float  # duration of the written file (its decoded frames when checked)
    loudness: Loudness  # measured on the written file (predicted when rendered with check=False)
    timeline: list[dict]  # one entry per reading, see assemble_bulletin / lay_out
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
    audio: ClipSequence  # mastered sentences with the pauses between them, or one mastered recording
    backend: str  # "gtts" | "espeak" | "recorded" | "gtts+espeak" ...
    sentences: list[dict] = field(default_factory=list)  # text pieces: per sentence, who spoke it

    def describe(self, item_id: int | None, part: str) -> dict:
        return {
            "part": part,
            "item_id": item_id,
            "lang": self.lang,
            "kind": self.kind,
            "backend": self.backend,
            "duration_s": round(self.audio.frames / self.audio.sample_rate, 3),
            "sentences": self.sentences,
        }


@dataclass(frozen=True)
class _Mastering:
    """How every clip is mastered (see :mod:`broadcaster.audio.mastering`); ``settings`` key the cache."""

    target_lufs: float
    ceiling_dbtp: float
    sample_rate: int

    @property
    def settings(self) -> dict:
        return {"target_lufs": self.target_lufs, "ceiling_dbtp": self.ceiling_dbtp,
                "sample_rate": self.sample_rate, "version": _MASTERING_VERSION}

    def master(self, seg: AudioSegment) -> MasteredClip:
        if seg.channels != 1:
            seg = seg.set_channels(1)
        seg = seg.set_frame_rate(self.sample_rate).set_sample_width(2)
        pcm = np.frombuffer(seg.raw_data, dtype="<i2")
        return master_clip(pcm, self.sample_rate, self.target_lufs, self.ceiling_dbtp)


@dataclass
class _Spoken:
    """One sentence's outcome from a synthesis worker: the speech or the error, and its warnings."""

    speech: MasteredSpeech | None
    error: SynthesisError | None
    warnings: list[str]


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


def _join_backends(names: list[str]) -> str:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return "+".join(seen)


def _lang_order(lang: str) -> tuple[int, str]:
    return (0 if lang.split("-")[0].lower() == "vi" else 1, lang)


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
        self.repeat_intro = str(audio.repeat_intro)
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
        self.mastering = _Mastering(self.target_lufs, self.max_true_peak_dbtp - _PART_CEILING_BELOW_DB,
                                    self.sample_rate)
        self.workers = max(1, os.cpu_count() or 1)
        self._jingles: dict[str, MasteredClip] = {}
        self._lock = threading.Lock()

    # -- text -------------------------------------------------------------
    def normalize(self, text: str) -> list[str]:
        """The sentences exactly as they will be spoken."""
        return normalize_text(text, self.abbreviations)

    def ident_text(self, station_name: str | None) -> str | None:
        if not station_name or not self.ident.strip():
            return None
        return self.ident.replace("{station}", station_name)

    def repeat_intro_audio(self, item: ItemSnapshot, *, fallbacks=None, pieces_log: list[dict] | None = None,
                           ahead=None) -> ClipSequence | None:
        """"Xin nhắc lại" (``[audio] repeat_intro``), said before each repeat of an item read more than
        once, mastered like every sentence; None for an item read once or when the setting is empty."""
        if item.repeat < 2 or not self.repeat_intro.strip():
            return None
        piece = self.speak_text(self.repeat_intro, "vi", fallbacks=fallbacks,
                                where=f"tin/item {item.id} [repeat_intro]", ahead=ahead)
        if pieces_log is not None:
            pieces_log.append(piece.describe(item.id, "repeat_intro"))
        return piece.audio

    def airtime_s(self, repeat: int, reading_s: float, intro_s: float) -> float:
        """Every reading, the pauses between them and the repeat intro before each repeat."""
        pause_s = self.pause_ms / 1000.0
        before_repeat = pause_s + (intro_s + pause_s if intro_s else 0.0)
        return repeat * reading_s + (repeat - 1) * before_repeat

    # -- speech -----------------------------------------------------------
    def speak_sentence(self, sentence: str, lang: str) -> _Spoken:
        """Speak and master one sentence (cache first); safe in any thread, never raises for TTS."""
        catcher = _WarningCatcher()  # this thread's backend warnings: the reasons of a fallback
        logger = logging.getLogger("broadcaster.audio")
        logger.addHandler(catcher)
        try:
            return _Spoken(self.chain.speak_mastered(sentence, lang, self.mastering), None, catcher.messages)
        except SynthesisError as exc:
            return _Spoken(None, exc, catcher.messages)
        finally:
            logger.removeHandler(catcher)

    def texts_in_order(self, job: BulletinJob, ident: str | None) -> list[tuple[str, str]]:
        """(text, lang) of everything the bulletin speaks, in the order it is heard: the ident, each
        item's texts, and the repeat intro after the first item read more than once."""
        texts = [(ident, "vi")] if ident else []
        intro_pending = bool(self.repeat_intro.strip())
        for item in job.items:
            texts.extend((text, lang) for lang, text, audio_path in item.texts
                         if not audio_path and text and text.strip())
            if intro_pending and item.repeat > 1:
                texts.append((self.repeat_intro, "vi"))
                intro_pending = False
        return texts

    def speak_ahead(self, pool: ThreadPoolExecutor, texts: list[tuple[str, str]]) -> dict[tuple[str, str], Future]:
        """Start speaking every sentence of ``texts`` ((text, lang) pairs) on ``pool``, in order."""
        futures: dict[tuple[str, str], Future] = {}
        for text, lang in texts:
            for sentence in self.normalize(text):
                if (sentence, lang) not in futures:
                    futures[(sentence, lang)] = pool.submit(self.speak_sentence, sentence, lang)
        return futures

    def speak_text(self, text: str, lang: str, *, fallbacks: list[dict] | None = None, where: str = "",
                   ahead: dict[tuple[str, str], Future] | None = None) -> _Piece:
        """Normalise ``text`` and speak every sentence through the chain (``ahead``: already started)."""
        sentences = self.normalize(text)
        if not sentences:
            raise RenderError(f"{where}: không có gì để đọc / nothing to speak")
        preferred = self.chain.names[0]
        pause = int(round(self.sentence_pause_ms * self.sample_rate / 1000))
        clips: list[MasteredClip | int] = []
        spoken: list[dict] = []
        for sentence in sentences:
            future = (ahead or {}).get((sentence, lang))
            outcome = future.result() if future is not None else self.speak_sentence(sentence, lang)
            if outcome.error is not None:
                raise RenderError(f"{where}: {outcome.error}") from outcome.error
            speech = outcome.speech
            if clips:
                clips.append(pause)
            clips.append(speech.clip)
            entry = {"text": sentence, "backend": speech.backend, "voice": speech.voice, "cached": speech.cached}
            spoken.append(entry)
            if speech.backend != preferred and fallbacks is not None:
                fallbacks.append(
                    {"where": where, "lang": lang, "text": sentence, "wanted": preferred,
                     "backend": speech.backend, "reasons": list(outcome.warnings)}
                )
        return _Piece(lang=lang, kind=_PIECE_KIND_TEXT, audio=ClipSequence(clips, self.sample_rate),
                      backend=_join_backends([s["backend"] for s in spoken]), sentences=spoken)

    def recording_path(self, audio_path: str) -> Path:
        path = Path(audio_path).expanduser()
        return path if path.is_absolute() else Path(self.config.recordings_dir) / path

    def load_recording(self, audio_path: str, lang: str, where: str) -> _Piece:
        path = self.recording_path(audio_path)
        try:
            clip = self._mastered_recording(path)
        except SynthesisError as exc:
            raise RenderError(f"{where}: {exc}") from exc
        return _Piece(lang=lang, kind=_PIECE_KIND_RECORDING, audio=ClipSequence([clip], self.sample_rate),
                      backend=RECORDED, sentences=[{"file": str(path), "backend": RECORDED}])

    def _mastered_recording(self, path: Path) -> MasteredClip:
        """A recording mastered like speech, from the render cache when this file's bytes were mastered
        before: a warm render neither decodes it (ffprobe and ffmpeg) nor masters it again."""
        try:
            with open(path, "rb") as fh:
                fingerprint = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            return self.match(load_recording(path))  # raises the reason, in both languages
        return self._cached_master(fingerprint, RECORDED, "", {}, lambda: self.match(load_recording(path)))

    def match(self, seg: AudioSegment) -> MasteredClip:
        """Master one clip (a recording, a jingle) to the target loudness, true peak under the clip ceiling."""
        try:
            return self.mastering.master(seg)
        except ValueError as exc:
            raise RenderError(f"không xử lý được âm thanh / could not process the audio: {exc}") from exc

    def jingle(self, name: str) -> ClipSequence:
        """A jingle mastered like speech: kept in memory, and in the render cache for the next process."""
        with self._lock:
            if name not in self._jingles:
                self._jingles[name] = self._mastered_jingle(name)
            return ClipSequence([self._jingles[name]], self.sample_rate)

    def _mastered_jingle(self, name: str) -> MasteredClip:
        seg = load_jingle(name)
        return self._cached_master(hashlib.sha256(seg.raw_data).hexdigest(), "jingle", name,
                                   {"frame_rate": seg.frame_rate, "channels": seg.channels}, lambda: self.match(seg))

    def _cached_master(self, fingerprint: str, kind: str, name: str, settings: dict,
                       master: Callable[[], MasteredClip]) -> MasteredClip:
        """The mastered clip of some audio (``fingerprint``: its content's hash), from the render cache
        or made by ``master()`` and stored there."""
        cache = self.chain.cache
        if cache is None:
            return master()
        key = AudioCache.key(fingerprint, kind, name, {**settings, "mastering": self.mastering.settings})
        try:
            clip = cache.get_clip(key)
        except OSError:
            clip = None
        if clip is None:
            clip = master()
            try:
                cache.put_clip(key, clip)
            except OSError as exc:
                log.warning("Không ghi được bộ nhớ đệm / Cannot write audio cache: %s", exc)
        return clip

    # -- items ------------------------------------------------------------
    def item_pieces(self, item: ItemSnapshot, *, fallbacks=None, ahead=None) -> list[_Piece]:
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
                    pieces.append(self.speak_text(text, lang, fallbacks=fallbacks, where=label,
                                                  ahead=ahead))
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

    def join_pieces(self, pieces: list[_Piece]) -> ClipSequence:
        """One reading of an item: its pieces with ``pause_ms`` between them."""
        pause = int(round(self.pause_ms * self.sample_rate / 1000))
        items: list[MasteredClip | int] = []
        for piece in pieces:
            if items:
                items.append(pause)
            items.extend(piece.audio.items)
        return ClipSequence(items, self.sample_rate)

    # -- estimation ------------------------------------------------------
    def cached_sentence_seconds(self, sentence: str, lang: str) -> float | None:
        """Duration of the render the chain would take from its cache, or None. Never synthesises."""
        cache = self.chain.cache
        if cache is None:
            return None
        text = unicodedata.normalize("NFC", sentence).strip()
        for synth in self.chain.synthesizers:
            for key in (self.chain.mastered_key(text, synth, lang, self.mastering),
                        AudioCache.key(text, synth.name, lang, synth.cache_key_settings())):
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
        intro_s = 0.0
        if repeat > 1 and self.repeat_intro.strip():
            intro_s, known = self.estimate_text_seconds(self.repeat_intro)
            exact = exact and known
        seconds = self.airtime_s(repeat, reading, intro_s)
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
               progress: Callable[[int, int, str], Any] | None = None, title: str | None = None,
               check: bool = True) -> RenderResult:
        """Render a prepared bulletin into one file (and its manifest); see the module docstring.

        ``progress(done, total, label)`` is called as the work advances
        (``total`` = items + 2: jingles and ident, then loudness and export).
        ``check=False`` skips decoding and measuring the written file (an emergency
        announcement: the only ffmpeg run is then the MP3 encoder); the result's
        loudness is the prediction and the manifest says ``"loudness_checked": false``.
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

        ident = self.ident_text(job.station_name)
        texts = self.texts_in_order(job, ident)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="speak") as pool:
            ahead = self.speak_ahead(pool, texts)
            try:
                parts.append(BulletinPart("intro", self.jingle("intro"), title="intro", backend="jingle"))
                if ident:
                    piece = self.speak_text(ident, "vi", fallbacks=fallbacks, where="ident",
                                            ahead=ahead)
                    pieces_log.append(piece.describe(None, "ident"))
                    parts.append(BulletinPart("ident", piece.audio, title=ident, backend=piece.backend))
                advance("nhạc hiệu, giới thiệu đài / jingles, ident")

                for item in job.items:
                    pieces = self.item_pieces(item, fallbacks=fallbacks, ahead=ahead)
                    audio = self.join_pieces(pieces)
                    if item.topic_code and item.topic_code not in topics:
                        topics.append(item.topic_code)
                    backend = _join_backends([p.backend for p in pieces])
                    backends[item.id] = backend
                    reading = audio.frames / self.sample_rate
                    pieces_log.extend(piece.describe(item.id, "item") for piece in pieces)
                    intro = self.repeat_intro_audio(item, fallbacks=fallbacks, pieces_log=pieces_log, ahead=ahead)
                    intro_s = intro.frames / self.sample_rate if intro is not None else 0.0
                    item_seconds[item.id] = round(self.airtime_s(item.repeat, reading, intro_s), 3)
                    parts.append(BulletinPart("item", audio, item_id=item.id, title=item.title,
                                              topic=item.topic_code, backend=backend, repeat=item.repeat,
                                              repeat_intro=intro))
                    manifest_items.append(
                        {"id": item.id, "title": item.title, "topic": item.topic_code,
                         "topic_title": item.topic_title, "priority": item.priority, "repeat": item.repeat,
                         "languages": [p.lang for p in pieces], "backend": backend,
                         "reading_s": round(reading, 3), "airtime_s": item_seconds[item.id]}
                    )
                    advance(f"tin/item {item.id}")

                parts.append(BulletinPart("outro", self.jingle("outro"), title="outro", backend="jingle"))
            finally:
                for future in ahead.values():
                    future.cancel()

        layout = lay_out(parts, pause_ms=self.pause_ms, item_gap_ms=self.item_gap_ms, sample_rate=self.sample_rate)
        timeline = layout.timeline

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
        try:
            exported = self._export(layout, output, fmt, tags, manifest, check)
        except LoudnessError as exc:
            raise RenderError(str(exc)) from exc
        except OSError as exc:  # the output folder, or a cached clip pruned while this render ran
            raise RenderError(f"không ghi được bản tin / could not write the bulletin {output}: {exc}") from exc
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

    def _limiting(self, layout: BulletinLayout, gain_db: float,
                  ceiling_dbtp: float) -> Callable[[MasteredClip], np.ndarray] | None:
        """None when plain gain keeps every clip's true peak under ``ceiling_dbtp`` (the usual case: the
        encoder applies the gain); otherwise what to do to each clip: gain, and the limiter where needed."""
        if layout.true_peak_dbtp + gain_db <= ceiling_dbtp:
            return None
        scale = 10 ** (gain_db / 20)

        def finish(clip: MasteredClip) -> np.ndarray:
            if clip.true_peak_dbtp + gain_db <= ceiling_dbtp:
                return apply_gain(clip.pcm, gain_db)
            x = limit_peaks(clip.pcm.astype(np.float64) * (scale / 32768.0), ceiling_dbtp, self.sample_rate)
            return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)

        return finish

    def _export(self, layout: BulletinLayout, output: Path, fmt: str, tags: dict, manifest: dict, check: bool):
        """Choose the final gain from the clips' measurements and the encoder's known shift, encode once,
        check the written file; only if it misses, correct the gain and encode again (at most twice).
        The true-peak ceiling always wins over the loudness target; the best attempt is published."""
        energies = layout.energies()
        predicted = loudness_of_energies(energies, self.sample_rate)
        if predicted <= -69.95:
            raise RenderError("bản tin chỉ có im lặng / the bulletin is silent")
        shift = ENCODER_LOUDNESS_SHIFT_LU.get(fmt, 0.0)
        ceiling = self.max_true_peak_dbtp - (_MP3_PEAK_HEADROOM_DB if fmt == "mp3" else _EXPORT_PEAK_MARGIN_DB)
        gain = self.target_lufs - predicted - shift

        def badness(loud: Loudness) -> float:
            over = max(0.0, loud.true_peak_dbtp - self.max_true_peak_dbtp)
            return 100.0 * over + abs(self.target_lufs - loud.integrated_lufs)

        tried: list[tuple[float, Any, Loudness, float]] = []  # (badness, encoded, loudness, gain)
        try:
            for attempt in range(3):
                limiting = self._limiting(layout, gain, ceiling)
                encoded = encode_bulletin(layout, output, gain_db=0.0 if limiting else gain, transform=limiting,
                                          fmt=fmt, bitrate=self.bitrate, tags=tags, check=check)
                if not check:
                    peak = min(layout.true_peak_dbtp + gain, ceiling)
                    got = Loudness(predicted + gain + shift, peak, float("nan"))
                    tried.append((0.0, encoded, got, gain))
                    break
                got = encoded.checked
                tried.append((badness(got), encoded, got, gain))
                error = self.target_lufs - got.integrated_lufs
                headroom = self.max_true_peak_dbtp - got.true_peak_dbtp
                if attempt == 2 or (abs(error) <= _EXPORT_TOLERANCE_LU and headroom >= 0):
                    break
                if headroom < 0:
                    ceiling += headroom - _EXPORT_PEAK_MARGIN_DB  # the encoder raised the peak more than assumed
                    correction = min(error, 0.0)
                else:
                    correction = error
                log.info("after encoding: %.2f LUFS, true peak %.2f dBTP; gain %+.2f dB and encode again",
                         got.integrated_lufs, got.true_peak_dbtp, correction)
                gain += correction
            best = min(tried, key=lambda t: t[0])
            for attempt in tried:
                if attempt[1] is not best[1]:
                    attempt[1].tmp.unlink(missing_ok=True)
            full_manifest = dict(manifest, loudness_checked=check, final_gain_db=round(best[3], 2),
                                 predicted_lufs=round(predicted + best[3] + shift, 2))
            return publish_encoded(best[1], output, fmt=fmt, bitrate=self.bitrate, sample_rate=self.sample_rate,
                                   tags=tags, manifest=full_manifest, loudness=best[2])
        except BaseException:
            for attempt in tried:
                attempt[1].tmp.unlink(missing_ok=True)
            raise


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
