"""Residents' numbers are private on a shared PC: owner-only modes, repaired by ``init``."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime

import pytest

from broadcaster.app import App
from broadcaster.db import session_scope
from broadcaster.models import ContentItem
from broadcaster.sms.campaigns import create_campaign
from broadcaster.sms.dispatcher import dispatch_campaign

NOON = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # midday at the station, outside quiet hours


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.sqlite  # the database is a file in the data folder
def test_data_folder_database_and_outbox_are_owner_only_even_with_a_loose_umask(run, isolated_home, tmp_path):
    previous = os.umask(0o022)
    try:
        run("init")
        app = App.load(None)
        config = app.config
        run("contacts", "import", _contacts(tmp_path))
        with session_scope(app.ready_engine()) as session:
            item = ContentItem(title="Tin", channels=["sms"], status="approved", sms_text="Xin chao ba con")
            session.add(item)
            session.flush()
            cid = create_campaign(session, item.id, "toan-xa", config=config, now=NOON).id
        assert dispatch_campaign(app, cid, now=lambda: NOON).counts["sent"] == 2
    finally:
        os.umask(previous)
    database = config.database_url.split("///", 1)[-1]
    assert mode(config.data_dir) == 0o700
    assert mode(database) == 0o600 and mode(database + "-wal") == 0o600
    assert mode(config.sms_outbox_path) == 0o600 and json.loads(config.sms_outbox_path.read_text().splitlines()[0])


@pytest.mark.sqlite
def test_init_repairs_looser_modes_and_says_so(run, isolated_home):
    run("init")
    config = App.load(None).config
    database = config.database_url.split("///", 1)[-1]
    os.chmod(config.data_dir, 0o755)
    os.chmod(database, 0o644)
    out = run("init").output
    assert mode(config.data_dir) == 0o700 and mode(database) == 0o600
    assert "owner-only: " in out and "nothing changed" not in out
    assert "owner-only" not in run("init").output  # nothing left to repair


def _contacts(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("phone,groups\n0868968768,toan-xa\n0833929725,toan-xa\n", encoding="utf-8")
    return path
