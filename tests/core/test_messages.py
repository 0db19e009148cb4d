"""Vietnamese everywhere a person reads: pydantic errors, misspelt keys, dates typed the Vietnamese way."""

from __future__ import annotations

import json

from tests.core.test_plans import PLAN, write
from tests.reports.conftest import dataset  # noqa: F401 - the shared delivery log, used as a fixture


def test_a_misspelt_enum_in_a_plan_is_one_bilingual_line(run, workspace):
    path = write(workspace, "plan.toml", PLAN.replace('channel = "loudspeaker"', 'channel = "loa"'))
    line = run("plan", "import", path, ok=False).output.strip()
    assert len(line.splitlines()) == 1
    assert "[topics[1].targets[1].channel]" in line
    assert "giá trị 'loa' không hợp lệ, chọn / invalid value, choose: 'loudspeaker', 'sms', 'any'" in line


def test_a_misspelt_key_is_named_not_the_missing_one(run, workspace):
    path = write(workspace, "plan.toml", PLAN.replace('metric = "broadcasts"', 'metrc = "broadcasts"'))
    line = run("plan", "import", path, ok=False).output.strip()
    assert "[topics[1].targets[1].metrc]" in line and "unknown field" in line and "did you mean: metric" in line
    assert "missing" not in line


def test_a_misspelt_content_key_is_named(run, workspace):
    run("plan", "import", write(workspace, "plan.toml", PLAN))
    content = write(workspace, "c.toml", '[[items]]\ntitle = "A"\ntopic = "TTHC"\ntext = "x"\npriorty = "normal"\n')
    line = run("content", "import", content, ok=False).output.strip()
    assert "[items[1].priorty]" in line and "unknown field" in line


def test_vietnamese_dates_everywhere(run, dataset, workspace):  # noqa: F811 - the fixture
    iso = json.loads(run("log", "--since", "2023-05-05 08:00", "--until", "2023-05-31", "--json").output)
    vn = json.loads(run("log", "--since", "05/05/2023 08:00", "--until", "31/5/2023", "--json").output)
    assert [r["id"] for r in vn] == [r["id"] for r in iso] and len(vn) == 9  # C1 (8 SMS) and A1
    report_iso = json.loads(run("report", "--plan", "911/KH-UBND", "--as-of", "2023-06-30", "--format",
                                "json").output)
    report_vn = json.loads(run("report", "--plan", "911/KH-UBND", "--as-of", "30/06/2023", "--format",
                               "json").output)
    assert report_vn["as_of"] == report_iso["as_of"]
    run("schedule", "add", "--station", "XA-01", "--at", "24/12/2030 6h30")
    listed = json.loads(run("schedule", "list", "--json").output)
    assert listed[0]["at"].startswith("2030-12-24T06:30:00+07:00")
    bad = run("log", "--since", "31/02/2023 06:00", ok=False).output
    assert "DD/MM/YYYY HH:MM" in bad


def test_log_csv_is_station_time_with_offset(run, dataset):  # noqa: F811 - the fixture
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(run("log", "--csv", "--since", "01/04/2023", "--until", "01/04/2023")
                                           .output)))
    assert [(r["created_at"], r["created_at_utc"]) for r in rows] == \
        [("2023-04-01T03:00:00+07:00", "2023-03-31T20:00:00+00:00")]


def test_content_show_without_topic_and_import_help(run, workspace):
    from broadcaster.app import App
    from broadcaster.models import ContentItem, ContentText

    app = App.load(None)
    with app.session() as session:
        item = ContentItem(title="Bão số 3", channels=["loudspeaker"], priority="emergency", repeat=2)
        session.add(item)
        session.flush()
        session.add(ContentText(item_id=item.id, lang="vi", text="UBND xã đề nghị bà con chằng chống nhà cửa."))
        item_id = item.id
    shown = run("content", "show", item_id).output
    assert "None" not in shown and "Chủ đề / topic: (không có" in shown
    spoken = run("normalize", "--item", item_id).output
    assert "Ủy ban nhân dân xã đề nghị bà con chằng chống nhà cửa" in spoken.splitlines()
    assert "docs/content-format.md" in run("content", "import", "--help").output
    assert "one of them" in run("normalize", "x", "--item", item_id, ok=False).output


def test_a_plan_out_of_its_period_warns_in_one_line(run, workspace):
    ended = run("plan", "import", write(workspace, "plan.toml", PLAN)).output  # the 2023 plan, imported later
    assert [line for line in ended.splitlines() if "ended on 31/12/2023" in line][0].startswith("Cảnh báo: kế hoạch")
    added = run("content", "add", "--title", "A", "--topic", "TTHC", "--text", "x", "--channel", "loudspeaker")
    assert sum("ended on 31/12/2023" in line for line in added.output.splitlines()) == 1
    future = write(workspace, "future.toml", PLAN.replace('code = "911/KH-UBND"', 'code = "1/KH"')
                   .replace('period = "2023"', 'period = "2090"'))
    assert "starts on 01/01/2090" in run("plan", "import", future).output
    current = write(workspace, "now.toml", PLAN.replace('code = "911/KH-UBND"', 'code = "2/KH"')
                    .replace('period = "2023"', 'period = "2020-2099"'))
    assert "warning" not in run("plan", "import", current).output


def test_log_csv_to_a_file_opens_in_a_spreadsheet(run, dataset, workspace):  # noqa: F811 - the fixture
    import csv

    out = workspace / "nhat-ky.csv"
    assert "written:" in run("log", "--csv", "-o", out, "--limit", "0").output
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(rows) == 24 and all(r["created_at"].endswith("+07:00") for r in rows)
    assert "-o needs --csv or --json" in run("log", "-o", out, ok=False).output
    as_json = workspace / "log.json"
    run("log", "--json", "-o", as_json)
    assert len(json.loads(as_json.read_text(encoding="utf-8"))) == 24


def test_scheduling_against_an_ended_plan_warns_in_one_line(run, workspace):
    from pathlib import Path

    run("plan", "import", Path(__file__).resolve().parents[2] / "examples" / "plans" / "ninh-thuan-2023.toml")
    out = run("schedule", "add", "--station", "XA-01", "--cron", "30 5 * * *", "--topic", "911/KH-UBND:TTHC").output
    warning = [line for line in out.splitlines() if "Cảnh báo" in line]
    assert len(warning) == 1 and "911/KH-UBND" in warning[0] and "ended on 31/12/2023" in warning[0]
    plain = run("schedule", "add", "--station", "XA-01", "--cron", "0 17 * * *").output  # no plan named: no warning
    assert "Cảnh báo" not in plain
