"""How a bulletin is made: processes run, encodes, the mastered-clip cache, parallel synthesis.

Loudness is re-measured by ffmpeg's ebur128 filter (tests.audio.test_render.ebur128), never by
the project's own meter."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from broadcaster.audio import render as render_mod
from broadcaster.audio.cache import AudioCache
from broadcaster.audio.mastering import master_clip
from broadcaster.audio.tts import EspeakSynthesizer
from tests.audio.test_render import (
    EMERGENCY,
    NOTICE,
    add_item,
    configure,
    ebur128,
    manifest_of,
    rendered_path,
    studio,  # noqa: F401  (fixture)
)


@pytest.fixture
def processes(monkeypatch) -> Counter:
    """Counts the programs started (ffmpeg, ffprobe, espeak-ng...) by name."""
    started: Counter = Counter()
    real = subprocess.Popen

    class CountingPopen(real):
        def __init__(self, args, *rest, **kwargs):
            started[os.path.basename(str(args[0] if isinstance(args, list | tuple) else args))] += 1
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", CountingPopen)
    return started


def offline(home: Path, fmt: str = '"mp3"') -> None:
    configure(home, tts='["espeak"]', format=fmt)


def test_warm_mp3_render_is_one_encode_and_one_check(run, studio, processes):  # noqa: F811
    offline(studio)
    notice = add_item(run, "--title", "Lịch tiếp dân", "--topic", "TTHC", "--text", NOTICE)
    urgent = add_item(run, "--title", "Khẩn", "--topic", "CDS", "--priority", "emergency", "--text", EMERGENCY)
    run("render", "--item", notice, "--item", urgent, "-o", studio / "cold.mp3")
    assert processes["espeak-ng"] == 5  # ident + 2 + 1 sentences and "Xin nhắc lại", each once
    processes.clear()

    result = run("render", "--item", notice, "--item", urgent, "-o", studio / "warm.mp3")
    assert dict(processes) == {"ffmpeg": 2}  # the encoder and the check; no espeak, no ffprobe
    path = rendered_path(result.output)
    manifest = manifest_of(path)
    assert manifest["loudness_checked"] is True
    assert all(s["cached"] for p in manifest["pieces"] for s in p["sentences"])
    integrated, peak = ebur128(path)
    assert abs(integrated + 16.0) <= 0.5 and peak <= -1.0
    assert manifest["loudness"]["integrated_lufs"] == pytest.approx(integrated, abs=0.15)


def test_wav_render_starts_no_ffmpeg_once_warm(run, studio, processes):  # noqa: F811
    offline(studio, '"wav"')
    notice = add_item(run, "--title", "Lịch tiếp dân", "--topic", "TTHC", "--text", NOTICE)
    run("render", "--item", notice, "-o", studio / "first.wav")
    processes.clear()
    run("render", "--item", notice, "-o", studio / "second.wav")
    assert "ffmpeg" not in processes and "espeak-ng" not in processes
    integrated, peak = ebur128(studio / "second.wav")
    assert abs(integrated + 16.0) <= 0.5 and peak <= -1.0


def prepared(run, text: str = EMERGENCY, repeat: str = "2"):
    from sqlmodel import select

    from broadcaster import content
    from broadcaster.app import App
    from broadcaster.models import Station

    item_id = add_item(run, "--title", "Thông báo khẩn", "--topic", "CDS", "--priority", "emergency",
                       "--repeat", repeat, "--text", text)
    app = App.load(None)
    renderer = render_mod.Renderer(app.config)
    with app.session() as session:
        station = session.exec(select(Station)).first()
        job = renderer.prepare(session, [content.get_item(session, item_id)], station)
    return renderer, job


def test_announcement_render_without_check_is_one_ffmpeg_run(run, studio, processes):  # noqa: F811
    offline(studio)
    text = ("Mưa lớn kéo dài, nước suối dâng cao. Bà con thôn Tà Lọt không qua suối, "
            "di chuyển người già và trẻ em lên nhà văn hóa thôn ngay.")
    renderer, job = prepared(run, text)
    processes.clear()
    result = renderer.render(job, output=studio / "announce.mp3", check=False)
    assert processes["ffmpeg"] == 1  # the encoder only: mastering and the jingles are in-process
    assert processes["espeak-ng"] == len(renderer.normalize(text)) + 2  # + the station ident, "Xin nhắc lại"
    assert result.manifest["loudness_checked"] is False
    integrated, peak = ebur128(result.path)  # the prediction holds
    assert abs(integrated + 16.0) <= 0.5 and peak <= -1.0
    assert result.loudness.integrated_lufs == pytest.approx(integrated, abs=0.3)


def test_a_check_that_misses_encodes_again(run, studio, monkeypatch, processes):  # noqa: F811
    offline(studio)
    renderer, job = prepared(run)
    renderer.render(job, output=studio / "warm-up.mp3")
    # a wrong idea of the encoder's shift: the first encode lands 3 LU too quiet
    monkeypatch.setitem(render_mod.ENCODER_LOUDNESS_SHIFT_LU, "mp3", 3.0)
    processes.clear()
    result = renderer.render(job, output=studio / "again.mp3")
    assert processes["ffmpeg"] == 4  # encode + check, then corrected encode + check
    integrated, peak = ebur128(result.path)
    assert abs(integrated + 16.0) <= 0.5 and peak <= -1.0
    assert not list(studio.glob("**/.again.mp3.*"))  # the first attempt's file is gone


def test_cold_sentences_are_spoken_in_parallel_and_kept_in_order(run, studio, monkeypatch):  # noqa: F811
    offline(studio, '"wav"')
    text = ". ".join(f"Câu thông báo số {n} của xã" for n in range(1, 7)) + "."
    renderer, job = prepared(run, text, repeat="1")
    renderer.workers = 2
    running = {"now": 0, "most": 0}
    lock = threading.Lock()
    real = EspeakSynthesizer.synthesize

    def slow(self, sentence, lang):
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        try:
            time.sleep(0.2)
            return real(self, sentence, lang)
        finally:
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(EspeakSynthesizer, "synthesize", slow)
    result = renderer.render(job, output=studio / "parallel.wav")
    assert running["most"] == 2
    spoken = [s["text"] for p in result.manifest["pieces"] if p["part"] == "item" for s in p["sentences"]]
    assert spoken == renderer.normalize(text)


def test_cold_sentences_are_spoken_in_the_order_they_are_heard(run, studio, monkeypatch):  # noqa: F811
    """The repeat intro is needed after the first item read twice, not after the whole bulletin."""
    from sqlmodel import select

    from broadcaster import content
    from broadcaster.app import App
    from broadcaster.models import Station

    offline(studio, '"wav"')
    first = add_item(run, "--title", "Khẩn", "--topic", "CDS", "--repeat", "2", "--text", "Nước suối dâng cao.")
    second = add_item(run, "--title", "Lịch", "--topic", "TTHC", "--text", "Chiều nay họp thôn. Mời bà con dự.")
    app = App.load(None)
    renderer = render_mod.Renderer(app.config)
    renderer.workers = 1
    with app.session() as session:
        station = session.exec(select(Station)).first()
        job = renderer.prepare(session, [content.get_item(session, i) for i in (first, second)], station)
    spoken: list[str] = []
    real = EspeakSynthesizer.synthesize

    def recording(self, sentence, lang):
        spoken.append(sentence)
        return real(self, sentence, lang)

    monkeypatch.setattr(EspeakSynthesizer, "synthesize", recording)
    renderer.render(job, output=studio / "ordered.wav")
    ident = renderer.normalize(renderer.ident_text(job.station_name))
    assert spoken == [*ident, *renderer.normalize("Nước suối dâng cao."), *renderer.normalize(renderer.repeat_intro),
                      *renderer.normalize("Chiều nay họp thôn. Mời bà con dự.")]


def test_mastered_clip_cache_round_trip_and_torn_file(tmp_path):
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(22050 * 2) * 3000).astype(np.int16)
    clip = master_clip(pcm, 22050, -16.0, -2.5)
    cache = AudioCache(tmp_path)
    key = AudioCache.key("câu", "espeak", "vi", {"mastering": 1})
    path = cache.put_clip(key, clip)
    with wave.open(str(path), "rb") as w:  # an ordinary WAV to any reader
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 22050, clip.frames)
    back = cache.get_clip(key)
    assert np.array_equal(back.pcm, clip.pcm)
    assert back.integrated_lufs == clip.integrated_lufs and np.allclose(back.energies, clip.energies)
    path.write_bytes(path.read_bytes()[:-1000])  # a write cut short by a power cut
    assert cache.get_clip(key) is None and not path.exists()


def test_warm_render_of_a_recording_neither_decodes_nor_masters_it_again(run, studio, processes):  # noqa: F811
    offline(studio)
    recording = studio / "loa.mp3"  # an operator's phone recording: MP3, stereo, quiet
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=220:duration=3,volume=0.05", "-ac", "2", str(recording)], check=True)
    item = add_item(run, "--title", "Thông báo ghi âm", "--topic", "TTHC", "--channel", "loudspeaker",
                    "--audio", recording, "--audio-lang", "vi")
    run("render", "--item", item, "-o", studio / "cold.mp3")
    processes.clear()
    run("render", "--item", item, "-o", studio / "warm.mp3")
    assert dict(processes) == {"ffmpeg": 2}  # the encoder and the check; the recording comes from the cache
    integrated, peak = ebur128(studio / "warm.mp3")
    assert abs(integrated + 16.0) <= 0.5 and peak <= -1.0
    # the stored recording replaced by another one: new bytes, so it is decoded and mastered again
    stored = next(p["sentences"][0]["file"] for p in manifest_of(studio / "warm.mp3")["pieces"]
                  if p["kind"] == "recording")
    subprocess.run(["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=330:duration=5,volume=0.05", "-ac", "2", "-f", "mp3", stored], check=True)
    processes.clear()
    run("render", "--item", item, "-o", studio / "again.mp3")
    assert processes["ffmpeg"] >= 3 and manifest_of(studio / "again.mp3")["items"][0]["reading_s"] == \
        pytest.approx(5.0, abs=0.1)
