from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import db_snapshot

PLAN = """\
[plan]
code = "911/KH-UBND"
title = "Kế hoạch thông tin, tuyên truyền CCHC tỉnh Ninh Thuận năm 2023"
issuer = "UBND tỉnh Ninh Thuận"
issued_on = 2023-03-15
period = "2023"
audiences = ["cán bộ, công chức, viên chức", "người dân"]
illustrative_targets = true

[[topics]]
code = "TTHC"
title = "Cải cách thủ tục hành chính"

  [[topics.targets]]
  channel = "loudspeaker"
  metric = "broadcasts"
  amount = 8
  period = "month"

[[topics]]
code = "CDS"
title = "Chính quyền điện tử, chính quyền số"

[[targets]]
channel = "sms"
metric = "sms_sent"
amount = 2000
period = "plan"
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_then_show(run, workspace):
    path = write(workspace, "plan.toml", PLAN)
    out = run("plan", "import", path).output
    assert "911/KH-UBND" in out and "2 chủ đề/topics" in out and "2 chỉ tiêu/targets" in out
    shown = json.loads(run("plan", "show", "911/KH-UBND", "--json").output)
    assert [t["code"] for t in shown["topics"]] == ["TTHC", "CDS"]
    assert shown["period_start"] == "2023-01-01" and shown["period_end"] == "2023-12-31"
    assert {(t["topic"], t["metric"], t["amount"], t["period"]) for t in shown["targets"]} == {
        ("TTHC", "broadcasts", 8.0, "month"), (None, "sms_sent", 2000.0, "plan")}
    text = run("plan", "show", "911/KH-UBND").output
    assert "Cải cách thủ tục hành chính" in text and "8 lượt phát mỗi tháng" in text
    assert "minh họa" in text
    listed = json.loads(run("plan", "list", "--json").output)
    assert listed[0]["code"] == "911/KH-UBND" and listed[0]["topics"] == 2


def test_second_import_refused_unless_replace(run, workspace, app):
    path = write(workspace, "plan.toml", PLAN)
    run("plan", "import", path)
    before = db_snapshot(app)
    result = run("plan", "import", path, ok=False)
    assert "đã có" in result.output and "--replace" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db_snapshot(app) == before
    changed = PLAN.replace("amount = 8", "amount = 10")
    write(workspace, "plan.toml", changed)
    assert "replaced" in run("plan", "import", path, "--replace").output
    shown = json.loads(run("plan", "show", "911/KH-UBND", "--json").output)
    assert {t["amount"] for t in shown["targets"]} == {10.0, 2000.0}


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s.replace('period = "2023"', 'period = "2023'), "TOML"),
        (lambda s: s.replace('metric = "broadcasts"', 'metric = "listens"'), "topics[1].targets[1].metric"),
        (lambda s: s.replace('amount = 8', 'amount = -1'), "topics[1].targets[1].amount"),
        (lambda s: s.replace('code = "CDS"', 'code = "TTHC"'), "duplicate topic code"),
        (lambda s: s.replace('issued_on = 2023-03-15', 'issued_on = "31/02/2023"'), "plan.issued_on"),
        (lambda s: s.replace('period = "2023"', 'period = "năm nay"'), "bad period"),
        (lambda s: s.replace('channel = "sms"', 'channel = "loudspeaker"'), "SMS-only"),
        (lambda s: s + '\n[extra]\nfoo = 1\n', "extra"),
        (lambda s: s.replace('  period = "month"', '  period = "month"\n  station = "NOPE"'), "NOPE"),
    ],
)
def test_bad_plan_refused_with_one_line_and_nothing_written(run, workspace, app, mutation, expected):
    path = write(workspace, "bad.toml", mutation(PLAN))
    before = db_snapshot(app)
    result = run("plan", "import", path, ok=False)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(path) in lines[0] and expected in lines[0]
    assert db_snapshot(app) == before


def test_missing_file(run, workspace):
    result = run("plan", "import", workspace / "nope.toml", ok=False)
    assert "nope.toml" in result.output and "not found" in result.output


def test_replace_keeps_topics_with_content(run, workspace, app):
    from sqlmodel import select

    from broadcaster.models import ContentItem, Topic

    path = write(workspace, "plan.toml", PLAN)
    run("plan", "import", path)
    with app.session() as session:
        topic = session.exec(select(Topic).where(Topic.code == "CDS")).one()
        session.add(ContentItem(title="x", topic_id=topic.id, channels=["loudspeaker"]))
    without_cds = PLAN.split("[[topics]]\ncode = \"CDS\"")[0] + PLAN.split('title = "Chính quyền điện tử, chính quyền số"\n')[1]
    write(workspace, "plan.toml", without_cds)
    before = db_snapshot(app)
    result = run("plan", "import", path, "--replace", ok=False)
    assert "CDS" in result.output
    assert db_snapshot(app) == before
