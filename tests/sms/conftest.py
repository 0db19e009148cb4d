"""SMS test workspace: an initialised workspace, a running TwilioFake and a broadcaster.toml pointing at it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from broadcaster.app import App
from broadcaster.contacts import ContactRow, import_contacts
from broadcaster.db import session_scope
from broadcaster.models import Campaign, ContentItem, Delivery, ItemStatus
from tests.fakes.twilio_fake import TwilioFake

FROM = "+15005550006"
CALLBACK_URL = "https://xa-phuoc-ha.example.org/sms/status"
TEXT = "Ủy ban nhân dân xã thông báo: từ 01/7 nhận hồ sơ thủ tục hành chính trực tuyến."


def phone(n: int) -> str:
    return f"+8491234{n:04d}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class SmsWorkspace:
    """Config writer and seeding helpers for one test."""

    def __init__(self, root: Path, fake: TwilioFake, data_dir: Path) -> None:
        self.root = root
        self.fake = fake
        self.data_dir = data_dir
        self.config_path = root / "broadcaster.toml"

    def configure(self, backend: str = "twilio", **sms: Any) -> Path:
        values: dict[str, Any] = {"backend": backend, "quiet_hours": "", "retry_backoff": 0.001,
                                  "max_retries": 3, "concurrency": 2, "rate_per_second": 0.0,
                                  "status_callback_url": CALLBACK_URL}
        values.update(sms)
        twilio = {"api_base_url": self.fake.base_url, "from_number": FROM, "timeout": 2.0}
        twilio.update(values.pop("twilio", {}))
        lines = ["[broadcaster]", f"data_dir = {_toml_value(self.data_dir.as_posix())}", "", "[sms]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines += ["", "[sms.twilio]"] + [f"{k} = {_toml_value(v)}" for k, v in twilio.items()]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    def app(self) -> App:
        return App.load(self.config_path)

    def seed_contacts(self, count: int, group: str = "Thôn 1", start: int = 1) -> list[str]:
        numbers = [phone(n) for n in range(start, start + count)]
        with session_scope(self.app().ready_engine()) as session:
            import_contacts(session, [ContactRow(phone=p, line=i + 2, name=f"Người {i}", groups=[group])
                                      for i, p in enumerate(numbers)])
        return numbers

    def add_item(self, sms_text: str = TEXT, title: str = "Dịch vụ công trực tuyến") -> int:
        with session_scope(self.app().ready_engine()) as session:
            item = ContentItem(title=title, channels=["loudspeaker", "sms"], status=ItemStatus.APPROVED,
                               sms_text=sms_text)
            session.add(item)
            session.flush()
            return item.id

    def rows(self, campaign_id: int | None = None) -> list[Delivery]:
        with session_scope(self.app().ready_engine()) as session:
            query = select(Delivery).where(Delivery.channel == "sms")
            if campaign_id is not None:
                query = query.where(Delivery.campaign_id == campaign_id)
            return list(session.exec(query.order_by(Delivery.id)).all())

    def campaigns(self) -> list[Campaign]:
        with session_scope(self.app().ready_engine()) as session:
            return list(session.exec(select(Campaign).order_by(Campaign.id)).all())

    def sent_to(self) -> Counter:
        """Messages the fake accepted or at least received as a create, by To."""
        return Counter(r["form"].get("To") for r in self.fake.requests
                       if r["method"] == "POST" and r["path"].endswith("/Messages.json"))


@pytest.fixture
def fake() -> Iterator[TwilioFake]:
    with TwilioFake() as running:
        yield running


@pytest.fixture
def sms(workspace: Path, fake: TwilioFake, monkeypatch: pytest.MonkeyPatch) -> SmsWorkspace:
    """Twilio backend against the fake; credentials from the environment; quiet hours off."""
    data_dir = App.load(None).config.data_dir
    ws = SmsWorkspace(workspace, fake, data_dir)
    ws.configure()
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", fake.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", fake.auth_token)
    return ws
