from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from broadcaster.contacts import opt_out, recipients
from broadcaster.models import Contact, ContactGroup, ContactGroupMember
from tests.conftest import db_snapshot

GOOD = """\
phone,name,village,groups
0912 345 678,Lò Văn A,Bản Na Lay,Hội phụ nữ
+84912345678,,Bản Khác,Thanh niên;Hội phụ nữ
0987.654.321,Lò Thị B,Bản Na Lay,
(+84) 333-444-555,Tòng Văn C,,Thanh niên
"""

WITH_BAD = """\
phone,name,village,groups
0912 345 678,Lò Văn A,Bản Na Lay,Hội phụ nữ
024 3823 4567,Trụ sở UBND,,
0987.654.321,Lò Thị B,Bản Na Lay,
không có,Người X,,
,Người Y,,Thanh niên
091234,Người Z,,
"""


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp / name
    path.write_text(text, encoding=encoding)
    return path


def contacts_json(run, *args) -> list[dict]:
    return json.loads(run("contacts", "list", "--json", *args).output)


def groups_json(run) -> dict[str, dict]:
    return {g["name"]: g for g in json.loads(run("contacts", "groups", "--json").output)}


def test_import_normalises_and_merges_the_same_number(run, workspace, app):
    out = run("contacts", "import", write(workspace, "c.csv", GOOD)).output
    assert "3 mới / new, 0 cập nhật / updated, 0 không đổi / unchanged" in out
    with app.session() as session:
        rows = {c.phone: c for c in session.exec(select(Contact)).all()}
        assert set(rows) == {"+84912345678", "+84987654321", "+84333444555"}
        first = rows["+84912345678"]
        assert (first.name, first.village) == ("Lò Văn A", "Bản Na Lay")  # first non-empty wins
        groups = {g.name for g in session.exec(
            select(ContactGroup).join(ContactGroupMember).where(ContactGroupMember.contact_id == first.id)).all()}
        assert groups == {"Hội phụ nữ", "Thanh niên"}
        # no automatic group per village
        assert {g.name for g in session.exec(select(ContactGroup)).all()} == {"Hội phụ nữ", "Thanh niên"}


def test_reimport_changes_nothing(run, workspace, app):
    path = write(workspace, "c.csv", GOOD)
    run("contacts", "import", path)
    before = db_snapshot(app)
    out = run("contacts", "import", path).output
    assert "0 mới / new, 0 cập nhật / updated, 3 không đổi / unchanged" in out
    assert db_snapshot(app) == before


def test_second_file_updates_and_adds_groups_without_removing(run, workspace, app):
    run("contacts", "import", write(workspace, "c.csv", GOOD))
    second = "sđt,họ tên,thôn\n0912345678,Lò Văn An,\n0988 111 222,Mới,Bản Mới\n"
    out = run("contacts", "import", write(workspace, "d.csv", second), "--group", "Toàn xã").output
    assert "1 mới / new, 1 cập nhật / updated, 0 không đổi / unchanged" in out
    found = {c["name"]: c for c in contacts_json(run, "--show-numbers")}
    assert found["Lò Văn An"]["village"] == "Bản Na Lay"  # an empty cell keeps the old value
    assert set(found["Lò Văn An"]["groups"]) == {"Hội phụ nữ", "Thanh niên", "Toàn xã"}
    assert found["Mới"]["groups"] == ["Toàn xã"]


def test_vietnamese_headers_bom_semicolons_and_extra_columns(run, workspace):
    text = "STT;Số điện thoại;Họ và tên;Thôn / bản;Nhóm\n1;0912 345 678;Lò Văn A;Bản Na;\"Hội phụ nữ;Thanh niên\"\n"
    path = workspace / "excel.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    out = run("contacts", "import", path).output
    assert "STT" in out and "1 mới / new" in out
    [contact] = contacts_json(run)
    assert contact["name"] == "Lò Văn A" and contact["village"] == "Bản Na"
    assert set(contact["groups"]) == {"Hội phụ nữ", "Thanh niên"}


def test_bad_rows_are_all_listed_and_nothing_is_imported(run, workspace, app):
    path = write(workspace, "bad.csv", WITH_BAD)
    before = db_snapshot(app)
    result = run("contacts", "import", path, ok=False)
    lines = result.output.strip().splitlines()
    for line in (3, 5, 6, 7):
        assert sum(f"bad.csv:{line} " in text for text in lines) == 1, result.output
    assert not any("bad.csv:2 " in text or "bad.csv:4 " in text for text in lines)
    assert len(lines) == 5 and "4" in lines[-1] and "--skip-invalid" in lines[-1]
    assert "mobile" in next(text for text in lines if "bad.csv:3 " in text)
    assert "3823" not in result.output  # even a bad number is masked
    assert db_snapshot(app) == before


def test_skip_invalid_imports_the_good_rows(run, workspace, app):
    path = write(workspace, "bad.csv", WITH_BAD)
    result = run("contacts", "import", path, "--skip-invalid")
    assert "2 mới / new" in result.output and "bad.csv:7 " in result.output
    assert {c["phone"] for c in contacts_json(run, "--show-numbers")} == {"+84912345678", "+84987654321"}


def test_missing_phone_column_and_missing_file(run, workspace, app):
    before = db_snapshot(app)
    result = run("contacts", "import", write(workspace, "x.csv", "name,village\nA,B\n"), ok=False)
    assert "x.csv:1" in result.output and "phone" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run("contacts", "import", workspace / "nope.csv", ok=False)
    assert "nope.csv" in result.output and "not found" in result.output
    assert db_snapshot(app) == before


def test_list_masks_numbers_unless_asked(run, workspace):
    run("contacts", "import", write(workspace, "c.csv", GOOD))
    table = run("contacts", "list").output
    as_json = run("contacts", "list", "--json").output
    for out in (table, as_json):
        assert "+84 91* *** 678" in out
        for full in ("912345678", "0912 345 678", "987654321", "333444555"):
            assert full not in out
    assert "+84912345678" in run("contacts", "list", "--show-numbers").output
    only = contacts_json(run, "--group", "Thanh niên")
    assert len(only) == 2


def test_opt_out_is_excluded_from_recipients_and_survives_reimport(run, workspace, app):
    path = write(workspace, "c.csv", GOOD)
    run("contacts", "import", path)
    out = run("contacts", "opt-out", "0912.345.678", "--reason", "gọi điện xin dừng").output
    assert "+84 91* *** 678" in out and "912345678" not in out
    with app.session() as session:
        phones = [c.phone for c in recipients(session, "Thanh niên")]
    assert phones == ["+84333444555"]
    run("contacts", "import", path)
    opted = contacts_json(run, "--opted-out", "--show-numbers")
    assert [c["phone"] for c in opted] == ["+84912345678"]
    assert opted[0]["opt_out_reason"] == "gọi điện xin dừng"
    assert groups_json(run)["Thanh niên"] == {"name": "Thanh niên", "members": 2, "reachable": 1, "opted_out": 1}
    run("contacts", "opt-in", "+84912345678")
    with app.session() as session:
        assert len(recipients(session, "Thanh niên")) == 2


def test_opt_out_unknown_number_creates_an_opted_out_contact(run, workspace, app):
    run("contacts", "opt-out", "0911 000 111", "--reason", "x")
    with app.session() as session:
        contact = session.exec(select(Contact)).one()
        assert contact.phone == "+84911000111" and contact.opted_out_at is not None
        # a second opt-out keeps the first date
        first = contact.opted_out_at
        again, changed = opt_out(session, "+84911000111", "y")
        assert not changed and again.opted_out_at == first and again.opt_out_reason == "x"
    result = run("contacts", "opt-out", "abc", "--reason", "x", ok=False)
    assert len(result.output.strip().splitlines()) == 1


def test_import_optouts_plain_list_and_csv(run, workspace, app):
    run("contacts", "import", write(workspace, "c.csv", GOOD))
    plain = write(workspace, "stop.txt", "# từ tổng đài\n0912 345 678\n\n0900 000 001\n")
    out = run("contacts", "import-optouts", plain).output
    assert "1 từ chối mới / newly opted out, 1 số mới" in out
    table = write(workspace, "stop.csv", "sđt,lý do\n0987654321,không muốn nhận\n0912345678,\n")
    out = run("contacts", "import-optouts", table).output
    assert "1 từ chối mới" in out and "1 đã từ chối từ trước" in out
    opted = {c["phone"]: c for c in contacts_json(run, "--opted-out", "--show-numbers")}
    assert set(opted) == {"+84912345678", "+84900000001", "+84987654321"}
    assert opted["+84987654321"]["opt_out_reason"] == "không muốn nhận"
    with app.session() as session:
        assert [c.phone for c in recipients(session, "Thanh niên")] == ["+84333444555"]


def test_import_optouts_is_all_or_nothing(run, workspace, app):
    run("contacts", "import", write(workspace, "c.csv", GOOD))
    before = db_snapshot(app)
    path = write(workspace, "stop.txt", "0912 345 678\nsai số\n0987654321\n12\n")
    result = run("contacts", "import-optouts", path, ok=False)
    assert "stop.txt:2:" in result.output and "stop.txt:4:" in result.output
    assert "stop.txt:1:" not in result.output and "stop.txt:3:" not in result.output
    assert db_snapshot(app) == before


def test_recipients_unknown_group(run, workspace, app):
    import pytest

    from broadcaster.errors import NotFoundError

    with app.session() as session, pytest.raises(NotFoundError):
        recipients(session, "Không có")
    result = run("contacts", "list", "--group", "Không có", ok=False)
    assert "Không có" in result.output


def test_import_in_one_call_merges_repeated_numbers_and_counts_like_one_row_at_a_time(app):
    from broadcaster.contacts import ContactRow, import_contacts

    with app.session() as session:
        first = import_contacts(session, [ContactRow("+84912000001", 2, name="A", groups=["Thôn 1"]),
                                          ContactRow("+84912000001", 3, village="Bản Na", groups=["Thôn 2"]),
                                          ContactRow("+84912000002", 4)], ["Xã"])
    assert (first.new, first.updated, first.unchanged) == (2, 1, 0)
    assert first.groups_created == ["Thôn 1", "Xã", "Thôn 2"]
    with app.session() as session:
        opt_out(session, "+84912000002", "xin dừng")
    with app.session() as session:
        again = import_contacts(session, [ContactRow("+84912000001", 2, name="A"),
                                          ContactRow("+84912000002", 3, name="B", groups=["Thôn 1"])])
        assert (again.new, again.updated, again.unchanged) == (0, 1, 1) and again.groups_created == []
        contacts = {c.phone: c for c in session.exec(select(Contact)).all()}
    assert (contacts["+84912000001"].name, contacts["+84912000001"].village) == ("A", "Bản Na")
    assert contacts["+84912000002"].name == "B" and contacts["+84912000002"].opted_out_at is not None
    with app.session() as session:
        assert [c.phone for c in recipients(session, "Thôn 1")] == ["+84912000001"]
        assert sorted(groups_of(session)) == [("+84912000001", ["Thôn 1", "Thôn 2", "Xã"]),
                                              ("+84912000002", ["Thôn 1", "Xã"])]


def groups_of(session):
    from broadcaster.contacts import contact_groups

    phones = {c.id: c.phone for c in session.exec(select(Contact)).all()}
    return [(phones[cid], sorted(names)) for cid, names in contact_groups(session).items()]
