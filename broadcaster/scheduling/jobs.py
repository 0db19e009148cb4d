"""Job functions APScheduler calls, referenced by text and given ids only.

The running daemon binds itself here at start; a job never carries a
pickled object, so jobs can be rebuilt from the schedule table at any time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .daemon import Daemon

RUN_SLOT = "broadcaster.scheduling.jobs:run_slot"

_daemon: Daemon | None = None


def bind(daemon: Daemon | None) -> None:
    global _daemon
    _daemon = daemon


def run_slot(schedule_id: int) -> None:
    if _daemon is None:  # pragma: no cover - only if a job outlives its daemon
        raise RuntimeError("no daemon bound")
    _daemon.run_slot(schedule_id)
