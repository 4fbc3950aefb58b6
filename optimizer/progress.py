"""Progress reports: one type for every long-running step of the library.

Every function that can take a while accepts ``progress``, a callable that receives
:class:`Step` reports (a notebook can print them, the command line draws bars from them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Step", "Progress", "report"]


@dataclass(frozen=True)
class Step:
    """How far one task got.

    Attributes
    ----------
    task : str
        What is being done, e.g. ``"scoring users"`` or ``"natural model"``; reports with the
        same task update the same line.
    done : int
        Units done so far (users, epochs, plans...); 0 for a stage that has just begun.
    total : int, optional
        Units in all, when known.
    detail : str
        A short note on the latest unit (``"validation loss 0.3124"``).
    """

    task: str
    done: int = 0
    total: int | None = None
    detail: str = ""


#: The progress callback every long-running function accepts.
Progress = Callable[[Step], None]


def report(
    progress: Progress | None, task: str, done: int = 0, total: int | None = None, detail: str = ""
) -> None:
    """Send one :class:`Step` to ``progress`` when there is one."""
    if progress is not None:
        progress(Step(task, done, total, detail))
