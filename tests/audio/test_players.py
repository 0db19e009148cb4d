"""Players against real programs: a drop folder, ffmpeg in real time, a real icecast2."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from datetime import UTC
from pathlib import Path

import pytest

from broadcaster.audio.players import (
    DevicePlayer,
    FilePlayer,
    IcecastPlayer,
    Player,
    PlayerError,
    make_player,
    mask_secrets,
)
from tests.fakes.icecast import IcecastServer, running_icecast

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is required")

# Plays in real time "to nowhere": a sound card stand-in that blocks like one.
REALTIME_NULL = [
    "ffmpeg",
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-re",
    "-i",
    "{file}",
    "-f",
    "null",
    "-",
]


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def make_audio(path: Path, seconds: float, freq: int = 440) -> Path:
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
            f"sine=frequency={freq}:duration={seconds}",
            "-ac",
            "1",
            "-ar",
            "22050",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "wav2": make_audio(d / "two.wav", 2),
        "mp3_3": make_audio(d / "three.mp3", 3),
        "wav6": make_audio(d / "six.wav", 6),
    }


@pytest.fixture(scope="module")
def icecast():
    with running_icecast() as server:
        yield server


# --- file drop ----------------------------------------------------------------


def test_file_player_drops_an_atomic_copy(media, tmp_path):
    drop = tmp_path / "drop"
    player = FilePlayer(drop)
    assert isinstance(player, Player)
    result = player.play(media["mp3_3"], station_code="XA-01")
    files = list(drop.iterdir())
    assert len(files) == 1, files  # no temp file left behind
    copy = files[0]
    assert copy.name.startswith("XA-01_") and copy.name.endswith("_three.mp3")
    assert copy.read_bytes() == media["mp3_3"].read_bytes()
    assert result.duration_s == pytest.approx(probe_duration(media["mp3_3"]), abs=0.06)
    assert result.started_at.tzinfo is not None and result.started_at.utcoffset().total_seconds() == 0
    assert result.ended_at >= result.started_at and not result.interrupted
    assert str(copy) in result.detail

    again = player.play(media["mp3_3"], station_code="XA-01")  # same second: must not overwrite
    assert len(list(drop.iterdir())) == 2 and again.detail != result.detail


def test_file_player_station_code_cannot_escape_the_folder(media, tmp_path):
    drop = tmp_path / "drop"
    FilePlayer(drop).play(media["wav2"], station_code="../../etc/x y")
    (copy,) = drop.iterdir()
    assert copy.parent == drop and "/" not in copy.name


def test_file_player_stop_before_copy(media, tmp_path):
    stop = threading.Event()
    stop.set()
    result = FilePlayer(tmp_path / "drop").play(media["wav2"], station_code="XA-01", stop_event=stop)
    assert result.interrupted
    assert not (tmp_path / "drop").exists() or not list((tmp_path / "drop").iterdir())


def test_missing_file_is_a_player_error(tmp_path):
    with pytest.raises(PlayerError, match="Không tìm thấy"):
        FilePlayer(tmp_path).play(tmp_path / "nope.mp3", station_code="XA-01")


# --- sound card ---------------------------------------------------------------


def test_device_player_blocks_for_the_audio_duration(media):
    player = DevicePlayer(REALTIME_NULL)
    result = player.play(media["wav2"], station_code="XA-01")
    assert 1.8 <= result.duration_s <= 3.0, result
    assert (result.ended_at - result.started_at).total_seconds() == pytest.approx(result.duration_s, abs=0.1)
    assert result.started_at.tzinfo == UTC and not result.interrupted


def test_device_player_command_string_and_appended_file(media):
    # A string command without {file}: the file is appended.
    result = DevicePlayer("ffprobe -v error").play(media["wav2"], station_code="XA-01")
    assert result.duration_s < 1.5 and not result.interrupted


def test_device_player_can_be_interrupted(media):
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    t0 = time.monotonic()
    result = DevicePlayer(REALTIME_NULL).play(media["wav6"], station_code="XA-01", stop_event=stop)
    assert result.interrupted
    assert time.monotonic() - t0 < 2.5
    assert 0.3 <= result.duration_s < 2.5


def test_device_player_missing_program(media):
    with pytest.raises(PlayerError, match=r"^Không tìm thấy.*/ Player program 'no-such-player-xyz'"):
        DevicePlayer(["no-such-player-xyz", "{file}"]).play(media["wav2"], station_code="XA-01")


def test_device_player_no_default_program(media, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no ffplay, paplay or aplay
    with pytest.raises(PlayerError, match="ffplay, paplay hoặc aplay"):
        DevicePlayer().play(media["wav2"], station_code="XA-01")


def test_device_player_failure_is_reported(media):
    with pytest.raises(PlayerError, match="exit code 1"):
        DevicePlayer(["sh", "-c", "echo device busy >&2; exit 1", "{file}"]).play(
            media["wav2"], station_code="XA-01"
        )


# --- factory ------------------------------------------------------------------


def test_make_player(tmp_path):
    assert isinstance(make_player("file", {"drop_dir": tmp_path}), FilePlayer)
    assert isinstance(make_player("device", {}), DevicePlayer)
    ice = make_player("icecast", {"url": "icecast://source:pw@127.0.0.1:8000/x.mp3", "bitrate": "96k"})
    assert isinstance(ice, IcecastPlayer) and ice.bitrate == "96k"
    with pytest.raises(ValueError, match="Unknown player kind 'speaker'.*file, device, icecast"):
        make_player("speaker", {})
    with pytest.raises(ValueError, match="Invalid options"):
        make_player("file", {"folder": tmp_path})


def test_icecast_url_is_validated_and_masked():
    with pytest.raises(ValueError) as err:
        IcecastPlayer("icecast://source:topsecret@127.0.0.1:8000/")
    assert "topsecret" not in str(err.value)
    player = IcecastPlayer("icecast://source:topsecret@127.0.0.1:8000/live.mp3")
    assert "topsecret" not in repr(player) and "***" in player.display_url
    assert mask_secrets("icecast://source:p%40ss@h:1/m and p%40ss", ["p%40ss"]).count("***") == 2


# --- icecast ------------------------------------------------------------------


def test_icecast_stream_is_heard_by_a_listener(icecast: IcecastServer, media, tmp_path):
    player = IcecastPlayer(icecast.source_url(), bitrate="64k")
    outcome: dict = {}

    def stream():
        try:
            outcome["result"] = player.play(media["mp3_3"], station_code="XA-01")
        except Exception as exc:  # pragma: no cover - reported below
            outcome["error"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=stream)
    thread.start()
    # A listener can only connect once the source is up; burst-on-connect
    # hands it the audio already buffered.
    while not icecast.mount_is_live() and time.monotonic() - t0 < 3:
        time.sleep(0.05)
    recording = tmp_path / "rec.mp3"
    recorder = subprocess.Popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            icecast.listen_url(),
            "-t",
            "5",
            "-c",
            "copy",
            str(recording),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    thread.join(timeout=15)
    recorder.wait(timeout=10)
    wall = time.monotonic() - t0
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]

    assert 2.7 <= result.duration_s <= 4.5, result  # real time, not as fast as possible
    assert wall >= 2.7
    assert "***" in result.detail and icecast.source_password not in result.detail

    heard = probe_duration(recording)
    assert 1.5 <= heard <= 3.6, heard
    volume = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(recording),
            "-af",
            "volumedetect",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    mean = float(volume.split("mean_volume:")[1].split("dB")[0])
    assert mean > -40, volume  # the sine came through, not silence


def test_icecast_bad_password(icecast: IcecastServer, media):
    bad = "wrong-Pass-9876"
    with pytest.raises(PlayerError) as err:
        IcecastPlayer(icecast.source_url(password=bad)).play(media["wav2"], station_code="XA-01")
    message = str(err.value)
    assert "mật khẩu" in message and "password" in message
    assert bad not in message and icecast.source_password not in message


def test_icecast_connection_refused(media):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PlayerError, match="Không kết nối được") as err:
        IcecastPlayer(f"icecast://source:hunter2@127.0.0.1:{port}/x.mp3").play(
            media["wav2"], station_code="XA"
        )
    assert "hunter2" not in str(err.value)


def test_icecast_stream_can_be_interrupted(icecast: IcecastServer, media):
    stop = threading.Event()
    threading.Timer(0.7, stop.set).start()
    result = IcecastPlayer(icecast.source_url("/stop.mp3")).play(
        media["wav6"], station_code="XA-01", stop_event=stop
    )
    assert result.interrupted and result.duration_s < 2.5


def test_dropped_name_is_station_time_and_not_doubled():
    from datetime import UTC, datetime

    from broadcaster.audio.players import dropped_name

    handed = datetime(2026, 12, 1, 22, 30, 5, tzinfo=UTC)  # 05:30:05 on 2 December in Ho Chi Minh City
    assert dropped_name("XA-01", "XA-01_20261201T223000Z_slot1.mp3", handed, "Asia/Ho_Chi_Minh") == \
        "XA-01_20261202-053005_slot1.mp3"
    assert dropped_name("XA-01", "XA-01_20261202-053000-2.mp3", handed, "Asia/Ho_Chi_Minh") == \
        "XA-01_20261202-053005_XA-01_20261202-053000-2.mp3"  # a render's name without a label keeps it
    assert dropped_name("XA-01", "ban-tin.mp3", handed, "Asia/Ho_Chi_Minh", 2) == "XA-01_20261202-053005-2_ban-tin.mp3"
