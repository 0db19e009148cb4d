"""The daemon's audio child: a request that overruns its deadline kills the child, never hangs the caller."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest

from broadcaster.app import App
from broadcaster.scheduling import audio_worker
from broadcaster.scheduling.audio_worker import AudioWorker, AudioWorkerError, deadline_s
from tests.scheduling.helpers import gone, wait_for


def test_deadlines_grow_with_airtime_and_an_emergency_waits_least():
    assert deadline_s("ping") == deadline_s("estimate") == audio_worker.QUICK_DEADLINE_S
    routine = deadline_s("render", air_s=600)
    assert routine == audio_worker.RENDER_DEADLINE_FLOOR_S + 600 * audio_worker.RENDER_DEADLINE_PER_AIR_S
    assert deadline_s("render", air_s=1800) > routine > deadline_s("render", air_s=600, emergency=True)


def test_a_child_that_does_not_answer_is_killed_and_the_next_call_starts_a_new_one(workspace, caplog):
    """The child is frozen (SIGSTOP: alive, never answering). A request with a short deadline fails with
    the reason, so does the other one in flight, the child dies, and the next request is answered by a
    new child."""
    worker = AudioWorker(App.load(None).config)
    try:
        worker.warm()
        frozen = worker.pid
        os.kill(frozen, signal.SIGSTOP)
        other: list[BaseException] = []

        def patient() -> None:
            try:
                worker.call("ping", deadline=120)
            except AudioWorkerError as exc:
                other.append(exc)

        waiting = threading.Thread(target=patient)
        waiting.start()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="broadcaster.daemon"), \
                pytest.raises(AudioWorkerError, match="did not answer within 1 s"):
            worker.call("ping", deadline=1.0)
        assert time.monotonic() - started < 10
        waiting.join(10)
        assert not waiting.is_alive() and "did not answer within 1 s" in str(other[0])
        wait_for(lambda: gone(frozen), 10, "the frozen child to die")
        assert [r.levelname for r in caplog.records if "did not answer" in r.getMessage()] == ["WARNING"]
        assert worker.call("ping") is True and worker.pid not in (None, frozen)
    finally:
        worker.close()
