"""Turning pydantic validation errors into one line that names the field."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator

from pydantic import ValidationError

from .errors import InputError

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
    """``text`` unchanged, or a ValueError naming the character (U+XXXX) that ``what`` may not contain."""
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
