"""Conversion models fine-tuned for one campaign's allocation (decision-focused learning).

:func:`decision_focused_models` takes trained shared-trunk models, the randomized log they were
trained on and a campaign (its candidates and request), finds the budget's dual price from the
two-stage optimal plan, and fine-tunes the network for the value of the allocation at that
price (:func:`optimizer.models.decision_focused.fine_tune_allocation`). The planner's value and
cost of every option are passed to the fine-tuning as exact affine functions of the
probabilities, read off the campaign's own problem builder, so the loss prices coupons exactly
as the plan will.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from optimizer.choices import Objective, Policy
from optimizer.errors import InputError
from optimizer.io.campaign_log import training_rows, user_split
from optimizer.io.contract import coupon_column
from optimizer.io.menu import NO_COUPON
from optimizer.models.conversion import ConversionModels
from optimizer.models.decision_focused import AllocationTerms, fine_tune_allocation
from optimizer.planning.campaign import plan_campaign
from optimizer.planning.candidates import Candidates
from optimizer.planning.request import PlanningRequest
from optimizer.solvers.hull import frontier

__all__ = ["decision_focused_models"]


def _terms(
    request: PlanningRequest, scores: pd.DataFrame, users: pd.DataFrame, menu
) -> AllocationTerms:
    """Value and cost per row and option as affine functions of (p0, p_k): three evaluations."""
    names = [coupon_column(n) for n in menu.names]

    def problem(p0: float, p: float):
        s = scores.copy()
        s["p_natural"] = p0
        s[names] = p
        return request.problem(Candidates(scores=s, users=users, menu=menu))

    base, coupon, natural = problem(0.0, 0.0), problem(0.0, 1.0), problem(1.0, 0.0)
    return AllocationTerms(
        a=base.value,
        b=coupon.value - base.value,
        c=natural.value - base.value,
        d=base.cost,
        e=coupon.cost - base.cost,
    )


def decision_focused_models(
    models: ConversionModels,
    log: pd.DataFrame,
    users: pd.DataFrame,
    candidates: Candidates,
    request: PlanningRequest,
    *,
    weight: float = 1.0,
    epochs: int = 5,
    temperature: float = 1.0,
    learning_rate: float = 2e-4,
) -> ConversionModels:
    """A copy of ``models`` whose network is fine-tuned for ``request``'s allocation.

    Parameters
    ----------
    models : ConversionModels
        Fitted, ``architecture="shared_trunk"`` with the shared head.
    log, users : DataFrame
        The validated campaign log and user table the models were trained on: the fine-tuning
        uses the same randomized training rows, the models' held-out customers pick the epoch.
        The log needs ``discount`` (money paid on redemption) and, for the gmv and profit
        objectives, ``order_value``.
    candidates : Candidates
        The campaign's candidates, scored by ``models``: the two-stage optimal plan at the
        request's budget gives the dual price.
    request : PlanningRequest
        The campaign (objective, costs, budget, constraints).
    weight, epochs, temperature, learning_rate
        As :func:`~optimizer.models.decision_focused.fine_tune_allocation`; the models' own
        held-out customers (``test_share``, never trained on) pick the epoch, the two-stage
        network included.

    Returns
    -------
    ConversionModels
        Its ``summary_["decision_focused"]`` holds the price, the settings and the per-epoch
        history; ``models`` is unchanged.
    """
    if models.architecture != "shared_trunk":
        raise InputError("decision-focused fine-tuning needs the shared_trunk architecture",
                         key="architecture")  # fmt: skip
    if models.ensemble != 1 or models.uncertainty != 0:
        raise InputError(
            "decision-focused fine-tuning tunes one network: ensemble 1 and uncertainty 0",
            key="ensemble",
        )
    menu = models.menu_
    plan = plan_campaign(candidates, replace(request, policies=(Policy.OPTIMAL,)))
    optimal = plan[Policy.OPTIMAL]
    # The dual price of the allocation the plan makes: at its planning budget (the overrun
    # rule plans below the budget), in the budget-only relaxation.
    planning = float(optimal.details.get("planning_budget", optimal.budget))
    price = float(frontier(optimal.problem, np.array([planning]))["marginal_return"][0])
    rows = training_rows(log, users, segment=models.segment, segment_column=models.segment_column)
    # The models' held-out customers pick the epoch: neither network trained on them.
    held_out = user_split(rows["user_id"].to_numpy(), models.test_share, models.random_state)
    objective = Objective(request.objective)
    needed = ["discount"] + (["order_value"] if objective != Objective.CONVERSIONS else [])
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise InputError(f"the log has no {missing[0]!r} column", key="log")
    scores = models.predict(rows, menu)
    if objective != Objective.CONVERSIONS and models.redemption_ is None:
        raise InputError(
            f"the {objective} objective needs a redemption model for decision-focused "
            "fine-tuning (its value is then linear in the probabilities)",
            key="objective",
        )
    terms = _terms(request, scores, rows, menu)
    coupon = rows["denomination"].astype(str).to_numpy(dtype=object)
    k = pd.Index(menu.names).get_indexer(coupon)
    treated = k >= 0
    y = rows["converted"].to_numpy(np.float64)
    send = np.where(treated, menu.send_costs(request.sms_cost)[k], 0.0)
    per_conversion = np.where(treated, menu.conversion_costs[k], 0.0)
    cost = send + rows["discount"].to_numpy(np.float64) + per_conversion * y
    if objective == Objective.CONVERSIONS:
        reward = y
    elif objective == Objective.GMV:
        reward = rows["order_value"].to_numpy(np.float64)
    else:
        reward = request.margin_rate * rows["order_value"].to_numpy(np.float64) - cost
    if "propensity" in rows.columns:
        propensity = rows["propensity"].to_numpy(np.float64)
    else:  # a randomized design: each arm's share of the rows
        shares = pd.Series(coupon).map(pd.Series(coupon).value_counts(normalize=True))
        propensity = shares.to_numpy(np.float64)
    tuned, history = fine_tune_allocation(
        models.coupon_,
        rows,
        coupon,
        y,
        reward - price * cost,
        terms,
        price=price,
        propensity=propensity,
        held_out=held_out,
        weight=weight,
        epochs=epochs,
        temperature=temperature,
        learning_rate=learning_rate,
        random_state=models.random_state,
    )
    out = copy.copy(models)
    out.coupon_ = tuned
    info: dict[str, Any] = {
        "price": price,
        "objective": str(objective),
        "budget": float(optimal.budget),
        "planning_budget": planning,
        "weight": weight,
        "epochs": epochs,
        "temperature": temperature,
        "learning_rate": learning_rate,
        "best_epoch": int(history["best_epoch"][0]),
        "rows": int((~held_out).sum()),
        "held_out_rows": int(held_out.sum()),
        "untreated_rows": int((coupon == NO_COUPON).sum()),
        "history": history,
    }
    out.summary_ = {**models.summary_, "decision_focused": info}
    return out
