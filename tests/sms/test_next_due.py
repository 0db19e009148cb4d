"""When the daemon's SMS thread next has something to do: it sleeps until then, not polling."""

from __future__ import annotations

from datetime import datetime, timedelta

from broadcaster.scheduling.daemon import Daemon
from broadcaster.sms.campaigns import next_due_at
from broadcaster.sms.dispatcher import RESOLVE_AFTER, dispatch_campaign
from broadcaster.timeutil import as_utc
from tests.sms.test_dispatcher import EVENING, HCM, NOON, _closed_port, start


def due(app, now):  # noqa: ANN001, ANN201
    with app.read_session() as session:
        return next_due_at(session, app.config, now, resolve_after=RESOLVE_AFTER)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_campaign_for_later_is_due_at_its_time_and_the_sms_thread_sleeps_until_then(sms):
    at = datetime(2026, 3, 2, 15, 0, tzinfo=HCM)
    app, cid, _ = start(sms, at=at)
    assert due(app, NOON) == at
    daemon = Daemon(app, clock=FixedClock(NOON), use_scheduler=False)
    assert 3 * 3600 <= daemon._sms_sleep_s() <= 3 * 3600 + 1
    daemon.clock.now = at
    assert daemon._sms_sleep_s() == daemon.sms_poll_seconds  # due and still unsent: looked at again soon
    assert dispatch_campaign(app, cid, now=lambda: at).campaign_status == "done"
    assert due(app, at) is None and daemon._sms_sleep_s() is None  # nothing waits: asleep until woken


def test_quiet_hours_make_a_campaign_due_when_they_end(sms):
    app, _cid, _ = start(sms, now=EVENING, quiet_hours="21:00-07:00")
    assert due(app, EVENING) == datetime(2026, 3, 3, 7, 0, tzinfo=HCM)


def test_a_network_wait_is_due_at_its_next_attempt(sms):
    app, cid, _ = start(sms, 2, network_retry_seconds=30.0,
                        twilio={"api_base_url": f"http://127.0.0.1:{_closed_port()}"})
    result = dispatch_campaign(app, cid, now=lambda: NOON)
    assert result.held == "network"
    first = min(as_utc(r.scheduled_for) for r in sms.rows(cid))
    assert due(app, NOON) == first and NOON + timedelta(seconds=30) <= first <= result.held_until

def test_an_uncertain_send_is_due_when_it_may_be_asked_about(sms):
    app, cid, _ = start(sms, 1, concurrency=1, twilio={"timeout": 0.3})
    sms.fake.hang(1)
    dispatch_campaign(app, cid, now=lambda: NOON)
    (row,) = sms.rows(cid)
    assert row.status == "uncertain"
    assert due(app, NOON) == as_utc(row.updated_at) + RESOLVE_AFTER
