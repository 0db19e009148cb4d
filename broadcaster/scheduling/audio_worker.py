"""The daemon's audio work in a child process, so that an idle daemon does not hold the audio stack.

A render loads numpy, pydub, the TTS clients and the render's buffers; once
loaded, CPython keeps them (about 35 MiB here) for the life of the process.
The daemon keeps none of it: :class:`AudioWorker` starts a child
(``python -m broadcaster.scheduling.audio_worker``) at the first render or
airtime estimate, and the child does that work with its own database
connection, writing the render's outcome through :mod:`broadcaster.deliveries`
exactly as the daemon would. The child stays warm while work comes (an
emergency right after a slot pays no start-up) and is told to exit once it has
had nothing to do for :data:`IDLE_EXIT_S`; the next request starts a new one.

The child serves requests concurrently, each in its own thread: an emergency
never waits behind a routine render. A child that dies (killed, out of memory)
fails the requests in flight with :class:`AudioWorkerError`, which the caller
turns into a render failure that is retried like any other; nothing waits on
a dead child. Nothing waits forever on a live one either: every request has a
deadline (:func:`deadline_s`; a render's grows with its airtime). A child that
overruns one is killed with everything it started (espeak-ng, ffmpeg: it leads
its own process group), which fails every request in flight the same way, and
the next request starts a new child.

Wire format (private pipes, never stdin/stdout, which espeak and ffmpeg
inherit): each message is a 4-byte big-endian length and a pickle. The first
parent → child message is ``(config, log_file)``; then requests
``(request_id, kind, args)`` and answers ``(request_id, ok, value)``.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("broadcaster.daemon")

# A warm child exits after this long without a request (an idle daemon then holds no audio stack).
IDLE_EXIT_S = 300.0
# Deadlines of a request, beyond which the child is taken to be hung and killed. A ping or an estimate
# takes well under a second. A render takes a few seconds per ten minutes of air (espeak-ng, one encode),
# more when Google's TTS is slow: its timeout (10 s) and retries cost under a minute before the breaker
# sends the rest to espeak-ng. An emergency speaks with local backends only, and must not wait long.
QUICK_DEADLINE_S = 60.0
RENDER_DEADLINE_FLOOR_S = 300.0
EMERGENCY_RENDER_DEADLINE_FLOOR_S = 60.0
RENDER_DEADLINE_PER_AIR_S = 1.0
_KILL_WAIT_S = 5.0
_HEADER = struct.Struct(">I")


class AudioWorkerError(RuntimeError):
    """The audio child could not do the work (it died, could not start, or did not answer in time)."""


def deadline_s(kind: str, *, air_s: float = 0.0, emergency: bool = False) -> float:
    """How long a request may take before the child is killed; ``air_s``: a render's planned airtime."""
    if kind != "render":
        return QUICK_DEADLINE_S
    floor = EMERGENCY_RENDER_DEADLINE_FLOOR_S if emergency else RENDER_DEADLINE_FLOOR_S
    return floor + RENDER_DEADLINE_PER_AIR_S * max(0.0, air_s)


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    """The next message; EOFError when the other side has gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 -- our own child or parent, over a private pipe


class _Child:
    """One running child, its pipes and the requests it has not answered yet."""

    def __init__(self, config: Config, log_file: Path | None) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "broadcaster.scheduling.audio_worker", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True)  # its own process group: a kill takes its espeak-ng and ffmpeg too
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.requests = os.fdopen(to_child_w, "wb")
        self.answers = os.fdopen(from_child_r, "rb")
        self.pending: dict[int, Future] = {}
        self.hung = ""  # why it was killed, when a request overran its deadline
        _send(self.requests, (config, str(log_file) if log_file else None))

    def kill(self) -> None:
        """The child and everything it started die at once; its answers pipe then ends."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # gone already (its group with it)
            pass


class AudioWorker:
    """Calls into the audio child (started on demand, retired when idle); safe from any thread."""

    def __init__(self, config: Config, *, log_file: Path | None = None, idle_exit_s: float = IDLE_EXIT_S) -> None:
        self.config = config
        self.log_file = log_file
        self.idle_exit_s = idle_exit_s
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._ids = itertools.count(1)
        self._retire_timer: threading.Timer | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running child's pid (None when none runs): for the benchmark and tests."""
        child = self._child
        return child.process.pid if child is not None else None

    def call(self, kind: str, *args: Any, deadline: float | None = None) -> Any:
        """Run ``kind(*args)`` in the child and return its value.

        Raises AudioWorkerError if the child died, or did not answer within
        ``deadline`` seconds (default :func:`deadline_s` of the kind): then it
        is killed, and the other requests in flight fail with it.
        """
        deadline = deadline_s(kind) if deadline is None else deadline
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise AudioWorkerError("đang dừng / the daemon is stopping")
            if self._retire_timer is not None:
                self._retire_timer.cancel()
                self._retire_timer = None
            child = self._running_child()
            request_id = next(self._ids)
            child.pending[request_id] = future
            try:
                _send(child.requests, (request_id, kind, args))
            except OSError as exc:
                child.pending.pop(request_id, None)
                raise AudioWorkerError(f"tiến trình âm thanh đã dừng / the audio process died: {exc}") from exc
        try:
            ok, value = future.result(timeout=deadline)
        except FutureTimeout:
            child.hung = (f"tiến trình âm thanh không trả lời trong {deadline:.0f} s ({kind}), đã dừng nó / the "
                          f"audio process did not answer within {deadline:.0f} s ({kind}): killed")
            log.warning("%s [pid %s]", child.hung, child.process.pid)
            child.kill()
            try:  # every request in flight is failed by the answers thread once the pipe ends
                ok, value = future.result(timeout=_KILL_WAIT_S)
            except FutureTimeout:
                ok, value = False, child.hung
        if not ok:
            raise AudioWorkerError(value)
        return value

    def warm(self) -> None:
        """Return once a child runs and answers (started now if none does)."""
        self.call("ping")

    def close(self) -> None:
        """Stop the child (a render in progress is lost: the next start recovers it as stale)."""
        with self._lock:
            self._closed = True
            if self._retire_timer is not None:
                self._retire_timer.cancel()
            child, self._child = self._child, None
        if child is not None:
            _stop(child, wait_s=2.0)

    def kill(self) -> None:
        """The child dies at once (what a crash or the OOM killer does): for tests."""
        child = self._child
        if child is not None:
            child.kill()

    def _running_child(self) -> _Child:
        child = self._child
        if child is None or child.hung or child.process.poll() is not None:
            try:
                child = self._child = _Child(self.config, self.log_file)
            except OSError as exc:
                raise AudioWorkerError(f"không chạy được tiến trình âm thanh / cannot start the audio process: "
                                       f"{exc}") from exc
            threading.Thread(target=self._read_answers, args=(child,), name="audio-answers", daemon=True).start()
        return child

    def _read_answers(self, child: _Child) -> None:
        while True:
            try:
                request_id, ok, value = _receive(child.answers)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            with self._lock:
                future = child.pending.pop(request_id, None)
                if not child.pending and self._child is child and not self._closed:
                    self._retire_later(child)
            if future is not None:
                future.set_result((ok, value))
        child.process.wait()
        with self._lock:
            lost, child.pending = list(child.pending.values()), {}
            if self._child is child:
                self._child = None
        code = child.process.returncode
        reason = child.hung or f"tiến trình âm thanh đã dừng (mã {code}) / the audio process died (code {code})"
        if lost and not child.hung:  # a hung one was logged when it was killed
            log.error("%s [pid %s]", reason, child.process.pid)
        for future in lost:
            future.set_result((False, reason))
        child.answers.close()

    def _retire_later(self, child: _Child) -> None:
        """Called with the lock held, when the child has nothing in flight."""
        if self._retire_timer is not None:
            self._retire_timer.cancel()
        self._retire_timer = threading.Timer(self.idle_exit_s, self._retire, args=(child,))
        self._retire_timer.daemon = True
        self._retire_timer.start()

    def _retire(self, child: _Child) -> None:
        with self._lock:
            if self._child is not child or child.pending:
                return
            self._child = None
        _stop(child, wait_s=10.0)


def _stop(child: _Child, *, wait_s: float) -> None:
    """End of requests: the child finishes what it does and exits; killed if it does not in time."""
    try:
        child.requests.close()
    except OSError:
        pass
    try:
        child.process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.process.wait()


# ------------------------------------------------------------------ the child
def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    config, log_file = _receive(requests)
    if log_file:
        from ..logsetup import StationTimeFormatter

        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(StationTimeFormatter(config.broadcaster.timezone))
        root = logging.getLogger("broadcaster")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.raiseExceptions = False
    from ..app import App
    from .bulletins import Bulletins

    bulletins = Bulletins(App(config))
    work = {"render": bulletins.render_here, "estimate": bulletins.estimate_seconds, "ping": lambda: True}
    write_lock = threading.Lock()
    threads = []

    def answer(request_id: int, kind: str, args: tuple) -> None:
        try:
            message = (request_id, True, work[kind](*args))
        except Exception as exc:  # the caller logs it, as one line
            message = (request_id, False, (str(exc) or type(exc).__name__).splitlines()[0][:300])
        with write_lock:
            _send(answers, message)

    while True:
        try:
            request_id, kind, args = _receive(requests)
        except EOFError:
            break
        thread = threading.Thread(target=answer, args=(request_id, kind, args), name=kind)
        thread.start()
        threads = [t for t in threads if t.is_alive()] + [thread]
    for thread in threads:
        thread.join()


def main(argv: list[str]) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the daemon, whose stop ends this child
    requests = os.fdopen(int(argv[0]), "rb")
    answers = os.fdopen(int(argv[1]), "wb")
    _serve(requests, answers)


if __name__ == "__main__":
    main(sys.argv[1:])
