"""Figures of a budget grid: the efficient frontier, ROI by budget and the coupon mix.

Built with matplotlib's object-oriented API (no pyplot, no backend switched);
:func:`optimizer.io.figures.write_figures` writes them as PNG files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optimizer.io.figures import plain_text_figures

__all__ = ["grid_figures"]


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


#: The figures :func:`grid_figures` draws.
GRID_FIGURES: tuple[str, ...] = ("frontier", "roi", "mix")


@plain_text_figures
def grid_figures(
    frame: pd.DataFrame, currency: str = "CNY", simulated: bool = False
) -> dict[str, Figure]:
    """The frontier, ROI and coupon-mix figures of a budget grid.

    Parameters
    ----------
    frame : DataFrame
        One row per (point, policy), as :attr:`optimizer.planning.whatif.GridResult.frame`:
        ``context``, ``budget``, ``policy``, ``incremental_conversions``, ``roi``,
        ``users__<denomination>``, and optionally ``sim_<figure>`` with ``_low`` / ``_high``
        (a 95% interval drawn as error bars when ``simulated``).
    currency : str
        Unit of the money axes.
    simulated : bool
        Add the intervals of the ``sim_`` columns (error bars) to the frontier and ROI plots.

    Returns
    -------
    dict of str to Figure
        ``frontier``, ``roi`` and ``mix``.
    """
    figures: dict[str, Figure] = {}
    for name, column, sim, ylabel, title in (
        ("frontier", "incremental_conversions", "incremental_conversions",
         "expected incremental conversions", "Efficient frontier: incremental conversions"),
        ("roi", "roi", "roi", "ROI (incremental GMV / campaign cost)", "ROI by budget"),
    ):  # fmt: skip
        fig = Figure(figsize=(7, 4.5))
        ax = fig.subplots()
        _lines(ax, frame, column, sim if simulated else None)
        ax.set(xlabel=f"budget ({currency})", ylabel=ylabel, title=title)
        if simulated:
            ax.set_title(title + " (bars: simulated 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        figures[name] = fig
    mix_columns = [c for c in frame.columns if c.startswith("users__")]
    policy = "optimal" if "optimal" in set(frame["policy"]) else frame["policy"].iloc[0]
    contexts = list(dict.fromkeys(frame["context"]))[:4]
    fig = Figure(figsize=(5 * len(contexts) + 1, 4.5))
    axes = fig.subplots(1, len(contexts), squeeze=False)
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
            title=f"{policy} plan's coupons" + ("" if context == "campaign" else f": {context}"),
        )
        ax.tick_params(axis="x", rotation=45)
        if bottom.any():  # no legend for a plan that sends nothing at every budget
            ax.legend(fontsize=8)
    figures["mix"] = fig
    return figures
