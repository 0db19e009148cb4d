"""``broadcaster sms …`` as an operator runs it, against the Twilio fake through the real twilio client."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlmodel import select

from broadcaster.cli.main import cli
from broadcaster.db import session_scope
from broadcaster.models import Contact, ContentItem

from .conftest import CALLBACK_URL, FROM, TEXT

STRIPPED = "Uy ban nhan dan xa thong bao: tu 01/7 nhan ho so thu tuc hanh chinh truc tuyen."


def test_send_through_twilio(sms, run):
    numbers = sms.seed_contacts(5)
    item = sms.add_item()
    result = run("sms", "send", "--item", item, "--group", "Thôn 1")
    assert "đã gửi/sent 5" in result.output and "lỗi/failed 0" in result.output
    assert "5 tin/segments" in result.output and "4.250 VND" in result.output
    creates = [r for r in sms.fake.requests if r["method"] == "POST"]
    assert sorted(r["form"]["To"] for r in creates) == numbers
    for request in creates:
        assert request["form"]["Body"] == STRIPPED
        assert request["form"]["From"] == FROM
        assert request["form"]["StatusCallback"] == CALLBACK_URL
        assert request["auth"] == (sms.fake.account_sid, sms.fake.auth_token)
    rows = sms.rows()
    assert {r.status for r in rows} == {"sent"}
    assert {r.provider_id for r in rows} == set(sms.fake.messages)
    assert all(sms.fake.messages[r.provider_id]["to"] == r.recipient for r in rows)
    assert sms.campaigns()[0].status == "done"


def test_messaging_service_instead_of_from(sms, run):
    sms.configure(twilio={"from_number": "", "messaging_service_sid": "MG" + "1" * 32})
    sms.seed_contacts(1)
    run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    (request,) = sms.fake.requests
    assert request["form"]["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in request["form"]


def test_invalid_numbers_fail_at_once_and_21610_opts_out(sms, run):
    numbers = sms.seed_contacts(4)
    sms.fake.add_number_rule(numbers[0], 21211)
    sms.fake.add_number_rule(numbers[1], 21610)
    result = run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    assert "đã gửi/sent 2" in result.output and "lỗi/failed 2" in result.output
    rows = {r.recipient: r for r in sms.rows()}
    assert (rows[numbers[0]].status, rows[numbers[0]].error_code, rows[numbers[0]].attempts) == ("failed", "21211", 1)
    assert (rows[numbers[1]].status, rows[numbers[1]].error_code) == ("failed", "21610")
    assert sms.sent_to()[numbers[0]] == 1 and sms.sent_to()[numbers[1]] == 1
    with session_scope(sms.app().engine) as session:
        opted = {c.phone for c in session.exec(select(Contact).where(Contact.opted_out_at.is_not(None))).all()}
    assert opted == {numbers[1]}
    detail = run("sms", "status", "--campaign", 1, "--json")
    problems = json.loads(detail.output)["problems"]
    assert {p["error_code"] for p in problems} == {"21211", "21610"}
    assert numbers[0] not in detail.output and "+84 91* *** 001" in detail.output


def test_throttled_twice_then_sent(sms, run):
    sms.configure(concurrency=1, max_retries=3)
    sms.seed_contacts(1)
    sms.fake.throttle(2)
    run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    (row,) = sms.rows()
    assert (row.status, row.attempts) == ("sent", 3)
    assert [r["response_status"] for r in sms.fake.requests] == [429, 429, 201]


def test_server_errors_beyond_max_retries_fail(sms, run):
    sms.configure(concurrency=1, max_retries=2)
    sms.seed_contacts(1)
    sms.fake.fail_next(10, status=500)
    result = run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    (row,) = sms.rows()
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, "20500")
    assert len(sms.fake.requests) == 3 and "lỗi/failed 1" in result.output


def test_outbox_backend_writes_json_lines(sms, run):
    sms.configure(backend="outbox", outbox_path=str(sms.root / "outbox.jsonl"))
    numbers = sms.seed_contacts(3)
    run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    lines = [json.loads(line) for line in (sms.root / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(line["to"] for line in lines) == numbers
    rows = {r.id: r for r in sms.rows()}
    for line in lines:
        assert line["body"] == STRIPPED and line["encoding"] == "GSM-7" and line["segments"] == 1
        assert line["campaign"] == 1 and rows[line["delivery"]].provider_id == line["id"]
        assert line["id"].startswith("OB") and line["time"]
    assert {r.backend for r in rows.values()} == {"outbox"}
    assert sms.fake.requests == []


def test_second_send_resumes_then_needs_again(sms, run):
    sms.seed_contacts(3)
    item = sms.add_item()
    first = run("sms", "send", "--item", item, "--group", "Thôn 1", "--no-wait")
    assert "Đã tạo chiến dịch 1" in first.output and sms.fake.requests == []
    second = run("sms", "send", "--item", item, "--group", "Thôn 1")
    assert "Tiếp tục chiến dịch đang mở 1" in second.output and "đã gửi/sent 3" in second.output
    refused = run("sms", "send", "--item", item, "--group", "Thôn 1", ok=False)
    assert "--again" in refused.output and len(refused.output.strip().splitlines()) == 1
    run("sms", "send", "--item", item, "--group", "Thôn 1", "--again")
    assert len(sms.campaigns()) == 2
    assert Counter(sms.sent_to().values()) == Counter({2: 3})


def test_at_schedules_and_resume_waits(sms, run):
    sms.seed_contacts(2)
    result = run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1", "--at", "2099-01-01 08:00")
    assert "2099-01-01 08:00" in result.output and "chờ/pending 2" in result.output
    assert sms.fake.requests == []
    run("sms", "resume")
    assert sms.fake.requests == [] and {r.status for r in sms.rows()} == {"pending"}


def test_opted_out_between_creation_and_send_is_skipped(sms, run):
    numbers = sms.seed_contacts(2)
    item = sms.add_item()
    run("sms", "send", "--item", item, "--group", "Thôn 1", "--no-wait")
    run("contacts", "opt-out", numbers[0], "--reason", "xin dừng")
    result = run("sms", "resume")
    assert "bỏ qua/skipped 1" in result.output
    assert [r.status for r in sms.rows()] == ["skipped", "sent"] and numbers[0] not in sms.sent_to()


def test_preview(sms, run):
    sms.seed_contacts(4)
    item = sms.add_item()
    text = run("sms", "preview", TEXT).output
    assert STRIPPED in text and "GSM-7" in text and "850 VND" in text
    data = json.loads(run("sms", "preview", "--item", item, "--group", "Thôn 1", "--json").output)
    assert (data["encoding"], data["segments"], data["characters"], data["recipients"]) == ("GSM-7", 1, 79, 4)
    assert data["total_cost"] == 3400.0 and data["cost_per_recipient"] == 850.0
    kept = json.loads(run("sms", "preview", TEXT, "--keep-diacritics", "--json").output)
    assert (kept["text"], kept["encoding"], kept["segments"]) == (TEXT, "UCS-2", 2)
    assert kept["cost_per_recipient"] == 1700.0


def test_preview_too_long_is_one_line(sms, run):
    result = run("sms", "preview", "a" * 1601, ok=False)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "1601" in result.output and "1600" in result.output


def test_preview_needs_text_or_item(sms, run):
    assert run("sms", "preview", ok=False).exit_code == 2


@pytest.mark.parametrize(("setting", "env", "message"), [
    # An unknown backend is refused when the config is read: tests/core/test_config_values.py.
    ({}, {"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
])
def test_configuration_errors_are_clear_and_write_nothing(sms, run, monkeypatch, setting, env, message):
    sms.configure(**setting)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sms.seed_contacts(1)
    result = run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1", ok=False)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert sms.campaigns() == [] and sms.fake.requests == []


def test_wrong_token_is_reported_without_the_token(sms, run, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-right-token-123")
    sms.seed_contacts(2)
    result = run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1", ok=False)
    assert "20003" in result.output and "not-the-right-token-123" not in result.output
    assert {r.status for r in sms.rows()} == {"pending"}


def test_status_lists_campaigns(sms, run):
    sms.seed_contacts(2)
    run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1")
    data = json.loads(run("sms", "status", "--json").output)
    assert [(c["id"], c["group"], c["status"], c["counts"]["sent"], c["cost"]) for c in data] == [
        (1, "Thôn 1", "done", 2, 1700.0)]
    assert "Thôn 1" in run("sms", "status").output
    assert run("sms", "status", "--campaign", 9, ok=False).exit_code == 1


def test_every_sms_command_has_help(run):
    for group, names in (("sms", ["preview", "send", "resume", "status"]), ("webhook", ["serve"])):
        assert cli.commands[group].help
        for name in names:
            assert cli.commands[group].commands[name].help, name
            assert "Usage" in run(group, name, "--help").output


def test_no_token_or_full_number_in_output_or_logs(sms, run, caplog):
    numbers = sms.seed_contacts(6)
    sms.fake.add_number_rule(numbers[0], 21211)
    sms.fake.add_number_rule(numbers[1], 21610)
    sms.fake.throttle(1)
    sms.configure(twilio={"timeout": 0.3}, concurrency=1)
    sms.fake.hang(1)  # the first message times out: uncertain
    caplog.set_level(logging.DEBUG)
    outputs = [run("-vv", "sms", "send", "--item", sms.add_item(), "--group", "Thôn 1").output]
    outputs.append(run("-vv", "sms", "status", "--campaign", 1).output)
    outputs.append(run("-vv", "sms", "status", "--campaign", 1, "--json").output)
    outputs.append(run("-vv", "sms", "resume", "--retry-uncertain").output)
    text = "\n".join(outputs) + "\n".join(r.getMessage() for r in caplog.records)
    assert "đã gửi/sent 4" in outputs[0]
    assert len(caplog.records) > 10  # the twilio client and the dispatcher did log
    assert sms.fake.auth_token not in text
    for number in numbers:
        assert number not in text and number[1:] not in text and "0" + number[3:] not in text
    assert "+84 91* *** 001" in text  # masked numbers are shown


def _subprocess_env(sms) -> dict[str, str]:
    env = dict(os.environ)
    env["BROADCASTER_CONFIG"] = str(sms.config_path)
    env["PYTHONPATH"] = os.pathsep.join([str(__import__("pathlib").Path(__file__).resolve().parents[2]),
                                         env.get("PYTHONPATH", "")])
    return env


def test_crash_mid_campaign_then_resume(sms, run):
    """SIGKILL ``sms send`` mid-campaign: nobody gets two messages; rows caught in flight are uncertain."""
    sms.configure(concurrency=2, rate_per_second=0.0, twilio={"timeout": 10.0})
    numbers = sms.seed_contacts(10)
    item = sms.add_item()
    sms.fake.delay = 0.4
    proc = subprocess.Popen(
        [sys.executable, "-c", "from broadcaster.cli.main import cli; cli()", "sms", "send", "--item", str(item),
         "--group", "Thôn 1"],
        env=_subprocess_env(sms), cwd=sms.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        sms.fake.wait_for_requests(4, timeout=30)
        time.sleep(0.1)  # every worker is now waiting on an answer the fake holds for 0.4 s
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    received_before = sms.sent_to()
    assert 4 <= sum(received_before.values()) < 10
    statuses = Counter(r.status for r in sms.rows())
    assert statuses["sending"] >= 1 and statuses["pending"] >= 1
    in_flight = {r.recipient for r in sms.rows() if r.status == "sending"}
    assert all(received_before[n] == 1 for n in in_flight)  # they did reach Twilio

    sms.fake.delay = 0.0
    result = run("sms", "resume")
    assert "chưa rõ/uncertain" in result.output and "--retry-uncertain" in result.output
    rows = {r.recipient: r for r in sms.rows()}
    assert {n for n, r in rows.items() if r.status == "uncertain"} == in_flight
    assert {r.status for n, r in rows.items() if n not in in_flight} == {"sent"}
    after = sms.sent_to()
    assert all(after[n] == 1 for n in numbers)  # every recipient got exactly one message
    assert all(rows[n].provider_id in sms.fake.messages for n in numbers if n not in in_flight)

    run("sms", "resume", "--retry-uncertain")
    resent = sms.sent_to() - after
    assert set(resent) == in_flight and set(resent.values()) == {1}  # only those, once
    assert {r.status for r in sms.rows()} == {"sent"}
    assert sms.campaigns()[0].status == "done"


def test_send_refuses_a_draft_and_a_loudspeaker_only_item(sms, run):
    sms.seed_contacts(2)
    draft_id, loud_id = sms.add_item(), sms.add_item()
    with session_scope(sms.app().engine) as session:
        draft, loud = session.get(ContentItem, draft_id), session.get(ContentItem, loud_id)
        draft.status, loud.channels = "draft", ["loudspeaker"]
        session.add_all([draft, loud])
    draft = run("sms", "send", "--item", draft_id, "--group", "Thôn 1", ok=False).output
    loud = run("sms", "send", "--item", loud_id, "--group", "Thôn 1", ok=False).output
    assert "chưa được duyệt" in draft and "not approved" in draft and len(draft.strip().splitlines()) == 1
    assert "không dành cho SMS" in loud and "not for SMS" in loud and len(loud.strip().splitlines()) == 1
    assert sms.rows() == [] and sms.fake.requests == [] and sms.campaigns() == []


def test_held_campaign_cancelled_while_an_emergency_goes_out_in_quiet_hours(sms, run):
    """At night an ordinary campaign is held by quiet hours; an emergency announcement's SMS is not."""
    sms.configure(quiet_hours="00:00-23:59")
    numbers = sms.seed_contacts(3)
    held = run("sms", "send", "--item", sms.add_item(), "--group", "Thôn 1").output
    assert "giờ yên tĩnh" in held and sms.fake.requests == []
    assert "giữ/held" in run("sms", "status").output
    run("announce", "--text", "Khẩn: bão số 3 đổ bộ đêm nay.", "--sms-group", "Thôn 1", "--repeat", "1")
    assert sorted(sms.sent_to()) == numbers  # the emergency, at once
    out = run("sms", "cancel", "1").output
    assert "3 tin sẽ không gửi" in out and "3 messages will not be sent" in out
    sms.configure(quiet_hours="off")
    run("sms", "resume")
    assert sorted(sms.sent_to()) == numbers  # nothing of the cancelled campaign ever left
    status = json.loads(run("sms", "status", "--json").output)
    assert [(c["status"], c["counts"]["cancelled"], c["counts"]["sent"]) for c in status] == [
        ("cancelled", 3, 0), ("done", 0, 3)]
    log = json.loads(run("log", "--json").output)
    assert sorted(r["status"] for r in log if r["channel"] == "sms") == ["cancelled"] * 3 + ["sent"] * 3
