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
    assert [r["id"] for r in vn] == [r["id"] for r in iso] and len(vn) == 7
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
