"""The synthetic world's campaign log, ready to value plans on (as a team's own log would be).

The world's randomized campaign gave each sampled customer no coupon with probability
``history.holdout_share`` and otherwise a denomination drawn uniformly, so every row's
propensities are known by design; its manual campaign is left out (its assignment is a rule).
The models behind the plans held out a hash split of customers: only those are valued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import InputError
from optimizer.evaluation import OfflineValues
from optimizer.models.conversion import ConversionModels
from optimizer.planning.campaign import plan_campaign
from optimizer.planning.plan import Plan
from optimizer.planning.request import PlanningRequest
from optimizer.planning.selection import ArchitectureChoice, compare_architectures
from optimizer.planning.valuation import (
    CampaignLog,
    campaign_log_of,
    crossfit_plans,
    expected_and_estimated,
    plan_with_models,
    value_plans,
)
from optimizer.progress import Progress
from simulator.scenario import Scenario
from simulator.workflows.model_cache import ScoredScenario, score_scenario
from simulator.world.generation import world_campaign

__all__ = ["world_log", "plans_and_log", "log_values", "architecture_values"]


def world_log(scenario: Scenario, scored: ScoredScenario) -> CampaignLog:
    """The world's campaign log, its customers' features and its design, split like the models."""
    if scored.history is None:
        raise ValueError("the scored scenario carries no campaign log")
    data = world_campaign(scenario).data
    assert data is not None and data.log is not None
    design = data.log.propensity
    propensity = dict(design.arms) if not isinstance(design, str) and design.arms else None
    log = CampaignLog(
        scored.history,
        scored.users,
        tuple(scored.models.features),
        "the world's campaign log (history.parquet)",
        propensity,
    )
    return log.with_split(scored.models)


def plans_and_log(
    request: PlanningRequest,
    *,
    base: str | Path | None = None,
    models_dir: str | Path | None = None,
    plan: bool = True,
    log: str | Path | None = None,
    users: str | Path | None = None,
    crossfit: int | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Plan], CampaignLog]:
    """The request's plans (when ``plan``) and the campaign log to value them on.

    A campaign without ``[data]`` plays on its scenario's world: the world's log and its cached
    models. A team's own data needs the models behind the plans (``models_dir``) to plan the
    request's policies here; their held-out customers are the ones valued, or with ``crossfit``
    folds every customer (:func:`optimizer.planning.valuation.crossfit_plans`: models with the
    same parameters trained once per fold).

    Raises
    ------
    InputError
        Files given for the synthetic world, or policies to plan on own data without models.
    """
    campaign: Any = request.campaign
    if crossfit is not None and (campaign.data is None or not models_dir or not plan):
        raise InputError(
            "cross-fitting trains the models of your own data once per fold: it needs the "
            "campaign's [data], the models whose parameters to reuse, and policies to plan",
            key="crossfit",
        )
    if campaign.data is None:
        if models_dir or log or users:
            raise InputError(
                "the synthetic world has its own log and models; models, log and users files "
                "go with your own data",
                key="data",
            )
        scored = score_scenario(campaign, progress=progress)
        known = request.with_models(scored.models)
        plans = plan_campaign(known.candidates(scored.scores, scored.users), known) if plan else {}
        return plans, world_log(campaign, scored)
    models = ConversionModels.load(models_dir) if models_dir else None
    if plan and models is None:
        raise InputError(
            "planning policies on your own data needs their models (or give plan files)",
            key="models",
        )
    if crossfit is not None and models is not None:
        return crossfit_plans(
            request, models, base, folds=crossfit, users_path=users, log_path=log,
            progress=progress,
        )  # fmt: skip
    plans = plan_with_models(request, models, base, users) if plan and models else {}
    found = campaign_log_of(campaign, base, models=models, log_path=log, users_path=users)
    return plans, found


def log_values(
    request: PlanningRequest,
    plans: dict[str, Plan],
    scored: ScoredScenario | None = None,
    base: str | Path | None = None,
) -> tuple[OfflineValues, pd.DataFrame]:
    """Plans valued on the randomized log beside their expected figures.

    The world's log (held-out customers of its models) when ``scored`` is given, else the
    campaign's own ``[data]`` log (every randomized row: no models are known here, and the
    result says so). Influence-function intervals only.

    Returns
    -------
    values : OfflineValues
    side_by_side : DataFrame
        :func:`optimizer.planning.valuation.expected_and_estimated` of the plans.
    """
    if scored is not None:
        found = world_log(request.campaign, scored)
    else:
        found = campaign_log_of(request.campaign, base)
    frames = {name: plan.to_frame() for name, plan in plans.items()}
    values = value_plans(request, frames, found, bootstrap=0)
    return values, expected_and_estimated(plans, values)


def architecture_values(
    request: PlanningRequest,
    architectures: tuple[str, ...],
    *,
    models_dir: str | Path | None,
    base: str | Path | None = None,
    folds: int = 5,
    log: str | Path | None = None,
    users: str | Path | None = None,
    progress: Progress | None = None,
    **valuing: Any,
) -> ArchitectureChoice:
    """Each architecture's cross-fitted optimal plan valued on the campaign's own log.

    The models in ``models_dir`` give every parameter but the architecture; ``valuing`` are
    :func:`optimizer.planning.compare_architectures` keywords (``estimators``, ``bootstrap``,
    ``clip``, ``outcome_model``, ``unrandomized``).

    Raises
    ------
    InputError
        No ``[data]`` in the campaign or no models to take the parameters from.
    """
    if request.campaign.data is None or not models_dir:
        raise InputError(
            "comparing architectures cross-fits models on your own data: it needs the "
            "campaign's [data] and the models whose other parameters to reuse",
            key="architectures",
        )
    models = ConversionModels.load(models_dir)
    return compare_architectures(
        request, models, architectures, base, folds=folds, users_path=users, log_path=log,
        progress=progress, **valuing,
    )  # fmt: skip
