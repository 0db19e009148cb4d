"""The project's own intro and outro jingles.

The jingles are synthesised here, in pure Python (no numpy, no sample
libraries, nobody else's recording): a few bell-like tones, each a sum of
sine partials with a short attack and an exponential decay. The
``scripts/make_jingles.py`` script writes them to ``audio/NAME.wav`` with the
same functions, so the committed files are reproducible bit for bit, and
:func:`load_jingle` can generate a jingle on the fly when the package is
installed without the repository's ``audio/`` folder.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment

from ..assets import AUDIO_DIR

__all__ = ["JINGLE_RATE", "JINGLES", "AUDIO_DIR", "generate_jingle", "load_jingle", "write_jingle"]

JINGLE_RATE = 22050

# Partials of a soft bell / vibraphone bar: (frequency ratio, relative
# amplitude, decay time constant relative to the note's). Slightly
# inharmonic upper partials give the "chime" colour; they die away faster.
_BELL_PARTIALS: tuple[tuple[float, float, float], ...] = (
    (1.0, 1.0, 1.0),
    (2.0, 0.35, 0.6),
    (3.01, 0.12, 0.4),
    (4.17, 0.06, 0.25),
)

# Equal-tempered note frequencies used below (A4 = 440 Hz).
C5, E5, G5, A5, C6 = 523.25, 659.26, 783.99, 880.00, 1046.50


@dataclass(frozen=True)
class Note:
    start_s: float
    freq_hz: float
    amp: float = 1.0
    decay_s: float = 0.6  # time constant of the exponential decay
    length_s: float = 2.0  # rendered length; the tail is faded to zero


def _render(
    notes: Sequence[Note], total_s: float, rate: int = JINGLE_RATE, peak_dbfs: float = -3.0
) -> AudioSegment:
    n_total = int(round(total_s * rate))
    buf = [0.0] * n_total
    attack = int(0.004 * rate)  # 4 ms: soft enough not to click
    for note in notes:
        first = int(round(note.start_s * rate))
        length = min(int(round(note.length_s * rate)), n_total - first)
        tail = int(0.05 * rate)  # final 50 ms fade so every note ends at exactly zero
        for ratio, rel_amp, rel_decay in _BELL_PARTIALS:
            freq = note.freq_hz * ratio
            if freq >= rate / 2:
                continue
            w = 2.0 * math.pi * freq / rate
            k = -1.0 / (note.decay_s * rel_decay * rate)
            amp = note.amp * rel_amp
            for i in range(length):
                env = math.exp(k * i)
                if i < attack:
                    env *= i / attack
                if i > length - tail:
                    env *= (length - i) / tail
                buf[first + i] += amp * env * math.sin(w * i)
    peak = max(abs(v) for v in buf) or 1.0
    scale = 32767.0 * (10 ** (peak_dbfs / 20)) / peak
    pcm = array("h", (int(round(v * scale)) for v in buf))
    if pcm.itemsize != 2:  # pragma: no cover - every supported platform has 16-bit shorts
        raise RuntimeError("array('h') is not 16-bit on this platform")
    if array("h", [1]).tobytes() != b"\x01\x00":  # pragma: no cover - big-endian host
        pcm.byteswap()
    return AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=rate, channels=1)


def make_intro() -> AudioSegment:
    """Rising major arpeggio C-E-G-C, then a soft C-E-G chord; about 3.6 s."""
    notes = [
        Note(0.00, C5, 0.9, 0.5, 1.6),
        Note(0.28, E5, 0.85, 0.5, 1.6),
        Note(0.56, G5, 0.8, 0.5, 1.6),
        Note(0.84, C6, 0.9, 0.7, 2.0),
        Note(1.50, C5, 0.45, 0.8, 2.1),
        Note(1.50, E5, 0.40, 0.8, 2.1),
        Note(1.50, G5, 0.40, 0.8, 2.1),
    ]
    return _render(notes, total_s=3.6)


def make_outro() -> AudioSegment:
    """Falling G-E-A-C(low) figure ending on a long C chord; about 4.0 s."""
    notes = [
        Note(0.00, C6, 0.8, 0.45, 1.4),
        Note(0.30, G5, 0.8, 0.45, 1.4),
        Note(0.60, A5, 0.75, 0.45, 1.4),
        Note(0.90, E5, 0.8, 0.5, 1.6),
        Note(1.40, C5, 0.9, 0.9, 2.6),
        Note(1.40, G5, 0.35, 0.9, 2.6),
        Note(1.40, E5, 0.35, 0.9, 2.6),
    ]
    return _render(notes, total_s=4.0)


JINGLES: dict[str, Callable[[], AudioSegment]] = {"intro": make_intro, "outro": make_outro}

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def generate_jingle(name: str) -> AudioSegment:
    try:
        make = JINGLES[name]
    except KeyError:
        raise ValueError(
            f"Không có nhạc hiệu tên '{name}' (có: {', '.join(sorted(JINGLES))}). / "
            f"Unknown jingle '{name}' (known: {', '.join(sorted(JINGLES))})."
        ) from None
    return make()


def write_jingle(name: str, directory: Path = AUDIO_DIR) -> Path:
    """Render jingle ``name`` to ``directory/NAME.wav`` (plain PCM WAV, no metadata)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.wav"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        generate_jingle(name).export(fh, format="wav")
    tmp.replace(path)
    return path


def load_jingle(name: str, directory: Path | None = None) -> AudioSegment:
    """The jingle ``name`` ("intro", "outro", or any ``NAME.wav`` in the audio folder).

    Looks in ``directory`` (default: the repository's ``audio/`` folder); a
    known jingle missing there (e.g. a non-editable install) is generated on
    the fly with the same function the script uses.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"Tên nhạc hiệu không hợp lệ: {name!r} / invalid jingle name: {name!r}")
    path = (directory or AUDIO_DIR) / f"{name}.wav"
    if path.is_file():
        return AudioSegment.from_wav(path)
    return generate_jingle(name)
