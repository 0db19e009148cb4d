"""EBU R128 / ITU-R BS.1770-4 loudness measured in-process, on 16-bit PCM, in a stream.

The ffmpeg ``ebur128`` filter (see :mod:`broadcaster.audio.loudness`) costs a process
and a pass over the file each time; a bulletin is measured several times on its way out,
so this module measures the same quantities with numpy, chunk by chunk, without holding
the whole signal:

* K-weighting: the two BS.1770 biquads (libebur128's coefficients for any sample rate),
  applied as their 2048-tap impulse response by FFT overlap-add (the response has decayed
  by far more than 100 dB after 2048 samples at 22.05 kHz and above);
* integrated loudness: 400 ms blocks every 100 ms, absolute gate -70 LUFS, relative gate
  -10 LU; loudness range: 3 s blocks every 100 ms, gates -70 LUFS and -20 LU, P95 - P10;
* true peak: 4x oversampling by a Kaiser-windowed sinc interpolator (BS.1770-4 Annex 2
  asks for at least 4x), so peaks between samples count.

Figures agree with ffmpeg's ``ebur128=peak=true`` to a few hundredths of a LU and about
0.1 dB of true peak (tests/audio/test_meter.py compares them).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from broadcaster.audio.loudness import SILENCE_LUFS, Loudness

__all__ = ["LoudnessMeter", "TruePeakMeter", "loudness_of_energies", "measure_pcm", "oversampled_envelope"]

_KWEIGHT_TAPS = 2048
_FFT_SIZE = 1 << 16  # a power of two: FFTs of other sizes can be several times slower
_CHUNK = _FFT_SIZE - _KWEIGHT_TAPS
_OVERSAMPLE = 4
_INTERP_TAPS_PER_PHASE = 12
_ABSOLUTE_GATE_LUFS = -70.0
_FULL_SCALE = 32768.0


def _biquad_impulse(b: tuple[float, float, float], a: tuple[float, float, float], x: list[float]) -> list[float]:
    y: list[float] = []
    x1 = x2 = y1 = y2 = 0.0
    for x0 in x:
        y0 = b[0] * x0 + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1, y2, y1 = x1, x0, y1, y0
        y.append(y0)
    return y


@lru_cache(maxsize=8)
def _kweighting_spectrum(rate: int) -> np.ndarray:
    """The K-weighting filter's impulse response, as the spectrum for one overlap-add chunk."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0)
    shelf_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    high_b = (1.0, -2.0, 1.0)
    high_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    impulse = [1.0] + [0.0] * (_KWEIGHT_TAPS - 1)
    response = _biquad_impulse(high_b, high_a, _biquad_impulse(shelf_b, shelf_a, impulse))
    return np.fft.rfft(np.asarray(response), _FFT_SIZE)


@lru_cache(maxsize=1)
def _interpolator_phases() -> tuple[np.ndarray, ...]:
    """The three fractional-delay phases (1/4, 2/4, 3/4 of a sample) of the 4x interpolator."""
    taps = _OVERSAMPLE * _INTERP_TAPS_PER_PHASE
    n = np.arange(taps) - taps / 2  # phase 0 then lands exactly on the input samples
    prototype = np.sinc(n / _OVERSAMPLE) * np.kaiser(taps, 6.0)
    phases = [prototype[p::_OVERSAMPLE] for p in range(1, _OVERSAMPLE)]
    return tuple(ph / ph.sum() for ph in phases)  # unity gain at DC for every phase


def _as_float(samples: np.ndarray) -> np.ndarray:
    """Floats at full scale 1.0: int16 becomes float64; float32 stays float32 (mastering's working type)."""
    if samples.dtype == np.int16:
        return samples.astype(np.float64) / _FULL_SCALE
    if samples.dtype == np.float32:
        return samples
    return np.asarray(samples, dtype=np.float64)


class TruePeakMeter:
    """The 4x-oversampled peak of mono PCM fed chunk by chunk (see the module docstring)."""

    def __init__(self) -> None:
        self._history = np.zeros(_INTERP_TAPS_PER_PHASE - 1)  # input samples the interpolator still needs
        self.peak = 0.0  # linear, full scale 1.0

    def add(self, samples: np.ndarray) -> None:
        x = _as_float(samples)
        for start in range(0, len(x), _CHUNK):
            self._add_chunk(x[start : start + _CHUNK])

    def _add_chunk(self, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        peak = float(np.abs(x).max())
        joined = np.concatenate([self._history, x])
        for phase in _interpolator_phases():  # 12 taps: direct convolution beats an FFT
            between = np.convolve(joined, phase.astype(joined.dtype, copy=False), mode="valid")
            peak = max(peak, float(np.abs(between).max()))
        self.peak = max(self.peak, peak)
        self._history = joined[-(_INTERP_TAPS_PER_PHASE - 1) :].copy()

    @property
    def dbtp(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else float("-inf")


class LoudnessMeter:
    """Feed mono PCM chunks (int16 or float in [-1, 1]) with :meth:`add`; read :meth:`result`."""

    def __init__(self, sample_rate: int, *, true_peak: bool = True, keep_tail: bool = False):
        """``keep_tail``: the filter's ringing after the last sample counts as 100 ms sub-blocks of
        its own (:meth:`subblock_energies` of a clip then adds up exactly when clips are laid end
        to end with silence between them)."""
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self.keep_tail = keep_tail
        self._subblock = max(1, round(sample_rate / 10))  # 100 ms
        self._spectrum = _kweighting_spectrum(sample_rate)
        self._tail = np.zeros(_KWEIGHT_TAPS - 1)  # filter output still owed to the next chunk
        self._pending = np.zeros(0)  # weighted samples not yet forming a whole 100 ms sub-block
        self._energies: list[np.ndarray] = []  # sum of squares per 100 ms sub-block
        self._true_peak = TruePeakMeter() if true_peak else None
        self.frames = 0

    def add(self, samples: np.ndarray) -> None:
        x = _as_float(samples)
        for start in range(0, len(x), _CHUNK):
            self._add_chunk(x[start : start + _CHUNK])

    def _add_chunk(self, x: np.ndarray) -> None:
        n = len(x)
        if n == 0:
            return
        self.frames += n
        size = _FFT_SIZE
        weighted = np.fft.irfft(np.fft.rfft(x, size) * self._spectrum, size)[: n + _KWEIGHT_TAPS - 1]
        weighted[: _KWEIGHT_TAPS - 1] += self._tail
        self._tail = weighted[n:].copy()
        self._take(weighted[:n])
        if self._true_peak is not None:
            self._true_peak._add_chunk(x)

    def _take(self, weighted: np.ndarray) -> None:
        joined = np.concatenate([self._pending, weighted]) if len(self._pending) else weighted
        whole = len(joined) // self._subblock * self._subblock
        if whole:
            self._energies.append(np.square(joined[:whole]).reshape(-1, self._subblock).sum(axis=1))
        self._pending = joined[whole:].copy()

    def subblock_energies(self) -> np.ndarray:
        """K-weighted sum of squares per 100 ms sub-block so far (the partial last one included)."""
        tail = [self._pending, self._tail] if self.keep_tail else [self._pending]
        rest = np.concatenate(tail)
        extra = np.square(np.concatenate([rest, np.zeros(-len(rest) % self._subblock)]))
        whole = [*self._energies, extra.reshape(-1, self._subblock).sum(axis=1)] if len(rest) else self._energies
        return np.concatenate(whole) if whole else np.zeros(0)

    @property
    def subblock_frames(self) -> int:
        return self._subblock

    def result(self) -> Loudness:
        energies = np.concatenate(self._energies) if self._energies else np.zeros(0)
        integrated = _gated_loudness(energies, 4, self._subblock, relative_lu=-10.0)
        lra = _loudness_range(energies, self._subblock)
        peak = self._true_peak.dbtp if self._true_peak is not None else float("nan")
        return Loudness(integrated_lufs=integrated, true_peak_dbtp=peak, lra=lra)


def _block_powers(energies: np.ndarray, subblocks: int, subblock: int) -> np.ndarray:
    if len(energies) < subblocks:
        return np.zeros(0)
    sums = np.convolve(energies, np.ones(subblocks), mode="valid")
    return sums / (subblocks * subblock)


def _lufs(power: np.ndarray | float) -> np.ndarray | float:
    return -0.691 + 10 * np.log10(np.maximum(power, 1e-20))


def _gated_loudness(energies: np.ndarray, subblocks: int, subblock: int, relative_lu: float) -> float:
    powers = _block_powers(energies, subblocks, subblock)
    powers = powers[_lufs(powers) > _ABSOLUTE_GATE_LUFS]
    if len(powers) == 0:
        return SILENCE_LUFS
    gate = _lufs(powers.mean()) + relative_lu
    kept = powers[_lufs(powers) > gate]
    return max(SILENCE_LUFS, float(_lufs(kept.mean())))


def _loudness_range(energies: np.ndarray, subblock: int) -> float:
    powers = _block_powers(energies, 30, subblock)
    powers = powers[_lufs(powers) > _ABSOLUTE_GATE_LUFS]
    if len(powers) == 0:
        return 0.0
    gate = _lufs(powers.mean()) - 20.0
    levels = np.sort(_lufs(powers[_lufs(powers) > gate]))
    if len(levels) == 0:
        return 0.0
    low, high = np.percentile(levels, [10, 95])
    return float(high - low)


def measure_pcm(samples: np.ndarray, sample_rate: int, *, true_peak: bool = True) -> Loudness:
    """Loudness of one mono signal held in memory (see :class:`LoudnessMeter`)."""
    meter = LoudnessMeter(sample_rate, true_peak=true_peak)
    meter.add(samples)
    return meter.result()


def loudness_of_energies(energies: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness from K-weighted sums of squares per 100 ms (see :class:`LoudnessMeter`)."""
    return _gated_loudness(energies, 4, max(1, round(sample_rate / 10)), relative_lu=-10.0)


def oversampled_envelope(x: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude of the signal at that sample and at the three 4x-oversampled
    points after it: what a limiter must hold under the ceiling so the true peak stays there."""
    x = _as_float(x)
    n = len(x)
    delay = _INTERP_TAPS_PER_PHASE // 2  # the interpolators' group delay, in input samples
    envelope = np.abs(x)
    for phase in _interpolator_phases():
        between = np.convolve(x, phase.astype(x.dtype, copy=False))[delay : delay + n]
        np.maximum(envelope, np.abs(between), out=envelope)
    return envelope
