"""A year of files on a commune PC, pruned by the [retention] settings (file dates simulated)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from broadcaster import retention
from broadcaster.app import App
from broadcaster.models import Delivery

NOW = datetime.now(UTC).replace(microsecond=0)  # the CLI test prunes at the real now, seconds later
DAY = timedelta(days=1)


def aged(path: Path, days: float, data: bytes = b"x" * 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = (NOW - days * DAY).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def year_of_files(app: App, workspace: Path) -> dict[str, list[Path]]:
    bulletins = [aged(app.config.output_dir / f"XA-01_{d:03d}.mp3", d + 0.5) for d in range(365)]
    drop = workspace / "drop"
    dropped = [aged(drop / f"XA-01_{d:03d}_slot1.mp3", d + 0.5) for d in range(365)]
    foreign = aged(drop / "playlist.m3u", 400)  # the station software's own file: never ours to remove
    half = aged(drop / ".XA-01_x.mp3.abc.part", 3)
    lines = [json.dumps({"time": (NOW - d * DAY).isoformat(), "to": "+84912345678", "body": "b"}) + "\n"
             for d in range(500, -1, -1)]
    app.config.sms_outbox_path.write_text("".join(lines), encoding="utf-8")
    log = app.config.data_dir / "daemon.log"
    log_lines = []
    for d in range(200, -1, -1):
        local = (NOW - d * DAY).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        log_lines += [f"{local},123 INFO broadcaster.daemon: ngày {d}\n", "Traceback (continued)\n"]
    log.write_text("".join(log_lines), encoding="utf-8")
    rotated = aged(app.config.data_dir / "daemon.log.1", 120)
    return {"bulletins": bulletins, "dropped": dropped, "foreign": [foreign], "half": [half],
            "rotated": [rotated]}


def test_a_year_is_pruned_to_the_settings(app, workspace):
    files = year_of_files(app, workspace)
    with app.session() as session:
        session.add(Delivery(channel="sms", status="sent", created_at=NOW - 400 * DAY))
    summary = retention.prune(app, NOW)
    parts = {part.what: part for part in summary.parts}
    assert [p.exists() for p in files["bulletins"]] == [d < 90 for d in range(365)]
    assert [p.exists() for p in files["dropped"]] == [d < 30 for d in range(365)]
    assert files["foreign"][0].exists() and not files["half"][0].exists() and not files["rotated"][0].exists()
    assert (parts["bulletins"].files, parts["bulletins"].bytes) == (275, 275_000)
    assert parts["dropped"].files == 335 + 1
    outbox = app.config.sms_outbox_path.read_text(encoding="utf-8").splitlines()
    assert len(outbox) == 366 and parts["outbox"].lines == 135  # days 500..366 go, 365..0 stay
    log = (app.config.data_dir / "daemon.log").read_text(encoding="utf-8").splitlines()
    assert log[0].endswith("ngày 90") and log[1] == "Traceback (continued)" and log[-1].endswith("continued)")
    assert parts["logs"].lines == 2 * 110 and parts["logs"].files == 1
    with app.read_session() as session:
        assert len(session.exec(select(Delivery)).all()) == 1  # never pruned
    assert retention.prune(app, NOW).bytes == 0  # a second run finds nothing


def test_cli_dry_run_removes_nothing_then_prune_does(run, app, workspace):
    files = year_of_files(app, workspace)
    dry = run("db", "prune", "--dry-run").output
    assert "would remove:" in dry and "delivery log is never pruned" in dry
    assert all(p.exists() for p in files["bulletins"])
    out = run("cache", "prune").output
    assert "pruned:" in out and "rendered bulletins (giữ/keep 90 ngày/days): 275 tệp/files, 0.3 MB" in out
    assert [p.exists() for p in files["bulletins"]] == [d < 90 for d in range(365)]


def test_settings_come_from_the_config(app, workspace):
    assert app.config.retention.bulletins_days == 90
    (workspace / "r.toml").write_text(f'[broadcaster]\ndata_dir = "{app.config.data_dir.as_posix()}"\n'
                                      "[retention]\nbulletins_days = 7\n", encoding="utf-8")
    other = App.load(workspace / "r.toml")
    files = [aged(other.config.output_dir / f"b{d}.mp3", d + 0.5) for d in range(10)]
    retention.prune(other, NOW)
    assert [p.exists() for p in files] == [d < 7 for d in range(10)]
