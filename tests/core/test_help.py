"""Help a commune operator can read: every command and every option explains itself."""

from __future__ import annotations

import click

from broadcaster.cli.main import cli


def _commands(group: click.Group, path: list[str]):
    for name, command in group.commands.items():
        yield path + [name], command
        if isinstance(command, click.Group):
            yield from _commands(command, path + [name])


def test_every_option_has_help():
    missing = [f"broadcaster {' '.join(path)} {param.opts[0]}"
               for path, command in _commands(cli, []) for param in command.params
               if isinstance(param, click.Option) and not param.help]
    assert missing == []


def test_no_jargon_in_help():
    """'daemon' is explained as 'chương trình chạy nền'; no 'tiền cảnh', 'nhịp tim'."""
    words = ("tiền cảnh", "nhịp tim")
    found = [(" ".join(path), word) for path, command in _commands(cli, [])
             for text in [command.help or "", *(p.help or "" for p in command.params if isinstance(p, click.Option))]
             for word in words if word in text.lower()]
    assert found == []


def test_usage_errors_are_bilingual_and_suggest(run, workspace):
    result = run("content", "lst", ok=False)
    assert "lệnh dùng sai / No such command 'lst'" in result.output and "did you mean: list" in result.output
    result = run("content", "add", "--title", "x", "--topic", "A", "--channel", "loa", ok=False)
    assert "giá trị không hợp lệ / Invalid value for '--channel'" in result.output
    assert "thiếu tham số bắt buộc / Missing argument" in run("content", "show", ok=False).output
