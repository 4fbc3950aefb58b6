"""The realised spend of a plan (its mean and spread) and the overrun rule that bounds it.

Shared by plans in memory (:class:`~optimizer.planning.plan.Plan`) and plans made at scale,
whose spend is summed chunk by chunk (or partition by partition): :func:`spend_parts` of every
chunk add up, and :func:`spend_moments_of` turns the sum into a mean and a standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from scipy.special import ndtri

from optimizer.errors import InputError
from optimizer.solvers.problem import CampaignProblem

__all__ = ["spend_parts", "spend_moments_of", "fit_overrun_rule"]

T = TypeVar("T")


def spend_parts(problem: CampaignProblem, choice: np.ndarray) -> np.ndarray:
    """What a chunk adds to the plan's spend moments, shape (2 + k,).

    Messages cost their send cost each for sure; treatment k to user i pays ``f_k`` with
    probability ``q = p_ik * r_ik`` (converts and redeems) and its cost per conversion ``v_k``
    with probability ``p = p_ik``, independently across users.

    Parameters
    ----------
    problem : CampaignProblem
    choice : ndarray of int, shape (n,)
        Option per user, -1 for none.

    Returns
    -------
    ndarray, shape (2 + k,)
        Expected spend (money), the variance of independent redemptions
        ``sum f^2 q + 2 f v q + v^2 p - (f q + v p)^2`` (money squared), and per option the
        paid spend level ``sum f q + v p`` of its users (money).
    """
    rows = np.flatnonzero(choice >= 0)
    k = np.asarray(choice)[rows].astype(np.int64)
    menu = problem.menu
    p = problem.p[rows, k]
    q = p * problem.redemption_at(rows, k)
    f, v = menu.face_values[k], menu.conversion_costs[k]
    out = np.zeros(2 + len(menu))
    out[0] = float(problem.cost[rows, k].sum())
    out[1] = float((f**2 * q + 2 * f * v * q + v**2 * p - (f * q + v * p) ** 2).sum())
    out[2:] = np.bincount(k, weights=f * q + v * p, minlength=len(menu))
    return out


def spend_moments_of(parts: np.ndarray, spend_error: np.ndarray | None) -> tuple[float, float]:
    """Mean and standard deviation of the realised spend (money) from summed parts.

    With ``spend_error`` (relative standard error ``e_k`` of each option's paid spend level
    from estimating the models, shape (k,)), the estimation error adds ``sum_k (e_k *
    paid_k)^2``: an error in an option's level moves all its users' spend together.
    """
    variance = float(parts[1])
    if spend_error is not None:
        variance += float(((np.asarray(spend_error) * parts[2:]) ** 2).sum())
    return float(parts[0]), float(np.sqrt(max(variance, 0.0)))


def fit_overrun_rule(
    plan_at: Callable[[float], T],
    moments: Callable[[T], tuple[float, float]],
    budget: float,
    risk: float | None,
    tolerance: float,
    *,
    cap: float | None = None,
) -> tuple[T, float]:
    """The plan for ``budget`` whose realised spend overruns with probability at most ``risk``.

    The planning budget is lowered from ``budget`` until the plan's realised spend exceeds
    ``(1 + tolerance) x cap`` (``cap`` default ``budget``) with probability at most ``risk``
    (mean + z sd under the normal approximation); each step lowers it to the plan's expected
    spend minus the excess, so a few plans are made, and a bisection finishes the rare case the
    steps do not. Without ``risk``, ``plan_at(budget)``.

    Parameters
    ----------
    plan_at : callable
        Maps a planning budget (money) to a plan.
    moments : callable
        A plan's spend mean and standard deviation (money).
    budget : float
    risk : float, optional
        In (0, 1).
    tolerance : float
        In [0, 1).
    cap : float, optional

    Returns
    -------
    plan, planning_budget
    """
    plan = plan_at(budget)
    if risk is None:
        return plan, budget
    if not 0 < risk < 1:
        raise InputError("must be in (0, 1)", key="constraints.overrun_risk")
    if not 0 <= tolerance < 1:
        raise InputError("must be in [0, 1)", key="constraints.overrun_tolerance")
    z, planning = float(-ndtri(risk)), budget
    limit = (budget if cap is None else max(float(cap), budget)) * (1.0 + tolerance)

    def excess(trial: T) -> tuple[float, float]:
        mean, sd = moments(trial)
        return mean + z * sd - limit, mean

    slack = 1e-9 * max(budget, 1.0)
    over, mean = excess(plan)
    for _ in range(20):
        if over <= slack:
            break
        planning = max(0.0, min(planning, mean) - max(over, 1e-6 * budget))
        plan = plan_at(planning)
        over, mean = excess(plan)
    if over > slack:  # the steps stalled: bisect the planning budget
        low, high, best = 0.0, planning, plan_at(0.0)
        for _ in range(40):
            middle = 0.5 * (low + high)
            trial = plan_at(middle)
            if excess(trial)[0] <= slack:
                low, best = middle, trial
            else:
                high = middle
            if high - low <= 1e-6 * max(budget, 1.0):
                break
        plan, planning = best, low
    return plan, planning
