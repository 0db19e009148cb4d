"""Bring one clip (a sentence, a recording, a jingle) to the target loudness under a true-peak ceiling.

In-process (numpy, no ffmpeg): measure (:mod:`broadcaster.audio.meter`), apply gain and,
when the gain would break the ceiling, a look-ahead peak limiter driven by the 4x-oversampled
envelope; the loudness the limiter took away is made up, until the clip lands within
:data:`LOUDNESS_TOLERANCE_LU` of the target. espeak's voice has a peak-to-loudness ratio near
19 dB, so -16 LUFS under a -2.5 dBTP clip ceiling means several dB of limiting.

The search for the gain does not filter the clip again at every step: K-weighting is linear
and the limiter's gain moves over milliseconds, so the K-weighted limited clip is the K-weighted
clip times the limiter's gain (within a thousandth of a LU on speech). The clip chosen is then
K-weighted and measured once for real: its figures are measured, not predicted.

The result carries what the bulletin's finishing step needs without measuring the clip again:
its loudness, its true peak and its K-weighted energy per 100 ms (see :class:`MasteredClip`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from broadcaster.audio.meter import kweighted, loudness_of_energies, oversampled_envelope, subblock_energies

__all__ = ["LOUDNESS_TOLERANCE_LU", "MasteredClip", "apply_gain", "limit_peaks", "master_clip"]

LOUDNESS_TOLERANCE_LU = 0.1
# Limiting several dB costs about half of each extra dB of gain: the first correction assumes so.
_FIRST_SLOPE = 0.5
_MAX_ROUNDS = 6
# Half the limiter's window: gain falls over this long before a peak and recovers over this long after.
_LIMITER_HALF_WINDOW_S = 0.005
_LIMITER_BLOCK = 1 << 15


class MasteredClip:
    """Mono 16-bit PCM and its measurement (after mastering).

    The samples are held in memory, or (a clip read from the render cache) read from its file
    each time :attr:`pcm` is asked for, so a long bulletin is never held whole.
    """

    def __init__(self, pcm: np.ndarray | None, sample_rate: int, integrated_lufs: float, true_peak_dbtp: float,
                 energies: np.ndarray, *, source: Callable[[], np.ndarray] | None = None,
                 frames: int | None = None):
        if pcm is None and (source is None or frames is None):
            raise ValueError("a clip needs its samples, or where to read them and how many")
        self._pcm = pcm
        self._source = source
        self.sample_rate = sample_rate
        self.integrated_lufs = integrated_lufs
        self.true_peak_dbtp = true_peak_dbtp
        self.energies = energies  # K-weighted sum of squares per 100 ms from the first sample (float64)
        self.frames = len(pcm) if pcm is not None else int(frames)

    @property
    def pcm(self) -> np.ndarray:  # int16
        if self._pcm is not None:
            return self._pcm
        pcm = self._source()
        if len(pcm) != self.frames:
            raise OSError(f"cached clip changed: {len(pcm)} frames, expected {self.frames}")
        return pcm

    def release(self, source: Callable[[], np.ndarray]) -> None:
        """Drop the samples from memory; ``source`` reads them again when needed."""
        self._source = source
        self._pcm = None

    def meta(self) -> dict:
        return {"integrated_lufs": self.integrated_lufs, "true_peak_dbtp": self.true_peak_dbtp,
                "energies": [float(e) for e in self.energies]}


def _sliding_min(values: np.ndarray, width: int, outside: float) -> np.ndarray:
    """Minimum over a centred window of ``width`` (odd) samples, ``outside`` beyond the ends;
    van Herk / Gil-Werman, O(n)."""
    half = width // 2
    padded = np.concatenate([np.full(half, outside, values.dtype), values,
                             np.full(half + width, outside, values.dtype)])
    blocks = len(padded) // width
    padded = padded[: blocks * width].reshape(blocks, width)
    prefix = np.minimum.accumulate(padded, axis=1).ravel()
    suffix = np.minimum.accumulate(padded[:, ::-1], axis=1)[:, ::-1].ravel()
    n = len(values)
    return np.minimum(suffix[:n], prefix[width - 1 : width - 1 + n])


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Mean over a centred window; the ends repeat the edge values (never a higher gain than at the edge)."""
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    sums = np.cumsum(np.concatenate([[0.0], padded]), dtype=np.float64)  # float64: a long running sum
    return ((sums[width:] - sums[:-width]) / width).astype(values.dtype)


def _windowed(values: np.ndarray, width: int, window: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``window(values)`` for a function whose output at a sample depends only on the ``width``
    samples centred on it, worked out block by block so the temporaries stay small."""
    half = width // 2
    n = len(values)
    out = np.empty_like(values)
    for start in range(0, n, _LIMITER_BLOCK):
        stop = min(n, start + _LIMITER_BLOCK)
        lo, hi = max(0, start - half), min(n, stop + half)
        out[start:stop] = window(values[lo:hi])[start - lo : stop - lo]
    return out


class _PeakLimiter:
    """The limiter's gain per sample for one clip at any level (see :func:`limit_peaks`).

    The gain needed at a sample is ``min(1, limit / envelope)``; its sliding minimum is
    ``min(1, limit * m)`` with ``m`` the sliding minimum of ``1 / envelope`` (a sliding minimum
    commutes with a non-decreasing function), so ``m`` is worked out once and every level the
    gain search tries costs one moving average."""

    def __init__(self, envelope: np.ndarray, sample_rate: int):
        half = max(1, int(_LIMITER_HALF_WINDOW_S * sample_rate))
        self.width = 2 * half + 1
        self.peak = float(envelope.max(initial=0.0))
        inverse = np.float32(1.0) / np.maximum(envelope, np.float32(1e-12), dtype=np.float32)
        self._smallest_inverse = _windowed(inverse, self.width, lambda v: _sliding_min(v, self.width, np.inf))

    def gain(self, limit: float) -> np.ndarray | None:
        """Gain per sample (float32) holding the envelope under ``limit``; None when none is needed."""
        if self.peak <= limit:
            return None
        spread = np.minimum(np.float32(1.0), self._smallest_inverse * np.float32(limit))
        return _windowed(spread, self.width, lambda v: _moving_average(v, self.width))


def limit_peaks(x: np.ndarray, ceiling_dbtp: float, sample_rate: int, envelope: np.ndarray | None = None) -> np.ndarray:
    """``x`` (float, full scale 1.0) with its true peak held under ``ceiling_dbtp``.

    The gain needed at each sample (from the oversampled envelope) is spread by a sliding
    minimum and smoothed by a moving average of the same width, so it never rises above what
    any sample needs and changes over milliseconds, not samples (no clicks, little distortion).
    """
    env = oversampled_envelope(x) if envelope is None else envelope
    limit = 10 ** (ceiling_dbtp / 20)
    if float(env.max(initial=0.0)) <= limit:
        return x
    return x * _PeakLimiter(env, sample_rate).gain(limit)


def apply_gain(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    """int16 ``pcm`` scaled by ``gain_db``, rounded and clipped back to int16."""
    if abs(gain_db) < 0.005:
        return pcm
    scaled = pcm.astype(np.float32) * np.float32(10 ** (gain_db / 20))  # float32: exact enough for 16 bits
    return np.clip(np.rint(scaled, out=scaled), -32768, 32767, out=scaled).astype(np.int16)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def _measured(weighted: np.ndarray, frames: int, sample_rate: int) -> tuple[float, np.ndarray]:
    """(integrated loudness, K-weighted energy per 100 ms including the filter's tail) of a clip of
    ``frames`` samples from its K-weighted signal (:func:`kweighted`)."""
    energies = subblock_energies(weighted, sample_rate)
    whole = frames // max(1, round(sample_rate / 10))  # the gated loudness counts whole sub-blocks only
    return loudness_of_energies(energies[:whole], sample_rate), energies


def _loudness(x: np.ndarray, sample_rate: int) -> tuple[float, np.ndarray]:
    return _measured(kweighted(x, sample_rate), len(x), sample_rate)


def _finished(x: np.ndarray, sample_rate: int, ceiling_dbtp: float, lufs: float,
              energies: np.ndarray, envelope: np.ndarray | None = None) -> MasteredClip:
    """Round to 16 bits and measure the true peak (``envelope``: already known); a peak a hair over
    the ceiling is scaled away."""
    envelope_peak = float((oversampled_envelope(x) if envelope is None else envelope).max(initial=0.0))
    peak = 20 * math.log10(envelope_peak) if envelope_peak > 0 else float("-inf")
    if peak > ceiling_dbtp:  # the smoothed limiter gain lets a few hundredths through
        trim = ceiling_dbtp - 0.01 - peak
        x = x * np.float32(10 ** (trim / 20))
        peak += trim
        energies = energies * 10 ** (trim / 10)
        lufs = lufs + trim if lufs > -69.95 else lufs
    return MasteredClip(_to_int16(x), sample_rate, lufs, peak, energies)


def master_clip(pcm: np.ndarray, sample_rate: int, target_lufs: float, ceiling_dbtp: float) -> MasteredClip:
    """Gain (and peak limiting if needed) so ``pcm`` measures ``target_lufs`` under ``ceiling_dbtp``.

    Silence (and clips shorter than one 400 ms block, which have no gated loudness) is
    scaled only to respect the ceiling. If even the limiter cannot reach the target (an
    extremely peaky clip), the result nearest the target is returned. The figures returned
    are those of the clip returned, measured (see the module docstring).
    """
    x = pcm.astype(np.float32) / np.float32(32768.0)  # float32 halves the memory; 24 bits of precision
    n = len(x)
    weighted = kweighted(x, sample_rate)
    lufs, energies = _measured(weighted, n, sample_rate)
    if lufs <= -69.95:
        return _finished(x, sample_rate, ceiling_dbtp, lufs, energies)
    envelope = oversampled_envelope(x)
    limit = 10 ** (ceiling_dbtp / 20)
    limiter = _PeakLimiter(envelope, sample_rate)
    # Limiting takes loudness away, less than the gain adds: solve lufs(gain) = target by secant steps,
    # each step's loudness predicted from the K-weighted clip and the limiter's gain.
    tried: list[tuple[float, float]] = []  # (gain, predicted lufs)
    best: tuple[float, float, np.ndarray | None, np.ndarray] | None = None  # (lufs, gain, limiter gain, energies)
    gain = target_lufs - lufs
    for _ in range(_MAX_ROUNDS):
        scale = 10 ** (gain / 20)
        limiting = limiter.gain(limit / scale)
        scaled = weighted * scale
        if limiting is not None:
            scaled[:n] *= limiting
            scaled[n:] *= limiting[-1]
        got, predicted_energies = _measured(scaled, n, sample_rate)
        tried.append((gain, got))
        if best is None or abs(got - target_lufs) < abs(best[0] - target_lufs):
            best = (got, gain, limiting, predicted_energies)
        if abs(got - target_lufs) <= LOUDNESS_TOLERANCE_LU:
            break
        slope = _FIRST_SLOPE if got < target_lufs else 1.0
        if len(tried) >= 2:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            if abs(g1 - g0) > 1e-6:
                slope = min(1.0, max(0.05, (l1 - l0) / (g1 - g0)))
        gain += (target_lufs - got) / slope
    assert best is not None
    lufs, gain, limiting, energies = best
    scale = np.float32(10 ** (gain / 20))
    if limiting is None:  # plain gain: the prediction is exact (K-weighting is linear)
        return _finished(x * scale, sample_rate, ceiling_dbtp, lufs, energies, envelope * scale)
    del weighted, scaled  # the chosen clip is K-weighted again below: do not hold two copies
    y = x * scale
    y *= limiting
    lufs, energies = _loudness(y, sample_rate)
    return _finished(y, sample_rate, ceiling_dbtp, lufs, energies)
