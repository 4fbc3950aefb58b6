"""Figures written as PNG files, each whole or not at all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optimizer.io.atomic import atomic_path

__all__ = ["write_figures"]


def write_figures(figures: Mapping[str, Any], directory: str | Path, dpi: int = 120) -> list[Path]:
    """Write every figure as ``<name>.png`` into ``directory`` (created when missing).

    Parameters
    ----------
    figures : mapping of str to matplotlib Figure
        File stem -> figure (anything with matplotlib's ``savefig``).
    directory : str or Path
    dpi : int
        Resolution, dots per inch.

    Returns
    -------
    list of Path
        The files written, in the mapping's order.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        path = directory / f"{name}.png"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        written.append(path)
    return written
