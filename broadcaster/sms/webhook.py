"""Twilio status callbacks: ``broadcaster webhook serve`` (and a thread in the daemon).

Twilio POSTs a form (``MessageSid``, ``MessageStatus``, ``ErrorCode`` …) to the
``StatusCallback`` URL given at send time (``sms.status_callback_url``) and
signs it with ``X-Twilio-Signature`` = HMAC-SHA1(auth token, URL + sorted
params). The signature is checked against the **public** URL Twilio signed
(``sms.status_callback_url``), not the address this server listens on, which
differs behind a tunnel or a reverse proxy.

The URL sent to Twilio carries ``?ref=<delivery id>`` (see the dispatcher), and
Twilio signs the URL with that query: the signature is checked against the
public URL plus the query of the request. A callback for a row that never
heard its SID (a lost answer, a crash) finds the row by that reference.

Serving: one selector watches the listening socket, the idle connections and
a shutdown wake-up, so an idle server sleeps until something happens. A
connection gets a handler thread only once its first bytes arrive (each idle
one is closed after
:data:`IDLE_TIMEOUT_S`, at most :data:`MAX_IDLE` of them); at most
:data:`MAX_HANDLERS` requests are handled at once, each with a socket timeout
of :data:`SOCKET_TIMEOUT_S`, one request per connection (HTTP/1.0). So idle or
slow connections cannot hold the server, and valid callbacks keep being
answered while hundreds of them are open.

Answers: 403 for a missing or bad signature (a WARNING is logged, with the
number masked and never the token); 404 for an unknown ``MessageSid``; 204
once the row is updated (or already further along). A row never moves
backwards: ``delivered`` stays ``delivered`` whatever arrives late.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sqlmodel import select

from ..app import App
from ..db import session_scope
from ..deliveries import (
    STATUS_RANK,
    DeliveryStatus,
    apply_provider_status,
    provider_status_advances,
    resolve_by_reference,
)
from ..errors import ConfigError
from ..models import Delivery
from ..phones import mask_phone

__all__ = ["STATUS_RANK", "apply_status", "make_webhook_server", "map_twilio_status"]

log = logging.getLogger("broadcaster.sms.webhook")

MAX_BODY = 64 * 1024
SOCKET_TIMEOUT_S = 5.0  #: a request must arrive (headers and body) within this, once begun
IDLE_TIMEOUT_S = 30.0  #: a connection that sends nothing is closed after this
MAX_HANDLERS = 32  #: requests handled at once
MAX_IDLE = 2000  #: connections waiting for their first byte; beyond this the newest is closed

#: Twilio MessageStatus → our DeliveryStatus.
TWILIO_STATUS = {
    "accepted": DeliveryStatus.SENT,
    "scheduled": DeliveryStatus.SENT,
    "queued": DeliveryStatus.SENT,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

def map_twilio_status(status: str) -> DeliveryStatus | None:
    return TWILIO_STATUS.get((status or "").strip().lower())


def apply_status(row: Delivery, new: DeliveryStatus) -> bool:
    """True if ``row`` may move to ``new`` (never backwards, never between final states)."""
    return provider_status_advances(row.status, new)


_LISTENING, _WAKE = object(), object()  # selector keys' data: the listening socket, the shutdown wake-up


class _Server(HTTPServer):
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: App, address: tuple[str, int], public_url: str, auth_token: str) -> None:
        self.app = app
        self.public_url = public_url
        self._validator_token = auth_token
        self._pool = ThreadPoolExecutor(max_workers=MAX_HANDLERS, thread_name_prefix="sms-webhook")
        self._selector = selectors.DefaultSelector()
        self._idle: dict[socket.socket, tuple[float, Any]] = {}
        self._idle_lock = threading.Lock()
        self._closing = threading.Event()
        self._served = threading.Event()
        self._served.set()  # not serving yet: shutdown() has nothing to wait for
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        super().__init__(address, _Handler)

    def signed_url(self, request_path: str) -> str:
        """The URL Twilio signed: the public URL with the query this request came with."""
        query = urlsplit(request_path).query
        public = urlsplit(self.public_url)
        return urlunsplit(public._replace(query=query)) if query else self.public_url

    def validate(self, url: str, params: dict[str, str], signature: str) -> bool:
        from twilio.request_validator import RequestValidator

        if not signature:
            return False
        return RequestValidator(self._validator_token).validate(url, params, signature)

    # -- connections: a thread only for a request that has begun to arrive --------------------------

    def serve_forever(self, poll_interval: float | None = None) -> None:  # noqa: ARG002 - nothing polls
        """Asleep until a connection, a request's first bytes, an idle connection's deadline or
        :meth:`shutdown` (a byte on a socket pair): one selector for all, no poll interval."""
        self._served.clear()
        self._selector.register(self.socket, selectors.EVENT_READ, _LISTENING)
        self._selector.register(self._wake_read, selectors.EVENT_READ, _WAKE)
        try:
            while not self._closing.is_set():
                with self._idle_lock:
                    first = min((deadline for deadline, _ in self._idle.values()), default=None)
                timeout = None if first is None else max(0.0, first - time.monotonic())
                for key, _events in self._selector.select(timeout):
                    if key.data is _LISTENING:
                        self._handle_request_noblock()  # accept: process_request parks the connection
                    elif key.data is _WAKE:
                        with contextlib.suppress(OSError):
                            self._wake_read.recv(64)
                    else:
                        self._begin(key.fileobj, key.data)
                self._close_expired()
        finally:
            self._selector.unregister(self.socket)
            self._selector.unregister(self._wake_read)
            self._served.set()

    def shutdown(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._served.wait()

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._idle_lock:
            if len(self._idle) >= MAX_IDLE or self._closing.is_set():
                self.shutdown_request(request)
                return
            self._idle[request] = (time.monotonic() + IDLE_TIMEOUT_S, client_address)
            self._selector.register(request, selectors.EVENT_READ, client_address)

    def _begin(self, request: socket.socket, client_address: Any) -> None:
        with self._idle_lock:
            if self._idle.pop(request, None) is None:
                return
            self._selector.unregister(request)
        self._pool.submit(self._handle_one, request, client_address)

    def _close_expired(self) -> None:
        now = time.monotonic()
        with self._idle_lock:
            expired = [sock for sock, (deadline, _) in self._idle.items() if deadline <= now]
            for sock in expired:
                del self._idle[sock]
                self._selector.unregister(sock)
        for sock in expired:
            self.shutdown_request(sock)

    def _handle_one(self, request: socket.socket, client_address: Any) -> None:
        try:
            request.settimeout(SOCKET_TIMEOUT_S)
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one bad connection never stops the server
            log.debug("webhook connection from %s ended with an error", client_address[0], exc_info=True)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()
        with self._idle_lock:
            idle = list(self._idle)
            self._idle.clear()
            for sock in idle:
                self._selector.unregister(sock)
        for sock in idle:
            self.shutdown_request(sock)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._wake_read.close()
        self._wake_write.close()

    def __repr__(self) -> str:  # never the token
        return f"WebhookServer({self.server_address!r})"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "broadcaster-webhook/1"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, status: int, text: str = "") -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._answer(200, "broadcaster webhook: ok\n")

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._answer(413)
            return
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        params = dict(parse_qsl(raw, keep_blank_values=True))
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        to = mask_phone(params["To"]) if params.get("To") else "-"
        if not self.server.validate(self.server.signed_url(self.path), params,
                                    self.headers.get("X-Twilio-Signature", "")):
            log.warning("status callback refused: bad or missing X-Twilio-Signature (sid %s, to %s, from %s)",
                        sid or "-", to, self.client_address[0])
            self._answer(403)
            return
        new = map_twilio_status(params.get("MessageStatus") or params.get("SmsStatus") or "")
        if not sid or new is None:
            log.warning("status callback without MessageSid or with an unknown status (sid %s)", sid or "-")
            self._answer(400)
            return
        error_code = params.get("ErrorCode") or None
        try:
            found, changed = _update(self.server.app, sid, new, error_code, _reference(self.path))
        except Exception as exc:  # let Twilio try again later
            log.error("status callback for %s: database error %s", sid, type(exc).__name__)
            self._answer(503)
            return
        if not found:
            log.warning("status callback for an unknown MessageSid %s (to %s)", sid, to)
            self._answer(404)
            return
        log.info("status callback %s → %s%s (to %s)", sid, new.value if changed else "unchanged",
                 f", error {error_code}" if error_code else "", to)
        self._answer(204)


def _reference(path: str) -> int | None:
    value = dict(parse_qsl(urlsplit(path).query)).get("ref", "")
    return int(value) if value.isdigit() else None


def _update(app: App, sid: str, new: DeliveryStatus, error_code: str | None,
            reference: int | None = None) -> tuple[bool, bool]:
    with session_scope(app.ready_engine()) as session:
        row = session.exec(select(Delivery).where(Delivery.provider_id == sid)).first()
        if row is None:
            if reference is not None and resolve_by_reference(session, reference, sid, new, error_code=error_code):
                log.info("status callback for delivery %s found its row by reference (SID %s)", reference, sid)
                return True, True
            return False, False
        return True, apply_provider_status(session, row, new, error_code=error_code)


def make_webhook_server(app: App, host: str | None = None, port: int | None = None) -> HTTPServer:
    """A bound (not yet serving) server; run ``serve_forever()`` in a thread, ``shutdown()`` to stop.

    Needs ``sms.status_callback_url`` (the URL Twilio signs) and the Twilio auth
    token; raises :class:`ConfigError` naming what is missing.
    """
    config = app.config
    public_url = str(config.sms.status_callback_url or "").strip()
    if not public_url:
        raise ConfigError("Cần đặt sms.status_callback_url (địa chỉ công khai Twilio gọi tới) / "
                          "set sms.status_callback_url (the public URL Twilio calls)")
    _sid, token = config.twilio_credentials()
    if not token:
        raise ConfigError("Thiếu TWILIO_AUTH_TOKEN / sms.twilio.auth_token để kiểm tra chữ ký / "
                          "missing the Twilio auth token needed to check signatures")
    app.ready_engine()
    return _Server(app, (host or config.webhook.host, int(config.webhook.port if port is None else port)),
                   public_url, token)


def serve_in_thread(server: HTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="sms-webhook", daemon=True)
    thread.start()
    return thread
