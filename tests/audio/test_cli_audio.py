"""The audio commands an operator types: normalize, play, cache (render is in test_render.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from io import BytesIO
from pathlib import Path

import pytest
from pydub import AudioSegment

from broadcaster.cli.audio import COMMANDS


def sox_tone(path: Path, seconds: float = 1.5) -> Path:
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(path), "synth", str(seconds), "sine", "440",
                    "vol", "0.3"], check=True)
    return path


def test_normalize_prints_one_spoken_sentence_per_line(run, isolated_home):
    out = run("normalize", "UBND xã thông báo: tiếp dân lúc 7h30 ngày 20/1/2022. Gọi 0912345678!").output
    assert out.splitlines() == [
        "Ủy ban nhân dân xã thông báo: tiếp dân lúc bảy giờ ba mươi phút ngày hai mươi tháng một năm "
        "hai nghìn không trăm hai mươi hai",
        "Gọi không chín một hai, ba bốn năm, sáu bảy tám!",
    ]


def test_normalize_reads_a_file_or_stdin_and_uses_configured_abbreviations(run, isolated_home):
    run("init")
    config = isolated_home / "config" / "broadcaster" / "config.toml"
    text = config.read_text(encoding="utf-8").replace("abbreviations = {}", 'abbreviations = { "HTX" = "hợp tác xã" }')
    config.write_text(text, encoding="utf-8")
    bulletin = isolated_home / "tin.txt"
    bulletin.write_text("HTX Phước Hà họp.\nCCHC là việc của mọi người.\n", encoding="utf-8")
    assert run("normalize", "--file", bulletin).output.splitlines() == [
        "hợp tác xã Phước Hà họp", "cải cách hành chính là việc của mọi người"]
    assert run("normalize", "--file", "-", input="HĐND huyện.").output.splitlines() == ["Hội đồng nhân dân huyện"]


def test_normalize_diff_shows_the_written_line_beside_the_spoken_form(run, isolated_home):
    bulletin = isolated_home / "tin.txt"
    bulletin.write_text("UBND xã thông báo: từ 15/5 đến 30/5 tiếp dân tại TP. Bạc Liêu, P.7.\n"
                        "Bà con chú ý.\n\nGọi tổng đài 1022!\n", encoding="utf-8")
    lines = run("normalize", "--diff", "--file", bulletin).output.splitlines()
    assert max(len(line) for line in lines) <= 80
    gutter = lines[0].index("│")
    assert lines[0][gutter + 2:] == "Đọc là / spoken" and lines[1][gutter] == "┼"
    body = lines[2:-1]
    assert all(len(line) <= gutter or line[gutter] in "│→=" for line in body)
    left = " ".join(line[:gutter].strip() for line in body if line[:gutter].strip())
    right = " ".join(line[gutter + 2:] for line in body)
    assert left == ("UBND xã thông báo: từ 15/5 đến 30/5 tiếp dân tại TP. Bạc Liêu, P.7. Bà con chú ý. "
                    "Gọi tổng đài 1022!")
    assert right == ("Ủy ban nhân dân xã thông báo: từ ngày mười lăm tháng năm đến ngày ba mươi tháng năm "
                     "tiếp dân tại thành phố Bạc Liêu, phường bảy Bà con chú ý Gọi tổng đài một không hai hai!")
    marks = [line[gutter] for line in body if line[:gutter].strip()]
    assert marks[0] == "→" and "=" in marks  # "Bà con chú ý." is read as written
    assert lines[-1].startswith("2/3 dòng")
    # without --diff: one spoken sentence a line, as before
    assert run("normalize", "--file", bulletin).output.splitlines()[-1] == "Gọi tổng đài một không hai hai!"


def test_normalize_needs_exactly_one_source(run, isolated_home):
    for args in ((), ("text", "--file", "x.txt")):
        result = run("normalize", *args, ok=False)
        assert "TEXT" in result.output and "--file" in result.output
    missing = run("normalize", "--file", isolated_home / "none.txt", ok=False)
    assert "none.txt" in missing.output and len(missing.output.strip().splitlines()) == 1


def test_play_to_a_file_station_copies_into_its_drop_dir(run, workspace):
    tone = sox_tone(workspace / "ban-tin.wav")
    result = run("play", tone, "--station", "XA-01")
    dropped = list((workspace / "drop").iterdir())
    assert len(dropped) == 1
    assert re.fullmatch(r"XA-01_\d{8}-\d{6}_ban-tin\.wav", dropped[0].name)  # station time, no doubled prefix
    assert dropped[0].read_bytes() == tone.read_bytes()
    assert re.search(r"^Bắt đầu / started: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", result.output, re.M)
    assert re.search(r"^Kết thúc / ended: +\d{4}-", result.output, re.M)
    assert "Thời lượng / duration: 00:02 (1.5 s)" in result.output
    # a manual play is not a plan delivery
    from sqlmodel import select

    from broadcaster.app import App
    from broadcaster.models import Delivery

    with App.load(None).session() as session:
        assert session.exec(select(Delivery)).all() == []


def test_play_refuses_a_missing_file_or_unknown_station(run, workspace):
    missing = run("play", workspace / "none.mp3", "--station", "XA-01", ok=False)
    assert "none.mp3" in missing.output
    tone = sox_tone(workspace / "t.wav", 0.5)
    unknown = run("play", tone, "--station", "XA-99", ok=False)
    assert "XA-99" in unknown.output and len(unknown.output.strip().splitlines()) == 1
    assert not (workspace / "drop").exists() or not any((workspace / "drop").iterdir())


def test_cache_stats_and_prune(run, workspace):
    from broadcaster.app import App
    from broadcaster.audio.cache import AudioCache

    cache = AudioCache(App.load(None).config.cache_dir)
    tone = subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-t", "wav", "-", "synth", "1", "sine", "300"],
                          capture_output=True, check=True).stdout
    seg = AudioSegment.from_wav(BytesIO(tone))
    old = cache.put(AudioCache.key("cũ", "espeak", "vi", {}), seg)
    cache.put(AudioCache.key("mới", "espeak", "vi", {}), seg)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))

    stats = json.loads(run("cache", "stats", "--json").output)
    assert stats["files"] == 2 and stats["bytes"] > 80_000
    assert "Số tệp / files: 2" in run("cache", "stats").output

    out = run("cache", "prune", "--max-age-days", "7").output
    assert "removed: 1" in out
    assert not old.exists() and json.loads(run("cache", "stats", "--json").output)["files"] == 1
    assert "removed: 1" in run("cache", "prune", "--max-mb", "0").output
    assert json.loads(run("cache", "stats", "--json").output)["files"] == 0
    assert "--dry-run" in run("cache", "prune", "--max-mb", "1", "--dry-run", ok=False).output


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_audio_command_has_bilingual_help(run, isolated_home, command):
    out = run(command, "--help").output
    assert "/" in out.splitlines()[2]  # "Vietnamese / English" summary line


def test_play_here_uses_this_pc_not_the_station(run, workspace):
    tone = sox_tone(workspace / "ban-tin.wav", 0.5)
    heard = workspace / "heard.wav"
    result = run("play", "--here", tone, "--command", f"cp {{file}} {heard}")
    assert heard.read_bytes() == tone.read_bytes()
    assert "máy này / this PC" in result.output
    assert not (workspace / "drop").exists() or not any((workspace / "drop").iterdir())
    assert "--command goes with --here" in run("play", tone, "--command", "cp {file} x", ok=False).output


def test_play_next_listens_to_the_bulletin_rendered_ahead(run, workspace):
    from datetime import timedelta

    from sqlmodel import select

    from broadcaster.app import App
    from broadcaster.models import Bulletin, Station
    from broadcaster.timeutil import utcnow

    assert "no bulletin rendered ahead for XA-01" in run("play", "--next", "XA-01", ok=False).output
    ahead = sox_tone(workspace / "XA-01_ahead.wav", 0.5)
    with App.load(None).session() as session:
        station = session.exec(select(Station)).one()
        session.add(Bulletin(station_id=station.id, slot_time=utcnow() - timedelta(hours=1), status="ready",
                             audio_path=str(sox_tone(workspace / "old.wav", 0.5))))
        session.add(Bulletin(station_id=station.id, slot_time=utcnow() + timedelta(minutes=20), status="ready",
                             audio_path=str(ahead)))
    heard = workspace / "heard.wav"
    result = run("play", "--next", "XA-01", "--command", f"cp {{file}} {heard}")
    assert heard.read_bytes() == ahead.read_bytes() and "bulletin for" in result.output
