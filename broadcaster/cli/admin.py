"""``init`` and ``db``: set up the workspace and keep the schema current."""

from __future__ import annotations

from pathlib import Path

import click

from .. import db
from ..app import initialise
from .common import BroadcasterGroup, get_app


@click.command("init")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Thư mục dữ liệu khi tạo cấu hình mới / data folder for a new config.",
)
@click.pass_context
def init_command(ctx: click.Context, data_dir: Path | None) -> None:
    """Tạo cấu hình và cơ sở dữ liệu / create the config and the database.

    Running it again changes nothing and says so.
    """
    result = initialise(ctx.find_root().params.get("config_path"), data_dir and data_dir.resolve())
    if result.config_created:
        click.echo(f"Đã tạo cấu hình / config created: {result.config_path}")
    else:
        click.echo(f"Cấu hình đã có / config exists: {result.config_path}")
    click.echo(f"Thư mục dữ liệu / data dir: {result.data_dir}")
    if result.repaired:
        click.echo(f"Đã sửa quyền, chỉ chủ máy đọc được / made owner-only: {len(result.repaired)} tệp, thư mục / "
                   f"files and folders ({', '.join(p.name for p in result.repaired[:3])}"
                   f"{', …' if len(result.repaired) > 3 else ''})")
    if result.revision_before != result.revision_after:
        click.echo(f"Cơ sở dữ liệu ở phiên bản / database at revision {result.revision_after}")
    if not result.changed and not result.repaired:
        click.echo("Không có gì thay đổi / nothing changed.")


@click.group("db", cls=BroadcasterGroup)
def db_group() -> None:
    """Cơ sở dữ liệu / database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Nâng cấp lược đồ / apply pending schema migrations."""
    app = get_app()
    before, after = db.upgrade(app.engine)
    if before == after:
        click.echo(f"Đã ở phiên bản mới nhất / already at {after}.")
    else:
        click.echo(f"Đã nâng cấp / upgraded {before or '(trống/empty)'} -> {after}")


@db_group.command("status")
def db_status() -> None:
    """Phiên bản lược đồ / show the schema revision."""
    app = get_app()
    click.echo(f"database: {app.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"revision: {db.current_revision(app.engine)} (head {db.head_revision()})")


COMMANDS = [init_command, db_group]
