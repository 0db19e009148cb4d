"""Bad values are refused at import with one line naming file, line or field; nothing is stored."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, db_snapshot

PLAN = (EXAMPLES / "plans" / "ninh-thuan-2023.toml").read_text(encoding="utf-8")
CONTACTS = (EXAMPLES / "contacts" / "phuoc-ha.csv").read_text(encoding="utf-8")


def refused(run, app, *args):
    before = db_snapshot(app)
    result = run(*args, ok=False)
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert db_snapshot(app) == before
    return lines


@pytest.mark.parametrize("amount", ["inf", "nan", "-inf", "-3", "0", "1e12"])
def test_plan_amounts_must_be_finite_positive_and_sane(run, app, workspace, amount):
    path = workspace / "plan.toml"
    path.write_text(PLAN.replace("amount = 4\n", f"amount = {amount}\n", 1), encoding="utf-8")
    (line,) = refused(run, app, "plan", "import", path)
    assert "plan.toml" in line and "amount" in line


@pytest.mark.parametrize("hidden", ["\u200b", "\u202e", "\u2066", "\ufeff", "\x07", "\U0001f4e2", "\u00ad"])
def test_plan_and_topic_codes_with_hidden_or_symbol_characters_are_refused(run, app, workspace, hidden):
    path = workspace / "plan.toml"
    path.write_text(PLAN.replace('code = "CHUTRUONG"', f'code = "CHU{hidden}TRUONG"', 1)
                    .replace("\x07", "\\u0007"), encoding="utf-8")
    (line,) = refused(run, app, "plan", "import", path)
    assert "topics[1].code" in line and f"U+{ord(hidden):04X}" in line


@pytest.mark.parametrize("hidden", ["\u200b", "\u200f", "\u2067", "\U0001f600", "\x01"])
def test_a_group_that_only_looks_like_toan_xa_is_refused(run, app, workspace, hidden):
    path = workspace / "c.csv"
    rows = CONTACTS.splitlines()
    rows[2] = rows[2].replace("toan-xa", f"toan{hidden}-xa", 1)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    lines = refused(run, app, "contacts", "import", path)
    assert any("c.csv:3 " in line and f"U+{ord(hidden):04X}" in line for line in lines), lines


def test_a_group_added_on_the_command_line_with_a_zero_width_space_is_refused(run, app, workspace):
    path = workspace / "c.csv"
    path.write_text(CONTACTS, encoding="utf-8")
    lines = refused(run, app, "contacts", "import", path, "--group", "toan\u200b-xa")
    assert len(lines) == 1 and "U+200B" in lines[0]


@pytest.mark.parametrize("kind", ["contacts", "content"])
def test_a_cell_over_the_csv_limit_is_one_clear_line(run, app, workspace: Path, kind):
    huge = "x" * (csv.field_size_limit() + 10)
    path = workspace / f"{kind}.csv"
    if kind == "contacts":
        path.write_text(f'phone,name\n0868968768,Hùng\n0833929725,"{huge}"\n', encoding="utf-8")
    else:
        path.write_text(f'title,text\nTin một,"{huge}"\n', encoding="utf-8")
    (line,) = refused(run, app, kind, "import", path)
    assert f"{kind}.csv:{3 if kind == 'contacts' else 2}" in line and str(csv.field_size_limit()) in line
