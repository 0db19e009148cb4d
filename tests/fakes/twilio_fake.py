"""A loopback fake of Twilio's Messages REST API for the real ``twilio`` client.

Usage::

    from broadcaster.sms.twilio_client import make_twilio_client
    from tests.fakes.twilio_fake import TwilioFake

    with TwilioFake() as fake:
        client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=2)
        msg = client.messages.create(to="+84912345678", from_="+15005550006", body="Xin chào")
        assert fake.requests[-1]["form"]["Body"] == "Xin chào"

or, as a pytest fixture, add ``pytest_plugins = ["tests.fakes.twilio_fake"]`` to a
``conftest.py`` and ask for ``twilio_fake``.

What it serves (HTTP Basic auth required, Twilio's JSON bodies):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (To, From or
  MessagingServiceSid, Body, StatusCallback …) → 201 with a message resource
  (``sid`` "SM" + 32 hex, ``status`` "queued", or "accepted" when sent through
  a messaging service without From; ``num_segments`` from
  :func:`broadcaster.sms.encoding.encode_sms`);
* ``GET …/Messages/{MessageSid}.json`` → 200 with the resource, 404 (20404) if unknown;
* ``GET …/Messages.json`` → the list, newest first, as Twilio pages it: filters
  ``To``, ``From``, ``DateSent`` / ``DateSent<`` / ``DateSent>`` (on
  ``date_sent``, which stays null until the message leaves Twilio, as there),
  ``PageSize`` (default 50, at most 1000), ``Page`` and ``PageToken``, and a
  ``next_page_uri`` while more remain; :meth:`TwilioFake.fail_lists` makes the
  list answer 500 (a provider that cannot answer).

Programmable answers (all thread-safe, may be changed while the server runs):

* :meth:`TwilioFake.add_number_rule` — a ``To`` number always fails with a
  Twilio error code (21211, 21614, 21612, 21610, … or any code with a status);
* :meth:`TwilioFake.throttle` — the next N requests get 429 / 20429 (with
  ``Retry-After`` = :attr:`TwilioFake.retry_after` when set);
* :meth:`TwilioFake.fail_next` — the next N requests get 500 / 503 (or any status);
* :attr:`TwilioFake.delay` — seconds to wait before every answer;
* :meth:`TwilioFake.lose_answers` — the next N requests are carried out but never answered;
* :meth:`TwilioFake.hang` — requests are held without an answer until
  :meth:`TwilioFake.release` (then the connection is closed unanswered) or stop.

Every request received is recorded in :attr:`TwilioFake.requests` (a snapshot
list of dicts with ``method``, ``path``, ``query``, ``form``, ``form_multi``,
``headers``, ``auth``, ``body``, ``time`` and ``response_status``).

:meth:`TwilioFake.send_status_callback` POSTs a delivery status to a webhook URL
the way Twilio does, signed with ``X-Twilio-Signature``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator

from broadcaster.sms.encoding import MAX_BODY_CHARS, encode_sms

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "ERRORS",
    "CallbackReceiver",
    "NumberRule",
    "TwilioFake",
    "error_body",
    "twilio_fake",
]

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-auth-token-" + "f" * 16
API_VERSION = "2010-04-01"

#: Twilio error code → (HTTP status, message template). Templates may use
#: ``{to}``, ``{from_}`` and ``{path}``.
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service is unavailable. Please try again"),
    21211: (400, "Invalid 'To' Phone Number: {to}"),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} via SMS."),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}
_STATUS_TO_CODE = {429: 20429, 500: 20500, 503: 20503, 404: 20404, 401: 20003}

_MESSAGES_RE = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")


def error_body(code: int, *, status: int | None = None, message: str | None = None, **fmt: str) -> dict[str, Any]:
    """Twilio's error JSON: ``{code, message, more_info, status}``."""
    known_status, template = ERRORS.get(code, (400, "Error {code}"))
    values = {"to": "", "from_": "", "path": "", "code": str(code), **fmt}
    body: dict[str, Any] = {
        "code": code,
        "message": message if message is not None else template.format(**values),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status if status is not None else known_status,
    }
    if code == 20003:
        body["detail"] = "Your AccountSid or AuthToken was incorrect."
    return body


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


@dataclass(frozen=True)
class NumberRule:
    """A ``To`` number that always fails with a Twilio error."""

    to: str
    code: int
    status: int
    message: str | None = None


class _Stopped(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 drops bursts of parallel sends
    allow_reuse_address = True

    def __init__(self, fake: TwilioFake, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "TwilioFake/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        pass  # keep pytest output clean

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.fake._handle(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class TwilioFake:
    """Twilio Messages API on ``http://127.0.0.1:<free port>`` in a background thread."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._request_seen = threading.Condition(self._lock)
        self._messages: dict[str, dict[str, Any]] = {}
        self._rules: dict[str, NumberRule] = {}
        self._queued_failures: list[int] = []  # HTTP statuses, consumed FIFO
        self._hang_remaining: int | None = 0  # None = every request until release()
        self._release = threading.Event()
        self._stopping = threading.Event()
        self.delay: float = 0.0
        self._list_failures = 0
        self._lost_answers = 0
        self.retry_after: str | None = None  # sent as Retry-After with a 429
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> TwilioFake:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self, self._address)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="twilio-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        self._release.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> TwilioFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("TwilioFake is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What to configure as ``sms.twilio.api_base_url``."""
        return f"http://{self._address[0]}:{self.port}"

    def client(self, *, timeout: float = 5.0, auth_token: str | None = None):
        """A real ``twilio.rest.Client`` pointed at this fake."""
        from broadcaster.sms.twilio_client import make_twilio_client

        return make_twilio_client(
            self.account_sid, auth_token if auth_token is not None else self.auth_token, self.base_url, timeout=timeout
        )

    # -- what was received -----------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` requests were received (``TimeoutError`` otherwise)."""
        with self._request_seen:
            if not self._request_seen.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self._requests)}")
            return [dict(r) for r in self._requests]

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        """Message resources created so far, by sid (copies)."""
        with self._lock:
            return {sid: dict(m) for sid, m in self._messages.items()}

    # -- programmable answers ---------------------------------------------------------

    def add_number_rule(self, to: str, code: int, *, status: int | None = None, message: str | None = None) -> NumberRule:
        """Every create to ``to`` fails with Twilio error ``code`` (status from :data:`ERRORS`, else 400)."""
        rule = NumberRule(to, code, status if status is not None else ERRORS.get(code, (400, ""))[0], message)
        with self._lock:
            self._rules[to] = rule
        return rule

    def remove_number_rule(self, to: str) -> None:
        with self._lock:
            self._rules.pop(to, None)

    def throttle(self, count: int = 1) -> None:
        """The next ``count`` requests are answered 429 with code 20429."""
        self.fail_next(count, status=429)

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """The next ``count`` requests are answered with ``status`` (500, 503, …)."""
        with self._lock:
            self._queued_failures.extend([status] * count)

    def lose_answers(self, count: int = 1) -> None:
        """The next ``count`` requests are carried out (a create stores its message) but the connection is
        closed without an answer, as when the network drops after Twilio accepted."""
        with self._lock:
            self._lost_answers += count

    def fail_lists(self, count: int = 1) -> None:
        """The next ``count`` list requests (GET …/Messages.json) are answered 500."""
        with self._lock:
            self._list_failures += count

    def hang(self, count: int | None = None) -> None:
        """Hold the next ``count`` requests (all, if None) without answering until :meth:`release`."""
        with self._lock:
            self._release.clear()
            self._hang_remaining = count

    def release(self) -> None:
        """Stop hanging; held requests are closed without an answer."""
        with self._lock:
            self._hang_remaining = 0
            self._release.set()

    def reset(self) -> None:
        """Forget rules, queued failures, delay and hang (recorded requests and messages stay)."""
        self.release()
        with self._lock:
            self._rules.clear()
            self._queued_failures.clear()
            self.delay = 0.0

    def set_status(self, message_sid: str, status: str, *, error_code: int | None = None) -> dict[str, Any]:
        """Move a message to ``status`` (as a later fetch will show it)."""
        with self._lock:
            msg = self._messages[message_sid]
            msg["status"] = status
            msg["date_updated"] = _now_rfc2822()
            if status in ("sent", "delivered") and msg["date_sent"] is None:
                msg["date_sent"] = msg["date_updated"]
            if error_code is not None:
                msg["error_code"] = error_code
                msg["error_message"] = None  # Twilio leaves it null for delivery errors
            return dict(msg)

    # -- status callbacks ------------------------------------------------------------

    def status_callback_params(
        self, message_sid: str, status: str, *, error_code: int | None = None
    ) -> dict[str, str]:
        with self._lock:
            msg = dict(self._messages[message_sid])
        params = {
            "SmsSid": message_sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": msg["to"] or "",
            "MessageSid": message_sid,
            "AccountSid": msg["account_sid"],
            "From": msg["from"] or "",
            "ApiVersion": API_VERSION,
        }
        if msg.get("messaging_service_sid"):
            params["MessagingServiceSid"] = msg["messaging_service_sid"]
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = str(error_code if error_code is not None else 30003)
        return params

    def send_status_callback(
        self,
        message_sid: str,
        status: str,
        url: str | None = None,
        auth_token: str | None = None,
        *,
        error_code: int | None = None,
        timeout: float = 5.0,
    ) -> requests.Response:
        """POST a delivery status for ``message_sid`` to ``url`` as Twilio does.

        ``url`` defaults to the StatusCallback given at create time; the
        ``X-Twilio-Signature`` is computed with ``auth_token`` (default: this
        fake's token) over exactly ``url`` and the form fields. ``ErrorCode``
        is sent for ``failed`` / ``undelivered`` (30003 unless ``error_code``).
        The stored message takes the new status.
        """
        if url is None:
            with self._lock:
                url = self._messages[message_sid].get("_status_callback")
            if not url:
                raise ValueError(f"message {message_sid} has no StatusCallback and no url was given")
        params = self.status_callback_params(message_sid, status, error_code=error_code)
        self.set_status(message_sid, status, error_code=int(params["ErrorCode"]) if "ErrorCode" in params else None)
        signature = RequestValidator(auth_token if auth_token is not None else self.auth_token).compute_signature(
            url, params
        )
        headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        }
        return requests.post(url, data=params, headers=headers, timeout=timeout)

    # -- request handling (server threads) ----------------------------------------------

    def _handle(self, h: _Handler) -> None:
        try:
            self._handle_inner(h)
        except (_Stopped, BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _handle_inner(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode("utf-8", "replace") if length else ""
        form_multi = parse_qs(raw, keep_blank_values=True) if raw else {}
        auth = _basic_auth(h.headers.get("Authorization"))
        record: dict[str, Any] = {
            "method": h.command,
            "path": split.path,
            "query": {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            "form": {k: v[-1] for k, v in form_multi.items()},
            "form_multi": form_multi,
            "headers": dict(h.headers.items()),
            "auth": auth,
            "body": raw,
            "time": time.time(),
            "response_status": None,
        }
        with self._lock:
            self._requests.append(record)
            self._request_seen.notify_all()
            hang = self._hang_remaining is None or self._hang_remaining > 0
            if hang and self._hang_remaining is not None:
                self._hang_remaining -= 1

        if hang:
            while not self._release.wait(0.05):
                if self._stopping.is_set():
                    break
            raise _Stopped  # close without an answer

        if self.delay > 0 and self._stopping.wait(self.delay):
            raise _Stopped

        status, payload, headers = self._answer(h.command, split.path, record["form"], auth, record["query"])
        with self._lock:
            record["response_status"] = status
            lost = self._lost_answers > 0
            self._lost_answers -= 1 if lost else 0
        if lost:
            raise _Stopped
        h.send_json(status, payload, headers)

    def _answer(
        self, method: str, path: str, form: dict[str, str], auth: tuple[str, str] | None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str] | None]:
        if auth is None or auth != (self.account_sid, self.auth_token):
            return 401, error_body(20003), {"WWW-Authenticate": 'Basic realm="Twilio API"'}

        with self._lock:
            forced = self._queued_failures.pop(0) if self._queued_failures else None
        if forced is not None:
            extra = {"Retry-After": self.retry_after} if forced == 429 and self.retry_after else None
            return forced, error_body(_STATUS_TO_CODE.get(forced, 20500), status=forced), extra

        match = _MESSAGES_RE.match(path)
        if match is None or match["account"] != self.account_sid:
            return 404, error_body(20404, path=path), None
        sid = match["sid"]
        if method == "POST" and sid is None:
            return self._create(form)
        if method == "GET" and sid is not None:
            with self._lock:
                msg = self._messages.get(sid)
            if msg is None:
                return 404, error_body(20404, path=path), None
            return 200, _public(msg), None
        if method == "GET":
            with self._lock:
                failing = self._list_failures > 0
                self._list_failures -= 1 if failing else 0
            if failing:
                return 500, error_body(20500), None
            return self._list_page(path, query or {})
        return 405, error_body(20004), None

    def _create(self, form: dict[str, str]) -> tuple[int, Any, None]:
        to = form.get("To", "")
        from_ = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        if not to:
            return 400, error_body(21604), None
        if not from_ and not service:
            return 400, error_body(21603), None
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            return 400, error_body(21602), None
        if len(body) > MAX_BODY_CHARS:
            return 400, error_body(21617), None
        with self._lock:
            rule = self._rules.get(to)
        if rule is not None:
            return rule.status, error_body(rule.code, status=rule.status, message=rule.message, to=to, from_=from_), None

        sid = "SM" + secrets.token_hex(16)
        now = _now_rfc2822()
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        msg = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": str(max(1, encode_sms(body).segments)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not from_ else "queued",
            "subresource_uris": {
                "media": uri.replace(".json", "/Media.json"),
                "feedback": uri.replace(".json", "/Feedback.json"),
            },
            "to": to,
            "uri": uri,
            "_status_callback": form.get("StatusCallback") or None,
        }
        with self._lock:
            self._messages[sid] = msg
        return 201, _public(msg), None

    def _list_page(self, path: str, query: dict[str, str]) -> tuple[int, Any, None]:
        try:
            page_size = int(query.get("PageSize") or 50)
            page = int(query.get("Page") or 0)
        except ValueError:
            return 400, error_body(20001, message="Invalid paging parameter"), None
        if not 1 <= page_size <= 1000 or page < 0:
            return 400, error_body(20001, message="Invalid paging parameter"), None
        token = query.get("PageToken")
        if page > 0 and not (token and token == _page_token(page)):
            return 400, error_body(20001, message="Invalid PageToken"), None
        filters = {key: value for key, value in query.items() if key in ("To", "From")}
        sent_filters = [(key, _parse_filter_date(value)) for key, value in query.items() if key.startswith("DateSent")]
        with self._lock:
            chosen = [_public(m) for m in reversed(self._messages.values())
                      if all((m.get(k.lower()) or "") == v for k, v in filters.items())
                      and all(_date_matches(m.get("date_sent"), key, bound) for key, bound in sent_filters)]
        items = chosen[page * page_size:(page + 1) * page_size]
        base = f"{path}?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items())
                                     if k not in ("Page", "PageToken", "PageSize"))

        def uri(number: int) -> str:
            token_part = f"&PageToken={_page_token(number)}" if number else ""
            return f"{base}&PageSize={page_size}&Page={number}{token_part}".replace("?&", "?")

        more = (page + 1) * page_size < len(chosen)
        return 200, {
            "messages": items,
            "uri": uri(page),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page else None,
            "page": page,
            "page_size": page_size,
            "start": page * page_size,
            "end": page * page_size + max(0, len(items) - 1),
        }, None


def _page_token(page: int) -> str:
    return f"PASM{page:032x}"


def _parse_filter_date(value: str) -> datetime:
    """Twilio accepts ``YYYY-MM-DD`` or an ISO 8601 time (the Python client sends ``…T…Z``)."""
    text = value.strip().rstrip("Z")
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _date_matches(date_sent: str | None, key: str, bound: datetime) -> bool:
    if not date_sent:  # a message still queued has no date_sent and matches no DateSent filter
        return False
    sent = parsedate_to_datetime(date_sent)
    if key.endswith("<"):
        return sent <= bound
    if key.endswith(">"):
        return sent >= bound
    return sent.date() == bound.date()


def _public(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if not k.startswith("_")}


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


class CallbackReceiver:
    """A tiny webhook endpoint on 127.0.0.1 that records the POSTs it gets (answers ``status``)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                with receiver._lock:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "form": {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()},
                            "headers": dict(self.headers.items()),
                        }
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str = "/sms/status") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)



@pytest.fixture
def twilio_fake() -> Iterator[TwilioFake]:
    """A running :class:`TwilioFake` (register with ``pytest_plugins = ["tests.fakes.twilio_fake"]``)."""
    with TwilioFake() as fake:
        yield fake
