"""Log lines on stderr: with a time for a person at a terminal, journald-friendly under systemd.

Under systemd (``$JOURNAL_STREAM`` set) journald stamps every line itself and reads a leading
``<N>`` as the syslog priority, so the line carries the priority and no second timestamp.
"""

from __future__ import annotations

import logging
import os

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


def under_journald() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM"))


def stderr_formatter() -> logging.Formatter:
    return JournalFormatter() if under_journald() else logging.Formatter(TERMINAL_FORMAT)


def stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(stderr_formatter())
    return handler
