"""Plans of several policies at many budgets on one problem: the what-if budget sweep.

A sweep reuses what does not depend on the budget. The optimal policy under the budget alone
sorts every user's hull segments once (:func:`optimizer.solvers.hull.hull_segments`) and solves each
budget from them (the dual solver's greedy, certificate and core polish; above
:data:`SWEEP_SORT_MAX_USERS` each budget brackets its own price, in bounded memory); the ranked
baselines rank their users once and take their list at each budget. Anything else
(other constraints, a target, a conversion floor, an overrun risk, the exact solver) is planned
point by point through :func:`optimizer.planning.policies.make_plan`, so every point is the
plan that ``couponopt optimize`` would make at that budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.planning.plan import Plan, check_plan
from optimizer.planning.policies import (
    AUTO_EXACT_MAX_USERS,
    POLICIES,
    PolicySettings,
    fit_overrun,
    make_plan,
    ranking,
    screened,
    take_in_order,
)
from optimizer.progress import Progress, report
from optimizer.solvers.dual import solve_dual
from optimizer.solvers.hull import hull_segments
from optimizer.solvers.problem import CampaignProblem

__all__ = ["sweep_budgets", "sweep_frame", "SWEEP_SORT_MAX_USERS"]

#: Up to this many users a sweep sorts the hull segments once for all budgets (about 160 MB
#: per million users with four coupons); above it each budget brackets its own price.
SWEEP_SORT_MAX_USERS = 2_000_000


def _hull_path(problem: CampaignProblem, settings: PolicySettings) -> bool:
    """True when the optimal plan at every budget is the hull greedy on one sort."""
    solver = settings.solver
    if solver == "auto":
        solver = "pulp" if problem.n_users <= AUTO_EXACT_MAX_USERS else "dual"
    return (
        solver == "dual"
        and settings.constraints.budget_only
        and settings.target is None
        and settings.min_conversions is None
    )


def sweep_budgets(
    problem: CampaignProblem,
    budgets: Sequence[float],
    policies: Sequence[str],
    settings: PolicySettings,
    *,
    users: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> dict[str, list[Plan]]:
    """Every policy's plan at every budget, each checked.

    Parameters
    ----------
    problem : CampaignProblem
    budgets : sequence of float, shape (b,)
        Budgets (money), any order; plans come back in the same order.
    policies : sequence of str
        Names from :data:`~optimizer.planning.policies.POLICIES`.
    settings : PolicySettings
    users : DataFrame, optional
        The candidates' user rows (the manual policy ranks on them).
    progress : callable, optional
        Receives a ``"planning"`` :class:`~optimizer.progress.Step` after every plan.

    Returns
    -------
    dict of str to list of Plan
        Per policy, one plan per budget.
    """
    budgets = [float(b) for b in budgets]
    if any(not 0 <= b < float("inf") for b in budgets):
        raise InputError("must be finite amounts >= 0", key="budgets")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise InputError(
            f"unknown policy {unknown[0]!r}; expected some of {', '.join(POLICIES)}",
            key="policies",
        )
    settings.constraints.validate(problem)
    out: dict[str, list[Plan]] = {}
    done, total = 0, len(policies) * len(budgets)
    for policy in policies:
        plans = []
        start = time.perf_counter()
        if policy == "optimal" and _hull_path(problem, settings):
            target = problem
            details: dict[str, object] = {}
            if settings.natural_screen is not None:
                target = screened(problem, settings.natural_screen)
                details["natural_screen"] = float(settings.natural_screen)
            segments = None
            if target.n_users <= SWEEP_SORT_MAX_USERS:
                segments = hull_segments(target)  # one sort for every budget
            for budget in budgets:

                def hull_at(
                    amount: float,
                    budget=budget,
                    target=target,
                    segments=segments,
                    policy=policy,
                    details=details,
                ):
                    sol = solve_dual(
                        target, amount, settings.constraints, seed=settings.seed,
                        segments=segments,
                    )  # fmt: skip
                    return Plan(
                        problem, sol.choice, policy, "dual", budget, upper_bound=sol.upper_bound,
                        details=details | {"multipliers": sol.multipliers},
                    )  # fmt: skip

                plans.append(fit_overrun(hull_at, budget, settings))
        elif policy != "optimal":
            order, k, details = ranking(policy, problem, settings, users)
            for budget in budgets:

                def ranked_at(
                    amount: float, budget=budget, order=order, k=k, details=details, policy=policy
                ):
                    choice = take_in_order(problem, order, k, amount, settings)
                    return Plan(problem, choice, policy, "ranking", budget, details=details)

                plans.append(fit_overrun(ranked_at, budget, settings))
        else:
            plans = [make_plan(policy, problem, b, settings, users=users) for b in budgets]
        seconds = (time.perf_counter() - start) / max(len(budgets), 1)
        for plan in plans:
            plan.seconds = plan.seconds or seconds
            check_plan(plan, settings.constraints)
            done += 1
            report(progress, "planning", done, total)
        out[policy] = plans
    return out


def sweep_frame(plans: dict[str, list[Plan]]) -> pd.DataFrame:
    """One row per (policy, budget) with the plan's summary figures and denomination mix.

    Returns
    -------
    DataFrame
        Columns ``policy``, ``budget`` and the keys of :meth:`Plan.summary`, plus
        ``users__<denomination>`` (users sent each coupon).
    """
    rows = []
    for policy, series in plans.items():
        for plan in series:
            row = plan.summary()
            row["policy"] = policy
            menu = plan.problem.menu
            counts = np.bincount(plan.choice[plan.choice >= 0], minlength=len(menu))
            for name, count in zip(menu.names, counts, strict=True):
                row[f"users__{name}"] = int(count)
            rows.append(row)
    return pd.DataFrame(rows)
