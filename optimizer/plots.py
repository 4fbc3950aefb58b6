"""The article's figures and the Qini curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from optimizer.atomic import atomic_path  # noqa: E402
from optimizer.evaluation import Evaluation  # noqa: E402

__all__ = ["plot_evaluation", "plot_whatif"]


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


def _lines(ax, frame, column: str, sim: str | None) -> None:
    """One line per (policy, context) of ``column`` against the budget; simulated intervals."""
    contexts = list(dict.fromkeys(frame["context"]))
    styles = ["-", "--", ":", "-."]
    for policy, part in frame.groupby("policy", sort=False):
        color = None
        for j, context in enumerate(contexts):
            rows = part[part["context"] == context].sort_values("budget")
            label = policy if len(contexts) == 1 else f"{policy}, {context}"
            (line,) = ax.plot(
                rows["budget"], rows[column], styles[j % 4], marker="o", ms=3, color=color,
                label=label,
            )  # fmt: skip
            color = line.get_color()
            if sim is not None and f"sim_{sim}" in rows:
                mean = rows[f"sim_{sim}"].to_numpy()
                low = mean - rows[f"sim_{sim}_low"].to_numpy()
                high = rows[f"sim_{sim}_high"].to_numpy() - mean
                ax.errorbar(
                    rows["budget"], mean, yerr=[low, high], fmt="none", ecolor=color, capsize=3,
                    alpha=0.8,
                )  # fmt: skip


def plot_whatif(
    frame, directory: str | Path, currency: str = "CNY", simulated: bool = False
) -> list[Path]:
    """Write ``frontier.png``, ``roi.png`` and ``mix.png`` of a what-if grid into ``directory``.

    Parameters
    ----------
    frame : DataFrame
        :attr:`simulator.whatif.WhatIf.frame`: one row per (point, policy).
    directory : str or Path
    currency : str
        Unit of the money axes.
    simulated : bool
        Add the simulator's 95% intervals (error bars) to the frontier and ROI plots.

    Returns
    -------
    list of Path
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, column, sim, ylabel, title in (
        ("frontier.png", "incremental_conversions", "incremental_conversions",
         "expected incremental conversions", "Efficient frontier: incremental conversions"),
        ("roi.png", "roi", "roi", "ROI (incremental GMV / campaign cost)", "ROI by budget"),
    ):  # fmt: skip
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _lines(ax, frame, column, sim if simulated else None)
        ax.set(xlabel=f"budget ({currency})", ylabel=ylabel, title=title)
        if simulated:
            ax.set_title(title + " (bars: simulated 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        written.append(_save(fig, directory / name))
    mix_columns = [c for c in frame.columns if c.startswith("users__")]
    policy = "optimal" if "optimal" in set(frame["policy"]) else frame["policy"].iloc[0]
    contexts = list(dict.fromkeys(frame["context"]))[:4]
    fig, axes = plt.subplots(1, len(contexts), figsize=(5 * len(contexts) + 1, 4.5), squeeze=False)
    for ax, context in zip(axes[0], contexts, strict=False):
        rows = frame[(frame["policy"] == policy) & (frame["context"] == context)]
        rows = rows.sort_values("budget")
        labels = [f"{b:,.0f}" for b in rows["budget"]]
        bottom = np.zeros(len(rows))
        for column in mix_columns:
            values = rows[column].fillna(0).to_numpy()
            if not values.any():
                continue
            ax.bar(labels, values, bottom=bottom, label=column.removeprefix("users__"))
            bottom += values
        ax.set(
            xlabel=f"budget ({currency})",
            ylabel="users sent the coupon",
            title=f"{policy} plan's coupons" + ("" if context == "scenario" else f": {context}"),
        )
        ax.tick_params(axis="x", rotation=45)
        ax.legend(fontsize=8)
    written.append(_save(fig, directory / "mix.png"))
    return written
