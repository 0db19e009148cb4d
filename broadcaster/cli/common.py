"""Shared CLI pieces: the app object, option decorators, output helpers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import click

from ..app import App
from ..errors import BroadcasterError, did_you_mean
from ..tables import render_table, terminal_width

USAGE_WORDS = (
    (click.NoSuchOption, "không có tùy chọn này"),
    (click.MissingParameter, "thiếu tham số bắt buộc"),
    (click.BadParameter, "giá trị không hợp lệ"),
    (click.BadOptionUsage, "tùy chọn dùng sai"),
    (click.BadArgumentUsage, "tham số dùng sai"),
    (click.UsageError, "lệnh dùng sai"),
)


def vietnamese_usage_error(exc: click.UsageError) -> None:
    """Put Vietnamese in front of click's English message (once, however many groups it passes)."""
    if getattr(exc, "vietnamese", False):
        return
    words = next(text for kind, text in USAGE_WORDS if isinstance(exc, kind))
    english = exc.format_message
    exc.format_message = lambda: f"{words} / {english()}"
    exc.vietnamese = True


class BroadcasterGroup(click.Group):
    """A group that turns core errors into one line on stderr and exit 1."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # noqa: ANN201 - click's own tuple
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if args and not args[0].startswith("-"):
                exc.message += did_you_mean(args[0], self.list_commands(ctx))
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            vietnamese_usage_error(exc)
            raise
        except BroadcasterError as exc:
            click.echo(f"Lỗi / Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except ValueError as exc:  # parse errors from the core name their field
            if isinstance(exc, click.ClickException):
                raise
            click.echo(f"Lỗi / Error: {exc}", err=True)
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


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None, *,
               optional: Sequence[int] = (), clip: Sequence[int] = ()) -> None:
    """A table that fits the terminal (see ``broadcaster.tables``): ``optional`` columns are left out
    first on a narrow screen, then ``clip`` columns (long titles) are shortened."""
    click.echo(render_table(headers, rows, width=terminal_width(), title=title, optional=optional, clip=clip),
               nl=False)


def fmt_dt(moment: datetime | None, tz_name: str | None = None) -> str:
    if moment is None:
        return ""
    from ..timeutil import local

    return local(moment, tz_name).strftime("%Y-%m-%d %H:%M") if tz_name else moment.isoformat()


def _shown(value: Any, limit: int) -> str:
    if value is None or value == "" or value == []:
        return "(trống/none)"
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def echo_changes(changes: Iterable[tuple[str, Any, Any]], labels: dict[str, str] | None = None) -> None:
    """One line per changed field: ``  field: before → after`` (long texts shortened to fit)."""
    width = terminal_width()
    for key, before, after in changes:
        label = (labels or {}).get(key, key)
        room = max(12, (width - len(label) - 8) // 2)
        click.echo(f"  {label}: {_shown(before, room)} → {_shown(after, room)}")


def echo_wrapped(text: str, indent: str = "  ") -> None:
    """A line of prose folded to the terminal width; continuation lines are indented."""
    import textwrap

    for paragraph in str(text).splitlines() or [""]:
        click.echo("\n".join(textwrap.wrap(paragraph, terminal_width(), subsequent_indent=indent,
                                           break_on_hyphens=False)) or "")
