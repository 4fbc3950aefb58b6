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
from optimizer.planning.plan import Plan
from optimizer.planning.request import PlanningRequest
from optimizer.planning.valuation import CampaignLog, expected_and_estimated, value_plans
from optimizer.planning.whatif import Grid, plan_grid
from optimizer.progress import Progress, report
from optimizer.reporting.page import Note, Section, render_page
from optimizer.reporting.sections import (
    baselines_section,
    campaign_section,
    frontier_section,
    model_section,
    plan_section,
)
from optimizer.reporting.valuation import differences_table, expected_table

__all__ = ["plan_sections", "campaign_report", "log_section"]


def log_section(
    request: PlanningRequest, plans: dict[str, Plan], log: CampaignLog, bootstrap: int = 100
) -> Section:
    """Every plan valued on the randomized log, beside what the models expected."""
    values = value_plans(
        request, {name: plan.to_frame() for name, plan in plans.items()}, log,
        bootstrap=bootstrap,
    )  # fmt: skip
    currency = request.campaign.currency
    blocks: list = [
        Note(
            "What an A/B test would have said, estimated from the randomized log on "
            f"{values.rows_note}. The doubly robust estimate (cross-fitted outcome models) with "
            "its 95% interval stands beside each figure the models expected: a ratio above 1 "
            "is a promise the log does not confirm."
        ),
        expected_table(expected_and_estimated(plans, values), currency, "dr", values.rows_note),
    ]
    differences = differences_table(values, currency)
    if differences is not None:
        blocks.append(differences)
    return Section("What the log says", blocks)


def plan_sections(
    request: PlanningRequest,
    candidates: Candidates,
    *,
    facts: Sequence[tuple[str, str]] = (),
    sweep_points: int = 8,
    log: CampaignLog | None = None,
    progress: Progress | None = None,
) -> list[Section]:
    """The campaign, the optimal plan, the baselines, the log's verdict and the budget frontier.

    Parameters
    ----------
    request : PlanningRequest
        Budget, objective, constraints; every policy is compared, the optimal plan first.
    candidates : Candidates
    facts : sequence of (str, str)
        Extra lines of the campaign section (e.g. the population).
    sweep_points : int
        Budgets of the frontier, from 10% to 200% of the request's budget.
    log : CampaignLog, optional
        A randomized log to value every plan on (:func:`log_section`).
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
    if log is not None:
        report(progress, "valuing the plans on the log")
        sections.append(log_section(request, plans, log))
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
    log: CampaignLog | None = None,
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
    log : CampaignLog, optional
        A randomized log to value every plan on (held out from the models).
    progress : callable, optional
    """
    sections = plan_sections(request, candidates, facts=facts, log=log, progress=progress)
    if evaluation is not None:
        sections.append(model_section(evaluation, evaluation_note))
    campaign = request.campaign
    return render_page(
        f"Coupon campaign report: {campaign.name}",
        campaign.description,
        sections,
        footer="Made by couponopt. Expected figures are under the models' probabilities.",
    )
