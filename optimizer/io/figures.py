"""Figures written as PNG files, each whole or not at all."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from optimizer.io.atomic import atomic_directory, write_manifest

__all__ = ["write_figures", "figure_files", "plain_text", "plain_text_figures"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def plain_text() -> Iterator[None]:
    r"""Within it, matplotlib draws text as written: a ``$`` in a label is never mathtext.

    Labels come from users' files (coupon names, segments, currencies); read as mathtext,
    ``$\q$`` stops the drawing. Text objects keep the setting they were made with, and tick
    labels are made when drawing, so both building and saving a figure go inside.
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        yield


def plain_text_figures(build: F) -> F:
    """Decorate a figure builder so that every text it makes is drawn as written."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plain_text():
            return build(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def figure_files(names: Iterable[str]) -> tuple[str, ...]:
    """The file names :func:`write_figures` gives figures of these names."""
    return tuple(f"{name}.png" for name in names)


def write_figures(
    figures: Mapping[str, Any], directory: str | Path, dpi: int = 120, writer: str = "figures"
) -> list[Path]:
    """Write every figure as ``<name>.png`` into ``directory``, published whole.

    The folder is replaced as a whole once every figure is drawn, with a ``_manifest.json``
    of checksums written last: a reader sees the earlier figures or the new ones, never a
    mixture. A folder holding anything but figures this run or an earlier run of the same
    ``writer`` wrote is refused (:func:`optimizer.io.check_replaceable`), never emptied.

    Parameters
    ----------
    figures : mapping of str to matplotlib Figure
        File stem -> figure (anything with matplotlib's ``savefig``).
    directory : str or Path
    dpi : int
        Resolution, dots per inch.
    writer : str
        Who writes the folder (e.g. ``"what-if figures"``): another writer's folder is refused.

    Returns
    -------
    list of Path
        The files written, in the mapping's order.
    """
    directory = Path(directory)
    names = figure_files(figures)
    folder = atomic_directory(directory, whole=True, writes=names, writer=writer)
    with folder as staging, plain_text():
        for name, figure in zip(names, figures.values(), strict=True):
            figure.savefig(staging / name, format="png", dpi=dpi, bbox_inches="tight")
        write_manifest(staging, writer=writer)
    return [directory / name for name in names]
