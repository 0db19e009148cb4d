"""80 columns for commands other rooms own (report, log, status, schedule list, sms status).

Kept apart so it merges easily with their reworks: it only runs each command and measures lines.
"""

from __future__ import annotations

import pytest

from tests.screen.conftest import too_wide


@pytest.mark.parametrize("args", [
    ["report", "--plan", "911/KH-UBND", "--as-of", "2023-12-31"],
    ["report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--lang", "en", "--as-of", "2023-12-31"],
    ["log", "--limit", "0"],
    ["status"],
    ["schedule", "list"],
    ["sms", "status"],
    ["sms", "status", "--campaign", "1"],
])
def test_fits_80_columns(run, busy, narrow, args):
    output = run(*args).output
    assert output.strip()
    assert too_wide(output) == [], output


def test_status_never_prints_none(run, busy, narrow):
    assert "None" not in run("status").output
