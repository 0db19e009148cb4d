"""Send a campaign's pending rows: bounded concurrency, a global rate, retries, a trace before every send.

Rows go through three steps:

1. a worker thread with no claimed row left takes the next small batch
   (:func:`claim_batch_size`: up to 32, fewer with a rate limit) that another
   worker claimed, or claims the next batch of every worker (its own only,
   under a rate limit) (:func:`~broadcaster.deliveries.claim_sms`) in one
   committed transaction —
   ``pending`` → ``sending`` (``attempts`` + 1, ``backend``) *before* any of
   their HTTP calls; a recipient who opted out since the campaign was written
   (or whose contact was deleted) becomes ``skipped`` instead and is not sent.
   At most two batches per worker are claimed and not yet sent;
2. the worker makes the call of each row of its batch in turn;
3. it hands the outcome — ``sent`` (``provider_id`` = Twilio SID) or an error
   below — to the dispatch's result writer, which writes every outcome that
   arrived meanwhile in one transaction (a group commit). Rows of the batch
   not handed over when the dispatch stops (quiet hours began, the daemon
   stops, the network is down) are released: ``pending`` again. On an error:

   - retryable (429 / 20429, 5xx): back to ``pending``, wait
     ``sms.retry_backoff × 2^n`` seconds (or Twilio's ``Retry-After`` when
     longer) plus up to 25 % random jitter, so workers throttled together do
     not retry in lockstep, then claimed again; at most ``sms.max_retries``
     times, then ``failed``;
   - **network** (a connection that was never made: refused, DNS, connect
     timeout): not a failure of the message. The row goes back to ``pending``
     and every pending row of the campaign waits (``scheduled_for``) for
     ``sms.network_retry_seconds × 2^n`` (jittered, at most an hour); the
     daemon's :func:`dispatch_due` tries again when that time comes. A row
     still unsent ``sms.max_age_hours`` after it was written becomes
     ``failed`` ("expired") — except an emergency, which keeps waiting and is
     reported (a WARNING each round, and ``sms status``);
   - **uncertain** (a *read* timeout or a connection dropped after the request
     was written, or a process that died mid-send): Twilio may have queued
     the message, so the row becomes ``uncertain`` and is never re-sent
     blindly. :func:`resolve_uncertain` (``sms resume`` by default, and the
     daemon once a row has been uncertain for a while) asks the provider's
     listing: found → ``sent`` with its SID; absent from a complete listing →
     ``pending`` and sent once; the provider cannot answer → stays
     ``uncertain``. ``--retry-uncertain`` still re-sends them all on the
     operator's word. The status-callback URL carries ``?ref=<delivery id>``,
     so a callback for a message whose answer was lost finds its row exactly;
   - permanent (21211, 21614, 21612, 21610, other 4xx): ``failed`` at once with
     ``error_code``/``error_message`` (numbers masked); 21610 (the person
     replied STOP) also opts the contact out;
   - fatal (bad credentials, 401 / 20003): the row goes back to ``pending`` and
     the whole dispatch stops — nothing can be sent with this configuration.

Durability — why a message is never sent twice, even across a power cut:
a row is sent only by the worker whose claim moved it ``pending`` →
``sending``, and that claim is committed before the request. On PostgreSQL the
claim takes the rows ``FOR UPDATE SKIP LOCKED`` (two dispatchers, on one PC or
several, never take one row; a committed transaction is on disk with the
server's default ``synchronous_commit``). On SQLite the claim runs under the
database's one write lock and its transaction commits with
``synchronous=FULL``: the WAL is fsynced before the commit returns, so the
claim survives a power cut (``NORMAL``, used elsewhere, survives a crash of the
process but can lose the last commits to a power cut — a lost claim would put
a sent row back to ``pending``, and it would be sent again). One fsync per
claim (a batch for each worker), not per message, is what makes this
affordable. Results need no such care: an outcome lost with the last group
commit leaves its row ``sending``, which recovery turns ``uncertain``, and the
provider is asked before anything is re-sent.

Concurrency: ``sms.concurrency`` worker threads, each with its *own* sender (a
Twilio client holds a ``requests.Session``, which is not thread-safe), sharing
one token bucket of ``sms.rate_per_second`` (0 or less: no limit).

One dispatcher at a time per data directory: :func:`dispatch_lock` holds an OS
file lock (``data_dir/sms-dispatch.lock``) that the kernel releases when the
process dies. Whoever takes it first turns every row still ``sending`` into
``uncertain`` (:func:`recover_interrupted`): with the lock free, no live
process can be sending them, so they were left by a crash. PCs sharing one
PostgreSQL each have their own data directory: there a dispatcher sending
holds a shared advisory lock, and rows left ``sending`` are recovered only
when no dispatcher anywhere holds it
(:func:`~broadcaster.deliveries.sms_dispatching`).

Quiet hours (station time, read from the *current* config at the moment of
sending; never for an emergency item) and ``not_before`` hold a campaign: the
dispatcher returns leaving rows ``pending``; the daemon's SMS thread calls
:func:`dispatch_due` and it sends every open campaign that has become due. The
operator's decision holds at the moment of sending: a campaign whose item was
retired or un-approved meanwhile is held (nothing sent), a cancelled campaign's
rows are ``cancelled`` and never claimed (rows already claimed — a batch or
two, about a second's worth under a rate limit — go out).
Every write goes through :mod:`broadcaster.deliveries`. ``now`` is a callable everywhere, so tests (and
the daemon) can inject the clock; ``stop`` lets the daemon end a dispatch at
once (rows not yet claimed stay pending).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from ..app import App
from ..config import Config
from ..db import session_scope
from ..deliveries import (
    DeliveryStatus,
    SmsOutcome,
    campaign_counts,
    claim_sms,
    expire_unsent,
    finish_sms,
    finish_sms_many,
    provider_ids_in_use,
    recover_sms_sending,
    refresh_campaign_status,
    release_sms,
    sms_dispatching,
    uncertain_rows,
    wait_for_network,
    waiting_for_network,
)
from ..deliveries import requeue_uncertain as _requeue_uncertain
from ..deliveries import resolve_uncertain as _resolve_row
from ..errors import BroadcasterError
from ..fileutil import FileLock
from ..models import ContentItem, Delivery, Priority
from ..phones import mask_phone
from ..timeutil import as_utc, utcnow
from .backends import OPT_OUT_CODES, SmsSender, SmsSendError, make_sender, redact_numbers
from .campaigns import (
    OPEN,
    find_campaign,
    held_by_quiet_hours,
    open_campaigns,
    quiet_hold,
    require_sendable,
)

__all__ = [
    "DispatchResult",
    "TokenBucket",
    "dispatch_campaign",
    "dispatch_due",
    "dispatch_lock",
    "recover_interrupted",
    "requeue_uncertain",
    "resolve_uncertain",
    "resume",
]

log = logging.getLogger("broadcaster.sms")

Clock = Callable[[], datetime]
SenderFactory = Callable[[], SmsSender]
Progress = Callable[["DispatchResult"], None]

LOCK_NAME = "sms-dispatch.lock"
#: The longest wait for the network, and how long a row stays uncertain before the daemon asks the provider.
NETWORK_WAIT_MAX_S = 3600.0
RESOLVE_AFTER = timedelta(minutes=2)
_UNANSWERED: dict[tuple[str, int], float] = {}  #: when the provider last failed to answer about a campaign
#: How far before the claim a provider's "created" time may read (clocks differ).
CLOCK_MARGIN = timedelta(minutes=10)


def jittered(seconds: float) -> float:
    """``seconds`` plus up to 25 % at random, so workers that failed together retry apart."""
    return seconds * (1.0 + random.random() * 0.25)


def callback_references(url: str | None) -> Callable[[int], str | None]:
    """A row's status-callback URL: ``url`` with ``ref=<delivery id>`` in its query (Twilio signs the whole
    URL). ``url`` is taken apart once, not for every message."""
    if not url:
        return lambda delivery_id: None
    parts = urlsplit(url)
    head = urlunsplit(parts._replace(query="", fragment="")) + "?" + (f"{parts.query}&" if parts.query else "")
    tail = f"#{parts.fragment}" if parts.fragment else ""
    return lambda delivery_id: f"{head}ref={delivery_id}{tail}"


# --------------------------------------------------------------------------
# Rate limit
# --------------------------------------------------------------------------


class TokenBucket:
    """A thread-safe token bucket: at most ``rate`` acquisitions per second, bursts of ``capacity``."""

    def __init__(self, rate: float, capacity: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, float(capacity))
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Take one token, waiting as needed; False if ``stop`` was set while waiting."""
        if self.rate <= 0:
            return True
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return True
                wait = (1.0 - self._tokens) / self.rate
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)


# --------------------------------------------------------------------------
# One dispatcher per data directory
# --------------------------------------------------------------------------


@contextmanager
def dispatch_lock(config: Config, *, wait: float = 0.0, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold the dispatch lock; yields False if it could not be had within ``wait`` seconds."""
    lock = FileLock(config.data_dir / LOCK_NAME)
    try:
        acquired = lock.try_acquire(f"{os.getpid()}\n")
        if not acquired and wait > 0:
            if on_wait is not None:
                on_wait()
            deadline = time.monotonic() + wait
            while not acquired and time.monotonic() < deadline:
                time.sleep(0.1)
                acquired = lock.try_acquire(f"{os.getpid()}\n")
        yield acquired
    finally:
        lock.release()


def recover_interrupted(engine: Engine, *, now: Clock = utcnow) -> int:
    """Rows left ``sending`` by a dead process → ``uncertain``. Call only while holding :func:`dispatch_lock`."""
    return recover_sms_sending(engine, now=now())


def requeue_uncertain(engine: Engine, campaign_id: int | None = None, *, now: Clock = utcnow) -> int:
    """``uncertain`` → ``pending`` (the operator chose to re-send them). Returns the rows changed."""
    return _requeue_uncertain(engine, campaign_id, now=now())


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


@dataclass
class DispatchResult:
    campaign_id: int
    counts: dict[str, int] = field(default_factory=dict)  #: rows per status (whole campaign)
    total: int = 0  #: rows in the campaign
    attempted: int = 0  #: rows this run finished (sent, failed, uncertain, skipped)
    held: str | None = None  #: "quiet_hours" / "not_before" / "network" when rows were left pending on purpose
    held_until: datetime | None = None
    error: str | None = None  #: why the run stopped early (bad credentials, database error)
    overdue: int = 0  #: emergency rows older than sms.max_age_hours still unsent (kept, reported)
    campaign_status: str = OPEN

    @property
    def pending(self) -> int:
        return self.counts.get(DeliveryStatus.PENDING, 0)


@dataclass
class _Job:
    campaign_id: int
    body: str
    status_callback: Callable[[int], str | None]  # the callback URL of a row (:func:`callback_references`)
    max_retries: int
    backoff: float
    network_backoff: float
    now: Clock
    stop: threading.Event
    result: DispatchResult
    lock: threading.Lock
    on_progress: Progress | None
    held_until: Callable[[datetime], datetime | None] | None  # quiet hours, read at each send; None: never
    batch: int = 1  # rows a worker is handed at once (a claim takes a batch for each worker)
    writer: _ResultWriter | None = None


#: Rows one worker claims in one transaction when nothing limits the rate.
CLAIM_BATCH = 32
CLAIMS_PER_WORKER = 4
#: Results written in one group commit at most, and how long the writer gathers them after the first.
GROUP_COMMIT_MAX = 1024
GROUP_COMMIT_WAIT_S = 0.25
_LEFT = "left"  # the row was not sent by this run and is not this worker's any more (pending, or taken)


def claim_batch_size(rows: int, workers: int, rate: float) -> int:
    """Rows a worker is handed at once (a claim takes one such batch for each worker):
    :data:`CLAIM_BATCH`; fewer in a small campaign, so that each worker gets :data:`CLAIMS_PER_WORKER`
    batches or more (work stays to share with a dispatcher on another PC, or a worker that finishes
    first); with a rate limit about one second of that worker's sending (a claimed row waits for its
    turn, and a cancellation does not reach it)."""
    size = CLAIM_BATCH
    if rate > 0:
        size = min(size, max(1, int(rate / workers)))
    return max(1, min(size, -(-rows // (workers * CLAIMS_PER_WORKER))))


class _ResultWriter:
    """Writes finished rows in group commits: one transaction for every result that arrived meanwhile.

    It wakes once per commit, not once per result: after the first result of a group it waits
    :data:`GROUP_COMMIT_WAIT_S` (or until closed), then takes everything queued. A thread woken for
    every message would compete with the senders for the interpreter lock.
    """

    def __init__(self, engine: Engine, job: _Job) -> None:
        self.engine = engine
        self.job = job
        self.queue: queue.SimpleQueue[SmsOutcome | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"sms-{job.campaign_id}-log", daemon=True)
        self.thread.start()

    def put(self, outcome: SmsOutcome) -> None:
        self.queue.put(outcome)

    def close(self) -> None:
        self._closing.set()
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        done = False
        while not done:
            entry = self.queue.get()
            self._closing.wait(GROUP_COMMIT_WAIT_S)
            batch: list[SmsOutcome] = []
            while True:
                if entry is None:
                    done = True
                    break
                batch.append(entry)
                if len(batch) >= GROUP_COMMIT_MAX:
                    break
                try:
                    entry = self.queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[SmsOutcome]) -> None:
        try:
            finish_sms_many(self.engine, batch)
        except Exception as exc:  # rows stay 'sending': recovery makes them uncertain, never re-sent blindly
            log.exception("SMS results could not be written: %s", type(exc).__name__)
            with self.job.lock:
                self.job.result.error = self.job.result.error or (
                    f"lỗi cơ sở dữ liệu / database error: {type(exc).__name__}")
            self.job.stop.set()


def _finish(job: _Job, delivery_id: int, status: DeliveryStatus, *, opt_out_phone: str | None = None,
            at: datetime | None = None, **fields: object) -> DeliveryStatus:
    job.writer.put(SmsOutcome(delivery_id, status, at or job.now(), fields, opt_out_phone))
    return status


def _held(job: _Job) -> bool:
    """Quiet hours began (read at each send): the dispatch stops, leaving rows pending."""
    if job.held_until is None:
        return False
    held_until = job.held_until(job.now())
    if held_until is None:
        return False
    with job.lock:
        job.result.held = job.result.held or "quiet_hours"
        job.result.held_until = held_until
    job.stop.set()
    return True


def _send_claimed(engine: Engine, job: _Job, sender: SmsSender, bucket: TokenBucket, delivery_id: int,
                  recipient: str) -> str | None:
    """Send one row this worker holds (``sending``) to its end state.

    Returns the final status (written by the group writer), or None when the row is still held and was
    not handed to the provider (the caller releases it), or :data:`_LEFT`.
    """
    retries = 0
    while True:
        if job.stop.is_set() or _held(job) or not bucket.acquire(job.stop):
            return None
        try:
            result = sender.send(recipient, job.body, job.status_callback(delivery_id),
                                 meta={"campaign": job.campaign_id, "delivery": delivery_id})
        except SmsSendError as exc:
            message = redact_numbers(exc.message)[:500]
            masked = mask_phone(recipient)
            if exc.fatal:
                finish_sms(engine, delivery_id, DeliveryStatus.PENDING, job.now(), error_code=exc.code,
                           error_message=message)
                with job.lock:
                    job.result.error = job.result.error or (
                        f"{sender.name} từ chối thông tin đăng nhập / rejected the credentials "
                        f"({exc.code}): {message}")
                job.stop.set()
                return _LEFT
            if exc.uncertain:
                log.warning("SMS to %s: %s (delivery %s is now uncertain: Twilio is asked before any re-send)", masked, message,
                            delivery_id)
                return _finish(job, delivery_id, DeliveryStatus.UNCERTAIN, error_code=exc.code,
                               error_message=message, ended_at=job.now())
            if exc.network:
                _wait_for_network(engine, job, delivery_id, exc, message)
                return _LEFT
            if exc.retryable and retries < job.max_retries:
                delay = jittered(max(job.backoff * (2 ** retries), exc.retry_after or 0.0))
                retries += 1
                log.info("SMS to %s: %s, retry %d/%d in %.2fs", masked, exc.code, retries, job.max_retries, delay)
                finish_sms(engine, delivery_id, DeliveryStatus.PENDING, job.now(), error_code=exc.code,
                           error_message=message)
                if delay > 0 and job.stop.wait(delay):
                    return _LEFT
                claim = claim_sms(engine, [delivery_id], sender.name, job.now())
                if claim.skipped:
                    return DeliveryStatus.SKIPPED
                if not claim.send:  # cancelled meanwhile
                    return _LEFT
                continue
            log.warning("SMS to %s failed: %s %s", masked, exc.code, message)
            opted_out = recipient if exc.code in OPT_OUT_CODES and recipient else None
            if opted_out:
                log.warning("%s opted out (Twilio %s)", masked, exc.code)
            return _finish(job, delivery_id, DeliveryStatus.FAILED, opt_out_phone=opted_out, error_code=exc.code,
                           error_message=message, ended_at=job.now())
        except Exception as exc:  # a bug or an unexpected library error: we cannot know if it left
            log.error("SMS to %s: unexpected %s; delivery %s is now uncertain", mask_phone(recipient), type(exc).__name__,
                      delivery_id)
            return _finish(job, delivery_id, DeliveryStatus.UNCERTAIN, error_code="error",
                           error_message=redact_numbers(f"{type(exc).__name__}: {exc}")[:500], ended_at=job.now())
        if log.isEnabledFor(logging.DEBUG):  # masking parses the number: not for every message
            log.debug("SMS to %s sent (%s)", mask_phone(recipient), result.provider_id)
        ended = job.now()
        return _finish(job, delivery_id, DeliveryStatus.SENT, provider_id=result.provider_id, backend=sender.name,
                       error_code=None, error_message=None, ended_at=ended, at=ended)


def _wait_for_network(engine: Engine, job: _Job, delivery_id: int, exc: SmsSendError, message: str) -> None:
    """The provider could not be reached: this row and the campaign's other pending rows wait, backing off."""
    moment = as_utc(job.now())
    with session_scope(engine) as session:
        attempts = session.get(Delivery, delivery_id).attempts or 1
    delay = min(NETWORK_WAIT_MAX_S, jittered(job.network_backoff * (2 ** min(attempts - 1, 16))))
    until = moment + timedelta(seconds=delay)
    finish_sms(engine, delivery_id, DeliveryStatus.PENDING, moment, error_code="network",
               error_message=message, scheduled_for=until)
    wait_for_network(engine, job.campaign_id, until, now=moment)
    with job.lock:
        job.result.held = "network"
        job.result.held_until = until if job.result.held_until is None else max(until, job.result.held_until)
    if not job.stop.is_set():
        log.warning("campaign %s: không kết nối được %s (%s), chờ mạng tới %s / cannot reach the provider, "
                    "waiting for the network", job.campaign_id, exc.code, message, until.isoformat(timespec="seconds"))
    job.stop.set()


def _count(job: _Job, final: str) -> None:
    with job.lock:
        job.result.attempted += 1
        job.result.counts[DeliveryStatus.PENDING] -= 1
        job.result.counts[final] = job.result.counts.get(final, 0) + 1
        if job.on_progress is None:
            return
        snapshot = DispatchResult(**{**job.result.__dict__, "counts": dict(job.result.counts)})
    job.on_progress(snapshot)


class _Claimer:
    """Hands the campaign's rows out in batches of ``job.batch``: a worker with no claimed row left takes
    a batch another worker claimed, or claims ``batches_per_claim`` batches (one for every worker, when
    nothing limits the rate) in one transaction (:func:`~broadcaster.deliveries.claim_sms`), keeps one
    and leaves the rest for the others.

    The worker waits for its own claim's commit — one fsync for every worker's batch, with the
    interpreter lock let go — which costs less than a claiming thread whose wake-ups compete with the
    senders for that lock. Claims are made one at a time, so at most two batches per worker are claimed
    and not yet sent.
    """

    def __init__(self, engine: Engine, job: _Job, rows: list[tuple[int, str | None]], backend: str,
                 batches_per_claim: int) -> None:
        self.engine, self.job, self.backend = engine, job, backend
        self.batches_per_claim = batches_per_claim
        self.rows = rows  # to claim, in order
        self.taken = 0
        self.claimed: deque[tuple[int, str]] = deque()  # claimed for the workers, not yet handed out
        self.given_back: list[int] = []
        self.lock = threading.Lock()
        self.claiming = threading.Lock()

    def _claim(self) -> list[tuple[int, str]]:
        job = self.job
        with self.claiming:  # one claim at a time: a worker that waited finds the batches it made
            while not job.stop.is_set() and not _held(job):
                with self.lock:
                    if self.claimed:
                        return [self.claimed.popleft() for _ in range(min(job.batch, len(self.claimed)))]
                    batch = self.rows[self.taken:self.taken + job.batch * self.batches_per_claim]
                    self.taken += len(batch)
                if not batch:
                    break
                recipients = dict(batch)
                claim = claim_sms(self.engine, list(recipients), self.backend, job.now())
                for _skipped in claim.skipped:
                    _count(job, DeliveryStatus.SKIPPED)
                if claim.send:
                    rows = [(delivery_id, recipients[delivery_id] or "") for delivery_id in claim.send]
                    with self.lock:
                        self.claimed.extend(rows[job.batch:])
                    return rows[:job.batch]
        return []

    def next(self, mine: deque[tuple[int, str]]) -> tuple[int, str] | None:
        """The calling worker's next claimed row (``mine`` holds its batch); None when there is none left or
        the dispatch stops."""
        if self.job.stop.is_set():
            return None
        if not mine:
            mine.extend(self._claim())
        return mine.popleft() if mine else None

    def give_back(self, rows: Iterable[tuple[int, str]]) -> None:
        """Claimed rows a worker will not send: released once every worker has stopped."""
        with self.lock:
            self.given_back.extend(delivery_id for delivery_id, _ in rows)

    def unsent(self) -> list[int]:
        """Rows claimed and never handed over (call once every worker has stopped)."""
        with self.lock:
            ids, self.given_back = self.given_back, []
            ids.extend(delivery_id for delivery_id, _ in self.claimed)
            self.claimed.clear()
        return ids


def _worker(engine: Engine, job: _Job, sender: SmsSender, bucket: TokenBucket, claimer: _Claimer) -> None:
    mine: deque[tuple[int, str]] = deque()
    row = None  # the row being sent: ours until its outcome is known
    try:
        while (row := claimer.next(mine)) is not None:
            final = _send_claimed(engine, job, sender, bucket, *row)
            if final is None:  # still ours and never handed over: released with the rest
                return
            row = None
            if final != _LEFT:
                _count(job, final)
    except Exception as exc:  # the database failed us: stop rather than guess
        log.exception("SMS dispatch stopped: %s", type(exc).__name__)
        with job.lock:
            job.result.error = job.result.error or f"lỗi cơ sở dữ liệu / database error: {type(exc).__name__}"
        job.stop.set()
    finally:
        if row is not None:
            mine.appendleft(row)
        claimer.give_back(mine)


def _release_unsent(engine: Engine, job: _Job, claimer: _Claimer) -> None:
    """Claimed rows never handed over: pending again (a row the release misses stays sending → uncertain)."""
    unsent = claimer.unsent()
    if not unsent:
        return
    try:
        release_sms(engine, unsent, job.now())
        if job.result.held == "network" and job.result.held_until is not None:
            wait_for_network(engine, job.campaign_id, job.result.held_until, now=as_utc(job.now()))
    except Exception as exc:
        log.error("SMS rows claimed but not sent could not be released: %s", type(exc).__name__)


def _dispatch_locked(app: App, campaign_id: int, *, now: Clock, sender_factory: SenderFactory | None,
                     on_progress: Progress | None, stop: threading.Event | AnyEvent | None = None,
                     now_not_later: bool = False) -> DispatchResult:
    """``now_not_later``: rows waiting for the network are tried now (the operator's ``sms resume``)."""
    config = app.config
    engine = app.ready_engine()
    moment = as_utc(now())
    overdue = _age_out(app, campaign_id, moment)
    with session_scope(engine) as session:
        campaign = find_campaign(session, campaign_id)
        item = session.get(ContentItem, campaign.item_id)
        body = campaign.body
        not_before = as_utc(campaign.not_before)
        try:
            require_sendable(item) if item is not None else None
            not_sendable = None if item is not None else "tin đã bị xóa / the item was removed"
        except BroadcasterError as exc:
            not_sendable = str(exc)
        query = select(Delivery.id, Delivery.recipient).where(Delivery.campaign_id == campaign_id,
                                                              Delivery.status == DeliveryStatus.PENDING)
        if not now_not_later and (not_before is None or moment >= not_before):
            query = query.where((Delivery.scheduled_for.is_(None)) | (Delivery.scheduled_for <= moment))
        ids = list(session.exec(query.order_by(Delivery.id)).all())
        counts = campaign_counts(session, campaign_id)
        result = DispatchResult(campaign_id, counts=counts, total=sum(counts.values()),
                                campaign_status=campaign.status, overdue=overdue)
        waiting, waiting_until = waiting_for_network(session, campaign_id)
    if not ids and waiting:
        result.held, result.held_until = "network", waiting_until
        return result
    if ids and not_sendable:
        result.held, result.error = "item", not_sendable
        return result
    if ids and not_before is not None and moment < not_before:
        result.held, result.held_until = "not_before", not_before
        return result

    quiet = quiet_hold(config, item)
    held_until = None if quiet is None else lambda at: quiet(as_utc(at))
    quiet_until = held_until(moment) if held_until is not None else None
    if ids and quiet_until is not None:
        result.held, result.held_until = "quiet_hours", quiet_until
        return result
    if ids:
        factory = sender_factory or (lambda: make_sender(config))
        workers = max(1, min(int(config.sms.concurrency), len(ids)))
        senders = [factory() for _ in range(workers)]  # config errors surface before anything is claimed
        job = _Job(campaign_id=campaign_id, body=body, status_callback=callback_references(
                       config.sms.status_callback_url or None),
                   max_retries=max(0, int(config.sms.max_retries)), backoff=max(0.0, float(config.sms.retry_backoff)),
                   network_backoff=max(0.0, float(config.sms.network_retry_seconds)),
                   now=now, stop=threading.Event(), result=result, lock=threading.Lock(),
                   on_progress=on_progress, held_until=held_until,
                   batch=claim_batch_size(len(ids), workers, float(config.sms.rate_per_second)))
        if stop is not None:  # the daemon stopping (or yielding to an emergency) ends this dispatch too
            from ..scheduling.wakeup import relay_stop

            relay_stop(stop, job.stop)
        bucket = TokenBucket(float(config.sms.rate_per_second))
        # Under a rate limit the senders wait on the bucket, not on claims: each claims its own batch, and
        # fewer claimed rows are still to go out when the operator cancels.
        rate_limited = float(config.sms.rate_per_second) > 0
        claimer = _Claimer(engine, job, ids, senders[0].name, 1 if rate_limited else workers)
        threads = [threading.Thread(target=_worker, args=(engine, job, sender, bucket, claimer),
                                    name=f"sms-{campaign_id}-{n}") for n, sender in enumerate(senders)]
        log.info("campaign %s: sending %d SMS with %d workers via %s", campaign_id, len(ids), workers,
                 senders[0].name)
        with sms_dispatching(engine):
            job.writer = _ResultWriter(engine, job)
            _run_workers(job, threads, senders, claimer)
    with session_scope(engine) as session:
        campaign = find_campaign(session, campaign_id)
        result.campaign_status = refresh_campaign_status(session, campaign)
        result.counts = campaign_counts(session, campaign_id)
        result.total = sum(result.counts.values())
    return result


def _run_workers(job: _Job, threads: list[threading.Thread], senders: list[SmsSender], claimer: _Claimer) -> None:
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:  # let every worker finish its current row, then stop
        job.stop.set()
        for thread in threads:
            thread.join()
        raise
    finally:
        _release_unsent(claimer.engine, job, claimer)
        job.writer.close()  # every result is written before the campaign's state is read
        for sender in senders:
            close = getattr(sender, "close", None)
            if close is not None:
                close()


def _age_out(app: App, campaign_id: int, moment: datetime) -> int:
    """Rows never accepted after ``sms.max_age_hours`` fail; an emergency's are kept and counted (reported)."""
    max_age = float(app.config.sms.max_age_hours)
    if max_age <= 0:
        return 0
    cutoff = moment - timedelta(hours=max_age)
    engine = app.ready_engine()
    with session_scope(engine) as session:
        campaign = find_campaign(session, campaign_id)
        item = session.get(ContentItem, campaign.item_id)
        emergency = item is not None and item.priority == Priority.EMERGENCY
        old = session.exec(select(func.count()).select_from(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING,
            Delivery.created_at < cutoff)).one()
    if not old:
        return 0
    if emergency:
        log.warning("campaign %s: %d tin KHẨN CẤP chưa gửi được sau %g giờ, vẫn tiếp tục thử / %d emergency "
                    "SMS still unsent after %g h: still trying", campaign_id, old, max_age, old, max_age)
        return int(old)
    expired = expire_unsent(engine, campaign_id, cutoff, now=moment)
    log.warning("campaign %s: %d tin quá %g giờ chưa gửi được, đánh dấu lỗi / %d SMS never accepted after %g h "
                "are now failed (expired)", campaign_id, expired, max_age, expired, max_age)
    return 0


def dispatch_campaign(app: App, campaign_id: int, *, now: Clock = utcnow,
                      sender_factory: SenderFactory | None = None, on_progress: Progress | None = None,
                      wait: float = 24 * 3600.0, on_wait: Callable[[], None] | None = None) -> DispatchResult:
    """Send a campaign's pending rows now (unless held by ``not_before`` or quiet hours).

    Waits up to ``wait`` seconds for another dispatcher (the daemon) to finish.
    """
    with dispatch_lock(app.config, wait=wait, on_wait=on_wait) as acquired:
        if not acquired:
            with session_scope(app.ready_engine()) as session:
                counts = campaign_counts(session, campaign_id)
            return DispatchResult(campaign_id, counts=counts, total=sum(counts.values()),
                                  error="một tiến trình khác đang gửi tin / another process is sending")
        recover_interrupted(app.ready_engine(), now=now)
        return _dispatch_locked(app, campaign_id, now=now, sender_factory=sender_factory, on_progress=on_progress)


@dataclass
class Resolved:
    """What the provider said about a campaign's ``uncertain`` rows."""

    campaign_id: int
    found: int = 0  #: the provider had them: now ``sent`` with their SID
    requeued: int = 0  #: absent from the provider's complete listing: ``pending`` again, sent once
    unanswered: int = 0  #: the provider could not answer: still ``uncertain``
    error: str | None = None


_PROVIDER_STATUS = {"delivered": DeliveryStatus.DELIVERED, "read": DeliveryStatus.DELIVERED,
                    "undelivered": DeliveryStatus.UNDELIVERED, "failed": DeliveryStatus.FAILED}


def resolve_uncertain(app: App, campaign_id: int, *, now: Clock = utcnow,
                      sender_factory: SenderFactory | None = None,
                      settled_before: datetime | None = None) -> Resolved:
    """Ask the provider about each ``uncertain`` row (call while holding :func:`dispatch_lock`).

    A row is matched by recipient, sender and body among messages created since
    the row was first claimed (less :data:`CLOCK_MARGIN`), taking only a
    provider id that no other row holds. ``settled_before``: only rows that
    became uncertain before then (the daemon leaves fresh ones a moment).
    """
    engine = app.ready_engine()
    outcome = Resolved(campaign_id)
    with session_scope(engine) as session:
        campaign = find_campaign(session, campaign_id)
        body = campaign.body
        rows = [(r.id, r.recipient or "", as_utc(r.started_at or r.created_at), as_utc(r.updated_at))
                for r in uncertain_rows(session, campaign_id)]
    if settled_before is not None:
        rows = [r for r in rows if r[3] <= as_utc(settled_before)]
    if not rows:
        return outcome
    try:
        sender = (sender_factory or (lambda: make_sender(app.config)))()
    except BroadcasterError as exc:
        outcome.unanswered, outcome.error = len(rows), str(exc)
        return outcome
    lookup = getattr(sender, "find_accepted", None)
    absent: list[int] = []
    try:
        for delivery_id, recipient, claimed, _ in rows:
            if lookup is None:
                outcome.unanswered += 1
                continue
            try:
                accepted = lookup(recipient, body, claimed - CLOCK_MARGIN, delivery_id)
            except SmsSendError as exc:
                outcome.unanswered += 1
                outcome.error = redact_numbers(exc.message)
                continue
            with session_scope(engine) as session:
                taken = provider_ids_in_use(session, [a.provider_id for a in accepted])
            free = [a for a in accepted if a.provider_id not in taken and a.ref in (None, str(delivery_id))]
            if not free:
                absent.append(delivery_id)
                continue
            chosen = free[-1]  # the oldest: the listing is newest first
            if len(free) > 1:
                log.warning("delivery %s: the provider holds %d matching messages; the oldest (%s) is kept",
                            delivery_id, len(free), chosen.provider_id)
            status = _PROVIDER_STATUS.get(chosen.status.lower(), DeliveryStatus.SENT)
            if _resolve_row(engine, delivery_id, chosen.provider_id, status, now=now()):
                outcome.found += 1
    finally:
        close = getattr(sender, "close", None)
        if close is not None:
            close()
    if absent:
        outcome.requeued = _requeue_uncertain(engine, campaign_id, now=now(), ids=absent)
    if outcome.found or outcome.requeued or outcome.unanswered:
        log.info("campaign %s: uncertain SMS resolved with the provider: %d accepted, %d not there (sent "
                 "again), %d without an answer", campaign_id, outcome.found, outcome.requeued, outcome.unanswered)
    return outcome


def resume(app: App, campaign_id: int | None = None, *, retry_uncertain: bool = False, now: Clock = utcnow,
           sender_factory: SenderFactory | None = None, on_progress: Progress | None = None,
           wait: float = 24 * 3600.0, on_wait: Callable[[], None] | None = None,
           on_resolved: Callable[[Resolved], None] | None = None) -> list[DispatchResult]:
    """Finish open campaigns (or one): exactly the rows the provider never accepted are sent.

    Rows left ``sending`` become ``uncertain``; each ``uncertain`` row is looked
    up at the provider (:func:`resolve_uncertain`, reported to ``on_resolved``);
    pending rows — those waiting for the network too — are sent now.
    ``retry_uncertain=True`` re-sends every ``uncertain`` row without asking.
    """
    engine = app.ready_engine()
    with dispatch_lock(app.config, wait=wait, on_wait=on_wait) as acquired:
        if not acquired:
            raise _busy()
        recover_interrupted(engine, now=now)
        if campaign_id is not None:
            with session_scope(engine) as session:
                find_campaign(session, campaign_id)
            ids = [campaign_id]
        else:
            with session_scope(engine) as session:
                ids = [c.id for c in open_campaigns(session)]
        for cid in ids:
            if retry_uncertain:
                changed = requeue_uncertain(engine, cid, now=now)
                if changed:
                    log.warning("campaign %s: re-sending %d uncertain SMS on the operator's request", cid, changed)
            else:
                resolved = resolve_uncertain(app, cid, now=now, sender_factory=sender_factory)
                if on_resolved is not None and (resolved.found or resolved.requeued or resolved.unanswered):
                    on_resolved(resolved)
        return [_dispatch_locked(app, cid, now=now, sender_factory=sender_factory, on_progress=on_progress,
                                 now_not_later=True) for cid in ids]


def _busy():
    return BroadcasterError("một tiến trình khác đang gửi tin, hãy thử lại sau / another process is sending "
                            "SMS: try again later")


def dispatch_due(app: App, *, now: Clock = utcnow, sender_factory: SenderFactory | None = None,
                 stop: threading.Event | None = None,
                 yield_to: threading.Event | None = None) -> list[DispatchResult]:
    """For the daemon: send every open campaign that is due (``not_before`` passed, not held by quiet hours).

    Returns at once (empty list) if another process holds the dispatch lock.
    Safe to call every few seconds. Emergencies go first; ``yield_to`` set
    (an emergency arrived meanwhile) stops the ordinary campaigns, their
    unsent rows staying pending for the next call.
    """
    engine = app.ready_engine()
    with dispatch_lock(app.config) as acquired:
        if not acquired:
            return []
        recover_interrupted(engine, now=now)
        moment = as_utc(now())
        with session_scope(engine) as session:
            unsure = [c.id for c in open_campaigns(session) if uncertain_rows(session, c.id)]
        for cid in unsure:
            key = (str(app.config.data_dir), cid)
            if _UNANSWERED.get(key, float("-inf")) > time.monotonic() - RESOLVE_AFTER.total_seconds():
                continue  # the provider did not answer a moment ago: not at every poll
            if resolve_uncertain(app, cid, now=now, sender_factory=sender_factory,
                                 settled_before=moment - RESOLVE_AFTER).unanswered:
                _UNANSWERED[key] = time.monotonic()
        with session_scope(engine) as session:
            due = []
            for campaign in open_campaigns(session):
                if campaign.not_before is not None and as_utc(campaign.not_before) > moment:
                    continue
                item = session.get(ContentItem, campaign.item_id)
                if held_by_quiet_hours(app.config, item, moment) is not None:
                    continue
                if _has_due_rows(session, campaign.id, moment):
                    emergency = item is not None and item.priority == Priority.EMERGENCY
                    due.append((0 if emergency else 1, campaign.id))
        results = []
        for rank, cid in sorted(due):
            halt = stop if rank == 0 or yield_to is None else AnyEvent(*(e for e in (stop, yield_to) if e))
            if halt is not None and halt.is_set():
                break
            results.append(_dispatch_locked(app, cid, now=now, sender_factory=sender_factory, on_progress=None,
                                            stop=halt))
        return results


def _has_due_rows(session, campaign_id: int, moment: datetime) -> bool:  # noqa: ANN001
    return session.exec(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING,
        (Delivery.scheduled_for.is_(None)) | (Delivery.scheduled_for <= moment)).limit(1)).first() is not None


class AnyEvent:
    """Set when any of the given events is: a dispatch's ``stop`` is asked only that, and relays them
    (:func:`~broadcaster.scheduling.wakeup.relay_stop`)."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)
