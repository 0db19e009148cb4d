"""The ``broadcaster`` command: a root group that only wires the sub-commands.

Commands load lazily (click's lazy-group pattern): ``broadcaster status`` imports the
status command's module and nothing else, and ``broadcaster --help`` imports none, so
start-up does not pay for SQLAlchemy, pydub or matplotlib that the command never uses.
"""

from __future__ import annotations

import logging

import click

from .. import __version__
from .common import LazyBroadcasterGroup

# name -> ("module:attribute" under broadcaster.cli, the one-line help ``--help`` lists).
# tests/core/test_cli_main.py checks every entry against the command it names.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("admin:init_command", "Tạo cấu hình và cơ sở dữ liệu / create the config and the database."),
    "db": ("admin:db_group", "Cơ sở dữ liệu / database schema."),
    "plan": ("plans:plan_group", "Kế hoạch tuyên truyền / communication plans."),
    "content": ("content:content_group", "Tin bài / content items."),
    "contacts": ("contacts:contacts_group", "Danh bạ người dân / residents' phone numbers."),
    "station": ("stations:station_group", "Đài truyền thanh / stations."),
    "schedule": ("schedule:schedule_group", "Lịch phát / broadcast schedules."),
    "daemon": ("daemon:daemon_command",
               "Chạy chương trình chạy nền (daemon) trong cửa sổ này; Ctrl-C để dừng / run the daemon here."),
    "status": ("daemon:status_command", "Daemon có chạy không, các lần phát tới, lần phát gần nhất / "
               "daemon, next slots, last deliveries."),
    "announce": ("daemon:announce_command", "Phát thông báo khẩn ngay, mỗi đài đúng một lần / air an emergency "
                 "announcement now, once per station."),
    "normalize": ("audio:normalize_command", "In đúng câu chữ sẽ được đọc, mỗi câu một dòng / "
                  "print exactly what will be spoken, one sentence a line."),
    "render": ("audio:render_command", "Tạo tệp bản tin từ các tin / render content items into one bulletin file."),
    "play": ("audio:play_command", "Phát một tệp qua đài, hoặc nghe thử tại máy này (không ghi vào nhật ký "
             "phát) / play a file through a station's player, or listen on this PC (not logged)."),
    "cache": ("audio:cache_group", "Bộ nhớ đệm giọng đọc / the speech render cache."),
    "sms": ("sms:sms_group", "Tin nhắn SMS tới người dân / SMS to residents."),
    "webhook": ("sms:webhook_group", "Nhận báo cáo trạng thái tin nhắn từ Twilio / receive Twilio status callbacks."),
    "demo": ("demo:demo_command", "Chạy thử một ngày phát thanh của xã, không cần mạng / "
             "a commune's broadcast day, offline."),
    "log": ("reports:log_command", "Nhật ký phát và gửi tin, mới nhất trước / the delivery log, newest first."),
    "report": ("reports:report_command",
               "Báo cáo kết quả so với chỉ tiêu của kế hoạch / results against the plan's targets."),
    "user": ("user:user_group", "Tài khoản trang quản lý web / web console accounts."),
    "web": ("web:web_command", "Trang quản lý trên trình duyệt / serve the web console."),
}


@click.group(cls=LazyBroadcasterGroup, lazy_commands=LAZY_COMMANDS, lazy_package=__package__,
             context_settings={"help_option_names": ["-h", "--help"]})
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
    from ..logsetup import stderr_handler

    logging.basicConfig(level=level, handlers=[stderr_handler()])
    ctx = click.get_current_context()
    ctx.call_on_close(lambda: _tell_daemons_after_writes(ctx))


def _tell_daemons_after_writes(ctx: click.Context) -> None:
    """A command that wrote (a schedule, content, a campaign…) pokes the daemon, which then looks at once."""
    app = ctx.obj
    if getattr(app, "committed", False):
        from ..scheduling.wakeup import tell_daemons

        tell_daemons(app)
