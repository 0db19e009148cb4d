"""The web console: what the CLI does, for a commune official in a browser.

Server-rendered pages (Flask + Jinja2, no JavaScript), served by waitress on
127.0.0.1 by default (``broadcaster web``, or the daemon with ``[web] enabled``).
Every read and write goes through the same core functions as the CLI
(``content``, ``schedules``, ``announcements``, ``reports``, ``deliveries``).

- ``app``: the Flask application factory, sign-in, sessions, CSRF, roles;
- ``pages``: the pages and actions;
- ``server``: waitress, in the foreground or in a thread of the daemon.

Security: every page but ``/login`` needs a session; the role a page or action
needs is checked on the server (``users.may``); every POST carries the
session's CSRF token or is refused (400); sign-in is rate limited per address
and name; recordings are checked with ffprobe, limited in size and stored in
the data folder (never served as static files); no page shows the config.
"""
