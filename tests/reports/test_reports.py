"""``broadcaster report`` against hand-counted figures (see conftest.py for the log)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from broadcaster.models import Plan
from broadcaster.reports import months_in, parse_report_period, target_scale


def report(run, *args) -> dict:
    return json.loads(run("report", "--plan", "911/KH-UBND", "--format", "json", *args).output)


def target(data: dict, topic: str | None, metric: str, station: str | None = None) -> dict:
    found = [t for t in data["targets"]
             if (t["topic_code"], t["metric"], t["station_code"]) == (topic, metric, station)]
    assert len(found) == 1, found
    return found[0]


def totals(rows: list[dict], key: str) -> dict:
    return next(r for r in rows if r["key"] == key)


def test_quarter_with_pace(run, dataset):
    # 2023-05-16 00:00 local: 45 of Q2's 91 days have gone.
    data = report(run, "--period", "2023-Q2", "--as-of", "2023-05-16 00:00")
    assert data["period"] == {"label": "2023-Q2", "kind": "quarter", "start": "2023-04-01", "end": "2023-06-30"}
    assert data["elapsed"] == pytest.approx(45 / 91)

    # TTHC played in Q2: B5 (240 s, the 03:00 slot on 1 April local), B1 (120 s), B2 (180 s).
    broadcasts = target(data, "TTHC", "broadcasts")
    assert broadcasts["target"] == 24  # 8 a month × 3
    assert broadcasts["achieved"] == 3
    assert broadcasts["percent"] == pytest.approx(12.5)
    assert broadcasts["due"] == pytest.approx(24 * 45 / 91)
    assert broadcasts["status"] == "behind"
    assert broadcasts["not_achieved"] == 3  # B3 missed, B4 interrupted, 20 June failed

    airtime = target(data, "TTHC", "airtime_minutes")
    assert (airtime["target"], airtime["achieved"]) == (30, pytest.approx(9.0))  # the interrupted 45 s don't count

    per_station = target(data, "TTHC", "broadcasts", "XA-02")
    assert (per_station["target"], per_station["achieved"], per_station["not_achieved"]) == (6, 1, 1)

    sent = target(data, "CDS", "sms_sent")  # sent + delivered + undelivered; not failed/uncertain/pending
    assert (sent["target"], sent["achieved"], sent["not_achieved"]) == (pytest.approx(30), 4, 2)
    delivered = target(data, "CDS", "sms_delivered")
    assert (delivered["target"], delivered["achieved"], delivered["status"]) == (pytest.approx(1), 2, "done")

    people = target(data, None, "people_reached")  # XA-01 1,200 + XA-02 800 + SMS 001, 002, 003
    assert (people["target"], people["achieved"]) == (pytest.approx(3000), 2003)
    assert people["status"] == "on_track"  # 2,003 ≥ 3,000 × 45/91 = 1,483.5

    tthc, cds, total = totals(data["topics"], "TTHC"), totals(data["topics"], "CDS"), data["total"]
    assert (tthc["slots"], tthc["late_slots"], tthc["missed_slots"]) == (5, 1, 1)  # B2 late; B4 30 s is on time
    assert (tthc["broadcasts"], tthc["airtime_minutes"], tthc["people_reached"]) == (3, 9.0, 2000)
    assert (tthc["not_achieved"], tthc["sms_sent"]) == (3, 0)
    assert (cds["slots"], cds["broadcasts"], cds["airtime_minutes"]) == (1, 1, 1.0)
    assert (cds["sms_sent"], cds["sms_delivered"], cds["sms_undelivered"], cds["sms_failed"]) == (4, 2, 1, 1)
    assert (cds["people_reached"], cds["not_achieved"], cds["in_progress"]) == (1203, 2, 1)
    assert (total["slots"], total["broadcasts"], total["airtime_minutes"], total["people_reached"]) == (
        5, 4, 10.0, 2003)

    loudspeaker, sms = totals(data["channels"], "loudspeaker"), totals(data["channels"], "sms")
    assert (loudspeaker["slots"], loudspeaker["late_slots"], loudspeaker["missed_slots"]) == (5, 1, 1)
    assert (loudspeaker["broadcasts"], loudspeaker["people_reached"], loudspeaker["not_achieved"]) == (4, 2000, 3)
    assert (sms["sms_sent"], sms["sms_failed"], sms["people_reached"], sms["in_progress"]) == (4, 1, 3, 1)

    apart = {(r["topic_code"], r["channel"], r["status"]): (r["count"], r["kind"]) for r in data["not_achieved"]}
    assert apart == {
        ("TTHC", "loudspeaker", "missed"): (1, "not_achieved"),
        ("TTHC", "loudspeaker", "interrupted"): (1, "not_achieved"),
        ("TTHC", "loudspeaker", "failed"): (1, "not_achieved"),
        ("CDS", "sms", "failed"): (1, "not_achieved"),
        ("CDS", "sms", "uncertain"): (1, "not_achieved"),
        ("CDS", "sms", "pending"): (1, "in_progress"),
        ("CDS", "sms", "undelivered"): (1, "undelivered"),
    }
    interrupted = next(r for r in data["not_achieved"] if r["status"] == "interrupted")
    assert interrupted["airtime_minutes"] == pytest.approx(0.75)


def test_month_and_timezone_boundary(run, dataset):
    april = report(run, "--period", "2023-04")
    assert april["elapsed"] == 1.0  # as of now: April 2023 is over, everything is due
    tthc = target(april, "TTHC", "broadcasts")
    assert (tthc["target"], tthc["achieved"], tthc["status"]) == (8, 3, "behind")  # B5, B1, B2
    assert target(april, "TTHC", "airtime_minutes")["target"] == pytest.approx(10)  # 30 a quarter / 3
    assert target(april, "CDS", "sms_sent")["target"] == pytest.approx(10)  # 120 a year / 12
    assert target(april, None, "people_reached")["target"] == pytest.approx(1000)  # 12,000 for the plan / 12
    # B6 at 23:30 on 31 March local is March; B5 at 20:00 UTC on 31 March is 03:00 on 1 April local.
    march = report(run, "--period", "2023-03")
    assert target(march, "TTHC", "broadcasts")["achieved"] == 1
    assert totals(march["channels"], "loudspeaker")["slots"] == 1
    assert target(report(run, "--period", "5/2023"), "CDS", "sms_sent")["achieved"] == 4


def test_year_equals_whole_plan_by_default(run, dataset):
    whole = report(run, "--as-of", "2023-07-01 00:00")
    assert whole["period"]["kind"] == "plan"
    assert whole["elapsed"] == pytest.approx(181 / 365)
    year = report(run, "--period", "2023", "--as-of", "2023-07-01 00:00")
    assert year["period"]["kind"] == "year"
    for data in (whole, year):
        assert target(data, "TTHC", "broadcasts")["target"] == 96
        assert target(data, "TTHC", "broadcasts")["achieved"] == 4  # B6 too
        assert target(data, "CDS", "sms_sent")["target"] == 120
        # stations 2,000 + SMS recipients 001, 002, 003, 008
        people = target(data, None, "people_reached")
        assert (people["target"], people["achieved"]) == (12000, 2004)
        assert data["total"]["sms_delivered"] == 4


def test_station_filters_everything(run, dataset):
    data = report(run, "--period", "2023-Q2", "--station", "XA-02")
    assert data["station_code"] == "XA-02"
    assert target(data, "TTHC", "broadcasts")["achieved"] == 1
    assert target(data, "TTHC", "broadcasts", "XA-02")["achieved"] == 1
    assert target(data, None, "people_reached")["achieved"] == 800  # no SMS carries a station here
    assert totals(data["channels"], "loudspeaker")["slots"] == 1
    assert data["total"]["not_achieved"] == 1


def test_period_errors(run, dataset):
    outside = run("report", "--plan", "911/KH-UBND", "--period", "2024-05", ok=False)
    assert "ngoài thời gian của kế hoạch" in outside.output and "2023-01-01" in outside.output
    assert "không hợp lệ" in run("report", "--plan", "911/KH-UBND", "--period", "2023-13", ok=False).output
    assert "không có kế hoạch" in run("report", "--plan", "NOPE", ok=False).output
    assert "xlsx" in run("report", "--plan", "911/KH-UBND", "--format", "xlsx", ok=False).output


def test_scaling_rules():
    plan = Plan(code="X", title="X", period_start=date(2023, 3, 16), period_end=date(2023, 12, 31))
    assert months_in(date(2023, 4, 1), date(2023, 6, 30)) == 3
    assert months_in(date(2023, 2, 15), date(2023, 2, 28)) == pytest.approx(14 / 28)
    q1 = parse_report_period("2023-Q1", plan)  # cut to the plan: 16-31 March
    assert (q1.start, q1.end, q1.kind) == (date(2023, 3, 16), date(2023, 3, 31), "range")
    assert target_scale("month", q1, plan) == pytest.approx(16 / 31)
    year = parse_report_period(None, plan)
    assert target_scale("plan", year, plan) == 1
    assert target_scale("year", parse_report_period("2023-05", plan), plan) == pytest.approx(1 / 12)
    assert target_scale("quarter", parse_report_period("2023-05", plan), plan) == pytest.approx(1 / 3)


def test_text_formats_in_vietnamese_and_english(run, dataset, workspace):
    table = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16").output
    for words in ("Kỳ báo cáo: 2023-Q2", "Đã đạt", "chậm", "Không đạt", "12,5%", "Tổng cộng"):
        assert words in table, words
    md = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--format", "md", "--lang", "en").output
    assert "| Topic | Channel | Metric |" in md and "## Not achieved" in md and "behind" in md
    out = run("report", "--plan", "911/KH-UBND", "--format", "csv", "-o", workspace / "r.csv").output
    assert "r.csv" in out
    text = (workspace / "r.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["Chỉ tiêu"] in rows and ["Không đạt"] in rows
    heading = rows.index(["Chỉ tiêu"]) + 1
    assert rows[heading][:3] == ["Chủ đề", "Kênh", "Chỉ tiêu"]


def test_xlsx_and_chart(run, dataset, workspace):
    from openpyxl import load_workbook

    out = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16",
              "--format", "xlsx", "-o", workspace / "bc.xlsx", "--chart", workspace / "bc.png").output
    assert "bc.xlsx" in out and "bc.png" in out
    book = load_workbook(workspace / "bc.xlsx")
    assert book.sheetnames == ["Chỉ tiêu", "Chủ đề", "Kênh", "Không đạt"]
    sheet = book["Chỉ tiêu"]
    header_row = next(r for r in range(1, 10) if sheet.cell(r, 1).value == "Chủ đề")
    headings = [c.value for c in sheet[header_row]]
    assert sheet.cell(header_row, 1).font.bold
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=header_row + 1)]
    first = dict(zip(headings, rows[0], strict=False))
    assert first["Chỉ tiêu của kỳ"] == 24 and first["Đã đạt"] == 3 and first["Tỷ lệ"] == pytest.approx(0.125)
    assert sheet.cell(header_row + 1, headings.index("Tỷ lệ") + 1).number_format == "0%"
    assert sheet.column_dimensions["A"].width > 10
    png = (workspace / "bc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 800 <= width <= 1400 and 300 <= height <= 1600
    assert not list(workspace.glob(".bc.*"))  # no temp files left beside them
