#!/usr/bin/env python3
"""Screenshots of the web console's main pages in Debian's Chromium, into docs/web-*.png.

Builds a throw-away commune (the Ninh Thuận example plan and content, the Phước Hà contacts, one
file-drop station, an emergency aired), serves the console on a free loopback port and signs in
as an approver. Run: .venv/bin/python scripts/web_screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PAGES = [("today", "/"), ("log", "/log"), ("content", "/content"), ("content-item", "/content/1"),
         ("schedules", "/schedules"), ("sms", "/sms"), ("report", "/report?plan=911/KH-UBND&period=2023"),
         ("announce", "/announce")]


def cli(env: dict, *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "broadcaster", *args], env=env, check=True, capture_output=True,
                   text=True, input=stdin)


def build_commune(tmp: Path) -> dict:
    config = tmp / "broadcaster.toml"
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    cli(env, "init", "--data-dir", str(tmp / "data"))
    text = config.read_text(encoding="utf-8").replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]')
    config.write_text(text.replace('commune = ""', 'commune = "Phước Hà"', 1), encoding="utf-8")
    cli(env, "station", "add", "XA-01", "--name", "Phước Hà", "--drop-dir", str(tmp / "drop"))
    cli(env, "plan", "import", str(ROOT / "examples" / "plans" / "ninh-thuan-2023.toml"))
    cli(env, "content", "import", str(ROOT / "examples" / "content" / "ninh-thuan-2023.toml"))
    cli(env, "contacts", "import", str(ROOT / "examples" / "contacts" / "phuoc-ha.csv"))
    cli(env, "schedule", "add", "--station", "XA-01", "--cron", "30 5 * * *", "--length", "15m", "--name", "Sáng")
    cli(env, "schedule", "add", "--station", "XA-01", "--cron", "0 17 * * *", "--length", "15m", "--name", "Chiều")
    cli(env, "announce", "--text", "Bão số 3 sắp đổ bộ, bà con chằng chống nhà cửa, không ra biển.")
    cli(env, "user", "add", "duyet", "--role", "approver", "--password-stdin", stdin="mat-khau-duyet\n")
    return env


def main() -> None:
    from playwright.sync_api import sync_playwright

    from broadcaster.app import App
    from broadcaster.web.server import WebThread

    with tempfile.TemporaryDirectory() as temp:
        env = build_commune(Path(temp))
        os.environ["BROADCASTER_CONFIG"] = env["BROADCASTER_CONFIG"]
        server = WebThread(App.load(env["BROADCASTER_CONFIG"]), "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/login")
                page.screenshot(path=DOCS / "web-login.png")
                page.fill("input[name=username]", "duyet")
                page.fill("input[name=password]", "mat-khau-duyet")
                page.click("button[type=submit]")
                page.wait_for_url(base + "/")
                for name, path in PAGES:
                    page.goto(base + path)
                    page.screenshot(path=DOCS / f"web-{name}.png", full_page=name != "log")
                    print(f"docs/web-{name}.png")
                page.goto(base + "/announce")
                page.fill("textarea[name=text]", "Lũ quét ở thôn 2, bà con tránh xa bờ suối.")
                page.click("button.danger")
                page.screenshot(path=DOCS / "web-announce-confirm.png")
                print("docs/web-announce-confirm.png")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
