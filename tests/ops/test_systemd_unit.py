"""The systemd unit is hardened yet can still write its data folder, reach the sound card and the network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "scripts" / "broadcaster.service"


def _service_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_hardened_but_can_write_its_data_and_play_sound():
    service = _service_settings()
    for key, value in {"ProtectSystem": "strict", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
                       "ProtectHome": "yes", "DevicePolicy": "closed"}.items():
        assert service[key] == [value], key
    assert "/var/lib/broadcaster" in service["ReadWritePaths"][0].split()  # the data dir docs/commune-pc.md uses
    assert service["DeviceAllow"] == ["char-alsa rw"]
    assert "PrivateDevices" not in service  # it would hide /dev/snd
    assert set(service["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert service["Group"] == ["audio"]
    docs = (ROOT / "docs" / "commune-pc.md").read_text(encoding="utf-8")
    assert "--data-dir /var/lib/broadcaster" in docs and "ReadWritePaths" in docs


def test_systemd_accepts_every_key(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # not a systemd machine: the key check above still ran
        return
    unit = UNIT.read_text(encoding="utf-8")
    unit = unit.replace("ExecStart=/opt/broadcaster/.venv/bin/broadcaster daemon", "ExecStart=/bin/true")
    unit = unit.replace("User=broadcaster", "User=root").replace("WorkingDirectory=/opt/broadcaster",
                                                                 "WorkingDirectory=/")
    path = tmp_path / "broadcaster.service"
    path.write_text(unit, encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "broadcaster.service" in line]
    assert complaints == [], complaints
