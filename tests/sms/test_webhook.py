"""Status callbacks signed as Twilio signs them (``TwilioFake.send_status_callback``)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from broadcaster.deliveries import DeliveryStatus
from broadcaster.models import Delivery
from broadcaster.sms import webhook
from broadcaster.sms.webhook import STATUS_RANK, apply_status, make_webhook_server, map_twilio_status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def hook(sms, run):
    """Three messages sent with StatusCallback = this webhook's URL, and the webhook running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/sms/status"
    sms.configure(status_callback_url=url)
    sms.numbers = sms.seed_contacts(3)
    run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    server = make_webhook_server(sms.app(), "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sms.url = url
    yield sms
    server.shutdown()
    server.server_close()
    thread.join(5)


def row_of(sms, sid):
    (row,) = [r for r in sms.rows() if r.provider_id == sid]
    return row


def test_callback_url_was_sent_to_twilio(hook):
    assert {r["form"]["StatusCallback"] for r in hook.fake.requests} == {f"{hook.url}?ref={r.id}"
                                                                         for r in hook.rows()}


def test_delivered_and_never_back(hook):
    sid = hook.rows()[0].provider_id
    assert hook.fake.send_status_callback(sid, "sent").status_code == 204
    assert row_of(hook, sid).status == "sent"
    assert hook.fake.send_status_callback(sid, "delivered").status_code == 204
    assert row_of(hook, sid).status == "delivered"
    assert hook.fake.send_status_callback(sid, "sent").status_code == 204  # late, out of order
    assert hook.fake.send_status_callback(sid, "undelivered").status_code == 204
    row = row_of(hook, sid)
    assert row.status == "delivered" and row.error_code is None


def test_undelivered_and_failed_store_the_error_code(hook):
    first, second, _ = (r.provider_id for r in hook.rows())
    hook.fake.send_status_callback(first, "undelivered", error_code=30005)
    hook.fake.send_status_callback(second, "failed")
    assert (row_of(hook, first).status, row_of(hook, first).error_code) == ("undelivered", "30005")
    assert (row_of(hook, second).status, row_of(hook, second).error_code) == ("failed", "30003")


def test_tampered_or_missing_signature_is_refused(hook, caplog):
    caplog.set_level(logging.WARNING, logger="broadcaster")
    sid = hook.rows()[0].provider_id
    response = hook.fake.send_status_callback(sid, "delivered", auth_token="someone-else's-token")
    assert response.status_code == 403
    params = hook.fake.status_callback_params(sid, "failed")
    signature = RequestValidator(hook.fake.auth_token).compute_signature(hook.url, params)
    params["MessageStatus"] = "delivered"  # changed after signing
    assert requests.post(hook.url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5).status_code == 403
    assert requests.post(hook.url, data=params, timeout=5).status_code == 403
    assert row_of(hook, sid).status == "sent"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("signature" in w.lower() for w in warnings)
    text = "\n".join(warnings)
    assert hook.fake.auth_token not in text and hook.numbers[0] not in text and "+84 91* *** 001" in text


def test_signature_is_checked_against_the_public_url(hook):
    """Behind a tunnel Twilio signs the public URL, not the address the server listens on."""
    hook.configure(status_callback_url="https://xa.example.org/sms/status")
    port = free_port()
    server = make_webhook_server(hook.app(), "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sid = hook.rows()[1].provider_id
        params = hook.fake.status_callback_params(sid, "delivered")
        local = f"http://127.0.0.1:{port}/sms/status"
        for signed_url, expected in ((local, 403), ("https://xa.example.org/sms/status", 204)):
            signature = RequestValidator(hook.fake.auth_token).compute_signature(signed_url, params)
            response = requests.post(local, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
            assert response.status_code == expected
        assert row_of(hook, sid).status == "delivered"
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_message_sid_is_404(hook, caplog):
    caplog.set_level(logging.WARNING, logger="broadcaster")
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": hook.numbers[0],
              "AccountSid": hook.fake.account_sid}
    signature = RequestValidator(hook.fake.auth_token).compute_signature(hook.url, params)
    response = requests.post(hook.url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
    assert response.status_code == 404
    assert any("unknown MessageSid" in r.getMessage() for r in caplog.records)
    assert hook.numbers[0] not in caplog.text


def test_webhook_needs_the_public_url_and_token(sms, run, monkeypatch):
    sms.configure(status_callback_url="")
    result = run("webhook", "serve", "--port", free_port(), ok=False)
    assert "sms.status_callback_url" in result.output and len(result.output.strip().splitlines()) == 1
    sms.configure()
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    assert "TWILIO_AUTH_TOKEN" in run("webhook", "serve", ok=False).output


def test_status_order():
    row = Delivery(channel="sms", status=DeliveryStatus.DELIVERED)
    assert not apply_status(row, DeliveryStatus.SENT)
    assert not apply_status(row, DeliveryStatus.UNDELIVERED)
    assert apply_status(Delivery(channel="sms", status="sent"), DeliveryStatus.DELIVERED)
    assert map_twilio_status("queued") == DeliveryStatus.SENT
    assert map_twilio_status("bogus") is None
    assert STATUS_RANK[DeliveryStatus.FAILED] == STATUS_RANK[DeliveryStatus.DELIVERED]


def test_webhook_serve_command(hook):
    """``broadcaster webhook serve`` in its own process, as the operator starts it."""
    port = free_port()
    hook.configure(status_callback_url=f"http://127.0.0.1:{port}/sms/status")
    env = {**os.environ, "BROADCASTER_CONFIG": str(hook.config_path),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", "from broadcaster.cli.main import cli; cli()", "webhook",
                             "serve", "--port", str(port)], env=env, cwd=hook.root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening on http://127.0.0.1:" in proc.stdout.readline()
        sid = hook.rows()[2].provider_id
        response = hook.fake.send_status_callback(sid, "delivered", url=f"http://127.0.0.1:{port}/sms/status")
        assert response.status_code == 204
        assert row_of(hook, sid).status == "delivered"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_callback_finds_an_uncertain_row_by_its_reference(hook):
    from broadcaster.db import session_scope

    row = hook.rows()[0]
    with session_scope(hook.app().ready_engine()) as session:  # as a lost answer leaves it
        stored = session.get(Delivery, row.id)
        stored.status, stored.provider_id = "uncertain", None
    assert hook.fake.send_status_callback(row.provider_id, "delivered").status_code == 204
    (after,) = [r for r in hook.rows() if r.id == row.id]
    assert (after.status, after.provider_id) == ("delivered", row.provider_id)


def test_answers_signed_callbacks_while_200_idle_connections_are_open(hook):
    idle = []
    try:
        for _ in range(200):
            conn = socket.create_connection(("127.0.0.1", int(hook.url.split(":")[2].split("/")[0])), timeout=5)
            idle.append(conn)
        half_open = idle[:10]
        for conn in half_open:  # a request begun and never finished holds a handler only until its timeout
            conn.sendall(b"POST /sms/status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        started = time.monotonic()
        for row in hook.rows():
            assert hook.fake.send_status_callback(row.provider_id, "delivered", timeout=10).status_code == 204
        assert time.monotonic() - started < 8
        assert {r.status for r in hook.rows()} == {"delivered"}
        assert threading.active_count() < 60  # no thread per connection
    finally:
        for conn in idle:
            conn.close()


def test_an_idle_webhook_sleeps_until_a_connection_its_deadline_or_shutdown(sms, monkeypatch):
    port = free_port()
    sms.configure(status_callback_url=f"http://127.0.0.1:{port}/sms/status")
    monkeypatch.setattr(webhook, "IDLE_TIMEOUT_S", 1.0)
    server = make_webhook_server(sms.app(), "127.0.0.1", port)
    timeouts = []
    real_select = server._selector.select

    def recording(timeout=None):  # noqa: ANN001, ANN202
        timeouts.append(timeout)
        return real_select(timeout)

    server._selector.select = recording
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not timeouts and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.6)  # a poll interval (0.5 s by default) would have come round by now
    assert timeouts == [None]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:  # it never sends a byte
        assert idle.recv(1) == b""  # closed by the server at its deadline
    assert any(t is not None and 0 < t <= 1.0 for t in timeouts)
    deadline = time.monotonic() + 5  # the server closed the connection; it then goes back to sleep
    while timeouts[-1] is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert timeouts[-1] is None  # asleep again, without a timeout
    server.shutdown()
    thread.join(5)
    assert not thread.is_alive()
    server.server_close()
