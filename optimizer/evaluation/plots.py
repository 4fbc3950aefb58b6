"""The article's figures of a model evaluation: coverage, precision-recall and Qini curves.

Figures are built with matplotlib's object-oriented API (:class:`matplotlib.figure.Figure`, no
pyplot, no backend switched, nothing global); :func:`optimizer.io.figures.write_figures` writes
them as PNG files.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from optimizer.evaluation.quality import Evaluation
from optimizer.io.figures import plain_text_figures

__all__ = ["evaluation_figures"]


#: The figures :func:`evaluation_figures` draws.
EVALUATION_FIGURES: tuple[str, ...] = ("coverage", "precision_recall", "qini")


@plain_text_figures
def evaluation_figures(evaluation: Evaluation) -> dict[str, Figure]:
    """The coverage, precision-recall and Qini figures of ``evaluation``.

    Returns
    -------
    dict of str to Figure
        ``coverage``, ``precision_recall`` and ``qini``.
    """
    knee = evaluation.knee
    figures: dict[str, Figure] = {}

    share, coverage = evaluation.curves["coverage"]
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
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
    figures["coverage"] = fig

    recall, precision = evaluation.curves["pr"]
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
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
    figures["precision_recall"] = fig

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
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
    figures["qini"] = fig
    return figures
