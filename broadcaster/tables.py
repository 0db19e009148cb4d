"""Tables that fit the screen they are printed on (80 columns on a commune PC).

A table is drawn as is when its natural width fits; otherwise empty columns,
then the columns a caller marks as optional, are dropped in order until it
does; otherwise long titles are shortened and cells wrap between words if
every word fits; otherwise
each row becomes a block of ``heading: value`` lines. Nothing printed is ever
wider than the width asked for.
"""

from __future__ import annotations

import io
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

MIN_WIDTH = 40


def terminal_width() -> int:
    """Columns of the terminal (``COLUMNS`` wins); 80 when output is not a terminal."""
    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


def _cells(row: Sequence[Any]) -> list[str]:
    return ["" if cell is None else str(cell) for cell in row]


def _rich_table(headers: Sequence[str], rows: list[list[str]], title: str | None, justify: Sequence[str]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for header, side in zip(headers, justify, strict=True):
        table.add_column(header, justify=side, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, width: int, title: str | None = None,
                 optional: Sequence[int] = (), clip: Sequence[int] = (), justify: Sequence[str] | None = None) -> str:
    """The table as text no wider than ``width``.

    ``optional`` lists column indexes that may be left out on a narrow screen, least useful first;
    ``clip`` columns (long titles) are shortened with "…" when cells must wrap.
    ``justify`` gives each column "left" or "right".
    """
    from rich.console import Console
    from rich.measure import Measurement

    headers = list(headers)
    body = [_cells(row) for row in rows]
    sides = list(justify or ["left"] * len(headers))
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None, highlight=False,
                      emoji=False, markup=False)
    if not body:
        return f"{title} (không có / none)\n" if title else "(không có / none)\n"
    empty = [i for i in range(len(headers)) if not any(row[i].strip() for row in body)]
    keep = list(range(len(headers)))
    options = console.options.update_width(10_000)  # measure the natural width, not one clamped to the screen
    table = None
    for dropped in [None, *empty, *optional]:
        if dropped is not None:
            if dropped not in keep or len(keep) == 1:
                continue
            keep.remove(dropped)
        table = _rich_table([headers[i] for i in keep], [[row[i] for i in keep] for row in body], title,
                            [sides[i] for i in keep])
        if Measurement.get(console, options, table).maximum <= width:
            console.print(table)
            return out.getvalue()
    if clip:
        limit = max(12, width // 4)
        table = _rich_table([headers[i] for i in keep],
                            [[_clipped(row[i], limit) if i in clip else row[i] for i in keep] for row in body],
                            title, [sides[i] for i in keep])
    if Measurement.get(console, options, table).minimum <= width:  # cells wrap between words
        console.print(table)
        return out.getvalue()
    return render_blocks(headers, body, width=width, title=title)


def render_blocks(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, width: int,
                  title: str | None = None) -> str:
    """One record per block: the first cell as its heading, then ``heading: value`` for the others."""
    lines: list[str] = []
    if title:
        lines += textwrap.wrap(title, width) or [""]
    for row in rows:
        cells = _cells(row)
        lines.append(textwrap.shorten(f"── {headers[0]} {cells[0]} ──", width, placeholder="…"))
        for header, cell in zip(headers[1:], cells[1:], strict=True):
            if cell.strip():
                lines += textwrap.wrap(f"  {header}: {cell}", width, subsequent_indent="      ",
                                       break_long_words=True, break_on_hyphens=False)
    return "\n".join(lines) + "\n"
