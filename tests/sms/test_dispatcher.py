"""The dispatcher against the Twilio fake (real client): states, retries, uncertainty, quiet hours, limits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from broadcaster.contacts import opt_out, remove_contact
from broadcaster.db import session_scope
from broadcaster.deliveries import cancel_campaign
from broadcaster.models import Campaign, Contact, ContentItem, Delivery
from broadcaster.sms.backends import SendResult, SmsSendError, TwilioSender, make_sender
from broadcaster.sms.campaigns import create_campaign
from broadcaster.sms.dispatcher import (
    TokenBucket,
    dispatch_campaign,
    dispatch_due,
    dispatch_lock,
    recover_interrupted,
    resume,
)
from broadcaster.timeutil import zone

HCM = zone("Asia/Ho_Chi_Minh")
CALLBACK = "https://xa-phuoc-ha.example.org/sms/status"
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=HCM)
EVENING = datetime(2026, 3, 2, 22, 0, tzinfo=HCM)
NEXT_MORNING = datetime(2026, 3, 3, 7, 30, tzinfo=HCM)


def start(sms, count=3, *, now=NOON, at=None, **config):
    if config:
        sms.configure(**config)
    numbers = sms.seed_contacts(count)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        cid = create_campaign(session, item_id, "Thôn 1", at=at, config=app.config, now=now).id
    return app, cid, numbers


def statuses(sms, cid):
    return [r.status for r in sms.rows(cid)]


def test_sent_rows_keep_the_twilio_sid(sms):
    app, cid, numbers = start(sms)
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert result.counts["sent"] == 3 and result.campaign_status == "done" and result.error is None
    rows = sms.rows(cid)
    messages = sms.fake.messages
    for row in rows:
        assert row.status == "sent" and row.attempts == 1 and row.backend == "twilio"
        assert messages[row.provider_id]["to"] == row.recipient
    assert sorted(sms.sent_to()) == numbers


def test_quiet_hours_hold_rows_and_dispatch_due_sends_them_later(sms):
    app, cid, _ = start(sms, quiet_hours="21:00-07:00")
    held = dispatch_campaign(app, cid, now=lambda: EVENING)
    assert held.held == "quiet_hours" and held.held_until == datetime(2026, 3, 3, 7, 0, tzinfo=HCM)
    assert statuses(sms, cid) == ["pending"] * 3 and sms.fake.requests == []
    assert dispatch_due(app, now=lambda: EVENING) == []
    assert dispatch_due(app, now=lambda: NEXT_MORNING.replace(hour=6, minute=59)) == []
    (done,) = dispatch_due(app, now=lambda: NEXT_MORNING)
    assert done.counts["sent"] == 3 and statuses(sms, cid) == ["sent"] * 3
    assert dispatch_due(app, now=lambda: NEXT_MORNING) == []  # nothing left


def test_campaign_created_at_night_waits_for_morning(sms):
    app, cid, _ = start(sms, now=EVENING, quiet_hours="21:00-07:00")
    result = dispatch_campaign(app, cid, now=lambda: EVENING + timedelta(hours=1))
    assert result.held == "quiet_hours" and result.held_until == datetime(2026, 3, 3, 7, 0, tzinfo=HCM)
    assert sms.fake.requests == []
    assert [r.campaign_id for r in dispatch_due(app, now=lambda: NEXT_MORNING)] == [cid]


def test_quiet_hours_are_read_from_the_current_config(sms):
    """A campaign held at night is released as soon as the operator turns quiet hours off."""
    app, cid, _ = start(sms, now=EVENING, quiet_hours="21:00-07:00")
    assert dispatch_due(app, now=lambda: EVENING) == []
    sms.configure(quiet_hours="off")
    (done,) = dispatch_due(sms.app(), now=lambda: EVENING)
    assert done.counts["sent"] == 3 and statuses(sms, cid) == ["sent"] * 3


def test_an_emergency_campaign_is_sent_in_quiet_hours(sms):
    app, cid, _ = start(sms, now=EVENING, quiet_hours="21:00-07:00")
    with session_scope(app.engine) as session:
        item = session.get(ContentItem, session.get(Campaign, cid).item_id)
        item.priority = "emergency"
        session.add(item)
    (done,) = dispatch_due(app, now=lambda: EVENING)
    assert done.counts["sent"] == 3 and done.held is None


def test_a_cancelled_campaign_sends_nothing_more(sms):
    app, cid, _ = start(sms, now=EVENING, quiet_hours="21:00-07:00")
    cancelled = cancel_campaign(app.engine, cid)
    assert cancelled.cancelled == 3 and cancelled.in_flight == 0
    assert dispatch_due(app, now=lambda: NEXT_MORNING) == []
    assert dispatch_campaign(app, cid, now=lambda: NEXT_MORNING).counts["cancelled"] == 3
    assert statuses(sms, cid) == ["cancelled"] * 3 and sms.fake.requests == []
    assert sms.campaigns()[0].status == "cancelled"


def test_an_item_retired_after_the_campaign_was_written_is_not_sent(sms):
    app, cid, _ = start(sms, now=EVENING, quiet_hours="21:00-07:00")
    with session_scope(app.engine) as session:
        item = session.get(ContentItem, session.get(Campaign, cid).item_id)
        item.status = "retired"
        session.add(item)
    result = dispatch_campaign(app, cid, now=lambda: NEXT_MORNING)
    assert result.held == "item" and "retired" in result.error and sms.fake.requests == []
    assert statuses(sms, cid) == ["pending"] * 3


def test_at_holds_until_then(sms):
    at = datetime(2026, 3, 2, 15, 0, tzinfo=HCM)
    app, cid, _ = start(sms, at=at)
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert result.held == "not_before" and result.held_until == at and sms.fake.requests == []
    assert dispatch_due(app, now=lambda: at - timedelta(seconds=1)) == []
    assert dispatch_due(app, now=lambda: at)[0].counts["sent"] == 3


def test_quiet_hours_starting_mid_campaign_stop_sending(sms):
    app, cid, _ = start(sms, 5, quiet_hours="21:00-07:00", concurrency=1)
    before = datetime(2026, 3, 2, 20, 59, 59, tzinfo=HCM)
    clock = {"now": before}

    class Sender:
        name = "test"

        def send(self, to, body, status_callback=None, *, meta=None):
            if meta["delivery"] == 2:
                clock["now"] = before + timedelta(seconds=1)  # 21:00 after the second message
            return SendResult("T" + to, "queued")

    result = dispatch_campaign(app, cid, now=lambda: clock["now"], sender_factory=Sender)
    assert result.held == "quiet_hours"
    assert statuses(sms, cid) == ["sent", "sent", "pending", "pending", "pending"]


def test_opted_out_since_creation_is_skipped(sms):
    app, cid, numbers = start(sms)
    with session_scope(app.engine) as session:
        opt_out(session, numbers[0], "nhắn tin đề nghị dừng")
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert statuses(sms, cid) == ["skipped", "sent", "sent"] and result.counts["skipped"] == 1
    assert numbers[0] not in sms.sent_to()


def test_the_claim_skips_opted_out_and_removed_contacts_with_their_reason(sms):
    app, cid, numbers = start(sms, 4)
    with session_scope(app.engine) as session:
        opt_out(session, numbers[0], "nhắn tin đề nghị dừng")
        remove_contact(session, numbers[2])
    dispatch_campaign(app, cid, now=lambda: NOON)
    rows = {row.recipient: row for row in sms.rows()}
    assert [(rows[n].status, rows[n].error_code, rows[n].attempts, rows[n].started_at is None)
            for n in numbers] == [("skipped", "opted_out", 0, True), ("sent", None, 1, False),
                                  ("skipped", "no_contact", 0, True), ("sent", None, 1, False)]
    assert "opted out" in rows[numbers[0]].error_message and "removed" in rows[numbers[2]].error_message
    assert sorted(sms.sent_to()) == sorted([numbers[1], numbers[3]])


def test_21610_fails_and_opts_out(sms):
    app, cid, numbers = start(sms)
    sms.fake.add_number_rule(numbers[1], 21610)
    dispatch_campaign(app, cid, now=lambda: NOON)
    row = sms.rows(cid)[1]
    assert (row.status, row.error_code, row.attempts) == ("failed", "21610", 1)
    with session_scope(app.engine) as session:
        contact = session.exec(select(Contact).where(Contact.phone == numbers[1])).one()
        assert contact.opted_out_at is not None and "21610" in contact.opt_out_reason


@pytest.mark.parametrize("code", [21211, 21614, 21612])
def test_permanent_errors_fail_at_once(sms, code):
    app, cid, numbers = start(sms, 2)
    sms.fake.add_number_rule(numbers[0], code)
    dispatch_campaign(app, cid, now=lambda: NOON)
    failed, ok = sms.rows(cid)
    assert (failed.status, failed.error_code, failed.attempts, failed.provider_id) == ("failed", str(code), 1, None)
    assert numbers[0] not in (failed.error_message or "")  # numbers are masked in stored errors
    assert ok.status == "sent"
    assert sms.sent_to()[numbers[0]] == 1  # no retry
    with session_scope(app.engine) as session:
        assert session.exec(select(Contact).where(Contact.phone == numbers[0])).one().opted_out_at is None


def test_read_timeout_is_uncertain_and_resume_sends_it_once_when_twilio_never_had_it(sms):
    app, cid, numbers = start(sms, 3, concurrency=1, twilio={"timeout": 0.3})
    sms.fake.hang(1)  # the first create is received but never carried out nor answered
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    rows = sms.rows(cid)
    assert [r.status for r in rows] == ["uncertain", "sent", "sent"]
    assert rows[0].error_code == "timeout" and result.counts["uncertain"] == 1
    assert result.campaign_status == "open"  # an uncertain row keeps the campaign open
    seen = []
    resume(app, cid, now=lambda: NOON, on_resolved=seen.append)
    assert [(r.found, r.requeued, r.unanswered) for r in seen] == [(0, 1, 0)]
    row = sms.rows(cid)[0]
    assert row.status == "sent" and sms.fake.messages[row.provider_id]["to"] == numbers[0]
    assert len(sms.fake.messages) == 3 and sms.campaigns()[0].status == "done"


def test_an_answer_lost_after_twilio_accepted_is_found_and_never_resent(sms):
    app, cid, numbers = start(sms, 3, concurrency=1)
    sms.fake.lose_answers(1)  # Twilio stores the message, the answer never comes back
    dispatch_campaign(app, cid, now=lambda: NOON)
    assert statuses(sms, cid) == ["uncertain", "sent", "sent"]
    (accepted,) = [sid for sid, m in sms.fake.messages.items() if m["to"] == numbers[0]]
    seen = []
    resume(app, cid, now=lambda: NOON, on_resolved=seen.append)
    assert [(r.found, r.requeued, r.unanswered) for r in seen] == [(1, 0, 0)]
    row = sms.rows(cid)[0]
    assert (row.status, row.provider_id, row.error_code) == ("sent", accepted, None)
    assert sms.sent_to()[numbers[0]] == 1 and len(sms.fake.messages) == 3


def test_uncertain_stays_when_twilio_cannot_list_then_retry_uncertain_resends(sms):
    app, cid, numbers = start(sms, 2, concurrency=1)
    sms.fake.lose_answers(1)
    dispatch_campaign(app, cid, now=lambda: NOON)
    sms.fake.fail_lists(10)
    seen = []
    resume(app, cid, now=lambda: NOON, on_resolved=seen.append)
    assert [(r.found, r.requeued, r.unanswered) for r in seen] == [(0, 0, 1)]
    assert statuses(sms, cid) == ["uncertain", "sent"] and sms.sent_to()[numbers[0]] == 1
    sms.fake.reset()
    resume(app, cid, retry_uncertain=True, now=lambda: NOON)  # the operator's word: sent again, maybe twice
    assert sms.sent_to()[numbers[0]] == 2 and statuses(sms, cid) == ["sent"] * 2


def test_lookup_pages_through_other_messages_and_matches_recipient_sender_and_body(sms):
    app, cid, numbers = start(sms, 1, concurrency=1)
    other = sms.fake.client()
    for n in range(120):  # older traffic to the same person: other bodies, and another sender
        other.messages.create(to=numbers[0], from_="+15005550006", body=f"tin khác {n}")
    other.messages.create(to=numbers[0], from_="+15005550009", body=sms.campaigns()[0].body)
    sms.fake.lose_answers(1)
    dispatch_campaign(app, cid, now=lambda: NOON)
    sms.fake.clear_requests()
    resume(app, cid, now=lambda: NOON)
    (row,) = sms.rows(cid)
    assert row.status == "sent" and sms.fake.messages[row.provider_id]["from"] == "+15005550006"
    lists = [r for r in sms.fake.requests if r["method"] == "GET"]
    assert len(lists) == 2 and lists[0]["query"]["From"] == "+15005550006"  # 100 a page, 121 from us
    assert not [r for r in sms.fake.requests if r["method"] == "POST"]


def test_status_callback_url_carries_the_delivery_reference(sms):
    app, cid, _ = start(sms, 2)
    dispatch_campaign(app, cid, now=lambda: NOON)
    for row in sms.rows(cid):
        assert sms.fake.messages[row.provider_id]["_status_callback"] == f"{CALLBACK}?ref={row.id}"


def test_connection_dropped_after_sending_is_uncertain(sms):
    app, cid, _ = start(sms, 1)
    sms.fake.hang(1)

    def drop():
        sms.fake.wait_for_requests(1, timeout=5)
        sms.fake.release()  # closes the connection without an answer

    threading.Thread(target=drop).start()
    dispatch_campaign(app, cid, now=lambda: NOON)
    (row,) = sms.rows(cid)
    assert (row.status, row.error_code) == ("uncertain", "connection")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_outage_leaves_rows_waiting_then_the_daemon_sends_them_when_the_network_returns(sms):
    app, cid, numbers = start(sms, 5, network_retry_seconds=30.0,
                              twilio={"api_base_url": f"http://127.0.0.1:{_closed_port()}"})
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert result.held == "network" and statuses(sms, cid) == ["pending"] * 5
    first_wait = result.held_until - NOON
    assert timedelta(seconds=30) <= first_wait <= timedelta(seconds=37.5)
    assert all(r.scheduled_for is not None for r in sms.rows(cid))
    assert dispatch_due(app, now=lambda: NOON + timedelta(seconds=10)) == []  # not due yet: nothing tried
    later = NOON + timedelta(seconds=40)
    (again,) = dispatch_due(app, now=lambda: later)
    assert again.held == "network" and again.held_until - later >= timedelta(seconds=60)  # doubled
    sms.configure(network_retry_seconds=30.0)  # the network is back
    app = sms.app()
    back = again.held_until + timedelta(seconds=1)
    (sent,) = dispatch_due(app, now=lambda: back)
    assert sent.counts["sent"] == 5 and sent.campaign_status == "done"
    assert sorted(sms.sent_to()) == numbers and sms.rows(cid)[0].error_code is None


def test_waiting_for_the_network_backs_off_to_an_hour_at_most(sms):
    app, cid, _ = start(sms, 1, network_retry_seconds=30.0,
                        twilio={"api_base_url": f"http://127.0.0.1:{_closed_port()}"})
    moment = NOON
    for _ in range(12):
        (result,) = resume(app, cid, now=lambda m=moment: m)
        assert result.held == "network"
        wait = (result.held_until - moment).total_seconds()
        moment = result.held_until
    assert 3600 <= wait <= 3600.0 and sms.rows(cid)[0].status == "pending"


def test_rows_never_accepted_expire_after_max_age_but_an_emergency_keeps_waiting(sms):
    app, cid, _ = start(sms, 2, max_age_hours=24.0, twilio={"api_base_url": f"http://127.0.0.1:{_closed_port()}"})
    dispatch_campaign(app, cid, now=lambda: NOON)
    with session_scope(app.engine) as session:
        emergency_item = ContentItem(title="Bão số 3", channels=["sms"], status="approved", priority="emergency",
                                     sms_text="Bão số 3 sắp đổ bộ, bà con sơ tán ngay.")
        session.add(emergency_item)
        session.flush()
        urgent = create_campaign(session, emergency_item.id, "Thôn 1", config=app.config, now=NOON).id
    dispatch_campaign(app, urgent, now=lambda: NOON)
    day_later = NOON + timedelta(hours=25)
    results = {r.campaign_id: r for r in dispatch_due(app, now=lambda: day_later)}
    rows = sms.rows(cid)
    assert [(r.status, r.error_code) for r in rows] == [("failed", "expired")] * 2
    assert sms.campaigns()[0].status == "done"
    assert statuses(sms, urgent) == ["pending"] * 2 and results[urgent].overdue == 2


def test_throttled_then_sent(sms):
    app, cid, numbers = start(sms, 1, max_retries=3)
    sms.fake.throttle(2)
    dispatch_campaign(app, cid, now=lambda: NOON)
    (row,) = sms.rows(cid)
    assert (row.status, row.attempts, row.error_code) == ("sent", 3, None)
    assert [r["response_status"] for r in sms.fake.requests] == [429, 429, 201]


def test_server_errors_beyond_max_retries_fail(sms):
    app, cid, _ = start(sms, 1, max_retries=2)
    sms.fake.fail_next(3, status=500)
    dispatch_campaign(app, cid, now=lambda: NOON)
    (row,) = sms.rows(cid)
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, "20500")


def test_backoff_doubles(sms):
    app, cid, _ = start(sms, 1, max_retries=3, retry_backoff=0.05)
    sms.fake.fail_next(3, status=503)
    dispatch_campaign(app, cid, now=lambda: NOON)
    times = [r["time"] for r in sms.fake.requests]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 3 and gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2
    assert sms.rows(cid)[0].status == "sent"


def test_bad_credentials_stop_everything_and_leave_rows_pending(sms, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token")
    app, cid, _ = start(sms, 4)
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert result.error and "20003" in result.error and "wrong-token" not in result.error
    assert statuses(sms, cid) == ["pending"] * 4
    assert len(sms.fake.requests) <= 2  # each worker stops after its first refusal


def test_rows_left_sending_are_looked_up_and_sent_once_when_twilio_never_had_them(sms):
    app, cid, numbers = start(sms)
    with session_scope(app.engine) as session:
        row = session.exec(select(Delivery).where(Delivery.recipient == numbers[0])).one()
        row.status, row.attempts = "sending", 1  # as a killed process leaves it
    results = resume(app, now=lambda: NOON)
    assert [r.campaign_id for r in results] == [cid]
    assert statuses(sms, cid) == ["sent", "sent", "sent"]
    assert sms.sent_to()[numbers[0]] == 1


def test_recovery_waits_for_the_lock(sms):
    app, cid, _ = start(sms)
    with session_scope(app.engine) as session:
        session.exec(select(Delivery)).first().status = "sending"
    with dispatch_lock(app.config) as held:
        assert held
        assert dispatch_due(app, now=lambda: NOON) == []  # another dispatcher is busy: do nothing
        assert statuses(sms, cid)[0] == "sending"  # a live process may be sending it
    assert recover_interrupted(app.engine) == 1


def test_concurrency_is_bounded_and_each_thread_has_its_own_sender(sms):
    app, cid, _ = start(sms, 12, concurrency=3)
    lock = threading.Lock()
    state = {"in_flight": 0, "max": 0}
    senders = []

    class Sender:
        name = "test"

        def __init__(self):
            self.threads = set()
            senders.append(self)

        def send(self, to, body, status_callback=None, *, meta=None):
            self.threads.add(threading.get_ident())
            with lock:
                state["in_flight"] += 1
                state["max"] = max(state["max"], state["in_flight"])
            time.sleep(0.02)
            with lock:
                state["in_flight"] -= 1
            return SendResult("T" + str(meta["delivery"]), "queued")

    dispatch_campaign(app, cid, now=lambda: NOON, sender_factory=Sender)
    assert state["max"] == 3 and len(senders) == 3
    assert all(len(s.threads) == 1 for s in senders)
    assert len({next(iter(s.threads)) for s in senders}) == 3
    assert statuses(sms, cid) == ["sent"] * 12


def test_twilio_senders_do_not_share_a_client(sms):
    app = sms.app()
    first, second = make_sender(app.config), make_sender(app.config)
    assert isinstance(first, TwilioSender)
    assert first.client is not second.client
    assert first.client.http_client.session is not second.client.http_client.session


def test_rate_limit_spaces_requests(sms):
    app, cid, _ = start(sms, 6, concurrency=3, rate_per_second=20.0)
    began = time.monotonic()
    dispatch_campaign(app, cid, now=lambda: NOON)
    assert time.monotonic() - began >= 5 / 20 - 0.01
    times = sorted(r["time"] for r in sms.fake.requests)
    assert times[-1] - times[0] >= 5 / 20 - 0.02


def test_token_bucket():
    t = {"now": 0.0}
    bucket = TokenBucket(10.0, clock=lambda: t["now"])
    assert bucket.acquire()
    stop = threading.Event()
    stop.set()
    assert bucket.acquire(stop) is False  # would have to wait 0.1 s
    t["now"] = 0.1
    assert bucket.acquire(stop)
    assert TokenBucket(0).acquire()  # 0 = unlimited


def test_unexpected_sender_error_is_uncertain(sms):
    app, cid, _ = start(sms, 1)

    class Broken:
        name = "broken"

        def send(self, to, body, status_callback=None, *, meta=None):
            raise RuntimeError(f"boom for {to}")

    dispatch_campaign(app, cid, now=lambda: NOON, sender_factory=Broken)
    (row,) = sms.rows(cid)
    assert row.status == "uncertain" and row.recipient not in row.error_message


def test_retryable_errors_from_any_backend(sms):
    app, cid, _ = start(sms, 1, max_retries=1)
    calls = []

    class Flaky:
        name = "flaky"

        def send(self, to, body, status_callback=None, *, meta=None):
            calls.append(datetime.now(UTC))
            if len(calls) == 1:
                raise SmsSendError("20429", "Too Many Requests", retryable=True)
            return SendResult("X1", "queued")

    dispatch_campaign(app, cid, now=lambda: NOON, sender_factory=Flaky)
    assert len(calls) == 2 and sms.rows(cid)[0].status == "sent"


def test_two_dispatchers_never_send_a_row_twice(sms):
    """Even without the file lock, the conditional pending → sending UPDATE lets only one sender claim a row."""
    from broadcaster.sms.dispatcher import _dispatch_locked

    app, cid, numbers = start(sms, 20, concurrency=3)
    sms.fake.delay = 0.005
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        _dispatch_locked(app, cid, now=lambda: NOON, sender_factory=None, on_progress=None))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sms.sent_to() == {n: 1 for n in numbers}
    assert statuses(sms, cid) == ["sent"] * 20
    assert sum(r.attempted for r in results) == 20


def test_the_daemon_asks_twilio_about_uncertain_rows_once_they_have_settled(sms):
    app, cid, numbers = start(sms, 2, concurrency=1)
    sms.fake.lose_answers(1)
    dispatch_campaign(app, cid, now=lambda: NOON)
    assert statuses(sms, cid) == ["uncertain", "sent"]
    dispatch_due(app, now=lambda: NOON + timedelta(minutes=1))  # too fresh: Twilio may still be storing it
    assert statuses(sms, cid) == ["uncertain", "sent"]
    dispatch_due(app, now=lambda: NOON + timedelta(minutes=3))
    assert statuses(sms, cid) == ["sent", "sent"] and sms.sent_to()[numbers[0]] == 1


def test_retry_after_is_honoured_with_jitter(sms, monkeypatch):
    from broadcaster.sms import dispatcher

    waits = []
    real = dispatcher.jittered
    monkeypatch.setattr(dispatcher, "jittered", lambda seconds: waits.append(seconds) or real(seconds))
    app, cid, _ = start(sms, 1, max_retries=2, retry_backoff=0.01)
    sms.fake.retry_after = "0.3"
    sms.fake.throttle(1)
    dispatch_campaign(app, cid, now=lambda: NOON)
    times = [r["time"] for r in sms.fake.requests]
    assert waits == [0.3] and times[1] - times[0] >= 0.3 and sms.rows(cid)[0].status == "sent"
    assert {real(1.0) for _ in range(20)} != {1.0} and all(1.0 <= real(1.0) <= 1.25 for _ in range(50))


@pytest.mark.sqlite  # the synchronous pragma is SQLite's; PostgreSQL commits durably always
def test_rows_are_claimed_in_batches_committed_durably_and_results_in_group_commits(sms, monkeypatch):
    """On SQLite every claim commits with synchronous=FULL (2), every result write with NORMAL (1)."""
    from sqlalchemy import event

    import broadcaster.sms.dispatcher as dispatcher

    app, cid, numbers = start(sms, 256, concurrency=2)
    engine = app.ready_engine()
    commits: list[tuple[int, str]] = []

    @event.listens_for(engine, "begin")
    def _at_begin(conn):  # noqa: ANN001 - the claim and the group commit run on the driver: trace it
        statements = conn.info["statements"] = []
        conn.connection.driver_connection.set_trace_callback(statements.append)

    @event.listens_for(engine, "commit")
    def _at_commit(conn):  # noqa: ANN001 - what SQLite will apply to this very commit
        synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        commits.append((synchronous, " ".join(conn.info.get("statements", []))))

    claims = []
    real_claim = dispatcher.claim_sms
    monkeypatch.setattr(dispatcher, "claim_sms", lambda engine, ids, *a: claims.append(len(ids)) or
                        real_claim(engine, ids, *a))
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    for name, listener in (("begin", _at_begin), ("commit", _at_commit)):
        event.remove(engine, name, listener)
    assert result.counts["sent"] == 256 and sms.sent_to() == {n: 1 for n in numbers}
    assert claims == [64] * 4  # 256 rows, two workers, batches of 32: each claim takes one for each worker
    updates = [(s, sql[sql.index("UPDATE delivery"):]) for s, sql in commits if "UPDATE delivery" in sql]
    claim_commits = [s for s, sql in updates if "started_at" in sql]  # only a claim sets it
    result_commits = [s for s, sql in updates if "provider_id" in sql and "started_at" not in sql]
    assert len(claim_commits) == 4
    assert claim_commits and set(claim_commits) == {2}  # FULL
    assert result_commits and set(result_commits) == {1}  # NORMAL
    assert len(result_commits) < 256  # group commits: fewer transactions than messages


def test_under_a_rate_limit_each_worker_claims_its_own_batch(sms, monkeypatch):
    """The senders wait on the bucket, not on claims: nothing is claimed ahead for the others."""
    import broadcaster.sms.dispatcher as dispatcher

    app, cid, numbers = start(sms, 128, concurrency=2, rate_per_second=1000.0)
    claims = []
    real_claim = dispatcher.claim_sms
    monkeypatch.setattr(dispatcher, "claim_sms", lambda engine, ids, *a: claims.append(len(ids)) or
                        real_claim(engine, ids, *a))
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert result.counts["sent"] == 128 and sms.sent_to() == {n: 1 for n in numbers}
    assert claims == [16] * 8  # 128 rows, two workers, four batches each, one batch per claim


def test_claim_batch_size():
    from broadcaster.sms.dispatcher import CLAIM_BATCH, claim_batch_size

    assert claim_batch_size(10_000, 4, 0.0) == CLAIM_BATCH == 32
    assert claim_batch_size(12, 3, 0.0) == 1  # every worker gets rows, more than once
    assert claim_batch_size(240, 3, 0.0) == 20
    assert claim_batch_size(10_000, 4, 10.0) == 2  # about a second of sending per worker
    assert claim_batch_size(10_000, 4, 1.0) == 1
