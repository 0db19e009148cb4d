"""Loudness normalisation, checked by an independent ffmpeg ebur128 run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydub import AudioSegment

from broadcaster.audio.loudness import Loudness, measure_loudness, normalize_loudness

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is required")


# --- independent measurement (does not use the code under test) ------------


def r128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file, by ffmpeg's ebur128 filter."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = out[out.rindex("Summary:") :]
    i = float(re.search(r"I:\s+(\S+) LUFS", summary).group(1))
    tp = float(re.search(r"Peak:\s+(\S+) dBFS", summary).group(1))
    return i, tp


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def lavfi_wav(path: Path, source: str, seconds: float, rate: int = 22050) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
            "-t",
            str(seconds),
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-c:a",
            "pcm_s16le",
            str(path),
        ],
        check=True,
    )
    return path


# Speech-like test signal: pink noise in syllable-rate bursts with pauses.
SPEECHLIKE = (
    "anoisesrc=color=pink:seed=7:amplitude=0.5,"
    "volume='0.15+0.85*abs(sin(2*PI*2.3*t))*gt(sin(2*PI*0.35*t),-0.4)':eval=frame"
)


@pytest.fixture(scope="module")
def speechlike(tmp_path_factory) -> AudioSegment:
    path = lavfi_wav(tmp_path_factory.mktemp("sig") / "speechlike.wav", SPEECHLIKE, 8)
    return AudioSegment.from_wav(path)


def at_loudness(segment: AudioSegment, lufs: float, tmp: Path) -> tuple[AudioSegment, float, float]:
    """Scale ``segment`` to about ``lufs`` (measured independently); may clip on purpose."""
    probe = tmp / "probe.wav"
    segment.export(probe, format="wav")
    measured, _ = r128(probe)
    scaled = segment.apply_gain(lufs - measured)  # pydub clips at full scale
    scaled.export(probe, format="wav")
    got_i, got_tp = r128(probe)
    return scaled, got_i, got_tp


def check_normalised(out: AudioSegment, tmp: Path, target: float = -16.0) -> tuple[float, float]:
    path = tmp / "out.wav"
    out.export(path, format="wav")
    i, tp = r128(path)
    assert abs(i - target) <= 1.0, f"integrated {i} LUFS, wanted {target}±1"
    assert tp <= -1.0, f"true peak {tp} dBTP above -1"
    return i, tp


def test_quiet_input_is_raised_to_target(speechlike, tmp_path):
    quiet, i_in, _ = at_loudness(speechlike, -35.0, tmp_path)
    assert abs(i_in + 35) <= 0.5
    out = normalize_loudness(quiet)
    check_normalised(out, tmp_path)
    assert abs(len(out) - len(quiet)) <= 20  # ms: normalisation must not change the length


def test_loud_clipped_input_is_lowered_to_target(speechlike, tmp_path):
    loud, i_in, tp_in = at_loudness(speechlike, -8.0, tmp_path)
    assert i_in > -10 and tp_in > 0, (i_in, tp_in)  # really loud, with clipped, over-full-scale peaks
    out = normalize_loudness(loud, target_lufs=-16.0, max_true_peak_dbtp=-1.0)
    check_normalised(out, tmp_path)


def test_other_target_and_sample_rate(speechlike, tmp_path):
    quiet, _, _ = at_loudness(speechlike, -30.0, tmp_path)
    out = normalize_loudness(quiet, target_lufs=-23.0, max_true_peak_dbtp=-2.0, sample_rate=None)
    assert out.frame_rate == 22050 and out.channels == 1
    i, tp = check_normalised(out, tmp_path, target=-23.0)
    assert tp <= -2.0


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
def test_real_speech_short_and_peaky(tmp_path):
    """A short espeak-ng sentence: high crest factor, needs true-peak limiting to reach -16."""
    wav = tmp_path / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "vi", "-w", str(wav), "Ủy ban nhân dân xã thông báo lịch tiếp công dân."],
        check=True,
    )
    speech = AudioSegment.from_wav(wav)
    quiet, _, _ = at_loudness(speech, -35.0, tmp_path)
    check_normalised(normalize_loudness(quiet), tmp_path)


def test_measure_matches_independent_run(speechlike, tmp_path):
    path = tmp_path / "x.wav"
    speechlike.export(path, format="wav")
    i, tp = r128(path)
    from_file = measure_loudness(path)
    from_segment = measure_loudness(speechlike)
    assert isinstance(from_file, Loudness)
    assert from_file.integrated_lufs == pytest.approx(i, abs=0.05)
    assert from_file.true_peak_dbtp == pytest.approx(tp, abs=0.05)
    assert from_segment.integrated_lufs == pytest.approx(i, abs=0.05)
    assert from_file.lra >= 0


def test_silence_is_measured_and_left_alone():
    silence = AudioSegment.silent(duration=2000, frame_rate=22050)
    m = measure_loudness(silence)
    assert m.integrated_lufs == -70.0 and m.is_silent
    assert m.true_peak_dbtp == float("-inf")
    assert m.as_dict()["true_peak_dbtp"] is None  # JSON-safe
    out = normalize_loudness(silence, sample_rate=None)
    assert out.raw_data == silence.raw_data


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Không tìm thấy"):
        measure_loudness(tmp_path / "nope.wav")
