"""Plan a campaign from scores: build the problem, run the policies, check every plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.menu import Menu
from optimizer.plan import Plan, check_plan
from optimizer.policies import POLICIES, PolicySettings, make_plan
from optimizer.problem import CampaignProblem, build_problem
from optimizer.schema import coupon_column, redeem_column

__all__ = ["CampaignInputs", "campaign_problem", "plan_campaign", "align_scores", "MATCH_ON"]

#: What a matched optimal plan equals its baselines on: objective value or expected spend.
MATCH_ON: tuple[str, ...] = ("value", "spend", "spend_conversions")


@dataclass
class CampaignInputs:
    """Candidates of one campaign, aligned row by row.

    Attributes
    ----------
    scores : DataFrame, shape (n, 2 + k) or (n, 2 + 2k)
        ``user_id``, ``p_natural``, ``p_coupon__<name>`` in menu order, and the optional
        ``p_redeem__<name>`` of a redemption model.
    users : DataFrame, shape (n, 16)
        The same users' rows of the user table (features for manual ranking, stages).
    menu : Menu
    excluded : ndarray of bool, shape (n,), optional
        Users who must get nothing (opted out); they stay in every plan with no coupon.
    """

    scores: pd.DataFrame
    users: pd.DataFrame
    menu: Menu
    excluded: np.ndarray | None = None


def align_scores(
    scores: pd.DataFrame,
    users: pd.DataFrame,
    menu: Menu,
    *,
    stages: Sequence[str] | None = None,
    exclude: np.ndarray | None = None,
) -> CampaignInputs:
    """Join scores with user rows; keep the given lifecycle stages; mark excluded ids.

    Raises
    ------
    InputError
        A scored user is missing from the user table, or no candidate is left.
    """
    merged = scores.merge(users, on="user_id", how="left", indicator=True, validate="one_to_one")
    missing = merged["_merge"].to_numpy() == "left_only"
    if missing.any():
        first = merged.loc[missing, "user_id"].iloc[0]
        raise InputError(
            f"{int(missing.sum())} scored users are not in the user table (first: {first})",
            source="--users",
        )
    keep = np.ones(len(merged), dtype=bool)
    if stages:
        keep &= merged["lifecycle_stage"].isin(list(stages)).to_numpy()
    merged = merged[keep].reset_index(drop=True)
    excluded = None
    if exclude is not None:
        excluded = merged["user_id"].isin(exclude).to_numpy()
    score_cols = ["user_id", "p_natural", *(coupon_column(n) for n in menu.names)]
    redeem_cols = [redeem_column(n) for n in menu.names]
    if all(c in scores.columns for c in redeem_cols):
        score_cols += redeem_cols
    return CampaignInputs(
        scores=merged[score_cols],
        users=merged[[c for c in users.columns]],
        menu=menu,
        excluded=excluded,
    )


def redemption_matrix(scores: pd.DataFrame, menu: Menu) -> np.ndarray | None:
    """The scores' ``p_redeem__<name>`` columns as an (n, k) float32 matrix, or None."""
    cols = [redeem_column(n) for n in menu.names]
    if not all(c in scores.columns for c in cols):
        return None
    return scores[cols].to_numpy(dtype=np.float32)


def _segment_labels(users: pd.DataFrame, column: str) -> np.ndarray:
    """Segment label per candidate (text), from a column of the user table."""
    if column not in users.columns:
        raise InputError(
            f"segment column {column!r} is not in the user table", source="--segment-column"
        )
    labels = users[column]
    return labels.astype(str).where(labels.notna(), "missing").to_numpy()


def campaign_problem(
    inputs: CampaignInputs,
    *,
    objective: str = "conversions",
    sms_cost: float = 0.05,
    margin_rate: float = 0.3,
    segment_column: str = "lifecycle_stage",
) -> CampaignProblem:
    """The optimisation problem of ``inputs``.

    Values, costs (priced with the redemption model when the scores carry it), baskets,
    exclusions and the segment labels of ``segment_column``.
    """
    menu = inputs.menu
    scores = inputs.scores
    return build_problem(
        scores["user_id"].to_numpy(),
        scores["p_natural"].to_numpy(),
        scores[[coupon_column(n) for n in menu.names]].to_numpy(),
        menu,
        objective=objective,
        sms_cost=sms_cost,
        margin_rate=margin_rate,
        basket=inputs.users["avg_order_value"].to_numpy(dtype=np.float64),
        excluded=inputs.excluded,
        segment=_segment_labels(inputs.users, segment_column),
        redeem=redemption_matrix(scores, menu),
    )


def plan_campaign(
    inputs: CampaignInputs,
    budget: float,
    policies: Sequence[str],
    settings: PolicySettings,
    *,
    objective: str = "conversions",
    sms_cost: float = 0.05,
    margin_rate: float = 0.3,
    segment_column: str = "lifecycle_stage",
    match: Sequence[str] = (),
    match_on: str = "value",
) -> dict[str, Plan]:
    """Plans of every requested policy at the same budget, each checked before it is returned.

    ``segment_column`` names the user-table column whose labels the segment-share constraints
    of ``settings.constraints`` refer to.

    ``match`` (baseline policies) makes the optimal plan a like-for-like comparison with those
    policies' plans on the same users at the same budget. ``match_on="value"``: it spends only
    the least budget at which its expected objective value reaches the best of them (see
    :attr:`~optimizer.policies.PolicySettings.target`): the baseline's result, as cheaply as
    possible. ``match_on="spend"``: its budget is the largest of their expected costs: what the
    baseline's money buys when it is personalised. ``match_on="spend_conversions"``: that
    budget, and at least the most expected incremental conversions among them (see
    :attr:`~optimizer.policies.PolicySettings.min_conversions`); with the ``gmv`` objective,
    the highest expected ROI at no more spend and no fewer conversions than the baseline.

    Returns
    -------
    dict of str to Plan
        In the order of ``policies``.
    """
    problem = campaign_problem(
        inputs,
        objective=objective,
        sms_cost=sms_cost,
        margin_rate=margin_rate,
        segment_column=segment_column,
    )
    settings.constraints.validate(problem)
    match = tuple(match)
    bad = [m for m in match if m not in POLICIES or m == "optimal"]
    if bad:
        raise InputError(
            f"cannot match {bad[0]!r}: match one of {', '.join(POLICIES[1:])}", source="--match"
        )
    if match_on not in MATCH_ON:
        raise InputError(f"match_on must be one of {', '.join(MATCH_ON)}", source="--match-on")
    plans: dict[str, Plan] = {}
    # Baselines first: the optimal plan's target comes from them.
    for policy in sorted(dict.fromkeys((*policies, *match)), key=lambda p: p == "optimal"):
        chosen, amount = settings, budget
        if policy == "optimal" and match:
            if match_on == "value":
                chosen = replace(settings, target=max(plans[m].value for m in match))
            else:
                amount = min(budget, max(float(plans[m].expected_cost.sum()) for m in match))
            if match_on == "spend_conversions":
                floor = max(float(plans[m].expected_uplift.sum()) for m in match)
                chosen = replace(settings, min_conversions=floor)
        plan = make_plan(policy, problem, amount, chosen, users=inputs.users)
        if policy == "optimal" and match:
            plan.details["match"] = {"policies": list(match), "on": match_on}
        check_plan(plan, settings.constraints)
        plans[policy] = plan
    return {policy: plans[policy] for policy in policies}
