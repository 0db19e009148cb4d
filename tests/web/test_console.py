"""The console on the server side: sessions, CSRF, every role rule, the pages and what they write."""

from __future__ import annotations

import html
import io
import re
import socket
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from broadcaster import content, users
from broadcaster.models import Campaign, ContentItem, Schedule, WebUser
from broadcaster.scheduling import wakeup
from broadcaster.users import Role
from broadcaster.web.app import LoginThrottle
from tests.web.conftest import PASSWORDS, TWILIO_TOKEN, Browserless, csrf_of

# Every action and the least role it needs ("any": every signed-in user).
ACTIONS = [
    ("/content/new", {"title": "Tin mới", "topic": "911/KH-UBND:CDS", "text": "Bà con cài VNeID.",
                      "channels": "loudspeaker", "priority": "normal"}, Role.OPERATOR),
    ("/content/1/edit", {"title": "Một cửa (sửa)", "topic": "911/KH-UBND:TTHC", "channels": "loudspeaker",
                         "text": "UBND xã thông báo: bà con làm TTHC tại bộ phận một cửa từ 7h30.",
                         "priority": "normal"}, Role.OPERATOR),
    ("/schedules/add", {"station": "XA-01", "kind": "cron", "cron": "30 11 * * *", "length": "5m",
                        "channel": "loudspeaker"}, Role.OPERATOR),
    ("/schedules/1/pause", {}, Role.OPERATOR),
    ("/content/1/approve", {}, Role.APPROVER),
    ("/content/1/retire", {}, Role.APPROVER),
    ("/sms/1/cancel", {}, Role.APPROVER),
]


def test_no_page_without_a_session(web):
    client = web.test_client()
    for path in ["/", "/log", "/log/download.xlsx", "/content", "/content/1", "/content/1/speech.mp3",
                 "/schedules", "/sms", "/report", "/report/download.xlsx", "/announce"]:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    for path, data, _role in ACTIONS:
        assert client.post(path, data=data).status_code in (400, 403), path


def test_every_route_is_in_the_role_table(web):
    """A new action must say which role it needs (and be tested below)."""
    posted = {rule.rule for rule in web.url_map.iter_rules() if "POST" in rule.methods}
    assert posted == {"/login", "/logout", "/announce", "/content/new", "/content/<int:item_id>/edit",
                      "/content/<int:item_id>/approve", "/content/<int:item_id>/retire",
                      "/content/<int:item_id>/recording", "/schedules/add",
                      "/schedules/<int:schedule_id>/<action>", "/sms/<int:campaign_id>/cancel"}
    for rule in web.url_map.iter_rules():
        view = web.view_functions[rule.endpoint]
        if "POST" in rule.methods and rule.rule not in ("/login", "/logout", "/announce"):
            assert getattr(view, "required_role", None) is not None, rule.rule


@pytest.mark.parametrize("path,data,needed", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_role_rules_are_enforced_on_the_server(signed_in, console_app, path, data, needed):
    if path.startswith("/sms/"):
        _open_campaign(console_app)
    for name, role in [("oanh", Role.OPERATOR), ("duyet", Role.APPROVER), ("quantri", Role.ADMIN)]:
        response = signed_in(name).post(path, data)
        allowed = users.may(role, needed)
        assert (response.status_code in (200, 302)) == allowed, (name, path, response.status_code)
        if not allowed:
            assert response.status_code == 403
            assert "không có quyền" in response.get_data(as_text=True)


def _open_campaign(app) -> int:
    with app.session() as session:
        item = content.get_item(session, 1)
        item.channels = ["loudspeaker", "sms"]
        item.status = "approved"
        session.add(item)
    from broadcaster.sms.campaigns import create_campaign

    with app.session() as session:
        return create_campaign(session, 1, "thon-1", config=app.config).id


def test_a_forged_post_without_the_csrf_token_is_refused_and_changes_nothing(signed_in, console_app):
    approver = signed_in("duyet")
    for data in [{}, {"csrf_token": "forged"}]:
        response = approver.client.post("/content/1/approve", data=data)
        assert response.status_code == 400
        assert "hết hạn hoặc không hợp lệ" in response.get_data(as_text=True)
    with console_app.read_session() as session:
        assert content.get_item(session, 1).status == "draft"
    # another session's token does not work either
    other = signed_in("quantri")
    assert approver.client.post("/content/1/approve", data={"csrf_token": other.token}).status_code == 400
    assert approver.post("/content/1/approve").status_code == 302


def test_login_needs_the_csrf_token_and_is_rate_limited(web):
    client = web.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"username": "duyet", "password": PASSWORDS["duyet"]}).status_code == 400
    for _ in range(5):
        wrong = client.post("/login", data={"username": "duyet", "password": "sai", "csrf_token": token})
        assert wrong.status_code == 401 and "Sai tên đăng nhập" in wrong.get_data(as_text=True)
    blocked = client.post("/login", data={"username": "duyet", "password": PASSWORDS["duyet"], "csrf_token": token})
    assert blocked.status_code == 429  # even the right password, until the window passes


def test_login_throttle_window_passes():
    now = [0.0]
    throttle = LoginThrottle(allowed=2, window_s=60, clock=lambda: now[0])
    throttle.failed("127.0.0.1", "a")
    throttle.failed("127.0.0.1", "a")
    assert throttle.blocked("127.0.0.1", "a") and throttle.blocked("127.0.0.1", "b")  # the address too
    now[0] = 61
    assert not throttle.blocked("127.0.0.1", "a")


def test_a_removed_user_loses_the_session_at_once(signed_in, console_app, run):
    operator = signed_in("oanh")
    assert operator.get("/").status_code == 200
    run("user", "remove", "oanh")
    response = operator.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_user_commands_store_only_an_argon2_hash(run, console_app):
    listed = run("user", "list").output
    assert "oanh" in listed and "approver" in listed
    with console_app.read_session() as session:
        stored = session.exec(select(WebUser).where(WebUser.name == "duyet")).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORDS["duyet"] not in stored.password_hash
    bad = run("user", "add", "xuan", "--role", "operator", "--password-stdin", input="short\n", ok=False)
    assert "ít nhất 8" in bad.output
    dup = run("user", "add", "duyet", "--role", "operator", "--password-stdin", input="longenough\n", ok=False)
    assert "đã có" in dup.output
    run("user", "remove", "duyet")
    assert "duyet" not in run("user", "list").output


def test_approval_records_who_and_when_everywhere(signed_in, console_app, run):
    assert signed_in("duyet").post("/content/1/approve").status_code == 302
    shown = run("content", "show", "1").output
    assert "Duyệt bởi / approved by: duyet" in shown
    page = signed_in("oanh").get("/content/1").get_data(as_text=True)
    assert "duyet" in page and "đã duyệt" in page
    run("content", "approve", "1")  # already approved: the signer stays
    with console_app.read_session() as session:
        assert content.get_item(session, 1).approved_by == "duyet"
    # an operator's edit sends it back to draft and the approval no longer stands
    operator = signed_in("oanh")
    edit = operator.post("/content/1/edit", {"title": "Một cửa (sửa)", "topic": "911/KH-UBND:TTHC",
                                             "text": "Bà con làm thủ tục tại bộ phận một cửa.",
                                             "channels": "loudspeaker", "priority": "normal"})
    assert edit.status_code == 302
    with console_app.read_session() as session:
        item = content.get_item(session, 1)
        assert (item.status, item.approved_by, item.title) == ("draft", None, "Một cửa (sửa)")


def test_the_edit_form_sent_back_unchanged_changes_nothing(signed_in, console_app, run):
    run("content", "edit", "1", "--valid-from", "2026-01-01 06:00", "--valid-until", "2099-12-31", "--sms-text",
        "Làm TTHC tại bộ phận một cửa.", "--approve")
    operator = signed_in("oanh")
    form = operator.get("/content/1/edit").get_data(as_text=True)
    values = {k: html.unescape(v) for k, v in re.findall(r'<input name="(\w+)" value="([^"]*)"', form)}
    assert values["valid_until"] == "2099-12-31 23:59:59"
    text = re.search(r'<textarea name="text"[^>]*>([^<]*)</textarea>', form).group(1)
    topic = re.search(r'<option value="([^"]+)" selected>', form).group(1)
    back = operator.post("/content/1/edit", {**values, "text": html.unescape(text), "topic": topic,
                                             "channels": "loudspeaker", "priority": "normal"})
    assert back.status_code == 302
    assert "Không có gì thay đổi" in operator.get("/content/1").get_data(as_text=True)
    with console_app.read_session() as session:
        assert content.get_item(session, 1).status == "approved"


def test_an_operator_cannot_approve_through_the_add_or_edit_form(signed_in, console_app):
    operator = signed_in("oanh")
    response = operator.post("/content/new", {"title": "Tự duyệt", "topic": "911/KH-UBND:CDS", "text": "Nội dung.",
                                              "channels": "loudspeaker", "approve": "1"})
    assert response.status_code == 403
    with console_app.read_session() as session:
        assert session.exec(select(ContentItem).where(ContentItem.title == "Tự duyệt")).first() is None


def test_bad_content_input_names_the_field_and_writes_nothing(signed_in, console_app):
    response = signed_in("oanh").post("/content/new", {"title": "Sai", "topic": "911/KH-UBND:CDS", "text": "x",
                                                       "channels": "loudspeaker", "valid_from": "2026-13-45"})
    assert response.status_code == 400
    assert "valid-from" in response.get_data(as_text=True)
    with console_app.read_session() as session:
        assert len(content.list_items(session)) == 1


def test_the_twilio_token_never_reaches_a_page(signed_in):
    admin = signed_in("quantri")
    for path in ["/", "/log", "/content", "/content/1", "/content/new", "/schedules", "/sms", "/report",
                 "/announce", "/log/download.csv"]:
        response = admin.get(path)
        assert response.status_code == 200, path
        assert TWILIO_TOKEN not in response.get_data(as_text=True), path


def test_vietnamese_by_default_english_as_a_switch(signed_in):
    approver = signed_in("duyet")
    assert "Hôm nay" in approver.get("/").get_data(as_text=True)
    english = approver.get("/?lang=en")
    assert "Next slots" in english.get_data(as_text=True) and "lang=en" in english.headers["Set-Cookie"]
    assert "Next slots" in approver.get("/").get_data(as_text=True)  # the cookie keeps it


def test_log_downloads_carry_the_filtered_rows(signed_in, console_app, run):
    run("announce", "--text", "Bão số 3 sắp đổ bộ, bà con chằng chống nhà cửa.")
    approver = signed_in("duyet")
    page = approver.get("/log?channel=loudspeaker").get_data(as_text=True)
    assert "cli:" in page  # the announcer, signed off
    book = load_workbook(io.BytesIO(approver.get("/log/download.xlsx?channel=loudspeaker").data))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][0] == "Số" and len(rows) == 2 and rows[1][3] == "đã phát"
    assert approver.get("/log/download.xlsx?channel=sms").status_code == 200
    sms_rows = list(load_workbook(io.BytesIO(approver.get("/log/download.xlsx?channel=sms").data))
                    .active.iter_rows(values_only=True))
    assert len(sms_rows) == 1
    text = approver.get("/log/download.csv").data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Số,Thời điểm") and "Bão" not in text  # titles, not texts
    bad = approver.get("/log?since=32/13/2026")
    assert bad.status_code == 400


def test_schedules_pause_resume_and_add(signed_in, console_app):
    operator = signed_in("oanh")
    assert operator.post("/schedules/1/pause").status_code == 302
    with console_app.read_session() as session:
        assert session.get(Schedule, 1).paused
    assert "tạm dừng" in operator.get("/schedules").get_data(as_text=True)
    assert operator.post("/schedules/1/resume").status_code == 302
    added = operator.post("/schedules/add", {"station": "XA-01", "kind": "at", "at": "2099-01-01 06:00",
                                             "length": "10m", "channel": "loudspeaker", "name": "Tết"})
    assert added.status_code == 302
    with console_app.read_session() as session:
        schedule = session.exec(select(Schedule).where(Schedule.name == "Tết")).one()
        assert schedule.length_s == 600 and schedule.at is not None
    wrong = operator.post("/schedules/add", {"station": "XA-01", "kind": "cron", "cron": "61 * * * *"})
    assert wrong.status_code == 400


def test_sms_page_counts_and_an_approver_cancels_a_held_campaign(signed_in, console_app):
    campaign_id = _open_campaign(console_app)
    approver = signed_in("duyet")
    assert "pending 2" in approver.get("/sms").get_data(as_text=True)
    assert approver.post(f"/sms/{campaign_id}/cancel").status_code == 302
    with console_app.read_session() as session:
        assert session.get(Campaign, campaign_id).status == "cancelled"
    assert "cancelled 2" in approver.get("/sms").get_data(as_text=True)


def test_report_page_chart_and_downloads(signed_in):
    approver = signed_in("duyet")
    page = approver.get("/report?plan=911/KH-UBND&period=2023").get_data(as_text=True)
    assert "Kết quả so với chỉ tiêu" in page and "/report/chart.png" in page and "911/KH-UBND" in page
    chart = approver.get("/report/chart.png?plan=911/KH-UBND&period=2023")
    assert chart.status_code == 200 and chart.data[:8] == b"\x89PNG\r\n\x1a\n"
    xlsx = approver.get("/report/download.xlsx?plan=911/KH-UBND&period=2023")
    book = load_workbook(io.BytesIO(xlsx.data))
    assert "Nhật ký" in book.sheetnames
    docx = approver.get("/report/download.docx?plan=911/KH-UBND")
    assert docx.data[:2] == b"PK"


def _tone(path: Path, seconds: float = 1.5) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-ar", "22050", str(path)], check=True)
    return path


def test_upload_a_recording_checked_by_ffprobe_and_stored_outside_the_web_root(signed_in, console_app,
                                                                                tmp_path):
    operator = signed_in("oanh")
    fake = operator.post("/content/1/recording", {"lang": "th",
                                                  "recording": (io.BytesIO(b"not audio at all"), "ghi-am.mp3")},
                         content_type="multipart/form-data")
    assert fake.status_code == 400 and "không phải tệp âm thanh" in fake.get_data(as_text=True)
    script = operator.post("/content/1/recording", {"recording": (io.BytesIO(b"#!/bin/sh"), "x.sh")},
                           content_type="multipart/form-data")
    assert script.status_code == 400
    tone = _tone(tmp_path / "tone.wav")
    good = operator.post("/content/1/recording", {"lang": "th", "recording": (tone.open("rb"), "thai.wav")},
                         content_type="multipart/form-data")
    assert good.status_code == 302
    with console_app.read_session() as session:
        row = content.item_texts(session, content.get_item(session, 1))["th"]
    stored = Path(row.audio_path)
    assert stored.parent == console_app.config.recordings_dir and stored.read_bytes() == tone.read_bytes()
    assert not list((console_app.config.data_dir / "web-uploads").iterdir())
    served = operator.get("/content/1/recording/th")
    assert served.status_code == 200 and served.data == tone.read_bytes()
    assert operator.get("/static/../recordings/1_th.wav").status_code == 404


def test_upload_size_limit(signed_in, console_app):
    operator = signed_in("oanh")
    limit = int(console_app.config.web.max_upload_mb) * 1024 * 1024
    response = operator.post("/content/1/recording", {"recording": (io.BytesIO(b"\0" * (limit + 1)), "big.wav")},
                             content_type="multipart/form-data")
    assert response.status_code == 413


def test_listen_to_the_rendered_speech(signed_in):
    response = signed_in("duyet").get("/content/1/speech.mp3")
    assert response.status_code == 200 and response.mimetype == "audio/mpeg"
    assert response.data[:3] == b"ID3" or response.data[0] == 0xFF
    page = signed_in("duyet").get("/content/1").get_data(as_text=True)
    assert '<audio id="speech"' in page


def test_announcement_needs_the_confirmation_step(signed_in, console_app, workspace):
    operator = signed_in("oanh")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon_socket:  # where a daemon would listen
        with wakeup._address(wakeup.socket_path(console_app.config)) as address:
            daemon_socket.bind(address)
        first = operator.post("/announce", {"text": "Lũ quét ở thôn 2, bà con tránh xa bờ suối.",
                                            "stations": "XA-01"})
        daemon_socket.settimeout(5)
        assert daemon_socket.recv(64) == wakeup.GET_READY  # the audio gets ready while the operator reads
    wakeup.socket_path(console_app.config).unlink()
    assert first.status_code == 200 and 'name="confirmed" value="1"' in first.get_data(as_text=True)
    with console_app.read_session() as session:
        assert session.exec(select(ContentItem).where(ContentItem.priority == "emergency")).first() is None
    empty = operator.post("/announce", {"text": " ", "stations": "XA-01", "confirmed": "1"})
    assert empty.status_code == 400
    sent = operator.post("/announce", {"text": "Lũ quét ở thôn 2, bà con tránh xa bờ suối.", "stations": "XA-01",
                                       "confirmed": "1"})
    assert sent.status_code == 302 and "/log?item=" in sent.headers["Location"]
    with console_app.read_session() as session:
        item = session.exec(select(ContentItem).where(ContentItem.priority == "emergency")).one()
    assert (item.announced_by, item.approved_by) == ("oanh", "oanh")
    drops = list((workspace / "drop").glob("*"))
    assert drops, "no daemon runs: the announcement aired directly into the drop folder"
    log_page = operator.get(sent.headers["Location"]).get_data(as_text=True)
    assert "oanh (khẩn" in log_page and "đã phát" in log_page


def test_anonymous_session_cannot_reach_a_route_by_a_crafted_next(web):
    client = web.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=//evil.example/", data={"username": "oanh", "password": PASSWORDS["oanh"],
                                                                "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_browserless_helper_posts_as_the_forms_do(web):
    anonymous = Browserless(web, None)
    assert anonymous.post("/content/1/approve").status_code == 403


def test_a_change_in_the_console_pokes_the_daemon(signed_in, console_app):
    from broadcaster.scheduling.wakeup import Wakeup

    wakeup = Wakeup(console_app.config)  # what a running daemon listens with
    wakeup.listen()
    try:
        operator = signed_in("oanh")
        wakeup.wait(0.5)  # the sign-in's own poke, if it is still on its way
        operator.get("/schedules")
        assert wakeup.wait(0.3) is False  # reading a page tells the daemon nothing
        assert operator.post("/schedules/1/pause").status_code == 302
        assert wakeup.wait(5.0) is True  # the pause does
    finally:
        wakeup.close()
