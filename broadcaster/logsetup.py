"""Log lines on stderr: with a time for a person at a terminal, journald-friendly under systemd.

Under systemd (``$JOURNAL_STREAM`` set) journald stamps every line itself and reads a leading
``<N>`` as the syslog priority, so the line carries the priority and no second timestamp.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from zoneinfo import ZoneInfo

TERMINAL_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in sorted(SYSLOG_PRIORITY.items(), reverse=True) if record.levelno >= level),
                        7)
        # Every line of a traceback gets the prefix, or journald files the continuation lines as info.
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


class StationTimeFormatter(logging.Formatter):
    """``TERMINAL_FORMAT`` with the time in the station's zone and its offset: people read station time."""

    def __init__(self, tz_name: str = "Asia/Ho_Chi_Minh") -> None:
        super().__init__(TERMINAL_FORMAT)
        self.zone = ZoneInfo(tz_name)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, self.zone)
        return moment.strftime(datefmt or "%Y-%m-%d %H:%M:%S") + f",{int(record.msecs):03d} {moment:%z}"


def under_journald() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM"))


def stderr_formatter(tz_name: str = "Asia/Ho_Chi_Minh") -> logging.Formatter:
    return JournalFormatter() if under_journald() else StationTimeFormatter(tz_name)


def stderr_handler(tz_name: str = "Asia/Ho_Chi_Minh") -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(stderr_formatter(tz_name))
    return handler
