"""Campaign creation: every recipient written pending before any send, never doubled, quiet hours respected."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from broadcaster.contacts import opt_out
from broadcaster.db import session_scope
from broadcaster.errors import AlreadyExistsError, InputError, NotFoundError
from broadcaster.models import Contact, ContactGroup, ContactGroupMember, ContentItem, Delivery, Plan, Topic
from broadcaster.sms.campaigns import create_campaign, held_by_quiet_hours, open_campaign
from broadcaster.sms.encoding import SmsTooLong
from broadcaster.sms.quiet_hours import parse_quiet_hours
from broadcaster.timeutil import zone

from .conftest import TEXT, phone

HCM = "Asia/Ho_Chi_Minh"
QUIET = parse_quiet_hours("21:00-07:00", HCM)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=zone(HCM))


def test_rows_are_written_pending_before_any_send(sms):
    numbers = sms.seed_contacts(4)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        campaign = create_campaign(session, item_id, "Thôn 1", config=app.config)
        cid = campaign.id
    assert sms.fake.requests == []  # creating sends nothing
    rows = sms.rows(cid)
    assert [r.recipient for r in rows] == numbers
    assert {(r.channel, r.status, r.item_id, r.segments, r.attempts) for r in rows} == {("sms", "pending", item_id, 1, 0)}
    assert all(r.contact_id is not None and r.provider_id is None for r in rows)
    (stored,) = sms.campaigns()
    assert stored.status == "open" and stored.encoding == "GSM-7" and stored.segments == 1
    assert stored.body == "Uy ban nhan dan xa thong bao: tu 01/7 nhan ho so thu tuc hanh chinh truc tuyen."


def test_rows_carry_plan_and_topic_of_the_item(sms):
    sms.seed_contacts(2)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        plan = Plan(code="219/KH-UBND", title="Kế hoạch CCHC", period_start=date(2026, 1, 1),
                    period_end=date(2026, 12, 31))
        session.add(plan)
        session.flush()
        topic = Topic(plan_id=plan.id, code="TTHC", title="Cải cách thủ tục hành chính")
        session.add(topic)
        session.flush()
        from broadcaster.models import ContentItem

        session.get(ContentItem, item_id).topic_id = topic.id
        plan_id, topic_id = plan.id, topic.id
    with session_scope(app.engine) as session:
        cid = create_campaign(session, item_id, "Thôn 1", config=app.config).id
    assert {(r.plan_id, r.topic_id) for r in sms.rows(cid)} == {(plan_id, topic_id)}


def test_opted_out_non_mobile_and_other_groups_are_left_out(sms):
    numbers = sms.seed_contacts(3)
    sms.seed_contacts(2, group="Thôn 2", start=50)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        opt_out(session, numbers[1], "gọi điện xin dừng")
        landline = Contact(phone="+842838221234")  # a Ho Chi Minh City fixed line
        session.add(landline)
        session.flush()
        group = session.exec(select(ContactGroup).where(ContactGroup.name == "Thôn 1")).one()
        session.add(ContactGroupMember(contact_id=landline.id, group_id=group.id))
    with session_scope(app.engine) as session:
        cid = create_campaign(session, item_id, "Thôn 1", config=app.config).id
    assert [r.recipient for r in sms.rows(cid)] == [numbers[0], numbers[2]]


def test_same_item_and_group_resumes_the_open_campaign(sms):
    sms.seed_contacts(3)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        first = open_campaign(session, item_id, "Thôn 1", config=app.config)
    sms.seed_contacts(1, start=99)  # joins the group after the campaign was written
    with session_scope(app.engine) as session:
        again = open_campaign(session, item_id, "Thôn 1", config=app.config)
    assert first.created and not again.created
    assert again.campaign.id == first.campaign.id and again.recipients == 3
    assert len(sms.rows()) == 3


def test_done_campaign_needs_again(sms):
    sms.seed_contacts(2)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        cid = create_campaign(session, item_id, "Thôn 1", config=app.config).id
    with session_scope(app.engine) as session:
        for row in session.exec(select(Delivery)).all():
            row.status = "sent"
        from broadcaster.models import Campaign

        session.get(Campaign, cid).status = "done"
    with session_scope(app.engine) as session, pytest.raises(AlreadyExistsError, match="--again"):
        create_campaign(session, item_id, "Thôn 1", config=app.config)
    with session_scope(app.engine) as session:
        second = create_campaign(session, item_id, "Thôn 1", config=app.config, again=True).id
    assert second != cid and len(sms.rows(second)) == 2


def test_bulletin_campaign_is_unique_per_bulletin_even_when_done(sms):
    sms.seed_contacts(2)
    item_id = sms.add_item()
    app = sms.app()
    from broadcaster.models import Bulletin, Campaign

    with session_scope(app.engine) as session:
        bulletin = Bulletin(channel="sms", kind="slot", slot_time=datetime(2026, 3, 2, tzinfo=UTC))
        session.add(bulletin)
        session.flush()
        bulletin_id = bulletin.id
        cid = create_campaign(session, item_id, "Thôn 1", bulletin_id=bulletin_id, config=app.config).id
        session.get(Campaign, cid).status = "done"
    with session_scope(app.engine) as session:
        assert create_campaign(session, item_id, "Thôn 1", bulletin_id=bulletin_id, config=app.config).id == cid
    assert {r.bulletin_id for r in sms.rows()} == {bulletin_id}


def test_database_refuses_a_second_row_for_one_person_in_one_campaign(sms):
    sms.seed_contacts(1)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        cid = create_campaign(session, item_id, "Thôn 1", config=app.config).id
    (row,) = sms.rows(cid)
    with pytest.raises(IntegrityError), session_scope(app.engine) as session:
        session.add(Delivery(channel="sms", campaign_id=cid, item_id=item_id, contact_id=row.contact_id,
                             recipient=row.recipient))


def test_refusals_write_nothing(sms):
    sms.seed_contacts(1)
    item_id = sms.add_item()
    long_item = sms.add_item("a" * 1601)
    app = sms.app()
    with session_scope(app.engine) as session:
        session.add(ContactGroup(name="Trống"))
    cases = [(item_id, "Không có", NotFoundError), (999, "Thôn 1", NotFoundError),
             (item_id, "Trống", InputError), (long_item, "Thôn 1", SmsTooLong)]
    for item, group, error in cases:
        with pytest.raises(error), session_scope(app.engine) as session:
            create_campaign(session, item, group, config=app.config)
    assert sms.campaigns() == [] and sms.rows() == []


def test_diacritics_kept_when_configured(sms):
    sms.seed_contacts(1)
    sms.configure(strip_diacritics=False)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        campaign = create_campaign(session, item_id, "Thôn 1", config=app.config)
    assert campaign.body == TEXT and campaign.encoding == "UCS-2" and campaign.segments == 2
    assert sms.rows()[0].segments == 2


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(2, 12), None),  # daytime, at once
        (local(2, 22), local(3, 7)),  # evening: next morning
        (local(3, 6, 59), local(3, 7)),  # early morning: same morning
        (local(3, 7), None),  # the end is outside
        (local(2, 21), local(3, 7)),  # the start is inside
    ],
)
def test_quiet_hours_hold_until_their_end(sms, now, expected):
    sms.configure(quiet_hours="21:00-07:00")
    assert held_by_quiet_hours(sms.app().config, None, now) == (expected.astimezone(UTC) if expected else None)


def test_an_emergency_is_never_held_by_quiet_hours(sms):
    sms.configure(quiet_hours="21:00-07:00")
    item = ContentItem(title="Bão", priority="emergency", channels=["sms"], status="approved")
    assert held_by_quiet_hours(sms.app().config, item, local(2, 23)) is None


def test_quiet_hours_are_not_frozen_into_the_campaign(sms):
    """A campaign written at night keeps no quiet-hours time: the dispatcher reads the config when it sends."""
    sms.seed_contacts(1)
    item_id = sms.add_item()
    sms.configure(quiet_hours="21:00-07:00")
    app = sms.app()
    utc_evening = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 22:00 in Vietnam
    with session_scope(app.engine) as session:
        campaign = create_campaign(session, item_id, "Thôn 1", config=app.config, now=utc_evening)
    assert campaign.not_before is None and sms.rows()[0].scheduled_for is None
    assert phone(1) == sms.rows()[0].recipient


def test_at_is_kept_as_not_before(sms):
    sms.seed_contacts(1)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        campaign = create_campaign(session, item_id, "Thôn 1", at=local(3, 10), config=app.config,
                                   now=local(2, 12))
    assert campaign.not_before == local(3, 10).astimezone(UTC)


@pytest.mark.parametrize(("status", "channels", "words"), [
    ("draft", ["loudspeaker", "sms"], "not approved"),
    ("retired", ["loudspeaker", "sms"], "retired"),
    ("approved", ["loudspeaker"], "not for SMS"),
])
def test_only_approved_sms_items_are_texted(sms, status, channels, words):
    sms.seed_contacts(2)
    with session_scope(sms.app().engine) as session:
        item = ContentItem(title="Tin", channels=channels, status=status, sms_text=TEXT)
        session.add(item)
        session.flush()
        item_id = item.id
    app = sms.app()
    with pytest.raises(InputError, match=words), session_scope(app.engine) as session:
        create_campaign(session, item_id, "Thôn 1", config=app.config)
    assert sms.rows() == []


def test_without_config_the_usual_lookup_is_used(sms):
    """The daemon's job may call create_campaign without config: ./broadcaster.toml still applies."""
    sms.seed_contacts(1)
    sms.configure(strip_diacritics=False)
    item_id = sms.add_item()
    with session_scope(sms.app().engine) as session:
        assert create_campaign(session, item_id, "Thôn 1").encoding == "UCS-2"
