"""SQLite's claim and group commit (single statements on the driver) write what the portable ones write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from broadcaster import deliveries
from broadcaster.contacts import opt_out, remove_contact
from broadcaster.db import session_scope
from broadcaster.deliveries import DeliveryStatus as D
from broadcaster.deliveries import SmsOutcome, claim_sms, finish_sms_many
from broadcaster.sms.campaigns import create_campaign

CLAIMED = datetime(2026, 3, 2, 5, 0, 0, 123456, tzinfo=UTC)
COLUMNS = ("status", "attempts", "backend", "provider_id", "error_code", "error_message", "scheduled_for",
           "started_at", "ended_at", "updated_at")


def _campaign(sms, app, item_id: int) -> list[int]:
    with session_scope(app.engine) as session:
        cid = create_campaign(session, item_id, "Thôn 1", config=app.config, now=CLAIMED).id
    return [row.id for row in sms.rows(cid)]


def _stored(app, ids: list[int]) -> list[tuple]:
    """The rows as SQLite holds them: each value with its storage class (a time's text, a code's type)."""
    columns = ", ".join(f"typeof({c}), {c}" for c in COLUMNS)
    with app.engine.connect() as conn:
        return [tuple(conn.execute(text(f"SELECT {columns} FROM delivery WHERE id = :id"), {"id": i}).one())
                for i in ids]


def _life(app, ids: list[int]) -> list[tuple]:
    """Claims and results of every kind the dispatcher writes, on rows of every kind a claim meets."""
    engine = app.engine
    stages = []
    first = claim_sms(engine, ids, "twilio", CLAIMED)
    sent, failed, waiting, unsure = first.send
    later = CLAIMED + timedelta(seconds=3, microseconds=7)
    finish_sms_many(engine, [
        SmsOutcome(sent, D.SENT, later, {"provider_id": "SM" + "a" * 32, "backend": "twilio", "error_code": None,
                                         "error_message": None, "ended_at": later}),
        SmsOutcome(failed, D.FAILED, later, {"error_code": 21211, "error_message": "số không hợp lệ", "ended_at": later}),
        SmsOutcome(waiting, D.PENDING, later, {"error_code": "network", "error_message": "không kết nối được",
                                               "scheduled_for": later + timedelta(minutes=5)}),
        SmsOutcome(unsure, D.UNCERTAIN, later, {"error_code": "timeout", "error_message": "?", "ended_at": later}),
    ])
    stages.append(_stored(app, ids))
    again = claim_sms(engine, [waiting, sent], "twilio", later + timedelta(minutes=5))  # sent: not claimed
    assert again.send == [waiting] and not again.skipped
    last = later + timedelta(minutes=6)
    assert finish_sms_many(engine, [SmsOutcome(waiting, D.SENT, last, {"provider_id": "SM" + "b" * 32}),
                                    SmsOutcome(sent, D.FAILED, last)]) == 1  # sent: no longer the claimer's
    stages.append(_stored(app, ids))
    return stages


@pytest.mark.sqlite
def test_sqlite_claims_and_group_commits_write_what_the_portable_statements_write(sms, monkeypatch):
    numbers = sms.seed_contacts(6)
    app = sms.app()
    item_a, item_b = sms.add_item(), sms.add_item(title="Thủ tục đất đai")
    rows_a, rows_b = _campaign(sms, app, item_a), _campaign(sms, app, item_b)
    with session_scope(app.engine) as session:  # since the campaigns were written
        opt_out(session, numbers[1], "nhắn tin đề nghị dừng")
        remove_contact(session, numbers[4])

    driver = _life(app, rows_a)
    monkeypatch.setattr(deliveries, "_on_the_driver", lambda conn: False)
    portable = _life(app, rows_b)
    assert driver == portable
    final = [dict(zip(COLUMNS, row[1::2], strict=True)) for row in driver[1]]
    assert [(r["status"], r["attempts"], r["error_code"]) for r in final] == [
        ("sent", 1, None), ("skipped", 0, "opted_out"), ("failed", 1, "21211"), ("sent", 2, "network"),
        ("skipped", 0, "no_contact"), ("uncertain", 1, "timeout")]
    assert final[0]["started_at"] == "2026-03-02 05:00:00.123456"  # SQLAlchemy's own format for times
