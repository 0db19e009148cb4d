"""Configuration: defaults, lookup order, validation.

Lookup order: ``--config`` > ``$BROADCASTER_CONFIG`` > ``./broadcaster.toml`` >
``$XDG_CONFIG_HOME/broadcaster/config.toml``. Every key is documented in
``config.example.toml``; an unknown key is an error naming it, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, did_you_mean

ENV_CONFIG = "BROADCASTER_CONFIG"
LOCAL_CONFIG_NAME = "broadcaster.toml"

DEFAULTS: dict[str, Any] = {
    "broadcaster": {
        "data_dir": "",  # empty: $XDG_DATA_HOME/broadcaster (or next to the config file)
        "timezone": "Asia/Ho_Chi_Minh",
        "commune": "",
    },
    "database": {"url": ""},  # empty: SQLite file in data_dir
    "audio": {
        "tts": ["gtts", "espeak"],
        "tts_retry_seconds": 120.0,
        "target_lufs": -16.0,
        "max_true_peak_dbtp": -1.0,
        "format": "mp3",
        "bitrate": "64k",
        "sample_rate": 22050,
        "pause_ms": 800,
        "item_gap_ms": 1200,
        "emergency_repeat": 2,
        "ident": "Đây là Đài truyền thanh {station}.",
        "repeat_intro": "Xin nhắc lại.",
        "abbreviations": {},
        "gtts": {"tld": "com.vn", "timeout": 10.0, "retries": 3, "backoff": 1.0},
        "espeak": {"voice": "vi", "speed": 150, "pitch": 50},
    },
    "sms": {
        "backend": "outbox",
        "strip_diacritics": True,
        "price_per_segment": 850.0,
        "currency": "VND",
        "rate_per_second": 10.0,
        "concurrency": 4,
        "max_retries": 5,
        "retry_backoff": 1.0,
        "network_retry_seconds": 30.0,  # first wait when the provider cannot be reached, doubled up to an hour
        "max_age_hours": 24.0,  # a row still unsent then fails (an emergency keeps trying and is reported)
        "quiet_hours": "21:00-07:00",
        "status_callback_url": "",
        "outbox_path": "",  # empty: data_dir/sms-outbox.jsonl
        "twilio": {
            "account_sid": "",
            "auth_token": "",
            "from_number": "",
            "messaging_service_sid": "",
            "api_base_url": "",
            "timeout": 15.0,
        },
    },
    "webhook": {"host": "127.0.0.1", "port": 8080},
    "web": {"enabled": False, "host": "127.0.0.1", "port": 8090, "secret_file": "", "max_upload_mb": 50},
    "render": {"ahead_minutes": 30},
    "schedule": {"catch_up_minutes": 30, "repeat_gap_hours": 20},
    "daemon": {"log_file": "", "heartbeat_seconds": 5, "reload_seconds": 3},
    "retention": {"bulletins_days": 90, "dropped_days": 30, "outbox_days": 365, "logs_days": 90},
}

SECRET_KEYS = {("sms", "twilio", "auth_token")}


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def user_config_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "broadcaster" / "config.toml"


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "broadcaster"


def find_config_path(explicit: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """Return (path, exists) following the lookup order.

    When nothing exists, the path returned is where ``init`` should write.
    """
    if explicit:
        path = Path(explicit).expanduser()
        return path, path.exists()
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env).expanduser()
        return path, path.exists()
    local = Path.cwd() / LOCAL_CONFIG_NAME
    if local.exists():
        return local, True
    user = user_config_path()
    return user, user.exists()


def _merge(defaults: dict, given: dict, source: str, prefix: str = "") -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            raise ConfigError(f"{source}: khóa không được hỗ trợ / unknown key '{dotted}'"
                              f"{did_you_mean(key, defaults)}")
        default = defaults[key]
        if isinstance(default, dict) and dotted != "audio.abbreviations":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' phải là một bảng / must be a table")
            merged[key] = _merge(default, value, source, dotted + ".")
            continue
        merged[key] = _check_type(default, value, source, dotted)
    return merged


def _check_type(default: Any, value: Any, source: str, dotted: str) -> Any:
    ok: bool
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif isinstance(default, dict):
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    else:  # pragma: no cover - defaults are all of the kinds above
        ok = True
    if not ok:
        raise ConfigError(
            f"{source}: '{dotted}' sai kiểu, cần {type(default).__name__} / "
            f"wrong type, expected {type(default).__name__}, got {value!r}"
        )
    return value


# --------------------------------------------------------------------------
# Values checked at load: a bad one is an error naming its key, at init/status, not at 05:30 on air.
# --------------------------------------------------------------------------

TTS_BACKENDS = ("gtts", "espeak")  # audio.tts.build_chain's names (a test keeps them in step)
SMS_BACKENDS = ("outbox", "twilio")  # sms.backends.BACKENDS
AUDIO_FORMATS = ("mp3", "wav")  # audio.assemble.EXPORT_FORMATS


def _between(low: float | None, high: float | None, unit: str = ""):
    def check(value: Any) -> str | None:
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{low if low is not None else '…'}..{high if high is not None else '…'}{unit}"
            return f"phải trong khoảng / must be within {span}, got {value!r}"
        return None
    return check


def _one_of(*choices: str):
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"giá trị không hợp lệ, chọn / invalid value, choose: {', '.join(choices)} (got {value!r})" + \
                did_you_mean(str(value), choices)
        return None
    return check


def _timezone(value: str) -> str | None:
    from .timeutil import zone

    try:
        zone(value)
    except ValueError:
        return f"múi giờ không hợp lệ / unknown time zone {value!r} (vd/e.g. Asia/Ho_Chi_Minh)"
    return None


def _tts_chain(value: list[str]) -> str | None:
    if not value:
        return f"cần ít nhất một / needs at least one of: {', '.join(TTS_BACKENDS)}"
    for name in value:
        problem = _one_of(*TTS_BACKENDS)(name)
        if problem:
            return problem
    return None


def _bitrate(value: str) -> str | None:
    import re

    if not re.fullmatch(r"[1-9][0-9]{0,2}k", value):
        return f"dạng / format like \"64k\" (8k..320k), got {value!r}"
    return _between(8, 320, "k")(int(value[:-1]))


def _quiet_hours(value: str) -> str | None:
    from .sms.quiet_hours import parse_quiet_hours

    try:
        parse_quiet_hours(value, "UTC")
    except ValueError:
        return f"dạng / format \"21:00-07:00\", hoặc/or \"off\" (không có giờ yên lặng / none), got {value!r}"
    return None


def _url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return f"cần http:// hoặc https:// / must start with http:// or https://, got {value!r}"
    return None


def _not_empty(value: str) -> str | None:
    return "trống / empty" if not value.strip() else None


VALUE_CHECKS: dict[str, Any] = {
    "broadcaster.timezone": _timezone,
    "audio.tts": _tts_chain,
    "audio.target_lufs": _between(-40, -5, " LUFS"),
    "audio.max_true_peak_dbtp": _between(-10, 0, " dBTP"),
    "audio.format": _one_of(*AUDIO_FORMATS),
    "audio.bitrate": _bitrate,
    "audio.sample_rate": _between(8000, 48000, " Hz"),
    "audio.pause_ms": _between(0, 10_000, " ms"),
    "audio.item_gap_ms": _between(0, 10_000, " ms"),
    "audio.emergency_repeat": _between(1, 10),
    "audio.gtts.timeout": _between(0.01, 300, " s"),
    "audio.gtts.retries": _between(0, 10),
    "audio.gtts.backoff": _between(0, 60, " s"),
    "audio.espeak.speed": _between(80, 450),
    "audio.espeak.pitch": _between(0, 99),
    "sms.backend": _one_of(*SMS_BACKENDS),
    "sms.price_per_segment": _between(0, None),
    "sms.rate_per_second": _between(0, 1000),
    "sms.concurrency": _between(1, 64),
    "sms.max_retries": _between(0, 20),
    "sms.retry_backoff": _between(0, 300, " s"),
    "sms.quiet_hours": _quiet_hours,
    "sms.status_callback_url": _url,
    "sms.twilio.api_base_url": _url,
    "sms.twilio.timeout": _between(0.01, 300, " s"),
    "webhook.host": _not_empty,
    "webhook.port": _between(1, 65535),
    "web.host": _not_empty,
    "web.port": _between(1, 65535),
    "web.max_upload_mb": _between(1, 2048, " MB"),
    "render.ahead_minutes": _between(0, 24 * 60),
    "schedule.catch_up_minutes": _between(0, 24 * 60),
    "schedule.repeat_gap_hours": _between(0, 24 * 30),
    "daemon.heartbeat_seconds": _between(1, 600),
    "daemon.reload_seconds": _between(1, 600),
    "retention.bulletins_days": _between(1, None, " days"),
    "retention.dropped_days": _between(1, None, " days"),
    "retention.outbox_days": _between(1, None, " days"),
    "retention.logs_days": _between(1, None, " days"),
}


def check_values(values: dict, source: str) -> None:
    """Raise ConfigError naming the first key whose value is out of range or not one of its choices."""
    for dotted, check in VALUE_CHECKS.items():
        node: Any = values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None:
            continue
        problem = check(node)
        if problem:
            raise ConfigError(f"{source}: '{dotted}' {problem}")


class Section(dict):
    """A config table with attribute access: ``config.sms.twilio.auth_token``."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc
        return Section(value) if isinstance(value, dict) else value

    def __repr__(self) -> str:  # never show secrets in a traceback or a log line
        return "Section(...)"


@dataclass
class Config:
    path: Path
    exists: bool
    values: dict = field(default_factory=lambda: copy.deepcopy(DEFAULTS))

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return Section(values[name])
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"Config(path={self.path!s})"

    @property
    def data_dir(self) -> Path:
        configured = self.values["broadcaster"]["data_dir"]
        if configured:
            path = Path(configured).expanduser()
            return path if path.is_absolute() else (self.path.parent / path).resolve()
        return default_data_dir()

    @property
    def database_url(self) -> str:
        url = self.values["database"]["url"]
        return url or f"sqlite:///{self.data_dir / 'broadcaster.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def output_dir(self) -> Path:
        return self.data_dir / "bulletins"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def sms_outbox_path(self) -> Path:
        configured = self.values["sms"]["outbox_path"]
        return Path(configured).expanduser() if configured else self.data_dir / "sms-outbox.jsonl"

    @property
    def web_secret_path(self) -> Path:
        """The key that signs console sessions: made on first use, owner-only, never in the config."""
        configured = self.values["web"]["secret_file"]
        return Path(configured).expanduser() if configured else self.data_dir / "web-secret.key"

    def twilio_credentials(self) -> tuple[str, str]:
        """Account SID and token: the environment wins over the file."""
        twilio = self.values["sms"]["twilio"]
        sid = os.environ.get("TWILIO_ACCOUNT_SID") or twilio["account_sid"]
        token = os.environ.get("TWILIO_AUTH_TOKEN") or twilio["auth_token"]
        return sid, token


def load_config(explicit: str | os.PathLike | None = None) -> Config:
    path, exists = find_config_path(explicit)
    if explicit and not exists:
        raise ConfigError(f"{path}: không tìm thấy tệp cấu hình / config file not found")
    values = copy.deepcopy(DEFAULTS)
    if exists:
        try:
            given = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: TOML không hợp lệ / invalid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: không đọc được / cannot read: {exc.strerror}") from exc
        values = _merge(DEFAULTS, given, str(path))
        check_values(values, str(path))
    return Config(path=path, exists=exists, values=values)


def render_config_toml(data_dir: Path | None = None) -> str:
    """The config ``init`` writes: the example with the data dir filled in."""
    example = example_config_text()
    if data_dir is not None:
        example = example.replace('data_dir = ""', f'data_dir = "{data_dir.as_posix()}"', 1)
    return example


def example_config_text() -> str:
    from importlib import resources

    return resources.files("broadcaster.data").joinpath("config.example.toml").read_text(encoding="utf-8")
