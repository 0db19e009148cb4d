"""Seeded mutations of the example plans, contacts and content files through the import commands.

For every case: no traceback, a refusal is printed as lines that each name the
file (with its line or field where there is one), and a refused import leaves
the database exactly as it was. Set ``BROADCASTER_FUZZ_CASES`` / ``_SEED`` to
run more or other cases; a failure names the seed and case to replay.
"""

from __future__ import annotations

import os
import random
import re
import time
import unicodedata
from pathlib import Path

from click.testing import CliRunner

from broadcaster.app import App
from broadcaster.cli.main import cli
from tests.conftest import EXAMPLES, db_snapshot

CASES = int(os.environ.get("BROADCASTER_FUZZ_CASES", "1050"))
SEED = int(os.environ.get("BROADCASTER_FUZZ_SEED", "20261201"))
BUDGET_S = 120.0  # a guard against a hang, not a speed target

SOURCES = [
    *(("plan", "import", path) for path in sorted((EXAMPLES / "plans").glob("*.toml"))),
    ("contacts", "import", EXAMPLES / "contacts" / "phuoc-ha.csv"),
    ("content", "import", EXAMPLES / "content" / "ninh-thuan-2023.toml"),
]
HIDDEN = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066",
          "\u2069", "\U0001f4e2", "\x00", "\x07", "\x1b"]
HUGE = ["1e309", "-1", "inf", "nan", "99999999999999999999", "0", "-0.0", "1e-400", '"12"', "[1, 2]", "{a = 1}",
        "true", '""', '"' + "x" * 200_000 + '"']


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _junk(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]


def _bom(data: bytes, rng: random.Random) -> bytes:
    return b"\xef\xbb\xbf" + data


def _crlf(data: bytes, rng: random.Random) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _nfd(data: bytes, rng: random.Random) -> bytes:
    return unicodedata.normalize("NFD", data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _hidden(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text))
        text = text[:at] + rng.choice(HIDDEN) + text[at:]
    return text.encode("utf-8", "surrogateescape")


def _value(data: bytes, rng: random.Random) -> bytes:
    """A TOML value (or a CSV cell) replaced by a wrong type or a huge value."""
    text = data.decode("utf-8", "surrogateescape")
    spots = list(re.finditer(r"(?m)(=\s*)([^\n]+)$", text)) or list(re.finditer(r",([^,\n]*)", text))
    if not spots:
        return data
    spot = rng.choice(spots)
    group = spot.lastindex
    return (text[: spot.start(group)] + rng.choice(HUGE) + text[spot.end(group):]).encode("utf-8", "surrogateescape")


def _duplicate(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    at = rng.randrange(len(lines))
    return b"\n".join(lines[: at + 1] + [lines[at]] + lines[at + 1:])


def _swap_lines(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return b"\n".join(lines)


MUTATIONS = [_truncate, _flip, _junk, _bom, _crlf, _nfd, _hidden, _value, _duplicate, _swap_lines]


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    names = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutation = rng.choice(MUTATIONS)
        names.append(mutation.__name__.strip("_"))
        data = mutation(data, rng) if data else data
    return data, "+".join(names)


def test_mutated_import_files_never_crash_and_refusals_change_nothing(workspace: Path):
    app = App.load(None)
    runner = CliRunner()
    rng = random.Random(SEED)
    started = time.monotonic()
    outcomes = {"imported": 0, "refused": 0}
    before = db_snapshot(app)
    for case in range(CASES):
        group, command, source = rng.choice(SOURCES)
        data, how = mutate(source.read_bytes(), rng)
        target = workspace / "fuzz" / f"case-{case}{source.suffix}"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
        result = runner.invoke(cli, [group, command, str(target)], catch_exceptions=True)
        replay = f"seed {SEED} case {case} ({how}) on {source.name}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{replay}: {type(result.exception).__name__}: {result.exception}") \
                from result.exception
        assert "Traceback" not in result.output, replay
        after = db_snapshot(app)
        if result.exit_code == 0:
            outcomes["imported"] += 1
        else:
            outcomes["refused"] += 1
            errors = [line for line in result.output.splitlines() if line.startswith("Lỗi / Error:")]
            assert errors, f"{replay}: {result.output}"
            assert target.name in errors[0], f"{replay}: {errors[0]}"  # names the file (and line or field)
            assert after == before, f"{replay}: the database changed although the import was refused"
        before = after
        target.unlink()
        assert time.monotonic() - started < BUDGET_S, f"{case} cases took over {BUDGET_S} s"
    assert outcomes["refused"] > CASES // 2 and outcomes["imported"] > 0, outcomes
