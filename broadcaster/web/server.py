"""Serving the console with waitress: in the foreground (``broadcaster web``) or in a daemon thread."""

from __future__ import annotations

import logging
import threading

from ..app import App

log = logging.getLogger("broadcaster.web")
THREADS = 4


def make_server(app: App, host: str, port: int):  # noqa: ANN201 - waitress's server type
    """A waitress server bound to ``host:port`` (port 0: a free one, see ``server.effective_port``)."""
    from waitress.server import create_server

    from .app import create_app

    return create_server(create_app(app), host=host, port=port, threads=THREADS, ident="broadcaster",
                         clear_untrusted_proxy_headers=True)


def serve(app: App, host: str, port: int) -> None:
    """Serve until Ctrl-C."""
    server = make_server(app, host, port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


class WebThread:
    """The console served from a background thread (the daemon's ``[web] enabled``)."""

    def __init__(self, app: App, host: str, port: int) -> None:
        self.server = make_server(app, host, port)
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    @property
    def port(self) -> int:
        return self.server.effective_port

    def _run(self) -> None:
        try:
            self.server.run()
        except OSError:  # closed by stop()
            pass

    def start(self) -> WebThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)
