"""The plans shipped in examples/plans import through the CLI and say what they are."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

PLAN_FILES = sorted((EXAMPLES / "plans").glob("*.toml"))
ILLUSTRATIVE_VI = "Chỉ tiêu minh họa"
ILLUSTRATIVE_EN = "Illustrative targets"


def load(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_there_are_example_plans():
    assert len(PLAN_FILES) >= 3


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.stem)
def test_example_imports_and_shows_its_topics(run, path):
    raw = load(path)
    code = raw["plan"]["code"]
    topics = [t["code"] for t in raw["topics"]]
    assert all(c.isascii() and c.isalnum() and c.isupper() for c in topics), "short ASCII upper-case codes"
    targets = sum(len(t.get("targets", [])) for t in raw["topics"]) + len(raw.get("targets", []))
    run("init")
    out = run("plan", "import", path).output
    assert code in out and f"{len(topics)} chủ đề/topics" in out and f"{targets} chỉ tiêu/targets" in out
    shown = json.loads(run("plan", "show", code, "--json").output)
    assert [t["code"] for t in shown["topics"]] == topics
    assert [t["title"] for t in shown["topics"]] == [t["title"] for t in raw["topics"]]
    assert len(shown["targets"]) == targets
    assert shown["issuer"] and shown["issued_on"] and shown["audiences"]
    seed = shown["source"].split(" ", 1)[0]
    assert seed.startswith("seeds/") and seed.endswith(".txt"), "source names the seed it was built from"


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.stem)
def test_illustrative_targets_are_declared(run, path):
    raw = load(path)
    header = raw["plan"]
    has_targets = any(t.get("targets") for t in raw["topics"]) or raw.get("targets")
    assert not has_targets or "illustrative_targets" in header, "say whether the targets come from the source"
    if not header.get("illustrative_targets"):
        return
    assert ILLUSTRATIVE_VI in header["notes"] and ILLUSTRATIVE_EN in header["notes"]
    run("init")
    run("plan", "import", path)
    shown = json.loads(run("plan", "show", header["code"], "--json").output)
    assert ILLUSTRATIVE_VI in shown["notes"] and ILLUSTRATIVE_EN in shown["notes"]
    assert "minh họa" in run("plan", "show", header["code"]).output


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.stem)
def test_examples_name_no_station(path):
    """Stations differ per commune; an example that named one would not import elsewhere."""
    raw = load(path)
    for target in [t for topic in raw["topics"] for t in topic.get("targets", [])] + raw.get("targets", []):
        assert "station" not in target


def test_all_examples_live_together(run):
    run("init")
    for path in PLAN_FILES:
        run("plan", "import", path)
    listed = json.loads(run("plan", "list", "--json").output)
    assert sorted(p["code"] for p in listed) == sorted(load(p)["plan"]["code"] for p in PLAN_FILES)


def test_example_content_names_topics_of_the_example_plans():
    """The demo content refers to topics as PLAN:CODE; each must exist in an example plan."""
    topics = {f"{raw['plan']['code']}:{t['code']}" for raw in map(load, PLAN_FILES) for t in raw["topics"]}
    for path in sorted((EXAMPLES / "content").glob("*.toml")):
        for item in load(path)["items"]:
            assert "topic" not in item or item["topic"] in topics, (path.name, item["title"])
