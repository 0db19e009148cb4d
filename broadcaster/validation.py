"""Turning pydantic validation errors into one line that names the field."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator

from pydantic import ValidationError

from .errors import InputError, did_you_mean

#: Unicode categories a code or a name never contains: controls, format characters (zero-width, bidi
#: marks and isolates, BOM), private use, surrogates, unassigned, and symbols (emoji, their modifiers).
_REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "So", "Sk"}
_VARIATION_SELECTORS = range(0xFE00, 0xFE10)


def hidden_or_symbol(text: str) -> str | None:
    """The first character in ``text`` that would make two names look alike or unreadable, if any
    (space, tab and newline are left to the callers, which collapse them)."""
    for char in text:
        if char in " \t\r\n":
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES or ord(char) in _VARIATION_SELECTORS:
            return char
    return None


def refuse_hidden(text: str, what: str) -> str:
    """``text`` unchanged, or a ValueError naming the character (its U+ code point) that ``what`` may not contain."""
    bad = hidden_or_symbol(text)
    if bad is not None:
        name = unicodedata.name(bad, "")
        raise ValueError(f"{what} có ký tự ẩn, điều khiển hoặc biểu tượng U+{ord(bad):04X}"
                         f"{' ' + name if name else ''} / {what} contains a hidden, control or symbol "
                         f"character U+{ord(bad):04X}")
    return text


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


def csv_lines(text: str, delimiter: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """``(line the row starts on, cells)`` for every row, header first; a row the csv module cannot read
    (a cell over its size limit, a NUL byte, a stray quote) is one :class:`InputError` naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            limit = csv.field_size_limit()
            reason = (f"ô quá dài (quá {limit} ký tự) / a cell is longer than {limit} characters"
                      if "field larger" in str(exc) else f"CSV không đọc được / unreadable CSV: {exc}")
            raise InputError(reason, source=source, line=start) from None
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: name the line it starts on
        yield line, cells
