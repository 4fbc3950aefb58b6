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

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from optimizer.solvers.problem import CampaignProblem
from optimizer.solvers.streaming import SAMPLE_USERS, Chunk, solve_budget_streamed

__all__ = ["BudgetSolution", "solve_budget", "CHUNK_ROWS"]

#: Rows evaluated per chunk of the full pass (a few MB of temporaries).
CHUNK_ROWS = 1 << 18


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

    def chunks() -> Iterator[Chunk]:
        for lo in range(0, n, CHUNK_ROWS):
            yield Chunk.of(problem, slice(lo, lo + CHUNK_ROWS))

    found = solve_budget_streamed(
        chunks, budget, n_users=n, sample_users=sample_users, width=width, seed=seed, keep=True
    )
    return BudgetSolution(
        choice=found.choice,
        value=found.value,
        cost=found.cost,
        upper_bound=found.upper_bound,
        price=found.price,
        core_users=found.core_users,
        passes=found.passes - 1,  # the bracket passes (the sample is drawn from memory too)
    )
