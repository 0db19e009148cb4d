"""The console in Debian's Chromium (Playwright), through ``broadcaster web`` on loopback, a daemon airing.

One browser for the module; the flow is the one the issue checks: sign in, approve an item and see it in
the next slot's preview, send an emergency announcement and see it aired in the log, download the XLSX.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.scheduling.helpers import DaemonProcess, cli
from tests.web.conftest import PASSWORDS, PLAN, ROLES, offline_config

CHROMIUM = "/usr/bin/chromium"
# Chromium as root needs --no-sandbox; the rest keep it off the (closed) network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium package is missing: run scripts/setup.sh"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def commune(tmp_path: Path):
    """A workspace, a daemon with a file-drop station, and ``broadcaster web`` on a free loopback port."""
    config = tmp_path / "broadcaster.toml"
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    cli(env, "init", "--data-dir", str(tmp_path / "data"))
    offline_config(config)
    cli(env, "station", "add", "XA-01", "--name", "Phước Hà", "--drop-dir", str(tmp_path / "drop"))
    cli(env, "plan", "import", str(PLAN))
    cli(env, "content", "add", "--title", "Một cửa liên thông", "--topic", "911/KH-UBND:TTHC",
        "--channel", "loudspeaker", "--text", "UBND xã thông báo: bà con làm TTHC tại bộ phận một cửa từ 7h30.")
    cli(env, "schedule", "add", "--station", "XA-01", "--cron", "0 6,17 * * *", "--length", "5m")
    for name, role in ROLES.items():
        subprocess.run([sys.executable, "-m", "broadcaster", "user", "add", name, "--role", role, "--password-stdin"],
                       env=env, input=PASSWORDS[name] + "\n", text=True, check=True, capture_output=True)
    env["_TMP"] = str(tmp_path)
    daemon = DaemonProcess(env)
    port = free_port()
    web_log = open(tmp_path / "web.log", "w+")  # noqa: SIM115
    web = subprocess.Popen([sys.executable, "-m", "broadcaster", "web", "--port", str(port)], env=env,
                           stdout=web_log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/login")
        yield {"base": base, "tmp": tmp_path, "env": env}
    finally:
        web.terminate()
        web.wait(timeout=30)
        web_log.close()
        daemon.stop()


def sign_in(page, base: str, name: str) -> None:
    page.goto(base + "/")
    assert "/login" in page.url  # no page without a session
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_operator_and_approver_review_approve_announce_and_download(browser, commune):
    base, tmp = commune["base"], commune["tmp"]

    # The operator drafts; the approve button is not offered, and the server refuses it anyway.
    operator = browser.new_context(accept_downloads=True)
    page = operator.new_page()
    sign_in(page, base, "oanh")
    assert "ĐANG CHẠY" in page.inner_text("#daemon")
    assert "Một cửa liên thông" not in page.inner_text("#next")  # a draft never airs
    page.goto(base + "/content/1")
    assert page.locator("#approve").count() == 0
    forged = page.request.post(base + "/content/1/approve", form={"csrf_token": "made-up"})
    assert forged.status == 400
    operator.close()

    # The approver approves it, and the next slot's preview now carries it.
    approver = browser.new_context(accept_downloads=True)
    page = approver.new_page()
    sign_in(page, base, "duyet")
    page.goto(base + "/content/1")
    page.click("#approve")
    assert "đã duyệt" in page.inner_text("#status")
    assert "duyet" in page.inner_text("#approved-by")
    page.goto(base + "/")
    assert "[1] Một cửa liên thông" in page.locator("#next .slot").first.inner_text()

    # An emergency, confirmed, aired by the running daemon, seen in the log.
    page.goto(base + "/announce")
    page.fill("textarea[name=text]", "Bão số 3 sắp đổ bộ, bà con chằng chống nhà cửa, không ra biển.")
    page.click("button.danger")
    assert "Bão số 3" in page.inner_text("#confirm-text")
    page.click("#confirm")
    page.wait_for_url(f"{base}/log?item=*")
    deadline = time.monotonic() + 60
    while "đã phát" not in page.inner_text("table.log") and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    log_text = page.inner_text("table.log")
    assert "đã phát" in log_text and "duyet (khẩn" in log_text
    assert list((tmp / "drop").glob("*")), "the announcement reached the station's drop folder"

    # The XLSX download opens and holds the aired announcement.
    page.goto(base + "/log")
    with page.expect_download() as download_info:
        page.click("#log-xlsx")
    saved = tmp / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    rows = list(load_workbook(saved).active.iter_rows(values_only=True))
    assert rows[0][:4] == ("Số", "Thời điểm", "Kênh", "Trạng thái")
    assert any(row[3] == "đã phát" and "duyet" in (row[10] or "") for row in rows[1:])

    # The report page draws its chart (an image the browser decoded) and offers the XLSX.
    page.goto(base + "/report?plan=911/KH-UBND")
    assert page.evaluate("document.querySelector('img.chart').naturalWidth") > 100
    with page.expect_download() as report_download:
        page.click("#report-xlsx")
    book = load_workbook(io.BytesIO(Path(report_download.value.path()).read_bytes()))
    assert "Nhật ký" in book.sheetnames
    approver.close()


def test_daemon_serves_the_console_when_enabled(tmp_path):
    config = tmp_path / "broadcaster.toml"
    env = {**os.environ, "BROADCASTER_CONFIG": str(config), "_TMP": str(tmp_path)}
    cli(env, "init", "--data-dir", str(tmp_path / "data"))
    offline_config(config)
    port = free_port()
    text = config.read_text(encoding="utf-8").replace("enabled = false", "enabled = true", 1)
    config.write_text(text.replace("port = 8090", f"port = {port}", 1), encoding="utf-8")
    daemon = DaemonProcess(env)
    try:
        wait_http(f"http://127.0.0.1:{port}/login")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            assert "Đăng nhập" in response.read().decode()
    finally:
        assert daemon.stop() == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
    # The port taken by something else: the daemon still runs (and airs), and says why there is no console.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the last connections may linger
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        daemon = DaemonProcess(env)
        assert daemon.stop() == 0
    assert "web console not started" in Path(daemon.log.name).read_text()
