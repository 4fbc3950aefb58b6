"""Plan a campaign: every requested policy on the same candidates, each plan checked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from optimizer.choices import MatchOn, Policy
from optimizer.errors import InputError
from optimizer.planning.candidates import Candidates
from optimizer.planning.plan import Plan, check_plan
from optimizer.planning.policies import make_plan
from optimizer.planning.request import PlanningRequest
from optimizer.solvers.hull import budget_for_return, frontier

__all__ = ["plan_campaign"]


def plan_campaign(
    candidates: Candidates,
    request: PlanningRequest,
    *,
    budget: float | None = None,
    policies: Sequence[str] | None = None,
) -> dict[str, Plan]:
    """Plans of the request's policies at the same budget, each checked before it is returned.

    ``request.match`` (baseline policies) makes the optimal plan a like-for-like comparison with
    those policies' plans on the same users at the same budget. ``match_on="value"``: it spends
    only the least budget at which its expected objective value reaches the best of them (see
    :attr:`~optimizer.planning.policies.PolicySettings.target`): the baseline's result, as
    cheaply as possible. ``match_on="spend"``: its budget is the largest of their expected
    costs: what the baseline's money buys when it is personalised.
    ``match_on="spend_conversions"``: that budget, and at least the most expected incremental
    conversions among them (see
    :attr:`~optimizer.planning.policies.PolicySettings.min_conversions`); with the ``gmv``
    objective, the highest expected ROI at no more spend and no fewer conversions than the
    baseline.

    Parameters
    ----------
    candidates : Candidates
        The users to plan for (:meth:`PlanningRequest.candidates`).
    request : PlanningRequest
    budget : float, optional
        Money; default the request's (or, with ``request.marginal_return``, the budget at which
        money stops returning that much: :func:`optimizer.solvers.hull.budget_for_return`).
    policies : sequence of str, optional
        Default the request's.

    Returns
    -------
    dict of str to Plan
        In the order of the policies.
    """
    if len(candidates) == 0:
        raise InputError("no candidate users to plan for", key="candidates")
    policies = tuple(request.policies if policies is None else policies)
    settings = request.settings()
    problem = request.problem(candidates)
    if budget is None and request.marginal_return is not None:
        budget = budget_for_return(problem, request.marginal_return)  # a flexible budget
    budget = request.budget if budget is None else float(budget)
    settings.constraints.validate(problem)
    match = request.match if Policy.OPTIMAL in policies else ()
    plans: dict[str, Plan] = {}
    # Baselines first: the optimal plan's target comes from them.
    for policy in sorted(dict.fromkeys((*policies, *match)), key=lambda p: p == Policy.OPTIMAL):
        chosen, amount = settings, budget
        if policy == Policy.OPTIMAL and match:
            if request.match_on == MatchOn.VALUE:
                chosen = replace(settings, target=max(plans[m].value for m in match))
            else:
                amount = min(budget, max(float(plans[m].expected_cost.sum()) for m in match))
            if request.match_on == MatchOn.SPEND_CONVERSIONS:
                floor = max(float(plans[m].expected_uplift.sum()) for m in match)
                chosen = replace(settings, min_conversions=floor)
        plan = make_plan(policy, problem, amount, chosen, users=candidates.users, cap=budget)
        if policy == Policy.OPTIMAL and match:
            plan.details["match"] = {
                "policies": [str(m) for m in match],
                "on": str(request.match_on),
            }
        check_plan(plan, settings.constraints)
        if policy == Policy.OPTIMAL:  # the budget's dual price in the budget-only LP
            plan.details["marginal_return"] = float(
                frontier(problem, np.array([plan.budget]))["marginal_return"][0]
            )
        plans[str(policy)] = plan
    return {str(policy): plans[str(policy)] for policy in policies}
