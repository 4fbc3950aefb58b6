"""A campaign plan: which coupon (or none) each user gets, and the expected figures.

Every policy and every solver returns a :class:`Plan`, so every comparison is like for like.
:func:`check_plan` verifies the invariants before a plan is written: every input user present
once, at most one coupon each, only eligible coupons, never over the budget or any cap.

Definitions used in every summary: *campaign cost* = expected face value of redeemed coupons +
message cost; *ROI* = expected incremental GMV / campaign cost; *incremental profit* =
margin x incremental GMV - campaign cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from optimizer.errors import InputError
from optimizer.io.menu import NO_COUPON
from optimizer.planning.spend import spend_moments_of, spend_parts
from optimizer.solvers.constraints import Constraints, linear_rows, violations
from optimizer.solvers.problem import CampaignProblem

__all__ = ["Plan", "PlanError", "check_plan", "ROI_DEFINITION"]

ROI_DEFINITION = (
    "campaign cost = expected face value of redeemed coupons + send costs (+ the menu's costs "
    "per conversion); "
    "ROI = expected incremental GMV / campaign cost; "
    "incremental profit = margin x incremental GMV - campaign cost"
)


class PlanError(InputError):
    """A plan breaks an invariant (over budget, a cap, a user twice...)."""


@dataclass
class Plan:
    """Per-user choices of one policy on one problem.

    Attributes
    ----------
    problem : CampaignProblem
        The scores, values and costs the plan was made from.
    choice : ndarray of int16, shape (n,)
        Denomination index per user (menu order), -1 for none.
    policy, solver : str
        Who made the plan and how.
    budget : float
        Budget the plan was made for (money).
    upper_bound : float or None
        Proven bound on the objective of any feasible plan (None when unknown).
    seconds : float
        Solve time.
    details : dict
        Solver extras (multipliers, status, thresholds...).
    """

    problem: CampaignProblem
    choice: np.ndarray
    policy: str
    solver: str
    budget: float
    upper_bound: float | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def _chosen(self, matrix: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(self.choice >= 0)
        out = np.zeros(self.choice.size)
        out[rows] = matrix[rows, self.choice[rows]]
        return out

    def incremental_gmv(self) -> float:
        """Expected incremental GMV of the plan (money)."""
        rows = np.flatnonzero(self.choice >= 0)
        return float(self.problem.gmv_uplift_at(rows, self.choice[rows]).sum())

    @property
    def targeted(self) -> np.ndarray:
        """True for users who get a coupon, shape (n,)."""
        return self.choice >= 0

    @property
    def expected_cost(self) -> np.ndarray:
        """Expected campaign cost per user (money), shape (n,)."""
        return self._chosen(self.problem.cost)

    @property
    def expected_uplift(self) -> np.ndarray:
        """Expected incremental conversions per user, shape (n,)."""
        return self._chosen(self.problem.uplift())

    def spend_moments(self) -> tuple[float, float]:
        """Mean and standard deviation of the realised spend (money).

        Messages cost their send cost each for sure; treatment k to user i pays ``f_k`` with
        probability ``q = p_ik * r_ik`` (converts and redeems) and its cost per conversion
        ``v_k`` with probability ``p = p_ik``, independently across users, so the variance is
        ``sum f^2 q + 2 f v q + v^2 p - (f q + v p)^2`` (the normal approximation of the sum is
        used for intervals and overrun risk).

        With the problem's ``spend_error`` (relative standard error ``e_k`` of each option's
        paid spend level from estimating the models), the estimation error adds
        ``sum_k (e_k * paid_k)^2``, where ``paid_k = sum f q + v p`` over the users given
        option k: an error in an option's level moves all its users' spend together.
        """
        parts = spend_parts(self.problem, self.choice)
        return spend_moments_of(parts, self.problem.spend_error)

    def overrun_probability(self) -> float:
        """P(realised spend > budget) under the normal approximation."""
        mean, sd = self.spend_moments()
        if sd == 0:
            return float(mean > self.budget)
        return float(ndtr(-(self.budget - mean) / sd))

    @property
    def value(self) -> float:
        """Objective value of the plan (in the objective's unit)."""
        return float(self._chosen(self.problem.value).sum())

    @property
    def gap(self) -> float | None:
        """Certified relative gap to the upper bound, when one is known."""
        if self.upper_bound is None:
            return None
        if self.upper_bound <= 0:
            return 0.0
        return max(0.0, (self.upper_bound - self.value) / self.upper_bound)

    def summary(self) -> dict[str, Any]:
        """The figures every table prints (money in currency units)."""
        cost, sd = self.spend_moments()
        gmv = self.incremental_gmv()
        return {
            "policy": self.policy,
            "solver": self.solver,
            "objective": self.problem.objective,
            "budget": self.budget,
            "users": self.problem.n_users,
            "users_targeted": int(self.targeted.sum()),
            "incremental_conversions": float(self.expected_uplift.sum()),
            "expected_cost": cost,
            "spend_95_low": max(0.0, cost - 1.959964 * sd),
            "spend_95_high": cost + 1.959964 * sd,
            "overrun_probability": self.overrun_probability(),
            "incremental_gmv": gmv,
            "roi": gmv / cost if cost > 0 else float("nan"),
            "incremental_profit": self.problem.margin_rate * gmv - cost,
            "objective_value": self.value,
            "upper_bound": self.upper_bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "marginal_return": self.details.get("marginal_return"),
        }

    def by_denomination(self) -> pd.DataFrame:
        """Users, expected incremental conversions and cost per denomination (and none)."""
        labels = np.array([*self.problem.menu.names, NO_COUPON], dtype=object)
        idx = np.where(self.choice >= 0, self.choice, len(labels) - 1)
        frame = pd.DataFrame(
            {
                "denomination": labels[idx],
                "users": 1,
                "incremental_conversions": self.expected_uplift,
                "expected_cost": self.expected_cost,
            }
        )
        out = frame.groupby("denomination", sort=False).sum().reindex(labels).fillna(0)
        return out.reset_index()

    def by_segment(self) -> pd.DataFrame:
        """Candidates, users targeted, share of messages, uplift and cost per segment label.

        Empty when the problem has no segments.
        """
        columns = ["segment", "users", "users_targeted", "message_share"]
        columns += ["incremental_conversions", "expected_cost"]
        problem = self.problem
        if problem.segment is None:
            return pd.DataFrame(columns=columns)
        k = len(problem.segment_names)
        targeted = self.targeted
        sent = np.bincount(problem.segment, weights=targeted, minlength=k)
        return pd.DataFrame(
            {
                "segment": list(problem.segment_names),
                "users": np.bincount(problem.segment, minlength=k),
                "users_targeted": sent.astype(np.int64),
                "message_share": sent / max(1, int(targeted.sum())),
                "incremental_conversions": np.bincount(
                    problem.segment, weights=self.expected_uplift, minlength=k
                ),
                "expected_cost": np.bincount(
                    problem.segment, weights=self.expected_cost, minlength=k
                ),
            }
        )[columns]

    def to_frame(self) -> pd.DataFrame:
        """The plan file: one row per user.

        Returns
        -------
        DataFrame, shape (n, 6)
            ``user_id``, ``denomination`` (name or ``none``), ``p_natural``, ``p_coupon`` (of
            the chosen coupon; p_natural when none), ``expected_uplift``, ``expected_cost``.
        """
        labels = np.array([*self.problem.menu.names, NO_COUPON], dtype=object)
        idx = np.where(self.choice >= 0, self.choice, len(labels) - 1)
        p_coupon = np.where(self.targeted, self._chosen(self.problem.p), self.problem.p0)
        return pd.DataFrame(
            {
                "user_id": self.problem.user_id,
                "denomination": pd.Categorical(labels[idx], categories=list(labels)),
                "p_natural": self.problem.p0.astype(np.float32),
                "p_coupon": p_coupon.astype(np.float32),
                "expected_uplift": self.expected_uplift.astype(np.float32),
                "expected_cost": self.expected_cost,
            }
        )


def _broken_message(
    name: str, used: float, rhs: float, plan: Plan, constraints: Constraints
) -> str:
    """A sentence for one broken constraint row."""
    kind, _, label = name.partition(":")
    sent = int(plan.targeted.sum())
    if kind == "budget":
        return f"expected cost {used:,.2f} exceeds the budget {rhs:,.2f}"
    if kind == "cap":
        return f"{used:.0f} coupons of {label} exceed its cap of {rhs:.0f}"
    if kind == "messages":
        return f"{used:.0f} messages exceed the cap of {rhs:.0f}"
    if kind == "min_roi":
        cost = float(plan.expected_cost.sum())
        roi = plan.incremental_gmv() / cost if cost > 0 else float("nan")
        return f"ROI {roi:.3f} is below the minimum {constraints.min_roi:g}"
    problem = plan.problem
    members = int((problem.segment[plan.targeted] == problem.segment_names.index(label)).sum())
    share = members / sent if sent else 0.0
    bounds = next(s for s in constraints.segment_shares if s.segment == label)
    side = f"below its minimum {bounds.min:.1%}"
    if kind == "segment_max":
        side = f"above its maximum {bounds.max:.1%}"
    return f"segment {label} gets {share:.1%} of the messages, {side}"


def check_plan(
    plan: Plan,
    constraints: Constraints | None = None,
    *,
    tolerance: float = 1e-6,
) -> None:
    """Raise :class:`PlanError` unless ``plan`` keeps every invariant.

    Every input user is present once, each has at most one coupon from the menu, only eligible
    coupons are sent, and every constraint row (budget, caps, messages, minimum ROI, segment
    shares; :func:`optimizer.solvers.constraints.linear_rows`) holds.
    """
    problem = plan.problem
    n, k = problem.p.shape
    if plan.choice.shape != (n,):
        raise PlanError(f"plan has {plan.choice.size} rows for {n} users")
    ids = np.sort(problem.user_id)  # a sort: np.unique's hash path is far slower at 1M ids
    if (ids[1:] == ids[:-1]).any():
        raise PlanError("a user appears more than once in the plan")
    if ((plan.choice < -1) | (plan.choice >= k)).any():
        raise PlanError("a plan row names a denomination that is not on the menu")
    rows = np.flatnonzero(plan.choice >= 0)
    if not problem.eligible[rows, plan.choice[rows]].all():
        raise PlanError("the plan sends a coupon to an excluded user or a capped-out coupon")
    constraints = constraints or Constraints()
    broken = violations(plan.choice, linear_rows(problem, plan.budget, constraints), tolerance)
    if broken:
        raise PlanError(_broken_message(*broken[0], plan, constraints))
