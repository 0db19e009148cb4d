"""Twilio status callbacks: ``broadcaster webhook serve`` (and a thread in the daemon).

Twilio POSTs a form (``MessageSid``, ``MessageStatus``, ``ErrorCode`` …) to the
``StatusCallback`` URL given at send time (``sms.status_callback_url``) and
signs it with ``X-Twilio-Signature`` = HMAC-SHA1(auth token, URL + sorted
params). The signature is checked against the **public** URL Twilio signed
(``sms.status_callback_url``), not the address this server listens on, which
differs behind a tunnel or a reverse proxy.

Answers: 403 for a missing or bad signature (a WARNING is logged, with the
number masked and never the token); 404 for an unknown ``MessageSid``; 204
once the row is updated (or already further along). A row never moves
backwards: ``delivered`` stays ``delivered`` whatever arrives late.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from sqlmodel import select

from ..app import App
from ..db import session_scope
from ..deliveries import STATUS_RANK, DeliveryStatus, apply_provider_status, provider_status_advances
from ..errors import ConfigError
from ..models import Delivery
from ..phones import mask_phone

__all__ = ["STATUS_RANK", "apply_status", "make_webhook_server", "map_twilio_status"]

log = logging.getLogger("broadcaster.sms.webhook")

MAX_BODY = 64 * 1024

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App, address: tuple[str, int], public_url: str, auth_token: str) -> None:
        self.app = app
        self.public_url = public_url
        self._validator_token = auth_token
        super().__init__(address, _Handler)

    def validate(self, params: dict[str, str], signature: str) -> bool:
        from twilio.request_validator import RequestValidator

        if not signature:
            return False
        return RequestValidator(self._validator_token).validate(self.public_url, params, signature)

    def __repr__(self) -> str:  # never the token
        return f"WebhookServer({self.server_address!r})"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "broadcaster-webhook/1"
    sys_version = ""

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
        if not self.server.validate(params, self.headers.get("X-Twilio-Signature", "")):
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
            found, changed = _update(self.server.app, sid, new, error_code)
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


def _update(app: App, sid: str, new: DeliveryStatus, error_code: str | None) -> tuple[bool, bool]:
    with session_scope(app.ready_engine()) as session:
        row = session.exec(select(Delivery).where(Delivery.provider_id == sid)).first()
        if row is None:
            return False, False
        return True, apply_provider_status(session, row, new, error_code=error_code)


def make_webhook_server(app: App, host: str | None = None, port: int | None = None) -> ThreadingHTTPServer:
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


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="sms-webhook", daemon=True)
    thread.start()
    return thread
