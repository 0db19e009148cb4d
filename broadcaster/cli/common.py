"""Shared CLI pieces: the app object, option decorators, output helpers."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import click

from ..app import App
from ..errors import BroadcasterError


class BroadcasterGroup(click.Group):
    """A group that turns core errors into one line on stderr and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BroadcasterError as exc:
            click.echo(f"Lỗi / Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except ValueError as exc:  # parse errors from the core name their field
            if isinstance(exc, click.ClickException):
                raise
            click.echo(f"Lỗi / Error: {exc}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if type(exc).__name__ != "OperationalError":  # the database could not be written or read
                raise
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            click.echo(f"Lỗi cơ sở dữ liệu (ổ đĩa đầy?) / database error (disk full?): {reason}", err=True)
            ctx.exit(1)


def get_app(ctx: click.Context | None = None) -> App:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, App):
        root.obj = App.load(root.params.get("config_path"))
    return root.obj


def pass_app(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(get_app(), *args, **kwargs)

    return wrapper


def json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="In ra JSON / print JSON.")(func)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
        count += 1
    console = Console(file=sys.stdout, width=max(140, Console().width))
    if count == 0:
        console.print(title or "", "(không có / none)")
    else:
        console.print(table)


def fmt_dt(moment: datetime | None, tz_name: str | None = None) -> str:
    if moment is None:
        return ""
    from ..timeutil import local

    return local(moment, tz_name).strftime("%Y-%m-%d %H:%M") if tz_name else moment.isoformat()
