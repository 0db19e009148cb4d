"""A workspace with long titles, many columns and every kind of row, to print on an 80-column screen."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from tests.reports.conftest import dataset  # noqa: F401 - the shared delivery log, used as a fixture

WIDTH = 80
LONG_TITLE = "Hướng dẫn người dân nộp hồ sơ trực tuyến trên Cổng dịch vụ công quốc gia và Cổng tỉnh"


def too_wide(output: str, width: int = WIDTH) -> list[str]:
    return [line for line in output.splitlines() if cell_len(line) > width]


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    return WIDTH


@pytest.fixture
def busy(run, dataset, workspace):  # noqa: F811 - the fixture above
    """The report dataset plus content, contacts, schedules and an SMS campaign."""
    csv = workspace / "c.csv"
    csv.write_text("phone,name,village,groups\n0912345678,Lò Văn A,Bản Na Lay,Bản Na Lay;Hội phụ nữ xã\n"
                   "0987654321,Nguyễn Thị Bình,Thôn Phước Lợi,Bản Na Lay\n", encoding="utf-8")
    run("contacts", "import", csv)
    for n in range(3):
        run("content", "add", "--title", f"{LONG_TITLE} ({n})", "--topic", "CDS", "--approve",
            "--text", "Bà con có thể nộp hồ sơ trực tuyến.", "--valid-from", "2023-07-01",
            "--valid-until", "2030-07-31 17:30", "--priority", "priority")
    run("schedule", "add", "--station", "XA-01", "--cron", "30 5,17 * * 1-5", "--length", "15m",
        "--name", "Bản tin sáng và chiều các ngày làm việc", "--topic", "CDS", "--topic", "TTHC")
    run("schedule", "add", "--station", "XA-02", "--channel", "sms", "--group", "Bản Na Lay",
        "--cron", "0 9 * * 1")
    run("sms", "send", "--item", str(dataset["item"] + 1), "--group", "Bản Na Lay")
    return dataset
