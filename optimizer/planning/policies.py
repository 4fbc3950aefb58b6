"""Targeting policies: every one returns a :class:`~optimizer.planning.plan.Plan` of a problem.

* ``manual``: operations' practice: rank the target users by RFM score, send everyone the
  operator's uniform coupon, take users until the budget is spent;
* ``random``: the uniform coupon to users in random order until the budget is spent;
* ``v1``: the article's first model: rank by P(convert | uniform coupon);
* ``v2``: the article's second: drop users whose natural probability exceeds a threshold (the
  knee of the natural model's coverage curve by default), then rank by P(convert | coupon);
* ``uplift``: rank by ``P(convert | coupon) - P(convert | no coupon)``, uniform coupon;
* ``optimal``: the solver's personalised plan (any coupon, or none, per user).

Ranked policies take users in rank order while the running expected cost stays within the
budget (a user whose coupon no longer fits ends the list, as an operator's export would).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from optimizer.choices import BASELINES, POLICIES, SOLVERS, Policy, Solver
from optimizer.errors import InputError, Notice
from optimizer.planning.plan import Plan
from optimizer.planning.spend import fit_overrun_rule
from optimizer.segments import rfm_score
from optimizer.solvers.constraints import Constraints, fill_plan, linear_rows, repair_plan
from optimizer.solvers.dual import solve_dual
from optimizer.solvers.milp import solve_milp
from optimizer.solvers.problem import CampaignProblem

__all__ = [
    "Policy",
    "POLICIES",
    "BASELINES",
    "Solver",
    "SOLVERS",
    "PolicySettings",
    "make_plan",
    "fit_overrun",
    "ranking",
    "screened",
    "take_in_order",
    "AUTO_EXACT_MAX_USERS",
    "ARTICLE_V2_THRESHOLD",
]


#: ``solver="auto"`` uses the exact MILP up to this many users, the dual decomposition above.
AUTO_EXACT_MAX_USERS = 5_000
#: Time limit (seconds) of the exact solver when ``auto`` picked it.
AUTO_EXACT_TIME_LIMIT = 60.0
#: Time limit (seconds) of the exact solver when asked for by name: past it, the best plan
#: found is kept and a note says it is not proven optimal.
EXACT_TIME_LIMIT = 600.0
#: The article's natural-probability threshold, used by v2 when no knee is known.
ARTICLE_V2_THRESHOLD = 0.9


@dataclass(frozen=True)
class PolicySettings:
    """Knobs of the policies.

    Parameters
    ----------
    denomination : str
        The uniform coupon of manual, random, v1, v2 and uplift.
    rank_by : str, optional
        User column manual ranks by (highest first); None ranks by the RFM score.
    rank_ascending : bool
        Manual ranks ``rank_by`` lowest first.
    v2_threshold : float, optional
        Natural-probability cut of v2 (default: the models' knee, else 0.9).
    solver : {"auto", "pulp", "dual"}
        Solver of the optimal policy.
    seed : int
        Order of the random policy.
    constraints : Constraints
        Caps, message cap, minimum ROI and segment shares that every policy's plan keeps.
        Ranked policies take their list while the budget, caps and message cap allow, drop
        their lowest-ranked users until the minimum ROI and the segment shares hold, then
        continue down the list with the users who keep every constraint.
    overrun_risk : float, optional
        Plan so that P(realised spend > (1 + overrun_tolerance) x budget) is at most this
        (normal approximation of the sum of independent redemptions): the plan is made for a
        lowered budget, lowered until mean + z * sd of its spend fits; its expected spend
        never exceeds the budget (:func:`fit_overrun`).
    overrun_tolerance : float
        Share of the budget realised spend may exceed with probability ``overrun_risk``.
    target : float, optional
        The optimal policy spends only what reaching this objective value needs: the least
        budget (within the given one, found by bisection to 0.1% of it) whose plan's expected
        objective value is at least ``target``; the full budget when even that falls short.
        "Match manual's conversions at the least cost" is ``target = manual plan's value``.
    min_conversions : float, optional
        The optimal policy keeps at least this many expected incremental conversions while it
        maximises a money objective (gmv: the highest ROI at the spend; profit): a conversion
        floor, priced by Lagrangian relaxation (see :func:`_with_conversion_floor`).
    natural_screen : float, optional
        The optimal policy leaves out users whose natural probability exceeds this (v2's
        screen, the article's lesson): their uplift is a small difference of two large
        probabilities, the part of the models' estimate most prone to error, and a coupon
        sent to a sure thing is paid for nothing.
    """

    denomination: str
    rank_by: str | None = None
    rank_ascending: bool = False
    v2_threshold: float | None = None
    solver: str = "auto"
    seed: int = 0
    constraints: Constraints = field(default_factory=Constraints)
    overrun_risk: float | None = None
    overrun_tolerance: float = 0.0
    target: float | None = None
    min_conversions: float | None = None
    natural_screen: float | None = None


#: Bisection of the least budget reaching a target stops at this share of the budget.
TARGET_BUDGET_TOLERANCE = 1e-3
#: Bisection steps of the price of a conversion under a conversion floor.
CONVERSION_PRICE_STEPS = 24


def take_in_order(
    problem: CampaignProblem, order: np.ndarray, k: int, budget: float, settings: PolicySettings
) -> np.ndarray:
    """Uniform coupon ``k`` to users in ``order`` while the budget and every constraint allow.

    The list is taken while the budget, caps and message cap hold (the first user who does not
    fit ends it, as an operator's export would); then the lowest-ranked users leave until the
    minimum ROI and the segment shares hold, and the list is continued with the users who keep
    every constraint (an operator filling a quota).
    """
    order = order[problem.eligible[order, k]]
    rows = linear_rows(problem, budget, settings.constraints)
    empty = np.full(problem.n_users, -1, dtype=np.int64)
    choice = fill_plan(
        empty, [r for r in rows if r.capacity], order, np.full(order.size, k), rounds=1
    )
    rank = np.zeros(problem.n_users)
    rank[order] = -np.arange(order.size, dtype=np.float64)
    choice = repair_plan(choice, rows, rank)
    if len(rows) > sum(r.capacity for r in rows):
        # Quotas: carry on down the list with whoever keeps every constraint.
        rest = order[choice[order] < 0]
        choice = fill_plan(choice, rows, rest, np.full(rest.size, k), rounds=16)
    return choice.astype(np.int16)


def screened(problem: CampaignProblem, cut: float) -> CampaignProblem:
    """``problem`` with every option closed to users whose natural probability exceeds ``cut``."""
    above = problem.p0 > cut
    return replace(problem, eligible=problem.eligible & ~above[:, None])


def _ranked(score: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Indices by ``score`` descending, ties by ``tiebreak`` descending (stable)."""
    return np.lexsort((-tiebreak, -score))


def _plan_at(
    policy: str,
    problem: CampaignProblem,
    budget: float,
    settings: PolicySettings,
    users: pd.DataFrame | None,
) -> tuple[np.ndarray, str, float | None, dict[str, object]]:
    """Choices of ``policy`` at ``budget``: (choice, solver, upper bound, details)."""
    details: dict[str, object] = {}
    upper_bound = None
    solver = "ranking"
    if policy == "optimal":
        solver = settings.solver
        if solver not in SOLVERS:
            raise InputError(f"must be one of {', '.join(SOLVERS)}", key="solver")
        time_limit = EXACT_TIME_LIMIT
        if solver == "auto":
            solver = "pulp" if problem.n_users <= AUTO_EXACT_MAX_USERS else "dual"
            time_limit = AUTO_EXACT_TIME_LIMIT

        def solve(prob: CampaignProblem):
            if solver == "pulp":
                sol = solve_milp(prob, budget, settings.constraints, time_limit=time_limit)
                details["status"] = sol.status
                if sol.status == "Feasible":  # stopped by the limit with an incumbent
                    warnings.warn(
                        f"the exact solver stopped at its {time_limit:g} s limit: the best plan "
                        "found is kept, not proven optimal; the dual solver certifies a gap at "
                        "any size", Notice, stacklevel=2,
                    )  # fmt: skip
                elif sol.status != "Optimal":
                    warnings.warn(
                        f"the exact solver ended with status {sol.status} (time limit "
                        f"{time_limit:g} s): no plan was found, so nobody is targeted",
                        Notice, stacklevel=2,
                    )  # fmt: skip
            else:
                sol = solve_dual(prob, budget, settings.constraints, seed=settings.seed)
                details["multipliers"] = sol.multipliers
                details["core_users"] = sol.core_users
            return sol.choice, sol.upper_bound

        if settings.natural_screen is not None:
            problem = screened(problem, settings.natural_screen)
            details["natural_screen"] = float(settings.natural_screen)
        floor = settings.min_conversions
        if floor is None or problem.objective == "conversions":
            choice, bound = solve(problem)
        else:
            choice, bound = _with_conversion_floor(problem, floor, solve, details)
        return choice, solver, bound, details
    order, k, extra = ranking(policy, problem, settings, users)
    details.update(extra)
    return take_in_order(problem, order, k, budget, settings), solver, upper_bound, details


def ranking(
    policy: str,
    problem: CampaignProblem,
    settings: PolicySettings,
    users: pd.DataFrame | None,
) -> tuple[np.ndarray, int, dict[str, object]]:
    """The list a ranked policy takes users from, independent of the budget.

    Returns
    -------
    order : ndarray of int64, shape (m,)
        User rows, best first (v2's list stops at its natural-probability cut).
    k : int
        The uniform denomination's index on the menu.
    details : dict
        What the plan reports (denomination, v2's cut).
    """
    details: dict[str, object] = {}
    try:
        k = problem.menu.index(settings.denomination)
    except KeyError:
        raise InputError(
            f"uniform denomination {settings.denomination!r} is not on the menu "
            f"({', '.join(problem.menu.names)})",
            key="manual.denomination",
        ) from None
    n = problem.n_users
    uid = problem.user_id.astype(np.float64)
    if policy == "random":
        order = np.random.default_rng(settings.seed).permutation(n)
    elif policy == "manual":
        order = _manual_order(settings, users, uid)
    elif policy == "v1":
        order = _ranked(problem.p[:, k], -uid)
    elif policy == "uplift":
        order = _ranked(problem.p[:, k] - problem.p0, -uid)
    else:  # v2
        threshold = settings.v2_threshold
        threshold = ARTICLE_V2_THRESHOLD if threshold is None else threshold
        details["v2_threshold"] = threshold
        keep = problem.p0 <= threshold
        order = _ranked(np.where(keep, problem.p[:, k], -np.inf), -uid)
        order = order[keep[order]]
    details["denomination"] = settings.denomination
    return order, k, details


#: Columns of the RFM score operations rank by when no ``rank_by`` column is given.
RFM_COLUMNS: tuple[str, ...] = ("days_since_last_order", "orders_365d", "avg_order_value")


def _manual_order(
    settings: PolicySettings, users: pd.DataFrame | None, uid: np.ndarray
) -> np.ndarray:
    """Operations' ranking: by ``rank_by`` (ties by user id), else by the RFM score."""
    if users is None:
        raise InputError("the manual policy needs the user table", key="users")
    if settings.rank_by is not None:
        if settings.rank_by not in users.columns:
            raise InputError(
                f"{settings.rank_by!r} is not a column of the user table", key="manual.rank_by"
            )
        values = pd.to_numeric(users[settings.rank_by], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        if not np.isfinite(values).any():
            raise InputError(
                f"{settings.rank_by!r} holds no numbers to rank by", key="manual.rank_by"
            )
        score = -values if settings.rank_ascending else values
        return _ranked(np.nan_to_num(score, nan=-np.inf), -uid)
    missing = [c for c in RFM_COLUMNS if c not in users.columns]
    if missing:
        raise InputError(
            f"ranking by RFM needs column {missing[0]!r}; name the column operations rank by",
            key="manual.rank_by",
        )
    score = rfm_score(
        users["days_since_last_order"].to_numpy(),
        users["orders_365d"].to_numpy(),
        users["avg_order_value"].to_numpy(),
    ).astype(np.float64)
    return _ranked(score, users["avg_order_value"].to_numpy(dtype=np.float64))


def _conversions(problem: CampaignProblem, choice: np.ndarray) -> float:
    """Expected incremental conversions of ``choice`` (shape (n,), -1 for none)."""
    rows = np.flatnonzero(choice >= 0)
    return float((problem.p[rows, choice[rows]] - problem.p0[rows]).sum())


def _with_conversion_floor(
    problem: CampaignProblem,
    floor: float,
    solve: Callable[[CampaignProblem], tuple[np.ndarray, float | None]],
    details: dict[str, object],
) -> tuple[np.ndarray, float | None]:
    """Maximise the objective subject to expected incremental conversions >= ``floor``.

    Lagrangian relaxation of the floor: the solver maximises ``value + mu * uplift`` (a price
    ``mu`` >= 0 per incremental conversion, in the objective's unit) with every other
    constraint kept; ``mu`` is the least price whose plan reaches the floor, found by doubling
    then bisection (the plan's conversions grow with ``mu``). For any ``mu``, the relaxed
    bound minus ``mu * floor`` bounds the floored problem, so the certified gap stays valid.
    When even the conversions-maximising plan falls short, that plan is returned.
    """
    choice, bound = solve(problem)
    details["conversion_floor"] = float(floor)
    if _conversions(problem, choice) >= floor:
        details["conversion_price"] = 0.0
        return choice, bound
    uplift = problem.uplift()
    scale = float(np.abs(problem.value).max() / max(float(np.abs(uplift).max()), 1e-12))

    def priced(mu: float) -> tuple[np.ndarray, float | None]:
        blended = replace(problem, value=problem.value + mu * uplift)
        c, b = solve(blended)
        return c, None if b is None else b - mu * floor

    lo, hi, best = 0.0, scale, None
    for _ in range(40):  # doubling: find a price that reaches the floor
        trial = priced(hi)
        if _conversions(problem, trial[0]) >= floor:
            best = trial
            break
        lo, hi = hi, 2 * hi
    if best is None:
        details["conversion_price"] = None
        # The conversions-maximising plan; its solver's bound is in conversions, not in the
        # objective's unit, so the plan carries no bound (no certified gap).
        return solve(replace(problem, value=uplift))[0], None
    for _ in range(CONVERSION_PRICE_STEPS):
        mid = 0.5 * (lo + hi)
        trial = priced(mid)
        if _conversions(problem, trial[0]) >= floor:
            hi, best = mid, trial
        else:
            lo = mid
    details["conversion_price"] = hi
    return best


def _plan_for(
    policy: str,
    problem: CampaignProblem,
    budget: float,
    settings: PolicySettings,
    users: pd.DataFrame | None,
) -> tuple[np.ndarray, str, float | None, dict[str, object]]:
    """:func:`_plan_at`, or for an optimal policy with a target the least budget reaching it.

    The plan's value is monotone in the budget (a plan within a smaller budget fits a larger
    one), so bisection brackets the least budget: below ``lo`` no plan was found to reach the
    target (or the solver's upper bound proved none exists), at ``hi`` one was.
    """
    target = settings.target
    if policy != "optimal" or target is None:
        return _plan_at(policy, problem, budget, settings, users)
    best = _plan_at(policy, problem, budget, settings, users)
    reached = _value(problem, best[0]) >= target
    lo, hi = 0.0, budget
    steps = 0
    while reached and hi - lo > TARGET_BUDGET_TOLERANCE * budget:
        mid = 0.5 * (lo + hi)
        trial = _plan_at(policy, problem, mid, settings, users)
        steps += 1
        if _value(problem, trial[0]) >= target:
            hi, best = mid, trial
        else:
            lo = mid
    details = dict(best[3])
    details.update(
        target=float(target), target_reached=bool(reached), spend_budget=hi, target_steps=steps
    )
    return best[0], best[1], best[2], details


def _value(problem: CampaignProblem, choice: np.ndarray) -> float:
    """Objective value of ``choice`` (choice shape (n,), -1 for none)."""
    rows = np.flatnonzero(choice >= 0)
    return float(problem.value[rows, choice[rows]].sum())


def make_plan(
    policy: str,
    problem: CampaignProblem,
    budget: float,
    settings: PolicySettings,
    *,
    users: pd.DataFrame | None = None,
    cap: float | None = None,
) -> Plan:
    """Run ``policy`` on ``problem`` at ``budget`` (money).

    Parameters
    ----------
    policy : str
        One of :data:`POLICIES`.
    problem : CampaignProblem
        Candidate users (typically the campaign's target stages) with scores and costs.
    budget : float
        Expected-cost budget (money).
    settings : PolicySettings
    users : DataFrame, optional
        The candidates' user rows, aligned with ``problem``; the manual policy ranks on their
        recency, frequency and average order value.
    cap : float, optional
        The budget the overrun rule is stated for (money; default ``budget``): a plan matched
        to a baseline's spend plans at that spend under the campaign's real budget's rule.
    """
    start = time.perf_counter()
    if policy not in POLICIES:
        raise InputError(
            f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}", key="policies"
        )
    if not 0 <= budget < float("inf"):
        raise InputError("must be a finite amount >= 0", key="budget")
    settings.constraints.validate(problem)
    planning_budget = float(budget)
    choice, solver, upper_bound, details = _plan_for(
        policy, problem, planning_budget, settings, users
    )

    first = (choice, solver, upper_bound, details)

    def plan_at(amount: float) -> Plan:
        made = (
            first
            if amount == planning_budget
            else _plan_for(policy, problem, amount, settings, users)
        )
        return Plan(
            problem=problem,
            choice=np.asarray(made[0], dtype=np.int16),
            policy=policy,
            solver=made[1],
            budget=float(budget),
            upper_bound=made[2],
            details=made[3],
        )

    plan = fit_overrun(plan_at, float(budget), settings, cap=cap)
    plan.seconds = time.perf_counter() - start
    return plan


def fit_overrun(
    plan_at: Callable[[float], Plan],
    budget: float,
    settings: PolicySettings,
    *,
    cap: float | None = None,
) -> Plan:
    """The plan for ``budget`` under the settings' overrun rule.

    Without ``settings.overrun_risk``, ``plan_at(budget)``. With it, the planning budget is
    lowered from ``budget`` until the plan's realised spend exceeds ``(1 + overrun_tolerance)
    x budget`` with probability at most ``overrun_risk`` (mean + z * sd of its spend under the
    models, :meth:`Plan.spend_moments`); each step lowers it to the plan's expected spend minus
    the excess, so a few plans are made, and a bisection finishes the rare case the steps do
    not. The plan's expected spend stays within ``budget`` (its planning budget never exceeds
    it). ``details`` records ``planning_budget``, ``overrun_risk`` and ``overrun_tolerance``.

    Parameters
    ----------
    plan_at : callable
        Maps a planning budget (money) to the plan made for it (its ``budget`` the real one).
    budget : float
        Money.
    settings : PolicySettings
    cap : float, optional
        The budget the rule is stated for (default ``budget``); realised spend is held under
        ``(1 + overrun_tolerance) x cap``.
    """
    risk, tolerance = settings.overrun_risk, settings.overrun_tolerance
    plan, planning = fit_overrun_rule(
        plan_at, lambda p: p.spend_moments(), budget, risk, tolerance, cap=cap
    )
    if risk is None:
        return plan
    plan.details = dict(plan.details) | {
        "planning_budget": planning,
        "overrun_risk": risk,
        "overrun_tolerance": tolerance,
    }
    return plan
