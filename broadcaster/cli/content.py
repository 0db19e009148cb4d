"""``content``: the items bulletins and SMS are made of."""

import click

from .common import BroadcasterGroup


@click.group("content", cls=BroadcasterGroup)
def content_group() -> None:
    """Tin bài / content items."""


COMMANDS = [content_group]
