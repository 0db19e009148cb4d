"""stderr log lines: a time at a terminal; under systemd a syslog priority and no doubled timestamp."""

from __future__ import annotations

import logging
import subprocess
import sys


def _record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("hỏng")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("broadcaster.daemon", level, __file__, 1, message, None, info)


def test_journald_lines_carry_priority_and_no_time(monkeypatch):
    from broadcaster.logsetup import stderr_formatter

    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    formatter = stderr_formatter()
    assert formatter.format(_record(logging.WARNING, "mất mạng")) == "<4>broadcaster.daemon: mất mạng"
    assert formatter.format(_record(logging.INFO, "đã phát")) == "<6>broadcaster.daemon: đã phát"
    lines = formatter.format(_record(logging.ERROR, "lỗi", exc=True)).splitlines()
    assert lines[0] == "<3>broadcaster.daemon: lỗi" and len(lines) > 2 and all(x.startswith("<3>") for x in lines)


def test_terminal_lines_keep_their_time(monkeypatch):
    from broadcaster.logsetup import stderr_formatter

    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    line = stderr_formatter().format(_record(logging.WARNING, "mất mạng"))
    assert line.endswith("WARNING broadcaster.daemon: mất mạng") and line[:4].isdigit()


def test_cli_verbose_logs_go_through_it(tmp_path):
    env = {"JOURNAL_STREAM": "8:1", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_DATA_HOME": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "broadcaster", "-v", "init"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    logged = [line for line in done.stderr.splitlines() if line.strip()]
    assert logged and all(line.startswith("<") for line in logged), logged
