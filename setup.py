"""Only a build step pyproject.toml cannot say: copy examples/ and audio/ into the package.

A wheel then carries what ``broadcaster demo`` and the jingles need (see broadcaster/assets.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"examples": "examples", "audio": "audio_assets"}  # checkout folder -> folder in the package


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's folders directly
            return
        for source, target in SHIPPED.items():
            destination = Path(self.build_lib) / "broadcaster" / target
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__", ".*"))


setup(cmdclass={"build_py": BuildWithAssets})
