"""One budget at millions of users: bracket the budget's price on a sample, solve only the core.

With the budget as the only constraint, user i's option at price ``lam`` is
``argmax_k (v_ik - lam c_ik)`` (or none), and as ``lam`` falls each user only moves up their own
upper hull. So if a user takes the same option at two prices ``lam_hi > lam_lo``, they take it
at every price in between, in particular at the LP optimum ``lam*`` whenever
``C(lam_hi) <= B <= C(lam_lo)`` (C the total cost at a price). The solver

1. estimates ``lam*`` on a random sample of users (the hull greedy of
   :mod:`optimizer.solvers.hull` at the budget scaled to the sample) and brackets it from the
   same sample's frontier;
2. makes one chunked pass over all users evaluating both prices (two vectorised argmaxes per
   chunk of rows), checks the bracket (widening it when the sample was unlucky) and fixes
   every user whose option is the same at both ends;
3. solves the hull greedy exactly on the *core*, the few users whose option differs, with the
   budget the fixed users leave.

The result is the same LP optimum, bound and rounded plan the full hull greedy gives (the fill
after the LP prefix only looks at the core, where every segment near ``lam*`` lives), in one
pass over the data and a hull of a few percent of the users. Memory beyond the inputs is a few
bytes per user plus one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.solvers.hull import _lp_bound, greedy_choice, hull_of
from optimizer.solvers.problem import CampaignProblem

__all__ = ["BudgetSolution", "solve_budget", "CHUNK_ROWS"]

#: Rows evaluated per chunk of the full pass (a few MB of temporaries).
CHUNK_ROWS = 1 << 18
#: Users in the sample that brackets the price.
SAMPLE_USERS = 100_000


@dataclass
class BudgetSolution:
    """The plan, its LP bound and the bracketing work done.

    Attributes
    ----------
    choice : ndarray of int16, shape (n,)
    value, cost : float
        Objective value and expected cost (money) of the plan.
    upper_bound : float
        LP relaxation value at the budget.
    price : float
        The budget's multiplier ``lam*`` (objective units per money).
    core_users : int
        Users solved exactly (their option changes inside the bracket).
    passes : int
        Full passes over the users (1 unless the bracket had to be widened).
    """

    choice: np.ndarray
    value: float
    cost: float
    upper_bound: float
    price: float
    core_users: int
    passes: int


def _choices_at(
    problem: CampaignProblem, prices: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Options at both prices for every user, chunk by chunk (torch kernels, all cores).

    Returns
    -------
    choice : ndarray of int8, shape (2, n)
        Option per user at each price (-1 none).
    cost, value : ndarray, shape (2,)
        Total cost (money) and value of each price's choices.
    """
    import torch  # imported here: only the large-scale path needs it

    n = problem.n_users
    choice = np.full((2, n), -1, dtype=np.int8)
    cost = np.zeros(2)
    value = np.zeros(2)
    values = torch.from_numpy(np.ascontiguousarray(problem.value, dtype=np.float64))
    costs = torch.from_numpy(np.ascontiguousarray(problem.cost, dtype=np.float64))
    eligible = torch.from_numpy(np.ascontiguousarray(problem.eligible))
    with torch.no_grad():
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(n, lo + CHUNK_ROWS)
            v = values[lo:hi]
            c = costs[lo:hi]
            v = torch.where(eligible[lo:hi] & (v > 0), v, float("-inf"))
            for side, lam in enumerate(prices):
                best, arg = (v - lam * c).max(dim=1)
                take = best > 0
                choice[side, lo:hi] = torch.where(take, arg, -1).numpy()
                at = arg[:, None]
                cost[side] += float(torch.where(take, c.gather(1, at)[:, 0], 0.0).sum())
                value[side] += float(torch.where(take, v.gather(1, at)[:, 0], 0.0).sum())
    return choice, cost, value


def _sample_prices(problem: CampaignProblem, budget: float, sample: np.ndarray, width: float):
    """Prices at the sample-scaled budgets ``B (1 + width)`` and ``B (1 - width)``.

    Also returns the sample's smallest hull slope, a starting price when the bracket must be
    raised from 0.
    """
    share = sample.size / problem.n_users
    seg = hull_of(problem.value[sample], problem.cost[sample], problem.eligible[sample])
    slopes = seg.d_value / np.maximum(seg.d_cost, 1e-300)

    def price(b: float) -> float:
        at = int(np.searchsorted(seg.cum_cost, b * share, side="right"))
        return float(slopes[at]) if at < slopes.size else 0.0

    floor = float(slopes[-1]) if slopes.size else 1e-12
    return price(budget * (1 + width)), price(budget * (1 - width)), max(floor, 1e-12)


def solve_budget(
    problem: CampaignProblem,
    budget: float,
    *,
    sample_users: int = SAMPLE_USERS,
    width: float | None = None,
    seed: int = 0,
) -> BudgetSolution:
    """The hull greedy's plan and LP bound at one budget, for millions of users.

    Parameters
    ----------
    problem : CampaignProblem
    budget : float
        Expected-cost budget (money).
    sample_users : int
        Users of the sample that brackets the price.
    width : float, optional
        Relative half-width of the bracket in budget terms (default ``max(0.02, 6 / sqrt(m))``
        for a sample of m users: several standard errors of the sample's spend estimate).
    seed : int
        Seed of the sample.
    """
    n = problem.n_users
    rng = np.random.default_rng(seed)
    m = min(n, sample_users)
    sample = np.sort(rng.choice(n, m, replace=False)) if m < n else np.arange(n)
    width = max(0.02, 6.0 / np.sqrt(max(m, 1))) if width is None else width
    lam_lo, lam_hi, floor = _sample_prices(problem, budget, sample, width)
    passes = 0
    while True:
        passes += 1
        choice, cost, value = _choices_at(problem, (lam_lo, lam_hi))
        if cost[1] > budget:  # even the high price spends too much: raise it
            lam_lo, lam_hi = lam_hi, max(2.0 * lam_hi, floor)
            continue
        if cost[0] < budget and lam_lo > 0:  # the low price spends too little: lower it
            lam_hi, lam_lo = lam_lo, (0.0 if lam_lo < 1e-12 else 0.5 * lam_lo)
            continue
        break
    core = np.flatnonzero(choice[0] != choice[1])
    # The fixed users' totals: the high price's totals minus the core's share of them.
    at_hi = choice[1, core].astype(np.int64)
    on = at_hi >= 0
    fixed_cost = cost[1] - float(problem.cost[core[on], at_hi[on]].sum())
    fixed_value = value[1] - float(problem.value[core[on], at_hi[on]].sum())
    seg = hull_of(problem.value[core], problem.cost[core], problem.eligible[core])
    room = budget - fixed_cost
    sub_choice = greedy_choice(seg, core.size, room)
    final = choice[1].astype(np.int16)
    final[core] = sub_choice
    on = sub_choice >= 0
    plan_value = fixed_value + float(problem.value[core[on], sub_choice[on]].sum())
    plan_cost = fixed_cost + float(problem.cost[core[on], sub_choice[on]].sum())
    at = int(np.searchsorted(seg.cum_cost, room, side="right"))
    price = float(seg.d_value[at] / seg.d_cost[at]) if at < seg.d_cost.size else lam_lo
    return BudgetSolution(
        choice=final,
        value=plan_value,
        cost=plan_cost,
        upper_bound=max(plan_value, fixed_value + _lp_bound(seg, room)),
        price=price,
        core_users=int(core.size),
        passes=passes,
    )
