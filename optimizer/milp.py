"""The exact campaign MILP in PuLP (HiGHS from PyPI; PuLP's CBC when HiGHS is missing).

The reference solver for small campaigns: binary ``x_ik`` (user i gets coupon k), at most one
per user, expected cost within the budget, optional per-denomination caps and a cap on
messages. Options with value <= 0 are left out: with only "at most" constraints they can never
improve a plan.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pulp

from optimizer.errors import InputError
from optimizer.problem import CampaignProblem

__all__ = ["MilpSolution", "solve_milp", "milp_solver"]


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the duration (a solver's C code writes there)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def milp_solver(time_limit: float | None = None, gap: float = 1e-7) -> pulp.LpSolver:
    """HiGHS through highspy when available, else PuLP's bundled CBC, silent."""
    available = pulp.listSolvers(onlyAvailable=True)
    if "HiGHS" in available:
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=gap)
    if "PULP_CBC_CMD" in available:
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap)
    raise InputError("no MILP solver for PuLP: install highspy (pip install highspy)")


@dataclass
class MilpSolution:
    """The MILP's plan and its status."""

    choice: np.ndarray
    value: float
    cost: float
    upper_bound: float
    status: str
    seconds: float


def solve_milp(
    problem: CampaignProblem,
    budget: float,
    *,
    max_per_denomination: Mapping[str, int] | None = None,
    max_messages: int | None = None,
    min_roi: float | None = None,
    time_limit: float | None = None,
) -> MilpSolution:
    """Solve the campaign exactly.

    Parameters
    ----------
    problem : CampaignProblem
    budget : float
        Expected-cost budget (money).
    max_per_denomination : mapping of str to int, optional
        Coupon inventory: at most this many coupons of a denomination.
    max_messages : int, optional
        At most this many messages (coupons) in all.
    min_roi : float, optional
        Expected incremental GMV at least ``min_roi`` times the expected cost.
    time_limit : float, optional
        Seconds; the best plan found so far is returned with a ``status`` saying so.
    """
    start = time.perf_counter()
    n, k = problem.value.shape
    ok = problem.eligible & (problem.value > 0) & np.isfinite(problem.value)
    if max_per_denomination:
        for name, cap in max_per_denomination.items():
            if cap <= 0:
                ok[:, problem.menu.index(name)] = False
    rows, cols = np.nonzero(ok)
    model = pulp.LpProblem("campaign", pulp.LpMaximize)
    x = [model.add_variable(f"x{j}", 0, 1, cat=pulp.LpBinary) for j in range(rows.size)]
    values = problem.value[rows, cols]
    costs = problem.cost[rows, cols]
    model += pulp.lpDot(values.tolist(), x)
    model += pulp.lpDot(costs.tolist(), x) <= budget, "budget"
    order = np.argsort(rows, kind="stable")
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], rows[order]])))
    for a, b in zip(starts, np.append(starts[1:], order.size), strict=True):
        if b - a > 1:
            model += pulp.lpSum(x[j] for j in order[a:b]) <= 1
    if max_per_denomination:
        for name, cap in max_per_denomination.items():
            col = problem.menu.index(name)
            members = np.flatnonzero(cols == col)
            if cap > 0 and members.size > cap:
                model += pulp.lpSum(x[j] for j in members) <= cap, f"cap_{col}"
    if min_roi is not None:
        gain = (problem.gmv_uplift() - min_roi * problem.cost)[rows, cols]
        model += pulp.lpDot(gain.tolist(), x) >= 0, "min_roi"
    if max_messages is not None and rows.size > max_messages:
        model += pulp.lpSum(x) <= max_messages, "messages"
    with _stdout_silenced():  # HiGHS prints a banner on the C-level stdout even when quiet
        status_code = model.solve(milp_solver(time_limit))
    status = pulp.LpStatus[status_code]
    chosen = np.array([(v.varValue or 0.0) > 0.5 for v in x], dtype=bool)
    choice = np.full(n, -1, dtype=np.int16)
    choice[rows[chosen]] = cols[chosen]
    value = float(values[chosen].sum())
    bound = value
    objective = pulp.value(model.objective)
    if objective is not None:
        bound = max(bound, float(objective))
    return MilpSolution(
        choice=choice,
        value=value,
        cost=float(costs[chosen].sum()),
        upper_bound=bound,
        status=status,
        seconds=time.perf_counter() - start,
    )
