"""Two PCs dispatching one campaign from one database at once (SQLite here; PostgreSQL when the suite runs on it).

Each PC is a ``broadcaster sms send`` process with its own data folder (so the
folder's dispatch lock does not keep them apart) and the same database: only the
claims in the database (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock
on SQLite) stand between them and a message sent twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from broadcaster.db import session_scope
from broadcaster.sms.campaigns import create_campaign

SECOND_FROM = "+15005550007"


def _pc_config(sms, root: Path, name: str, from_number: str) -> Path:
    url = sms.app().config.database_url
    text = sms.config_path.read_text(encoding="utf-8")
    text = text.replace(f'data_dir = "{sms.data_dir.as_posix()}"', f'data_dir = "{(root / name).as_posix()}"')
    text = text.replace('from_number = "+15005550006"', f'from_number = "{from_number}"')
    path = root / f"{name}.toml"
    path.write_text(text + f'\n[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


def _send(config: Path, item_id: int, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, BROADCASTER_CONFIG=str(config))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", "from broadcaster.cli.main import cli; cli()", "sms", "send",
                             "--item", str(item_id), "--group", "Thôn 1"],
                            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_pcs_sending_one_campaign_in_parallel_send_every_row_exactly_once(sms, tmp_path):
    sms.configure(concurrency=3, rate_per_second=0.0, twilio={"timeout": 20.0})
    numbers = sms.seed_contacts(80)
    item_id = sms.add_item()
    app = sms.app()
    with session_scope(app.engine) as session:
        campaign_id = create_campaign(session, item_id, "Thôn 1", config=app.config).id
    sms.fake.delay = 0.1  # about 2.7 s of sending for one PC alone: both start at once and share the work
    first = _send(_pc_config(sms, tmp_path, "pc-1", "+15005550006"), item_id, sms.root)
    second = _send(_pc_config(sms, tmp_path, "pc-2", SECOND_FROM), item_id, sms.root)
    outputs = [proc.communicate(timeout=120)[0] for proc in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs

    creates = [r["form"] for r in sms.fake.requests
               if r["method"] == "POST" and r["path"].endswith("/Messages.json")]
    assert Counter(form["To"] for form in creates) == Counter(numbers)  # each recipient exactly once
    by_pc = Counter(form["From"] for form in creates)
    assert by_pc["+15005550006"] and by_pc[SECOND_FROM], by_pc  # both PCs did send
    rows = sms.rows(campaign_id)
    assert {r.status for r in rows} == {"sent"}
    assert len({r.provider_id for r in rows}) == len(numbers)
    assert sms.campaigns()[0].status == "done"
