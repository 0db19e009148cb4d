"""The root command loads sub-commands lazily: the registry must name every command, right."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click

import broadcaster.cli
from broadcaster.cli.main import LAZY_COMMANDS as COMMANDS
from broadcaster.cli.main import cli


def test_lazy_registry_finds_every_command_of_every_cli_module():
    exported = {}
    for info in pkgutil.iter_modules(broadcaster.cli.__path__):
        module = importlib.import_module(f"broadcaster.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            exported[command.name] = (info.name, command)
    assert set(exported) == set(COMMANDS)
    for name, (module_name, command) in exported.items():
        assert COMMANDS[name][0].split(":")[0] == module_name, name
        assert cli.commands[name] is command
        assert cli.get_command(click.Context(cli), name) is command


def test_listed_help_is_the_command_own_help():
    for name, (_, listed) in COMMANDS.items():
        assert listed, name
        assert listed == cli.commands[name].get_short_help_str(1000), f"update main.LAZY_COMMANDS[{name!r}]"


def test_help_lists_every_command_and_imports_no_heavy_library():
    code = ("import sys\n"
            "from broadcaster.cli.main import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = ['sqlalchemy', 'sqlmodel', 'pydantic', 'pydub', 'matplotlib', 'openpyxl', 'twilio', "
            "'rich', 'alembic', 'numpy', 'apscheduler']\n"
            "print('LOADED', [m for m in heavy if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out
    for name in COMMANDS:
        assert f"\n  {name} " in out


def test_unknown_command_is_refused(run):
    result = run("no-such-command", ok=False)
    assert "No such command" in result.output
