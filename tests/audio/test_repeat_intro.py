""""Xin nhắc lại" before every repeat of an item read more than once: assembled exactly, and spoken in a
real render through the CLI (real gTTS client against the fake endpoint, real ffmpeg)."""

from __future__ import annotations

import pytest
from pydub.generators import Sine

from broadcaster.audio.assemble import BulletinPart, assemble_bulletin

from . import test_render
from .test_render import EMERGENCY, NOTICE, add_item, configure, ffprobe_duration, manifest_of, rendered_path

fake_gtts = test_render.fake_gtts  # fixtures shared with the render tests
studio = test_render.studio

RATE = 22050


def tone(ms: int, freq: float) -> object:
    return Sine(freq, sample_rate=RATE).to_audio_segment(duration=ms, volume=-20.0)


def test_the_intro_starts_every_reading_after_the_first():
    item = BulletinPart("item", tone(2000, 440), item_id=7, repeat=3, repeat_intro=tone(600, 880))
    once = BulletinPart("item", tone(1000, 330), item_id=8, repeat_intro=tone(600, 880))  # read once: no intro
    audio, timeline = assemble_bulletin([item, once], pause_ms=800, item_gap_ms=1200, sample_rate=RATE)
    # 2.0 |0.8| (0.6 |0.8| 2.0) |0.8| (0.6 |0.8| 2.0) |1.2| 1.0
    assert len(audio) / 1000 == pytest.approx(2.0 + 2 * (0.8 + 0.6 + 0.8 + 2.0) + 1.2 + 1.0, abs=0.002)
    readings = [(e["item_id"], e["reading"], e["duration_s"], e.get("intro_s")) for e in timeline]
    assert readings == [(7, 1, 2.0, None), (7, 2, 3.4, 1.4), (7, 3, 3.4, 1.4), (8, 1, 1.0, None)]
    # the intro is where the timeline says: 880 Hz, then silence, then the 440 Hz reading
    second = timeline[1]["start_s"] * 1000
    assert audio[second + 100 : second + 500].dBFS > -30
    assert audio[second + 700 : second + 1300].dBFS == float("-inf")


def test_render_says_xin_nhac_lai_before_the_repeat(run, studio, fake_gtts):
    notice = add_item(run, "--title", "Lịch tiếp dân", "--topic", "TTHC", "--text", NOTICE)
    urgent = add_item(run, "--title", "Khẩn: mưa lũ", "--topic", "CDS", "--priority", "emergency",
                      "--text", EMERGENCY)

    path = rendered_path(run("render", "--item", notice, "--item", urgent, "-o", studio / "a.wav").output)
    manifest = manifest_of(path)
    assert "Xin nhắc lại" in fake_gtts.texts  # spoken by the TTS, as configured by default
    intros = [p for p in manifest["pieces"] if p["part"] == "repeat_intro"]
    assert [(p["item_id"], [s["text"] for s in p["sentences"]]) for p in intros] == [(urgent, ["Xin nhắc lại"])]
    readings = [e for e in manifest["timeline"] if e["item_id"] == urgent]
    assert [e["reading"] for e in readings] == [1, 2] and "intro_s" not in readings[0]
    intro_s = readings[1]["intro_s"]
    assert intro_s == pytest.approx(intros[0]["duration_s"] + 0.8, abs=0.002)
    assert readings[1]["duration_s"] == pytest.approx(readings[0]["duration_s"] + intro_s, abs=0.002)
    # the item's airtime counts the intro: both readings, the pause between, the intro and its pause
    assert manifest["item_seconds"][str(urgent)] == pytest.approx(
        readings[1]["start_s"] + readings[1]["duration_s"] - readings[0]["start_s"], abs=0.01)

    # without it ("" in the config) the bulletin is shorter by exactly the intro and its pause
    configure(studio, repeat_intro='""')
    plain = manifest_of(rendered_path(run("render", "--item", notice, "--item", urgent,
                                          "-o", studio / "b.wav").output))
    assert not [p for p in plain["pieces"] if p["part"] == "repeat_intro"]
    assert ffprobe_duration(path) - ffprobe_duration(studio / "b.wav") == pytest.approx(intro_s, abs=0.02)

    # configurable words
    configure(studio, repeat_intro='"Đề nghị bà con nghe lại thông báo khẩn."')
    fake_gtts.reset_calls()
    run("render", "--item", urgent, "-o", studio / "c.wav")
    assert "Đề nghị bà con nghe lại thông báo khẩn" in fake_gtts.texts
