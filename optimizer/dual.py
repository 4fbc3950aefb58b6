"""Lagrangian-dual decomposition for millions of users, with a certified optimality gap.

Multipliers price the coupled constraints: ``lam`` the budget, ``mu_k`` each denomination's
cap, ``nu`` the message cap. At given multipliers every user independently takes the option with
the best reduced value ``v_ik - lam * c_ik - mu_k - nu`` (or nothing when no option is
positive): a vectorised argmax, no loop over users. Weak duality makes

    L(lam, mu, nu) = sum_i max(0, max_k reduced_ik) + lam * B + sum_k mu_k * cap_k + nu * M

an upper bound on every feasible plan, for *any* non-negative multipliers; the solver lowers it
by exact coordinate-wise bisection (L is convex and piecewise linear in each multiplier), then
repairs the per-user choices into a feasible plan (drop the weakest where a constraint is
broken) and fills what is left greedily by value per unit cost.

With the budget as the only constraint, the hull greedy of :mod:`optimizer.hull` solves the
same dual exactly (``lam`` is the slope of the segment the budget splits), so it is used.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from optimizer.hull import hull_segments, solve_hull
from optimizer.problem import CampaignProblem

__all__ = ["DualSolution", "solve_dual"]


@dataclass
class DualSolution:
    """A feasible plan, the best dual bound found, and the multipliers that gave it."""

    choice: np.ndarray
    value: float
    cost: float
    upper_bound: float
    multipliers: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class _Lagrangian:
    """Vectorised per-user choice and dual value at given multipliers."""

    def __init__(
        self,
        problem: CampaignProblem,
        budget: float,
        caps: np.ndarray,
        messages: float,
        min_roi: float | None = None,
    ):
        ok = problem.eligible & (problem.value > 0) & np.isfinite(problem.value)
        ok &= caps[None, :] > 0
        self.value = np.where(ok, problem.value, -np.inf)
        # Minimum ROI as a linear constraint: sum (gmv_ik - roi * cost_ik) x_ik >= 0.
        self.roi_gain = None if min_roi is None else problem.gmv_uplift() - min_roi * problem.cost
        self.cost = problem.cost
        self.budget = budget
        self.caps = caps
        self.messages = messages
        self.rows = np.arange(problem.n_users)

    def reduced(self, lam: float, mu: np.ndarray, nu: float, rho: float = 0.0) -> np.ndarray:
        out = self.value - lam * self.cost - mu[None, :] - nu
        if self.roi_gain is not None and rho:
            out = out + rho * self.roi_gain
        return out

    def choose(
        self, lam: float, mu: np.ndarray, nu: float, rho: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        reduced = self.reduced(lam, mu, nu, rho)
        best = np.argmax(reduced, axis=1)
        score = reduced[self.rows, best]
        choice = np.where(score > 0, best, -1)
        return choice, np.maximum(score, 0.0)

    def dual(self, lam: float, mu: np.ndarray, nu: float, rho: float = 0.0) -> float:
        _, score = self.choose(lam, mu, nu, rho)
        finite_caps = np.isfinite(self.caps)
        bound = (
            score.sum()
            + lam * self.budget
            + float((mu * np.where(finite_caps, self.caps, 0)).sum())
        )
        if np.isfinite(self.messages):
            bound += nu * self.messages
        return float(bound)

    def usage(self, choice: np.ndarray) -> tuple[float, np.ndarray, int]:
        chosen = choice >= 0
        cost = float(self.cost[self.rows[chosen], choice[chosen]].sum())
        counts = np.bincount(choice[chosen], minlength=self.caps.size)
        return cost, counts, int(chosen.sum())

    def roi_slack(self, choice: np.ndarray) -> float:
        """``sum (gmv - roi * cost)`` of the chosen options (>= 0 when the ROI target holds)."""
        if self.roi_gain is None:
            return 0.0
        chosen = choice >= 0
        return float(self.roi_gain[self.rows[chosen], choice[chosen]].sum())


def _bisect(used, limit: float, hi: float, iterations: int = 40) -> float:
    """Smallest multiplier (within tolerance) at which ``used(m) <= limit``; 0 if already so."""
    if used(0.0) <= limit:
        return 0.0
    lo = 0.0
    while used(hi) > limit:
        hi *= 4.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if used(mid) <= limit:
            hi = mid
        else:
            lo = mid
    return hi


def _repair_and_fill(lag: _Lagrangian, choice: np.ndarray, reduced: np.ndarray) -> np.ndarray:
    choice = choice.copy()
    rows = lag.rows
    value, cost = lag.value, lag.cost
    k = lag.caps.size
    # Caps: keep the users with the best reduced value.
    for j in range(k):
        if np.isfinite(lag.caps[j]):
            members = np.flatnonzero(choice == j)
            if members.size > lag.caps[j]:
                keep = int(lag.caps[j])
                order = members[np.argsort(-reduced[members], kind="stable")]
                choice[order[keep:]] = -1
    if np.isfinite(lag.messages):
        members = np.flatnonzero(choice >= 0)
        if members.size > lag.messages:
            order = members[np.argsort(-reduced[members], kind="stable")]
            choice[order[int(lag.messages) :]] = -1
    # Budget: drop the lowest value per unit cost until it fits.
    spent, counts, sent = lag.usage(choice)
    if spent > lag.budget:
        members = np.flatnonzero(choice >= 0)
        ratio = value[members, choice[members]] / cost[members, choice[members]]
        order = members[np.argsort(ratio, kind="stable")]
        excess = np.cumsum(cost[order, choice[order]])
        drop = int(np.searchsorted(excess, spent - lag.budget, side="left")) + 1
        choice[order[:drop]] = -1
    # Minimum ROI: drop the options that pull it down most until it holds.
    slack = lag.roi_slack(choice)
    if slack < 0:
        members = np.flatnonzero(choice >= 0)
        gain = lag.roi_gain[members, choice[members]]
        order = members[np.argsort(gain, kind="stable")]
        recovered = np.cumsum(-lag.roi_gain[order, choice[order]])
        drop = int(np.searchsorted(recovered, -slack, side="left")) + 1
        choice[order[:drop]] = -1
    # Fill: unassigned users, best value per unit cost first, while budget and caps allow.
    for _ in range(32):
        spent, counts, sent = lag.usage(choice)
        room = lag.budget - spent
        left_caps = lag.caps - counts
        left_messages = lag.messages - sent
        if room <= 0 or left_messages <= 0:
            break
        free = choice < 0
        ratio = np.where(
            free[:, None] & (left_caps[None, :] > 0) & (cost <= room) & np.isfinite(value),
            value / np.maximum(cost, 1e-300),
            -np.inf,
        )
        best = np.argmax(ratio, axis=1)
        candidates = np.flatnonzero(np.isfinite(ratio[rows, best]))
        if candidates.size == 0:
            break
        candidates = candidates[np.argsort(-ratio[candidates, best[candidates]], kind="stable")]
        opt = best[candidates]
        fits = np.cumsum(cost[candidates, opt]) <= room + 1e-9
        one_hot = np.zeros((candidates.size, k), dtype=np.int64)
        one_hot[np.arange(candidates.size), opt] = 1
        within_caps = np.cumsum(one_hot, axis=0)[np.arange(candidates.size), opt] <= left_caps[opt]
        within_messages = np.arange(1, candidates.size + 1) <= left_messages
        good = fits & within_caps & within_messages
        if lag.roi_gain is not None:  # the running ROI slack must stay >= 0
            slack = lag.roi_slack(choice)
            good &= slack + np.cumsum(lag.roi_gain[candidates, opt]) >= -1e-9
        stop = candidates.size if good.all() else int(np.argmin(good))
        if stop == 0:
            # The best candidate does not fit: remove its option for this round and retry.
            value = value.copy()
            value[candidates[0], opt[0]] = -np.inf
            continue
        choice[candidates[:stop]] = opt[:stop]
    return choice


def solve_dual(
    problem: CampaignProblem,
    budget: float,
    *,
    max_per_denomination: Mapping[str, int] | None = None,
    max_messages: int | None = None,
    min_roi: float | None = None,
    sweeps: int = 8,
) -> DualSolution:
    """Plan under the budget and optional caps, with a certified upper bound.

    Parameters
    ----------
    problem : CampaignProblem
    budget : float
        Expected-cost budget (money).
    max_per_denomination : mapping of str to int, optional
        Coupon inventory per denomination.
    max_messages : int, optional
        Cap on coupons sent in all.
    min_roi : float, optional
        Expected incremental GMV must be at least this multiple of the expected cost.
    sweeps : int
        Rounds of coordinate-wise bisection over the multipliers.
    """
    start = time.perf_counter()
    k = len(problem.menu)
    caps = np.full(k, np.inf)
    for name, cap in (max_per_denomination or {}).items():
        caps[problem.menu.index(name)] = cap
    messages = np.inf if max_messages is None else float(max_messages)
    rows = np.arange(problem.n_users)
    if not np.isfinite(caps).any() and not np.isfinite(messages) and min_roi is None:
        seg = hull_segments(problem)
        sol = solve_hull(problem, budget, seg)
        taken = int(np.searchsorted(seg.cum_cost, budget, side="right"))
        lam = float(seg.d_value[taken] / seg.d_cost[taken]) if taken < seg.d_cost.size else 0.0
        return DualSolution(
            choice=sol.choice,
            value=sol.value,
            cost=sol.cost,
            upper_bound=sol.upper_bound,
            multipliers={"budget": lam},
            seconds=time.perf_counter() - start,
        )
    lag = _Lagrangian(problem, budget, caps, messages, min_roi)
    if not np.isfinite(lag.value).any():  # nobody has an option worth sending
        return DualSolution(
            choice=np.full(problem.n_users, -1, dtype=np.int16),
            value=0.0,
            cost=0.0,
            upper_bound=0.0,
            seconds=time.perf_counter() - start,
        )
    lam, mu, nu, rho = 0.0, np.zeros(k), 0.0, 0.0
    finite = lag.value[np.isfinite(lag.value)]
    scale = float(finite.max()) if finite.size else 1.0
    ratio_scale = float(
        np.nanmax(np.where(np.isfinite(lag.value), lag.value / np.maximum(lag.cost, 1e-12), 0))
    )
    best_bound = lag.dual(lam, mu, nu)
    best = (lam, mu.copy(), nu, rho)
    for _ in range(sweeps):
        lam = _bisect(
            lambda m, mu=mu, nu=nu, rho=rho: lag.usage(lag.choose(m, mu, nu, rho)[0])[0],
            budget,
            max(ratio_scale, 1e-9),
        )
        for j in np.flatnonzero(np.isfinite(caps)):

            def count(m, j=j, lam=lam, nu=nu, rho=rho):
                trial = mu.copy()
                trial[j] = m
                return lag.usage(lag.choose(lam, trial, nu, rho)[0])[1][j]

            mu[j] = _bisect(count, caps[j], max(scale, 1e-9))
        if np.isfinite(messages):
            nu = _bisect(
                lambda m, lam=lam, mu=mu, rho=rho: lag.usage(lag.choose(lam, mu, m, rho)[0])[2],
                messages,
                max(scale, 1e-9),
            )
        if lag.roi_gain is not None:
            rho = _bisect(
                lambda m, lam=lam, mu=mu, nu=nu: -lag.roi_slack(lag.choose(lam, mu, nu, m)[0]),
                0.0,
                1.0,
            )
        bound = lag.dual(lam, mu, nu, rho)
        if bound < best_bound - 1e-12:
            best_bound, best = bound, (lam, mu.copy(), nu, rho)
        elif bound >= best_bound - 1e-12 * max(1.0, abs(best_bound)):
            break
    lam, mu, nu, rho = best
    choice, _ = lag.choose(lam, mu, nu, rho)
    reduced_all = lag.reduced(lam, mu, nu, rho)
    reduced = np.where(choice >= 0, reduced_all[rows, np.maximum(choice, 0)], -np.inf)
    choice = _repair_and_fill(lag, choice, reduced)
    chosen = choice >= 0
    value = float(problem.value[rows[chosen], choice[chosen]].sum())
    cost = float(problem.cost[rows[chosen], choice[chosen]].sum())
    return DualSolution(
        choice=choice.astype(np.int16),
        value=value,
        cost=cost,
        upper_bound=max(best_bound, value),
        multipliers={
            "budget": lam,
            **{f"cap_{n}": float(m) for n, m in zip(problem.menu.names, mu, strict=True)},
            "messages": nu,
            "min_roi": rho,
        },
        seconds=time.perf_counter() - start,
    )
