"""Where the files the program ships live: example plans, content, contacts and the jingles.

In a checkout they are the repository's ``examples/`` and ``audio/``; a wheel carries copies
inside the package (``broadcaster/examples``, ``broadcaster/audio_assets``, see ``setup.py``),
so ``broadcaster demo`` works from a plain ``pip install``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped(in_package: str, in_checkout: str) -> Path:
    packaged = PACKAGE_DIR / in_package
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / in_checkout


EXAMPLES_DIR = _shipped("examples", "examples")
AUDIO_DIR = _shipped("audio_assets", "audio")
