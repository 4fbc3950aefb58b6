"""Tables and progress in a terminal (rich), for the command line and notebooks alike.

:func:`rich_table` renders a :class:`~optimizer.reporting.table.TableData` (every text shown as
it is, never read as markup); :func:`progress_bars` turns the library's
:class:`~optimizer.progress.Step` reports into one progress line per task.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from optimizer.errors import Notice
from optimizer.progress import Step
from optimizer.reporting.table import TableData

__all__ = ["rich_table", "progress_bars"]


def rich_table(data: TableData) -> Table:
    """``data`` as a rich table.

    Highlighted cells in bold green, strong rows bold, accented rows cyan; a long first-column
    label folds rather than being cut.
    """
    table = Table(title=Text(data.title), title_justify="left", caption_justify="left")
    table.caption = Text(data.caption) if data.caption else None
    for j, column in enumerate(data.columns):
        overflow = "fold" if j == 0 else "ellipsis"
        table.add_column(
            Text(column.name), justify=column.align, overflow=overflow, no_wrap=column.one_line
        )
    for i, row in enumerate(data.rows):
        cells = [
            Text(c, "bold green" if (i, j) in data.highlight else "") for j, c in enumerate(row)
        ]
        style = "bold" if i in data.strong_rows else "cyan" if i in data.accent_rows else None
        table.add_row(*cells, style=style, end_section=i in data.breaks)
    return table


@contextmanager
def progress_bars(console: Console) -> Iterator[Callable[[Step], None]]:
    """A progress callback drawing one line per task on ``console``.

    Nothing is drawn when the console is not a terminal, so logs get no bars. A
    :class:`~optimizer.errors.Notice` warned meanwhile is printed as one ``note: ...`` line
    (other warnings as Python shows them).
    """
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeElapsedColumn(), console=console, disable=not console.is_terminal
    ) as progress:
        tasks: dict[str, Any] = {}

        def close_open() -> None:  # a stage without a total ends when the next one begins
            for name, task in tasks.items():
                if progress.tasks[task].total is None:
                    progress.update(task, total=1, completed=1, description=escape(name))

        def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
            if issubclass(category, Notice):
                progress.console.print(Text(f"note: {message}"))  # user text: never markup
            else:
                shown(message, category, filename, lineno, file, line)

        def update(step: Step) -> None:
            if step.task not in tasks:
                close_open()
                tasks[step.task] = progress.add_task(escape(step.task), total=step.total)
            label = escape(step.task + (f" ({step.detail})" if step.detail else ""))
            progress.update(
                tasks[step.task], completed=step.done, total=step.total, description=label
            )

        shown = warnings.showwarning
        with warnings.catch_warnings():
            warnings.simplefilter("always", Notice)
            warnings.showwarning = show
            yield update
        close_open()
