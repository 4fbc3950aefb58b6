"""The article's figures and the Qini curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from optimizer.atomic import atomic_path  # noqa: E402
from optimizer.evaluation import Evaluation  # noqa: E402

__all__ = ["plot_evaluation"]


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_evaluation(evaluation: Evaluation, directory: str | Path) -> list[Path]:
    """Write ``coverage.png``, ``precision_recall.png`` and ``qini.png`` into ``directory``.

    Returns
    -------
    list of Path
        The files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    knee = evaluation.knee
    written = []

    share, coverage = evaluation.curves["coverage"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(100 * share, 100 * coverage, label="natural model")
    ax.plot([0, 100], [0, 100], "--", color="grey", label="random")
    ax.scatter(
        [100 * knee["share_taken"]],
        [100 * knee["coverage"]],
        color="crimson",
        zorder=3,
        label=f"knee: p >= {knee['threshold']:.3f}",
    )
    ax.set(
        xlabel="users taken, highest natural probability first (%)",
        ylabel="actual natural converters covered (%)",
        title="Coverage curve of the natural conversion model",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    written.append(_save(fig, directory / "coverage.png"))

    recall, precision = evaluation.curves["pr"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(100 * recall, 100 * precision)
    ax.scatter(
        [100 * knee["coverage"]],
        [100 * knee["precision"]],
        color="crimson",
        zorder=3,
        label=(
            f"knee: recall {100 * knee['coverage']:.0f}%, "
            f"precision {100 * knee['precision']:.0f}%, p >= {knee['threshold']:.3f}"
        ),
    )
    ax.set(
        xlabel="recall: natural converters covered (%)",
        ylabel="precision: converters among users taken (%)",
        title="Precision-recall curve of the natural conversion model",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    written.append(_save(fig, directory / "precision_recall.png"))

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (x, q) in evaluation.curves["qini"].items():
        ax.plot(100 * x, q, label=name)
        ax.plot([0, 100], [0, q[-1]], ":", color=ax.lines[-1].get_color(), alpha=0.6)
    ax.set(
        xlabel="users targeted, highest predicted uplift first (%)",
        ylabel="incremental conversions (Qini, treated-arm units)",
        title="Qini curves per denomination (dotted: random targeting)",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    written.append(_save(fig, directory / "qini.png"))
    return written
