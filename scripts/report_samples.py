#!/usr/bin/env python3
"""Render the demo's report as a reader sees it: docs/report-sample-*.png, docs/report-docx-*.png,
docs/report-chart.png.

Usage: .venv/bin/python scripts/report_samples.py [--workspace DIR] [--period 2026-12] [--as-of DATE]

Runs ``broadcaster demo`` into DIR (default: a temporary folder) unless DIR
already holds a demo workspace, writes the XLSX, the DOCX and the chart with
``broadcaster report``, prints the XLSX and DOCX to PDF with LibreOffice
headless and the pages to PNG with pdftoppm.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def broadcaster(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "broadcaster", *args], check=True, cwd=REPO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a demo workspace (made when missing)")
    parser.add_argument("--period", help="report period (default: the demo's whole plan)")
    parser.add_argument("--as-of", dest="as_of", help="as of this local date-time (default: now)")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="report-samples-") as scratch:
        scratch = Path(scratch)
        workspace = args.workspace or scratch / "demo"
        if not (workspace / "broadcaster.toml").exists():
            broadcaster("demo", "--dir", str(workspace))
        config = str(workspace / "broadcaster.toml")
        common = ["--config", config, "report", "--plan", "911/KH-UBND"]
        common += ["--period", args.period] if args.period else []
        common += ["--as-of", args.as_of] if args.as_of else []
        broadcaster(*common, "--format", "xlsx", "-o", str(scratch / "report-sample.xlsx"),
                    "--chart", str(DOCS / "report-chart.png"))
        broadcaster(*common, "--format", "docx", "-o", str(scratch / "report-docx.docx"))
        subprocess.run(["soffice", f"-env:UserInstallation=file://{scratch / 'lo-profile'}", "--headless",
                        "--convert-to", "pdf", "--outdir", str(scratch), str(scratch / "report-sample.xlsx"),
                        str(scratch / "report-docx.docx")], check=True, capture_output=True, timeout=300)
        for old in [*DOCS.glob("report-sample-*.png"), *DOCS.glob("report-docx-*.png")]:
            old.unlink()
        for name in ("report-sample", "report-docx"):
            subprocess.run(["pdftoppm", "-r", str(args.dpi), "-png", str(scratch / f"{name}.pdf"),
                            str(DOCS / name)], check=True)
    for path in sorted(DOCS.glob("report-*.png")):
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
