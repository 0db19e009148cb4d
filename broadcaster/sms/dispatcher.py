"""Send a campaign's pending rows: bounded concurrency, a global rate, retries, a trace before every send.

For each row, in its own committed transaction:

1. ``pending`` → ``sending`` (``attempts`` + 1, ``backend``) — *before* the HTTP call;
   a recipient who opted out since the campaign was written (or whose contact
   was deleted) becomes ``skipped`` instead and is not sent;
2. the call;
3. ``sent`` (``provider_id`` = Twilio SID) — or, on an error:

   - retryable (429 / 20429, 5xx, a connection that was never made, a connect
     timeout): back to ``pending``, wait ``sms.retry_backoff × 2^n`` seconds, try
     again, at most ``sms.max_retries`` times, then ``failed`` with the last code;
   - **uncertain** (a *read* timeout or a connection dropped after the request
     was written): Twilio may have queued the message, so the row becomes
     ``uncertain`` and is **never re-sent on its own**; only
     ``broadcaster sms resume --retry-uncertain`` sends those again, by the
     operator's choice (a person may then get the message twice);
   - permanent (21211, 21614, 21612, 21610, other 4xx): ``failed`` at once with
     ``error_code``/``error_message`` (numbers masked); 21610 (the person
     replied STOP) also opts the contact out;
   - fatal (bad credentials, 401 / 20003): the row goes back to ``pending`` and
     the whole dispatch stops — nothing can be sent with this configuration.

Concurrency: ``sms.concurrency`` worker threads, each with its *own* sender (a
Twilio client holds a ``requests.Session``, which is not thread-safe), sharing
one token bucket of ``sms.rate_per_second`` (0 or less: no limit).

One dispatcher at a time per data directory: :func:`dispatch_lock` holds an OS
file lock (``data_dir/sms-dispatch.lock``) that the kernel releases when the
process dies. Whoever takes it first turns every row still ``sending`` into
``uncertain`` (:func:`recover_interrupted`): with the lock free, no live
process can be sending them, so they were left by a crash.

Quiet hours (station time, read from the *current* config at the moment of
sending; never for an emergency item) and ``not_before`` hold a campaign: the
dispatcher returns leaving rows ``pending``; the daemon's SMS thread calls
:func:`dispatch_due` and it sends every open campaign that has become due. The
operator's decision holds at the moment of sending: a campaign whose item was
retired or un-approved meanwhile is held (nothing sent), a cancelled campaign's
rows are ``cancelled`` and never claimed. Every write goes through
:mod:`broadcaster.deliveries`. ``now`` is a callable everywhere, so tests (and
the daemon) can inject the clock; ``stop`` lets the daemon end a dispatch at
once (rows not yet claimed stay pending).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from ..app import App
from ..config import Config
from ..db import session_scope
from ..deliveries import (
    DeliveryStatus,
    campaign_counts,
    claim_sms,
    finish_sms,
    recover_sms_sending,
    refresh_campaign_status,
)
from ..deliveries import requeue_uncertain as _requeue_uncertain
from ..errors import BroadcasterError
from ..fileutil import FileLock
from ..models import ContentItem, Delivery
from ..phones import mask_phone
from ..timeutil import as_utc, utcnow
from .backends import OPT_OUT_CODES, SmsSender, SmsSendError, make_sender, redact_numbers
from .campaigns import (
    OPEN,
    find_campaign,
    held_by_quiet_hours,
    open_campaigns,
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
    "resume",
]

log = logging.getLogger("broadcaster.sms")

Clock = Callable[[], datetime]
SenderFactory = Callable[[], SmsSender]
Progress = Callable[["DispatchResult"], None]

LOCK_NAME = "sms-dispatch.lock"


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
    held: str | None = None  #: "quiet_hours" / "not_before" when rows were left pending on purpose
    held_until: datetime | None = None
    error: str | None = None  #: why the run stopped early (bad credentials, database error)
    campaign_status: str = OPEN

    @property
    def pending(self) -> int:
        return self.counts.get(DeliveryStatus.PENDING, 0)


@dataclass
class _Job:
    campaign_id: int
    body: str
    status_callback: str | None
    max_retries: int
    backoff: float
    now: Clock
    stop: threading.Event
    result: DispatchResult
    lock: threading.Lock
    on_progress: Progress | None
    held_until: Callable[[datetime], datetime | None]  # quiet hours, read at each send


def _process(engine: Engine, job: _Job, sender: SmsSender, bucket: TokenBucket, delivery_id: int,
             recipient: str) -> str | None:
    """Send one row to its end state. Returns the final status, or None if it was left pending."""
    retries = 0
    while True:
        if job.stop.is_set():
            return None
        held_until = job.held_until(job.now())
        if held_until is not None:
            with job.lock:
                job.result.held = job.result.held or "quiet_hours"
                job.result.held_until = held_until
            job.stop.set()
            return None
        if not bucket.acquire(job.stop):
            return None
        claim = claim_sms(engine, delivery_id, sender.name, job.now())
        if claim is None:
            return None
        if claim == "skipped":
            return DeliveryStatus.SKIPPED
        masked = mask_phone(recipient)
        try:
            result = sender.send(recipient, job.body, job.status_callback,
                                 meta={"campaign": job.campaign_id, "delivery": delivery_id})
        except SmsSendError as exc:
            message = redact_numbers(exc.message)[:500]
            if exc.fatal:
                finish_sms(engine, delivery_id, DeliveryStatus.PENDING, job.now(), error_code=exc.code,
                           error_message=message)
                with job.lock:
                    job.result.error = job.result.error or (
                        f"{sender.name} từ chối thông tin đăng nhập / rejected the credentials "
                        f"({exc.code}): {message}")
                job.stop.set()
                return None
            if exc.uncertain:
                log.warning("SMS to %s: %s (delivery %s is now uncertain, not re-sent)", masked, message,
                            delivery_id)
                finish_sms(engine, delivery_id, DeliveryStatus.UNCERTAIN, job.now(), error_code=exc.code,
                           error_message=message, ended_at=job.now())
                return DeliveryStatus.UNCERTAIN
            if exc.retryable and retries < job.max_retries:
                delay = job.backoff * (2 ** retries)
                retries += 1
                log.info("SMS to %s: %s, retry %d/%d in %.2fs", masked, exc.code, retries, job.max_retries, delay)
                finish_sms(engine, delivery_id, DeliveryStatus.PENDING, job.now(), error_code=exc.code,
                           error_message=message)
                if delay > 0 and job.stop.wait(delay):
                    return None
                continue
            log.warning("SMS to %s failed: %s %s", masked, exc.code, message)
            opted_out = recipient if exc.code in OPT_OUT_CODES and recipient else None
            finish_sms(engine, delivery_id, DeliveryStatus.FAILED, job.now(), opt_out_phone=opted_out,
                       error_code=exc.code, error_message=message, ended_at=job.now())
            if opted_out:
                log.warning("%s opted out (Twilio %s)", masked, exc.code)
            return DeliveryStatus.FAILED
        except Exception as exc:  # a bug or an unexpected library error: we cannot know if it left
            log.error("SMS to %s: unexpected %s; delivery %s is now uncertain", masked, type(exc).__name__,
                      delivery_id)
            finish_sms(engine, delivery_id, DeliveryStatus.UNCERTAIN, job.now(), error_code="error",
                       error_message=redact_numbers(f"{type(exc).__name__}: {exc}")[:500], ended_at=job.now())
            return DeliveryStatus.UNCERTAIN
        finish_sms(engine, delivery_id, DeliveryStatus.SENT, job.now(), provider_id=result.provider_id,
                   backend=sender.name, error_code=None, error_message=None, ended_at=job.now())
        log.debug("SMS to %s sent (%s)", masked, result.provider_id)
        return DeliveryStatus.SENT


def _worker(engine: Engine, job: _Job, sender: SmsSender, bucket: TokenBucket, work: queue.Queue) -> None:
    while not job.stop.is_set():
        try:
            delivery_id, recipient = work.get_nowait()
        except queue.Empty:
            return
        try:
            final = _process(engine, job, sender, bucket, delivery_id, recipient or "")
        except Exception as exc:  # the database failed us: stop rather than guess
            log.exception("SMS dispatch stopped: %s", type(exc).__name__)
            with job.lock:
                job.result.error = job.result.error or f"lỗi cơ sở dữ liệu / database error: {type(exc).__name__}"
            job.stop.set()
            return
        if final is not None:
            with job.lock:
                job.result.attempted += 1
                job.result.counts[DeliveryStatus.PENDING] -= 1
                job.result.counts[final] = job.result.counts.get(final, 0) + 1
                snapshot = DispatchResult(**{**job.result.__dict__, "counts": dict(job.result.counts)})
            if job.on_progress is not None:
                job.on_progress(snapshot)


def _dispatch_locked(app: App, campaign_id: int, *, now: Clock, sender_factory: SenderFactory | None,
                     on_progress: Progress | None, stop: threading.Event | AnyEvent | None = None) -> DispatchResult:
    config = app.config
    engine = app.ready_engine()
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
        ids = list(session.exec(select(Delivery.id, Delivery.recipient).where(Delivery.campaign_id == campaign_id,
                                                          Delivery.status == DeliveryStatus.PENDING)
                                .order_by(Delivery.id)).all())
        counts = campaign_counts(session, campaign_id)
        result = DispatchResult(campaign_id, counts=counts, total=sum(counts.values()),
                                campaign_status=campaign.status)
    moment = as_utc(now())
    if ids and not_sendable:
        result.held, result.error = "item", not_sendable
        return result
    if ids and not_before is not None and moment < not_before:
        result.held, result.held_until = "not_before", not_before
        return result

    def held_until(at: datetime) -> datetime | None:
        return held_by_quiet_hours(config, item, as_utc(at))

    quiet_until = held_until(moment)
    if ids and quiet_until is not None:
        result.held, result.held_until = "quiet_hours", quiet_until
        return result
    if ids:
        factory = sender_factory or (lambda: make_sender(config))
        workers = max(1, min(int(config.sms.concurrency), len(ids)))
        senders = [factory() for _ in range(workers)]  # config errors surface before anything is claimed
        work: queue.Queue[tuple[int, str | None]] = queue.Queue()
        for delivery_id, recipient in ids:
            work.put((delivery_id, recipient))
        job = _Job(campaign_id=campaign_id, body=body, status_callback=config.sms.status_callback_url or None,
                   max_retries=max(0, int(config.sms.max_retries)), backoff=max(0.0, float(config.sms.retry_backoff)),
                   now=now, stop=threading.Event(), result=result, lock=threading.Lock(),
                   on_progress=on_progress, held_until=held_until)
        if stop is not None:  # the daemon stopping ends this dispatch too
            watcher = threading.Thread(target=_relay_stop, args=(stop, job.stop), name="sms-stop", daemon=True)
            watcher.start()
        bucket = TokenBucket(float(config.sms.rate_per_second))
        threads = [threading.Thread(target=_worker, args=(engine, job, sender, bucket, work),
                                    name=f"sms-{campaign_id}-{n}") for n, sender in enumerate(senders)]
        log.info("campaign %s: sending %d SMS with %d workers via %s", campaign_id, len(ids), workers,
                 senders[0].name)
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
            for sender in senders:
                close = getattr(sender, "close", None)
                if close is not None:
                    close()
    with session_scope(engine) as session:
        campaign = find_campaign(session, campaign_id)
        result.campaign_status = refresh_campaign_status(session, campaign)
        result.counts = campaign_counts(session, campaign_id)
        result.total = sum(result.counts.values())
    return result


def _relay_stop(outer: threading.Event, inner: threading.Event) -> None:
    while not inner.is_set():
        if outer.wait(0.2):
            inner.set()


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


def resume(app: App, campaign_id: int | None = None, *, retry_uncertain: bool = False, now: Clock = utcnow,
           sender_factory: SenderFactory | None = None, on_progress: Progress | None = None,
           wait: float = 24 * 3600.0, on_wait: Callable[[], None] | None = None) -> list[DispatchResult]:
    """Finish open campaigns (or one): rows left ``sending`` become ``uncertain``; pending rows are sent.

    ``uncertain`` rows are sent again only with ``retry_uncertain=True``.
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
        if retry_uncertain:
            for cid in ids:
                changed = requeue_uncertain(engine, cid, now=now)
                if changed:
                    log.warning("campaign %s: re-sending %d uncertain SMS on the operator's request", cid, changed)
        return [_dispatch_locked(app, cid, now=now, sender_factory=sender_factory, on_progress=on_progress)
                for cid in ids]


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
            due = []
            for campaign in open_campaigns(session):
                if campaign.not_before is not None and as_utc(campaign.not_before) > moment:
                    continue
                item = session.get(ContentItem, campaign.item_id)
                if held_by_quiet_hours(app.config, item, moment) is not None:
                    continue
                if campaign_counts(session, campaign.id)[DeliveryStatus.PENDING]:
                    emergency = item is not None and item.priority == "emergency"
                    due.append((0 if emergency else 1, campaign.id))
        results = []
        for rank, cid in sorted(due):
            halt = stop if rank == 0 or yield_to is None else AnyEvent(*(e for e in (stop, yield_to) if e))
            if halt is not None and halt.is_set():
                break
            results.append(_dispatch_locked(app, cid, now=now, sender_factory=sender_factory, on_progress=None,
                                            stop=halt))
        return results


class AnyEvent:
    """Set when any of the given events is (all that a dispatch's ``stop`` is asked)."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.05, left))
        return True
