"""Speech synthesis backends, a fallback chain and recorded-audio loading.

Pure library code: every setting is a constructor argument; nothing here reads
the configuration or the database.

Backends implement the small :class:`Synthesizer` protocol:

* :class:`GttsSynthesizer` - Google Translate's TTS through the ``gtts``
  library (needs the network; best Vietnamese voice).
* :class:`EspeakSynthesizer` - ``espeak-ng`` run as a subprocess (offline,
  robotic but always available).

:class:`SynthesisChain` tries them in order with the render cache in front.

Cache policy of the chain (a deliberate choice): for each backend *in chain
order*, a cached render of that backend is returned at once; otherwise that
backend is asked to synthesise, and on success the result is stored and
returned; on failure the next backend is tried. Consequences:

* a cached gTTS render is always preferred, and costs no network call;
* a cached espeak render (made while the network was down) does *not* stop
  the chain from trying gTTS again next time, so the better voice comes back
  by itself once the service is reachable;
* the chain never returns silence: a backend that produces empty or silent
  audio counts as failed. When every backend fails, :class:`SynthesisError`
  is raised.

:meth:`SynthesisChain.speak_mastered` follows the same policy one step later: it looks for
the sentence *after* loudness matching first (keyed with the mastering settings too), and
stores what it masters, so a warm render reads finished clips and measures nothing.

Offline is the normal case on a commune PC, not an error. A connection that
could not be made at all (no route, no DNS) fails at once, without retries;
timeouts, 429 and 5xx are retried with backoff. Then the chain's
:class:`BackendBreaker` remembers that the remote backend just failed — in a
small file in the cache folder, so every process (the daemon, each CLI
command) knows it — and skips it for ``retry_seconds``: one WARNING line when
it opens, none while it stays open, no stack trace. The better voice comes
back by itself once the window has passed and the service answers.
(:class:`GttsSynthesizer` also keeps its own per-instance ``cooldown``.)
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydub import AudioSegment

from broadcaster.audio.cache import AudioCache

if TYPE_CHECKING:
    from broadcaster.audio.mastering import MasteredClip

log = logging.getLogger("broadcaster.audio")

__all__ = [
    "DEFAULT_CHAIN",
    "LOCAL_BACKENDS",
    "BackendBreaker",
    "EspeakSynthesizer",
    "GttsSynthesizer",
    "MasteredSpeech",
    "Mastering",
    "Speech",
    "SynthesisChain",
    "SynthesisError",
    "Synthesizer",
    "build_chain",
    "load_recording",
]

DEFAULT_CHAIN: tuple[str, ...] = ("gtts", "espeak")

# Audio shorter than this, or entirely at digital zero, is not speech.
_MIN_SPEECH_MS = 50


#: Backends that need no network: an emergency is rendered with these only.
LOCAL_BACKENDS = frozenset({"espeak"})


class SynthesisError(Exception):
    """Speech could not be produced. The message is Vietnamese first, then English."""


_BREAKER_LOCK = threading.Lock()


class BackendBreaker:
    """Which remote backends failed lately, shared by every process through ``path`` (JSON, atomic writes)."""

    def __init__(self, path: Path | None, retry_seconds: float = 120.0, *, clock: Callable[[], float] = time.time):
        self.path = path
        self.retry_seconds = float(retry_seconds)
        self._clock = clock
        self._memory: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        if self.path is None:
            return dict(self._memory)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return dict(self._memory)

    def _write(self, state: dict[str, float]) -> None:
        self._memory = dict(state)
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # memory still holds it for this process

    def is_open(self, name: str) -> bool:
        until = self._read().get(name)
        return until is not None and until > self._clock()

    def trip(self, name: str, reason: str) -> None:
        # The render synthesises sentences in parallel: the threads that fail together say it once.
        with _BREAKER_LOCK:
            state = self._read()
            already = state.get(name, 0.0) > self._clock()
            state[name] = self._clock() + self.retry_seconds
            self._write(state)
        if not already:
            log.warning("Bộ tổng hợp giọng %r thất bại, dùng bộ tiếp theo trong %.0f giây / Speech backend %r "
                        "failed, using the next one for %.0f s: %s", name, self.retry_seconds, name,
                        self.retry_seconds, reason.splitlines()[0][:200] if reason else "")

    def reset(self, name: str) -> None:
        state = self._read()
        if state.pop(name, None) is not None:
            self._write(state)
            log.info("%s dùng lại được / %s is back", name, name)


@dataclass(frozen=True)
class Speech:
    """One synthesised (or recorded) piece of speech."""

    audio: AudioSegment
    backend: str  # "gtts" | "espeak" | "recorded"
    voice: str
    cached: bool


@dataclass(frozen=True)
class MasteredSpeech:
    """One sentence after loudness matching (see :meth:`SynthesisChain.speak_mastered`)."""

    clip: MasteredClip
    backend: str
    voice: str
    cached: bool  # the mastered clip came from the cache


class Mastering(Protocol):
    """Turns raw speech into a finished clip; ``settings`` (JSON) go into the cache key."""

    settings: dict

    def master(self, audio: AudioSegment) -> MasteredClip: ...


@runtime_checkable
class Synthesizer(Protocol):
    name: str

    def synthesize(self, text: str, lang: str) -> AudioSegment: ...

    def cache_key_settings(self) -> dict: ...


# ---------------------------------------------------------------------------
# text helpers

_HAS_WORD = re.compile(r"\w")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…;])\s+|\s*\n+\s*")
# A piece ending in a short all-capitals token or a list number + "." is most
# likely an abbreviation ("TP. Hồ Chí Minh", "Q. 1", "1. Thủ tục ...") - do not
# pause after it. (Length alone is no hint: Vietnamese words are syllables, so
# "bà con." ends a sentence.)
_ABBREVIATION_END = re.compile(r"(?:^|\s)(?:[A-ZĐ]{1,3}|Tp|\d{1,3})\.$")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _has_speech(text: str) -> bool:
    return bool(_HAS_WORD.search(text))


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences worth a short pause between them.

    Pieces with nothing to say (only punctuation) are dropped.
    """
    pieces = [p.strip() for p in _SENTENCE_BREAK.split(text) if p and p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged and _ABBREVIATION_END.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return [p for p in merged if _has_speech(p)]


def _is_silent(seg: AudioSegment) -> bool:
    return len(seg) < _MIN_SPEECH_MS or seg.max == 0


# ---------------------------------------------------------------------------
# gTTS


class GttsSynthesizer:
    """Google Translate TTS via ``gtts``.

    Text is NFC-normalised, split into sentences, and each sentence is sent as
    its own gTTS request (gTTS further cuts anything over 100 characters);
    the decoded pieces are joined with ``sentence_pause_ms`` of silence.

    Each sentence is retried up to ``retries`` times with exponential backoff
    (``backoff * 2**attempt`` seconds, or the server's ``Retry-After`` if
    longer, capped at ``max_backoff``) when the failure is transient: a
    connection error, a timeout, HTTP 429 or HTTP 5xx. Other failures (403,
    unsupported language, an answer with no audio) fail at once.
    """

    name = "gtts"
    remote = True  # worth caching raw: the mastered cache misses when mastering settings change

    def __init__(
        self,
        *,
        lang: str = "vi",
        tld: str = "com.vn",
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        sentence_pause_ms: int = 250,
        sleep: Callable[[float], None] = time.sleep,
        slow: bool = False,
        max_backoff: float = 60.0,
        cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0 (gTTS waits forever without one)")
        if sentence_pause_ms < 0:
            raise ValueError("sentence_pause_ms must be >= 0")
        self.lang = lang
        self.tld = tld
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sentence_pause_ms = sentence_pause_ms
        self.slow = slow
        self.max_backoff = max_backoff
        self.cooldown = cooldown
        self._sleep = sleep
        self._clock = clock
        self._down_until: float | None = None

    def voice_for(self, lang: str) -> str:
        return f"{lang or self.lang}@translate.google.{self.tld}"

    def cache_key_settings(self) -> dict:
        return {
            "voice": f"translate.google.{self.tld}",
            "tld": self.tld,
            "slow": self.slow,
            "sentence_pause_ms": self.sentence_pause_ms,
        }

    def synthesize(self, text: str, lang: str) -> AudioSegment:
        lang = lang or self.lang
        text = _nfc(text).strip()
        sentences = split_sentences(text)
        if not sentences:
            raise SynthesisError("Không có nội dung để đọc / Nothing to speak")
        if self._down_until is not None:
            remaining = self._down_until - self._clock()
            if remaining > 0:
                raise SynthesisError(
                    f"gTTS tạm ngừng {remaining:.0f} giây nữa sau lỗi kết nối trước đó / "
                    f"gTTS paused for another {remaining:.0f} s after an earlier failure"
                )
            self._down_until = None

        result: AudioSegment | None = None
        for sentence in sentences:
            piece = self._decode(self._fetch(sentence, lang), sentence)
            if result is None:
                result = piece
            else:
                pause = AudioSegment.silent(duration=self.sentence_pause_ms, frame_rate=piece.frame_rate)
                result = result + pause + piece
        assert result is not None
        return result

    # -- internals --------------------------------------------------------
    def _fetch(self, sentence: str, lang: str) -> bytes:
        from gtts import gTTS, gTTSError

        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                tts = gTTS(sentence, lang=lang, tld=self.tld, slow=self.slow, timeout=self.timeout)
                buf = BytesIO()
                tts.write_to_fp(buf)
            except gTTSError as exc:
                transient, reason, retry_after = _classify_gtts_error(exc)
                if _never_connected(exc):
                    if self.cooldown > 0:
                        self._down_until = self._clock() + self.cooldown
                    raise SynthesisError(f"gTTS không kết nối được: {reason} / gTTS unreachable: {reason}") from None
                if not transient:
                    raise SynthesisError(
                        f"gTTS từ chối yêu cầu: {reason} / gTTS request refused: {reason}"
                    ) from exc
                if attempt + 1 >= attempts:
                    if self.cooldown > 0:
                        self._down_until = self._clock() + self.cooldown
                    raise SynthesisError(
                        f"gTTS thất bại sau {attempts} lần thử: {reason} / "
                        f"gTTS failed after {attempts} attempts: {reason}"
                    ) from exc
                delay = min(self.backoff * (2**attempt), self.max_backoff)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.max_backoff))
                log.info(
                    "gTTS attempt %d/%d failed (%s); retrying in %.1f s", attempt + 1, attempts, reason, delay
                )
                self._sleep(delay)
                continue
            except ValueError as exc:  # lang_check: unsupported language
                raise SynthesisError(
                    f"gTTS không hỗ trợ ngôn ngữ {lang!r} / gTTS does not support language {lang!r}"
                ) from exc
            except AssertionError as exc:  # gTTS asserts on empty text
                raise SynthesisError(
                    f"gTTS không có gì để đọc: {exc} / gTTS has nothing to speak: {exc}"
                ) from exc
            data = buf.getvalue()
            if not data:
                raise SynthesisError("gTTS trả lời nhưng không có âm thanh / gTTS answered without any audio")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _decode(data: bytes, sentence: str) -> AudioSegment:
        try:
            seg = AudioSegment.from_file(BytesIO(data), format="mp3")
        except Exception as exc:
            raise SynthesisError(
                f"Không giải mã được MP3 từ gTTS ({len(data)} byte) / "
                f"Could not decode gTTS MP3 ({len(data)} bytes): {exc}"
            ) from exc
        if seg.channels != 1:
            seg = seg.set_channels(1)
        return seg


def _never_connected(exc: Exception) -> bool:
    """No connection could be made at all (no DNS, no route): retrying at once would not help."""
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    cause = exc.__cause__ or exc.__context__
    if not isinstance(cause, requests.exceptions.ConnectionError) or isinstance(cause, requests.exceptions.Timeout):
        return False
    inner = cause.args[0] if cause.args else None
    reason = inner.reason if isinstance(inner, MaxRetryError) else inner
    return isinstance(reason, NewConnectionError)


def _classify_gtts_error(exc: Exception) -> tuple[bool, str, float | None]:
    """Return (transient, reason, retry_after_seconds) for a gTTSError.

    gTTS wraps everything in gTTSError: ``exc.rsp`` is the HTTP response when
    the server answered (status >= 400, or 200 without audio), or None when the
    request itself failed - the original requests exception is then only
    reachable as ``__context__`` (gTTS raises inside its ``except`` block).
    """
    import requests  # here, not at the top: only a failing gTTS call needs it

    rsp = getattr(exc, "rsp", None)
    if rsp is None:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, requests.exceptions.Timeout):
            return True, f"hết thời gian chờ / timed out ({type(cause).__name__})", None
        if isinstance(cause, requests.exceptions.RequestException):
            return True, f"lỗi kết nối / connection error ({type(cause).__name__}: {cause})", None
        return True, f"lỗi kết nối / connection error ({exc})", None
    status = rsp.status_code
    reason = f"HTTP {status} {getattr(rsp, 'reason', '') or ''}".strip()
    retry_after = None
    raw = rsp.headers.get("Retry-After") if getattr(rsp, "headers", None) is not None else None
    if raw:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = None
    if status == 429 or status >= 500:
        return True, reason, retry_after
    if status == 200:
        return False, "câu trả lời không chứa âm thanh / answer carries no audio", None
    return False, reason, None


# ---------------------------------------------------------------------------
# espeak-ng


class EspeakSynthesizer:
    """``espeak-ng`` run as a subprocess; works offline."""

    name = "espeak"
    remote = False  # local and deterministic: speak_mastered keeps only the mastered clip

    def __init__(
        self,
        *,
        voice: str = "vi",
        speed: int = 150,
        pitch: int = 50,
        binary: str = "espeak-ng",
        timeout: float = 120.0,
    ):
        if not 80 <= int(speed) <= 450:
            raise ValueError(f"espeak speed must be 80..450 words per minute, got {speed}")
        if not 0 <= int(pitch) <= 99:
            raise ValueError(f"espeak pitch must be 0..99, got {pitch}")
        self.voice = voice
        self.speed = int(speed)
        self.pitch = int(pitch)
        self.binary = binary
        self.timeout = timeout

    def voice_for(self, lang: str) -> str:
        """The configured voice when it speaks ``lang``; otherwise espeak's voice named ``lang``."""
        if not lang or self.voice.split("-")[0].lower() == lang.split("-")[0].lower():
            return self.voice
        return lang

    def cache_key_settings(self) -> dict:
        return {"voice": self.voice, "speed": self.speed, "pitch": self.pitch}

    def synthesize(self, text: str, lang: str) -> AudioSegment:
        text = _nfc(text).strip()
        if not _has_speech(text):
            raise SynthesisError("Không có nội dung để đọc / Nothing to speak")
        exe = shutil.which(self.binary)
        if exe is None:
            raise SynthesisError(
                f"Không tìm thấy chương trình {self.binary}; hãy cài đặt (apt install espeak-ng) / "
                f"{self.binary} not found on PATH; install it (apt install espeak-ng)"
            )
        voice = self.voice_for(lang)
        # text on stdin, WAV on stdout: no temporary files (half the wall time of -f/-w here)
        cmd = [exe, "-b", "1", "-v", voice, "-s", str(self.speed), "-p", str(self.pitch), "--stdout"]
        try:
            proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise SynthesisError(
                f"espeak-ng quá thời gian {self.timeout:.0f} giây / espeak-ng timed out after {self.timeout:.0f} s"
            ) from exc
        except OSError as exc:
            raise SynthesisError(
                f"Không chạy được espeak-ng: {exc} / Could not run espeak-ng: {exc}"
            ) from exc
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode("utf-8", "replace").strip() or f"exit code {proc.returncode}"
            raise SynthesisError(
                f"espeak-ng lỗi (giọng {voice!r}): {err} / espeak-ng failed (voice {voice!r}): {err}"
            )
        try:
            seg = _streamed_wav(proc.stdout)
        except ValueError as exc:
            raise SynthesisError(
                f"Không đọc được WAV từ espeak-ng / Could not read espeak-ng WAV: {exc}"
            ) from exc
        if seg.channels != 1:
            seg = seg.set_channels(1)
        return seg


def _streamed_wav(data: bytes) -> AudioSegment:
    """16-bit PCM WAV written to a pipe: its sizes are placeholders (the writer could not seek
    back), so the samples are everything after the ``data`` chunk's header."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    position, rate, channels, width = 12, None, None, None
    while position + 8 <= len(data):
        name, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if name == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            width = int.from_bytes(data[body + 14 : body + 16], "little") // 8
        elif name == b"data":
            if not rate or not channels or width != 2:
                raise ValueError("not 16-bit PCM")
            samples = data[body:]
            samples = samples[: len(samples) - len(samples) % (width * channels)]
            return AudioSegment(data=samples, sample_width=width, frame_rate=rate, channels=channels)
        position = body + size + size % 2
    raise ValueError("no data chunk")


# ---------------------------------------------------------------------------
# the chain


class SynthesisChain:
    """Ordered fallback over synthesizers with an optional render cache.

    See the module docstring for the cache policy.
    """

    def __init__(self, synthesizers: Sequence[Synthesizer], cache: AudioCache | None,
                 breaker: BackendBreaker | None = None):
        if not synthesizers:
            raise ValueError("SynthesisChain needs at least one synthesizer")
        self.synthesizers = list(synthesizers)
        self.cache = cache
        self.breaker = breaker or BackendBreaker(None)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.synthesizers]

    def speak(self, text: str, lang: str = "vi") -> Speech:
        return self._speak(text, lang, None)

    def mastered_key(self, text: str, synth: Synthesizer, lang: str, mastering: Mastering) -> str:
        settings = {**synth.cache_key_settings(), "mastering": mastering.settings}
        return AudioCache.key(_nfc(text).strip(), synth.name, lang, settings)

    def speak_mastered(self, text: str, lang: str, mastering: Mastering) -> MasteredSpeech:
        """:meth:`speak`, then ``mastering``; each backend's mastered clip is looked for first.

        Safe to call from several threads at once (the render synthesises sentences in parallel).
        """
        return self._speak(text, lang, mastering)

    def _speak(self, text: str, lang: str, mastering: Mastering | None) -> Any:
        text = _nfc(text).strip()
        if not _has_speech(text):
            raise SynthesisError("Không có nội dung để đọc / Nothing to speak")
        failures: list[str] = []
        for synth in self.synthesizers:
            voice = _voice(synth, lang)
            mastered_key = self.mastered_key(text, synth, lang, mastering) if mastering is not None else None
            if mastered_key is not None and self.cache is not None:
                clip = self._cached_clip(mastered_key)
                if clip is not None:
                    return MasteredSpeech(clip=clip, backend=synth.name, voice=voice, cached=True)
            keep_raw = mastering is None or getattr(synth, "remote", True)
            raw = self._raw_speech(synth, text, lang, failures, store=keep_raw)
            if raw is None:
                continue
            audio, cached = raw
            if mastering is None:
                return Speech(audio=audio, backend=synth.name, voice=voice, cached=cached)
            clip = mastering.master(audio)
            if self.cache is not None and mastered_key is not None:
                try:
                    self.cache.put_clip(mastered_key, clip)
                except OSError as exc:
                    log.warning("Không ghi được bộ nhớ đệm / Cannot write audio cache: %s", exc)
            return MasteredSpeech(clip=clip, backend=synth.name, voice=voice, cached=cached)

        summary = "; ".join(failures)
        raise SynthesisError(
            f"Không tạo được giọng đọc bằng bất kỳ bộ nào ({summary}) / "
            f"All speech backends failed ({summary})"
        )

    def _raw_speech(self, synth: Synthesizer, text: str, lang: str, failures: list[str],
                    store: bool = True) -> tuple[AudioSegment, bool] | None:
        """(audio, from the cache?) of one backend, or None when it failed (reason in ``failures``);
        ``store``: put what it synthesised in the cache."""
        key = AudioCache.key(text, synth.name, lang, synth.cache_key_settings()) if self.cache is not None else None
        if self.cache is not None and key is not None:
            try:
                hit = self.cache.get(key)
            except OSError as exc:
                log.warning("Không đọc được bộ nhớ đệm / Cannot read audio cache: %s", exc)
                hit = None
            if hit is not None and not _is_silent(hit):
                return hit, True
        remote = bool(getattr(synth, "remote", False))
        if remote and self.breaker.is_open(synth.name):
            failures.append(f"{synth.name}: tạm bỏ qua sau lỗi gần đây / skipped after a recent failure")
            return None
        try:
            audio = synth.synthesize(text, lang)
            if _is_silent(audio):
                raise SynthesisError("kết quả rỗng hoặc im lặng / produced empty or silent audio")
        except Exception as exc:  # any backend failure falls through to the next one
            reason = str(exc) or type(exc).__name__
            failures.append(f"{synth.name}: {reason}")
            last = synth is self.synthesizers[-1]
            if remote and not last:
                self.breaker.trip(synth.name, reason)
                return None
            log.warning(
                "Bộ tổng hợp giọng %r thất bại%s / Speech backend %r failed%s: %s",
                synth.name,
                "" if last else ", thử bộ tiếp theo",
                synth.name,
                "" if last else ", trying the next one",
                reason,
            )
            return None
        if remote:
            self.breaker.reset(synth.name)
        if store and self.cache is not None and key is not None:
            try:
                self.cache.put(key, audio)
            except OSError as exc:
                log.warning("Không ghi được bộ nhớ đệm / Cannot write audio cache: %s", exc)
        return audio, False

    def _cached_clip(self, key: str) -> MasteredClip | None:
        try:
            return self.cache.get_clip(key) if self.cache is not None else None
        except OSError as exc:
            log.warning("Không đọc được bộ nhớ đệm / Cannot read audio cache: %s", exc)
            return None


def _voice(synth: Synthesizer, lang: str) -> str:
    voice_for = getattr(synth, "voice_for", None)
    return voice_for(lang) if callable(voice_for) else str(synth.cache_key_settings().get("voice", synth.name))


# ---------------------------------------------------------------------------
# factories


_FACTORIES: dict[str, type] = {"gtts": GttsSynthesizer, "espeak": EspeakSynthesizer}


def build_chain(
    names: Sequence[str] | None,
    *,
    cache_dir: Path | None,
    gtts_options: dict[str, Any] | None = None,
    espeak_options: dict[str, Any] | None = None,
    retry_seconds: float = 120.0,
) -> SynthesisChain:
    """Build a chain from backend names (config order); ``None`` means :data:`DEFAULT_CHAIN`."""
    valid = ", ".join(sorted(_FACTORIES))
    if names is None:
        names = list(DEFAULT_CHAIN)
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError(
            f"Danh sách bộ tổng hợp giọng trống; chọn trong: {valid} / "
            f"Empty speech backend list; choose from: {valid}"
        )
    options = {"gtts": dict(gtts_options or {}), "espeak": dict(espeak_options or {})}
    synths: list[Synthesizer] = []
    seen: set[str] = set()
    for raw in names:
        name = str(raw).strip().lower()
        if name not in _FACTORIES:
            raise ValueError(
                f"Bộ tổng hợp giọng không tồn tại: {raw!r}; hợp lệ: {valid} / "
                f"Unknown speech backend {raw!r}; valid names: {valid}"
            )
        if name in seen:
            raise ValueError(f"Bộ tổng hợp giọng bị lặp: {raw!r} / Speech backend listed twice: {raw!r}")
        seen.add(name)
        try:
            synths.append(_FACTORIES[name](**options[name]))
        except TypeError as exc:
            raise ValueError(
                f"Tuỳ chọn không hợp lệ cho {name}: {exc} / Invalid options for {name}: {exc}"
            ) from exc
    cache = AudioCache(cache_dir) if cache_dir is not None else None
    breaker = BackendBreaker(Path(cache_dir) / "tts-breaker.json" if cache_dir is not None else None,
                             retry_seconds)
    return SynthesisChain(synths, cache, breaker)


def load_recording(path: Path | str) -> AudioSegment:
    """Load an item's own recorded audio (any file ffmpeg can read)."""
    path = Path(path)
    if not path.is_file():
        raise SynthesisError(f"Không tìm thấy tệp ghi âm: {path} / Recording not found: {path}")
    try:
        seg = AudioSegment.from_file(str(path))
    except Exception as exc:  # CouldntDecodeError, and IndexError/KeyError from ffprobe output
        raise SynthesisError(
            f"Không đọc được tệp ghi âm {path}: {exc} / Cannot read recording {path}: {exc}"
        ) from exc
    if len(seg) == 0:
        raise SynthesisError(f"Tệp ghi âm rỗng: {path} / Recording is empty: {path}")
    return seg
