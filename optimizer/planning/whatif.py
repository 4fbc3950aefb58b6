"""What-if grids: every policy's plan at every point of a grid of campaign settings.

A grid varies the budget, the coupon menu, the SMS cost, the margin or the targeted segments.
Each combination of the non-budget axes (a *context*) builds its problem once, and the budget
axis is swept on it (:func:`optimizer.planning.sweep.sweep_budgets`: one hull sort for the
optimal policy, one ranking per baseline), so a grid of many budgets costs little more than one
plan. Where the candidates of a context come from is the caller's: a scores file (budget, SMS
cost and margin axes), models that score any menu, a synthetic world.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.io.menu import Menu, load_menu
from optimizer.planning.candidates import Candidates, campaign_problem
from optimizer.planning.config import CampaignConfig, Vary
from optimizer.planning.plan import Plan
from optimizer.planning.request import PlanningRequest
from optimizer.planning.sweep import sweep_budgets, sweep_frame
from optimizer.progress import Progress, Step

__all__ = [
    "AXES",
    "FIGURES",
    "Context",
    "Grid",
    "GridResult",
    "MAX_GRID_POINTS",
    "build_grid",
    "plan_grid",
    "marginal_value",
    "profit_peaks",
]

#: Axes a grid can vary, and what their values are.
AXES: dict[str, str] = {
    "budget": "money",
    "menu": "menu TOML files",
    "sms_cost": "money per message",
    "margin_rate": "share of GMV",
    "segments": "sets of targeted segment labels",
}

#: Figures of every point and policy (expected, under the models), with their labels.
FIGURES: tuple[tuple[str, str], ...] = (
    ("incremental_conversions", "incremental conversions"),
    ("expected_cost", "cost"),
    ("roi", "ROI"),
    ("incremental_profit", "incremental profit"),
)


@dataclass(frozen=True)
class Context:
    """One combination of the non-budget axes.

    Attributes
    ----------
    menu_label : str
        The menu's name in tables (its file stem, or ``campaign``).
    menu : Menu
    sms_cost : float
        Money per message.
    margin_rate : float
        Share of GMV.
    segments : tuple of str
        Targeted segment labels (empty: every candidate).
    label : str
        The varied axes' values in a few words (``menu plus_20off199, sms 0.1``), or
        ``campaign`` when nothing but the budget varies.
    """

    menu_label: str
    menu: Menu
    sms_cost: float
    margin_rate: float
    segments: tuple[str, ...]
    label: str


#: The most points a what-if grid may hold (its axes' sizes multiplied): each point is a plan.
MAX_GRID_POINTS = 10_000


@dataclass
class Grid:
    """The values of each axis (budget always present)."""

    budget: list[float]
    menu: list[tuple[str, Menu]]
    sms_cost: list[float]
    margin_rate: list[float]
    segments: list[tuple[str, ...]]

    @property
    def varied(self) -> list[str]:
        """Axes with more than one value (budget always, first)."""
        return [a for a in AXES if a == "budget" or len(getattr(self, a)) > 1]

    def contexts(self) -> list[Context]:
        """Every combination of the non-budget axes."""
        out = []
        for (label, menu), cost, margin, segments in itertools.product(
            self.menu, self.sms_cost, self.margin_rate, self.segments
        ):
            parts = []
            if len(self.menu) > 1:
                parts.append(f"menu {label}")
            if len(self.sms_cost) > 1:
                parts.append(f"sms {cost:g}")
            if len(self.margin_rate) > 1:
                parts.append(f"margin {margin:g}")
            if len(self.segments) > 1:
                parts.append("+".join(segments))
            text = ", ".join(parts) or "campaign"
            seen = sum(1 for c in out if c.label == text or c.label.startswith(f"{text} ("))
            text = f"{text} ({seen + 1})" if seen else text  # labels name contexts: unique
            out.append(Context(label, menu, cost, margin, tuple(segments), text))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready axes (menus by label)."""
        return {
            "budget": list(self.budget),
            "menu": [label for label, _ in self.menu],
            "sms_cost": list(self.sms_cost),
            "margin_rate": list(self.margin_rate),
            "segments": [list(s) for s in self.segments],
        }


def build_grid(campaign: CampaignConfig, vary: Vary, base: str | Path | None = None) -> Grid:
    """The grid of ``vary``; an axis it leaves out keeps ``campaign``'s value.

    Parameters
    ----------
    campaign : CampaignConfig
    vary : Vary
        The varied axes (``campaign.whatif.vary``, or values given for one run).
    base : str or Path, optional
        Directory relative menu files are relative to (the configuration file's directory);
        the working directory when None.

    Raises
    ------
    InputError
        A menu file is bad, or a menu lacks the manual practice's coupon (key
        ``whatif.vary.menu``).
    """
    menus = [("campaign", campaign.menu)]
    if vary.menu is not None:
        stems = [Path(name).stem for name in vary.menu]
        menus = []
        for name, stem in zip(vary.menu, stems, strict=True):
            path = Path(name)
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            menus.append((stem if stems.count(stem) == 1 else name, load_menu(path)))
    manual = campaign.manual.denomination
    for label, menu in menus:
        if manual not in menu.names:
            raise InputError(
                f"menu {label!r} has no {manual!r}, the manual practice's coupon",
                key="whatif.vary.menu",
            )
    grid = Grid(
        budget=vary.budgets() or [campaign.budget.amount],
        menu=menus,
        sms_cost=list(vary.sms_cost or [campaign.costs.sms_cost]),
        margin_rate=list(vary.margin_rate or [campaign.costs.margin_rate]),
        segments=[tuple(s) for s in (vary.segments or [campaign.targeting.segments])],
    )
    axes = (grid.budget, grid.menu, grid.sms_cost, grid.margin_rate, grid.segments)
    points = int(np.prod([len(axis) for axis in axes]))
    if points > MAX_GRID_POINTS:
        raise InputError(
            f"the grid has {points:,} points ({' x '.join(str(len(a)) for a in axes)}: budgets,"
            f" menus, SMS costs, margins, segments); at most {MAX_GRID_POINTS:,}",
            key="whatif.vary",
        )
    return grid


@dataclass
class GridResult:
    """Every policy's plan figures at every point of a grid.

    Attributes
    ----------
    frame : DataFrame
        One row per (point, policy): ``context`` (:attr:`Context.label`), ``budget``, ``menu``,
        ``sms_cost``, ``margin_rate``, ``segments`` (labels joined by ``+``), ``policy``, the
        plan's expected figures (:meth:`optimizer.planning.plan.Plan.summary`) and
        ``users__<d>`` per denomination; a simulator may add ``sim_<figure>`` columns with
        their ``_low`` and ``_high`` 95% bounds.
    grid : Grid
    policies : tuple of str
    simulated : bool
        True when the frame carries simulated figures.
    """

    frame: pd.DataFrame
    grid: Grid
    policies: tuple[str, ...]
    simulated: bool = False

    def marginal_value(self) -> pd.DataFrame:
        """:func:`marginal_value` of the frame."""
        return marginal_value(self.frame)

    def profit_peaks(self) -> pd.DataFrame:
        """:func:`profit_peaks` of the frame."""
        return profit_peaks(self.frame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready results: the points, the marginal values and the profit peaks."""
        return {
            "policies": list(self.policies),
            "varied": self.grid.varied,
            "grid": self.grid.to_dict(),
            "simulated": self.simulated,
            "points": self.frame.to_dict(orient="records"),
            "marginal_value": self.marginal_value().to_dict(orient="records"),
            "profit_peaks": self.profit_peaks().to_dict(orient="records"),
        }


def plan_grid(
    request: PlanningRequest,
    grid: Grid,
    candidates_for: Callable[[Context], Candidates],
    *,
    policies: Sequence[str] | None = None,
    progress: Progress | None = None,
    value: Callable[[dict[str, list[Plan]], Context], pd.DataFrame] | None = None,
) -> GridResult:
    """Plan every policy at every point of ``grid``.

    Parameters
    ----------
    request : PlanningRequest
        Objective, constraints and policy knobs shared by every point (its budget, costs and
        targeting are replaced by each point's).
    grid : Grid
    candidates_for : callable
        The candidates of a context (scored with its menu, targeted at its segments).
    policies : sequence of str, optional
        Default: the request's.
    progress : callable, optional
        Receives a ``"planning the grid"`` :class:`~optimizer.progress.Step` after every plan.
    value : callable, optional
        Values a point's plans (and its context) on a log
        (:func:`optimizer.planning.valuation.grid_values`): its columns are added to the
        frame, one row per plan in the frame's order.
    """
    policies = tuple(str(p) for p in (request.policies if policies is None else policies))
    settings = request.settings()
    contexts = grid.contexts()
    total = len(contexts) * len(grid.budget) * len(policies)
    frames = []
    for index, context in enumerate(contexts):
        candidates = candidates_for(context)
        if len(candidates) == 0:
            raise InputError(f"no candidate users for {context.label}", key="candidates")
        problem = campaign_problem(
            candidates,
            objective=request.objective,
            sms_cost=context.sms_cost,
            margin_rate=context.margin_rate,
            segment_column=request.segment_column,
            basket_column=request.basket_column,
            order_value=request.campaign.costs.order_value,
        )
        before = index * len(grid.budget) * len(policies)

        def forward(step: Step, before: int = before) -> None:
            if progress is not None:
                progress(Step("planning the grid", before + step.done, total))

        plans = sweep_budgets(
            problem, grid.budget, policies, settings, users=candidates.users, progress=forward
        )
        frame = sweep_frame(plans)
        if value is not None:
            frame = pd.concat([frame, value(plans, context).set_index(frame.index)], axis=1)
        frame["menu"] = context.menu_label
        frame["sms_cost"] = context.sms_cost
        frame["margin_rate"] = context.margin_rate
        frame["segments"] = "+".join(context.segments)
        frame["context"] = context.label
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    axes = ["context", "budget", "menu", "sms_cost", "margin_rate", "segments", "policy"]
    frame = frame[axes + [c for c in frame.columns if c not in axes]]
    return GridResult(frame=frame, grid=grid, policies=policies)


def marginal_value(frame: pd.DataFrame) -> pd.DataFrame:
    """Incremental conversions per extra unit of money between consecutive budgets.

    Returns
    -------
    DataFrame
        ``context``, ``policy``, ``from_budget``, ``to_budget`` and ``per_money`` (expected
        incremental conversions per currency unit), one row per consecutive pair.
    """
    rows = []
    for (context, policy), part in frame.groupby(["context", "policy"], sort=False):
        part = part.sort_values("budget")
        b = part["budget"].to_numpy()
        v = part["incremental_conversions"].to_numpy()
        for i in range(1, b.size):
            step = b[i] - b[i - 1]
            rows.append(
                {
                    "context": context,
                    "policy": policy,
                    "from_budget": b[i - 1],
                    "to_budget": b[i],
                    "per_money": (v[i] - v[i - 1]) / step if step > 0 else float("nan"),
                }
            )
    columns = ["context", "policy", "from_budget", "to_budget", "per_money"]
    return pd.DataFrame(rows, columns=columns)


def profit_peaks(frame: pd.DataFrame) -> pd.DataFrame:
    """The budget of the grid at which expected incremental profit peaks, per context and policy.

    Returns
    -------
    DataFrame
        ``context``, ``policy``, ``budget``, ``incremental_profit``, ``expected_cost`` (what the
        plan spends there: below the budget when more money buys no profit).
    """
    rows = []
    for (context, policy), part in frame.groupby(["context", "policy"], sort=False):
        best = part.loc[part["incremental_profit"].idxmax()]
        rows.append(
            {
                "context": context,
                "policy": policy,
                "budget": best["budget"],
                "incremental_profit": best["incremental_profit"],
                "expected_cost": best["expected_cost"],
            }
        )
    columns = ["context", "policy", "budget", "incremental_profit", "expected_cost"]
    return pd.DataFrame(rows, columns=columns)
