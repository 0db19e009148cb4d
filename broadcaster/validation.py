"""Turning pydantic validation errors into one line that names the field."""

from __future__ import annotations

from pydantic import ValidationError

from .errors import InputError


def field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part + 1}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def first_error(exc: ValidationError, source: str, *, line: int | None = None,
                prefix: str = "") -> InputError:
    error = exc.errors()[0]
    path = field_path(tuple(error["loc"]))
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if error["type"] == "missing":
        message = "thiếu trường bắt buộc / required field missing"
    elif error["type"] == "extra_forbidden":
        message = "trường không được hỗ trợ / unknown field"
    field = f"{prefix}{path}" if prefix and path else (prefix or path or None)
    return InputError(message, source=source, line=line, field=field)
