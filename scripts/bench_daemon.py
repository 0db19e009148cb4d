"""Benchmark the daemon: slot time to playback, idle cost, and announce-to-air latency.

Runs the real daemon in a subprocess on a temporary workspace with the
*default* TTS chain (gTTS then espeak-ng: offline here, so gTTS fails and the
chain's breaker skips it) and a file player. The idle daemon's resident
memory, CPU time and wake-ups (context switches of all its threads) are
sampled over ``--idle-runs`` windows of ``--idle`` seconds, each and the median
printed (targets: RSS <= 70 MiB, CPU <= 0.2 %): once before its first render,
once after it aired the slots. The slots: once the daemon runs, N one-off slots
a few seconds apart are added (their times set after every setup command has
run, so no slot is already due) and the daemon is poked as the CLI does;
``late_s`` in the delivery log is the playback start minus the slot time.
Last, it runs ``broadcaster announce`` ``--announcements``
times and measures from the moment the command starts to the moment the
announcement's audio file is on the station (dropped in its folder): the
target is 2 s; once with the daemon's audio child warm, once with it ended
before each (as after idling), the child then starting cold. The audio
child's RSS is printed beside the daemon's (the daemon's figure is its own pid).

    .venv/bin/python scripts/bench_daemon.py [--slots 20] [--gap 6] [--idle 60] [--idle-runs 3]
                                             [--announcements 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broadcaster import schedules  # noqa: E402
from broadcaster.app import App  # noqa: E402
from broadcaster.models import Bulletin, DaemonState  # noqa: E402
from broadcaster.scheduling.wakeup import tell_daemons  # noqa: E402
from broadcaster.timeutil import utcnow  # noqa: E402


def cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "broadcaster", *args], env=env, check=True, capture_output=True)


def proc_stats(pid: int) -> tuple[float, float, int]:
    """(RSS MiB, CPU seconds, context switches of all its threads) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:  # the thread ended
            continue
        switches += sum(int(line.split()[1]) for line in lines if "ctxt_switches:" in line)
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks, switches


def audio_children(pid: int) -> list[int]:
    """The daemon's audio worker processes (renders run there; see scheduling/audio_worker.py)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"audio_worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except OSError:
                continue
    return found


def idle_windows(pid: int, seconds: float, runs: int) -> list[tuple[float, float, float, float]]:
    """(RSS MiB at the end, CPU %, context switches per second, audio children's RSS MiB) of each window."""
    windows = []
    for _ in range(runs):
        rss0, cpu0, switches0 = proc_stats(pid)
        time.sleep(seconds)
        rss1, cpu1, switches1 = proc_stats(pid)
        children = sum(proc_stats(child)[0] for child in audio_children(pid))
        windows.append((rss1, 100 * (cpu1 - cpu0) / seconds, (switches1 - switches0) / seconds, children))
    return windows


def end_audio_child(pid: int) -> None:
    """What the daemon does after idling IDLE_EXIT_S: the next announcement starts a cold child."""
    for child in audio_children(pid):
        os.kill(child, signal.SIGTERM)
        while Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
            time.sleep(0.01)
    time.sleep(0.5)


def wait_until_started(app: App, daemon: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app.read_session() as session:
            state = session.get(DaemonState, 1)
        if state is not None and state.pid == daemon.pid and state.stopped_at is None:
            return
        if daemon.poll() is not None:
            raise SystemExit("the daemon exited at start")
        time.sleep(0.1)
    raise SystemExit("the daemon did not start")


def add_slots(app: App, count: int, gap_s: float) -> None:
    """Slots from a few seconds from now, in one transaction, then the CLI's poke."""
    first = utcnow() + timedelta(seconds=6)
    with app.session() as session:
        for n in range(count):
            schedules.add_schedule(session, station_code="XA", channel="loudspeaker", cron=None,
                                   at=first + timedelta(seconds=n * gap_s), length_s=60)
    tell_daemons(app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--gap", type=float, default=6.0, help="seconds between slots")
    parser.add_argument("--idle", type=float, default=60.0, help="idle sampling window, seconds")
    parser.add_argument("--idle-runs", type=int, default=3, help="idle windows (the median is printed)")
    parser.add_argument("--announcements", type=int, default=10, help="announce-to-air samples")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    config = workdir / "broadcaster.toml"
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    cli(env, "init", "--data-dir", str(workdir / "data"))
    # The default TTS chain; the same item may air in every slot (no repeat gap), so each slot has something.
    config.write_text(config.read_text().replace("repeat_gap_hours = 20", "repeat_gap_hours = 0"))
    cli(env, "station", "add", "XA", "--name", "Bench", "--drop-dir", str(workdir / "drop"))
    cli(env, "plan", "import", str(ROOT / "examples/plans/ninh-thuan-2023.toml"))
    cli(env, "content", "add", "--title", "t", "--topic", "911/KH-UBND:TTHC", "--approve",
        "--text", "Ủy ban nhân dân xã thông báo lịch tiếp công dân.")
    daemon = subprocess.Popen([sys.executable, "-m", "broadcaster", "daemon"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = App.load(config)
    wait_until_started(app, daemon)
    time.sleep(2.0)
    fresh = idle_windows(daemon.pid, args.idle, args.idle_runs)
    add_slots(app, args.slots, args.gap)
    deadline = time.monotonic() + 6 + args.slots * args.gap + 120
    while time.monotonic() < deadline:
        with app.read_session() as session:
            done = [b for b in session.exec(__import__("sqlmodel").select(Bulletin)).all() if b.status == "played"]
        if len(done) >= args.slots:
            break
        time.sleep(0.5)
    lateness = sorted(b.late_s for b in done)
    time.sleep(2.0)  # the last bulletin's bookkeeping settles
    worked = idle_windows(daemon.pid, args.idle, args.idle_runs)
    latencies = announce_latencies(env, workdir / "drop", args.announcements)
    cold = announce_latencies(env, workdir / "drop", args.announcements, prepare=lambda: end_audio_child(daemon.pid))
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"slots aired: {len(done)}/{args.slots}")
    if lateness:
        print(f"slot time -> playback start: median {statistics.median(lateness) * 1000:.0f} ms, "
              f"worst {max(lateness) * 1000:.0f} ms")
    for label, windows in (("idle daemon before its first render", fresh),
                           (f"idle daemon after airing {len(done)} slots", worked)):
        print(f"{label} ({args.idle:.0f} s windows; targets RSS <= 70 MiB, CPU <= 0.2 %):")
        for rss, cpu, wakes, child in windows:
            print(f"  RSS {rss:5.1f} MiB, CPU {cpu:.3f} %, {wakes:.2f} context switches/s; "
                  f"audio child RSS {child:.1f} MiB (0: none running)")
        rss, cpu, wakes, child = (statistics.median(column) for column in zip(*windows, strict=True))
        print(f"  median of {len(windows)}: RSS {rss:.1f} MiB, CPU {cpu:.3f} %, {wakes:.2f} context switches/s; "
              f"audio child {child:.1f} MiB")
    for label, found in (("audio child warm", latencies), ("audio child cold, as after idling", cold)):
        if found:
            print(f"announce -> audio on the station ({label}; default TTS chain, offline, {len(found)} runs): "
                  f"median {statistics.median(found):.2f} s, worst {max(found):.2f} s (target: 2 s)")


def announce_latencies(env: dict, drop: Path, runs: int, prepare=None) -> list[float]:  # noqa: ANN001
    """Seconds from starting ``broadcaster announce`` to its file appearing in the station's drop folder;
    ``prepare()`` runs before each."""
    found = []
    for n in range(runs):
        if prepare is not None:
            prepare()
        before = set(drop.iterdir()) if drop.exists() else set()
        start = time.monotonic()
        command = subprocess.Popen([sys.executable, "-m", "broadcaster", "announce", "--station", "XA",
                                    "--repeat", "1", "--no-wait", "--text",
                                    f"Thông báo khẩn số {n + 1}: nước sông dâng cao, bà con di chuyển tài sản "
                                    "lên chỗ cao, không qua ngầm tràn."],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() - start < 60:
            new = [p for p in drop.iterdir() if p not in before and not p.name.startswith(".")]
            if new:
                found.append(time.monotonic() - start)
                break
            time.sleep(0.01)
        command.wait(timeout=60)
        time.sleep(1.0)
    return found


if __name__ == "__main__":
    main()
