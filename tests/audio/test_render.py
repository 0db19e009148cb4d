"""Bulletin rendering end to end through the CLI: real gTTS client against the fake endpoint,
real espeak-ng, real ffmpeg; the results are checked with ffprobe/ffmpeg runs of our own."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

import pytest

from tests.fakes import gtts_fake

fake_gtts = gtts_fake.fake_gtts  # the fixture: intercepts gTTS's HTTP calls

from tests.core.test_plans import PLAN  # noqa: E402  (two topics, TTHC and CDS)

NOTICE = "UBND xã tiếp công dân lúc 7h30 thứ Năm. Bà con mang theo CCCD."
EMERGENCY = "Mưa lớn, bà con không qua suối."


def configure(home: Path, **audio: str) -> Path:
    """Edit the config ``init`` wrote: quick gTTS failure, chosen format, [audio] overrides."""
    path = home / "config" / "broadcaster" / "config.toml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^retries = \d+", "retries = 0", text)
    text = re.sub(r"(?m)^backoff = [\d.]+", "backoff = 0.01", text)
    text = re.sub(r"(?m)^timeout = 10\.0", "timeout = 2.0", text)
    for key, value in audio.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    path.write_text(text, encoding="utf-8")
    return path


def add_item(run, *args: str) -> int:
    out = run("content", "add", "--approve", *args).output
    return int(out.strip().splitlines()[0])


@pytest.fixture
def studio(run, workspace: Path) -> Path:
    """A workspace with the plan, station XA-01 and wav output, gTTS first then espeak."""
    plan = workspace / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    run("plan", "import", plan)
    configure(workspace, tts='["gtts", "espeak"]', format='"wav"')
    return workspace


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return float(out.strip())


def ffprobe_tags(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return {k.lower(): v for k, v in json.loads(out)["format"].get("tags", {}).items()}


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from a separate ffmpeg run."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-filter_complex", "ebur128=peak=true",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr
    summary = err[err.rfind("Summary:"):]
    integrated = float(re.search(r"I:\s*(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s*(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def rendered_path(output: str) -> Path:
    match = re.search(r"^Tệp / file: (.+)$", output, re.M)
    assert match, output
    return Path(match.group(1))


def manifest_of(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def test_mp3_bulletin_loudness_duration_tags_and_manifest(run, studio, fake_gtts):
    configure(studio, format='"mp3"')
    notice = add_item(run, "--title", "Lịch tiếp dân", "--topic", "TTHC", "--text", NOTICE)
    urgent = add_item(run, "--title", "Khẩn: mưa lũ", "--topic", "CDS", "--priority", "emergency",
                      "--text", EMERGENCY)

    result = run("render", "--item", notice, "--item", urgent, "--station", "XA-01")
    path = rendered_path(result.output)
    assert path.suffix == ".mp3" and path.parent == studio / "data" / "broadcaster" / "bulletins"
    assert re.fullmatch(r"XA-01_\d{8}-\d{6}\.mp3", path.name)

    # duration: printed, in the manifest, and measured by our own ffprobe run agree
    real = ffprobe_duration(path)
    shown = re.search(r"Thời lượng / duration: (\d\d):(\d\d) \(([\d.]+) s\)", result.output)
    assert shown and abs(float(shown.group(3)) - real) < 0.15
    assert int(shown.group(1)) * 60 + int(shown.group(2)) == round(float(shown.group(3)))
    manifest = manifest_of(path)
    assert abs(manifest["duration_s"] - real) < 0.15
    assert real > 12  # jingles ~7.6 s + ident + three readings

    integrated, peak = ebur128(path)
    assert abs(integrated - (-16.0)) <= 1.0, integrated
    assert peak <= -1.0, peak
    assert "LUFS" in result.output and "dBTP" in result.output

    # what was spoken: the normalised text, sentence by sentence, by gTTS
    spoken = fake_gtts.texts
    assert any("Ủy ban nhân dân" in t for t in spoken) and not any("UBND" in t for t in spoken)
    assert any("bảy giờ ba mươi phút" in t for t in spoken)
    assert any("Đài truyền thanh Xã Phước Hà" in t for t in spoken)  # the ident is spoken too
    assert manifest["backends"] == {str(notice): "gtts", str(urgent): "gtts"}
    assert manifest["fallbacks"] == []
    assert [i["id"] for i in manifest["items"]] == [notice, urgent]
    assert manifest["topics"] == ["TTHC", "CDS"]
    assert manifest["station"] == {"code": "XA-01", "name": "Xã Phước Hà"}
    assert {p["backend"] for p in manifest["pieces"]} == {"gtts"}

    # the emergency item is read twice, the other once; the frame is intro, ident ... outro
    kinds = [(e["kind"], e["item_id"]) for e in manifest["timeline"]]
    assert kinds == [("intro", None), ("ident", None), ("item", notice), ("item", urgent), ("item", urgent),
                     ("outro", None)]
    last = manifest["timeline"][-1]
    assert abs(last["start_s"] + last["duration_s"] - real) < 0.1
    assert "×2" in result.output

    tags = ffprobe_tags(path)
    assert tags["artist"] == "Xã Phước Hà" and tags["genre"] == "TTHC, CDS"
    assert tags["title"].startswith("Bản tin Xã Phước Hà") and re.fullmatch(r"\d{4}-\d\d-\d\d", tags["date"])


def test_unreachable_endpoint_still_gives_a_full_bulletin_in_espeak(run, studio, fake_gtts, caplog):
    notice = add_item(run, "--title", "Lịch tiếp dân", "--topic", "TTHC", "--text", NOTICE)
    urgent = add_item(run, "--title", "Khẩn", "--topic", "CDS", "--priority", "emergency", "--text", EMERGENCY)
    fake_gtts.connection_error_next(50)
    fake_gtts.fail_next(50, status=500)
    out = studio / "offline.wav"

    with caplog.at_level(logging.WARNING, logger="broadcaster"):
        result = run("render", "--item", notice, "--item", urgent, "-o", out)

    assert rendered_path(result.output) == out
    assert fake_gtts.call_count >= 1
    assert {c.outcome for c in fake_gtts.calls} <= {"connection error", "http 500"}
    manifest = manifest_of(out)
    assert manifest["backends"] == {str(notice): "espeak", str(urgent): "espeak"}
    assert manifest["fallbacks"] and all(f["wanted"] == "gtts" and f["backend"] == "espeak"
                                         for f in manifest["fallbacks"])
    assert any("connection error" in r or "lỗi kết nối" in r for f in manifest["fallbacks"] for r in f["reasons"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'gtts' failed, using the next one" in warnings[0].getMessage()
    assert "espeak" in result.output and "dự phòng" in result.output

    # a full bulletin, not silence: every reading is there, and it is loud enough
    assert [e["kind"] for e in manifest["timeline"]] == ["intro", "ident", "item", "item", "item", "outro"]
    integrated, peak = ebur128(out)
    assert abs(integrated + 16.0) <= 1.0 and peak <= -1.0
    assert ffprobe_duration(out) > 12


def test_second_render_is_served_from_the_cache(run, studio, fake_gtts, app):
    from broadcaster import content
    from broadcaster.audio.render import Renderer, estimate_item_seconds

    notice = add_item(run, "--title", "Lịch tiếp dân", "--topic", "TTHC", "--text", NOTICE)
    urgent = add_item(run, "--title", "Khẩn", "--topic", "CDS", "--priority", "emergency", "--text", EMERGENCY)
    run("render", "--item", notice, "--item", urgent, "-o", studio / "first.wav")
    first_calls = fake_gtts.call_count
    assert first_calls >= 4  # ident + 2 + 1 sentences
    fake_gtts.reset_calls()

    second = run("render", "--item", notice, "--item", urgent, "-o", studio / "second.wav")
    assert fake_gtts.call_count == 0
    manifest = manifest_of(rendered_path(second.output))
    assert all(s["cached"] for p in manifest["pieces"] for s in p["sentences"])
    assert manifest["backends"] == {str(notice): "gtts", str(urgent): "gtts"}
    assert abs(manifest["duration_s"] - manifest_of(studio / "first.wav")["duration_s"]) < 0.01

    # everything is cached: the composer's estimate is the real airtime, and costs no call either
    renderer = Renderer(app.config)
    with app.session() as session:
        for item_id in (notice, urgent):
            item = content.get_item(session, item_id)
            estimate = renderer.estimate_item(session, item)
            assert estimate.exact
            assert estimate_item_seconds(session, item, renderer) == pytest.approx(
                manifest["item_seconds"][str(item_id)], abs=0.01)
        assert renderer.estimate_item(session, content.get_item(session, urgent)).repeat == 2
    assert fake_gtts.call_count == 0


def test_recorded_item_plays_the_recording(run, studio, fake_gtts):
    thai = studio / "thai.wav"
    # an operator's recording: 2 s, 44.1 kHz stereo, quiet (-30 dBFS-ish)
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(thai), "synth", "2", "sine", "220", "sine", "330",
                    "vol", "0.05"], check=True)
    recorded = add_item(run, "--title", "Thông báo tiếng Thái", "--topic", "TTHC", "--channel", "loudspeaker",
                        "--audio", thai, "--audio-lang", "tai")
    bilingual = add_item(run, "--title", "Song ngữ", "--topic", "TTHC", "--channel", "loudspeaker",
                         "--text", EMERGENCY, "--audio", thai, "--audio-lang", "tai")
    fake_gtts.reset_calls()

    result = run("render", "--item", recorded, "--item", bilingual, "-o", studio / "rec.wav")
    manifest = manifest_of(studio / "rec.wav")
    assert manifest["backends"] == {str(recorded): "recorded", str(bilingual): "gtts+recorded"}
    assert f"tin/item {recorded} «Thông báo tiếng Thái»: recorded" in result.output
    items = {i["id"]: i for i in manifest["items"]}
    assert items[recorded]["languages"] == ["tai"]
    assert items[bilingual]["languages"] == ["vi", "tai"]  # Vietnamese read first, then the recording
    assert items[recorded]["reading_s"] == pytest.approx(2.0, abs=0.02)
    assert items[bilingual]["reading_s"] > 2.0 + 0.8  # speech + pause + recording
    # only Vietnamese went to the TTS service (ident + one sentence)
    assert fake_gtts.call_count == 2 and all(c.lang == "vi" for c in fake_gtts.calls)
    integrated, peak = ebur128(studio / "rec.wav")
    assert abs(integrated + 16.0) <= 1.0 and peak <= -1.0


def test_estimate_without_cache_is_close_to_the_real_airtime(run, studio, app):
    """Offline chain, nothing cached: the syllable-rate estimate is within 25 % of the render."""
    from broadcaster import content
    from broadcaster.audio.render import Renderer

    configure(studio, tts='["espeak"]')
    text = ("Từ ngày 1/7/2023, người dân có thể nộp hồ sơ trực tuyến trên Cổng dịch vụ công quốc gia. "
            "Mọi vướng mắc xin gọi đường dây nóng 0259 3822 123 trong giờ hành chính.")
    item_id = add_item(run, "--title", "Dịch vụ công", "--topic", "CDS", "--text", text)
    app = type(app).load(None)
    renderer = Renderer(app.config)
    with app.session() as session:
        before = renderer.estimate_item(session, content.get_item(session, item_id))
    assert not before.exact
    out = run("render", "--item", item_id, "-o", studio / "est.wav")
    real = manifest_of(rendered_path(out.output))["item_seconds"][str(item_id)]
    assert before.seconds == pytest.approx(real, rel=0.25)
    with app.session() as session:
        after = renderer.estimate_item(session, content.get_item(session, item_id))
    assert after.exact and after.seconds == pytest.approx(real, abs=0.01)


def test_unknown_item_is_one_clear_line(run, studio):
    result = run("render", "--item", "999", ok=False)
    assert result.exit_code == 1
    assert "999" in result.output and len(result.output.strip().splitlines()) == 1
    assert not any((studio / "data" / "broadcaster" / "bulletins").iterdir())
