"""The budget-constrained problem solved through each user's upper convex hull.

With one budget constraint, the LP relaxation of "at most one coupon per user" (a
multiple-choice knapsack) is solved exactly by a greedy over the segments of every user's upper
convex hull of (cost, value) points, taken in descending slope (Kellerer, Pferschy and Pisinger,
*Knapsack Problems*, ch. 11). Rounding down the one fractional segment gives an integer plan
within one hull step of optimal, and the LP value is an upper bound on every integer plan: the
certified gap. Sorting the segments once gives the whole budget frontier.

Everything is vectorised over users; the only Python loops run over the k denominations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.problem import CampaignProblem

__all__ = ["HullSegments", "hull_segments", "solve_hull", "HullSolution", "frontier"]


@dataclass
class HullSegments:
    """All users' hull segments, sorted by slope (value per unit cost), steepest first.

    Attributes
    ----------
    user : ndarray of int64, shape (m,)
        Row of the user the segment belongs to.
    to_option : ndarray of int16, shape (m,)
        Denomination the user moves to when the segment is taken.
    d_cost, d_value : ndarray of float64, shape (m,)
        Cost and value added by the segment (cost > 0, value > 0).
    cum_cost, cum_value : ndarray of float64, shape (m,)
        Running sums in sorted order: the LP frontier's breakpoints.
    free_value : float
        Value of options that cost nothing (taken at any budget).
    free_choice : ndarray of int16, shape (n,)
        Option taken at zero cost (-1 for none).
    """

    user: np.ndarray
    to_option: np.ndarray
    d_cost: np.ndarray
    d_value: np.ndarray
    cum_cost: np.ndarray
    cum_value: np.ndarray
    free_value: float
    free_choice: np.ndarray


def hull_segments(problem: CampaignProblem) -> HullSegments:
    """Upper convex hull segments of every user's (cost, value) options, globally sorted.

    Options with value <= 0 or not eligible are never worth taking under a budget and are left
    out; a free option (cost 0, value > 0) is taken outright.
    """
    cost = problem.cost
    value = np.where(problem.eligible & (problem.value > 0), problem.value, -np.inf)
    n, k = cost.shape
    rows = np.arange(n)
    free = (cost <= 0) & np.isfinite(value)
    free_value_per_user = np.where(free, value, -np.inf).max(axis=1, initial=-np.inf)
    has_free = np.isfinite(free_value_per_user)
    free_choice = np.where(has_free, np.argmax(np.where(free, value, -np.inf), axis=1), -1)
    base_cost = np.zeros(n)
    base_value = np.where(has_free, free_value_per_user, 0.0)
    current = free_choice.astype(np.int64)
    cur_cost, cur_value = base_cost.copy(), base_value.copy()
    segments = []
    active = rows  # users that may still extend their hull
    for _ in range(k):
        if active.size == 0:
            break
        c, v = cost[active], value[active]
        dc = c - cur_cost[active, None]
        dv = v - cur_value[active, None]
        ok = (dc > 0) & (dv > 0) & np.isfinite(dv)
        slope = np.where(ok, dv / np.where(ok, dc, 1.0), -np.inf)
        best_slope = slope.max(axis=1)
        alive = np.isfinite(best_slope)
        if not alive.any():
            break
        # Among equally steep options take the costliest: fewer, strictly concave segments.
        tie = ok & (slope >= best_slope[:, None] * (1 - 1e-12))
        pick = np.argmax(np.where(tie, c, -np.inf), axis=1)
        local = np.flatnonzero(alive)
        r = active[local]
        j = pick[local]
        segments.append((r, j, dc[local, j], dv[local, j]))
        cur_cost[r] = cost[r, j]
        cur_value[r] = value[r, j]
        current[r] = j
        active = r
    if segments:
        user = np.concatenate([s[0] for s in segments])
        to_option = np.concatenate([s[1] for s in segments]).astype(np.int16)
        d_cost = np.concatenate([s[2] for s in segments])
        d_value = np.concatenate([s[3] for s in segments])
    else:
        user = np.zeros(0, np.int64)
        to_option = np.zeros(0, np.int16)
        d_cost = d_value = np.zeros(0)
    # Steepest first; a user's own segments have strictly decreasing slopes, so this order
    # always takes them one after the other.
    order = np.argsort(-(d_value / np.maximum(d_cost, 1e-300)), kind="stable")
    user, to_option, d_cost, d_value = user[order], to_option[order], d_cost[order], d_value[order]
    return HullSegments(
        user=user,
        to_option=to_option,
        d_cost=d_cost,
        d_value=d_value,
        cum_cost=np.cumsum(d_cost),
        cum_value=np.cumsum(d_value),
        free_value=float(base_value.sum()),
        free_choice=free_choice.astype(np.int16),
    )


@dataclass
class HullSolution:
    """An integer plan from the hull greedy and its certificate.

    Attributes
    ----------
    choice : ndarray of int16, shape (n,)
        Denomination per user, -1 for none.
    value, cost : float
        Objective value and expected cost of the integer plan.
    upper_bound : float
        LP relaxation value at this budget: no plan can do better.
    """

    choice: np.ndarray
    value: float
    cost: float
    upper_bound: float

    @property
    def gap(self) -> float:
        """Certified relative optimality gap ``(upper_bound - value) / upper_bound``."""
        if self.upper_bound <= 0:
            return 0.0
        return max(0.0, (self.upper_bound - self.value) / self.upper_bound)


def _lp_bound(seg: HullSegments, budget: float) -> float:
    taken = int(np.searchsorted(seg.cum_cost, budget, side="right"))
    value = seg.free_value + (seg.cum_value[taken - 1] if taken else 0.0)
    if taken < seg.d_cost.size:
        spent = seg.cum_cost[taken - 1] if taken else 0.0
        value += seg.d_value[taken] * (budget - spent) / seg.d_cost[taken]
    return float(value)


def solve_hull(
    problem: CampaignProblem, budget: float, segments: HullSegments | None = None
) -> HullSolution:
    """Best plan under ``budget`` (money) through the hull greedy, with its LP upper bound.

    After the LP prefix, leftover budget is filled by the next segments in slope order that
    still fit and continue their user's hull (skipping those that do not fit).
    """
    seg = hull_segments(problem) if segments is None else segments
    n = problem.n_users
    choice = seg.free_choice.astype(np.int64).copy()
    taken = int(np.searchsorted(seg.cum_cost, budget, side="right"))
    # Segments of one user appear in hull order, so the last taken one is the user's option.
    last = np.full(n, -1, dtype=np.int64)
    last[seg.user[:taken]] = np.arange(taken)
    has = last >= 0
    choice[has] = seg.to_option[last[has]]
    spent = float(seg.cum_cost[taken - 1]) if taken else 0.0
    blocked = np.zeros(n, dtype=bool)
    rest = np.arange(taken, seg.d_cost.size)
    # Skip-and-fill: the first segment that does not fit blocks its user (their later segments
    # build on it); the others are taken in slope order while the budget lasts.
    position = np.empty(n, dtype=np.int64)
    for _ in range(64):
        if rest.size == 0 or spent >= budget:
            break
        rest = rest[~blocked[seg.user[rest]]]
        users = seg.user[rest]
        # First remaining segment of each user (rest is in slope order, a user's segments in
        # hull order): the smallest position per user.
        order = np.arange(rest.size)
        position.fill(np.iinfo(np.int64).max)
        np.minimum.at(position, users, order)
        candidates = rest[position[users] == order]
        if candidates.size == 0 or seg.d_cost[candidates].min() > budget - spent + 1e-9:
            break
        fits = spent + np.cumsum(seg.d_cost[candidates]) <= budget + 1e-9
        if fits.all():
            take = candidates
        else:
            stop = int(np.argmin(fits))
            take = candidates[:stop]
            blocked[seg.user[candidates[stop]]] = True
        choice[seg.user[take]] = seg.to_option[take]
        spent += float(seg.d_cost[take].sum())
        keep = np.ones(rest.size, dtype=bool)
        keep[np.searchsorted(rest, take)] = False
        rest = rest[keep]
    rows = np.arange(n)
    chosen = choice >= 0
    value = float(problem.value[rows[chosen], choice[chosen]].sum())
    cost = float(problem.cost[rows[chosen], choice[chosen]].sum())
    return HullSolution(
        choice=choice.astype(np.int16),
        value=value,
        cost=cost,
        upper_bound=max(_lp_bound(seg, budget), value),
    )


def frontier(problem: CampaignProblem, budgets: np.ndarray) -> dict[str, np.ndarray]:
    """The budget frontier from one sort of the hull segments.

    Parameters
    ----------
    problem : CampaignProblem
    budgets : ndarray, shape (b,)
        Budgets (money), any order.

    Returns
    -------
    dict of ndarray, each shape (b,)
        ``budget``; ``upper_bound`` (LP value: the best any plan can do); ``value`` and
        ``cost`` of the greedy prefix plan (the LP solution rounded down).
    """
    seg = hull_segments(problem)
    budgets = np.asarray(budgets, dtype=np.float64)
    taken = np.searchsorted(seg.cum_cost, budgets, side="right")
    prefix_value = np.concatenate([[0.0], seg.cum_value])[taken] + seg.free_value
    prefix_cost = np.concatenate([[0.0], seg.cum_cost])[taken]
    spent = prefix_cost
    nxt = np.minimum(taken, max(seg.d_cost.size - 1, 0))
    partial = (
        np.where(
            taken < seg.d_cost.size,
            seg.d_value[nxt] * (budgets - spent) / np.maximum(seg.d_cost[nxt], 1e-300),
            0.0,
        )
        if seg.d_cost.size
        else np.zeros_like(budgets)
    )
    return {
        "budget": budgets,
        "upper_bound": prefix_value + partial,
        "value": prefix_value,
        "cost": prefix_cost + 0.0,
    }
