"""Benchmark the daemon: slot time to playback, idle cost, and announce-to-air latency.

Runs the real daemon in a subprocess on a temporary workspace with the
*default* TTS chain (gTTS then espeak-ng: offline here, so gTTS fails and the
chain's breaker skips it) and a file player, schedules N one-off slots a few
seconds apart, and reads the delivery log: ``late_s`` is the playback start
minus the slot time. Then it samples the idle daemon's resident memory and CPU
time over a window. Last, it runs ``broadcaster announce`` ``--announcements``
times and measures from the moment the command starts to the moment the
announcement's audio file is on the station (dropped in its folder): the
target is 2 s.

    .venv/bin/python scripts/bench_daemon.py [--slots 10] [--gap 6] [--idle 20] [--announcements 10]
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

from broadcaster.app import App  # noqa: E402
from broadcaster.models import Bulletin  # noqa: E402
from broadcaster.timeutil import utcnow, zone  # noqa: E402


def cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "broadcaster", *args], env=env, check=True, capture_output=True)


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--gap", type=float, default=6.0, help="seconds between slots")
    parser.add_argument("--idle", type=float, default=30.0, help="idle sampling window, seconds")
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
    # slot times after the setup commands below have run (about 1.5 s each), and the daemon has started
    first = utcnow() + timedelta(seconds=15 + 2 * args.slots)
    tz = zone("Asia/Ho_Chi_Minh")
    for n in range(args.slots):
        at = (first + timedelta(seconds=n * args.gap)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        cli(env, "schedule", "add", "--station", "XA", "--at", at, "--length", "1m")
    daemon = subprocess.Popen([sys.executable, "-m", "broadcaster", "daemon"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = App.load(config)
    deadline = time.monotonic() + 15 + args.slots * args.gap + 120
    while time.monotonic() < deadline:
        with app.read_session() as session:
            done = [b for b in session.exec(__import__("sqlmodel").select(Bulletin)).all() if b.status == "played"]
        if len(done) >= args.slots:
            break
        time.sleep(0.5)
    lateness = sorted(b.late_s for b in done)
    rss0, cpu0 = proc_stats(daemon.pid)
    time.sleep(args.idle)
    rss1, cpu1 = proc_stats(daemon.pid)
    latencies = announce_latencies(env, workdir / "drop", args.announcements)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"slots aired: {len(done)}/{args.slots}")
    if lateness:
        print(f"slot time -> playback start: median {statistics.median(lateness) * 1000:.0f} ms, "
              f"worst {max(lateness) * 1000:.0f} ms")
    print(f"idle daemon: RSS {rss1:.0f} MiB, CPU {100 * (cpu1 - cpu0) / args.idle:.2f}% over {args.idle:.0f} s")
    if latencies:
        print(f"announce -> audio on the station (default TTS chain, offline, {len(latencies)} runs): "
              f"median {statistics.median(latencies):.2f} s, worst {max(latencies):.2f} s (target: 2 s)")


def announce_latencies(env: dict, drop: Path, runs: int) -> list[float]:
    """Seconds from starting ``broadcaster announce`` to its file appearing in the station's drop folder."""
    found = []
    for n in range(runs):
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
