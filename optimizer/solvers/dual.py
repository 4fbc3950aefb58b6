"""Lagrangian-dual decomposition for millions of users, with a certified optimality gap.

Every constraint is a linear row ``sum_ik a_ik x_ik <= b`` (:mod:`optimizer.solvers.constraints`):
the budget, coupon caps, the message cap, the minimum ROI, segment shares. Multipliers
``lam >= 0`` price the rows; at given multipliers every user independently takes the option with
the best reduced value ``v_ik - sum_j lam_j a^j_ik`` (or nothing when none is positive): a
vectorised argmax, no loop over users. Weak duality makes

    D(lam) = sum_i max(0, max_k reduced_ik) + sum_j lam_j b_j

an upper bound on every feasible plan, for *any* non-negative multipliers: the certificate.

``D`` is convex and piecewise linear. It is minimised through its entropic smoothing
``D_tau(lam) = sum_i tau log(1 + sum_k exp(reduced_ik / tau)) + lam . b``, which is smooth,
convex, within ``tau n log(k + 1)`` of ``D`` and has the exact gradient ``b - sum_ik pi_ik a_ik``
(``pi`` the softmax choice probabilities): L-BFGS-B (scipy) under ``lam >= 0``, ``tau`` lowered
by continuation, warm-started from a random subsample of users when there are many. The bound
reported is the smallest *unsmoothed* ``D`` met on the way.

The plan: each user's argmax at the best multipliers, repaired into feasibility (the users with
the weakest reduced value leave first where a row is broken; the empty plan is always feasible,
so the repair always ends), then filled by the best remaining reduced values while every row
keeps its slack. Finally a *core* polish: the few users whose choice the multipliers leave
nearly undecided (smallest margin between their best and second-best reduced value; the LP
relaxation has at most one fractional user per row) are re-optimised exactly by the MILP of
:mod:`optimizer.solvers.milp` with every other user fixed, which is the core-problem method of
knapsack solvers (Pisinger; Kellerer, Pferschy and Pisinger, *Knapsack Problems*, ch. 5 and 11). The
polish never lowers the plan's value and runs only while the certified gap is above
``polish_gap``.

With the budget as the only row, the hull greedy of :mod:`optimizer.solvers.hull` solves the
same dual exactly (``lam`` is the slope of the segment the budget splits), so it is used; above
``BRACKET_MIN_USERS`` users :mod:`optimizer.solvers.budget` gets the same plan from one chunked pass
and the hull of the few users near the budget's price (no core polish there: one hull step is
a negligible share of the value at that size, and the certified gap says so).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from optimizer.errors import InputError
from optimizer.solvers.budget import solve_budget
from optimizer.solvers.constraints import (
    Constraints,
    LinearRow,
    fill_plan,
    linear_rows,
    repair_plan,
    violations,
)
from optimizer.solvers.hull import HullSegments, hull_segments, solve_hull
from optimizer.solvers.problem import CampaignProblem

__all__ = ["DualSolution", "solve_dual", "solve_dual_rows", "POLISH_GAP", "CORE_USERS"]

#: The core polish runs while the certified relative gap is above this.
POLISH_GAP = 1e-4
#: Users re-optimised exactly by the core polish (at most; fewer when n is smaller).
CORE_USERS = 300
#: Users of the subsample that warm-starts the multipliers on large problems.
WARM_START_USERS = 50_000
#: Above this many users a budget-only plan brackets the price on a sample
#: (:mod:`optimizer.solvers.budget`) instead of sorting every user's hull.
BRACKET_MIN_USERS = 300_000
#: Smoothing temperatures (relative to the largest option value), coarse to fine.
TEMPERATURES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5)


@dataclass
class DualSolution:
    """A feasible plan, the best dual bound found, and the multipliers that gave it.

    Attributes
    ----------
    choice : ndarray of int16, shape (n,)
        Denomination per user, -1 for none.
    value, cost : float
        Objective value and expected cost (money) of the plan.
    upper_bound : float
        Smallest dual value found: no feasible plan does better.
    multipliers : dict of str to float
        Price of each row at the bound (objective units per row unit).
    seconds : float
    core_users : int
        Users re-optimised by the core polish (0 when it did not run).
    """

    choice: np.ndarray
    value: float
    cost: float
    upper_bound: float
    multipliers: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    core_users: int = 0

    @property
    def gap(self) -> float:
        """Certified relative optimality gap ``(upper_bound - value) / upper_bound``."""
        if self.upper_bound <= 0:
            return 0.0
        return max(0.0, (self.upper_bound - self.value) / self.upper_bound)


def _masked_values(problem: CampaignProblem, constraints: Constraints) -> np.ndarray:
    """Option values with -inf where an option may not be sent, shape (n, k)."""
    ok = problem.eligible & np.isfinite(problem.value)
    ok &= (constraints.caps_array(problem) > 0)[None, :]
    return np.where(ok, problem.value, -np.inf)


def _reduced(value: np.ndarray, rows: Sequence[LinearRow], lam: np.ndarray) -> np.ndarray:
    """Reduced values ``v - sum_j lam_j a^j``, shape (n, k)."""
    out = value.copy()
    for row, m in zip(rows, lam, strict=True):
        row.subtract(out, float(m))
    return out


def _argmax_choice(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best option per user (-1 when none is positive) and its positive part, shape (n,)."""
    best = np.argmax(reduced, axis=1)
    score = np.take_along_axis(reduced, best[:, None], axis=1)[:, 0]
    return np.where(score > 0, best, -1), np.maximum(score, 0.0)


class _SmoothedDual:
    """``D_tau`` over scaled multipliers ``y`` (``lam_j = y_j * vscale / ascale_j``)."""

    def __init__(
        self,
        value: np.ndarray,
        rows: Sequence[LinearRow],
        scales: tuple[float, np.ndarray] | None = None,
    ):
        self.value = value
        self.rows = rows
        self.n = value.shape[0]
        self.rhs = np.array([r.rhs for r in rows])
        if scales is None:
            scales = self._scales()
        self.vscale, self.ascale = scales
        self.best_bound = np.inf
        self.best_lam = np.zeros(len(rows))

    def _scales(self) -> tuple[float, np.ndarray]:
        """Value scale and per-row coefficient scales.

        The largest absolute option value, and each row's mean absolute coefficient over a
        spread sample of the sendable options (one pass over the values for all rows).
        """
        finite = np.isfinite(self.value)
        vscale = float(np.abs(self.value[finite]).max()) if finite.any() else 1.0
        users, cols = np.nonzero(finite)
        ascale = np.ones(len(self.rows))
        if users.size:
            pick = np.linspace(0, users.size - 1, min(users.size, 4096)).astype(np.int64)
            for j, row in enumerate(self.rows):
                typical = float(np.abs(row.at(users[pick], cols[pick])).mean())
                ascale[j] = typical if typical > 0 else 1.0
        return (vscale if vscale > 0 else 1.0), ascale

    def lam(self, y: np.ndarray) -> np.ndarray:
        return y * self.vscale / self.ascale

    def __call__(self, y: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
        lam = self.lam(y)
        r = _reduced(self.value, self.rows, lam) / self.vscale
        top = np.maximum(r.max(axis=1), 0.0)
        hard = float(top.sum() * self.vscale + lam @ self.rhs)
        if hard < self.best_bound:
            self.best_bound, self.best_lam = hard, lam.copy()
        with np.errstate(under="ignore"):
            e = np.exp((r - top[:, None]) / tau)
            z = np.exp(-top / tau) + e.sum(axis=1)
        smooth = float((top + tau * np.log(z)).sum()) + float(lam @ self.rhs) / self.vscale
        pi = e / z[:, None]
        grad = np.array([r_.rhs - r_.weighted_sum(pi) for r_ in self.rows]) / self.ascale
        return smooth / self.n, grad / self.n


def _minimise(
    dual: _SmoothedDual, y0: np.ndarray, temperatures: Sequence[float], maxiter: int
) -> np.ndarray:
    """L-BFGS-B over ``y >= 0`` through the temperatures, each warm-started from the last."""
    y = y0.copy()
    for tau in temperatures:
        res = minimize(
            dual,
            y,
            args=(tau,),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * y.size,
            options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-10},
        )
        y = np.maximum(res.x, 0.0)
    return y


def _polish(
    value: np.ndarray,
    rows: Sequence[LinearRow],
    lam: np.ndarray,
    choice: np.ndarray,
    core_users: int,
    time_limit: float,
    tolerance: float,
) -> tuple[np.ndarray, int]:
    """Re-optimise the least decided users exactly, the others fixed (never worse)."""
    from optimizer.solvers.milp import solve_rows

    n = value.shape[0]
    reduced = _reduced(value, rows, lam)
    padded = np.concatenate([np.zeros((n, 1)), np.where(np.isfinite(reduced), reduced, -1e300)], 1)
    top2 = -np.partition(-padded, 1, axis=1)[:, :2]
    margin = top2[:, 0] - top2[:, 1]
    size = min(n, core_users)
    core = np.sort(np.argpartition(margin, size - 1)[:size]) if size < n else np.arange(n)
    fixed = choice.copy()
    fixed[core] = -1
    sub_rows = [r.take(core, rhs=r.rhs - r.usage(fixed)) for r in rows]
    sub_value = np.where(np.isfinite(value[core]), value[core], 0.0)
    # The core MILP only has to be as accurate as the whole plan needs: ``tolerance`` is an
    # absolute objective amount, turned into a gap relative to the core's own value.
    core_value = max(_plan_value(value, np.where(np.isin(np.arange(n), core), choice, -1)), 1e-12)
    gap = float(np.clip(tolerance / core_value, 1e-7, 1e-2))
    try:
        sub_choice, _, _ = solve_rows(
            sub_value, np.isfinite(value[core]), sub_rows, time_limit=time_limit, gap=gap
        )
    except InputError:  # no MILP solver available: keep the repaired plan
        return choice, 0
    trial = fixed
    trial[core] = sub_choice
    if violations(trial, rows):
        return choice, size
    return (trial if _plan_value(value, trial) > _plan_value(value, choice) else choice), size


def _plan_value(value: np.ndarray, choice: np.ndarray) -> float:
    rows = np.flatnonzero(choice >= 0)
    return float(value[rows, choice[rows]].sum())


def _dual_plan(
    value: np.ndarray, rows: Sequence[LinearRow], seed: int
) -> tuple[np.ndarray, float, np.ndarray]:
    """Multipliers by the smoothed dual, then the argmax plan repaired and filled.

    Returns the plan (int64, shape (n,)), the best dual bound and the multipliers at it.
    """
    n = value.shape[0]
    dual = _SmoothedDual(value, rows)
    y = np.zeros(len(rows))
    dual(y, TEMPERATURES[0])
    if n > 2 * WARM_START_USERS:
        sample = np.sort(np.random.default_rng(seed).choice(n, WARM_START_USERS, replace=False))
        share = WARM_START_USERS / n
        sub = _SmoothedDual(
            value[sample],
            [r.take(sample, r.rhs * share) for r in rows],
            scales=(dual.vscale, dual.ascale),
        )
        y = _minimise(sub, y, TEMPERATURES, maxiter=200)
        y = _minimise(dual, y, TEMPERATURES[-3:], maxiter=40)
    else:
        y = _minimise(dual, y, TEMPERATURES, maxiter=200)
    lam = dual.best_lam
    reduced = _reduced(value, rows, lam)
    choice, score = _argmax_choice(reduced)
    choice = repair_plan(choice, rows, score)
    # Fill: the users left out, best reduced value first, with their best positive option.
    best = np.argmax(np.where(value > 0, reduced, -np.inf), axis=1)
    best_reduced = np.take_along_axis(reduced, best[:, None], axis=1)[:, 0]
    positive = np.take_along_axis(value, best[:, None], axis=1)[:, 0] > 0
    out = np.flatnonzero((choice < 0) & positive & np.isfinite(best_reduced))
    out = out[np.argsort(-best_reduced[out], kind="stable")]
    return fill_plan(choice, rows, out, best[out]), float(dual.best_bound), lam


def _polished(
    value: np.ndarray,
    rows: Sequence[LinearRow],
    lam: np.ndarray,
    choice: np.ndarray,
    bound: float,
    polish_gap: float,
    core_users: int,
    time_limit: float,
) -> tuple[np.ndarray, float, float, int]:
    """The core polish when the gap asks for it: plan, its value, the bound, users polished."""
    plan_value = _plan_value(value, choice)
    bound = max(float(bound), plan_value)
    polished = 0
    if bound > 0 and (bound - plan_value) / bound > polish_gap:
        tolerance = 0.1 * polish_gap * bound
        choice, polished = _polish(value, rows, lam, choice, core_users, time_limit, tolerance)
        plan_value = _plan_value(value, choice)
    return choice, plan_value, bound, polished


def solve_dual_rows(
    value: np.ndarray,
    rows: Sequence[LinearRow],
    *,
    polish_gap: float = POLISH_GAP,
    core_users: int = CORE_USERS,
    polish_time_limit: float = 5.0,
    seed: int = 0,
) -> DualSolution:
    """The decomposition over given rows (any right-hand sides, negative ones included).

    The building block of :func:`solve_dual` for callers that assemble their own rows, such as
    the streamed solve's core, whose right-hand sides are what the fixed users leave (a share
    row's may be negative). The plan may then break a row no choice of these users can keep:
    check it with :func:`~optimizer.solvers.constraints.violations`.

    Parameters
    ----------
    value : ndarray, shape (n, k)
        Option values, -inf where an option may not be sent.
    rows : sequence of LinearRow
        The first is the budget (its usage is the plan's ``cost``).
    polish_gap, core_users, polish_time_limit, seed
        As :func:`solve_dual`.
    """
    start = time.perf_counter()
    n = value.shape[0]
    if n == 0 or not (np.isfinite(value) & (value > 0)).any():
        # D(0) = 0 bounds every plan: nothing is worth sending.
        empty = np.full(n, -1, dtype=np.int16)
        return DualSolution(empty, 0.0, 0.0, 0.0, {r.name: 0.0 for r in rows},
                            time.perf_counter() - start)  # fmt: skip
    choice, bound, lam = _dual_plan(value, rows, seed)
    choice, plan_value, bound, polished = _polished(
        value, rows, lam, choice, bound, polish_gap, core_users, polish_time_limit
    )
    return DualSolution(
        choice=choice.astype(np.int16),
        value=plan_value,
        cost=rows[0].usage(choice) if rows else 0.0,
        upper_bound=max(bound, plan_value),
        multipliers={r.name: float(m) for r, m in zip(rows, lam, strict=True)},
        seconds=time.perf_counter() - start,
        core_users=polished,
    )


def solve_dual(
    problem: CampaignProblem,
    budget: float,
    constraints: Constraints | None = None,
    *,
    polish_gap: float = POLISH_GAP,
    core_users: int = CORE_USERS,
    polish_time_limit: float = 5.0,
    seed: int = 0,
    segments: HullSegments | None = None,
) -> DualSolution:
    """Plan under the budget and every constraint, with a certified upper bound.

    Parameters
    ----------
    problem : CampaignProblem
    budget : float
        Expected-cost budget (money).
    constraints : Constraints, optional
        Caps, message cap, minimum ROI, segment shares.
    polish_gap : float
        Run the core polish while the certified relative gap is above this (0 always, inf
        never).
    core_users : int
        Users the core polish re-optimises exactly.
    polish_time_limit : float
        Seconds for the polish's MILP.
    seed : int
        Subsample of the multiplier warm start on large problems.
    segments : HullSegments, optional
        ``problem``'s sorted hull segments, reused across budgets (budget-only problems); with
        them the price is read off the sorted segments instead of bracketed on a sample.

    Notes
    -----
    With rows beyond the budget, ties are broken by input order (stable sorts), so the plan is
    the same on every machine: of users the plan values equally, the fill serves the earliest
    first and the repair drops the earliest first (those served are one run of them, in input
    order).
    """
    start = time.perf_counter()
    constraints = constraints or Constraints()
    constraints.validate(problem)
    rows = linear_rows(problem, budget, constraints)
    n = problem.n_users
    if constraints.budget_only and n > BRACKET_MIN_USERS and segments is None:
        big = solve_budget(problem, budget, seed=seed)
        return DualSolution(
            choice=big.choice,
            value=big.value,
            cost=big.cost,
            upper_bound=big.upper_bound,
            multipliers={"budget": big.price},
            seconds=time.perf_counter() - start,
            core_users=0,
        )
    value = _masked_values(problem, constraints)
    if n == 0 or not (np.isfinite(value) & (value > 0)).any():
        # Nothing is worth sending (a segment minimum never forces a coupon: the empty plan
        # keeps every row), so the empty plan is optimal.
        return DualSolution(
            choice=np.full(n, -1, dtype=np.int16),
            value=0.0,
            cost=0.0,
            upper_bound=0.0,
            multipliers={r.name: 0.0 for r in rows},
            seconds=time.perf_counter() - start,
        )
    if constraints.budget_only:
        seg = hull_segments(problem) if segments is None else segments
        sol = solve_hull(problem, budget, seg)
        taken = int(np.searchsorted(seg.cum_cost, budget, side="right"))
        lam = np.array(
            [float(seg.d_value[taken] / seg.d_cost[taken]) if taken < seg.d_cost.size else 0.0]
        )
        choice, bound = sol.choice.astype(np.int64), sol.upper_bound
    else:
        choice, bound, lam = _dual_plan(value, rows, seed)
    choice, plan_value, bound, polished = _polished(
        value, rows, lam, choice, bound, polish_gap, core_users, polish_time_limit
    )
    chosen = np.flatnonzero(choice >= 0)
    return DualSolution(
        choice=choice.astype(np.int16),
        value=plan_value,
        cost=float(problem.cost[chosen, choice[chosen]].sum()),
        upper_bound=max(bound, plan_value),
        multipliers={r.name: float(m) for r, m in zip(rows, lam, strict=True)},
        seconds=time.perf_counter() - start,
        core_users=polished,
    )
