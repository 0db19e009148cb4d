import base64
import re
import threading
from datetime import datetime

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from broadcaster.sms.twilio_client import DEFAULT_API_BASE_URL, make_twilio_client
from tests.fakes.twilio_fake import CallbackReceiver, TwilioFake, error_body

FROM = "+15005550006"
TO = "+84912345678"


@pytest.fixture
def fake():
    with TwilioFake() as running:
        yield running


@pytest.fixture
def client(fake):
    return make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=2)


def send(client, to=TO, body="Xin chào bà con", **kw):
    return client.messages.create(to=to, from_=FROM, body=body, **kw)


# --- happy path ---------------------------------------------------------------------


def test_create_returns_twilio_shaped_message(client, fake):
    msg = send(client, status_callback="https://example.org/sms/status")
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg.sid)
    assert msg.status == "queued"
    assert (msg.to, msg.from_, msg.body) == (TO, FROM, "Xin chào bà con")
    assert msg.account_sid == fake.account_sid
    assert msg.direction == "outbound-api"
    assert msg.num_segments == "1"
    assert msg.api_version == "2010-04-01"
    assert msg.error_code is None and msg.price is None
    assert isinstance(msg.date_created, datetime)
    assert msg.uri == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{msg.sid}.json"
    assert msg.sid in fake.messages


def test_num_segments_follow_encoding(client):
    assert send(client, body="Ủy ban nhân dân xã " * 4).num_segments == "2"  # 76 UCS-2 units
    assert send(client, body="a" * 161).num_segments == "2"
    assert send(client, body="a" * 160).num_segments == "1"


def test_recorded_request_contains_what_the_client_sent(client, fake):
    send(client, body="Họp dân lúc 19h30", status_callback="https://example.org/cb?x=1")
    (rec,) = fake.requests
    assert rec["method"] == "POST"
    assert rec["path"] == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert rec["form"] == {
        "To": TO,
        "From": FROM,
        "Body": "Họp dân lúc 19h30",
        "StatusCallback": "https://example.org/cb?x=1",
    }
    assert rec["auth"] == (fake.account_sid, fake.auth_token)
    token = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
    assert rec["headers"]["Authorization"] == f"Basic {token}"
    assert rec["headers"]["User-Agent"].startswith("twilio-python/")
    assert rec["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert rec["response_status"] == 201


def test_messaging_service_without_from_is_accepted(client, fake):
    msg = client.messages.create(to=TO, messaging_service_sid="MG" + "a" * 32, body="Thông báo")
    assert msg.status == "accepted"
    assert msg.from_ is None
    assert msg.messaging_service_sid == "MG" + "a" * 32
    assert fake.requests[0]["form"]["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in fake.requests[0]["form"]


def test_fetch(client, fake):
    created = send(client)
    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.status == "queued"
    fake.set_status(created.sid, "delivered")
    again = client.messages(created.sid).fetch()
    assert again.status == "delivered"
    assert again.date_sent is not None
    assert fake.requests[-1]["method"] == "GET"
    assert fake.requests[-1]["path"].endswith(f"/Messages/{created.sid}.json")


def test_fetch_unknown_is_404(client):
    with pytest.raises(TwilioRestException) as info:
        client.messages("SM" + "0" * 32).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)


def test_list(client):
    first = send(client, body="một")
    second = send(client, body="hai")
    assert [m.sid for m in client.messages.list()] == [second.sid, first.sid]


def test_list_filters_by_to_and_from_and_pages_with_next_page_uri(client, fake):
    mine = [send(client, body=f"tin {n}").sid for n in range(7)]
    send(client, to="+84900000001", body="người khác")
    client.messages.create(to=TO, from_="+15005550009", body="số gửi khác")
    listed = [m.sid for m in client.messages.stream(to=TO, from_=FROM, page_size=3)]
    assert listed == list(reversed(mine))
    lists = [r for r in fake.requests if r["method"] == "GET"]
    assert len(lists) == 3  # 3 + 3 + 1, following next_page_uri
    assert lists[1]["query"]["PageToken"] and lists[1]["query"]["To"] == TO and lists[1]["query"]["Page"] == "1"


def test_list_page_shape_is_twilios(fake):
    client = fake.client()
    send(client)
    answer = requests.get(f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
                          params={"To": TO, "PageSize": 1}, auth=(fake.account_sid, fake.auth_token),
                          timeout=5).json()
    assert set(answer) == {"messages", "uri", "first_page_uri", "next_page_uri", "previous_page_uri", "page",
                           "page_size", "start", "end"}
    assert answer["next_page_uri"] is None and answer["page_size"] == 1 and answer["messages"][0]["to"] == TO


def test_list_date_sent_filter_skips_messages_still_queued(client, fake):
    queued = send(client, body="chưa đi")
    left = send(client, body="đã đi")
    fake.set_status(left.sid, "sent")
    today = datetime.now().astimezone().astimezone(tz=None)
    found = [m.sid for m in client.messages.list(to=TO, date_sent_after=today.replace(year=today.year - 1))]
    assert found == [left.sid] and queued.sid not in found


def test_fail_lists_answers_500(client, fake):
    fake.fail_lists(1)
    with pytest.raises(TwilioException, match="500"):  # the client's Page raises the plain kind for lists
        client.messages.list(to=TO)
    assert client.messages.list(to=TO) == []


# --- programmed errors -------------------------------------------------------------------


def test_invalid_number_raises_21211(client, fake):
    fake.add_number_rule("+8412", 21211)
    with pytest.raises(TwilioRestException) as info:
        send(client, to="+8412")
    exc = info.value
    assert (exc.status, exc.code) == (400, 21211)
    assert "Invalid 'To' Phone Number: +8412" in exc.msg
    assert fake.messages == {}
    # Other numbers are unaffected.
    assert send(client).status == "queued"


@pytest.mark.parametrize("code", [21614, 21612, 21610, 21408])
def test_number_rules_give_twilio_error_bodies(fake, code):
    fake.add_number_rule(TO, code)
    resp = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        data={"To": TO, "From": FROM, "Body": "x"},
        auth=(fake.account_sid, fake.auth_token),
        timeout=2,
    )
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body == error_body(code, to=TO, from_=FROM)


def test_rule_can_be_removed(client, fake):
    fake.add_number_rule(TO, 21610)
    with pytest.raises(TwilioRestException):
        send(client)
    fake.remove_number_rule(TO)
    assert send(client).sid


def test_throttle_then_success(client, fake):
    fake.throttle(1)
    with pytest.raises(TwilioRestException) as info:
        send(client)
    assert (info.value.status, info.value.code) == (429, 20429)
    assert send(client).status == "queued"
    assert [r["response_status"] for r in fake.requests] == [429, 201]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_for_next_n(client, fake, status):
    fake.fail_next(2, status=status)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            send(client)
        assert info.value.status == status
        assert info.value.code == {500: 20500, 503: 20503}[status]
    assert send(client).sid
    assert len(fake.messages) == 1


def test_body_over_1600_chars_is_21617(client):
    with pytest.raises(TwilioRestException) as info:
        send(client, body="a" * 1601)
    assert info.value.code == 21617


def test_wrong_token_is_401(fake):
    bad = make_twilio_client(fake.account_sid, "wrong-token", fake.base_url, timeout=2)
    with pytest.raises(TwilioRestException) as info:
        send(bad)
    assert (info.value.status, info.value.code) == (401, 20003)
    assert fake.requests[0]["auth"] == (fake.account_sid, "wrong-token")
    assert fake.messages == {}


def test_missing_auth_is_401_with_challenge(fake):
    resp = requests.get(f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json", timeout=2)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert resp.json()["code"] == 20003
    assert fake.requests[0]["auth"] is None


def test_other_account_path_is_404(fake):
    resp = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/AC{'1' * 32}/Messages.json",
        auth=(fake.account_sid, fake.auth_token),
        timeout=2,
    )
    assert resp.status_code == 404


# --- slow and hanging ----------------------------------------------------------------------


def test_delay_slows_answers_and_trips_client_timeout(fake):
    fake.delay = 0.3
    quick = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(quick)
    patient = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=2)
    assert send(patient).sid
    fake.delay = 0


def test_hang_until_release(fake):
    fake.hang()
    quick = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(quick)
    assert fake.requests[0]["response_status"] is None
    fake.release()
    assert send(patient_client(fake)).sid


def test_hang_only_next_n(fake):
    fake.hang(1)
    quick = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(quick)
    assert send(patient_client(fake)).sid


def patient_client(fake):
    """A client that waits long enough for an answer on a loaded machine (a hung request still fails it)."""
    return make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=10)


def test_stop_does_not_wait_for_hanging_requests():
    fake = TwilioFake().start()
    fake.hang()
    client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=5)
    errors = []

    def call():
        try:
            send(client)
        except Exception as exc:  # noqa: BLE001 - any failure is expected here
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    fake.wait_for_requests(1)
    fake.stop()
    worker.join(timeout=2)
    assert not worker.is_alive()
    assert isinstance(errors[0], requests.exceptions.ConnectionError)


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_creates_are_all_recorded(client, fake):
    sids = []
    lock = threading.Lock()

    def worker(i):
        sid = send(client, to=f"+8490000{i:04d}").sid
        with lock:
            sids.append(sid)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert len(set(sids)) == 20
    assert len(fake.requests) == 20
    assert {r["form"]["To"] for r in fake.requests} == {f"+8490000{i:04d}" for i in range(20)}


# --- status callbacks -----------------------------------------------------------------------------


def test_status_callback_is_signed_like_twilio(client, fake):
    with CallbackReceiver() as receiver:
        url = receiver.url("/sms/status?plan=219")
        msg = send(client, status_callback=url)
        resp = fake.send_status_callback(msg.sid, "delivered", url, fake.auth_token)
        assert resp.status_code == 200
        (got,) = receiver.received
    form = got["form"]
    assert form == {
        "SmsSid": msg.sid,
        "SmsStatus": "delivered",
        "MessageStatus": "delivered",
        "To": TO,
        "MessageSid": msg.sid,
        "AccountSid": fake.account_sid,
        "From": FROM,
        "ApiVersion": "2010-04-01",
    }
    signature = got["headers"]["X-Twilio-Signature"]
    assert RequestValidator(fake.auth_token).validate(url, form, signature)
    assert not RequestValidator("another-token").validate(url, form, signature)
    assert client.messages(msg.sid).fetch().status == "delivered"


def test_failed_callback_carries_error_code_and_defaults_to_status_callback_url(client, fake):
    with CallbackReceiver() as receiver:
        msg = send(client, status_callback=receiver.url())
        fake.send_status_callback(msg.sid, "undelivered", error_code=30005)
        fake.send_status_callback(msg.sid, "failed")
        first, second = receiver.received
    assert first["form"]["ErrorCode"] == "30005"
    assert second["form"]["ErrorCode"] == "30003"
    assert first["path"] == "/sms/status"
    fetched = client.messages(msg.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("failed", 30003)


def test_callback_signed_with_other_token_does_not_validate(client, fake):
    with CallbackReceiver() as receiver:
        url = receiver.url()
        msg = send(client)
        fake.send_status_callback(msg.sid, "sent", url, "not-the-product-token")
        (got,) = receiver.received
    assert not RequestValidator(fake.auth_token).validate(url, got["form"], got["headers"]["X-Twilio-Signature"])


# --- make_twilio_client --------------------------------------------------------------------------


def test_production_default_is_api_twilio_com():
    client = make_twilio_client("AC" + "1" * 32, "token")
    assert client.api.base_url == DEFAULT_API_BASE_URL
    assert client.http_client.timeout == 30.0
    same = make_twilio_client("AC" + "1" * 32, "token", "https://api.twilio.com/")
    assert same.api.base_url == DEFAULT_API_BASE_URL


@pytest.mark.parametrize("bad", ["127.0.0.1:8080", "ftp://x", "http://", "http://h/?a=1"])
def test_bad_base_url_refused(bad):
    with pytest.raises(ValueError):
        make_twilio_client("AC" + "1" * 32, "token", bad)


def test_timeout_must_be_positive():
    with pytest.raises(ValueError):
        make_twilio_client("AC" + "1" * 32, "token", timeout=0)


def test_edge_and_region_from_environment_do_not_mangle_base_url(fake, monkeypatch):
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url + "/", timeout=2)
    assert send(client).sid


def test_fake_client_helper(fake):
    assert send(fake.client(timeout=2)).sid
