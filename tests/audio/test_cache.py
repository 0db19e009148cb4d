import os
import threading
import time
import unicodedata

import pytest
from pydub import AudioSegment
from pydub.generators import Sine

from broadcaster.audio.cache import AudioCache, cache_key

TEXT = "Người dân được hướng dẫn thủ tục đăng ký khai sinh trực tuyến."


def tone(ms: int = 300, stereo: bool = False) -> AudioSegment:
    seg = Sine(440).to_audio_segment(duration=ms).set_frame_rate(16000)
    return seg.set_channels(2) if stereo else seg.set_channels(1)


def files_in(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def test_key_is_sha256_of_sorted_json():
    import hashlib
    import json

    settings = {"voice": "vi", "speed": 150}
    expected = hashlib.sha256(
        json.dumps(
            {"text": TEXT, "backend": "espeak", "lang": "vi", "settings": settings},
            sort_keys=True,
            ensure_ascii=False,
        ).encode("utf-8")
    ).hexdigest()
    assert cache_key(TEXT, "espeak", "vi", settings) == expected
    assert AudioCache.key(TEXT, "espeak", "vi", settings) == expected


def test_key_changes_with_text_backend_lang_and_settings():
    base = cache_key(TEXT, "gtts", "vi", {"tld": "com.vn"})
    assert cache_key(TEXT + " ", "gtts", "vi", {"tld": "com.vn"}) != base
    assert cache_key(TEXT, "espeak", "vi", {"tld": "com.vn"}) != base
    assert cache_key(TEXT, "gtts", "en", {"tld": "com.vn"}) != base
    assert cache_key(TEXT, "gtts", "vi", {"tld": "com"}) != base
    assert cache_key(TEXT, "gtts", "vi", {"tld": "com.vn", "slow": True}) != base
    # key order of settings is irrelevant
    assert cache_key(TEXT, "gtts", "vi", {"a": 1, "b": 2}) == cache_key(TEXT, "gtts", "vi", {"b": 2, "a": 1})


def test_nfd_and_nfc_text_share_a_key():
    nfd = unicodedata.normalize("NFD", TEXT)
    assert nfd != TEXT  # the test means something
    assert cache_key(nfd, "gtts", "vi", {}) == cache_key(TEXT, "gtts", "vi", {})


def test_put_get_roundtrip_layout_and_mono(tmp_path):
    cache = AudioCache(tmp_path)
    key = cache_key(TEXT, "espeak", "vi", {})
    assert cache.get(key) is None
    assert key not in cache
    path = cache.put(key, tone(400, stereo=True))
    assert path == tmp_path / key[:2] / f"{key}.wav"
    assert files_in(tmp_path) == [f"{key[:2]}/{key}.wav"]
    assert key in cache
    seg = cache.get(key)
    assert seg is not None
    assert seg.channels == 1
    assert abs(len(seg) - 400) <= 1
    assert seg.frame_rate == 16000


def test_invalid_key_rejected(tmp_path):
    cache = AudioCache(tmp_path)
    with pytest.raises(ValueError, match="Invalid cache key"):
        cache.get("../../etc/passwd")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    cache = AudioCache(tmp_path)
    for i in range(5):
        cache.put(cache_key(f"{TEXT} {i}", "gtts", "vi", {}), tone(100))
    names = files_in(tmp_path)
    assert len(names) == 5
    assert all(n.endswith(".wav") and "/." not in n for n in names)


def test_failed_write_leaves_neither_temp_nor_partial_file(tmp_path, monkeypatch):
    cache = AudioCache(tmp_path)
    key = cache_key(TEXT, "gtts", "vi", {})

    def broken_export(self, out_f=None, format="mp3", **kwargs):
        out_f.write(b"RIFF\x00\x00")  # half a header, then the disk "fails"
        raise OSError("disk full")

    monkeypatch.setattr(AudioSegment, "export", broken_export)
    with pytest.raises(OSError, match="disk full"):
        cache.put(key, tone(100))
    assert files_in(tmp_path) == []
    assert cache.get(key) is None


def test_replacing_existing_entry_is_atomic_for_concurrent_readers(tmp_path):
    cache = AudioCache(tmp_path)
    key = cache_key(TEXT, "gtts", "vi", {})
    cache.put(key, tone(500))
    errors: list[object] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            seg = cache.get(key)
            if seg is None or abs(len(seg) - 500) > 1:
                errors.append(seg)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(30):
        cache.put(key, tone(500))
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert files_in(tmp_path) == [f"{key[:2]}/{key}.wav"]


def test_corrupt_file_is_a_miss_and_removed(tmp_path, caplog):
    cache = AudioCache(tmp_path)
    key = cache_key(TEXT, "gtts", "vi", {})
    path = cache.put(key, tone(100))
    path.write_bytes(b"not a wav at all")
    assert cache.get(key) is None
    assert not path.exists()
    assert "Corrupt cache file" in caplog.text


def _age(path, days: float):
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def test_prune_by_age(tmp_path):
    cache = AudioCache(tmp_path)
    old = cache.put(cache_key("cũ", "gtts", "vi", {}), tone(200))
    new = cache.put(cache_key("mới", "gtts", "vi", {}), tone(200))
    _age(old, 40)
    _age(new, 2)
    size = old.stat().st_size
    result = cache.prune(max_age_days=30)
    assert result.files_removed == 1
    assert result.bytes_freed == size
    assert not old.exists() and new.exists()
    assert cache.prune(max_age_days=30).files_removed == 0


def test_prune_by_size_removes_least_recently_used_first(tmp_path):
    cache = AudioCache(tmp_path)
    keys = [cache_key(f"câu {i}", "gtts", "vi", {}) for i in range(4)]
    paths = [cache.put(k, tone(300)) for k in keys]
    for i, p in enumerate(paths):
        _age(p, 10 - i)  # paths[0] oldest
    # reading the oldest one makes it the most recently used
    assert cache.get(keys[0]) is not None
    one = paths[0].stat().st_size
    result = cache.prune(max_bytes=2 * one)
    assert result.files_removed == 2
    assert result.bytes_freed == 2 * one
    assert [p.exists() for p in paths] == [True, False, False, True]
    assert cache.stats().total_bytes <= 2 * one


def test_prune_age_and_size_together_and_stale_temp_files(tmp_path):
    cache = AudioCache(tmp_path)
    a = cache.put(cache_key("a", "gtts", "vi", {}), tone(200))
    b = cache.put(cache_key("b", "gtts", "vi", {}), tone(200))
    c = cache.put(cache_key("c", "gtts", "vi", {}), tone(200))
    _age(a, 100)
    _age(b, 5)
    stale = a.parent / ".deadbeef.crashed.tmp"
    stale.write_bytes(b"x" * 10)
    _age(stale, 1)
    fresh = b.parent / ".cafe.writing.tmp"
    fresh.write_bytes(b"y")  # another process is writing this one right now
    result = cache.prune(max_age_days=30, max_bytes=c.stat().st_size)
    assert result.files_removed == 3  # stale temp, a (age), b (size)
    assert not a.exists() and not b.exists() and c.exists()
    assert not stale.exists() and fresh.exists()


def test_stats(tmp_path):
    cache = AudioCache(tmp_path / "missing-yet")
    empty = cache.stats()
    assert (empty.files, empty.total_bytes, empty.oldest_access) == (0, 0, None)
    assert cache.prune(max_age_days=0, max_bytes=0).files_removed == 0
    p1 = cache.put(cache_key("x", "gtts", "vi", {}), tone(100))
    p2 = cache.put(cache_key("y", "gtts", "vi", {}), tone(100))
    _age(p1, 3)
    st = cache.stats()
    assert st.files == 2
    assert st.total_bytes == p1.stat().st_size + p2.stat().st_size
    assert st.oldest_access < st.newest_access
