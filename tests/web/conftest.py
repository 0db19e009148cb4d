"""A console workspace: a plan, a station with a file drop, a draft item, a schedule, one user per role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broadcaster.app import App
from broadcaster.web.app import LoginThrottle, create_app

PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "ninh-thuan-2023.toml"
PASSWORDS = {"oanh": "mat-khau-oanh", "duyet": "mat-khau-duyet", "quantri": "mat-khau-quantri"}
ROLES = {"oanh": "operator", "duyet": "approver", "quantri": "admin"}
TWILIO_TOKEN = "tok-SHOULD-NEVER-SHOW-8c1f"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def offline_config(path: Path) -> None:
    """espeak only (no network speech), quick heartbeats, a Twilio token that must never reach a page."""
    text = path.read_text(encoding="utf-8").replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]')
    text = text.replace("heartbeat_seconds = 5", "heartbeat_seconds = 1").replace("reload_seconds = 3",
                                                                                  "reload_seconds = 1")
    text = text.replace('auth_token = ""', f'auth_token = "{TWILIO_TOKEN}"', 1)
    assert TWILIO_TOKEN in text
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def console_app(run, workspace: Path) -> App:
    offline_config(workspace / "config" / "broadcaster" / "config.toml")
    run("plan", "import", str(PLAN))
    run("content", "add", "--title", "Một cửa liên thông", "--topic", "911/KH-UBND:TTHC", "--channel", "loudspeaker",
        "--text", "UBND xã thông báo: bà con làm TTHC tại bộ phận một cửa từ 7h30.")
    run("schedule", "add", "--station", "XA-01", "--cron", "0 6,17 * * *", "--length", "5m")
    run("contacts", "import", str(Path(__file__).parent / "contacts.csv"))
    for name, role in ROLES.items():
        run("user", "add", name, "--role", role, "--password-stdin", input=PASSWORDS[name] + "\n")
    return App.load(None)


@pytest.fixture
def web(console_app: App):
    flask_app = create_app(console_app, throttle=LoginThrottle())
    flask_app.config["TESTING"] = True
    return flask_app


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


class Browserless:
    """A signed-in test client that sends the page's CSRF token with each POST, as the forms do."""

    def __init__(self, web, name: str | None) -> None:
        self.client = web.test_client()
        self.name = name
        self.token = csrf_of(self.client.get("/login").get_data(as_text=True))
        if name:
            response = self.client.post("/login", data={"username": name, "password": PASSWORDS[name],
                                                        "csrf_token": self.token})
            assert response.status_code == 302, response.get_data(as_text=True)
            self.token = csrf_of(self.client.get("/").get_data(as_text=True))

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def signed_in(web):
    return lambda name: Browserless(web, name)
