"""Shared CLI pieces: the app object, option decorators, output helpers."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
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
        except Exception as exc:
            if type(exc).__name__ != "OperationalError":  # the database could not be written or read
                raise
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            click.echo(f"Lỗi cơ sở dữ liệu (ổ đĩa đầy?) / database error (disk full?): {reason}", err=True)
            ctx.exit(1)


class LazyCommands(MutableMapping):
    """A group's ``commands`` that imports a command's module the first time it is looked up.

    ``specs`` maps a name to ``("module:attribute", short help)``; the module is relative to
    ``package``. Commands added with ``add_command`` are kept as they are.
    """

    def __init__(self, specs: Mapping[str, tuple[str, str]], package: str) -> None:
        self.specs = dict(specs)
        self.package = package
        self.loaded: dict[str, click.Command] = {}

    def load(self, name: str) -> click.Command:
        module_name, attribute = self.specs[name][0].split(":")
        module = importlib.import_module(f"{self.package}.{module_name}")
        command = getattr(module, attribute)
        if not isinstance(command, click.Command) or command.name != name:
            raise RuntimeError(f"{module.__name__}:{attribute} is not the command {name!r}")
        return command

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            if name not in self.specs:
                raise KeyError(name)
            self.loaded[name] = self.load(name)
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self.loaded and name not in self.specs:
            raise KeyError(name)
        self.loaded.pop(name, None)
        self.specs.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self.specs
        yield from (name for name in self.loaded if name not in self.specs)

    def __len__(self) -> int:
        return len(self.specs.keys() | self.loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.specs or name in self.loaded

    def short_help(self, name: str, limit: int) -> str:
        """The listed help of a command without importing it (when it is not loaded yet)."""
        if name in self.loaded:
            return self.loaded[name].get_short_help_str(limit)
        return click.utils.make_default_short_help(self.specs[name][1], limit)


class LazyBroadcasterGroup(BroadcasterGroup):
    """The root group: sub-commands named in ``lazy_commands`` load when used."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, tuple[str, str]], lazy_package: str,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(lazy_commands, lazy_package)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self.commands.short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def get_app(ctx: click.Context | None = None) -> App:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, App):
        root.obj = App.load(root.params.get("config_path"))
    return root.obj


def cli_signer() -> str:
    """Who the CLI records as approving or announcing: the login that ran it."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


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
