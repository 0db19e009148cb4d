"""Errors that reach the operator as one clear line.

Messages are Vietnamese first, then English after " / ", and name the file,
line or field at fault.
"""

from __future__ import annotations


class BroadcasterError(Exception):
    """An error the CLI prints as one line and exits non-zero on."""

    exit_code = 1


class ConfigError(BroadcasterError):
    pass


class InputError(BroadcasterError):
    """Bad operator input: a file, a line in it, or a field."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.source = source
        self.line = line
        self.field = field
        where = []
        if source:
            where.append(f"{source}:{line}" if line else source)
        elif line:
            where.append(f"dòng/line {line}")
        if field:
            where.append(f"[{field}]")
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class NotFoundError(BroadcasterError):
    pass


class AlreadyExistsError(BroadcasterError):
    pass


def did_you_mean(word: str, choices) -> str:  # noqa: ANN001 - any iterable of names
    """' (gần giống / did you mean: A, B)' for the names closest to a mistyped one, or ''."""
    import difflib

    names = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.5)
    if not close:
        lowered = {name.lower(): name for name in names}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.5)]
    return f" (gần giống / did you mean: {', '.join(close)})" if close else ""
