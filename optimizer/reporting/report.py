"""The campaign report: one self-contained HTML page for a marketing manager.

The campaign, the optimal plan, every baseline, the budget frontier and, when held-out rows are
given, the models' quality. :func:`plan_sections` is shared with the simulator's scenario
report, which adds the world's facts and a simulated A/B test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimizer.choices import Policy
from optimizer.evaluation.quality import Evaluation
from optimizer.planning.campaign import plan_campaign
from optimizer.planning.candidates import Candidates
from optimizer.planning.request import PlanningRequest
from optimizer.planning.whatif import Grid, plan_grid
from optimizer.progress import Progress, report
from optimizer.reporting.page import Section, render_page
from optimizer.reporting.sections import (
    baselines_section,
    campaign_section,
    frontier_section,
    model_section,
    plan_section,
)

__all__ = ["plan_sections", "campaign_report"]


def plan_sections(
    request: PlanningRequest,
    candidates: Candidates,
    *,
    facts: Sequence[tuple[str, str]] = (),
    sweep_points: int = 8,
    progress: Progress | None = None,
) -> list[Section]:
    """The campaign, the optimal plan, the baselines and the budget frontier.

    Parameters
    ----------
    request : PlanningRequest
        Budget, objective, constraints; every policy is compared, the optimal plan first.
    candidates : Candidates
    facts : sequence of (str, str)
        Extra lines of the campaign section (e.g. the population).
    sweep_points : int
        Budgets of the frontier, from 10% to 200% of the request's budget.
    progress : callable, optional
        Receives a :class:`~optimizer.progress.Step` as each stage begins.
    """
    campaign = request.campaign
    currency = campaign.currency
    report(progress, "planning every policy")
    plans = plan_campaign(candidates, request, policies=tuple(Policy))
    sections = [
        campaign_section(request, len(candidates), facts=facts),
        plan_section(plans[Policy.OPTIMAL], currency),
        baselines_section(plans, request),
    ]
    report(progress, "sweeping the budget")
    budget = request.budget
    grid = Grid(
        budget=np.linspace(0.1 * budget, 2 * budget, sweep_points).tolist(),
        menu=[("campaign", campaign.menu)],
        sms_cost=[request.sms_cost],
        margin_rate=[request.margin_rate],
        segments=[tuple(campaign.targeting.segments)],
    )
    shown = (Policy.OPTIMAL, Policy.MANUAL, Policy.V2)
    frontier = plan_grid(request, grid, lambda _context: candidates, policies=shown)
    sections.append(frontier_section(frontier, currency))
    return sections


def campaign_report(
    request: PlanningRequest,
    candidates: Candidates,
    *,
    evaluation: Evaluation | None = None,
    evaluation_note: str = "On held-out randomized customers the models never saw.",
    facts: Sequence[tuple[str, str]] = (),
    progress: Progress | None = None,
) -> str:
    """The HTML page (a string) of ``request`` planned on scored ``candidates``.

    Parameters
    ----------
    request : PlanningRequest
    candidates : Candidates
        The scored customers (e.g. from a team's own scores file).
    evaluation : Evaluation, optional
        The models' quality on held-out log rows (:func:`optimizer.evaluation.evaluate_scores`).
    evaluation_note : str
        Which rows the evaluation used.
    facts : sequence of (str, str)
        Extra lines of the campaign section.
    progress : callable, optional
    """
    sections = plan_sections(request, candidates, facts=facts, progress=progress)
    if evaluation is not None:
        sections.append(model_section(evaluation, evaluation_note))
    campaign = request.campaign
    return render_page(
        f"Coupon campaign report: {campaign.name}",
        campaign.description,
        sections,
        footer="Made by couponopt. Expected figures are under the models' probabilities.",
    )
