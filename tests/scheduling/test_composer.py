"""The composer against hand-worked cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from broadcaster.deliveries import DeliveryStatus
from broadcaster.models import (
    Channel,
    ContentItem,
    Delivery,
    ItemStatus,
    Plan,
    Station,
    Target,
    Topic,
)
from broadcaster.scheduling.composer import Slot, compose, period_bounds

# 2023-06-16 00:00 in Hanoi time (UTC+7) = 2023-06-15 17:00 UTC: half of June has passed.
MID_JUNE = datetime(2023, 6, 15, 17, 0, tzinfo=UTC)


@pytest.fixture
def world(app):
    with app.session() as session:
        plan = Plan(code="P1", title="Plan", period_start=date(2023, 1, 1), period_end=date(2023, 12, 31))
        session.add(plan)
        session.flush()
        topics = {}
        for code in ("A", "B", "C"):
            topic = Topic(plan_id=plan.id, code=code, title=code)
            session.add(topic)
            session.flush()
            topics[code] = topic.id
        # A: 10 broadcasts a month; B: 20 a month; C: no target.
        session.add(Target(plan_id=plan.id, topic_id=topics["A"], channel="loudspeaker", metric="broadcasts",
                           amount=10, period="month"))
        session.add(Target(plan_id=plan.id, topic_id=topics["B"], channel="any", metric="broadcasts",
                           amount=20, period="month"))
        station = session.exec(select(Station)).one()
        items = {}
        for name, topic, priority in [("a1", "A", "normal"), ("b1", "B", "normal"), ("c1", "C", "normal"),
                                      ("p1", "C", "priority"), ("e1", None, "emergency")]:
            item = ContentItem(title=name, topic_id=topics.get(topic), channels=["loudspeaker", "sms"],
                               priority=priority, status=ItemStatus.APPROVED)
            session.add(item)
            session.flush()
            items[name] = item.id
        session.add(ContentItem(title="draft", topic_id=topics["A"], channels=["loudspeaker"],
                                status=ItemStatus.DRAFT))
        session.add(ContentItem(title="expired", topic_id=topics["A"], channels=["loudspeaker"],
                                status=ItemStatus.APPROVED, valid_until=MID_JUNE - timedelta(days=1)))
        session.add(ContentItem(title="sms-only", topic_id=topics["A"], channels=["sms"],
                                status=ItemStatus.APPROVED))
        return {"station": station.id, "topics": topics, "items": items}


def _played(session, world, item, n, at):
    item_row = session.get(ContentItem, world["items"][item])
    for _ in range(n):
        session.add(Delivery(channel=Channel.LOUDSPEAKER, status=DeliveryStatus.PLAYED, item_id=item_row.id,
                             topic_id=item_row.topic_id, station_id=world["station"], duration_s=30,
                             created_at=at))


def _compose(app, world, *, length=600, channel="loudspeaker", seconds=None, at=MID_JUNE, gap_hours=20):
    with app.session() as session:
        station = session.get(Station, world["station"])
        slot = Slot(station=station, channel=channel, at=at, length_s=length)
        return compose(session, slot, seconds_of=seconds or (lambda item: 60.0), repeat_gap=timedelta(hours=gap_hours))


def test_order_emergency_priority_then_behind(app, world):
    # By mid-June A should have 5 of 10 and B 10 of 20. A has 4 (behind 0.1), B has 4 (behind 0.3).
    with app.session() as session:
        _played(session, world, "a1", 4, datetime(2023, 6, 2, tzinfo=UTC))
        _played(session, world, "b1", 4, datetime(2023, 6, 2, tzinfo=UTC))
    titles = [c.title for c in _compose(app, world)]
    assert titles == ["e1", "p1", "b1", "a1", "c1"]
    choices = {c.title: c for c in _compose(app, world)}
    assert choices["b1"].behind == pytest.approx(0.3, abs=1e-3)
    assert choices["a1"].behind == pytest.approx(0.1, abs=1e-3)
    assert "behind" in choices["b1"].reason and "emergency" in choices["e1"].reason


def test_deliveries_before_the_month_do_not_count(app, world):
    # Played in May (and at 2023-05-31 18:00 UTC = June 1st 01:00 Hanoi, which does count for June).
    with app.session() as session:
        _played(session, world, "a1", 9, datetime(2023, 5, 20, tzinfo=UTC))
        _played(session, world, "b1", 10, datetime(2023, 5, 31, 18, 0, tzinfo=UTC))
    choices = {c.title: c for c in _compose(app, world, gap_hours=0)}
    assert choices["a1"].behind == pytest.approx(0.5, abs=1e-3)
    assert choices["b1"].behind == pytest.approx(0.0, abs=1e-3)


def test_fills_the_length_and_skips_what_does_not_fit(app, world):
    durations = {"e1": 100, "p1": 300, "a1": 250, "b1": 150, "c1": 50}
    by_id = {v: k for k, v in world["items"].items()}
    chosen = _compose(app, world, length=500, seconds=lambda item: durations[by_id[item.id]])
    # e1 (100) + p1 (300) = 400; then the topic order: a1 and b1 are equally behind (0.5), a1 has the
    # lower id but 250 does not fit the 100 s left, b1 150 does not either; c1 50 fits.
    assert [c.title for c in chosen] == ["e1", "p1", "c1"]
    assert sum(c.seconds for c in chosen) <= 500


def test_repeat_gap_excludes_recent_items_but_not_emergency(app, world):
    with app.session() as session:
        _played(session, world, "a1", 1, MID_JUNE - timedelta(hours=2))
        _played(session, world, "e1", 1, MID_JUNE - timedelta(hours=2))
    titles = [c.title for c in _compose(app, world)]
    assert "a1" not in titles and "e1" in titles
    assert "a1" in [c.title for c in _compose(app, world, gap_hours=1)]


def test_sms_slot_carries_one_item_and_same_state_same_choice(app, world):
    first = _compose(app, world, channel="sms")
    assert [c.title for c in first] == ["e1"]
    assert _compose(app, world) == _compose(app, world)


def test_draft_expired_and_wrong_channel_never_chosen(app, world):
    titles = {c.title for c in _compose(app, world, length=10_000)}
    assert titles == {"a1", "b1", "c1", "p1", "e1"}


def test_period_bounds_use_station_time():
    plan = Plan(code="x", title="x", period_start=date(2023, 1, 1), period_end=date(2023, 12, 31))
    start, end = period_bounds("quarter", datetime(2023, 3, 31, 18, 0, tzinfo=UTC), "Asia/Ho_Chi_Minh", plan)
    assert start == datetime(2023, 3, 31, 17, 0, tzinfo=UTC)  # April 1st 00:00 in Hanoi
    assert end == datetime(2023, 6, 30, 17, 0, tzinfo=UTC)
    start, end = period_bounds("plan", datetime(2023, 3, 1, tzinfo=UTC), "Asia/Ho_Chi_Minh", plan)
    assert (start, end) == (datetime(2022, 12, 31, 17, tzinfo=UTC), datetime(2023, 12, 31, 17, tzinfo=UTC))
