"""The campaign as an optimisation problem: per-user, per-denomination value and expected cost.

For user i and denomination k (face value f_k, threshold t_k, planning redemption share r_k):

* expected cost ``c_ik = s_k + p_ik * (r_ik * f_k + v_k)`` (money): the send cost ``s_k`` (the
  treatment's ``send_cost``, else ``sms_cost``) always, the face value only when a converter
  redeems, and the treatment's cost per conversion ``v_k`` (0 for plain coupons) per
  converter; ``r_ik`` is P(redeem | converted) from the redemption model when the scores
  have one (a natural buyer redeems only if the basket reaches the
  threshold), else the menu's share ``r_k``. A coupon sent to a sure thing costs the face value
  whenever the sure thing redeems it and buys nothing, which is the article's lesson;
* value by objective: incremental conversions ``p_ik - p0_i`` (default); incremental GMV
  ``(p_ik - p0_i) * b_i + l_ik * max(t_k - b_i, 0)`` with ``b_i`` the user's average order
  value: buyers order their usual basket, and an order that redeems the coupon is lifted to the
  threshold; ``l_ik = p_ik * r_ik`` (the redemption mass) with a redemption model, else
  ``max(p_ik - p0_i, 0)`` (only the extra buyers lift their order: planning as if every holder
  did rewards high thresholds sent to sure things, which the simulator shows do not pay);
  incremental profit ``margin * incremental GMV - c_ik``. A treatment with its own
  ``conversion_value`` ``w_k`` (a promotion of one product) has incremental GMV
  ``p_ik * w_k - p0_i * b_i``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from optimizer.choices import OBJECTIVES, Objective
from optimizer.errors import InputError
from optimizer.io.menu import Menu

__all__ = ["Objective", "OBJECTIVES", "CampaignProblem", "build_problem", "concat_problems"]


@dataclass
class CampaignProblem:
    """Arrays of one campaign: who can get which coupon, at what value and expected cost.

    Attributes
    ----------
    user_id : ndarray of int64, shape (n,)
    p0 : ndarray of float64, shape (n,)
        P(convert | no coupon).
    p : ndarray of float64, shape (n, k)
        P(convert | coupon k).
    value : ndarray of float64, shape (n, k)
        Objective gain of sending coupon k instead of nothing (conversions or money).
    cost : ndarray of float64, shape (n, k)
        Expected cost of sending coupon k (money).
    eligible : ndarray of bool, shape (n, k)
        False where user i must not get coupon k (excluded users, zero caps).
    basket : ndarray of float64, shape (n,)
        Average order value used for GMV (money); ones when not given.
    menu : Menu
    objective : str
    sms_cost, margin_rate : float
    segment : ndarray of int32, shape (n,), optional
        Segment code per user (index into ``segment_names``), for segment-share constraints.
    segment_names : tuple of str
        Segment labels.
    redeem : ndarray of float32, shape (n, k), optional
        P(redeem | converted holding coupon k) per user (a redemption model's scores); None
        uses the menu's planning redemption shares for everyone.
    spend_error : ndarray of float64, shape (k,), optional
        Relative standard error of each option's paid spend level from estimating the models
        (the same error for every user given the option: a level estimated from the option's
        training rows); :meth:`~optimizer.planning.plan.Plan.spend_moments` adds it to the
        spread of the realised spend. None: the models' probabilities taken as exact.
    """

    user_id: np.ndarray
    p0: np.ndarray
    p: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    eligible: np.ndarray
    basket: np.ndarray
    menu: Menu
    objective: str
    sms_cost: float
    margin_rate: float
    segment: np.ndarray | None = None
    segment_names: tuple[str, ...] = ()
    redeem: np.ndarray | None = None
    spend_error: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        """Number of users."""
        return int(self.user_id.size)

    def take(self, rows: np.ndarray | slice) -> CampaignProblem:
        """The users ``rows`` (indices, a mask or a slice) as a problem of their own."""
        return replace(
            self,
            user_id=self.user_id[rows], p0=self.p0[rows], p=self.p[rows],
            value=self.value[rows], cost=self.cost[rows], eligible=self.eligible[rows],
            basket=self.basket[rows],
            segment=None if self.segment is None else self.segment[rows],
            redeem=None if self.redeem is None else self.redeem[rows],
        )  # fmt: skip

    def segment_labels(self) -> np.ndarray | None:
        """Each user's segment label (object array, shape (n,)), None without segments."""
        if self.segment is None:
            return None
        return np.asarray(self.segment_names, dtype=object)[self.segment]

    def redemption_at(self, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
        """P(redeem | converted) of option ``options[i]`` for user ``rows[i]``, shape (m,)."""
        if self.redeem is None:
            return self.menu.redemption_shares[options]
        return self.redeem[rows, options].astype(np.float64)

    def uplift(self) -> np.ndarray:
        """Incremental conversion probability ``p_ik - p0_i``, shape (n, k)."""
        return self.p - self.p0[:, None]

    def gmv_uplift(self) -> np.ndarray:
        """Expected incremental GMV of each option (money), shape (n, k)."""
        rows = np.arange(self.n_users)[:, None]
        options = np.arange(len(self.menu))[None, :]
        return self.gmv_uplift_at(rows, options)

    def gmv_uplift_at(self, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
        """Expected incremental GMV (money) of option ``options[i]`` for user ``rows[i]``.

        The entries of :meth:`gmv_uplift` without building the (n, k) matrix (any broadcastable
        index arrays): ``(p - p0) * b + lifted * max(t - b, 0)``, where ``lifted`` is the
        probability of an order lifted to the threshold: the redemption mass ``p * r`` with a
        redemption model (a redeemed order reaches the threshold, whether the coupon brought
        the buyer or brought the order forward and up), else ``max(p - p0, 0)`` (only the extra
        buyers lift their order; the conservative reading without redemption data).
        """
        basket = self.basket[rows]
        p = self.p[rows, options]
        lift = p - self.p0[rows]
        stretch = np.maximum(self.menu.thresholds[options] - basket, 0.0)
        if self.redeem is None:
            lifted = np.maximum(lift, 0.0)
        else:
            lifted = p * self.redeem[rows, options]
        gmv = lift * basket + lifted * stretch
        worth = self.menu.conversion_values[options]
        if np.isnan(worth).all():
            return gmv
        # A treatment whose conversions are worth their own value: p * v - p0 * basket.
        return np.where(np.isnan(worth), gmv, p * worth - self.p0[rows] * basket)


def build_problem(
    user_id: np.ndarray,
    p0: np.ndarray,
    p: np.ndarray,
    menu: Menu,
    *,
    objective: str = "conversions",
    sms_cost: float = 0.05,
    margin_rate: float = 0.3,
    basket: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
    segment: np.ndarray | None = None,
    redeem: np.ndarray | None = None,
) -> CampaignProblem:
    """Assemble a :class:`CampaignProblem` from scores.

    Parameters
    ----------
    user_id : ndarray of int, shape (n,)
    p0 : ndarray, shape (n,)
        Natural conversion probabilities.
    p : ndarray, shape (n, k)
        Coupon conversion probabilities, columns in menu order.
    menu : Menu
        Face values, thresholds, redemption shares.
    objective : Objective or {"conversions", "gmv", "profit"}
    sms_cost : float
        Money per message of the treatments without a ``send_cost`` of their own.
    margin_rate : float
        Gross margin share of GMV (profit objective).
    basket : ndarray, shape (n,), optional
        Average order value (money); required for ``gmv`` and ``profit``.
    excluded : ndarray of bool, shape (n,), optional
        Users who must get nothing (opted out).
    segment : array-like, shape (n,), optional
        Segment label per user (any values; compared as text) for segment-share constraints.
    redeem : ndarray, shape (n, k), optional
        P(redeem | converted holding coupon k) from a redemption model; the expected cost is
        then ``sms_cost + p_ik * redeem_ik * f_k``. Default: the menu's redemption shares.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"must be one of {', '.join(OBJECTIVES)}", key="objective")
    objective = Objective(objective)
    p0 = np.asarray(p0, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n = p0.size
    if p.shape != (n, len(menu)):
        raise InputError(
            f"coupon probabilities have shape {p.shape}; expected ({n}, {len(menu)}) for the menu"
        )
    if basket is None:
        if objective != "conversions":
            raise InputError(f"the {objective} objective needs each user's average order value")
        basket = np.ones(n)
    basket = np.nan_to_num(np.asarray(basket, dtype=np.float64), nan=0.0)
    send = menu.send_costs(sms_cost)[None, :]
    per_conversion = menu.conversion_costs[None, :]
    if redeem is None:
        paid = (menu.redemption_shares * menu.face_values)[None, :] + per_conversion
        cost = send + p * paid
    else:
        redeem = np.asarray(redeem, dtype=np.float32)
        if redeem.shape != p.shape:
            raise InputError(
                f"redemption probabilities have shape {redeem.shape}; expected {p.shape}"
            )
        cost = send + p * (redeem * menu.face_values[None, :] + per_conversion)
    problem = CampaignProblem(
        user_id=np.asarray(user_id, dtype=np.int64),
        p0=p0,
        p=p,
        value=np.empty_like(p),
        cost=cost,
        eligible=np.ones(p.shape, dtype=bool),
        basket=basket,
        menu=menu,
        objective=objective,
        sms_cost=float(sms_cost),
        margin_rate=float(margin_rate),
        redeem=redeem,
    )
    if objective == "conversions":
        problem.value = problem.uplift()
    elif objective == "gmv":
        problem.value = problem.gmv_uplift()
    else:
        problem.value = margin_rate * problem.gmv_uplift() - cost
    if segment is not None:
        labels = np.asarray(segment).astype(str)
        if labels.shape != (n,):
            raise InputError(f"segment labels have shape {labels.shape}; expected ({n},)")
        codes, names = pd.factorize(labels, sort=True)
        problem.segment = codes.astype(np.int32)
        problem.segment_names = tuple(str(x) for x in names)
    if excluded is not None:
        problem.eligible &= ~np.asarray(excluded, dtype=bool)[:, None]
    return problem


def concat_problems(parts: list[CampaignProblem]) -> CampaignProblem:
    """The users of several problems of the same campaign as one (segment codes re-coded).

    Parameters
    ----------
    parts : list of CampaignProblem
        At least one; the same menu, objective and costs (the first one's are kept).
    """
    first = parts[0]
    if len(parts) == 1:
        return first

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(q, name) for q in parts])

    out = replace(
        first,
        user_id=joined("user_id"), p0=joined("p0"), p=joined("p"), value=joined("value"),
        cost=joined("cost"), eligible=joined("eligible"), basket=joined("basket"),
        redeem=None if first.redeem is None else joined("redeem"),
    )  # fmt: skip
    if first.segment is not None:
        labels = np.concatenate([q.segment_labels() for q in parts])
        codes, names = pd.factorize(labels.astype(str), sort=True)
        out.segment, out.segment_names = codes.astype(np.int32), tuple(str(x) for x in names)
    return out
