"""A small, hand-countable delivery log for plan 911/KH-UBND (2023), written with the ORM.

Times are local (Asia/Ho_Chi_Minh, UTC+7). Stations: XA-01 "Xã Phước Hà" (commune Phước Hà, 1,200
listeners), XA-02 "Xã Phước Nam" (no commune, 800).

Loudspeaker bulletins and the deliveries they carried (on air = the bulletin's length, or its
clock times when interrupted):

    B6  2023-03-31 23:30  XA-01 slot played, on air 90 s      TTHC played 60 s            (March)
    B5  2023-04-01 03:00  XA-02 slot played, on air 270 s     TTHC played 240 s   (2023-03-31 20:00 UTC: April)
    B1  2023-04-10 06:00  XA-01 slot played, on air 300 s     TTHC played 120 s, CDS played 60 s
    B2  2023-04-11 06:00  XA-01 slot played 300 s late, 240 s TTHC played 180 s
    B3  2023-04-12 17:00  XA-01 slot missed                   TTHC missed
    B4  2023-05-02 06:00  XA-01 slot interrupted, 30 s late (on time), on air 06:00:30-06:02:00 = 90 s
                                                              CDS played 30 s, TTHC interrupted 45 s
    A1  2023-05-20 10:00  XA-01 announcement played, 150 s    (no topic) played 120 s    -> outside the plan
    A2  2023-06-05 09:00  XA-02 announcement played, 100 s    TTHC played 80 s
    --  2023-06-20 06:00  XA-02 (no bulletin)                 TTHC failed
    B7  2023-06-21 06:00  XA-01 slot playing                  TTHC playing

SMS (one campaign each; numbers are phone(n)):

    C1  2023-05-05 09:00  SMS slot S1, CDS: 001 delivered, 002 delivered, 003 sent, 004 undelivered,
                          005 failed, 006 uncertain, 007 pending, 009 cancelled
    C2  2023-06-10 09:00  SMS slot S2, TTHC: 001 pending, 008 pending   (nothing sent: no session)
    C3  2023-08-01 09:00  `sms send`, TTHC: 001 delivered, 008 delivered

24 deliveries: 12 loudspeaker, 12 SMS; all but A1's carry the plan.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from broadcaster.models import Bulletin, Campaign, ContentItem, Delivery, Station, Topic

PLAN = """\
[plan]
code = "911/KH-UBND"
title = "Kế hoạch thông tin, tuyên truyền CCHC tỉnh Ninh Thuận năm 2023"
issuer = "Chủ tịch UBND tỉnh Ninh Thuận"
issued_on = 2023-03-15
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

  [[topics.targets]]
  channel = "sms"
  metric = "people_reached"
  amount = 10
  period = "quarter"

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


def set_commune(workspace, name: str) -> None:
    """Write ``broadcaster.commune`` into the workspace's config file."""
    path = workspace / "config" / "broadcaster" / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert 'commune = ""' in text
    path.write_text(text.replace('commune = ""', f'commune = "{name}"', 1), encoding="utf-8")


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
        items = {}
        for code in ("TTHC", "CDS"):  # CDS last: other rooms' fixtures add content after ids["item"]
            items[code] = ContentItem(title=f"Tin {code}", topic_id=topics[code].id, channels=["sms"])
            session.add(items[code])
            session.flush()
        ids = {"item": items["CDS"].id}

        def bulletin(name, when, station, status="played", late_s=None, seconds=None, kind="slot",
                     channel="loudspeaker", ended_after=None):
            slot = at(when)
            started = slot + timedelta(seconds=late_s or 0) if status != "missed" else None
            ended = started + timedelta(seconds=ended_after) if ended_after is not None and started else None
            row = Bulletin(station_id=stations[station].id, slot_time=slot, status=status, late_s=late_s,
                           kind=kind, channel=channel, duration_s=seconds, started_at=started, ended_at=ended,
                           created_at=slot)
            session.add(row)
            session.flush()
            ids[name] = row.id
            return row

        def aired(b, topic, status, seconds):
            session.add(Delivery(channel="loudspeaker", status=status, plan_id=plan_id if topic else None,
                                 topic_id=topics[topic].id if topic else None, station_id=b.station_id,
                                 bulletin_id=b.id, duration_s=seconds, started_at=b.started_at,
                                 created_at=b.slot_time, updated_at=b.slot_time))

        aired(bulletin("B6", "2023-03-31 23:30", "XA-01", seconds=90), "TTHC", "played", 60)
        aired(bulletin("B5", "2023-04-01 03:00", "XA-02", late_s=0, seconds=270), "TTHC", "played", 240)
        b1 = bulletin("B1", "2023-04-10 06:00", "XA-01", late_s=0, seconds=300)
        aired(b1, "TTHC", "played", 120)
        aired(b1, "CDS", "played", 60)
        aired(bulletin("B2", "2023-04-11 06:00", "XA-01", late_s=300, seconds=240), "TTHC", "played", 180)
        aired(bulletin("B3", "2023-04-12 17:00", "XA-01", status="missed"), "TTHC", "missed", None)
        b4 = bulletin("B4", "2023-05-02 06:00", "XA-01", status="interrupted", late_s=30, seconds=400,
                      ended_after=90)
        aired(b4, "CDS", "played", 30)
        aired(b4, "TTHC", "interrupted", 45)
        aired(bulletin("A1", "2023-05-20 10:00", "XA-01", late_s=2, seconds=150, kind="announcement"),
              None, "played", 120)
        aired(bulletin("A2", "2023-06-05 09:00", "XA-02", late_s=1, seconds=100, kind="announcement"),
              "TTHC", "played", 80)
        session.add(Delivery(channel="loudspeaker", status="failed", plan_id=plan_id, topic_id=topics["TTHC"].id,
                             station_id=stations["XA-02"].id, error_message="không mở được tệp",
                             created_at=at("2023-06-20 06:00"), updated_at=at("2023-06-20 06:00")))
        aired(bulletin("B7", "2023-06-21 06:00", "XA-01", status="playing", late_s=0, seconds=200), "TTHC",
              "playing", None)

        def campaign(name, topic, when, statuses, slot=None):
            b = bulletin(slot, when, "XA-01", status="sent", channel="sms") if slot else None
            row = Campaign(item_id=items[topic].id, body=f"Tin {topic}", bulletin_id=b.id if b else None,
                           created_at=at(when), status="done")
            session.add(row)
            session.flush()
            ids[name] = row.id
            for n, status in statuses:
                session.add(Delivery(channel="sms", status=status, plan_id=plan_id, topic_id=topics[topic].id,
                                     item_id=items[topic].id, campaign_id=row.id, bulletin_id=b.id if b else None,
                                     recipient=phone(n), segments=1, created_at=at(when), updated_at=at(when)))

        campaign("C1", "CDS", "2023-05-05 09:00", [(1, "delivered"), (2, "delivered"), (3, "sent"),
                                                    (4, "undelivered"), (5, "failed"), (6, "uncertain"),
                                                    (7, "pending"), (9, "cancelled")], slot="S1")
        campaign("C2", "TTHC", "2023-06-10 09:00", [(1, "pending"), (8, "pending")], slot="S2")
        campaign("C3", "TTHC", "2023-08-01 09:00", [(1, "delivered"), (8, "delivered")])
    return ids
