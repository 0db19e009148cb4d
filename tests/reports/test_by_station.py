"""``report --by station``: one row per station and the totals, in every format, furthest behind pace first."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from broadcaster.models import Bulletin, Delivery, Station, Target, Topic

ARGS = ("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16")


def as_json(run, *args) -> dict:
    return json.loads(run(*ARGS, "--format", "json", *args).output)


def test_each_station_row_is_that_stations_report(run, dataset):
    data = as_json(run, "--by", "station")
    rows = {r["code"]: r for r in data["by_station"]}
    assert sorted(rows) == ["XA-01", "XA-02"]
    for code, row in rows.items():
        alone = as_json(run, "--station", code)
        assert {k: v for k, v in row["totals"].items() if k not in ("key", "title")} == \
               {k: v for k, v in alone["total"].items() if k not in ("key", "title")}
        assert row["targets"] == len(alone["targets"])
        assert row["behind"] == sum(1 for t in alone["targets"] if t["status"] == "behind")
    # Mid-May neither station has any SMS sent: each has a target at 0 % of its pace; equal paces go by code.
    assert [(r["code"], r["pace"], r["behind"], r["status"]) for r in data["by_station"]] == \
           [("XA-01", 0.0, 6, "behind"), ("XA-02", 0.0, 6, "behind")]
    # the totals are the whole report's
    assert data["total"] == as_json(run)["total"]


def test_table_csv_markdown_xlsx_docx(run, dataset, workspace):
    from docx import Document
    from openpyxl import load_workbook

    table = run(*ARGS, "--by", "station").output
    assert max(len(line) for line in table.splitlines()) <= 80
    part = table[table.index("Kết quả theo đài"):table.index("Kết quả so với chỉ tiêu")]
    lines = [line for line in part.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].split()[0] for line in lines[:3]] == ["XA-01", "XA-02", "Tổng"]
    assert "chậm" in part and "6/6" in part

    written = run(*ARGS, "--by", "station", "--format", "csv", "-o", workspace / "bc.csv").output
    assert "bc-stations.csv" in written
    rows = list(csv.reader(io.StringIO((workspace / "bc-stations.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0][:4] == ["Đài", "Tiến độ", "Chỉ tiêu chậm", "Đánh giá"]
    assert [r[0] for r in rows[1:]] == ["XA-01 · Xã Phước Hà", "XA-02 · Xã Phước Nam", "Tổng cộng"]
    assert rows[1][2:4] == ["6/6", "chậm"]
    single = run(*ARGS, "--by", "station", "--format", "csv", "--table", "stations").output
    assert single.splitlines()[1].startswith("XA-01")
    assert "--by station" in run(*ARGS, "--format", "csv", "--table", "stations", ok=False).output
    assert "--station" in run(*ARGS, "--by", "station", "--station", "XA-01", ok=False).output
    assert not (workspace / "bc-stations.csv").with_name("x").exists()
    plain = run(*ARGS, "--format", "csv", "-o", workspace / "plain.csv").output
    assert "plain-stations.csv" not in plain

    md = run(*ARGS, "--by", "station", "--format", "md").output
    assert "## Kết quả theo đài" in md and "| XA-01 · Xã Phước Hà |" in md

    run(*ARGS, "--by", "station", "--format", "xlsx", "-o", workspace / "bc.xlsx")
    book = load_workbook(workspace / "bc.xlsx")
    assert book.sheetnames == ["Báo cáo", "Theo đài", "Chỉ tiêu", "Chủ đề", "Kênh", "Nhật ký"]
    values = [c.value for row in book["Theo đài"].iter_rows() for c in row]
    assert "XA-02 · Xã Phước Nam" in values and "Tổng cộng" in values

    run(*ARGS, "--by", "station", "--format", "docx", "-o", workspace / "bc.docx")
    document = Document(str(workspace / "bc.docx"))
    texts = [p.text for p in document.paragraphs]
    assert any("Kết quả theo đài" in t for t in texts)
    cells = {c.text for table in document.tables for row in table.rows for c in row.cells}
    assert {"XA-01 · Xã Phước Hà", "XA-02 · Xã Phước Nam", "Tổng cộng"} <= cells


def test_a_district_of_many_stations_reads_worst_first(run, dataset, app):
    """120 stations, each with its own target and a different number of broadcasts: sorted by pace."""
    with app.session() as session:
        topic = session.exec(select(Topic).where(Topic.code == "TTHC")).one()
        slot = datetime(2023, 4, 3, 23, tzinfo=UTC)
        for n in range(120):
            station = Station(code=f"HX-{n:03d}", name=f"Xã số {n}", listeners=100)
            session.add(station)
            session.flush()
            session.add(Target(plan_id=topic.plan_id, topic_id=topic.id, channel="loudspeaker", metric="broadcasts",
                               amount=4, period="month", station_id=station.id))
            for k in range(n % 7):
                bulletin = Bulletin(station_id=station.id, slot_time=slot + timedelta(days=k), status="played",
                                    duration_s=60)
                session.add(bulletin)
                session.flush()
                session.add(Delivery(channel="loudspeaker", status="played", topic_id=topic.id,
                                     plan_id=topic.plan_id, station_id=station.id, bulletin_id=bulletin.id,
                                     duration_s=60, created_at=bulletin.slot_time, updated_at=bulletin.slot_time))
    data = as_json(run, "--by", "station")
    paces = [r["pace"] for r in data["by_station"]]
    assert len(paces) == 122 and None not in paces
    assert paces == sorted(paces)
    assert data["by_station"][0]["totals"]["broadcasts"] == 0
    table = run(*ARGS, "--by", "station").output
    assert max(len(line) for line in table.splitlines()) <= 80
    codes = [line.split("│")[1].split()[0] for line in table[table.index("Kết quả theo đài"):].splitlines()
             if line.startswith("│") and "-" in line.split("│")[1]]
    assert codes[:122] == [r["code"] for r in data["by_station"]]
