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

from .errors import ConfigError

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
    "render": {"ahead_minutes": 30},
    "schedule": {"catch_up_minutes": 30, "repeat_gap_hours": 20},
    "daemon": {"log_file": "", "heartbeat_seconds": 5, "reload_seconds": 3},
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
            raise ConfigError(f"{source}: khóa không được hỗ trợ / unknown key '{dotted}'")
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
