"""The report read from the rollup equals the report counted from the log (the scan), and the rollup never drifts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import delete, text, update
from sqlmodel import select

from broadcaster import db, deliveries, reports
from broadcaster.models import Bulletin, Campaign, ContentItem, Delivery, Station, Topic
from broadcaster.reports import rollup

from .conftest import phone

PLAN_CODE = "911/KH-UBND"
AS_OF = datetime(2023, 11, 15, 3, tzinfo=UTC)
PERIODS = [None, "2023", "2023-Q2", "2023-Q4", "2023-04", "2023-05", "2023-12", "2023-04-05..2023-05-20"]
STATUSES = ["pending", "sending", "uncertain", "playing", "played", "sent", "delivered", "undelivered", "failed",
            "missed", "interrupted", "skipped", "cancelled"]


def compare_all(app, stations=(None, "XA-01", "XA-02"), periods=PERIODS) -> int:
    compared = 0
    with app.read_session() as session:
        for station in stations:
            for period in periods:
                kwargs = {"as_of": AS_OF}
                rolled = reports.build_report(session, PLAN_CODE, period, station, **kwargs).to_dict()
                scanned = reports.build_report(session, PLAN_CODE, period, station, rollup=False, **kwargs).to_dict()
                assert rollup.report_differences(rolled, scanned) == [], (station, period)
                compared += 1
    return compared


def no_drift(app) -> None:
    with app.engine.connect() as connection:
        assert rollup.drift(connection) == []


def test_rollup_equals_scan_on_the_hand_counted_log(dataset, app):
    no_drift(app)
    assert compare_all(app) == 3 * len(PERIODS)


def test_the_report_reads_the_rollup(dataset, app):
    """Change the rollup behind the log's back: the rollup report moves, the scan does not."""
    with app.read_session() as session:
        before = reports.build_report(session, PLAN_CODE, "2023-Q2", as_of=AS_OF)
    with app.engine.begin() as connection:
        connection.execute(text("UPDATE deliveryhour SET n = n + 5 WHERE channel = 'sms' AND status = 'delivered'"))
    with app.engine.connect() as connection:
        assert rollup.drift(connection)
    with app.read_session() as session:
        rolled = reports.build_report(session, PLAN_CODE, "2023-Q2", as_of=AS_OF)
        scanned = reports.build_report(session, PLAN_CODE, "2023-Q2", as_of=AS_OF, rollup=False)
    assert rolled.total.sms_delivered == before.total.sms_delivered + 5
    assert scanned.total.sms_delivered == before.total.sms_delivered
    with app.engine.begin() as connection:
        rollup.rebuild(connection)
    no_drift(app)


def test_a_station_report_reads_the_station_reach(dataset, app):
    """A station's people come from its own reach rows: remove them behind the log's back and they are gone."""
    with app.session() as session:
        xa01 = session.exec(select(Station).where(Station.code == "XA-01")).one()
        cds = session.exec(select(Topic).where(Topic.code == "CDS")).one()
        session.exec(update(Delivery).where(Delivery.campaign_id == dataset["C1"]).values(station_id=xa01.id))
    no_drift(app)
    compare_all(app, periods=[None, "2023-05"])
    with app.read_session() as session:
        before = reports.build_report(session, PLAN_CODE, "2023-05", "XA-01", as_of=AS_OF)
    assert before.total.people_reached == 3 + 1200  # C1 reached 001-003; XA-01 played plan content in May
    with app.engine.begin() as connection:
        connection.execute(text("DELETE FROM deliverystationreach WHERE recipient = :r"), {"r": phone(1)})
    with app.engine.connect() as connection:
        found = [problem.split(":")[0] for problem in rollup.drift(connection)]
    assert found == [f"deliverystationreach ({xa01.id}, {cds.id}, '{phone(1)}')"]
    with app.read_session() as session:
        rolled = reports.build_report(session, PLAN_CODE, "2023-05", "XA-01", as_of=AS_OF)
        scanned = reports.build_report(session, PLAN_CODE, "2023-05", "XA-01", as_of=AS_OF, rollup=False)
        whole = reports.build_report(session, PLAN_CODE, "2023-05", as_of=AS_OF)
    assert (rolled.total.people_reached, scanned.total.people_reached) == (3 + 1200 - 1, 3 + 1200)
    assert whole.total.people_reached == 3 + 1200  # the plan's report reads deliveryreach
    with app.engine.begin() as connection:
        rollup.rebuild(connection)
    no_drift(app)


def _generate(app, rng: random.Random, rows: int) -> None:
    """A random log: both channels, every status, rows outside the plan's dates, without topic or station."""
    with app.session() as session:
        stations = [s.id for s in session.exec(select(Station)).all()]
        topics = [t.id for t in session.exec(select(Topic)).all()]
        items = [i.id for i in session.exec(select(ContentItem)).all()]
        start = datetime(2022, 12, 20, tzinfo=UTC)
        bulletins, campaigns = [], []
        for _ in range(rows // 8):
            slot = start + timedelta(minutes=rng.randrange(0, 400 * 24 * 60))
            b = Bulletin(station_id=rng.choice(stations), slot_time=slot, created_at=slot,
                         status=rng.choice(["played", "interrupted", "missed", "playing"]),
                         kind=rng.choice(["slot", "slot", "announcement"]), late_s=rng.choice([None, 0, 30, 60, 400]),
                         duration_s=rng.choice([None, 120.5, 300]), started_at=slot,
                         ended_at=slot + timedelta(seconds=rng.choice([0, 90, 200])))
            session.add(b)
            bulletins.append(b)
        for _ in range(rows // 40):
            c = Campaign(item_id=rng.choice(items), body="x", created_at=start + timedelta(days=rng.randrange(400)))
            session.add(c)
            campaigns.append(c)
        session.flush()
        campaign_topic = {c.id: rng.choice(topics + [None]) for c in campaigns}  # one item: one topic
        for _ in range(rows):
            topic = rng.choice(topics + [None])
            if rng.random() < 0.5:
                b = rng.choice(bulletins)
                session.add(Delivery(channel="loudspeaker", status=rng.choice(STATUSES), topic_id=topic,
                                     station_id=b.station_id, bulletin_id=b.id, created_at=b.slot_time,
                                     duration_s=rng.choice([None, 12.25, 60.0, 0.1]), updated_at=b.slot_time))
            else:
                c = rng.choice(campaigns)
                moment = c.created_at + timedelta(minutes=rng.randrange(0, 180))
                session.add(Delivery(channel="sms", status=rng.choice(STATUSES), topic_id=campaign_topic[c.id],
                                     station_id=rng.choice(stations + [None]), campaign_id=c.id,
                                     recipient=phone(rng.randrange(40)), created_at=moment, updated_at=moment))


def test_rollup_equals_scan_on_generated_logs_through_every_kind_of_write(dataset, app):
    rng = random.Random(16)
    _generate(app, rng, 1200)
    no_drift(app)
    compare_all(app)
    # Row by row through the ORM, set-based UPDATEs, deletes, and foreign keys setting NULL.
    with app.session() as session:
        stations = [s.id for s in session.exec(select(Station)).all()]
        for row in session.exec(select(Delivery).where(Delivery.id % 5 == 0)).all():
            row.status = rng.choice(STATUSES)
            row.duration_s = rng.choice([None, 33.5])
            if rng.random() < 0.2:
                row.created_at = row.created_at + timedelta(days=rng.choice([-40, 1, 95]))
            if rng.random() < 0.2:
                row.recipient = phone(rng.randrange(40))
            if rng.random() < 0.2:
                row.station_id = rng.choice(stations + [None])
        session.exec(update(Delivery).where(Delivery.channel == "sms", Delivery.id % 3 == 0)
                     .values(status="delivered"))
        session.exec(update(Delivery).where(Delivery.channel == "sms", Delivery.id % 11 == 0)
                     .values(status="undelivered"))
        session.exec(delete(Delivery).where(Delivery.id % 13 == 0))
        for bulletin in session.exec(select(Bulletin).where(Bulletin.id % 9 == 0)).all():
            session.delete(bulletin)
    no_drift(app)
    compare_all(app)


def test_the_log_owners_writes_keep_the_rollup(dataset, app):
    """cancel_campaign's set-based UPDATE and the SMS claim and finish, as the dispatcher calls them."""
    with app.session() as session:
        campaign = session.get(Campaign, dataset["C1"])
        campaign.status = "open"
        pending = session.exec(select(Delivery).where(Delivery.campaign_id == campaign.id,
                                                      Delivery.status == "pending")).one()
        session.add(Delivery(channel="sms", status="pending", topic_id=pending.topic_id, campaign_id=campaign.id,
                             recipient=phone(77), created_at=pending.created_at, updated_at=pending.created_at))
    moment = datetime(2023, 5, 5, 3, tzinfo=UTC)
    claim = deliveries.claim_sms(app.engine, [pending.id], "twilio", moment)
    assert claim.send == [pending.id] or claim.skipped == [pending.id]
    if claim.send:  # the dispatcher's group commit of results
        assert deliveries.finish_sms_many(app.engine, [deliveries.SmsOutcome(
            pending.id, deliveries.DeliveryStatus.DELIVERED, moment)]) == 1
    assert deliveries.cancel_campaign(app.engine, dataset["C1"]).cancelled == 1
    no_drift(app)
    compare_all(app, stations=(None,), periods=[None, "2023-05"])
    with app.read_session() as session:
        report = reports.build_report(session, PLAN_CODE, "2023-05", as_of=AS_OF)
    assert report.total.cancelled == 2


def test_upgrade_counts_the_existing_log(dataset, app):
    """A database just before the rollup (0004) with a log: the 0005 and 0007 upgrades build the rollup from it.

    0006's changes stay in place: the test runs 0005 alone, marks 0006, then upgrades to the head.
    """
    with app.engine.begin() as connection:
        rollup.drop_triggers(connection)
        for table in rollup.TABLES:
            connection.execute(text(f"DROP TABLE {table}"))
        connection.execute(text("DROP INDEX ix_delivery_reached"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    with pytest.raises(Exception, match="0004"):
        db.require_current_schema(app.engine)
    cfg = db.alembic_config(str(app.engine.url))
    with app.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0005")
        assert connection.execute(text("SELECT sum(n) FROM deliveryreach")).scalar() == 5
        connection.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        command.upgrade(cfg, "head")
    db.require_current_schema(app.engine)
    with app.engine.connect() as connection:
        assert connection.execute(text("SELECT sum(n) FROM deliveryhour")).scalar() == 24
        # the hand-counted log's SMS carry no station: nobody in the per-station reach
        assert connection.execute(text("SELECT count(*) FROM deliverystationreach")).scalar() == 0
    no_drift(app)
    compare_all(app, periods=[None, "2023-Q2"])
