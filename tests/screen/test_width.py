"""Every table of the commands this room owns fits 80 columns."""

from __future__ import annotations

import pytest

from broadcaster.tables import render_blocks, render_table
from tests.screen.conftest import LONG_TITLE, too_wide


@pytest.mark.parametrize("args", [
    ["content", "list"],
    ["content", "show", "2"],
    ["plan", "show", "911/KH-UBND"],
    ["plan", "list"],
    ["station", "list"],
    ["contacts", "list"],
    ["contacts", "groups"],
])
def test_fits_80_columns(run, busy, narrow, args):
    output = run(*args).output
    assert output.strip()
    assert too_wide(output) == [], output


def test_content_list_keeps_id_title_and_status_at_80(run, busy, narrow):
    output = run("content", "list").output
    assert "Hướng dẫn người dân" in output and "đã duyệt" in output


def test_wide_terminal_gets_the_full_table(run, busy, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    output = run("content", "list").output
    assert any(LONG_TITLE in line and "2023-07-01" in line for line in output.splitlines()), output


def test_render_table_drops_optional_then_wraps_then_blocks():
    headers = ["#", "Tên/name", "Ghi chú/notes"]
    rows = [[1, "Bản tin sáng", "x" * 30]]
    assert "Ghi chú" in render_table(headers, rows, width=80)
    dropped = render_table(headers, rows, width=30, optional=[2])
    assert "Ghi chú" not in dropped and "Bản tin sáng" in dropped
    assert too_wide(dropped, 30) == []
    blocks = render_table(headers, [[1, "a" * 50, "b" * 50]], width=30)
    assert blocks == render_blocks(headers, [[1, "a" * 50, "b" * 50]], width=30)
    assert blocks.splitlines()[0].startswith("── # 1")
    assert too_wide(blocks, 30) == []


def test_empty_columns_go_first():
    out = render_table(["#", "a", "b"], [[1, "", "y" * 60]], width=40)
    assert " a " not in out.splitlines()[1] and too_wide(out, 40) == []
