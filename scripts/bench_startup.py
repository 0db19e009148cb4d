#!/usr/bin/env python3
"""Benchmark: how long ``broadcaster --help``, ``status`` and a few others take to start and finish.

Standalone: initialises a temporary workspace (config, SQLite database) so ``status`` has
something to read. Each command runs several times in a fresh interpreter; printed are the
median and the best wall time, beside the floor measured the same way (``python -c pass``,
``python -c "import sqlite3"`` and ``python -c "import click"``), the machine's load, and ``python -X importtime`` totals: the
import time of everything the command loaded, and the five heaviest top-level packages.

Usage::

    .venv/bin/python scripts/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

TARGET_S = 0.3


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def import_totals(args: list[str], env: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """(seconds of all imports, heaviest top-level packages) from one ``-X importtime`` run."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, capture_output=True,
                          text=True, check=True)
    total_us = 0
    by_package: dict[str, int] = defaultdict(int)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if not match:
            continue
        own, name = int(match.group(1)), match.group(4)
        total_us += own
        by_package[name.split(".")[0]] += own
    heaviest = sorted(by_package.items(), key=lambda kv: -kv[1])[:5]
    return total_us / 1e6, [(name, us / 1e6) for name, us in heaviest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="broadcaster-bench-startup-"))
    try:
        env = dict(os.environ, XDG_CONFIG_HOME=str(root / "config"), XDG_DATA_HOME=str(root / "data"),
                   HOME=str(root))
        env.pop("BROADCASTER_CONFIG", None)
        cli = [sys.executable, "-m", "broadcaster"]
        subprocess.run([*cli, "init"], env=env, stdout=subprocess.DEVNULL, check=True, cwd=root)
        load = os.getloadavg()
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f}; {args.runs} runs each, wall seconds (median / best); target < {TARGET_S} s")
        rows = [
            ("floor: python -c pass", [sys.executable, "-c", "pass"], None),
            ("floor: python -c 'import sqlite3'", [sys.executable, "-c", "import sqlite3"], None),
            ("floor: python -c 'import click'", [sys.executable, "-c", "import click"], None),
            ("broadcaster --help", [*cli, "--help"], ["-m", "broadcaster", "--help"]),
            ("broadcaster --version", [*cli, "--version"], None),
            ("broadcaster status", [*cli, "status"], ["-m", "broadcaster", "status"]),
            ("broadcaster status --json", [*cli, "status", "--json"], None),
            # for comparison, commands that use the ORM (no target of their own):
            ("broadcaster schedule list", [*cli, "schedule", "list"], ["-m", "broadcaster", "schedule", "list"]),
            ("broadcaster log", [*cli, "log"], None),
        ]
        targeted = {"broadcaster --help", "broadcaster status", "broadcaster status --json"}
        floor = None
        for label, cmd, importtime_args in rows:
            times = timed(cmd, env, args.runs)
            median = statistics.median(times)
            floor = median if floor is None else floor  # python -c pass, measured first
            line = f"{label:<34} {median:6.3f} / {min(times):6.3f} s"
            if label.startswith("broadcaster"):
                line += f"  (+{median - floor:.3f} over the floor)"
            if label in targeted:
                line += "  " + ("ok" if median < TARGET_S else "OVER TARGET")
            print(line)
            if importtime_args:
                total, heaviest = import_totals(importtime_args, env)
                top = ", ".join(f"{name} {seconds:.3f}" for name, seconds in heaviest)
                print(f"{'':<4}-X importtime: all imports {total:.3f} s; heaviest: {top}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
