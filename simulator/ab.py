"""A/B experiments on the simulated world: policy arms against an untreated holdout, replicated.

Each replication randomises the campaign's target users into a holdout (``holdout_share``) and
equal policy arms; every policy arm plans its own users with its share of the budget (the
optimizer's policies, through the same interface as ``couponopt optimize``), and the campaign
engine (:mod:`simulator.engine`) plays every arm against the world's truth: gateway, coupon
validity, purchases, redemptions, the real budget. Incremental figures are measured against the
holdout, as a real test would: ``incremental conversions = (rate_arm - rate_holdout) x users``.

Replications use independent seeds (new randomisation, new draws); every metric gets a 95%
t-interval over replications, and so does each arm's paired difference from a reference arm.
The ``paired`` design plays every policy on the whole population with the same per-user draws
(common random numbers), which sharpens the comparison of policies far beyond what a split
test of the same size can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from optimizer.campaign import CampaignInputs, align_scores, plan_campaign
from optimizer.policies import ARTICLE_V2_THRESHOLD, PolicySettings
from simulator.engine import TRAITS, EngineSettings, simulate_campaign, traits_of
from simulator.pipeline import ScoredScenario
from simulator.scenario import Scenario

__all__ = ["METRICS", "Experiment", "run_experiment", "interval"]

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

Progress = Callable[[int, int], None]


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
        One row per (replication, arm): the metrics of :data:`METRICS`.
    arms : tuple of str
        Policy arms and ``holdout``, in display order.
    budget : float
        Total budget (money), shared by the policy arms in proportion to their users.
    """

    runs: pd.DataFrame
    arms: tuple[str, ...]
    budget: float

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


def _subset(inputs: CampaignInputs, rows: np.ndarray) -> CampaignInputs:
    return CampaignInputs(
        scores=inputs.scores.iloc[rows].reset_index(drop=True),
        users=inputs.users.iloc[rows].reset_index(drop=True),
        menu=inputs.menu,
        excluded=None if inputs.excluded is None else inputs.excluded[rows],
    )


def run_experiment(
    scenario: Scenario,
    scored: ScoredScenario,
    *,
    arms: Sequence[str] | None = None,
    budget: float | None = None,
    replications: int | None = None,
    seed: int | None = None,
    v2_threshold: float | None = None,
    objective: str | None = None,
    match: Sequence[str] | None = None,
    match_on: str | None = None,
    screen: bool | None = None,
    design: str = "split",
    progress: Progress | None = None,
) -> Experiment:
    """Replicated A/B test of policy arms against a holdout on the scenario's world.

    Parameters
    ----------
    scenario : Scenario
        World, menu, costs, campaign timing, constraints and the ``[simulation]`` section.
    scored : ScoredScenario
        The world's users, model scores and truth (:func:`simulator.pipeline.score_scenario`).
    arms, budget, replications, seed : optional
        Override the scenario's simulation arms, budget (money), replications and seed.
    v2_threshold : float, optional
        Natural-probability cut of v2 (default: the models' coverage knee).
    objective : {"conversions", "gmv", "profit"}, optional
        What the optimal arm maximises (default: the scenario's ``simulation.objective``).
    match : sequence of str, optional
        Baseline policies the optimal arm matches (default: the scenario's
        ``simulation.match``): it spends only the least budget at which its expected objective
        reaches the best of those policies' plans on its own users with its budget share.
    match_on : {"value", "spend"}, optional
        ``value``: the optimal arm spends the least budget reaching the matched plans' expected
        objective; ``spend``: its budget is the matched plans' expected cost (default: the
        scenario's ``simulation.match_on``).
    screen : bool, optional
        The optimal arm leaves out users above v2's natural-probability cut (default: the
        scenario's ``simulation.screen``).
    design : {"split", "paired"}
        ``split``: users are randomised into the arms, as a real A/B test. ``paired``: every
        arm plans the whole target population with the whole budget and every arm (and the
        holdout) is played with the same per-user draws (common random numbers): the
        counterfactual comparison of the policies, with far narrower intervals for the
        differences.
    progress : callable, optional
        Called as ``progress(done, total)`` after each arm of each replication.
    """
    sim = scenario.simulation
    arms = tuple(arms or sim.arms)
    budget = scenario.budget.amount if budget is None else float(budget)
    replications = sim.replications if replications is None else int(replications)
    seed = sim.seed if seed is None else int(seed)
    objective = sim.objective if objective is None else objective
    match = tuple(sim.match if match is None else match)
    match_on = sim.match_on if match_on is None else match_on
    screen = sim.screen if screen is None else screen
    if match and "optimal" not in arms:
        raise ValueError("match makes the optimal arm like-for-like: it needs an optimal arm")
    if design not in ("split", "paired"):
        raise ValueError("design must be split or paired")
    menu = scenario.menu
    if scored.truth is None:
        raise ValueError("the experiment needs the world's truth")
    inputs = align_scores(scored.scores, scored.users, menu, stages=scenario.campaign.target_stages)
    truth = scored.truth.set_index("user_id").loc[inputs.scores["user_id"].to_numpy()]
    traits = dict(zip(TRAITS, traits_of(truth), strict=True))
    knee = (scored.models.summary_.get("natural_knee") or {}).get("threshold")
    cut = v2_threshold if v2_threshold is not None else knee
    settings = PolicySettings(
        denomination=scenario.manual.denomination,
        v2_threshold=cut,
        natural_screen=(cut if cut is not None else ARTICLE_V2_THRESHOLD) if screen else None,
        solver="dual",
        constraints=scenario.constraints.to_constraints(),
        overrun_risk=scenario.constraints.overrun_risk,
    )
    n = len(inputs.scores)
    all_arms = (*arms, "holdout")
    rows = []
    total = replications * len(all_arms)
    done = 0
    for rep in range(replications):
        rng = np.random.default_rng([seed, rep])
        order = rng.permutation(n)
        if design == "paired":
            everyone = np.arange(n)
            groups = {arm: everyone for arm in all_arms}
        else:
            n_hold = int(round(sim.holdout_share * n))
            groups = {"holdout": np.sort(order[:n_hold])}
            for j, part in enumerate(np.array_split(order[n_hold:], len(arms))):
                groups[arms[j]] = np.sort(part)
        for arm in all_arms:
            members = groups[arm]
            choice = np.full(members.size, -1, dtype=np.int64)
            arm_budget = 0.0
            planned = 0.0
            priority = None
            if arm != "holdout" and members.size:
                arm_budget = budget * members.size / n
                plan = plan_campaign(
                    _subset(inputs, members),
                    arm_budget,
                    [arm],
                    settings,
                    objective=objective,
                    sms_cost=scenario.costs.sms_cost,
                    margin_rate=scenario.costs.margin_rate,
                    segment_column=scenario.constraints.segment_column,
                    match=match if arm == "optimal" else (),
                    match_on=match_on,
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
                sms_cost=scenario.costs.sms_cost,
                budget=arm_budget if arm != "holdout" else float("inf"),
                on_budget_spent=sim.on_budget_spent,
            )
            outcome = simulate_campaign(
                *(traits[name][members] for name in traits),
                choice,
                menu,
                engine,
                # Paired: every arm meets the same draws (common random numbers).
                np.random.default_rng(
                    [seed, rep, 1] if design == "paired" else [seed, rep, all_arms.index(arm), 1]
                ),
                order=priority,
            )
            row = {"replication": rep, "arm": arm}
            row.update(_metrics(outcome, members.size, planned, scenario.costs.sms_cost))
            rows.append(row)
            done += 1
            if progress is not None:
                progress(done, total)
    runs = pd.DataFrame(rows)
    hold = runs[runs["arm"] == "holdout"].set_index("replication")
    rate = runs["replication"].map(hold["conversion_rate"])
    gmv_rate = runs["replication"].map(hold["gmv"] / hold["users"])
    runs["incremental_conversions"] = (runs["conversion_rate"] - rate) * runs["users"]
    runs["incremental_gmv"] = runs["gmv"] - gmv_rate * runs["users"]
    cost = runs["campaign_cost"]
    runs["roi"] = np.where(cost > 0, runs["incremental_gmv"] / cost.where(cost > 0, 1), np.nan)
    runs["incremental_profit"] = scenario.costs.margin_rate * runs["incremental_gmv"] - cost
    return Experiment(runs=runs[["replication", "arm", *(m[0] for m in METRICS)]],
                      arms=all_arms, budget=budget)  # fmt: skip
