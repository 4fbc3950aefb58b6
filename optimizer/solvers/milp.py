"""The exact campaign MILP in PuLP (HiGHS from PyPI; PuLP's CBC when HiGHS is missing).

The reference solver for small campaigns: binary ``x_ik`` (user i gets coupon k), at most one
per user, expected cost within the budget, and every constraint of
:mod:`optimizer.solvers.constraints` as the same linear rows the other solvers use. Options with
value <= 0 are left out unless a segment's minimum share makes them useful.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pulp

from optimizer.errors import InputError
from optimizer.solvers.constraints import Constraints, LinearRow, linear_rows, violations
from optimizer.solvers.problem import CampaignProblem

__all__ = ["MilpSolution", "solve_milp", "solve_rows", "milp_solver"]


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
        # One thread: HiGHS keeps a process-wide worker pool, and a process forked after it
        # started (the what-if simulation workers) would wait on it forever.
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=gap, threads=1)
    if "PULP_CBC_CMD" in available:
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap)
    raise InputError("no MILP solver for PuLP: install highspy (pip install highspy)")


@dataclass
class MilpSolution:
    """The MILP's plan and its status (``upper_bound`` None unless optimality was proven)."""

    choice: np.ndarray
    value: float
    cost: float
    upper_bound: float | None
    status: str
    seconds: float


def solve_rows(
    value: np.ndarray,
    eligible: np.ndarray,
    rows: Sequence[LinearRow],
    *,
    time_limit: float | None = None,
    gap: float = 1e-7,
) -> tuple[np.ndarray, str, float | None]:
    """Maximise ``sum value_ik x_ik`` subject to ``rows`` and at most one option per user.

    Parameters
    ----------
    value : ndarray, shape (n, k)
        Objective coefficients; options with value <= 0 are left out unless a row has a
        negative coefficient on them (a segment minimum share can make them worth taking).
    eligible : ndarray of bool, shape (n, k)
    rows : sequence of LinearRow
        The ``<=`` rows over the same n users.
    time_limit : float, optional
        Seconds.
    gap : float
        Relative MIP gap at which the solver stops.

    Returns
    -------
    choice : ndarray of int16, shape (n,)
    status : str
    objective_bound : float or None
        The solver's objective (an upper bound when it proved optimality).
    """
    n, k = value.shape
    ok = eligible & np.isfinite(value)
    helpful = value > 0
    for row in rows:
        if row.user is not None and (row.user < 0).any():
            helpful |= (row.user < 0)[:, None]
    ok &= helpful
    choice = np.full(n, -1, dtype=np.int16)
    if not ok.any():
        return choice, "Optimal", 0.0
    r, c = np.nonzero(ok)
    model = pulp.LpProblem("campaign", pulp.LpMaximize)
    x = [model.add_variable(f"x{j}", 0, 1, cat=pulp.LpBinary) for j in range(r.size)]
    model += pulp.lpDot(value[r, c].tolist(), x)
    for row in rows:
        coef = row.at(r, c.astype(np.int64))
        nonzero = np.flatnonzero(coef != 0)
        # A row that cannot bind (every coefficient >= 0 and their sum within rhs) is skipped.
        if nonzero.size == 0 or ((coef >= 0).all() and coef.sum() <= row.rhs):
            continue
        model += (
            pulp.lpDot(coef[nonzero].tolist(), [x[j] for j in nonzero]) <= row.rhs,
            row.name.replace(":", "_"),
        )
    order = np.argsort(r, kind="stable")
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], r[order]])))
    for a, b in zip(starts, np.append(starts[1:], order.size), strict=True):
        if b - a > 1:
            model += pulp.lpSum(x[j] for j in order[a:b]) <= 1
    with _stdout_silenced():  # HiGHS prints a banner on the C-level stdout even when quiet
        status_code = model.solve(milp_solver(time_limit, gap))
    status = pulp.LpStatus[status_code]
    if status == "Optimal" and model.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "Feasible"  # stopped by the time limit with an incumbent
    chosen = np.array([(v.varValue or 0.0) > 0.5 for v in x], dtype=bool)
    choice[r[chosen]] = c[chosen]
    objective = pulp.value(model.objective)
    return choice, status, None if objective is None else float(objective)


def solve_milp(
    problem: CampaignProblem,
    budget: float,
    constraints: Constraints | None = None,
    *,
    time_limit: float | None = None,
    gap: float = 1e-7,
) -> MilpSolution:
    """Solve the campaign exactly.

    Parameters
    ----------
    problem : CampaignProblem
    budget : float
        Expected-cost budget (money).
    constraints : Constraints, optional
        Caps, message cap, minimum ROI, segment shares.
    time_limit : float, optional
        Seconds; the best plan found so far is returned with a ``status`` saying so.
    gap : float
        Relative MIP gap at which the solver stops: the plan is then within this share of the
        optimum, and the bound reported is ``value / (1 - gap)``.
    """
    start = time.perf_counter()
    constraints = constraints or Constraints()
    constraints.validate(problem)
    rows = linear_rows(problem, budget, constraints)
    eligible = problem.eligible & (constraints.caps_array(problem) > 0)[None, :]
    choice, status, objective = solve_rows(
        problem.value, eligible, rows, time_limit=time_limit, gap=gap
    )
    if violations(choice, rows):  # a time-limited run without an incumbent
        choice[:] = -1
    chosen = np.flatnonzero(choice >= 0)
    value = float(problem.value[chosen, choice[chosen]].sum())
    bound = max(value, objective or value) / (1 - gap) if status == "Optimal" else None
    return MilpSolution(
        choice=choice,
        value=value,
        cost=float(problem.cost[chosen, choice[chosen]].sum()),
        upper_bound=bound,
        status=status,
        seconds=time.perf_counter() - start,
    )
