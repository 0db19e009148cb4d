"""``web``: serve the web console."""

from __future__ import annotations

import click

from .common import get_app


@click.command("web")
@click.option("--host", default=None, help="Địa chỉ nghe (mặc định [web] host, 127.0.0.1) / address to listen "
                                           "on (default [web] host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Cổng (mặc định [web] port, 8090) / port (default [web] port).")
def web_command(host: str | None, port: int | None) -> None:
    """Trang quản lý trên trình duyệt / serve the web console."""
    from ..web.server import serve

    app = get_app()
    host = host or app.config.web.host
    port = port or app.config.web.port
    click.echo(f"Trang quản lý / web console: http://{host}:{port}/ (Ctrl-C để dừng / to stop)")
    serve(app, host, port)


COMMANDS = [web_command]
