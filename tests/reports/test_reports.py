"""``broadcaster report`` against hand-counted figures (see conftest.py for the log)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from broadcaster.models import Plan
from broadcaster.reports import months_in, parse_report_period, people_window, target_scale
from tests.reports.conftest import set_commune


def report(run, *args) -> dict:
    return json.loads(run("report", "--plan", "911/KH-UBND", "--format", "json", *args).output)


def target(data: dict, topic: str | None, metric: str, station: str | None = None) -> dict:
    found = [t for t in data["targets"]
             if (t["topic_code"], t["metric"], t["station_code"]) == (topic, metric, station)]
    assert len(found) == 1, found
    return found[0]


def totals(rows: list[dict], key: str) -> dict:
    return next(r for r in rows if r["key"] == key)


FIGURES = ["sessions", "late_sessions", "broadcasts", "content_minutes", "on_air_minutes", "sms_sent",
           "sms_delivered", "sms_undelivered", "people_reached", "in_progress", "cancelled", "failed", "missed",
           "interrupted", "uncertain", "skipped"]


def figures(row: dict) -> dict:
    return {k: pytest.approx(row[k]) if isinstance(row[k], float) else row[k] for k in FIGURES}


def test_quarter_one_meaning_per_number(run, dataset):
    # 2023-05-16 00:00 local: 45 of Q2's 91 days have gone.
    data = report(run, "--period", "2023-Q2", "--as-of", "2023-05-16 00:00")
    assert data["period"] == {"label": "2023-Q2", "kind": "quarter", "start": "2023-04-01", "end": "2023-06-30"}
    assert data["elapsed"] == pytest.approx(45 / 91)

    # TTHC: played in B5 (240 s, 03:00 on 1 April local), B1 (120 s), B2 (180 s) and announcement A2 (80 s).
    # Sessions B5, B1, B2, A2 (on air 270 + 300 + 240 + 100 s); B2 was late. B3 missed, B4 interrupted,
    # the 20 June row failed; B7 still playing and C2's two SMS pending are not done yet (and C2, with
    # nothing sent, is no session).
    tthc = totals(data["topics"], "TTHC")
    assert figures(tthc) == {
        "sessions": 4, "late_sessions": 1, "broadcasts": 4, "content_minutes": pytest.approx(620 / 60),
        "on_air_minutes": pytest.approx(910 / 60), "sms_sent": 0, "sms_delivered": 0, "sms_undelivered": 0,
        "people_reached": 2000, "in_progress": 3, "cancelled": 0, "failed": 1, "missed": 1, "interrupted": 1,
        "uncertain": 0, "skipped": 0}
    # CDS: played in B1 (60 s) and in the interrupted B4 before the break (30 s; B4 was on air 90 s, not its
    # 400 s length); C1 sent 4 (2 delivered, 1 sent, 1 undelivered) to 001-004, reached 001-003.
    cds = totals(data["topics"], "CDS")
    assert figures(cds) == {
        "sessions": 3, "late_sessions": 0, "broadcasts": 2, "content_minutes": pytest.approx(1.5),
        "on_air_minutes": pytest.approx(6.5), "sms_sent": 4, "sms_delivered": 2, "sms_undelivered": 1,
        "people_reached": 1203, "in_progress": 1, "cancelled": 1, "failed": 1, "missed": 0, "interrupted": 0,
        "uncertain": 1, "skipped": 0}
    # The total counts B1 (both topics) once: 5 bulletins + C1; 1,000 s on air; both stations + 3 people.
    total = {
        "sessions": 6, "late_sessions": 1, "broadcasts": 6, "content_minutes": pytest.approx(710 / 60),
        "on_air_minutes": pytest.approx(1000 / 60), "sms_sent": 4, "sms_delivered": 2, "sms_undelivered": 1,
        "people_reached": 2003, "in_progress": 4, "cancelled": 1, "failed": 2, "missed": 1, "interrupted": 1,
        "uncertain": 1, "skipped": 0}
    assert figures(data["total"]) == total

    scheduled, announcements, sms = (totals(data["channels"], k) for k in ("loudspeaker", "announcement", "sms"))
    assert figures(scheduled) == {
        "sessions": 4, "late_sessions": 1, "broadcasts": 5, "content_minutes": pytest.approx(10.5),
        "on_air_minutes": pytest.approx(15.0), "sms_sent": 0, "sms_delivered": 0, "sms_undelivered": 0,
        "people_reached": 2000, "in_progress": 1, "cancelled": 0, "failed": 1, "missed": 1, "interrupted": 1,
        "uncertain": 0, "skipped": 0}
    assert (announcements["sessions"], announcements["broadcasts"], announcements["people_reached"]) == (1, 1, 800)
    assert announcements["on_air_minutes"] == pytest.approx(100 / 60)
    assert (sms["sessions"], sms["sms_sent"], sms["in_progress"], sms["cancelled"], sms["failed"]) == (1, 4, 3, 1, 1)
    # Every additive column of the channel rows adds up to the topic table's total.
    for column in FIGURES:
        if column != "people_reached":
            assert sum(r[column] for r in data["channels"]) == pytest.approx(data["total"][column]), column
    # A1 aired no plan item: its own row, in no total.
    outside = data["outside_plan"]
    assert (outside["sessions"], outside["broadcasts"], outside["on_air_minutes"]) == (1, 0, pytest.approx(2.5))


def test_quarter_targets_and_pace(run, dataset):
    data = report(run, "--period", "2023-Q2", "--as-of", "2023-05-16 00:00")
    broadcasts = target(data, "TTHC", "broadcasts")
    assert (broadcasts["target"], broadcasts["achieved"]) == (24, 4)  # 8 a month × 3; B5, B1, B2, A2
    assert broadcasts["percent"] == pytest.approx(100 * 4 / 24)
    assert broadcasts["due"] == pytest.approx(24 * 45 / 91)
    assert (broadcasts["status"], broadcasts["shortfall"]) == ("behind", 20)
    airtime = target(data, "TTHC", "airtime_minutes")  # content airtime: the interrupted 45 s don't count
    assert (airtime["target"], airtime["achieved"]) == (30, pytest.approx(620 / 60))
    assert target(data, "TTHC", "broadcasts", "XA-02")["achieved"] == 2  # B5 and A2
    sent = target(data, "CDS", "sms_sent")  # sent + delivered + undelivered; not failed/uncertain/pending
    assert (sent["target"], sent["achieved"]) == (pytest.approx(30), 4)
    delivered = target(data, "CDS", "sms_delivered")
    assert (delivered["target"], delivered["achieved"], delivered["status"]) == (pytest.approx(1), 2, "done")

    # People are not scaled: the plan's 12,000 against everyone reached from 1 January to 30 June
    # (XA-01 1,200 + XA-02 800 + SMS 001, 002, 003), paced over the plan (135 of 365 days gone).
    people = target(data, None, "people_reached")
    assert (people["target"], people["achieved"], people["scale"]) == (12000, 2003, 1)
    assert (people["counted_from"], people["counted_to"]) == ("2023-01-01", "2023-06-30")
    assert people["due"] == pytest.approx(12000 * 135 / 365)
    assert people["status"] == "behind"
    # CDS by SMS, 10 a quarter: the quarter's 3 recipients.
    quarterly = target(data, "CDS", "people_reached")
    assert (quarterly["target"], quarterly["achieved"], quarterly["counted_from"]) == (10, 3, "2023-04-01")


def test_people_are_never_spread_over_months(run, dataset):
    # The same people reached give the same figure in a month report and the year report.
    august = report(run, "--period", "2023-08", "--as-of", "2023-12-31 23:00")
    year = report(run, "--period", "2023", "--as-of", "2023-12-31 23:00")
    for data in (august, year):
        people = target(data, None, "people_reached")
        # stations 2,000 + SMS recipients 001, 002, 003, 008 (C3 in August)
        assert (people["target"], people["achieved"]) == (12000, 2004)
        assert people["percent"] == pytest.approx(100 * 2004 / 12000)
    assert target(august, None, "people_reached")["counted_from"] == "2023-01-01"
    may = report(run, "--period", "2023-05")  # the quarter's target over 1 April - 31 May, not a third of it
    quarterly = target(may, "CDS", "people_reached")
    assert (quarterly["target"], quarterly["achieved"], quarterly["counted_from"]) == (10, 3, "2023-04-01")
    assert people_window("month", parse_report_period("2023-Q2", _plan()), _plan())[0].start == date(2023, 6, 1)


def _plan() -> Plan:
    return Plan(code="X", title="X", period_start=date(2023, 1, 1), period_end=date(2023, 12, 31))


def test_month_and_timezone_boundary(run, dataset):
    april = report(run, "--period", "2023-04")
    assert april["elapsed"] == 1.0  # as of now: April 2023 is over, everything is due
    tthc = target(april, "TTHC", "broadcasts")
    assert (tthc["target"], tthc["achieved"], tthc["status"]) == (8, 3, "behind")  # B5, B1, B2
    assert target(april, "TTHC", "airtime_minutes")["target"] == pytest.approx(10)  # 30 a quarter / 3
    assert target(april, "CDS", "sms_sent")["target"] == pytest.approx(10)  # 120 a year / 12
    # B6 at 23:30 on 31 March local is March; B5 at 20:00 UTC on 31 March is 03:00 on 1 April local.
    march = report(run, "--period", "2023-03")
    assert target(march, "TTHC", "broadcasts")["achieved"] == 1
    assert march["total"]["on_air_minutes"] == pytest.approx(1.5)
    assert target(report(run, "--period", "5/2023"), "CDS", "sms_sent")["achieved"] == 4


def test_year_equals_whole_plan_by_default(run, dataset):
    whole = report(run, "--as-of", "2023-07-01 00:00")
    assert whole["period"]["kind"] == "plan"
    assert whole["elapsed"] == pytest.approx(181 / 365)
    year = report(run, "--period", "2023", "--as-of", "2023-07-01 00:00")
    assert year["period"]["kind"] == "year"
    for data in (whole, year):
        assert target(data, "TTHC", "broadcasts")["target"] == 96
        assert target(data, "TTHC", "broadcasts")["achieved"] == 5  # B6 too
        assert target(data, "CDS", "sms_sent")["target"] == 120
        assert data["total"]["sms_delivered"] == 4
        assert data["total"]["sessions"] == 8  # B6, B5, B1, B2, B4, A2, C1, C3


def test_station_filters_everything(run, dataset):
    data = report(run, "--period", "2023-Q2", "--station", "XA-02")
    assert data["station_code"] == "XA-02"
    assert [s["code"] for s in data["stations"]] == ["XA-02"]
    # XA-02 has its own TTHC broadcasts target: it replaces the plan's 8 a month for the commune.
    assert not [t for t in data["targets"] if (t["topic_code"], t["metric"], t["station_code"]) ==
                ("TTHC", "broadcasts", None)]
    assert target(data, "TTHC", "broadcasts", "XA-02")["achieved"] == 2
    assert target(data, None, "people_reached")["achieved"] == 800  # no SMS carries a station here
    assert totals(data["channels"], "loudspeaker")["sessions"] == 1
    assert totals(data["channels"], "announcement")["sessions"] == 1
    assert (data["total"]["failed"], data["total"]["in_progress"]) == (1, 0)


def test_commune_and_stations_in_every_heading(run, dataset, workspace):
    # Without broadcaster.commune, the stations' commune names the report.
    table = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16").output
    assert "Xã Phước Hà · Đài: Xã Phước Hà (XA-01), Xã Phước Nam (XA-02)" in " ".join(table.split())
    set_commune(workspace, "Phước Hải")
    data = report(run, "--period", "2023-Q2", "--station", "XA-02")
    assert data["commune"] == "Phước Hải"
    md = run("report", "--plan", "911/KH-UBND", "--station", "XA-02", "--format", "md").output
    assert md.startswith("# Báo cáo kết quả thông tin, tuyên truyền — Xã Phước Hải · Đài: Xã Phước Nam (XA-02)")


def test_period_errors(run, dataset):
    outside = run("report", "--plan", "911/KH-UBND", "--period", "2024-05", ok=False)
    assert "ngoài thời gian của kế hoạch" in outside.output and "2023-01-01" in outside.output
    assert "không hợp lệ" in run("report", "--plan", "911/KH-UBND", "--period", "2023-13", ok=False).output
    assert "không có kế hoạch" in run("report", "--plan", "NOPE", ok=False).output
    assert "xlsx" in run("report", "--plan", "911/KH-UBND", "--format", "xlsx", ok=False).output
    assert "--table" in run("report", "--plan", "911/KH-UBND", "--format", "csv", ok=False).output


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
    counted, whole = people_window("plan", parse_report_period("2023-05", plan), plan)
    assert (counted.start, counted.end, whole.end) == (date(2023, 3, 16), date(2023, 5, 31), date(2023, 12, 31))


def test_text_formats_keep_vietnamese_numbers(run, dataset):
    table = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16").output
    for words in ("Kỳ báo cáo: 2023-Q2", "chậm", "Kết quả theo kênh", "16,7%", "Tổng cộng", "15,2",
                  "12.000 người được tiếp cận", "Ngoài kế hoạch", "Chỉ cột \"Lỗi\" là lỗi"):
        assert words in " ".join(table.split()), words
    assert "Không đạt" not in table
    assert max(len(line) for line in table.splitlines()) <= 80  # an 80-column screen
    md = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--format", "md", "--lang", "en").output
    assert "| Topic | Channel | Measure |" in md and "## Results by channel" in md and "behind" in md
    assert "| **Total** | **6** |" in md  # sessions in the topic table's total


def test_csv_one_table_per_file(run, dataset, workspace):
    out = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16",
              "--format", "csv", "-o", workspace / "r.csv").output
    names = ["r-targets.csv", "r-topics.csv", "r-channels.csv", "r-log.csv"]
    assert all(name in out for name in names)
    raw = (workspace / "r-topics.csv").read_bytes()
    assert raw.startswith("\ufeff".encode())
    topics = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["Chủ đề"] for r in topics] == ["TTHC — Cải cách thủ tục hành chính",
                                            "CDS — Chính quyền điện tử, chính quyền số", "Tổng cộng"]
    assert topics[0]["Phút nội dung"] == "10.333" and topics[0]["Phút lên sóng"] == "15.167"
    assert topics[2]["Người được tiếp cận"] == "2003"  # no thousands separator
    targets = list(csv.DictReader(io.StringIO((workspace / "r-targets.csv").read_text(encoding="utf-8-sig"))))
    assert targets[0]["Tỷ lệ"] == "16.667"
    people = next(r for r in targets if r["Số đo"] == "người được tiếp cận" and r["Chủ đề"] == "toàn kế hoạch *")
    assert people["Cần đạt trong kỳ"] == "12000"
    log = (workspace / "r-log.csv").read_text(encoding="utf-8-sig")
    assert len(log.strip().splitlines()) == 1 + 20  # Q2 rows of the plan (A1 carries no plan)
    assert "+8490100" not in log and "+84 90* *** 001" in log
    one = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--format", "csv",
              "--table", "channels").output
    rows = list(csv.reader(io.StringIO(one)))
    assert rows[0][:3] == ["Kênh", "Buổi phát", "Buổi trễ"] and rows[1][0] == "Loa: bản tin theo lịch"


def test_xlsx_data_sheets_and_chart(run, dataset, workspace):
    from openpyxl import load_workbook

    out = run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16",
              "--format", "xlsx", "-o", workspace / "bc.xlsx", "--chart", workspace / "bc.png").output
    assert "bc.xlsx" in out and "bc.png" in out
    book = load_workbook(workspace / "bc.xlsx")
    assert book.sheetnames == ["Báo cáo", "Chỉ tiêu", "Chủ đề", "Kênh", "Nhật ký"]
    sheet = book["Chỉ tiêu"]
    header_row = next(r for r in range(1, 12) if sheet.cell(r, 1).value == "Chủ đề")
    headings = [c.value for c in sheet[header_row]]
    assert sheet.cell(header_row, 1).font.bold and sheet.cell(header_row, 1).font.name == "Times New Roman"
    first = {h: c for h, c in zip(headings, sheet[header_row + 1], strict=False)}
    assert (first["Cần đạt trong kỳ"].value, first["Đã đạt"].value) == (24, 4)
    assert first["Tỷ lệ"].value == pytest.approx(4 / 24) and first["Tỷ lệ"].number_format == "0.0%"
    topics = book["Chủ đề"]
    top = next(r for r in range(1, 12) if topics.cell(r, 1).value == "Chủ đề")
    columns = {c.value: c.column for c in topics[top]}
    minutes = topics.cell(top + 1, columns["Phút nội dung"])
    count = topics.cell(top + 1, columns["Buổi phát"])
    assert (minutes.value, minutes.number_format) == (pytest.approx(620 / 60), "0.0")
    assert (count.value, count.number_format) == (4, "0")
    for name in book.sheetnames:
        setup = book[name].page_setup
        assert (setup.orientation, setup.paperSize, setup.fitToWidth, setup.fitToHeight) == ("landscape", 9, 1, 0)
        assert book[name].sheet_properties.pageSetUpPr.fitToPage
        assert book[name].print_title_rows
    log = book["Nhật ký"]
    cells = [c.value for row in log.iter_rows() for c in row if c.value is not None]
    assert "+84 90* *** 001" in cells and not any("+8490100" in str(c) for c in cells)
    png = (workspace / "bc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 800 <= width <= 1400 and 300 <= height <= 1600
    assert not list(workspace.glob(".bc.*"))  # no temp files left beside them


def test_chart_names_topics_channel_commune_and_illustrative_mark(run, dataset, workspace, monkeypatch):
    import matplotlib.axes

    titles, ticks, footnotes = [], [], []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, text, **kw: titles.append(text))
    original_ticks = matplotlib.axes.Axes.set_yticks

    def record_ticks(self, positions, labels=None, **kw):
        ticks.extend(labels or [])
        return original_ticks(self, positions, labels, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_yticks", record_ticks)
    import matplotlib.figure

    original_text = matplotlib.figure.Figure.text
    monkeypatch.setattr(matplotlib.figure.Figure, "text",
                        lambda self, x, y, s, **kw: footnotes.append(s) or original_text(self, x, y, s, **kw))
    run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--chart", workspace / "c.png")
    assert "Xã Phước Hà" in titles[0] and "Xã Phước Nam (XA-02)" in titles[0] and "2023-Q2" in titles[0]
    assert "Cải cách thủ tục hành chính *\nloa truyền thanh: lượt phát" in ticks
    assert "Chính quyền điện tử, chính… *\ntin nhắn SMS: tin nhắn đã gửi" in ticks
    assert not any(label.startswith("TTHC") for label in ticks)
    assert any("minh họa" in text for text in footnotes)
