"""Errors that reach the user as one line, never as a traceback.

The library names what it knows: the file, the column, and the configuration key or function
argument that holds a bad value (``budget``, ``constraints.min_roi``, ``policies``). It knows
nothing of command-line flags: the command line maps keys to its own flags when it prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["InputError", "Notice", "format_rows"]


class Notice(UserWarning):
    """Something the user should know that is not an error, in one line.

    Issued with :func:`warnings.warn`; the command line prints it as ``note: ...`` (e.g. a
    damaged model cache that is being rebuilt).
    """


class InputError(Exception):
    """Bad input from a file, a configuration key or an argument: one line, exit code 2.

    Parameters
    ----------
    message : str
        What is wrong and what is expected, in one line.
    source : str or Path, optional
        The file the problem was found in; it prefixes the message.
    column : str, optional
        The table column that holds the problem.
    key : str, optional
        The configuration key or argument that holds the problem, dotted for nested keys
        (``constraints.min_roi``); it prefixes the message after the file.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        column: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.source = None if source is None else str(source)
        self.column = column
        self.key = key
        super().__init__(self.line())

    def line(self, key_label: str | None = None) -> str:
        """The one-line message, with ``key_label`` shown instead of the key when given."""
        parts = []
        if self.source:
            parts.append(self.source)
        if self.column:
            parts.append(f"column '{self.column}'")
        label = key_label or self.key
        if label:
            parts.append(label)
        parts.append(self.message)
        return ": ".join(parts)


def format_rows(rows: Sequence[int], total: int, limit: int = 5) -> str:
    """Describe offending data rows, numbering the first data row 1.

    Parameters
    ----------
    rows : sequence of int, shape (m,)
        0-based positions of the first offending rows (at most ``limit`` are shown).
    total : int
        How many rows offend in all.
    limit : int
        How many row numbers to print.
    """
    shown = ", ".join(str(int(r) + 1) for r in list(rows)[:limit])
    more = f" and {total - limit} more" if total > limit else ""
    noun = "row" if total == 1 else "rows"
    return f"{noun} {shown}{more}"
