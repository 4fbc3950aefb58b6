"""The campaign report of a scenario: one self-contained HTML page for a marketing manager.

The scenario and its world, the plan, the baselines, the frontier, model quality on the held-out
randomized customers and, on request, the simulated A/B test: the optimizer's report sections
(:mod:`optimizer.reporting`) with the world's facts and the simulator's results added.
"""

from __future__ import annotations

from dataclasses import replace

from optimizer.choices import Policy, Solver
from optimizer.evaluation.quality import evaluate_scores
from optimizer.io.campaign_log import training_rows, user_split
from optimizer.planning.request import PlanningRequest
from optimizer.progress import Progress, report
from optimizer.reporting.page import Note, Section, render_page
from optimizer.reporting.report import plan_sections
from optimizer.reporting.sections import model_section
from simulator.choices import Design
from simulator.experiment.ab import run_experiment
from simulator.scenario import Scenario
from simulator.tables import experiment_table
from simulator.workflows.model_cache import ScoredScenario
from simulator.workflows.valuation import world_log

__all__ = ["build_report", "REPORT_METRICS"]

#: Metrics of the simulated A/B test shown in the report.
REPORT_METRICS = (
    "sent",
    "conversions",
    "incremental_conversions",
    "campaign_cost",
    "roi",
    "incremental_profit",
    "realised_spend",
)


def _model_section(scored: ScoredScenario) -> Section | None:
    """Model quality on the randomized customers the models never saw."""
    models = scored.models
    if scored.history is None:
        return None
    rows = training_rows(scored.history, scored.users, segment=models.segment)
    test = user_split(rows["user_id"].to_numpy(), models.test_share, models.random_state)
    held_out = rows[test].reset_index(drop=True)
    evaluation = evaluate_scores(held_out, models.predict(held_out), models.menu_)
    return model_section(
        evaluation,
        "On held-out randomized customers the models never saw. The natural model's coverage "
        "curve and precision-recall curve give the article's threshold:",
    )


def build_report(
    scenario: Scenario,
    scored: ScoredScenario,
    request: PlanningRequest,
    *,
    sweep_points: int = 8,
    simulate: bool = False,
    replications: int = 3,
    progress: Progress | None = None,
) -> str:
    """The HTML page (a string) of ``request`` planned on ``scenario``'s world.

    Parameters
    ----------
    scenario : Scenario
    scored : ScoredScenario
        World, models and scores (:func:`simulator.workflows.model_cache.score_scenario`).
    request : PlanningRequest
        Budget, objective, constraints and knobs; every policy is compared, the optimal
        plan first.
    sweep_points : int
        Budgets of the frontier, from 10% to 200% of the request's budget.
    simulate : bool
        Add the simulated A/B test of every policy (paired design).
    replications : int
        Its replications.
    progress : callable, optional
        Receives a :class:`~optimizer.progress.Step` as each stage begins.
    """
    request = request.with_models(scored.models)
    policies = tuple(Policy)  # every policy, the optimal one first
    candidates = request.candidates(scored.scores, scored.users)
    currency = scenario.currency
    facts = [
        ("population", f"{scenario.population.users:,} customers"),
        (
            "campaign",
            f"{scenario.campaign.window_days:g}-day window, coupons valid "
            f"{scenario.campaign.validity_days:g} days",
        ),
    ]
    log = world_log(scenario, scored) if scored.history is not None else None
    sections = plan_sections(
        request, candidates, facts=facts, sweep_points=sweep_points, log=log, progress=progress
    )
    if simulate:
        if scored.truth is None:
            raise ValueError("the simulated A/B test needs the world's truth")
        report(progress, "simulating the A/B test")
        experiment = run_experiment(
            scenario,
            candidates,
            scored.truth,
            replace(request, policies=policies, solver=Solver.DUAL),
            replications=replications,
            design=Design.PAIRED,
        )
        sections.append(
            Section(
                "Simulated A/B test",
                [
                    Note(
                        "Every policy played on the scenario's ground-truth world by the "
                        "discrete-event simulator (SMS gateway, coupon validity, purchases, "
                        "redemptions paid from the budget), paired design, mean [95% CI] over "
                        f"{replications} replications, money in {currency}. Incremental "
                        "figures are against the untreated holdout."
                    ),
                    experiment_table(experiment, currency, REPORT_METRICS),
                ],
            )
        )
    report(progress, "evaluating the models")
    model = _model_section(scored)
    if model is not None:
        sections.append(model)
    return render_page(
        f"Coupon campaign report: {scenario.name}",
        scenario.description,
        sections,
        footer="Made by couponopt. Expected figures are under the models' probabilities; "
        "simulated figures (when shown) come from the scenario's ground-truth world.",
    )
