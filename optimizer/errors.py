"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["InputError", "format_rows"]


class InputError(Exception):
    """Bad input from a file or a flag: reported as one line, exit code 2.

    Parameters
    ----------
    message : str
        What is wrong and what is expected, in one line.
    source : str or Path, optional
        The file (or flag) the problem was found in; it prefixes the message.
    column : str, optional
        The column (or key) that holds the problem.
    """

    def __init__(
        self, message: str, *, source: str | Path | None = None, column: str | None = None
    ) -> None:
        self.message = message
        self.source = None if source is None else str(source)
        self.column = column
        parts = []
        if self.source:
            parts.append(self.source)
        if column:
            parts.append(f"column '{column}'")
        parts.append(message)
        super().__init__(": ".join(parts))


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
