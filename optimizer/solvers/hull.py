"""The budget-constrained problem solved through each user's upper convex hull.

With one budget constraint, the LP relaxation of "at most one coupon per user" (a
multiple-choice knapsack) is solved exactly by a greedy over the segments of every user's upper
convex hull of (cost, value) points, taken in descending slope (Kellerer, Pferschy and Pisinger,
*Knapsack Problems*, ch. 11). Rounding down the one fractional segment gives an integer plan
within one hull step of optimal, and the LP value is an upper bound on every integer plan: the
certified gap. Sorting the segments once gives the whole budget frontier.

Everything is vectorised over users; the only Python loops run over the k denominations
(and over the few rounds of the final fill).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from optimizer.errors import InputError
from optimizer.solvers.problem import CampaignProblem

__all__ = [
    "HullSegments",
    "hull_segments",
    "hull_of",
    "solve_hull",
    "greedy_choice",
    "HullSolution",
    "frontier",
    "budget_for_return",
]


@dataclass
class HullSegments:
    """All users' hull segments, sorted by slope (value per unit cost), steepest first.

    Attributes
    ----------
    user : ndarray of int64, shape (m,)
        Row of the user the segment belongs to.
    to_option : ndarray of int16, shape (m,)
        Denomination the user moves to when the segment is taken.
    rank : ndarray of int8, shape (m,)
        Position of the segment on its user's hull (0 = the first step up from nothing).
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
    rank: np.ndarray
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
    return hull_of(problem.value, problem.cost, problem.eligible)


#: Users per block of the hull computation (blocks run on a thread pool; numpy releases the
#: GIL inside its array loops, so blocks use every core).
HULL_BLOCK = 1 << 17


def _hull_parts(value: np.ndarray, cost: np.ndarray, eligible: np.ndarray | None) -> _HullParts:
    """Every user's hull segments, unsorted (arguments as :func:`hull_of`).

    Users are independent, so blocks of ``HULL_BLOCK`` users are done in parallel threads.
    """
    n = cost.shape[0]
    if n <= HULL_BLOCK:
        return _hull_block(value, cost, eligible)
    starts = range(0, n, HULL_BLOCK)

    def block(lo: int) -> _HullParts:
        hi = min(n, lo + HULL_BLOCK)
        return _hull_block(value[lo:hi], cost[lo:hi], None if eligible is None else eligible[lo:hi])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        blocks = list(pool.map(block, starts))
    return _HullParts(
        user=np.concatenate([b.user + lo for b, lo in zip(blocks, starts, strict=True)]),
        to_option=np.concatenate([b.to_option for b in blocks]),
        rank=np.concatenate([b.rank for b in blocks]),
        d_cost=np.concatenate([b.d_cost for b in blocks]),
        d_value=np.concatenate([b.d_value for b in blocks]),
        free_value=np.concatenate([b.free_value for b in blocks]),
        free_choice=np.concatenate([b.free_choice for b in blocks]),
    )


def _hull_block(value: np.ndarray, cost: np.ndarray, eligible: np.ndarray | None) -> _HullParts:
    """:func:`_hull_parts` of one block of users.

    Notes
    -----
    Gift wrapping from each user's current hull point, one step per round for every user
    whose hull still grows: the steepest option to the upper right (ties: the costliest).
    The work runs on contiguous per-denomination columns, so every operation is a 1-D pass.
    """
    n, k = cost.shape
    usable = value > 0
    if eligible is not None:
        usable &= eligible
    # Per-denomination columns, contiguous: one allocation each, filled in place.
    value_t = np.full((k, n), -np.inf)
    np.copyto(value_t, value.T, where=usable.T)
    cost_t = np.ascontiguousarray(cost.T)
    del usable
    free_value = np.zeros(n)
    free_choice = np.full(n, -1, dtype=np.int16)
    for j in range(k):
        free = (cost_t[j] <= 0) & (value_t[j] > free_value)
        free_value[free] = value_t[j][free]
        free_choice[free] = j
    if (free_choice >= 0).any():
        # Free options are taken outright; from then on only options that cost something count.
        value_t[cost_t <= 0] = -np.inf
    has_free = bool((free_choice >= 0).any())
    cur_cost, cur_value = np.zeros(n), free_value.copy()
    parts = []
    active = None  # None: every user (no gather needed)
    for rank in range(k):
        ca = cur_cost if active is None else cur_cost[active]
        va = cur_value if active is None else cur_value[active]
        m = ca.size
        best = np.full(m, -np.inf)
        pick = np.full(m, -1, dtype=np.int16)
        pick_cost = np.zeros(m)
        pick_value = np.zeros(m)
        # Scratch buffers, reused for every column (in-place ufuncs: no per-op allocation).
        dc, dv, slope, bound = (np.empty(m) for _ in range(4))
        ok, better, tie = (np.empty(m, dtype=bool) for _ in range(3))
        for j in range(k):
            if active is None and not has_free:
                # First step from the origin: the slope is value / cost (cost > 0 wherever
                # the value is finite; -inf marks options that cannot be taken).
                cj, vj = cost_t[j], value_t[j]
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.divide(vj, cj, out=slope)
                np.isfinite(slope, out=ok)
            else:
                cj = cost_t[j] if active is None else cost_t[j][active]
                vj = value_t[j] if active is None else value_t[j][active]
                np.subtract(cj, ca, out=dc)
                np.subtract(vj, va, out=dv)
                np.greater(dc, 0, out=ok)
                np.logical_and(ok, np.greater(dv, 0, out=better), out=ok)
                slope.fill(-np.inf)
                np.divide(dv, dc, out=slope, where=ok)
            # Steeper, or as steep (relative 1e-12) and costlier: strictly concave segments.
            np.multiply(best, 1 + 1e-12, out=bound)
            np.greater(slope, bound, out=better)
            np.multiply(best, 1 - 1e-12, out=bound)
            np.greater_equal(slope, bound, out=tie)
            np.logical_and(tie, ok, out=tie)
            np.logical_and(tie, np.greater(cj, pick_cost, out=ok), out=tie)
            np.logical_or(better, tie, out=better)
            np.copyto(best, slope, where=better)
            np.copyto(pick, np.int16(j), where=better)
            np.copyto(pick_cost, cj, where=better)
            np.copyto(pick_value, vj, where=better)
        alive = np.flatnonzero(np.isfinite(best))
        if alive.size == 0:
            break
        users = alive if active is None else active[alive]
        parts.append(
            (
                users,
                pick[alive],
                np.full(alive.size, rank, dtype=np.int8),
                pick_cost[alive] - ca[alive],
                pick_value[alive] - va[alive],
            )
        )
        cur_cost[users] = pick_cost[alive]
        cur_value[users] = pick_value[alive]
        active = users
    if parts:
        user, to_option, rank_, d_cost, d_value = (
            np.concatenate(c) for c in zip(*parts, strict=True)
        )
    else:
        user = np.zeros(0, np.int64)
        to_option = np.zeros(0, np.int16)
        rank_ = np.zeros(0, np.int8)
        d_cost = d_value = np.zeros(0)
    return _HullParts(user, to_option, rank_, d_cost, d_value, free_value, free_choice)


@dataclass
class _HullParts:
    """Hull segments in no particular order (see :class:`HullSegments`)."""

    user: np.ndarray
    to_option: np.ndarray
    rank: np.ndarray
    d_cost: np.ndarray
    d_value: np.ndarray
    free_value: np.ndarray
    free_choice: np.ndarray


def hull_of(
    value: np.ndarray, cost: np.ndarray, eligible: np.ndarray | None = None
) -> HullSegments:
    """:func:`hull_segments` of plain arrays.

    Parameters
    ----------
    value : ndarray, shape (n, k)
        Option values; options with value <= 0 (or -inf) are never taken.
    cost : ndarray, shape (n, k)
        Option costs (money, >= 0).
    eligible : ndarray of bool, shape (n, k), optional
        False where an option must not be taken.
    """
    parts = _hull_parts(value, cost, eligible)
    user, to_option, rank_ = parts.user, parts.to_option, parts.rank
    d_cost, d_value = parts.d_cost, parts.d_value
    free_value, free_choice = parts.free_value, parts.free_choice
    # Steepest first. A user's own segments have strictly decreasing slopes, so this order
    # always takes them one after the other.
    order = np.argsort(-(d_value / d_cost) if d_cost.size else d_cost)
    user, to_option, rank_ = user[order], to_option[order], rank_[order]
    d_cost, d_value = d_cost[order], d_value[order]
    return HullSegments(
        user=user.astype(np.int64),
        to_option=to_option,
        rank=rank_,
        d_cost=d_cost,
        d_value=d_value,
        cum_cost=np.cumsum(d_cost),
        cum_value=np.cumsum(d_value),
        free_value=float(free_value.sum()),
        free_choice=free_choice,
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
    """Best plan under ``budget`` (money) through the hull greedy, with its LP upper bound."""
    seg = hull_segments(problem) if segments is None else segments
    choice = greedy_choice(seg, problem.n_users, budget)
    rows = np.flatnonzero(choice >= 0)
    value = float(problem.value[rows, choice[rows]].sum())
    cost = float(problem.cost[rows, choice[rows]].sum())
    return HullSolution(
        choice=choice.astype(np.int16),
        value=value,
        cost=cost,
        upper_bound=max(_lp_bound(seg, budget), value),
    )


def greedy_choice(seg: HullSegments, n: int, budget: float) -> np.ndarray:
    """Option per user (-1 none), shape (n,): the LP prefix, then a skip-and-fill.

    After the segments that fit in slope order (the LP solution rounded down), the leftover
    budget is filled in rounds: each round walks, in slope order, the later segments that
    continue their user's hull as it stands at the round's start, and takes them while they
    fit; the first that does not fit is skipped for good (the budget only shrinks). A segment
    that becomes takeable within a round (its user's previous segment taken in that round)
    waits for the next round, so the fill is slope order by rounds, not strictly.
    """
    choice = seg.free_choice.astype(np.int64).copy()
    taken = int(np.searchsorted(seg.cum_cost, budget, side="right"))
    # Segments of one user appear in hull order, so the last taken one is the user's option.
    last = np.full(n, -1, dtype=np.int64)
    last[seg.user[:taken]] = np.arange(taken)
    has = last >= 0
    choice[has] = seg.to_option[last[has]]
    steps = np.zeros(n, dtype=np.int64)  # hull segments taken per user
    steps[has] = seg.rank[last[has]].astype(np.int64) + 1
    room = budget - (float(seg.cum_cost[taken - 1]) if taken else 0.0)
    rest = taken + np.flatnonzero(seg.d_cost[taken:] <= room + 1e-9)
    while rest.size and room > 0:
        # A segment is takeable once its user's earlier hull segments are taken.
        ready = rest[seg.rank[rest] == steps[seg.user[rest]]]
        if ready.size == 0:
            break
        fits = np.cumsum(seg.d_cost[ready]) <= room + 1e-9
        stop = ready.size if fits.all() else int(np.argmin(fits))
        take = ready[:stop]
        choice[seg.user[take]] = seg.to_option[take]
        steps[seg.user[take]] += 1
        room -= float(seg.d_cost[take].sum())
        drop = take if stop == ready.size else np.append(take, ready[stop])
        rest = np.setdiff1d(rest, drop, assume_unique=True)
        rest = rest[seg.d_cost[rest] <= room + 1e-9]
    return choice


def frontier(
    problem: CampaignProblem, budgets: np.ndarray, bins: int = 4096
) -> dict[str, np.ndarray]:
    """The exact budget frontier at many budgets from one pass over the hull segments.

    The LP value at budget b takes every hull segment steeper than the one b splits. Instead of
    sorting all segments, they are bucketed by log-slope (``bins`` buckets, cumulative cost and
    value per bucket by ``bincount``); only the segments of the buckets that some budget splits
    are sorted. The result equals the full sort's.

    Parameters
    ----------
    problem : CampaignProblem
    budgets : ndarray, shape (b,)
        Budgets (money), any order.
    bins : int
        Slope buckets.

    Returns
    -------
    dict of ndarray, each shape (b,)
        ``budget``; ``upper_bound`` (LP value: the best any plan can do); ``value`` and
        ``cost`` of the greedy prefix plan (the LP solution rounded down); ``marginal_return``
        (the budget's dual price: objective value per extra unit of money, the slope of the
        segment the budget splits; 0 where more money buys nothing).
    """
    parts = _hull_parts(problem.value, problem.cost, problem.eligible)
    budgets = np.asarray(budgets, dtype=np.float64)
    free = float(parts.free_value.sum())
    d_cost, d_value = parts.d_cost, parts.d_value
    if d_cost.size == 0:
        zeros = np.zeros_like(budgets)
        return {"budget": budgets, "upper_bound": zeros + free, "value": zeros + free,
                "cost": zeros, "marginal_return": zeros}  # fmt: skip
    key = np.log(d_cost) - np.log(d_value)  # ascending key = descending slope
    lo, hi = float(key.min()), float(key.max())
    width = (hi - lo) / bins if hi > lo else 1.0
    bucket = np.minimum(((key - lo) / width).astype(np.int64), bins - 1)
    cost_end = np.cumsum(np.bincount(bucket, weights=d_cost, minlength=bins))
    value_end = np.cumsum(np.bincount(bucket, weights=d_value, minlength=bins))
    cost_start = np.concatenate([[0.0], cost_end[:-1]])
    value_start = np.concatenate([[0.0], value_end[:-1]])
    split = np.searchsorted(cost_end, budgets, side="right")  # bucket each budget falls in
    inside = split < bins
    needed = np.zeros(bins, dtype=bool)
    needed[split[inside]] = True
    members = np.flatnonzero(needed[bucket])
    members = members[np.argsort(key[members], kind="stable")]
    m_bucket = bucket[members]
    # Running cost and value within each bucket, offset by everything steeper.
    run_cost = np.cumsum(d_cost[members])
    run_value = np.cumsum(d_value[members])
    first = np.flatnonzero(np.diff(np.concatenate([[-1], m_bucket])))
    base = np.repeat(first, np.diff(np.append(first, members.size)))
    before_cost = np.where(base > 0, run_cost[np.maximum(base - 1, 0)], 0.0)
    before_value = np.where(base > 0, run_value[np.maximum(base - 1, 0)], 0.0)
    run_cost = run_cost - before_cost + cost_start[m_bucket]
    run_value = run_value - before_value + value_start[m_bucket]
    total_cost, total_value = float(cost_end[-1]), float(value_end[-1])
    prefix_cost = np.full(budgets.size, total_cost)
    prefix_value = np.full(budgets.size, total_value)
    partial = np.zeros(budgets.size)
    slope = np.zeros(budgets.size)
    if inside.any():
        b = budgets[inside]
        sb = split[inside]
        t = np.searchsorted(run_cost, b, side="right")
        prev_same = (t > 0) & (m_bucket[np.maximum(t - 1, 0)] == sb)
        pc = np.where(prev_same, run_cost[np.maximum(t - 1, 0)], cost_start[sb])
        pv = np.where(prev_same, run_value[np.maximum(t - 1, 0)], value_start[sb])
        nxt = members[np.minimum(t, members.size - 1)]
        prefix_cost[inside] = pc
        prefix_value[inside] = pv
        partial[inside] = d_value[nxt] * (b - pc) / d_cost[nxt]
        slope[inside] = np.where(b < total_cost, d_value[nxt] / d_cost[nxt], 0.0)
    return {
        "budget": budgets,
        "upper_bound": prefix_value + partial + free,
        "value": prefix_value + free,
        "cost": prefix_cost,
        "marginal_return": slope,
    }


def budget_for_return(problem: CampaignProblem, marginal_return: float) -> float:
    """The budget at which one more unit of money stops adding ``marginal_return`` (money).

    The LP spends along the hull segments steepest first; this is the cost of every segment
    whose value per unit of money is at least ``marginal_return``: the flexible budget of a
    campaign that buys value while it is worth its price.

    Parameters
    ----------
    problem : CampaignProblem
    marginal_return : float
        Objective value per unit of money (conversions per money, or money per money), >= 0.
    """
    if marginal_return < 0:
        raise InputError("must be 0 or more", key="marginal_return")
    segments = hull_segments(problem)
    if segments.d_cost.size == 0:
        return 0.0
    slope = segments.d_value / segments.d_cost  # steepest first
    taken = int(np.searchsorted(-slope, -marginal_return, side="right"))
    return float(segments.cum_cost[taken - 1]) if taken else 0.0
