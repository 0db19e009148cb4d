"""A wheel installed outside the repository runs init, render and the demo (the one slow end-to-end test).

Offline and fast: the wheel is built without build isolation, installed with --no-index into a fresh
venv whose only other path is this environment's site-packages (for the dependencies; a plain path
entry, so the checkout's editable install is not seen), and run from an empty folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "broadcaster", "examples", "audio")


def _run(args: list, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(tmp: Path) -> Path:
    source = tmp / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp / "dist", source], cwd=tmp, env=os.environ.copy())
    return next((tmp / "dist").glob("broadcaster-*.whl"))


def test_wheel_carries_its_data_and_declares_its_imports(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for needed in ("broadcaster/examples/plans/ninh-thuan-2023.toml", "broadcaster/examples/content/ninh-thuan-2023.toml",
                   "broadcaster/examples/contacts/phuoc-ha.csv", "broadcaster/audio_assets/intro.wav",
                   "broadcaster/audio_assets/outro.wav", "broadcaster/data/config.example.toml",
                   "broadcaster/migrations/versions/0001_initial_schema.py"):
        assert needed in names, needed
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    requires = [line.split(":", 1)[1].strip().split(";")[0] for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    for package in ("pydantic", "urllib3", "click", "sqlmodel"):
        assert any(r.startswith(package) for r in requires), package


def test_installed_wheel_runs_init_render_and_demo_outside_the_repo(tmp_path):
    wheel = build_wheel(tmp_path)
    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    fresh_site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           cwd=tmp_path, env=os.environ.copy()).stdout.strip())
    (fresh_site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", wheel],
         cwd=tmp_path, env=os.environ.copy())

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BROADCASTER_CONFIG", "COLUMNS")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"))
    where = _run([python, "-c", "import broadcaster, broadcaster.assets as a; print(broadcaster.__file__);"
                  "print(a.EXAMPLES_DIR)"], cwd=empty, env=env).stdout.split()
    assert all(str(fresh) in line for line in where), where  # the wheel's copy, not the checkout

    tool = fresh / "bin" / "broadcaster"
    assert "config created" in _run([tool, "init"], cwd=empty, env=env).stdout
    _run([tool, "station", "add", "XA-01", "--name", "Xã Phước Hà"], cwd=empty, env=env)
    _run([tool, "plan", "import", Path(where[1]) / "plans" / "ninh-thuan-2023.toml"], cwd=empty, env=env)
    _run([tool, "content", "add", "--title", "Thử", "--topic", "TTHC", "--channel", "loudspeaker",
          "--text", "Ủy ban nhân dân xã thông báo lịch tiếp công dân."], cwd=empty, env=env)
    config = tmp_path / "cfg" / "broadcaster" / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]'),
                      encoding="utf-8")
    rendered = json.loads(_run([tool, "render", "--item", "1", "-o", empty / "thu.mp3", "--json"],
                               cwd=empty, env=env).stdout)
    assert rendered["duration_s"] > 5 and (empty / "thu.mp3").stat().st_size > 10_000

    demo = _run([tool, "demo", "--start-in", "3"], cwd=empty, env=env, timeout=240).stdout
    assert "played" in demo and "911/KH-UBND" in demo
    assert list((empty / "demo-workspace" / "loa-drop").glob("*.mp3"))
