"""The in-process loudness meter and the clip mastering, checked against ffmpeg's ebur128 filter."""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from broadcaster.audio.mastering import apply_gain, limit_peaks, master_clip
from broadcaster.audio.meter import LoudnessMeter, measure_pcm, oversampled_envelope
from tests.audio.test_loudness import SPEECHLIKE, lavfi_wav, r128

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is required")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def espeak_speech(tmp_path_factory) -> Path:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(path),
                    "Ủy ban nhân dân xã thông báo lịch tiếp công dân vào sáng thứ năm hằng tuần. "
                    "Bà con mang theo căn cước công dân và các giấy tờ có liên quan."], check=True)
    return path


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_meter_agrees_with_ffmpeg_on_speechlike_noise(tmp_path, rate):
    path = lavfi_wav(tmp_path / "x.wav", SPEECHLIKE, 8, rate=rate)
    pcm, got_rate = read_wav(path)
    assert got_rate == rate
    ours = measure_pcm(pcm, rate)
    i, tp = r128(path)
    assert ours.integrated_lufs == pytest.approx(i, abs=0.1)
    assert ours.true_peak_dbtp == pytest.approx(tp, abs=0.15)


def test_meter_agrees_with_ffmpeg_on_speech_fed_in_odd_chunks(espeak_speech):
    pcm, rate = read_wav(espeak_speech)
    meter = LoudnessMeter(rate)
    for start in range(0, len(pcm), 7919):  # chunk edges fall anywhere
        meter.add(pcm[start : start + 7919])
    ours = meter.result()
    i, tp = r128(espeak_speech)
    assert meter.frames == len(pcm)
    assert ours.integrated_lufs == pytest.approx(i, abs=0.1)
    assert ours.true_peak_dbtp == pytest.approx(tp, abs=0.15)
    assert ours.lra >= 0


def test_true_peak_sees_between_the_samples():
    """A quarter-rate sine sampled at 45 degrees: every sample is 3 dB under the wave's real peak."""
    rate = 22050
    n = np.arange(rate)
    pcm = np.rint(0.5 * 32767 * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.int16)
    sample_peak = 20 * math.log10(np.abs(pcm).max() / 32768)
    true_peak = measure_pcm(pcm, rate).true_peak_dbtp
    assert true_peak - sample_peak == pytest.approx(3.0, abs=0.2)
    assert oversampled_envelope(pcm).max() * 32768 >= 0.5 * 32767 * 0.98


def test_silence_measures_minus_70_and_no_peak():
    result = measure_pcm(np.zeros(22050 * 2, dtype=np.int16), 22050)
    assert result.is_silent and result.true_peak_dbtp == float("-inf")


def test_master_clip_brings_quiet_speech_to_target_under_the_ceiling(tmp_path, espeak_speech):
    pcm, rate = read_wav(espeak_speech)
    quiet = apply_gain(pcm, -18.0)
    clip = master_clip(quiet, rate, -16.0, -2.5)
    assert clip.frames == len(pcm)  # mastering never changes the length
    i, tp = r128(write_wav(tmp_path / "mastered.wav", clip.pcm, rate))
    assert i == pytest.approx(-16.0, abs=0.2)  # the limiter's loss was made up
    assert tp <= -2.5 + 0.1
    assert clip.integrated_lufs == pytest.approx(i, abs=0.1) and clip.true_peak_dbtp <= -2.5
    # the stored energies give the clip's loudness back (they also count the last partial 100 ms and the
    # filter's ringing after the end, as the clip will sound followed by silence in a bulletin)
    from broadcaster.audio.meter import loudness_of_energies

    assert loudness_of_energies(clip.energies, rate) == pytest.approx(clip.integrated_lufs, abs=0.1)


def test_master_clip_lowers_clipped_loud_input(tmp_path):
    rate = 22050
    path = lavfi_wav(tmp_path / "loud.wav", SPEECHLIKE, 6, rate=rate)
    pcm, _ = read_wav(path)
    loud = apply_gain(pcm, 14.0)  # clips at full scale on purpose
    clip = master_clip(loud, rate, -16.0, -2.5)
    i, tp = r128(write_wav(tmp_path / "out.wav", clip.pcm, rate))
    assert i == pytest.approx(-16.0, abs=0.2) and tp <= -2.4


def test_limiter_only_ever_lowers_and_holds_the_ceiling():
    rate = 22050
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(rate * 3) * 0.3).astype(np.float32)
    y = limit_peaks(x, -6.0, rate)
    assert np.all(np.abs(y) <= np.abs(x) + 1e-6)
    assert 20 * math.log10(oversampled_envelope(y).max()) <= -6.0 + 0.1
    quiet = x * np.float32(0.01)
    assert limit_peaks(quiet, -6.0, rate) is quiet  # nothing to do: untouched


# The fast paths below (shifted sums, batched FFTs, the limiter's shared sliding minimum) must give the
# figures of the plain definitions they replace.

def direct_envelope(x: np.ndarray) -> np.ndarray:
    """|x| and the three 4x-interpolated points after each sample, by np.convolve in float64."""
    from broadcaster.audio.meter import _interpolator_phases

    x = x.astype(np.float64)
    envelope = np.abs(x)
    for phase in _interpolator_phases():
        envelope = np.maximum(envelope, np.abs(np.convolve(x, phase)[6 : 6 + len(x)]))
    return envelope


def test_envelope_and_true_peak_match_the_direct_convolution():
    from broadcaster.audio.meter import TruePeakMeter

    rng = np.random.default_rng(7)
    pcm = np.rint(rng.standard_normal(100_003) * 6000).clip(-32768, 32767).astype(np.int16)
    x = pcm / 32768.0
    expected = direct_envelope(x)
    assert np.allclose(oversampled_envelope(pcm), expected, rtol=1e-5, atol=1e-6)
    meter = TruePeakMeter()
    for start in range(0, len(pcm), 33_331):  # block and call edges fall anywhere
        meter.add(pcm[start : start + 33_331])
    assert meter.peak == pytest.approx(expected.max(), rel=1e-5)


def test_kweighted_energies_equal_the_streaming_meter():
    from broadcaster.audio.meter import _CHUNK, _CHUNKS_PER_CALL, kweighted, subblock_energies

    rate = 22050
    rng = np.random.default_rng(11)
    pcm = np.rint(rng.standard_normal(_CHUNK * _CHUNKS_PER_CALL * 2 + 5_001) * 3000).astype(np.int16)
    meter = LoudnessMeter(rate, true_peak=False, keep_tail=True)
    for start in range(0, len(pcm), 50_021):
        meter.add(pcm[start : start + 50_021])
    weighted = kweighted(pcm, rate)
    assert len(weighted) == len(pcm) + 2047
    assert np.allclose(subblock_energies(weighted, rate), meter.subblock_energies(), rtol=1e-5)
    one_call = LoudnessMeter(rate, true_peak=False)
    one_call.add(pcm)
    assert one_call.result().integrated_lufs == pytest.approx(meter.result().integrated_lufs, abs=1e-6)


def test_limiter_gain_is_the_smoothed_sliding_minimum_of_what_each_sample_needs():
    from numpy.lib.stride_tricks import sliding_window_view

    rate = 22050
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(rate * 2) * 0.05).astype(np.float32)
    x[20_000:20_300] *= 12  # bursts the limiter must catch, one near the start
    x[40:90] *= 15
    limit = 10 ** (-6.0 / 20)
    envelope = oversampled_envelope(x)
    need = np.minimum(1.0, limit / np.maximum(envelope.astype(np.float64), 1e-12))
    half = int(0.005 * rate)
    spread = sliding_window_view(np.pad(need, half, constant_values=1.0), 2 * half + 1).min(axis=1)
    expected = sliding_window_view(np.pad(spread, half, mode="edge"), 2 * half + 1).mean(axis=1)
    y = limit_peaks(x, -6.0, rate)
    assert np.allclose(y, x * expected, rtol=1e-4, atol=1e-7)
    assert 20 * math.log10(oversampled_envelope(y).max()) <= -6.0 + 0.1
