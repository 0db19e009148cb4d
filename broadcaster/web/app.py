"""The Flask application: sessions, CSRF, sign-in, roles, language."""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, abort, g, redirect, render_template, request, session, url_for
from markupsafe import Markup

from .. import users
from ..app import App
from ..fileutil import create_private_file, private_dir
from ..timeutil import local
from ..users import Role

SESSION_HOURS = 12
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_S = 300.0
LANG_COOKIE = "lang"
OPEN_ENDPOINTS = {"login", "static"}


def load_secret(app: App) -> bytes:
    """The session-signing key: made on first use in its own owner-only file."""
    path = app.config.web_secret_path
    if not path.exists():
        private_dir(path.parent)
        create_private_file(path)
        with open(path, "r+", encoding="ascii") as handle:
            if not handle.read().strip():
                handle.write(secrets.token_hex(32))
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ValueError(f"{path}: khóa phiên quá ngắn / the session key is too short (delete it to make a new one)")
    return key.encode("ascii")


class LoginThrottle:
    """At most ``LOGIN_FAILURES_ALLOWED`` failed sign-ins per address and per name in a sliding window."""

    def __init__(self, allowed: int = LOGIN_FAILURES_ALLOWED, window_s: float = LOGIN_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed, self.window_s, self.clock = allowed, window_s, clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        self._failures[key] = kept
        return kept

    def blocked(self, address: str, name: str) -> bool:
        now = self.clock()
        with self._lock:
            return any(len(self._recent(key, now)) >= self.allowed for key in (f"a:{address}", f"n:{name}"))

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"a:{address}", f"n:{name}"):
                self._recent(key, now).append(now)

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._failures.pop(f"n:{name}", None)


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def lang() -> str:
    return g.get("lang", "vi")


def say(vi: str, en: str) -> str:
    """The Vietnamese text, or the English one when the user switched."""
    return en if lang() == "en" else vi


def requires(role: Role) -> Callable:
    """The signed-in user must have ``role`` (or a higher one); checked on the server for every request."""
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not users.may(g.user.role, role):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorate


def create_app(app: App, *, throttle: LoginThrottle | None = None) -> Flask:
    """The console for ``app``'s config and database."""
    web = Flask(__name__)
    web.config.update(
        SECRET_KEY=load_secret(app),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="broadcaster_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=int(app.config.web.max_upload_mb) * 1024 * 1024,
    )
    from ..scheduling.wakeup import tell_daemons

    web.extensions["broadcaster"] = app
    web.extensions["login_throttle"] = throttle or LoginThrottle()
    tz_name = app.config.broadcaster.timezone

    @web.before_request
    def _guard():  # noqa: ANN202
        chosen = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
        g.lang = chosen if chosen in ("vi", "en") else "vi"
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            expected = session.get("csrf", "")
            if not expected or not hmac.compare_digest(sent, expected):
                abort(400, description="csrf")
        g.user = None
        name = session.get("user")
        if name:
            with app.read_session() as db_session:
                try:
                    g.user = users.get_user(db_session, name)
                except users.NotFoundError:
                    session.clear()
        if g.user is None and request.endpoint not in OPEN_ENDPOINTS:
            if request.method == "GET":
                return redirect(url_for("login", next=request.full_path))
            abort(403)
        return None

    @web.after_request
    def _headers(response):  # noqa: ANN001, ANN202
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                       "style-src 'self'; form-action 'self'; frame-ancestors 'none'")
        response.headers.setdefault("Cache-Control", "no-store")
        if request.method == "POST" and response.status_code < 400:
            tell_daemons(app)  # a schedule, content or campaign changed: the daemon looks at once
        if request.args.get("lang") in ("vi", "en"):
            response.set_cookie(LANG_COOKIE, request.args["lang"], max_age=365 * 86400, samesite="Lax",
                                httponly=True)
        return response

    @web.context_processor
    def _helpers() -> dict:
        def when(moment, fmt: str = "%Y-%m-%d %H:%M") -> str:  # noqa: ANN001
            return local(moment, tz_name).strftime(fmt) if moment else ""

        def csrf_field() -> Markup:
            return Markup('<input type="hidden" name="csrf_token" value="%s">') % csrf_token()

        def lang_url(code: str) -> str:
            args = {**request.args, "lang": code}
            return url_for(request.endpoint or "today", **(request.view_args or {}), **args)

        return {"_": say, "lang": lang(), "when": when, "csrf_field": csrf_field, "user": g.get("user"),
                "may": lambda role: g.get("user") is not None and users.may(g.user.role, Role(role)),
                "lang_url": lang_url, "tz_name": tz_name}

    @web.errorhandler(400)
    def _bad_request(error):  # noqa: ANN001, ANN202
        if getattr(error, "description", "") == "csrf":
            message = say("Biểu mẫu đã hết hạn hoặc không hợp lệ; hãy tải lại trang và thử lại.",
                          "The form expired or is not valid: reload the page and try again.")
        else:
            message = say("Yêu cầu không hợp lệ.", "Bad request.")
        return render_template("error.html", code=400, message=message), 400

    @web.errorhandler(403)
    def _forbidden(_error):  # noqa: ANN001, ANN202
        return render_template("error.html", code=403, message=say(
            "Tài khoản của bạn không có quyền làm việc này.", "Your account may not do this.")), 403

    @web.errorhandler(404)
    def _not_found(_error):  # noqa: ANN001, ANN202
        return render_template("error.html", code=404, message=say("Không tìm thấy.", "Not found.")), 404

    @web.errorhandler(413)
    def _too_large(_error):  # noqa: ANN001, ANN202
        return render_template("error.html", code=413, message=say(
            f"Tệp quá lớn (tối đa {app.config.web.max_upload_mb} MB).",
            f"The file is too large (at most {app.config.web.max_upload_mb} MB).")), 413

    @web.route("/login", methods=["GET", "POST"])
    def login():  # noqa: ANN202
        error = None
        status = 200
        if request.method == "POST":
            name = (request.form.get("username") or "").strip().lower()
            address = request.remote_addr or "?"
            limiter: LoginThrottle = web.extensions["login_throttle"]
            if limiter.blocked(address, name):
                error = say("Đăng nhập sai quá nhiều lần; hãy chờ 5 phút.",
                            "Too many failed sign-ins: wait 5 minutes.")
                status = 429
            else:
                with app.read_session() as db_session:
                    user = users.authenticate(db_session, name, request.form.get("password") or "")
                if user is None:
                    limiter.failed(address, name)
                    error = say("Sai tên đăng nhập hoặc mật khẩu.", "Wrong user name or password.")
                    status = 401
                else:
                    limiter.succeeded(address, name)
                    session.clear()  # a new session (and CSRF token) on every sign-in
                    session.permanent = True
                    session["user"] = user.name
                    csrf_token()
                    target = request.args.get("next") or ""
                    if not target.startswith("/") or target.startswith("//"):
                        target = url_for("today")
                    return redirect(target)
        return render_template("login.html", error=error), status

    @web.route("/logout", methods=["POST"])
    def logout():  # noqa: ANN202
        session.clear()
        return redirect(url_for("login"))

    from .pages import register

    register(web, app)
    return web
