"""``demo``: the main job, end to end, offline."""

from __future__ import annotations

from pathlib import Path

import click

from .. import demo
from ..timeutil import local


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-workspace"),
              show_default=True, help="Thư mục làm việc của bản demo / the demo's workspace (recreated).")
@click.option("--start-in", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Giây chờ trước buổi phát đầu / seconds before the first slot.")
@click.pass_context
def demo_command(ctx: click.Context, directory: Path, start_in: float) -> None:
    """Chạy thử một ngày phát thanh của xã, không cần mạng / a commune's broadcast day, offline.

    Imports the Ninh Thuận 2023 plan, residents and content; schedules two
    loudspeaker bulletins and an SMS a few seconds apart; runs the daemon
    until they have fired (offline TTS, file player, SMS outbox); prints the
    report against the plan's targets.
    """
    result = demo.run_demo(directory, start_in_s=start_in, progress=click.echo)
    tz = result.app.config.broadcaster.timezone
    click.echo("")
    click.echo("Kết quả / outcome:")
    for bulletin in result.bulletins:
        late = f", trễ/late {bulletin.late_s:.2f} s" if bulletin.late_s is not None else ""
        length = f"{bulletin.duration_s:.0f} s" if bulletin.duration_s else ""
        click.echo(f"  {local(bulletin.slot_time, tz):%H:%M:%S} {bulletin.channel:<11} {bulletin.status:<8} "
                   f"{length}{late}")
    click.echo(f"  Tệp âm thanh đã đưa ra loa / audio dropped for the speakers: {result.drop_dir}")
    click.echo(f"  SMS đã gửi (hộp thư đi) / SMS sent to the outbox: {result.sms_sent} → {result.outbox}")
    click.echo("")
    report = ctx.find_root().command.get_command(ctx, "report")
    if report is not None:
        ctx.find_root().obj = result.app
        ctx.invoke(report, plan_code=result.plan_code)
    click.echo(f"\nThử tiếp / try next:  broadcaster --config {result.workspace / 'broadcaster.toml'} log")


COMMANDS = [demo_command]
