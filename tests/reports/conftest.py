"""A small, hand-countable delivery log for plan 911/KH-UBND (2023), written with the ORM.

Times are local (Asia/Ho_Chi_Minh, UTC+7). Stations: XA-01 (1,200 listeners), XA-02 (800).

Slots (Bulletin) and the loudspeaker deliveries they carried:

    B6  2023-03-31 23:30  XA-01 played          TTHC played 60 s
    B5  2023-04-01 03:00  XA-02 played          TTHC played 240 s   (2023-03-31 20:00 UTC: April, Q2)
    B1  2023-04-10 06:00  XA-01 played          TTHC played 120 s, CDS played 60 s
    B2  2023-04-11 06:00  XA-01 played, 300 s late   TTHC played 180 s
    B3  2023-04-12 17:00  XA-01 missed          TTHC missed
    B4  2023-05-02 06:00  XA-01 played, 30 s late (on time)   TTHC interrupted 45 s
    --  2023-06-20 06:00  XA-02                 TTHC failed (no slot row)

SMS:
    2023-05-05 09:00  CDS: 001 delivered, 002 delivered, 003 sent, 004 undelivered, 005 failed,
                      006 uncertain, 007 pending
    2023-08-01 09:00  TTHC: 001 delivered, 008 delivered
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from broadcaster.models import Bulletin, ContentItem, Delivery, Station, Topic

PLAN = """\
[plan]
code = "911/KH-UBND"
title = "Kế hoạch thông tin, tuyên truyền CCHC tỉnh Ninh Thuận năm 2023"
period = "2023"
illustrative_targets = true

[[topics]]
code = "TTHC"
title = "Cải cách thủ tục hành chính"

  [[topics.targets]]
  channel = "loudspeaker"
  metric = "broadcasts"
  amount = 8
  period = "month"

  [[topics.targets]]
  channel = "loudspeaker"
  metric = "airtime_minutes"
  amount = 30
  period = "quarter"

  [[topics.targets]]
  channel = "loudspeaker"
  metric = "broadcasts"
  amount = 2
  period = "month"
  station = "XA-02"

[[topics]]
code = "CDS"
title = "Chính quyền điện tử, chính quyền số"

  [[topics.targets]]
  channel = "sms"
  metric = "sms_sent"
  amount = 120
  period = "year"

  [[topics.targets]]
  channel = "sms"
  metric = "sms_delivered"
  amount = 4
  period = "year"

[[targets]]
channel = "any"
metric = "people_reached"
amount = 12000
period = "plan"
"""

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def at(text: str) -> datetime:
    """A local time in Ho Chi Minh City as the aware datetime the database stores."""
    return datetime.fromisoformat(text).replace(tzinfo=HCM)


def phone(n: int) -> str:
    return f"+8490100{n:04d}"


@pytest.fixture
def dataset(run, workspace, app):
    run("station", "add", "XA-02", "--name", "Xã Phước Nam", "--listeners", "800",
        "--drop-dir", str(workspace / "drop2"))
    path = workspace / "plan.toml"
    path.write_text(PLAN, encoding="utf-8")
    run("plan", "import", path)
    with app.session() as session:
        stations = {s.code: s for s in session.exec(select(Station)).all()}
        stations["XA-01"].listeners = 1200
        topics = {t.code: t for t in session.exec(select(Topic)).all()}
        plan_id = topics["TTHC"].plan_id
        item = ContentItem(title="Dịch vụ công trực tuyến", topic_id=topics["CDS"].id, channels=["sms"])
        session.add(item)
        session.flush()
        ids = {}

        def bulletin(name, when, station, status="played", late_s=None):
            row = Bulletin(station_id=stations[station].id, slot_time=at(when), status=status, late_s=late_s,
                           created_at=at(when))
            session.add(row)
            session.flush()
            ids[name] = row.id
            return row

        def aired(b, topic, status, seconds):
            session.add(Delivery(channel="loudspeaker", status=status, plan_id=plan_id, topic_id=topics[topic].id,
                                 station_id=b.station_id, bulletin_id=b.id, duration_s=seconds,
                                 started_at=b.slot_time, created_at=b.slot_time, updated_at=b.slot_time))

        aired(bulletin("B6", "2023-03-31 23:30", "XA-01"), "TTHC", "played", 60)
        aired(bulletin("B5", "2023-04-01 03:00", "XA-02", late_s=0), "TTHC", "played", 240)
        b1 = bulletin("B1", "2023-04-10 06:00", "XA-01", late_s=0)
        aired(b1, "TTHC", "played", 120)
        aired(b1, "CDS", "played", 60)
        aired(bulletin("B2", "2023-04-11 06:00", "XA-01", late_s=300), "TTHC", "played", 180)
        aired(bulletin("B3", "2023-04-12 17:00", "XA-01", status="missed"), "TTHC", "missed", None)
        aired(bulletin("B4", "2023-05-02 06:00", "XA-01", late_s=30), "TTHC", "interrupted", 45)
        session.add(Delivery(channel="loudspeaker", status="failed", plan_id=plan_id, topic_id=topics["TTHC"].id,
                             station_id=stations["XA-02"].id, error_message="không mở được tệp",
                             created_at=at("2023-06-20 06:00"), updated_at=at("2023-06-20 06:00")))
        sms = [("CDS", "2023-05-05 09:00", n, status) for n, status in enumerate(
            ["delivered", "delivered", "sent", "undelivered", "failed", "uncertain", "pending"], 1)]
        sms += [("TTHC", "2023-08-01 09:00", 1, "delivered"), ("TTHC", "2023-08-01 09:00", 8, "delivered")]
        for topic, when, n, status in sms:
            session.add(Delivery(channel="sms", status=status, plan_id=plan_id, topic_id=topics[topic].id,
                                 item_id=item.id if topic == "CDS" else None, recipient=phone(n), segments=1,
                                 created_at=at(when), updated_at=at(when)))
        ids["item"] = item.id
    return ids
