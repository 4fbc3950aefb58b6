"""The tables of the simulator's results: a generated world and a simulated A/B test.

Plain :class:`~optimizer.reporting.table.TableData`, rendered by the command line and by the
HTML report alike.
"""

from __future__ import annotations

from optimizer.reporting.table import (
    Column,
    TableData,
    best_index,
    fmt_count,
    fmt_interval,
    fmt_points,
    fmt_share,
)
from simulator.experiment.ab import HOLDOUT, METRICS, Experiment
from simulator.scenario import Scenario
from simulator.world.generation import WorldSummary

__all__ = ["world_tables", "experiment_table", "versus_table", "experiment_tables"]

#: Metrics whose best arm is highlighted (higher is better).
_BEST = (
    "conversion_rate",
    "incremental_conversions",
    "incremental_gmv",
    "roi",
    "incremental_profit",
)
#: Metrics of the paired-difference table.
_VERSUS = (
    "conversion_rate",
    "targeted_conversion_rate",
    "incremental_conversions",
    "incremental_gmv",
    "campaign_cost",
    "roi",
    "incremental_profit",
)
_DEFINITIONS = (
    "Incremental figures are against the untreated holdout (rate difference x users). "
    "campaign cost = face value of redeemed coupons + message cost; ROI = incremental GMV "
    "/ campaign cost; incremental profit = margin x incremental GMV - campaign cost."
)


def world_tables(summary: WorldSummary, scenario: Scenario) -> list[TableData]:
    """Population by stage with true conversion and lifts, archetypes, and the campaign log."""
    names = summary.menu_names
    window = f"{scenario.campaign.window_days:g}-day window"
    population = TableData(
        f"Synthetic population: {summary.users:,} users",
        [
            Column("stage", "left"),
            Column("users"),
            Column("share"),
            Column("natural"),
            *(Column(f"lift {n}") for n in names),
        ],
    )
    for stage, row in summary.stage_frame().iterrows():
        index = population.add_row(
            stage,
            fmt_count(row["users"]),
            fmt_share(row["share"]),
            fmt_share(row["natural_rate"]),
            *(fmt_points(row[f"lift__{n}"]) for n in names),
        )
        if stage in ("target", "all"):
            population.strong_rows.add(index)
        elif row["targeted"]:
            population.accent_rows.add(index)
    population.caption = (
        f"natural: mean true P(buy in the {window} | no coupon). "
        "lift: mean true P(buy | coupon) - natural, in percentage points. "
        f"target = {', '.join(scenario.target_stages)} (highlighted)."
    )
    archetypes = TableData(
        "Uplift archetypes (ground truth)",
        [Column("archetype", "left"), Column("users"), Column("share")],
    )
    for name, row in summary.archetype_frame().iterrows():
        archetypes.add_row(name, fmt_count(row["users"]), fmt_share(row["share"]))
    log = TableData(
        "Campaign log (history)",
        [
            Column("assignment", "left"),
            Column("denomination", "left"),
            Column("rows"),
            Column("conversion"),
            Column("redemption"),
        ],
    )
    for _, row in summary.log_frame().iterrows():
        log.add_row(
            row["assignment"],
            row["denomination"],
            fmt_count(row["rows"]),
            fmt_share(row["conversion_rate"]),
            fmt_share(row["redemption_rate"]),
        )
    log.caption = (
        "randomized: arms drawn at random (training data); manual: coupon sent by RFM rule "
        "(biased). conversion and redemption: observed shares of logged users."
    )
    return [population, archetypes, log]


def experiment_table(
    experiment: Experiment, currency: str, metrics: tuple[str, ...] | None = None
) -> TableData:
    """Every metric per arm, mean [95% CI] over replications; the best policy arm highlighted."""
    summary = experiment.summary().set_index(["arm", "metric"])
    arms = list(experiment.arms)
    treated = [a for a in arms if a != HOLDOUT]
    table = TableData(
        f"Simulated A/B test ({currency}; mean [95% CI] over "
        f"{experiment.replications} replications, {experiment.design} design)",
        [Column("metric", "left"), *(Column(a) for a in arms)],
    )
    for key, label, unit in METRICS:
        if metrics is not None and key not in metrics:
            continue
        cells = [
            fmt_interval(*summary.loc[(arm, key), ["mean", "low", "high"]], unit) for arm in arms
        ]
        best = ()
        if key in _BEST and len(treated) > 1:
            top = best_index([summary.loc[(a, key), "mean"] for a in treated])
            best = () if top is None else (1 + arms.index(treated[top]),)
        table.add_row(label, *cells, best=best)
    table.caption = _DEFINITIONS + " Best policy arm per row highlighted."
    return table


def versus_table(experiment: Experiment, reference: str) -> TableData | None:
    """Paired differences of every policy arm from ``reference``, mean [95% CI]."""
    others = [a for a in experiment.policies if a != reference]
    if not others or reference not in experiment.arms:
        return None
    versus = experiment.versus(reference).set_index(["arm", "metric"])
    table = TableData(
        f"Difference from {reference} (paired by replication, mean [95% CI])",
        [Column("metric", "left"), *(Column(a) for a in others)],
    )
    for key, label, unit in METRICS:
        if key in _VERSUS:
            table.add_row(
                label,
                *(
                    fmt_interval(*versus.loc[(a, key), ["mean", "low", "high"]], unit)
                    for a in others
                ),
            )
    table.caption = _DEFINITIONS
    return table


def experiment_tables(experiment: Experiment, currency: str, reference: str) -> list[TableData]:
    """The per-arm table and the paired differences from ``reference``."""
    tables = [experiment_table(experiment, currency)]
    versus = versus_table(experiment, reference)
    if versus is not None:
        tables.append(versus)
    return tables
