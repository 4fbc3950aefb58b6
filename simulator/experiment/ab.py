"""A/B experiments on the simulated world: policy arms against an untreated holdout, replicated.

Each replication randomises the campaign's target users into a holdout (``holdout_share``) and
equal policy arms; every policy arm plans its own users with its share of the budget (the
optimizer's policies, through the same interface as ``couponopt optimize``), and the campaign
engine (:mod:`simulator.experiment.engine`) plays every arm against the world's truth: gateway,
coupon validity, purchases, redemptions, the real budget. Incremental figures are measured
against the holdout, as a real test would:
``incremental conversions = (rate_arm - rate_holdout) x users``.

Replications use independent seeds (new randomisation, new draws); every metric gets a 95%
t-interval over replications, and so does each arm's paired difference from a reference arm.
The ``paired`` design plays every policy on the whole population with the same per-user draws
(common random numbers), which sharpens the comparison of policies far beyond what a split
test of the same size can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from optimizer.choices import Solver
from optimizer.errors import InputError
from optimizer.planning.campaign import plan_campaign
from optimizer.planning.candidates import Candidates
from optimizer.planning.request import Overrides, PlanningRequest, resolve_request
from optimizer.progress import Progress, report
from simulator.choices import Design
from simulator.experiment.engine import TRAITS, EngineSettings, simulate_campaign, traits_of
from simulator.scenario import Scenario

__all__ = [
    "METRICS",
    "HOLDOUT",
    "Experiment",
    "experiment_request",
    "run_experiment",
    "interval",
    "POINT_METRICS",
    "PointJob",
    "simulate_point",
]

#: The untreated arm every experiment has.
HOLDOUT = "holdout"

#: Metrics per arm: (key, label, unit). Money in currency units.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("users", "users", "count"),
    ("sent", "coupons sent", "count"),
    ("delivered", "coupons delivered", "count"),
    ("conversions", "conversions", "count"),
    ("conversion_rate", "conversion rate", "share"),
    ("targeted_conversion_rate", "conversion rate of the targeted", "share"),
    ("incremental_conversions", "incremental conversions", "count"),
    ("gmv", "GMV", "money"),
    ("incremental_gmv", "incremental GMV", "money"),
    ("redemptions", "redemptions", "count"),
    ("coupon_cost", "coupon cost", "money"),
    ("message_cost", "message cost", "money"),
    ("campaign_cost", "campaign cost", "money"),
    ("roi", "ROI", "ratio"),
    ("incremental_profit", "incremental profit", "money"),
    ("planned_spend", "planned spend", "money"),
    ("realised_spend", "realised spend", "money"),
)


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval of independent replications (NaNs ignored).

    Returns
    -------
    mean, low, high : float
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1))
    half /= np.sqrt(values.size)
    return mean, mean - half, mean + half


@dataclass
class Experiment:
    """Results of every replication.

    Attributes
    ----------
    runs : DataFrame
        One row per (replication, arm): the metrics of :data:`METRICS` and ``arm_budget``
        (the arm's share of the budget, money; 0 for the holdout).
    arms : tuple of str
        Policy arms and ``holdout``, in display order.
    budget : float
        Total budget (money), shared by the policy arms in proportion to their users.
    design : Design
        ``split`` or ``paired``.
    """

    runs: pd.DataFrame
    arms: tuple[str, ...]
    budget: float
    design: Design = Design.SPLIT

    @property
    def replications(self) -> int:
        """Independent repetitions."""
        return int(self.runs["replication"].nunique())

    @property
    def policies(self) -> tuple[str, ...]:
        """The policy arms (every arm but the holdout)."""
        return tuple(a for a in self.arms if a != HOLDOUT)

    def summary(self) -> pd.DataFrame:
        """Per arm and metric: ``mean``, ``low``, ``high`` (95% interval over replications)."""
        rows = []
        for arm in self.arms:
            part = self.runs[self.runs["arm"] == arm]
            for key, _, _ in METRICS:
                mean, low, high = interval(part[key].to_numpy())
                rows.append({"arm": arm, "metric": key, "mean": mean, "low": low, "high": high})
        return pd.DataFrame(rows)

    def versus(self, reference: str) -> pd.DataFrame:
        """Paired difference of every arm from ``reference`` per metric, with its interval."""
        pivot = self.runs.set_index(["replication", "arm"])
        base = pivot.xs(reference, level="arm")
        rows = []
        for arm in self.arms:
            if arm == reference:
                continue
            other = pivot.xs(arm, level="arm")
            for key, _, _ in METRICS:
                mean, low, high = interval((other[key] - base[key]).to_numpy())
                rows.append({"arm": arm, "metric": key, "mean": mean, "low": low, "high": high})
        return pd.DataFrame(rows)

    def to_dict(self, reference: str | None = None) -> dict[str, Any]:
        """JSON-ready results: the per-arm summary and the paired differences from ``reference``."""
        return {
            "budget": self.budget,
            "design": str(self.design),
            "replications": self.replications,
            "arms": list(self.arms),
            "summary": self.summary().to_dict(orient="records"),
            "reference": reference,
            "versus": [] if reference is None else self.versus(reference).to_dict(orient="records"),
        }


def _metrics(outcome, users: int, planned: float, sms_cost: float) -> dict[str, float]:
    sent = int(outcome.sent.sum())
    conversions = int(outcome.converted.sum())
    coupon_cost = float(outcome.discount.sum())
    message_cost = sms_cost * sent
    targeted = outcome.sent
    return {
        "users": users,
        "sent": sent,
        "delivered": int(outcome.delivered.sum()),
        "conversions": conversions,
        "conversion_rate": conversions / users if users else float("nan"),
        "targeted_conversion_rate": (
            float(outcome.converted[targeted].mean()) if sent else float("nan")
        ),
        "gmv": float(outcome.order_value.sum()),
        "redemptions": int(outcome.redeemed.sum()),
        "coupon_cost": coupon_cost,
        "message_cost": message_cost,
        "campaign_cost": coupon_cost + message_cost,
        "planned_spend": planned,
        "realised_spend": outcome.spend,
    }


def experiment_request(
    scenario: Scenario,
    overrides: Overrides | None = None,
    *,
    base: str | Path | None = None,
    natural_threshold: float | None = None,
) -> PlanningRequest:
    """The planning request of a simulated A/B test.

    The scenario's ``[simulation]`` arms, objective and matching, replaced by ``overrides``
    where given, always with the dual solver (every arm is planned as it would be at scale).
    ``base`` is the scenario file's directory (its relative ``constraints.exclude_file``).
    """
    sim = scenario.simulation
    defaults = Overrides(
        policies=sim.policies,
        objective=sim.objective,
        match=sim.match,
        match_on=sim.match_on,
        screen=sim.screen,
    )
    given = defaults.given() | (overrides or Overrides()).given() | {"solver": Solver.DUAL}
    return resolve_request(
        scenario, Overrides(**given), base=base, natural_threshold=natural_threshold
    )


def run_experiment(
    scenario: Scenario,
    candidates: Candidates,
    truth: pd.DataFrame,
    request: PlanningRequest,
    *,
    replications: int | None = None,
    seed: int | None = None,
    design: Design | str | None = None,
    progress: Progress | None = None,
) -> Experiment:
    """Replicated A/B test of policy arms against a holdout on the scenario's world.

    Parameters
    ----------
    scenario : Scenario
        The world's campaign timing, costs and the ``[simulation]`` section (gateway, budget
        behaviour, holdout share, replications, seed, design).
    candidates : Candidates
        The targeted users with their model scores (:meth:`PlanningRequest.candidates`).
    truth : DataFrame
        The world's ground truth (every candidate's row, any order).
    request : PlanningRequest
        The arms (``request.policies``), budget, objective, matching and policy knobs
        (:func:`experiment_request`).
    replications, seed : int, optional
        Override the scenario's ``simulation.replications`` and ``simulation.seed``.
    design : {"split", "paired"}, optional
        ``split``: users are randomised into the arms, as a real A/B test. ``paired``: every
        arm plans the whole target population with the whole budget and every arm (and the
        holdout) is played with the same per-user draws (common random numbers): the
        counterfactual comparison of the policies, with far narrower intervals for the
        differences. Default: the scenario's ``simulation.design``.
    progress : callable, optional
        Receives a ``"simulating"`` :class:`~optimizer.progress.Step` after each arm of each
        replication.
    """
    sim = scenario.simulation
    arms = tuple(str(p) for p in request.policies)
    budget = request.budget
    replications = sim.replications if replications is None else int(replications)
    seed = sim.seed if seed is None else int(seed)
    design = Design(sim.design if design is None else design)
    menu = candidates.menu
    if not menu.plain:
        raise InputError(
            "the synthetic world plays coupons with no costs of their own; this menu has "
            "messages or per-treatment costs",
            key="menu",
        )
    truth = truth.set_index("user_id").loc[candidates.scores["user_id"].to_numpy()]
    traits = dict(zip(TRAITS, traits_of(truth), strict=True))
    n = len(candidates)
    all_arms = (*arms, HOLDOUT)
    rows = []
    total = replications * len(all_arms)
    done = 0
    for rep in range(replications):
        rng = np.random.default_rng([seed, rep])
        order = rng.permutation(n)
        if design == Design.PAIRED:
            everyone = np.arange(n)
            groups = {arm: everyone for arm in all_arms}
        else:
            n_hold = int(round(sim.holdout_share * n))
            groups = {HOLDOUT: np.sort(order[:n_hold])}
            for j, part in enumerate(np.array_split(order[n_hold:], len(arms))):
                groups[arms[j]] = np.sort(part)
        for arm in all_arms:
            members = groups[arm]
            choice = np.full(members.size, -1, dtype=np.int64)
            arm_budget = 0.0
            planned = 0.0
            priority = None
            if arm != HOLDOUT and members.size:
                arm_budget = budget * members.size / n
                plan = plan_campaign(
                    candidates.subset(members), request, budget=arm_budget, policies=(arm,)
                )[arm]
                choice = plan.choice.astype(np.int64)
                planned = float(plan.expected_cost.sum())
                # The gateway sends the most valuable coupons first.
                priority = np.argsort(-plan.expected_uplift, kind="stable")
            engine = EngineSettings(
                window_days=scenario.campaign.window_days,
                validity_days=scenario.campaign.validity_days,
                sms_per_hour=sim.sms_per_hour,
                failure_rate=sim.failure_rate,
                view_rate=sim.view_rate,
                sms_cost=request.sms_cost,
                budget=arm_budget if arm != HOLDOUT else float("inf"),
                on_budget_spent=str(sim.on_budget_spent),
            )
            outcome = simulate_campaign(
                *(traits[name][members] for name in traits),
                choice,
                menu,
                engine,
                # Paired: every arm meets the same draws (common random numbers).
                np.random.default_rng(
                    [seed, rep, 1]
                    if design == Design.PAIRED
                    else [seed, rep, all_arms.index(arm), 1]
                ),
                order=priority,
            )
            row = {"replication": rep, "arm": arm, "arm_budget": arm_budget}
            row.update(_metrics(outcome, members.size, planned, request.sms_cost))
            rows.append(row)
            done += 1
            report(progress, "simulating", done, total)
    runs = pd.DataFrame(rows)
    hold = runs[runs["arm"] == HOLDOUT].set_index("replication")
    rate = runs["replication"].map(hold["conversion_rate"])
    gmv_rate = runs["replication"].map(hold["gmv"] / hold["users"])
    runs["incremental_conversions"] = (runs["conversion_rate"] - rate) * runs["users"]
    runs["incremental_gmv"] = runs["gmv"] - gmv_rate * runs["users"]
    cost = runs["campaign_cost"]
    runs["roi"] = np.where(cost > 0, runs["incremental_gmv"] / cost.where(cost > 0, 1), np.nan)
    runs["incremental_profit"] = request.margin_rate * runs["incremental_gmv"] - cost
    return Experiment(
        runs=runs[["replication", "arm", "arm_budget", *(m[0] for m in METRICS)]],
        arms=all_arms,
        budget=budget,
        design=design,
    )


#: The simulated figures a what-if point carries (``sim_<figure>``, ``_low``, ``_high``).
POINT_METRICS: tuple[str, ...] = (
    "incremental_conversions",
    "campaign_cost",
    "roi",
    "incremental_profit",
)


@dataclass
class PointJob:
    """Everything one simulated what-if point needs, handed whole to a worker process.

    Attributes
    ----------
    scenario : Scenario
        The point's world settings (timing, gateway, budget behaviour).
    candidates : Candidates
        The point's targeted users and scores.
    truth : DataFrame
        The world's truth for those users.
    request : PlanningRequest
        The point's policies and knobs (its budget is replaced by the point's).
    replications : int
    """

    scenario: Scenario
    candidates: Candidates
    truth: pd.DataFrame
    request: PlanningRequest
    replications: int


def simulate_point(job: PointJob, budget: float) -> list[dict[str, Any]]:
    """The simulated figures of every policy of ``job`` at ``budget`` (paired design).

    Returns
    -------
    list of dict
        Per policy: ``policy``, ``budget`` and ``sim_<figure>``, ``sim_<figure>_low``,
        ``sim_<figure>_high`` for each of :data:`POINT_METRICS` (95% interval).
    """
    experiment = run_experiment(
        job.scenario,
        job.candidates,
        job.truth,
        job.request.with_budget(budget),
        replications=job.replications,
        design=Design.PAIRED,
    )
    summary = experiment.summary().set_index(["arm", "metric"])
    rows = []
    for policy in experiment.policies:
        row: dict[str, Any] = {"policy": policy, "budget": budget}
        for metric in POINT_METRICS:
            r = summary.loc[(policy, metric)]
            row[f"sim_{metric}"] = r["mean"]
            row[f"sim_{metric}_low"] = r["low"]
            row[f"sim_{metric}_high"] = r["high"]
        rows.append(row)
    return rows
