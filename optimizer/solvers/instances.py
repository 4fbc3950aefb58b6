"""Random campaign instances with known structure, for tests and solver benchmarks.

Natural probabilities ~ Beta(1, 8); coupon lifts ~ Beta(1, 20), 10% of them negative (sleeping
dogs); baskets log-normal around 100 (money); three segments ``a``, ``b``, ``c`` with shares
50/30/20%. Constraint kinds: ``budget`` (nothing else), ``caps`` (two coupon caps and a message
cap), ``roi`` (a minimum ROI), ``segment`` (a minimum and a maximum segment share) and ``all``
(one of each), sized so that they usually bind.
"""

from __future__ import annotations

import numpy as np

from optimizer.io.menu import Menu
from optimizer.solvers.constraints import Constraints, SegmentShare
from optimizer.solvers.problem import CampaignProblem, build_problem

__all__ = ["KINDS", "random_problem", "random_constraints", "random_instance"]

#: Constraint kinds of :func:`random_constraints`.
KINDS: tuple[str, ...] = ("budget", "caps", "roi", "segment", "all")


def random_problem(
    rng: np.random.Generator, n: int, menu: Menu, objective: str = "conversions"
) -> CampaignProblem:
    """A campaign of ``n`` users on ``menu`` (see the module docstring)."""
    k = len(menu)
    p0 = rng.beta(1, 8, n)
    lift = rng.beta(1, 20, (n, k)) * rng.choice([1.0, -0.3], (n, k), p=[0.9, 0.1])
    p = np.clip(p0[:, None] + lift, 0, 1)
    basket = rng.lognormal(np.log(100), 0.5, n)
    segment = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    return build_problem(
        np.arange(1, n + 1),
        p0,
        p,
        menu,
        objective=objective,
        sms_cost=0.05,
        basket=basket,
        segment=segment,
    )


def random_constraints(rng: np.random.Generator, kind: str, n: int, menu: Menu) -> Constraints:
    """Constraints of one kind for ``n`` users (caps on the menu's first two coupons)."""
    first, second = menu.names[1], menu.names[0]
    if kind == "caps":
        return Constraints(
            max_per_denomination={
                first: int(rng.integers(0, n // 4)),
                second: int(rng.integers(n // 40, n // 3)),
            },
            max_messages=int(rng.integers(n // 10, n // 2)),
        )
    if kind == "roi":
        return Constraints(min_roi=float(rng.uniform(1, 12)))
    if kind == "segment":
        return Constraints(
            segment_shares=(
                SegmentShare("c", float(rng.uniform(0.2, 0.5)), 1.0),
                SegmentShare("a", 0.0, float(rng.uniform(0.2, 0.5))),
            )
        )
    if kind == "all":
        return Constraints(
            max_per_denomination={menu.names[-2]: int(rng.integers(0, n // 4))},
            max_messages=int(rng.integers(n // 10, n // 2)),
            min_roi=float(rng.uniform(1, 6)),
            segment_shares=(SegmentShare("b", 0.3, 0.6),),
        )
    if kind != "budget":
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    return Constraints()


def random_instance(
    rng: np.random.Generator, kind: str, menu: Menu, low: int = 1000, high: int = 5001
) -> tuple[CampaignProblem, float, Constraints]:
    """A problem of ``low``..``high`` users, a budget (money) and constraints of ``kind``.

    The objective is drawn among conversions, GMV and profit; the budget is 5-90% of the cost
    of sending every user their costliest worthwhile coupon.
    """
    n = int(rng.integers(low, high))
    problem = random_problem(rng, n, menu, str(rng.choice(["conversions", "gmv", "profit"])))
    positive = np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum()
    budget = float(rng.uniform(0.05, 0.9) * positive)
    return problem, budget, random_constraints(rng, kind, n, menu)
