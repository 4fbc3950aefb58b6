"""Model selection by cross-validated policy value at the campaign's budget.

No conversion model wins everywhere: on the public randomized sets and the synthetic worlds the
networks and the boosted meta-learners take turns, by margins often inside the noise. So the
choice is measured on the data at hand, by what matters: for each candidate architecture, the
optimal plan at the request's budget and objective is made from out-of-fold scores (every
customer scored by models trained without them, :func:`crossfit_plans`), and all these plans are
valued on the same randomized log rows (:func:`value_plans`), with paired differences against
the first candidate. Selecting on an estimate favours the luckiest candidate a little (the
winner's curse); the paired intervals say when the choice is inside the noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.choices import ARCHITECTURES, Objective, Policy
from optimizer.errors import InputError
from optimizer.evaluation.offline import ESTIMATOR_NAMES, ESTIMATORS, OfflineValues
from optimizer.models.conversion import ConversionModels
from optimizer.planning.request import PlanningRequest
from optimizer.planning.valuation import CampaignLog, crossfit_plans, value_plans
from optimizer.progress import Progress, report

__all__ = ["ArchitectureChoice", "compare_architectures", "OBJECTIVE_METRIC"]

#: The offline figure of each objective.
OBJECTIVE_METRIC: dict[str, str] = {
    Objective.CONVERSIONS: "incremental_conversions",
    Objective.GMV: "incremental_gmv",
    Objective.PROFIT: "incremental_profit",
}


@dataclass
class ArchitectureChoice:
    """Each architecture's cross-fitted optimal plan, valued on one log.

    Attributes
    ----------
    values : OfflineValues
        Plans named by architecture; differences ``"<other> - <first>"``.
    architectures : tuple of str
        The candidates, the reference first.
    metric : str
        The objective's figure (``incremental_conversions``, ``incremental_gmv`` or
        ``incremental_profit``).
    estimator : str
        The estimator the choice is made on.
    best : str
        The architecture with the highest estimate.
    log : CampaignLog
        The log the plans were valued on.
    """

    values: OfflineValues
    architectures: tuple[str, ...]
    metric: str
    estimator: str
    best: str
    log: CampaignLog

    def table(self) -> pd.DataFrame:
        """One row per architecture: estimate and interval (totals) and the paired difference.

        Columns ``architecture``, ``estimate``, ``low``, ``high`` (totals over the plan's
        customers), ``difference``, ``difference_low``, ``difference_high`` (against the first
        architecture; NaN for it), ``best`` (bool).
        """
        est = self.values.estimates
        est = est[(est["estimator"] == self.estimator) & (est["metric"] == self.metric)]
        diff = self.values.differences
        if len(diff):
            diff = diff[(diff["estimator"] == self.estimator) & (diff["metric"] == self.metric)]
        rows = []
        for name in self.architectures:
            row = est[est["plan"] == name].iloc[0]
            pair = diff[diff["plan"] == f"{name} - {self.architectures[0]}"] if len(diff) else diff
            rows.append(
                {
                    "architecture": name,
                    "estimate": float(row["total"]),
                    "low": float(row["total_low"]),
                    "high": float(row["total_high"]),
                    "difference": float(pair["total"].iloc[0]) if len(pair) else np.nan,
                    "difference_low": float(pair["total_low"].iloc[0]) if len(pair) else np.nan,
                    "difference_high": float(pair["total_high"].iloc[0]) if len(pair) else np.nan,
                    "best": name == self.best,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """One sentence: the best architecture and its paired difference with the first."""
        text = (
            f"{self.best} has the highest {ESTIMATOR_NAMES[self.estimator]} estimate of "
            f"{self.metric.replace('_', ' ')}"
        )
        if self.best == self.architectures[0]:
            return text
        row = self.table().set_index("architecture").loc[self.best]
        return (
            f"{text} ({row['difference']:+,.4g} [{row['difference_low']:+,.4g}, "
            f"{row['difference_high']:+,.4g}] against {self.architectures[0]})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready summary (NaN as None)."""
        frame = self.table()
        table = frame.astype(object).where(frame.notna(), None)
        return {
            "metric": self.metric,
            "estimator": self.estimator,
            "best": self.best,
            "architectures": table.to_dict(orient="records"),
            "rows": self.values.rows,
            "customers": self.values.customers,
        }


def compare_architectures(
    request: PlanningRequest,
    models: ConversionModels,
    architectures: Sequence[str],
    base: str | Path | None = None,
    *,
    folds: int = 5,
    estimators: Sequence[str] = ("dr",),
    bootstrap: int = 0,
    clip: float | None = None,
    outcome_model: str = "boosting",
    unrandomized: str = "refuse",
    users_path: str | Path | None = None,
    log_path: str | Path | None = None,
    progress: Progress | None = None,
) -> ArchitectureChoice:
    """Cross-validated policy value of the optimal plan made with each architecture.

    Parameters
    ----------
    request : PlanningRequest
        The campaign (budget, objective, constraints); only its optimal policy is planned.
    models : ConversionModels
        Fitted on the campaign's data configuration: every other parameter (features, epochs,
        segment, seed) is kept, only ``architecture`` changes.
    architectures : sequence of str
        At least two distinct :data:`~optimizer.choices.ARCHITECTURES`; the first is the
        reference of the paired differences.
    base : str or Path, optional
        Folder the configuration's relative file names start from.
    folds : int
        Cross-fitting folds (models are trained ``folds`` times per architecture).
    estimators : sequence of {"dr", "snipw", "ipw"}
        Estimators to report; the first is the one the choice is made on.
    bootstrap, clip, outcome_model, unrandomized
        See :func:`~optimizer.planning.valuation.value_plans`.
    users_path, log_path : str or Path, optional
        Other files with the configuration's columns.
    progress : callable, optional

    Raises
    ------
    InputError
        Fewer than two architectures, an unknown or repeated one, an unknown estimator.
    """
    names = [str(a) for a in architectures]
    unknown = [a for a in names if a not in ARCHITECTURES]
    if unknown:
        raise InputError(
            f"{unknown[0]!r} is not an architecture ({', '.join(ARCHITECTURES)})",
            key="architectures",
        )
    if len(names) < 2 or len(set(names)) != len(names):
        raise InputError("give at least two distinct architectures", key="architectures")
    estimators = tuple(estimators)
    if not estimators or any(e not in ESTIMATORS for e in estimators):
        raise InputError("must be some of dr, snipw, ipw", key="estimators")
    estimator = estimators[0]
    single = replace(request, policies=(Policy.OPTIMAL,))
    frames: dict[str, pd.DataFrame] = {}
    found: CampaignLog | None = None
    for i, name in enumerate(names):
        report(progress, "comparing architectures", i, len(names), name)
        plans, found = crossfit_plans(
            single, models, base, folds=folds, users_path=users_path, log_path=log_path,
            params={"architecture": name},
        )  # fmt: skip
        frames[name] = plans[str(Policy.OPTIMAL)].to_frame()
    report(progress, "comparing architectures", len(names), len(names))
    assert found is not None
    values = value_plans(
        request, frames, found, estimators=estimators, bootstrap=bootstrap, clip=clip,
        outcome_model=outcome_model, unrandomized=unrandomized,
        differences=[(other, names[0]) for other in names[1:]], progress=progress,
    )  # fmt: skip
    metric = OBJECTIVE_METRIC[request.objective]
    scores = {name: values.value(name, metric, estimator) for name in names}
    best = max(names, key=lambda n: (scores[n], -names.index(n)))
    return ArchitectureChoice(values, tuple(names), metric, estimator, best, found)
