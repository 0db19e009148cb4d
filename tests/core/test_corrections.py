"""Correcting what was typed: content edit, plan remove, contacts edit/remove, station edit/remove."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from broadcaster.models import (
    Bulletin,
    Contact,
    ContactGroupMember,
    ContentItem,
    Delivery,
    Plan,
    Schedule,
    Station,
    Topic,
)
from broadcaster.timeutil import utcnow
from tests.conftest import db_snapshot
from tests.core.test_plans import PLAN, write


@pytest.fixture
def planned(run, workspace):
    run("plan", "import", write(workspace, "plan.toml", PLAN))
    return workspace


def add_item(run, *args) -> int:
    result = run("content", "add", "--title", "Dịch vụ công trựctuyến", "--topic", "TTHC",
                 "--text", "Bà con nộp hồ sơ trực tuyến.", *args)
    return int(result.output.strip().splitlines()[0])


def shown(run, ident: int) -> dict:
    return json.loads(run("content", "show", ident, "--json").output)


# ------------------------------------------------------------------ content edit

def test_edit_fixes_a_typo_and_an_approved_item_returns_to_draft(run, planned, app):
    ident = add_item(run, "--approve")
    before = shown(run, ident)
    result = run("content", "edit", ident, "--title", "Dịch vụ công trực tuyến", "--valid-until", "31/07/2023")
    assert "tiêu đề/title: Dịch vụ công trựctuyến → Dịch vụ công trực tuyến" in result.output
    assert "hết hiệu lực/valid until: (trống/none) → 2023-07-31 23:59" in result.output
    assert "đã duyệt/approved → nháp/draft" in result.output
    assert f"broadcaster content approve {ident}" in result.output
    after = shown(run, ident)
    assert after["title"] == "Dịch vụ công trực tuyến"
    assert after["status"] == "draft"
    assert after["valid_until"] == "2023-07-31 23:59"
    assert after["updated_at"] > before["updated_at"]


def test_edit_text_topic_channels_and_approve(run, planned, app):
    ident = add_item(run, "--approve")
    result = run("content", "edit", ident, "--text", "Từ 1/7 nộp hồ sơ trên Cổng dịch vụ công.", "--topic", "CDS",
                 "--channel", "loudspeaker", "--priority", "priority", "--repeat", "2", "--approve")
    assert "chủ đề/topic: 911/KH-UBND:TTHC → 911/KH-UBND:CDS" in result.output
    assert "kênh/channels: loudspeaker, sms → loudspeaker" in result.output
    assert "trạng thái" not in result.output  # stays approved
    data = shown(run, ident)
    assert data["texts"]["vi"]["text"] == "Từ 1/7 nộp hồ sơ trên Cổng dịch vụ công."
    assert (data["topic"], data["channels"], data["priority"], data["repeat"], data["status"]) == \
        ("CDS", ["loudspeaker"], "priority", 2, "approved")


def test_edit_with_nothing_new_changes_nothing(run, planned, app):
    ident = add_item(run, "--approve")
    snapshot = db_snapshot(app)
    result = run("content", "edit", ident, "--title", "Dịch vụ công trựctuyến")
    assert "nothing changed" in result.output
    assert db_snapshot(app) == snapshot


@pytest.mark.parametrize("args, expected", [
    (["--repeat", "0"], "[--repeat]"),
    (["--topic", "TTHX"], "gần giống / did you mean: TTHC"),
    (["--title", "  "], "[--title]"),
    (["--valid-from", "31/07/2023", "--valid-until", "01/07/2023"], "valid_until must be after valid_from"),
    (["--channel", "sms", "--sms-text", "x" * 1601], "SMS body too long"),
])
def test_bad_edit_is_one_line_and_changes_nothing(run, planned, app, args, expected):
    ident = add_item(run)
    snapshot = db_snapshot(app)
    result = run("content", "edit", ident, *args, ok=False)
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db_snapshot(app) == snapshot


def test_edit_clears_sms_text_and_unknown_item(run, planned, app):
    ident = add_item(run, "--sms-text", "Nộp hồ sơ trực tuyến")
    run("content", "edit", ident, "--sms-text", "")
    assert shown(run, ident)["sms_text"] is None
    assert "no content item 999" in run("content", "edit", 999, "--title", "x", ok=False).output


# ------------------------------------------------------------------ plan remove

def _log_delivery(app, item_id: int) -> None:
    with app.session() as session:
        item = session.get(ContentItem, item_id)
        topic = session.get(Topic, item.topic_id)
        session.add(Delivery(channel="loudspeaker", status="played", plan_id=topic.plan_id, topic_id=topic.id,
                             item_id=item.id, duration_s=30.0))


def test_plan_remove_refused_while_used_then_forced(run, planned, app):
    aired = add_item(run, "--approve")
    unused = add_item(run)
    _log_delivery(app, aired)
    snapshot = db_snapshot(app)
    refused = run("plan", "remove", "911/KH-UBND", ok=False)
    assert "2 content items and 1 logged deliveries" in refused.output and "--force" in refused.output
    assert db_snapshot(app) == snapshot

    result = run("plan", "remove", "911/KH-UBND", "--force")
    assert "plan removed: 911/KH-UBND — 2 chủ đề/topics, 2 chỉ tiêu/targets" in result.output
    assert "1 đã xóa/removed, 1 giữ lại" in result.output
    with app.read_session() as session:
        assert session.exec(select(Plan)).all() == []
        assert session.get(ContentItem, unused) is None
        kept = session.get(ContentItem, aired)
        assert kept.status == "retired" and kept.title.startswith("[911/KH-UBND:TTHC] ")
    log = json.loads(run("log", "--json").output)
    assert [(row["item_id"], row["item_title"], row["status"]) for row in log] == \
        [(aired, "[911/KH-UBND:TTHC] Dịch vụ công trựctuyến", "played")]


def test_plan_remove_unused_and_misspelt(run, planned, app):
    assert "did you mean: 911/KH-UBND" in run("plan", "remove", "911/KH-UBDN", ok=False).output
    run("plan", "remove", "911/KH-UBND")
    assert json.loads(run("plan", "list", "--json").output) == []
    run("plan", "import", planned / "plan.toml")  # the right file can be imported again


# ------------------------------------------------------------------ contacts

def test_contacts_edit_number_name_and_groups(run, workspace, app):
    csv = write(workspace, "c.csv", "phone,name,village,groups\n0912345678,Lo Van A,Bản Na,Bản Na;Hội phụ nữ\n")
    run("contacts", "import", csv)
    result = run("contacts", "edit", "0912 345 678", "--phone", "0912345679", "--name", "Lò Văn A",
                 "--add-group", "Đoàn thanh niên", "--remove-group", "Hội phụ nữ")
    assert "số/phone: +84 91* *** 678 → +84 91* *** 679" in result.output
    assert "họ tên/name: Lo Van A → Lò Văn A" in result.output
    assert "nhóm mới / new groups: Đoàn thanh niên" in result.output
    assert "bỏ khỏi nhóm / removed from: Hội phụ nữ" in result.output
    assert "0912345679" not in result.output  # masked
    rows = json.loads(run("contacts", "list", "--json", "--show-numbers").output)
    assert [(r["phone"], r["name"], sorted(r["groups"])) for r in rows] == \
        [("+84912345679", "Lò Văn A", ["Bản Na", "Đoàn thanh niên"])]
    bad = run("contacts", "edit", "0912345679", "--remove-group", "Hội phụ nữ", ok=False)
    assert "not in group 'Hội phụ nữ'" in bad.output


def test_contacts_remove_keeps_opt_outs_and_the_log(run, workspace, app):
    csv = write(workspace, "c.csv", "phone,name,groups\n0912345678,A,X\n0987654321,B,X\n")
    run("contacts", "import", csv)
    with app.session() as session:
        contact = session.exec(select(Contact).where(Contact.phone == "+84912345678")).one()
        session.add(Delivery(channel="sms", status="sent", contact_id=contact.id, recipient=contact.phone))
    run("contacts", "opt-out", "0987654321", "--reason", "gọi điện")
    assert "opted out" in run("contacts", "remove", "0987654321", ok=False).output
    assert "contact removed: +84 91* *** 678" in run("contacts", "remove", "0912345678").output
    with app.read_session() as session:
        assert [c.phone for c in session.exec(select(Contact)).all()] == ["+84987654321"]
        assert len(session.exec(select(ContactGroupMember)).all()) == 1
        assert session.exec(select(Delivery.recipient)).all() == ["+84912345678"]
    assert "number not in contacts" in run("contacts", "remove", "0912345678", ok=False).output


# ------------------------------------------------------------------ stations

def test_station_edit_prints_what_changed(run, workspace, app):
    result = run("station", "edit", "XA-01", "--name", "Đài xã Phước Hà", "--listeners", "1200",
                 "--drop-dir", workspace / "drop2")
    assert "name: Xã Phước Hà → Đài xã Phước Hà" in result.output
    assert "listeners: (trống/none) → 1200" in result.output
    assert "drop_dir:" in result.output
    data = json.loads(run("station", "list", "--json").output)[0]
    assert (data["name"], data["listeners"], data["options"]["drop_dir"]) == \
        ("Đài xã Phước Hà", 1200, str(workspace / "drop2"))
    snapshot = db_snapshot(app)
    assert "[timezone]" in run("station", "edit", "XA-01", "--timezone", "Asia/Hanoii", ok=False).output
    assert "[url]" in run("station", "edit", "XA-01", "--player", "icecast", ok=False).output
    assert db_snapshot(app) == snapshot


def test_station_edit_masks_icecast_password(run, workspace, app):
    result = run("station", "edit", "XA-01", "--player", "icecast", "--url", "icecast://source:hemmelig@h:8000/m")
    assert "hemmelig" not in result.output and "source:***@h" in result.output


def test_station_remove_refused_while_used(run, workspace, app):
    run("station", "add", "XA-02", "--name", "Thôn 2", "--drop-dir", workspace / "d2")
    run("schedule", "add", "--station", "XA-02", "--cron", "30 5 * * *")
    assert "did you mean: XA-02" in run("station", "remove", "XA-03", ok=False).output
    refused = run("station", "remove", "XA-02", ok=False)
    assert "still has schedules" in refused.output
    assert "1 lịch phát/schedules" in run("station", "remove", "XA-02", "--force").output
    with app.read_session() as session:
        assert [s.code for s in session.exec(select(Station)).all()] == ["XA-01"]
        assert session.exec(select(Schedule)).all() == []
    with app.session() as session:
        station = session.exec(select(Station)).one()
        session.add(Bulletin(station_id=station.id, slot_time=utcnow() - timedelta(days=1), status="played"))
    snapshot = db_snapshot(app)
    assert "delivery log" in run("station", "remove", "XA-01", "--force", ok=False).output
    assert db_snapshot(app) == snapshot
