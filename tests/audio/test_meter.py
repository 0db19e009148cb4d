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
