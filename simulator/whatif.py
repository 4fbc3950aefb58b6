"""What-if grids: the optimizer (and, on request, the A/B simulator) at every point of a grid.

A grid varies the budget, the coupon menu, the SMS cost, the margin or the targeted lifecycle
stages (:data:`AXES`). The models are trained once (on every stage the grid targets) and score
any menu without retraining (their coupon head takes face values and thresholds); each
combination of the non-budget axes builds its problem once, and the budget axis is swept on it
(:func:`optimizer.sweep.sweep_budgets`: one hull sort for the optimal policy, one ranking per
baseline). With ``simulate``, every point is also played on the scenario's world by
:func:`simulator.ab.run_experiment` (paired design: every policy on the whole population with
the same draws), which adds 95% intervals.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.campaign import CampaignInputs, align_scores, campaign_problem
from optimizer.errors import InputError
from optimizer.lifecycle import STAGES
from optimizer.menu import Menu, load_menu
from optimizer.policies import PolicySettings
from optimizer.sweep import sweep_budgets, sweep_frame
from simulator.ab import run_experiment
from simulator.pipeline import ScoredScenario, score_scenario
from simulator.scenario import Scenario

__all__ = [
    "AXES",
    "Grid",
    "WhatIf",
    "parse_vary",
    "run_whatif",
    "marginal_value",
    "profit_peaks",
]

#: Axes a grid can vary, and what their values are.
AXES: dict[str, str] = {
    "budget": "money; start:stop:points (evenly spaced) or a comma list",
    "menu": "comma list of menu TOML files",
    "sms_cost": "money per message; comma list",
    "margin_rate": "share of GMV; comma list",
    "stages": "comma list of lifecycle-stage sets, stages of a set joined by '+'",
}

#: Figures of every point and policy (expected, under the models), with their labels.
FIGURES: tuple[tuple[str, str], ...] = (
    ("incremental_conversions", "incremental conversions"),
    ("expected_cost", "cost"),
    ("roi", "ROI"),
    ("incremental_profit", "incremental profit"),
)

Progress = Callable[[int, int], None]


@dataclass
class Grid:
    """The values of each axis (budget always present)."""

    budget: list[float]
    menu: list[tuple[str, Menu]]
    sms_cost: list[float]
    margin_rate: list[float]
    stages: list[tuple[str, ...]]

    def contexts(self) -> list[dict[str, Any]]:
        """Every combination of the non-budget axes, as axis -> value."""
        combos = itertools.product(self.menu, self.sms_cost, self.margin_rate, self.stages)
        return [{"menu": m, "sms_cost": c, "margin_rate": r, "stages": s} for m, c, r, s in combos]

    @property
    def varied(self) -> list[str]:
        """Axes with more than one value (budget first)."""
        names = ["budget", "menu", "sms_cost", "margin_rate", "stages"]
        return [a for a in names if len(getattr(self, a)) > 1 or a == "budget"]


def _floats(axis: str, text: str, *, low: float, high: float | None = None) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{axis} values must be numbers, got {text!r}", source="--vary") from None
    bad = [v for v in values if v < low or (high is not None and v > high) or not np.isfinite(v)]
    if bad or not values:
        span = f">= {low:g}" + ("" if high is None else f" and <= {high:g}")
        raise InputError(f"{axis} values must be {span}, got {text!r}", source="--vary")
    return values


def _budgets(text: str) -> list[float]:
    if ":" not in text:
        return _floats("budget", text, low=0.0)
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"budget range must be start:stop:points, got {text!r}", source="--vary")
    start, stop = _floats("budget", parts[0], low=0.0)[0], _floats("budget", parts[1], low=0.0)[0]
    try:
        points = int(parts[2])
    except ValueError:
        points = 0
    if points < 2 or stop <= start:
        raise InputError(
            f"budget range needs stop > start and at least 2 points, got {text!r}",
            source="--vary",
        )
    return np.linspace(start, stop, points).tolist()


def parse_vary(items: Sequence[str], scenario: Scenario, base: Path | None = None) -> Grid:
    """A :class:`Grid` from ``--vary axis=values`` items; unvaried axes keep the scenario's.

    Parameters
    ----------
    items : sequence of str
        ``budget=10000:200000:10``, ``menu=a.toml,b.toml``, ``sms_cost=0.03,0.06``,
        ``margin_rate=0.2,0.3``, ``stages=dormant,dormant+lapsed``.
    scenario : Scenario
        Supplies the values of the axes that are not varied.
    base : Path, optional
        Directory relative menu paths are resolved against (default: the working directory).
    """
    grid = Grid(
        budget=[scenario.budget.amount],
        menu=[("scenario", scenario.menu)],
        sms_cost=[scenario.costs.sms_cost],
        margin_rate=[scenario.costs.margin_rate],
        stages=[tuple(scenario.campaign.target_stages)],
    )
    seen = set()
    for item in items:
        axis, sep, text = item.partition("=")
        axis = axis.strip()
        if not sep or axis not in AXES:
            raise InputError(
                f"cannot read {item!r}: expected axis=values with axis one of {', '.join(AXES)}",
                source="--vary",
            )
        if axis in seen:
            raise InputError(f"{axis} is varied twice", source="--vary")
        seen.add(axis)
        if axis == "budget":
            grid.budget = _budgets(text)
        elif axis in ("sms_cost", "margin_rate"):
            high = 1.0 if axis == "margin_rate" else None
            setattr(grid, axis, _floats(axis, text, low=0.0, high=high))
        elif axis == "menu":
            menus = []
            for name in (v.strip() for v in text.split(",") if v.strip()):
                path = Path(name)
                if not path.is_absolute() and base is not None:
                    path = base / path
                menus.append((Path(name).stem, load_menu(path)))
            if not menus:
                raise InputError("menu needs at least one file", source="--vary")
            grid.menu = menus
        else:
            sets = []
            for value in (v.strip() for v in text.split(",") if v.strip()):
                stages = tuple(s.strip() for s in value.split("+") if s.strip())
                unknown = [s for s in stages if s not in STAGES]
                if unknown or not stages:
                    raise InputError(
                        f"unknown stage {unknown[0] if unknown else value!r}; expected "
                        f"{', '.join(STAGES)}",
                        source="--vary",
                    )
                sets.append(stages)
            grid.stages = sets
    manual = scenario.manual.denomination
    for label, menu in grid.menu:
        if manual not in menu.names:
            raise InputError(
                f"menu {label!r} has no {manual!r}, the manual practice's coupon",
                source="--vary",
            )
    return grid


@dataclass
class WhatIf:
    """Results of a grid.

    Attributes
    ----------
    frame : DataFrame
        One row per (point, policy): the grid's axes (``budget``, ``menu``, ``sms_cost``,
        ``margin_rate``, ``stages``), ``context`` (a label of the non-budget axes), ``policy``,
        the plan's expected figures (:meth:`optimizer.plan.Plan.summary`), ``users__<d>`` per
        denomination, and with a simulation ``sim_<metric>``, ``sim_<metric>_low`` and
        ``sim_<metric>_high`` for incremental conversions, campaign cost, ROI and incremental
        profit.
    grid : Grid
    policies : tuple of str
    simulated : bool
    """

    frame: pd.DataFrame
    grid: Grid
    policies: tuple[str, ...]
    simulated: bool


def _context_label(context: dict[str, Any], grid: Grid) -> str:
    parts = []
    if len(grid.menu) > 1:
        parts.append(f"menu {context['menu'][0]}")
    if len(grid.sms_cost) > 1:
        parts.append(f"sms {context['sms_cost']:g}")
    if len(grid.margin_rate) > 1:
        parts.append(f"margin {context['margin_rate']:g}")
    if len(grid.stages) > 1:
        parts.append("+".join(context["stages"]))
    return ", ".join(parts) or "scenario"


def _variant(scenario: Scenario, context: dict[str, Any]) -> Scenario:
    data = scenario.model_dump()
    data["menu"] = context["menu"][1].model_dump()
    data["costs"]["sms_cost"] = context["sms_cost"]
    data["costs"]["margin_rate"] = context["margin_rate"]
    data["campaign"]["target_stages"] = list(context["stages"])
    return Scenario.model_validate(data)


SIM_METRICS: tuple[str, ...] = (
    "incremental_conversions",
    "campaign_cost",
    "roi",
    "incremental_profit",
)


#: What the forked simulation workers read (set by the parent before it forks).
_FORKED: dict[str, Any] = {}


def _simulate_point(budget: float) -> list[dict[str, Any]]:
    """The simulated metrics of every policy at ``budget`` (rows of ``sim_*`` figures)."""
    job = _FORKED
    experiment = run_experiment(
        job["scenario"],
        job["scored"],
        arms=job["policies"],
        budget=budget,
        replications=job["replications"],
        v2_threshold=job["v2_threshold"],
        objective=job["objective"],
        design="paired",
    )
    summary = experiment.summary().set_index(["arm", "metric"])
    rows = []
    for policy in job["policies"]:
        row: dict[str, Any] = {"policy": policy, "budget": budget}
        for metric in SIM_METRICS:
            r = summary.loc[(policy, metric)]
            row[f"sim_{metric}"] = r["mean"]
            row[f"sim_{metric}_low"] = r["low"]
            row[f"sim_{metric}_high"] = r["high"]
        rows.append(row)
    return rows


def _map_points(budgets: Sequence[float], workers: int | None) -> Iterator[list[dict[str, Any]]]:
    """:func:`_simulate_point` over ``budgets``, in forked processes when there are several."""
    workers = min(os.cpu_count() or 1, len(budgets)) if workers is None else workers
    if workers <= 1 or len(budgets) <= 1 or "fork" not in mp.get_all_start_methods():
        yield from map(_simulate_point, budgets)
        return
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        yield from pool.map(_simulate_point, budgets)


def run_whatif(
    scenario: Scenario,
    grid: Grid,
    policies: Sequence[str],
    settings: PolicySettings,
    *,
    scored: ScoredScenario | None = None,
    inputs: CampaignInputs | None = None,
    objective: str = "conversions",
    simulate: bool = False,
    replications: int = 3,
    workers: int | None = None,
    progress: Progress | None = None,
) -> WhatIf:
    """Plan (and optionally simulate) every policy at every point of ``grid``.

    Parameters
    ----------
    scenario : Scenario
        Costs, campaign, constraints and the ``[simulation]`` settings of every point.
    grid : Grid
    policies : sequence of str
    settings : PolicySettings
        Policy knobs shared by every point (the v2 cut, constraints, solver).
    scored : ScoredScenario, optional
        The scenario's world, models and scores (default: :func:`score_scenario`, trained on
        every stage the grid targets). Needed to vary the menu or the stages and to simulate.
    inputs : CampaignInputs, optional
        Candidates from a scores file instead (budget, sms_cost and margin_rate only).
    objective : {"conversions", "gmv", "profit"}
    simulate : bool
        Also play every point on the world (paired design, ``replications`` each).
    workers : int, optional
        Processes that simulate points in parallel (default: one per CPU, at most one per
        budget; 1 runs them in this process). The simulation is pure-Python event handling,
        so processes, forked with the world already in memory, are what runs it in parallel.
    progress : callable, optional
        ``progress(done, total)`` after every plan and every simulated point.
    """
    policies = tuple(policies)
    contexts = grid.contexts()
    if inputs is not None:
        if len(grid.menu) > 1 or len(grid.stages) > 1 or simulate:
            raise InputError(
                "varying the menu or the stages, and simulating, need the scenario's world "
                "(leave out --scores)",
                source="--vary",
            )
    elif scored is None:
        stages = sorted({s for c in contexts for s in c["stages"]}, key=STAGES.index)
        data = scenario.model_dump()
        data["campaign"]["target_stages"] = stages
        scored = score_scenario(Scenario.model_validate(data))
    per_point = len(policies) + (1 if simulate else 0)
    total = len(contexts) * len(grid.budget) * per_point
    done = 0

    def at(count: int) -> None:
        nonlocal done
        done = count
        if progress is not None:
            progress(done, total)

    frames = []
    for context in contexts:
        variant = _variant(scenario, context)
        menu = context["menu"][1]
        if inputs is not None:
            here = inputs
            context_scored = None
        else:
            # The scenario's own menu is already scored; another menu is scored here.
            same = menu == scenario.menu and len(scored.scores) == len(scored.users)
            scores = scored.scores if same else scored.models.predict(scored.users, menu)
            context_scored = replace(scored, scores=scores)
            here = align_scores(scores, scored.users, menu, stages=list(context["stages"]))
        if len(here.scores) == 0:
            raise InputError(f"no candidate users for {_context_label(context, grid)}")
        problem = campaign_problem(
            here,
            objective=objective,
            sms_cost=context["sms_cost"],
            margin_rate=context["margin_rate"],
            segment_column=scenario.constraints.segment_column,
        )
        before = done
        plans = sweep_budgets(
            problem,
            grid.budget,
            policies,
            settings,
            users=here.users,
            progress=lambda k, before=before: at(before + k),
        )
        frame = sweep_frame(plans)
        frame["menu"] = context["menu"][0]
        frame["sms_cost"] = context["sms_cost"]
        frame["margin_rate"] = context["margin_rate"]
        frame["stages"] = "+".join(context["stages"])
        frame["context"] = _context_label(context, grid)
        if simulate:
            _FORKED.update(
                scenario=variant,
                scored=context_scored,
                policies=policies,
                replications=replications,
                v2_threshold=settings.v2_threshold,
                objective=objective,
            )
            sims = []
            for rows in _map_points(grid.budget, workers):
                sims.extend(rows)
                at(done + 1)
            frame = frame.merge(pd.DataFrame(sims), on=["policy", "budget"], how="left")
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    axes = ["context", "budget", "menu", "sms_cost", "margin_rate", "stages", "policy"]
    frame = frame[axes + [c for c in frame.columns if c not in axes]]
    return WhatIf(frame=frame, grid=grid, policies=policies, simulated=simulate)


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
    return pd.DataFrame(rows, columns=["context", "policy", "from_budget", "to_budget",
                                       "per_money"])  # fmt: skip


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
    return pd.DataFrame(rows)
