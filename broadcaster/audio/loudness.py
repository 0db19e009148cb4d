"""EBU R128 loudness measurement and normalisation through ffmpeg.

pydub's ``effects.normalize`` only scales the sample peak; listeners hear
*loudness*, so bulletins are normalised to an integrated loudness target
(EBU R128 / ITU-R BS.1770) with a true-peak ceiling instead.

Measurement runs ffmpeg's ``ebur128=peak=true`` filter and parses its
summary. Normalisation is ffmpeg's two-pass ``loudnorm``: a measuring pass
(``print_format=json``) feeds the measured values to an applying pass with
``linear=true`` (plain gain when the target is reachable without breaking the
true-peak ceiling, loudnorm's dynamic mode otherwise). The result is measured
again and, if needed, trimmed with a small corrective gain so that it lands
within tolerance of the target and never above the ceiling.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from pydub import AudioSegment

__all__ = [
    "Loudness",
    "LoudnessError",
    "SILENCE_LUFS",
    "measure_loudness",
    "normalize_loudness",
]

# ebur128 reports -70 LUFS (the absolute gate) for silence.
SILENCE_LUFS = -70.0

# loudnorm works internally at 192 kHz; the applying pass resamples to this
# rate before handing the audio back, unless the caller asks for another one.
PROCESS_RATE = 48000

_RAW_FORMATS = {1: "u8", 2: "s16le", 4: "s32le"}


class LoudnessError(RuntimeError):
    """ffmpeg failed to measure or normalise audio."""


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float
    lra: float

    @property
    def is_silent(self) -> bool:
        return self.integrated_lufs <= SILENCE_LUFS + 0.05

    def as_dict(self) -> dict:
        def clean(v: float) -> float | None:
            return None if math.isinf(v) or math.isnan(v) else round(v, 2)

        return {
            "integrated_lufs": clean(self.integrated_lufs),
            "true_peak_dbtp": clean(self.true_peak_dbtp),
            "lra": clean(self.lra),
        }


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if not exe:
        raise LoudnessError(
            "Không tìm thấy chương trình ffmpeg; hãy cài đặt ffmpeg. / ffmpeg was not found; please install it."
        )
    return exe


def _input_args(source: str | PathLike | AudioSegment) -> tuple[list[str], bytes | None]:
    """ffmpeg input arguments, and the bytes to feed on stdin for a segment."""
    if isinstance(source, AudioSegment):
        fmt = _RAW_FORMATS.get(source.sample_width)
        if fmt is None:
            source = source.set_sample_width(2)
            fmt = "s16le"
        args = ["-f", fmt, "-ar", str(source.frame_rate), "-ac", str(source.channels), "-i", "pipe:0"]
        return args, source.raw_data
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"Không tìm thấy tệp âm thanh / audio file not found: {path}")
    return ["-i", str(path)], None


def _run_ffmpeg(args: list[str], stdin: bytes | None) -> subprocess.CompletedProcess:
    cmd = [_ffmpeg(), "-hide_banner", "-nostats", *args]
    try:
        if stdin is None:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        else:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    except OSError as exc:  # pragma: no cover - exotic
        raise LoudnessError(f"Không chạy được ffmpeg / could not run ffmpeg: {exc}") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise LoudnessError(
            "ffmpeg báo lỗi khi xử lý âm thanh / ffmpeg failed while processing audio: " + " | ".join(tail)
        )
    return proc


_NUM = r"([-+]?(?:\d+(?:\.\d+)?|inf|nan))"


def _parse_float(text: str) -> float:
    return float(text)  # float() understands "inf", "-inf" and "nan"


def parse_ebur128_summary(stderr: str) -> Loudness:
    """Parse the ``Summary:`` block ffmpeg's ebur128 filter prints at the end."""
    idx = stderr.rfind("Summary:")
    if idx < 0:
        raise LoudnessError("Không đọc được kết quả đo độ lớn / no ebur128 summary in ffmpeg output")
    summary = stderr[idx:]
    i = re.search(r"Integrated loudness:\s*I:\s*" + _NUM + r"\s*LUFS", summary)
    lra = re.search(r"Loudness range:\s*LRA:\s*" + _NUM + r"\s*LU", summary)
    peak = re.search(r"True peak:\s*Peak:\s*" + _NUM + r"\s*dBFS", summary)
    if not (i and lra and peak):
        raise LoudnessError(
            "Kết quả đo độ lớn không đầy đủ / incomplete ebur128 summary (true peak enabled?)"
        )
    return Loudness(
        integrated_lufs=_parse_float(i.group(1)),
        true_peak_dbtp=_parse_float(peak.group(1)),
        lra=_parse_float(lra.group(1)),
    )


def measure_loudness(source: str | PathLike | AudioSegment) -> Loudness:
    """Integrated loudness (LUFS), true peak (dBTP) and loudness range (LU).

    ``source`` is a path to any file ffmpeg reads, or a pydub segment (piped
    to ffmpeg as raw PCM, no temporary file). Silence measures -70 LUFS and a
    true peak of ``-inf``.
    """
    in_args, stdin = _input_args(source)
    proc = _run_ffmpeg(
        [*in_args, "-vn", "-filter_complex", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
        stdin,
    )
    return parse_ebur128_summary(proc.stderr.decode("utf-8", "replace"))


def _loudnorm_measure(segment: AudioSegment, target_lufs: float, tp: float, lra: float) -> dict:
    in_args, stdin = _input_args(segment)
    af = f"loudnorm=I={target_lufs}:TP={tp}:LRA={lra}:print_format=json"
    proc = _run_ffmpeg([*in_args, "-af", af, "-f", "null", "-"], stdin)
    text = proc.stderr.decode("utf-8", "replace")
    start = text.rfind("{")
    end = text.rfind("}")
    if start < 0 or end < start:
        raise LoudnessError("Không đọc được kết quả đo của loudnorm / no JSON from loudnorm")
    data = json.loads(text[start : end + 1])
    return {k: float(v) for k, v in data.items() if k.startswith(("input_", "target_"))}


def _apply_gain_filter(segment: AudioSegment, af: str, out_rate: int) -> AudioSegment:
    in_args, stdin = _input_args(segment)
    proc = _run_ffmpeg(
        [*in_args, "-af", af, "-ar", str(out_rate), "-ac", str(segment.channels), "-f", "s16le", "pipe:1"],
        stdin,
    )
    return AudioSegment(data=proc.stdout, sample_width=2, frame_rate=out_rate, channels=segment.channels)


def normalize_loudness(
    segment: AudioSegment,
    target_lufs: float = -16.0,
    max_true_peak_dbtp: float = -1.0,
    *,
    sample_rate: int | None = PROCESS_RATE,
    tolerance_lu: float = 0.5,
) -> AudioSegment:
    """Return ``segment`` normalised to ``target_lufs`` with true peak <= ``max_true_peak_dbtp``.

    Two-pass ffmpeg ``loudnorm`` (linear where possible), then an independent
    ``ebur128`` check with a corrective gain if the result drifted by more than
    ``tolerance_lu`` or overshoots the peak ceiling. The result is 16-bit at
    ``sample_rate`` (48 kHz by default; ``None`` keeps the input rate) with
    the input's channel count. A silent segment is returned unchanged (apart
    from the sample rate): silence has no loudness to normalise.
    """
    if len(segment) == 0:
        return segment
    out_rate = sample_rate or segment.frame_rate
    # Aim slightly under the ceiling: resampling and 16-bit rounding after
    # loudnorm can move the true peak by a few hundredths of a dB.
    tp_aim = max_true_peak_dbtp - 0.3

    before = measure_loudness(segment)
    if before.is_silent:
        return segment.set_frame_rate(out_rate).set_sample_width(2)

    measured = _loudnorm_measure(segment, target_lufs, tp_aim, 20.0)
    af = (
        f"loudnorm=I={target_lufs}:TP={tp_aim}:LRA=20"
        f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
        f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
        f":offset={measured.get('target_offset', 0.0)}:linear=true:print_format=none"
    )
    result, got = _trim(
        _apply_gain_filter(segment, af, out_rate), target_lufs, max_true_peak_dbtp, tolerance_lu
    )
    if got.is_silent or abs(got.integrated_lufs - target_lufs) <= tolerance_lu:
        return result

    # Still short of the target: loudnorm's dynamic mode cannot reach it on
    # short or very peaky input. Apply the full gain and a look-ahead limiter
    # running at 192 kHz (so it catches inter-sample peaks), then trim again.
    limit = 10 ** ((tp_aim - 0.2) / 20)
    af = (
        f"volume={target_lufs - before.integrated_lufs:.2f}dB,aresample=192000,"
        f"alimiter=limit={limit:.4f}:attack=1:release=60:level=false:latency=true"
    )
    limited, got2 = _trim(
        _apply_gain_filter(segment, af, out_rate), target_lufs, max_true_peak_dbtp, tolerance_lu
    )
    if abs(got2.integrated_lufs - target_lufs) < abs(got.integrated_lufs - target_lufs):
        return limited
    return result


def _trim(
    result: AudioSegment, target_lufs: float, max_true_peak_dbtp: float, tolerance_lu: float
) -> tuple[AudioSegment, Loudness]:
    """Measure independently and correct with plain gain, never above the ceiling.

    loudnorm falls back to dynamic mode (ignoring linear=true) for input with
    LRA 0, for very short input, or when plain gain would break the ceiling;
    dynamic mode can land a little off target.
    """
    got = measure_loudness(result)
    for _ in range(3):
        if got.is_silent:
            break
        error = target_lufs - got.integrated_lufs
        headroom = max_true_peak_dbtp - 0.05 - got.true_peak_dbtp
        if abs(error) <= tolerance_lu and headroom >= 0:
            break
        gain = min(error, headroom)
        if abs(gain) < 0.01:
            break
        result = result.apply_gain(gain)
        got = measure_loudness(result)
    return result, got
