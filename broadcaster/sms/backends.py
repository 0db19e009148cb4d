"""SMS senders behind one small protocol, chosen by ``sms.backend``.

``SmsSender.send(to, body, status_callback=None)`` returns a :class:`SendResult`
or raises :class:`SmsSendError`, whose flags tell the dispatcher what to do:

- ``retryable``: the message surely did not leave (429 / 20429, 5xx, a refused
  or timed-out *connection*): try again after a backoff (``network`` says how);
- ``uncertain``: the request may have reached the provider and been accepted
  (a *read* timeout, or the connection dropped after the request was written):
  never re-sent blindly: the dispatcher asks the provider first
  (:meth:`SmsSender.find_accepted`);
- ``fatal``: nothing can be sent with this configuration (bad credentials):
  the dispatcher stops and leaves the rows pending;
- ``network``: the connection was never made (refused, DNS, connect timeout):
  not a failure of the message; the dispatcher waits for the network
  (the row stays ``pending`` with a next-attempt time);
- neither: a permanent error for this message (21211, 21614, 21612, 21610 …).

``retry_after``: seconds the provider asked us to wait (Twilio's ``Retry-After``).

``SmsSender.find_accepted(to, body, since, delivery_id)`` asks the provider
which messages it accepted for that recipient since ``since`` (for rows left
``uncertain``): a list of :class:`Accepted`, newest first, from a *complete*
listing; it raises :class:`SmsSendError` when the provider cannot answer.

Backends:

- ``outbox`` (the offline default): appends one JSON line per message to
  ``config.sms_outbox_path`` and fsyncs it; provider id ``"OB" + uuid hex``;
- ``twilio``: Twilio's Messages API through the real ``twilio`` client
  (:func:`broadcaster.sms.twilio_client.make_twilio_client`). A Twilio client
  holds a ``requests.Session``, which is not thread-safe: make one sender per
  thread (the dispatcher calls :func:`make_sender` once per worker).
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..config import Config
from ..errors import ConfigError
from ..fileutil import private_dir
from ..timeutil import utcnow
from .encoding import encode_sms

__all__ = [
    "BACKENDS",
    "Accepted",
    "OutboxSender",
    "SendResult",
    "SmsSendError",
    "SmsSender",
    "TwilioSender",
    "make_sender",
    "redact_numbers",
]

#: Twilio codes after which the recipient must be opted out.
OPT_OUT_CODES = {"21610"}

_PHONE_RE = re.compile(r"\+?\d[\d .-]{6,}\d")


def redact_numbers(text: str) -> str:
    """Mask every phone-number-looking run in ``text`` (for logs, stored errors, output)."""
    from ..phones import mask_phone

    def _mask(match: re.Match) -> str:
        found = match.group(0)
        return mask_phone(found) if sum(ch.isdigit() for ch in found) >= 8 else found

    return _PHONE_RE.sub(_mask, text or "")


@dataclass(frozen=True)
class Accepted:
    """A message the provider holds, as its listing shows it."""

    provider_id: str
    status: str
    created: datetime | None
    ref: str | None = None  #: our delivery reference, where the provider keeps it (the outbox does)


@dataclass(frozen=True)
class SendResult:
    provider_id: str  #: Twilio message SID, or "OB…" for the outbox
    status: str  #: the provider's status at hand-over (queued, accepted, …)


class SmsSendError(Exception):
    """A send that did not (certainly) succeed. ``code`` is the provider's error code as text."""

    def __init__(self, code: str | int | None, message: str, *, retryable: bool = False,
                 uncertain: bool = False, fatal: bool = False, http_status: int | None = None,
                 network: bool = False, retry_after: float | None = None) -> None:
        self.code = None if code is None else str(code)
        self.network = network
        self.retry_after = retry_after
        self.message = message
        self.retryable = retryable
        self.uncertain = uncertain
        self.fatal = fatal
        self.http_status = http_status
        super().__init__(f"{self.code}: {message}" if self.code else message)


@runtime_checkable
class SmsSender(Protocol):
    name: str

    def send(self, to: str, body: str, status_callback: str | None = None, *,
             meta: Mapping[str, Any] | None = None) -> SendResult: ...

    def find_accepted(self, to: str, body: str, since: datetime, delivery_id: int) -> list[Accepted]: ...


# --------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------

_OUTBOX_LOCKS: dict[str, threading.Lock] = {}
_OUTBOX_LOCKS_GUARD = threading.Lock()


def _outbox_lock(path: Path) -> threading.Lock:
    with _OUTBOX_LOCKS_GUARD:
        return _OUTBOX_LOCKS.setdefault(str(path.resolve()), threading.Lock())


class OutboxSender:
    """Writes each message as one JSON line (``time, to, body, encoding, segments, campaign, delivery``)."""

    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = _outbox_lock(self.path)

    def send(self, to: str, body: str, status_callback: str | None = None, *,
             meta: Mapping[str, Any] | None = None) -> SendResult:
        meta = meta or {}
        enc = encode_sms(body)
        provider_id = "OB" + uuid.uuid4().hex
        line = json.dumps({
            "time": utcnow().isoformat(),
            "to": to,
            "body": body,
            "encoding": enc.encoding,
            "segments": enc.segments,
            "campaign": meta.get("campaign"),
            "delivery": meta.get("delivery"),
            "id": provider_id,
        }, ensure_ascii=False) + "\n"
        try:
            private_dir(self.path.parent)
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode("utf-8"))
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            # Nothing (or a torn line) was written: the row stays retryable.
            raise SmsSendError("outbox", f"không ghi được hộp thư đi / cannot write outbox {self.path}: "
                               f"{exc.strerror}", retryable=True) from exc
        return SendResult(provider_id, "queued")

    def find_accepted(self, to: str, body: str, since: datetime, delivery_id: int) -> list[Accepted]:
        """The outbox keeps the delivery id on each line: the match is exact."""
        if not self.path.exists():
            return []
        found = []
        try:
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:  # a torn last line: that message was not written
                        continue
                    if entry.get("delivery") == delivery_id and entry.get("to") == to:
                        found.append(Accepted(str(entry.get("id")), "queued", None, ref=str(delivery_id)))
        except OSError as exc:
            raise SmsSendError("outbox", f"không đọc được hộp thư đi / cannot read outbox: {exc.strerror}") from exc
        return list(reversed(found))


# --------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------


def _connection_never_left(exc: BaseException) -> bool:
    """True if a requests ConnectionError happened while connecting (nothing was sent)."""
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError

    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError | NameResolutionError):
            return True
        if isinstance(current, MaxRetryError):
            stack.append(current.reason)
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.append(current.__cause__)
        stack.append(current.__context__)
    return False


class TwilioSender:
    """Twilio's Messages API. One instance per thread (its HTTP session is not thread-safe)."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, *, from_number: str = "",
                 messaging_service_sid: str = "", api_base_url: str | None = None,
                 timeout: float = 15.0) -> None:
        from .twilio_client import make_twilio_client

        if not from_number and not messaging_service_sid:
            raise ConfigError("Thiếu sms.twilio.from_number hoặc sms.twilio.messaging_service_sid / "
                              "set sms.twilio.from_number or sms.twilio.messaging_service_sid")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.client = make_twilio_client(account_sid, auth_token, api_base_url or None, timeout=timeout)
        self._messages = self.client.messages  # resolved once: the property chain is walked at every access
        self._sender: dict[str, str] = {}
        if messaging_service_sid:
            self._sender["messaging_service_sid"] = messaging_service_sid
        if from_number:
            self._sender["from_"] = from_number

    def send(self, to: str, body: str, status_callback: str | None = None, *,
             meta: Mapping[str, Any] | None = None) -> SendResult:
        import requests
        from twilio.base.exceptions import TwilioException, TwilioRestException

        kwargs: dict[str, Any] = {"to": to, "body": body, **self._sender}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._messages.create(**kwargs)
        except TwilioRestException as exc:
            status = int(exc.status or 0)
            code = exc.code if exc.code is not None else status
            retryable = status == 429 or str(code) == "20429" or status >= 500
            fatal = status in (401, 403) or str(code) == "20003"
            raise SmsSendError(code, redact_numbers(exc.msg or f"HTTP {status}"), retryable=retryable,
                               fatal=fatal, http_status=status, retry_after=self._retry_after()) from None
        except requests.exceptions.ConnectTimeout:
            raise SmsSendError("timeout", "hết giờ khi kết nối / connect timeout",
                               retryable=True, network=True) from None
        except requests.exceptions.Timeout:
            # The request left; Twilio may have queued the message. Re-sending could double it.
            raise SmsSendError("timeout", "không nhận được trả lời (có thể đã gửi) / "
                               "read timeout: the message may have been accepted", uncertain=True) from None
        except requests.exceptions.ConnectionError as exc:
            if _connection_never_left(exc):
                raise SmsSendError("connection", "không kết nối được / cannot connect",
                                   retryable=True, network=True) from None
            raise SmsSendError("connection", "mất kết nối sau khi gửi (có thể đã gửi) / connection dropped "
                               "after the request was sent: the message may have been accepted",
                               uncertain=True) from None
        except requests.exceptions.RequestException as exc:
            raise SmsSendError("http", redact_numbers(type(exc).__name__), uncertain=True) from None
        except TwilioException as exc:  # e.g. an unparsable answer after the request left
            raise SmsSendError("twilio", redact_numbers(str(exc))[:200], uncertain=True) from None
        return SendResult(message.sid, str(message.status or ""))

    def _retry_after(self) -> float | None:
        """Twilio's ``Retry-After`` (seconds, or an HTTP date) from the last answer, if it sent one."""
        headers = getattr(self.client.http_client, "last_headers", None) or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                seconds = (parsedate_to_datetime(value) - utcnow()).total_seconds()
            except (TypeError, ValueError):
                return None
        return max(0.0, min(seconds, 3600.0)) if seconds == seconds else None

    def find_accepted(self, to: str, body: str, since: datetime, delivery_id: int) -> list[Accepted]:
        """Messages Twilio accepted for ``to`` from our sender with this body, created since ``since``.

        The listing is filtered by To and From at Twilio and read page by page
        (newest first) until a message older than ``since`` or the last page:
        only then is "not found" an answer. Not filtered by DateSent: Twilio
        leaves ``date_sent`` null until the message leaves it, so a message
        still queued would be missed and sent twice.
        """
        import requests
        from twilio.base.exceptions import TwilioException

        filters: dict[str, Any] = {"to": to, "page_size": 100}
        if self.from_number:
            filters["from_"] = self.from_number
        found = []
        try:
            for message in self.client.messages.stream(**filters):
                created = message.date_created
                if created is not None and created < since:
                    break
                if self.messaging_service_sid and not self.from_number and \
                        message.messaging_service_sid != self.messaging_service_sid:
                    continue
                if (message.body or "") == body and str(message.direction or "").startswith("outbound"):
                    found.append(Accepted(message.sid, str(message.status or ""), created))
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise SmsSendError("lookup", redact_numbers(f"Twilio không trả lời danh sách tin / cannot list "
                                                        f"messages: {type(exc).__name__}")) from None
        return found


# --------------------------------------------------------------------------
# Choosing
# --------------------------------------------------------------------------

BACKENDS = ("outbox", "twilio")


def make_sender(config: Config) -> SmsSender:
    """The sender ``sms.backend`` names; a clear :class:`ConfigError` otherwise (secrets never shown)."""
    backend = str(config.sms.backend).strip().lower()
    if backend == "outbox":
        return OutboxSender(config.sms_outbox_path)
    if backend == "twilio":
        sid, token = config.twilio_credentials()
        missing = [name for name, value in (("TWILIO_ACCOUNT_SID / sms.twilio.account_sid", sid),
                                            ("TWILIO_AUTH_TOKEN / sms.twilio.auth_token", token)) if not value]
        if missing:
            raise ConfigError(f"Thiếu thông tin đăng nhập Twilio / missing Twilio credentials: {', '.join(missing)}")
        twilio = config.sms.twilio
        return TwilioSender(sid, token, from_number=twilio.from_number,
                            messaging_service_sid=twilio.messaging_service_sid,
                            api_base_url=twilio.api_base_url or None, timeout=float(twilio.timeout))
    raise ConfigError(f"sms.backend không hợp lệ / unknown SMS backend {config.sms.backend!r} "
                      f"(chọn/choose: {', '.join(BACKENDS)})")
