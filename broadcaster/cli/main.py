"""The ``broadcaster`` command: a root group that only wires the sub-commands."""

from __future__ import annotations

import logging

import click

from .. import __version__
from ..logsetup import stderr_handler
from .common import BroadcasterGroup


@click.group(cls=BroadcasterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar=None,
    help="Tệp cấu hình / config file (mặc định/default: $BROADCASTER_CONFIG, ./broadcaster.toml, "
    "~/.config/broadcaster/config.toml).",
)
@click.option("-v", "--verbose", count=True, help="Ghi log chi tiết hơn / more log output.")
@click.version_option(__version__, prog_name="broadcaster")
def cli(config_path: str | None, verbose: int) -> None:
    """broadcaster: phát thanh xã và tin nhắn SMS theo kế hoạch tuyên truyền CCHC.

    Commune loudspeaker and SMS broadcasting for administrative-reform
    communication plans.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, handlers=[stderr_handler()])


def _register() -> None:
    from . import admin, audio, contacts, content, daemon, demo, plans, reports, schedule, sms, stations

    for module in (admin, plans, content, contacts, stations, schedule, daemon, audio, sms, demo, reports):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
