"""Tables as data: what every printed or rendered table holds, and how its numbers read.

A :class:`TableData` is plain text cells with a title, a caption (the definitions every table
of figures prints) and the cells to highlight; the command line renders it in the terminal and
the report renders the same object as HTML, so the two never disagree. Cells are plain text:
nothing in them is read as markup by either renderer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "Column",
    "TableData",
    "fmt_count",
    "fmt_money",
    "fmt_share",
    "fmt_points",
    "fmt_ratio",
    "fmt_metric",
    "fmt_compact",
    "fmt_interval",
    "best_index",
]


@dataclass(frozen=True)
class Column:
    """A column of a table.

    Its header, whether its cells align ``left`` (labels) or ``right`` (figures), and whether
    they must stay on one line (identifiers a reader copies).
    """

    name: str
    align: str = "right"
    one_line: bool = False


@dataclass
class TableData:
    """One table: plain text cells, ready for a terminal or an HTML page.

    Attributes
    ----------
    title : str
    columns : list of Column
    rows : list of list of str
        One list of cell texts per row, as many as columns.
    caption : str
        Definitions and notes shown under the table.
    highlight : set of (int, int)
        ``(row, column)`` cells that hold the best value of their row or column.
    strong_rows : set of int
        Rows shown in bold (totals, the targeted segment).
    accent_rows : set of int
        Rows shown in an accent colour.
    breaks : set of int
        Rows after which a separating line is drawn.
    """

    title: str
    columns: list[Column]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    highlight: set[tuple[int, int]] = field(default_factory=set)
    strong_rows: set[int] = field(default_factory=set)
    accent_rows: set[int] = field(default_factory=set)
    breaks: set[int] = field(default_factory=set)

    def add_row(self, *cells: object, best: Sequence[int] = ()) -> int:
        """Append a row (cells turned into text); ``best`` lists its highlighted columns."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])
        index = len(self.rows) - 1
        self.highlight.update((index, j) for j in best)
        return index

    def to_dict(self) -> dict[str, object]:
        """The table as JSON-ready data."""
        return {
            "title": self.title,
            "columns": [c.name for c in self.columns],
            "rows": [list(r) for r in self.rows],
            "caption": self.caption,
        }


def _finite(x: object) -> bool:
    """True for a finite real number (numpy scalars included, booleans not)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def fmt_count(x: object) -> str:
    """``12,345``; ``n/a`` when not a finite number."""
    return f"{float(x):,.0f}" if _finite(x) else "n/a"


def fmt_money(x: object) -> str:
    """Whole currency units with thousands separators (``12,345``); ``n/a`` when undefined."""
    return f"{float(x):,.0f}" if _finite(x) else "n/a"


def fmt_share(x: object, digits: int = 2) -> str:
    """A share as a percentage (``12.34%``)."""
    return f"{100 * float(x):.{digits}f}%" if _finite(x) else "n/a"


def fmt_points(x: object) -> str:
    """A difference of shares in signed percentage points (``+1.23``)."""
    return f"{100 * float(x):+.2f}" if _finite(x) else "n/a"


def fmt_ratio(x: object) -> str:
    """A ratio with two decimals (``8.02``)."""
    return f"{float(x):.2f}" if _finite(x) else "n/a"


def fmt_metric(x: object, digits: int = 3) -> str:
    """A model metric with ``digits`` decimals."""
    return f"{float(x):.{digits}f}" if _finite(x) else "n/a"


def fmt_compact(x: object) -> str:
    """Money in a narrow cell: ``9,997`` below ten thousand, ``20.0k`` above."""
    if not _finite(x):
        return "n/a"
    value = float(x)
    return f"{value:,.0f}" if abs(value) < 10_000 else f"{value / 1000:,.1f}k"


def fmt_interval(mean: object, low: object, high: object, unit: str) -> str:
    """``mean [low, high]`` in ``unit`` (``count``, ``share``, ``ratio`` or ``money``)."""

    def one(x: object) -> str:
        if not _finite(x):
            return "n/a"
        if unit == "share":
            return fmt_share(x)
        if unit == "ratio":
            return fmt_ratio(x)
        value = float(x)
        return f"{value:,.0f}" if abs(value) >= 100 or unit == "count" else f"{value:,.1f}"

    if not _finite(low):
        return one(mean)
    return f"{one(mean)} [{one(low)}, {one(high)}]"


def best_index(values: Sequence[object]) -> int | None:
    """Position of the largest finite value (None when there is none)."""
    best, best_value = None, -math.inf
    for i, v in enumerate(values):
        if _finite(v) and float(v) > best_value:  # type: ignore[arg-type]
            best, best_value = i, float(v)  # type: ignore[arg-type]
    return best
