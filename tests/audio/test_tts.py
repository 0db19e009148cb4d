import logging
import subprocess
import unicodedata
from io import BytesIO

import pytest
from gtts import gTTS
from pydub import AudioSegment
from pydub.generators import Sine

from broadcaster.audio.cache import AudioCache, cache_key
from broadcaster.audio.tts import (
    BackendBreaker,
    EspeakSynthesizer,
    GttsSynthesizer,
    Speech,
    SynthesisChain,
    SynthesisError,
    Synthesizer,
    build_chain,
    load_recording,
    split_sentences,
)
from tests.fakes import gtts_fake
from tests.fakes.gtts_fake import decode_request_body, encode_answer, render_mp3

fake_gtts = gtts_fake.fake_gtts  # the fixture: intercepts gTTS's HTTP calls

SHORT = "Xin chào bà con."
LONG = (
    "Xin chào bà con. Ủy ban nhân dân xã thông báo lịch tiếp công dân "
    "và hướng dẫn làm thủ tục hành chính trên cổng dịch vụ công quốc gia."
)


class Sleeps(list):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def gtts_synth(**kw) -> GttsSynthesizer:
    kw.setdefault("sleep", Sleeps())
    return GttsSynthesizer(**kw)


class Broken:
    name = "broken"

    def __init__(self, exc=None, audio=None):
        self.exc = exc or RuntimeError("boom")
        self.audio = audio
        self.calls = 0

    def synthesize(self, text, lang):
        self.calls += 1
        if self.audio is not None:
            return self.audio
        raise self.exc

    def cache_key_settings(self):
        return {"voice": "none"}


# --------------------------------------------------------------------- the fake itself


def test_fake_decodes_gtts_real_form_payload():
    long_text = LONG + " " + LONG  # > 100 chars: gTTS splits it into several requests
    bodies = gTTS(long_text, lang="vi", tld="com.vn").get_bodies()
    assert len(bodies) > 1
    assert all(b.startswith("f.req=") for b in bodies)
    decoded = [decode_request_body(b) for b in bodies]
    assert {d.lang for d in decoded} == {"vi"}
    assert all(d.speed is None for d in decoded)

    # gTTS's tokenizer cuts after "." and "," and drops them: compare the words only
    def words(text):
        return [w.strip(".,") for w in text.split()]

    assert words(" ".join(d.text for d in decoded)) == words(long_text)
    assert decode_request_body(gTTS(SHORT, lang="vi", slow=True).get_bodies()[0]).speed is True


def test_gtts_parses_fake_answer_back_to_the_same_mp3(fake_gtts):
    buf = BytesIO()
    gTTS(SHORT, lang="vi", tld="com.vn", timeout=3).write_to_fp(buf)
    assert buf.getvalue() == render_mp3(SHORT, "vi")
    assert fake_gtts.texts == [SHORT]
    call = fake_gtts.calls[0]
    assert call.url == "https://translate.google.com.vn/_/TranslateWebserverUi/data/batchexecute"
    assert call.timeout == 3 and call.verify is False
    assert encode_answer(b"\x01\x02").startswith(")]}'\n")


# --------------------------------------------------------------------- gTTS backend


def test_gtts_duration_grows_with_text(fake_gtts):
    synth = gtts_synth()
    short = synth.synthesize(SHORT, "vi")
    long = synth.synthesize(LONG, "vi")
    assert len(short) > 300
    assert len(long) > 2 * len(short)
    assert short.channels == 1
    # per sentence, in order, with the timeout passed through; the second sentence
    # is longer than 100 characters, so gTTS itself sends it in two requests
    second = LONG[len(SHORT) + 1 :]
    assert len(second) > 100
    assert fake_gtts.texts[:2] == [SHORT, SHORT]
    assert len(fake_gtts.texts) == 4
    assert " ".join(fake_gtts.texts[2:]) == second
    assert {c.timeout for c in fake_gtts.calls} == {10.0}


def test_gtts_joins_sentences_with_pause(fake_gtts):
    parts = ["Thông báo thứ nhất.", "Thông báo thứ hai."]
    pieces = [AudioSegment.from_file(BytesIO(render_mp3(p, "vi")), format="mp3") for p in parts]
    joined = gtts_synth(sentence_pause_ms=400).synthesize(" ".join(parts), "vi")
    assert abs(len(joined) - (sum(len(p) for p in pieces) + 400)) <= 5


def test_gtts_sends_nfc(fake_gtts):
    gtts_synth().synthesize(unicodedata.normalize("NFD", SHORT), "vi")
    assert fake_gtts.texts == [SHORT]


def test_gtts_retries_429_with_exponential_backoff(fake_gtts):
    sleeps = Sleeps()
    fake_gtts.fail_next(2, status=429)
    audio = gtts_synth(sleep=sleeps, backoff=0.5).synthesize(SHORT, "vi")
    assert len(audio) > 300
    assert [c.outcome for c in fake_gtts.calls] == ["http 429", "http 429", "ok"]
    assert sleeps == [0.5, 1.0]


def test_gtts_honours_retry_after(fake_gtts):
    sleeps = Sleeps()
    fake_gtts.fail_next(1, status=429, retry_after=7)
    gtts_synth(sleep=sleeps).synthesize(SHORT, "vi")
    assert sleeps == [7.0]


def test_gtts_500_beyond_retries_raises(fake_gtts):
    sleeps = Sleeps()
    fake_gtts.fail_next(10, status=500)
    with pytest.raises(SynthesisError) as info:
        gtts_synth(sleep=sleeps, retries=3).synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 4
    assert sleeps == [1.0, 2.0, 4.0]
    msg = str(info.value)
    assert msg.startswith("gTTS thất bại sau 4 lần thử")
    assert "gTTS failed after 4 attempts" in msg and "500" in msg


def test_gtts_connection_error_and_timeout_are_retried(fake_gtts):
    fake_gtts.connection_error_next(1)
    fake_gtts.timeout_next(1)
    audio = gtts_synth().synthesize(SHORT, "vi")
    assert len(audio) > 300
    assert [c.outcome for c in fake_gtts.calls] == ["connection error", "timeout", "ok"]


def test_gtts_offline_fails_at_once_without_retries(fake_gtts):
    fake_gtts.unreachable_next(1)
    sleeps = []
    with pytest.raises(SynthesisError, match="unreachable") as info:
        gtts_synth(sleep=sleeps.append).synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 1 and sleeps == []
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one line, no chained traceback


def test_chain_breaker_skips_an_unreachable_backend_in_every_process(fake_gtts, tmp_path, caplog):
    """Offline: one WARNING line, then gTTS is not asked again (even by a new chain) until the window ends."""
    import logging

    caplog.set_level(logging.INFO, logger="broadcaster.audio")
    now = [1000.0]

    def chain():
        built = SynthesisChain([gtts_synth(cooldown=0), EspeakSynthesizer()], cache=None,
                               breaker=BackendBreaker(tmp_path / "tts-breaker.json", 120, clock=lambda: now[0]))
        return built

    fake_gtts.unreachable_next(1)
    assert chain().speak(SHORT).backend == "espeak"
    assert chain().speak("Câu thứ hai.").backend == "espeak"  # a new chain, as another process would build
    assert fake_gtts.call_count == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "gtts" in warnings[0].getMessage() and not warnings[0].exc_info
    now[0] += 121
    assert chain().speak(SHORT).backend == "gtts"  # the window has passed and the network is back
    assert fake_gtts.call_count == 2


def test_gtts_real_hang_hits_the_timeout(fake_gtts):
    fake_gtts.hang_next(5, seconds=30)
    with pytest.raises(SynthesisError, match="timed out"):
        gtts_synth(timeout=0.05, retries=1).synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 2
    assert fake_gtts.calls[0].timeout == 0.05


def test_gtts_403_and_missing_audio_are_not_retried(fake_gtts):
    fake_gtts.fail_next(1, status=403)
    with pytest.raises(SynthesisError, match="refused"):
        gtts_synth().synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 1
    fake_gtts.no_audio_next(1)
    with pytest.raises(SynthesisError, match="no audio"):
        gtts_synth().synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 2


def test_gtts_cools_down_after_exhausting_retries(fake_gtts):
    now = [1000.0]
    synth = gtts_synth(retries=1, cooldown=60, clock=lambda: now[0])
    fake_gtts.connection_error_next(2)
    with pytest.raises(SynthesisError):
        synth.synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 2
    with pytest.raises(SynthesisError, match="paused"):
        synth.synthesize(SHORT, "vi")
    assert fake_gtts.call_count == 2  # no network call during the cool-down
    now[0] += 61
    assert len(synth.synthesize(SHORT, "vi")) > 300
    assert fake_gtts.call_count == 3


def test_gtts_unsupported_language_and_empty_text(fake_gtts):
    with pytest.raises(SynthesisError, match="does not support language"):
        gtts_synth().synthesize(SHORT, "xx-nope")
    with pytest.raises(SynthesisError, match="Nothing to speak"):
        gtts_synth().synthesize(" ... !", "vi")
    assert fake_gtts.call_count == 0


def test_split_sentences_keeps_abbreviations_together():
    text = "Xin chào bà con. TP. Hồ Chí Minh thông báo!\n1. Nộp hồ sơ\n... \nHết."
    assert split_sentences(text) == [
        "Xin chào bà con.",
        "TP. Hồ Chí Minh thông báo!",
        "1. Nộp hồ sơ",
        "Hết.",
    ]


# --------------------------------------------------------------------- espeak backend


def test_espeak_vietnamese_sentence_has_real_duration():
    synth = EspeakSynthesizer()
    audio = synth.synthesize(LONG, "vi")
    assert len(audio) > 500
    assert audio.channels == 1
    assert audio.max > 0
    faster = EspeakSynthesizer(speed=300).synthesize(LONG, "vi")
    assert len(faster) < len(audio)


def test_espeak_missing_binary_is_a_clear_error():
    synth = EspeakSynthesizer(binary="espeak-ng-not-installed")
    with pytest.raises(SynthesisError) as info:
        synth.synthesize(SHORT, "vi")
    assert "Không tìm thấy chương trình espeak-ng-not-installed" in str(info.value)
    assert "not found on PATH" in str(info.value)


def test_espeak_unknown_voice_and_bad_settings():
    with pytest.raises(SynthesisError, match="voice 'zz-nope'"):
        EspeakSynthesizer(voice="zz-nope").synthesize(SHORT, "zz")
    with pytest.raises(ValueError):
        EspeakSynthesizer(speed=10)
    assert EspeakSynthesizer(voice="vi-vn-x-south").voice_for("vi") == "vi-vn-x-south"
    assert EspeakSynthesizer().voice_for("en") == "en"


# --------------------------------------------------------------------- chain


def test_backends_satisfy_protocol():
    assert isinstance(GttsSynthesizer(), Synthesizer)
    assert isinstance(EspeakSynthesizer(), Synthesizer)


def test_chain_falls_back_to_espeak_with_warning(fake_gtts, caplog):
    fake_gtts.fail_next(10, status=503)
    chain = SynthesisChain([gtts_synth(retries=2), EspeakSynthesizer()], cache=None)
    with caplog.at_level(logging.WARNING, logger="broadcaster.audio"):
        speech = chain.speak(SHORT)
    assert isinstance(speech, Speech)
    assert speech.backend == "espeak" and speech.voice == "vi" and not speech.cached
    assert len(speech.audio) > 300
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "broadcaster.audio"]
    assert len(warnings) == 1
    assert "'gtts' failed" in warnings[0].getMessage() and "503" in warnings[0].getMessage()
    assert fake_gtts.call_count == 3


def test_chain_all_fail_raises_and_never_returns_silence():
    silent = Broken(audio=AudioSegment.silent(duration=2000))
    chain = SynthesisChain([silent, Broken(SynthesisError("mất mạng / offline"))], cache=None)
    with pytest.raises(SynthesisError) as info:
        chain.speak(SHORT)
    msg = str(info.value)
    assert msg.startswith("Không tạo được giọng đọc")
    assert "All speech backends failed" in msg and "silent" in msg and "offline" in msg
    with pytest.raises(SynthesisError, match="Nothing to speak"):
        chain.speak("   ")


def test_chain_cache_hit_makes_no_calls(fake_gtts, tmp_path):
    chain = SynthesisChain([gtts_synth(), EspeakSynthesizer()], cache=AudioCache(tmp_path))
    first = chain.speak(LONG)
    assert (first.backend, first.cached) == ("gtts", False)
    calls = fake_gtts.call_count
    second = chain.speak(unicodedata.normalize("NFD", LONG))  # same text, other normal form
    assert fake_gtts.call_count == calls
    assert (second.backend, second.cached) == ("gtts", True)
    assert abs(len(second.audio) - len(first.audio)) <= 1
    assert second.voice == first.voice == "vi@translate.google.com.vn"


def test_cached_espeak_render_does_not_block_gtts(fake_gtts, tmp_path):
    cache = AudioCache(tmp_path)
    gtts = gtts_synth(retries=0, cooldown=0)
    now = [1000.0]
    breaker = BackendBreaker(None, 120, clock=lambda: now[0])
    chain = SynthesisChain([gtts, EspeakSynthesizer()], cache=cache, breaker=breaker)
    fake_gtts.connection_error_next(1)
    assert chain.speak(SHORT).backend == "espeak"
    # network back after the breaker's window: gTTS is tried again and preferred over the cached espeak render
    now[0] += 121
    again = chain.speak(SHORT)
    assert (again.backend, again.cached) == ("gtts", False)
    third = chain.speak(SHORT)
    assert (third.backend, third.cached) == ("gtts", True)
    assert cache.stats().files == 2
    # while gTTS is down, the cached espeak render is used without running espeak
    fake_gtts.connection_error_next(1)
    assert chain.speak("Câu khác.").backend == "espeak"
    now[0] += 121
    fake_gtts.connection_error_next(1)
    espeak_key = cache_key("Câu khác.", "espeak", "vi", EspeakSynthesizer().cache_key_settings())
    assert espeak_key in cache
    hit = chain.speak("Câu khác.")
    assert (hit.backend, hit.cached) == ("espeak", True)


def test_chain_cache_distinguishes_settings(fake_gtts, tmp_path):
    cache = AudioCache(tmp_path)
    SynthesisChain([gtts_synth(sentence_pause_ms=250)], cache).speak(SHORT)
    speech = SynthesisChain([gtts_synth(sentence_pause_ms=500)], cache).speak(SHORT)
    assert not speech.cached
    assert fake_gtts.call_count == 2


# --------------------------------------------------------------------- factories


def test_build_chain_defaults_and_options(tmp_path):
    chain = build_chain(
        ["gtts", "espeak"],
        cache_dir=tmp_path,
        gtts_options={"tld": "com", "retries": 1},
        espeak_options={"speed": 170},
    )
    assert chain.names == ["gtts", "espeak"]
    assert chain.synthesizers[0].tld == "com" and chain.synthesizers[0].retries == 1
    assert chain.synthesizers[1].speed == 170
    assert chain.cache is not None and chain.cache.directory == tmp_path
    default = build_chain(None, cache_dir=None, gtts_options={}, espeak_options={})
    assert default.names == ["gtts", "espeak"] and default.cache is None
    assert build_chain([" Espeak "], cache_dir=None, gtts_options={}, espeak_options={}).names == ["espeak"]


def test_build_chain_rejects_unknown_names_and_options():
    with pytest.raises(ValueError) as info:
        build_chain(["gtts", "polly"], cache_dir=None, gtts_options={}, espeak_options={})
    assert "'polly'" in str(info.value) and "espeak, gtts" in str(info.value)
    with pytest.raises(ValueError, match="Empty"):
        build_chain([], cache_dir=None, gtts_options={}, espeak_options={})
    with pytest.raises(ValueError, match="twice"):
        build_chain(["espeak", "espeak"], cache_dir=None, gtts_options={}, espeak_options={})
    with pytest.raises(ValueError, match="Invalid options for espeak"):
        build_chain(["espeak"], cache_dir=None, gtts_options={}, espeak_options={"rate": 3})


# --------------------------------------------------------------------- recordings


def test_load_recording(tmp_path):
    path = tmp_path / "thong-bao.mp3"
    wav = tmp_path / "src.wav"
    Sine(300).to_audio_segment(duration=1200).export(wav, format="wav")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(path)], check=True)
    seg = load_recording(path)
    assert 1100 < len(seg) < 1400

    with pytest.raises(SynthesisError) as info:
        load_recording(tmp_path / "khong-co.mp3")
    assert "Không tìm thấy tệp ghi âm" in str(info.value) and "khong-co.mp3" in str(info.value)

    junk = tmp_path / "hong.m4a"
    junk.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(SynthesisError, match="Cannot read recording .*hong.m4a"):
        load_recording(junk)


def test_threads_that_find_a_backend_down_together_warn_once(tmp_path, caplog):
    """The render synthesises sentences in parallel: two sentences failing on gTTS at once are one line."""
    import threading
    import time

    class SlowToRead(BackendBreaker):  # widens the read-then-write window the threads would race in
        def _read(self):
            state = super()._read()
            time.sleep(0.02)
            return state

    breaker = SlowToRead(tmp_path / "tts-breaker.json", 120)
    start = threading.Barrier(4)

    def fail() -> None:
        start.wait()
        breaker.trip("gtts", "connection refused")

    threads = [threading.Thread(target=fail) for _ in range(4)]
    with caplog.at_level(logging.WARNING, logger="broadcaster.audio"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len([r for r in caplog.records if "gtts" in r.getMessage()]) == 1
    assert breaker.is_open("gtts")
