"""Bulletin assembly, export and jingles, measured with ffprobe/ffmpeg directly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydub import AudioSegment
from pydub.generators import Sine, WhiteNoise

from broadcaster.audio import jingles
from broadcaster.audio.assemble import BulletinPart, assemble_bulletin, audio_duration_s, export_bulletin
from broadcaster.audio.jingles import generate_jingle, load_jingle
from broadcaster.audio.loudness import normalize_loudness

pytestmark = pytest.mark.skipif(not shutil.which("ffprobe"), reason="ffmpeg/ffprobe are required")

REPO = Path(__file__).resolve().parents[2]


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def r128(path: Path) -> tuple[float, float]:
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
    return (
        float(re.search(r"I:\s+(\S+) LUFS", summary).group(1)),
        float(re.search(r"Peak:\s+(\S+) dBFS", summary).group(1)),
    )


def tone(ms: int, freq: float = 440.0, rate: int = 22050, volume: float = -20.0) -> AudioSegment:
    return Sine(freq, sample_rate=rate).to_audio_segment(duration=ms, volume=volume)


def noise(ms: int, rate: int = 22050, volume: float = -25.0) -> AudioSegment:
    return WhiteNoise(sample_rate=rate).to_audio_segment(duration=ms, volume=volume)


@pytest.fixture
def parts() -> list[BulletinPart]:
    return [
        BulletinPart("intro", load_jingle("intro")),
        BulletinPart("ident", tone(1500, 330), title="Đây là Đài truyền thanh xã Phước Hà", backend="gtts"),
        BulletinPart(
            "item",
            noise(2000),
            item_id=11,
            title="Một cửa liên thông",
            topic="mot-cua",
            backend="gtts",
            repeat=2,
        ),
        BulletinPart(
            "item",
            tone(2500, 550),
            item_id=12,
            title="Đường dây nóng",
            topic="duong-day-nong",
            backend="recording",
        ),
        BulletinPart("pause", AudioSegment.silent(500)),
        BulletinPart("outro", load_jingle("outro")),
    ]


def test_assembled_duration_and_timeline(parts, tmp_path):
    audio, timeline = assemble_bulletin(parts, pause_ms=800, item_gap_ms=1200, sample_rate=22050)
    assert audio.channels == 1 and audio.frame_rate == 22050 and audio.sample_width == 2

    intro, outro = 3.6, 4.0  # the jingles' lengths, read independently below
    assert audio_duration_s(REPO / "audio" / "intro.wav") == pytest.approx(intro, abs=0.01)
    # intro |800| ident |800| item11 |800| item11 |1200| item12 [pause 500] outro
    expected = intro + 0.8 + 1.5 + 0.8 + 2.0 + 0.8 + 2.0 + 1.2 + 2.5 + 0.5 + outro
    path = tmp_path / "b.wav"
    audio.export(path, format="wav")
    assert float(probe(path)["format"]["duration"]) == pytest.approx(expected, abs=0.05)

    kinds = [(e["kind"], e["item_id"], e["reading"]) for e in timeline]
    assert kinds == [
        ("intro", None, 1),
        ("ident", None, 1),
        ("item", 11, 1),
        ("item", 11, 2),
        ("item", 12, 1),
        ("pause", None, 1),
        ("outro", None, 1),
    ]
    item11 = [e for e in timeline if e["item_id"] == 11]
    assert len(item11) == 2 and all(e["repeat"] == 2 for e in item11)
    assert item11[1]["start_s"] - (item11[0]["start_s"] + item11[0]["duration_s"]) == pytest.approx(
        0.8, abs=0.002
    )
    item12 = timeline[4]
    assert item12["start_s"] - (item11[1]["start_s"] + 2.0) == pytest.approx(1.2, abs=0.002)
    assert item12["backend"] == "recording" and item12["topic"] == "duong-day-nong"
    assert timeline[-1]["start_s"] + timeline[-1]["duration_s"] == pytest.approx(expected, abs=0.002)
    for e in timeline:
        assert set(e) >= {"kind", "item_id", "title", "start_s", "duration_s", "backend", "repeat"}


def test_parts_are_converted_to_mono_at_the_bulletin_rate():
    stereo = AudioSegment.from_mono_audiosegments(tone(1000, rate=44100), tone(1000, 660, rate=44100))
    audio, timeline = assemble_bulletin([BulletinPart("item", stereo, item_id=1)], sample_rate=16000)
    assert (audio.channels, audio.frame_rate) == (1, 16000)
    assert timeline[0]["duration_s"] == pytest.approx(1.0, abs=0.001)


def test_per_part_loudness_levelling(tmp_path):
    quiet = noise(3000, volume=-45)
    loud = tone(3000, volume=-3)
    audio, timeline = assemble_bulletin(
        [BulletinPart("item", quiet, item_id=1), BulletinPart("item", loud, item_id=2)], part_lufs=-18.0
    )
    levels = []
    for e in timeline:
        seg = audio[int(e["start_s"] * 1000) : int((e["start_s"] + e["duration_s"]) * 1000)]
        p = tmp_path / f"{e['item_id']}.wav"
        seg.export(p, format="wav")
        levels.append(r128(p)[0])
    assert all(abs(level + 18) <= 1 for level in levels), levels


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "news"}, {"kind": "item", "repeat": 0}],
)
def test_invalid_parts_are_refused(kwargs):
    with pytest.raises(ValueError, match="/"):  # Vietnamese / English
        BulletinPart(audio=tone(100), **kwargs)


def test_empty_bulletin_is_refused():
    with pytest.raises(ValueError):
        assemble_bulletin([])


def test_mp3_export_with_tags_and_manifest(parts, tmp_path):
    audio, timeline = assemble_bulletin(parts)
    audio = normalize_loudness(audio, sample_rate=22050)
    out_dir = tmp_path / "out"
    target = out_dir / "XA-01_2026-01-05_0530.mp3"
    tags = {
        "title": "Bản tin cải cách hành chính sáng 05/01/2026",
        "artist": "Đài truyền thanh xã Phước Hà",
        "date": "2026-01-05",
        "comment": "mot-cua, duong-day-nong",
        "genre": "mot-cua; duong-day-nong",
    }
    result = export_bulletin(
        audio,
        target,
        fmt="mp3",
        bitrate="64k",
        tags=tags,
        manifest={"station": "XA-01", "slot": "2026-01-05T05:30+07:00", "timeline": timeline},
    )
    assert result.path == target and result.manifest_path == target.with_suffix(".json")
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "XA-01_2026-01-05_0530.json",
        "XA-01_2026-01-05_0530.mp3",
    ]

    info = probe(target)
    assert info["format"]["format_name"] == "mp3"
    got_tags = {k.lower(): v for k, v in info["format"]["tags"].items()}
    assert got_tags["title"] == tags["title"]
    assert got_tags["artist"] == tags["artist"]
    assert got_tags["genre"] == tags["genre"]
    assert got_tags["date"].startswith("2026")
    with open(target, "rb") as fh:
        header = fh.read(4)
    assert header[:3] == b"ID3" and header[3] == 3  # ID3v2.3

    # What a listener hears: decode independently and count the samples.
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(target), "-f", "s16le", "-ac", "1", "-ar", "22050", "-"],
        capture_output=True,
        check=True,
    ).stdout
    decoded_s = len(pcm) / 2 / 22050
    assert decoded_s == pytest.approx(len(audio) / 1000, abs=0.03)
    assert result.duration_s == pytest.approx(decoded_s, abs=0.05)
    # ffprobe's container duration also counts the encoder delay and padding.
    duration = float(info["format"]["duration"])
    assert duration == pytest.approx(decoded_s, abs=0.1)

    i, tp = r128(target)
    assert abs(i + 16) <= 1 and tp <= -0.5  # MP3 encoding can add a few tenths of true peak
    assert result.loudness.integrated_lufs == pytest.approx(i, abs=0.1)

    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["station"] == "XA-01"
    assert manifest["audio"] == target.name and manifest["format"] == "mp3"
    assert manifest["duration_s"] == pytest.approx(result.duration_s, abs=0.001)
    assert manifest["tags"]["title"] == tags["title"]
    assert len(manifest["timeline"]) == len(timeline)
    assert manifest["loudness"]["integrated_lufs"] == pytest.approx(i, abs=0.1)
    assert len(manifest["sha256"]) == 64 and manifest["size_bytes"] == target.stat().st_size


def test_wav_export_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "b.wav"
    first = export_bulletin(tone(1000), target, fmt="wav", tags={}, manifest={"n": 1})
    inode = target.stat().st_ino
    second = export_bulletin(tone(2000), target, fmt="wav", tags={}, manifest={"n": 2})
    assert target.stat().st_ino != inode  # a new file moved into place, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.wav"]
    assert first.duration_s == pytest.approx(1.0, abs=0.01)
    assert float(probe(target)["format"]["duration"]) == pytest.approx(2.0, abs=0.01) == second.duration_s
    assert json.loads(target.with_suffix(".json").read_text())["n"] == 2


def test_failed_export_keeps_old_files_and_no_temp(tmp_path):
    target = tmp_path / "b.mp3"
    export_bulletin(tone(1000), target, tags={"title": "cũ"}, manifest={"n": 1})
    before = target.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - pydub's CouldntEncodeError
        export_bulletin(tone(1000), target, bitrate="not-a-bitrate", tags={}, manifest={"n": 2})
    assert target.read_bytes() == before
    assert json.loads(target.with_suffix(".json").read_text())["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.mp3"]


def test_export_refuses_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="ogg"):
        export_bulletin(tone(100), tmp_path / "b.ogg", fmt="ogg", tags={}, manifest={})


def test_audio_duration_is_read_by_ffprobe(tmp_path):
    p = tmp_path / "t.wav"
    tone(1234).export(p, format="wav")
    assert audio_duration_s(p) == pytest.approx(1.234, abs=0.001)
    with pytest.raises(FileNotFoundError):
        audio_duration_s(tmp_path / "missing.wav")


# --- jingles ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["intro", "outro"])
def test_committed_jingles_are_the_generators_output(name, tmp_path):
    committed = REPO / "audio" / f"{name}.wav"
    info = probe(committed)
    stream = info["streams"][0]
    assert (int(stream["sample_rate"]), stream["channels"]) == (22050, 1)
    assert 3.0 <= float(info["format"]["duration"]) <= 5.0
    i, tp = r128(committed)
    assert -25 < i < -10 and tp < -1  # audible, not clipped
    regenerated = jingles.write_jingle(name, tmp_path)
    assert regenerated.read_bytes() == committed.read_bytes()


def test_make_jingles_script_check_passes():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_jingles.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_load_jingle_generates_when_files_are_absent(tmp_path):
    on_the_fly = load_jingle("intro", directory=tmp_path)  # empty folder: non-editable install case
    assert on_the_fly.raw_data == load_jingle("intro").raw_data == generate_jingle("intro").raw_data
    with pytest.raises(ValueError, match="Unknown jingle"):
        load_jingle("fanfare", directory=tmp_path)
    with pytest.raises(ValueError):
        load_jingle("../etc/passwd")
