"""Turning pydantic validation errors into one line that names the field."""

from __future__ import annotations

from pydantic import ValidationError

from .errors import InputError, did_you_mean


def field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part + 1}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _known_message(error: dict) -> str | None:
    """Vietnamese-first wording for pydantic's common errors (it speaks English only)."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "cần số nguyên / must be a whole number"
    if kind == "greater_than_equal":
        return f"phải từ {ctx.get('ge')} trở lên / must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"tối đa {ctx.get('le')} / must be at most {ctx.get('le')}"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        return f"giá trị {error.get('input')!r} không hợp lệ, chọn / invalid value, choose: {expected}"
    if kind == "string_too_short":
        return "trống / empty"
    if kind == "missing":
        return "thiếu trường bắt buộc / required field missing"
    if kind == "extra_forbidden":
        return "trường không được hỗ trợ / unknown field"
    if kind == "string_too_long":
        return f"quá dài, tối đa {ctx.get('max_length')} ký tự / too long, at most {ctx.get('max_length')}"
    if kind == "string_type":
        return "cần chuỗi chữ / must be text"
    if kind == "list_type":
        return "cần danh sách / must be a list"
    if kind == "dict_type":
        return "cần bảng {lang = ...} / must be a table {lang = ...}"
    if kind == "too_short":
        return "cần ít nhất một mục / needs at least one entry"
    if kind in ("float_parsing", "float_type"):
        return "cần một số / must be a number"
    if kind == "greater_than":
        return f"phải lớn hơn {ctx.get('gt')} / must be greater than {ctx.get('gt')}"
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type"):
        return "ngày không hợp lệ / bad date (YYYY-MM-DD hoặc/or DD/MM/YYYY)"
    if kind == "bool_parsing":
        return "cần true hoặc false / must be true or false"
    return None


def error_message(error: dict) -> str:
    """One pydantic error in Vietnamese, then English (pydantic speaks English only)."""
    return _known_message(error) or error["msg"].removeprefix("Value error, ")


def main_error(exc: ValidationError) -> tuple[dict, str]:
    """The error to show, and its message.

    A misspelt key gives pydantic two errors, "unknown field" and "required field missing": the
    unknown one is shown, with the missing one as the likely spelling.
    """
    errors = exc.errors()
    error = errors[0]
    if error["type"] == "missing":
        error = next((e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == error["loc"][:-1]),
                     error)
    message = error_message(error)
    if error["type"] == "extra_forbidden":
        parent = tuple(error["loc"][:-1])
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
        message += did_you_mean(str(error["loc"][-1]), missing)
    return error, message


def first_error(exc: ValidationError, source: str, *, line: int | None = None,
                prefix: str = "") -> InputError:
    error, message = main_error(exc)
    path = field_path(tuple(error["loc"]))
    field = f"{prefix}{path}" if prefix and path else (prefix or path or None)
    return InputError(message, source=source, line=line, field=field)
