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
    if result.revision_before != result.revision_after:
        click.echo(f"Cơ sở dữ liệu ở phiên bản / database at revision {result.revision_after}")
    if not result.changed:
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


@db_group.command("backup")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def db_backup(file: Path | None) -> None:
    """Sao lưu cơ sở dữ liệu, kể cả khi chương trình chạy nền đang chạy / back up the database, even while
    the daemon runs.

    Mặc định ghi vào / default file: DATA_DIR/backups/broadcaster_NGÀY_GIỜ.db (giờ địa phương / local time).
    """
    from .. import backup

    result = backup.backup(get_app(), file)
    click.echo(f"Đã sao lưu / backed up: {result.path} ({result.size / 1_000_000:.1f} MB, "
               f"phiên bản/revision {result.revision})")


@db_group.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Không hỏi lại / do not ask for confirmation.")
def db_restore(file: Path, yes: bool) -> None:
    """Khôi phục cơ sở dữ liệu từ bản sao lưu (dừng chương trình chạy nền trước) / restore the database from a
    backup (stop the daemon first).

    Dữ liệu hiện tại được sao lưu trước khi bị thay / what is replaced is backed up first.
    """
    from .. import backup

    app = get_app()
    backup.check_backup_file(file)
    if not yes:
        click.confirm(f"Thay toàn bộ dữ liệu bằng {file}? / replace all data with {file}?", abort=True)
    result = backup.restore(app, file)
    click.echo(f"Đã khôi phục / restored: {result.source} (phiên bản/revision {result.revision})")
    if result.safety_copy:
        click.echo(f"Dữ liệu cũ được giữ ở / the replaced data is kept in: {result.safety_copy}")
    if result.needs_upgrade:
        click.echo("Bản sao lưu cũ hơn chương trình: hãy chạy / the backup is older than the program: run "
                   "'broadcaster db upgrade'")


PRUNE_LABELS = {"bulletins": "bản tin đã dựng / rendered bulletins", "dropped": "tệp đã chuyển cho đài / "
                "files dropped for stations", "outbox": "hộp thư SMS / SMS outbox", "logs": "nhật ký chương "
                "trình chạy nền / daemon log"}


def echo_prune(app, dry_run: bool) -> None:  # noqa: ANN001
    from .. import retention

    summary = retention.prune(app, dry_run=dry_run)
    click.echo("Sẽ xóa / would remove:" if dry_run else "Đã dọn / pruned:")
    for part in summary.parts:
        count = f"{part.files} tệp/files" + (f", {part.lines} dòng/lines" if part.lines else "")
        click.echo(f"  {PRUNE_LABELS[part.what]} (giữ/keep {part.keep_days} ngày/days): {count}, "
                   f"{part.bytes / 1_000_000:.1f} MB")
    click.echo("Nhật ký phát trong cơ sở dữ liệu được giữ nguyên / the delivery log is never pruned.")


@db_group.command("prune")
@click.option("--dry-run", is_flag=True, help="Chỉ xem sẽ xóa gì / only show what would be removed.")
def db_prune(dry_run: bool) -> None:
    """Dọn tệp cũ theo mục [retention] (như 'cache prune') / remove old files as [retention] says.

    Nhật ký phát (delivery log) không bao giờ bị xóa / the delivery log itself is never pruned.
    """
    echo_prune(get_app(), dry_run)


COMMANDS = [init_command, db_group]
