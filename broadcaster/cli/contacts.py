"""``contacts``: residents' phone numbers, groups and opt-outs."""

import click

from .common import BroadcasterGroup


@click.group("contacts", cls=BroadcasterGroup)
def contacts_group() -> None:
    """Danh bạ người dân / residents' phone numbers."""


COMMANDS = [contacts_group]
