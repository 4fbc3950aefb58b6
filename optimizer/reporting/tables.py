"""The tables of the optimizer's results, as :class:`~optimizer.reporting.table.TableData`.

Plans side by side, a plan by denomination and by segment, a what-if grid with its marginal
values and profit peaks, model quality and uplift ranking, training quality, a scoring run and
its drift, the data contract. The command line and the HTML report render the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from optimizer.evaluation.quality import UPLIFT_TOP_SHARE, Evaluation
from optimizer.io.contract import TableSchema
from optimizer.planning.plan import ROI_DEFINITION, Plan
from optimizer.planning.request import PlanningRequest
from optimizer.planning.whatif import FIGURES, GridResult
from optimizer.reporting.table import (
    Column,
    TableData,
    best_index,
    fmt_compact,
    fmt_count,
    fmt_metric,
    fmt_money,
    fmt_points,
    fmt_ratio,
    fmt_share,
)

__all__ = [
    "plans_table",
    "denomination_table",
    "segment_table",
    "plan_tables",
    "grid_table",
    "marginal_table",
    "peaks_table",
    "grid_tables",
    "GRID_WIDE_WIDTH",
    "quality_table",
    "uplift_table",
    "knee_sentence",
    "training_table",
    "scores_table",
    "drift_table_data",
    "schema_table",
]

#: The figures of a plan comparison: (label, summary key, formatter, higher is better).
_PLAN_FIGURES: tuple[tuple[str, str, Any, bool], ...] = (
    ("users (candidates)", "users", fmt_count, False),
    ("users targeted", "users_targeted", fmt_count, False),
    ("incremental conversions", "incremental_conversions", lambda x: f"{x:,.1f}", True),
    ("expected cost", "expected_cost", fmt_money, False),
    ("spend 95% interval", "", None, False),
    ("P(spend > budget)", "overrun_probability", lambda x: fmt_share(x, 1), False),
    ("incremental GMV", "incremental_gmv", fmt_money, False),
    ("ROI", "roi", fmt_ratio, True),
    ("incremental profit", "incremental_profit", fmt_money, True),
    ("solver", "solver", str, False),
    ("certified gap", "gap", lambda x: "" if x is None else f"{100 * x:.4f}%", False),
    ("marginal return", "marginal_return", lambda x: "" if x is None else f"{x:.4g}", False),
    ("time (s)", "seconds", lambda x: f"{x:.2f}", False),
)


def plans_table(plans: Mapping[str, Plan], request: PlanningRequest) -> TableData:
    """The policies' plans side by side, the best value of each key figure highlighted."""
    summaries = {name: plan.summary() for name, plan in plans.items()}
    names = list(summaries)
    table = TableData(
        f"Campaign plans ({request.campaign.currency})",
        [Column("figure", "left"), *(Column(n) for n in names)],
    )
    for label, key, fmt, better in _PLAN_FIGURES:
        if label == "spend 95% interval":
            cells = [
                f"{s['spend_95_low']:,.0f}-{s['spend_95_high']:,.0f}" for s in summaries.values()
            ]
        else:
            cells = [fmt(summaries[n][key]) for n in names]
        best = None
        if better and len(names) > 1:
            best = best_index([summaries[n][key] for n in names])
        table.add_row(label, *cells, best=() if best is None else (best + 1,))
    described = request.describe()
    table.caption = (
        "Expected figures under the models' probabilities; spend interval and overrun "
        "probability by the normal approximation of independent redemptions. "
        + ROI_DEFINITION
        + ". Marginal return (optimal plan): the budget's price, what one more unit of money "
        "would add to the objective (conversions, or money of GMV or profit) at this budget, "
        "in the budget-only LP. Best value per row highlighted."
        + (f" Constraints: {described}." if described else "")
    )
    return table


def denomination_table(plan: Plan) -> TableData:
    """A plan's users, expected incremental conversions and cost per denomination."""
    table = TableData(
        f"{plan.policy} plan by denomination",
        [
            Column("denomination", "left"),
            Column("users"),
            Column("incremental conversions"),
            Column("expected cost"),
        ],
    )
    for _, r in plan.by_denomination().iterrows():
        table.add_row(
            r["denomination"],
            fmt_count(r["users"]),
            f"{r['incremental_conversions']:,.1f}",
            fmt_money(r["expected_cost"]),
        )
    return table


def segment_table(plan: Plan, column: str) -> TableData | None:
    """A plan by segment label of ``column`` (None when the problem has no segments)."""
    segments = plan.by_segment()
    if not len(segments):
        return None
    table = TableData(
        f"{plan.policy} plan by {column}",
        [
            Column("segment", "left"),
            Column("candidates"),
            Column("targeted"),
            Column("share of messages"),
            Column("incremental conversions"),
            Column("expected cost"),
        ],
    )
    for _, r in segments.iterrows():
        table.add_row(
            r["segment"],
            fmt_count(r["users"]),
            fmt_count(r["users_targeted"]),
            fmt_share(r["message_share"], 1),
            f"{r['incremental_conversions']:,.1f}",
            fmt_money(r["expected_cost"]),
        )
    return table


def plan_tables(plans: Mapping[str, Plan], request: PlanningRequest) -> list[TableData]:
    """The comparison, and the first plan by denomination and by segment."""
    first = next(iter(plans.values()))
    tables = [plans_table(plans, request), denomination_table(first)]
    by_segment = segment_table(first, request.segment_column)
    if by_segment is not None:
        tables.append(by_segment)
    return tables


_SHORT = {
    "incremental_conversions": "conv",
    "expected_cost": "cost",
    "roi": "ROI",
    "incremental_profit": "profit",
}
#: Terminal width from which a grid gets a column per policy and figure (one row per point).
GRID_WIDE_WIDTH = 120


def _grid_cell(value: float, key: str) -> str:
    if key == "roi":
        return fmt_ratio(value)
    if key == "incremental_conversions":
        return fmt_count(value)
    return fmt_compact(value)


def grid_table(result: GridResult, currency: str, width: int = GRID_WIDE_WIDTH) -> TableData:
    """The grid's figures per point and policy; the best policy per point highlighted.

    Wide (a column per policy and figure) when ``width`` characters allow it, else one row per
    point and policy, so that nothing is cut in an 80-column terminal.
    """
    frame = result.frame
    policies = list(result.policies)
    varied = [a for a in result.grid.varied if a != "budget"]
    wide = width >= 12 + 36 * len(policies) + (16 if varied else 0)
    head = ([Column("context", "left")] if varied else []) + [Column("budget")]
    if wide:
        columns = head + [Column(f"{p}\n{_SHORT[k]}") for p in policies for k, _ in FIGURES]
    else:
        columns = head + [Column("policy", "left")] + [Column(_SHORT[k]) for k, _ in FIGURES]
    table = TableData(f"What-if grid ({currency}; expected figures per policy)", columns)

    def cell(part: pd.DataFrame, policy: str, key: str) -> str:
        text = _grid_cell(part.loc[policy, key], key)
        if result.simulated and key in ("incremental_conversions", "roi"):
            text += f" ({_grid_cell(part.loc[policy, f'sim_{key}'], key)})"
        return text

    def best(part: pd.DataFrame, key: str) -> set[str]:
        if key == "expected_cost" or len(policies) < 2:
            return set()
        top = part[key].max()
        return {p for p in policies if part.loc[p, key] >= top - 1e-12}

    for (context, budget), part in frame.groupby(["context", "budget"], sort=False):
        part = part.set_index("policy")
        lead = ([context] if varied else []) + [fmt_compact(budget)]
        winners = {k: best(part, k) for k, _ in FIGURES}
        if wide:
            cells = [cell(part, p, k) for p in policies for k, _ in FIGURES]
            marks = [
                len(lead) + i * len(FIGURES) + j
                for i, p in enumerate(policies)
                for j, (k, _) in enumerate(FIGURES)
                if p in winners[k]
            ]
            table.add_row(*lead, *cells, best=marks)
            continue
        for i, policy in enumerate(policies):
            marks = [len(lead) + 1 + j for j, (k, _) in enumerate(FIGURES) if policy in winners[k]]
            row = table.add_row(
                *(lead if i == 0 else [""] * len(lead)),
                policy,
                *(cell(part, policy, k) for k, _ in FIGURES),
                best=marks,
            )
            if i == len(policies) - 1:
                table.breaks.add(row)
    table.caption = (
        "conv: incremental conversions; cost: expected face value of redeemed coupons + "
        "message cost; ROI = incremental GMV / cost; profit: margin x incremental GMV - cost. "
        "Expected under the models' probabilities"
        + ("; in parentheses the simulated mean (paired design)" if result.simulated else "")
        + ". Best policy per point highlighted."
    )
    return table


def marginal_table(result: GridResult, currency: str) -> TableData | None:
    """Extra incremental conversions per 1,000 of money between consecutive budgets."""
    marginal = result.marginal_value()
    if not len(marginal):
        return None
    policies = list(result.policies)
    varied = [a for a in result.grid.varied if a != "budget"]
    table = TableData(
        "Marginal value of budget: extra incremental conversions per 1,000 "
        f"{currency} between consecutive budgets",
        ([Column("context", "left")] if varied else [])
        + [Column("budgets")]
        + [Column(p) for p in policies],
    )
    for (context, lo, hi), part in marginal.groupby(
        ["context", "from_budget", "to_budget"], sort=False
    ):
        part = part.set_index("policy")
        lead = ([context] if varied else []) + [f"{lo:,.0f} -> {hi:,.0f}"]
        table.add_row(*lead, *(f"{1000 * part.loc[p, 'per_money']:.2f}" for p in policies))
    return table


def peaks_table(result: GridResult) -> TableData:
    """The budget of the grid where each policy's expected incremental profit peaks."""
    varied = [a for a in result.grid.varied if a != "budget"]
    table = TableData(
        "Where expected incremental profit peaks on the grid",
        ([Column("context", "left")] if varied else [])
        + [Column("policy", "left"), Column("budget"), Column("spends"), Column("profit")],
    )
    for _, r in result.profit_peaks().iterrows():
        table.add_row(
            *([r["context"]] if varied else []),
            r["policy"],
            fmt_money(r["budget"]),
            fmt_money(r["expected_cost"]),
            fmt_money(r["incremental_profit"]),
        )
    table.caption = (
        "spends: the plan's expected cost at that budget (below it when more money buys "
        "nothing the objective values)."
    )
    return table


def grid_tables(result: GridResult, currency: str, width: int = GRID_WIDE_WIDTH) -> list[TableData]:
    """The grid, the marginal value of budget and the profit peaks."""
    tables = [grid_table(result, currency, width)]
    marginal = marginal_table(result, currency)
    if marginal is not None:
        tables.append(marginal)
    tables.append(peaks_table(result))
    return tables


def quality_table(evaluation: Evaluation, source: str) -> TableData:
    """AUC, log-loss and calibration error of each model output on held-out rows."""
    table = TableData(
        f"Model quality on {source}",
        [
            Column("model", "left"),
            Column("rows"),
            Column("conversion"),
            Column("AUC"),
            Column("log-loss"),
            Column("calibration error"),
        ],
    )
    for _, r in evaluation.quality.iterrows():
        table.add_row(
            r["model"],
            fmt_count(r["rows"]),
            fmt_share(r["positive_rate"]),
            fmt_metric(r["auc"]),
            fmt_metric(r["log_loss"], 4),
            fmt_metric(r["calibration_error"], 4),
        )
    table.caption = (
        "natural: no-coupon rows; coupon <d>: rows sent d. calibration error: mean "
        "|observed - predicted| rate over 10 equal-count bins (probability)."
    )
    return table


def uplift_table(evaluation: Evaluation) -> TableData:
    """Qini, AUUC and uplift at the top share per denomination, against no coupon."""
    top = f"{100 * UPLIFT_TOP_SHARE:.0f}%"
    table = TableData(
        "Uplift ranking per denomination (vs no coupon)",
        [
            Column("denomination", "left"),
            Column("treated"),
            Column("control"),
            Column("Qini"),
            Column("AUUC"),
            Column(f"uplift@{top}"),
            Column("observed"),
            Column("predicted"),
            Column("slope"),
        ],
    )
    for _, r in evaluation.uplift.iterrows():
        table.add_row(
            r["denomination"],
            fmt_count(r["treated_rows"]),
            fmt_count(r["control_rows"]),
            fmt_metric(r["qini"]),
            fmt_metric(r["auuc"]),
            fmt_points(r["uplift_at_30"]),
            fmt_points(r["observed_uplift"]),
            fmt_points(r["predicted_uplift"]),
            f"{fmt_metric(r['calibration_slope'], 2)} ± {fmt_metric(r['calibration_slope_se'], 2)}",
        )
    table.caption = (
        "Ranking by predicted uplift p_coupon - p_natural. Qini, AUUC: area over random, as a "
        "share of the perfect ranking's (0 random, 1 perfect). "
        f"uplift@{top}: observed conversion rate difference (percentage points) among the top "
        f"{top}; observed/predicted: overall. slope: observed on predicted uplift over five "
        "equal-count bins of the prediction (weighted least squares, ± standard error): 1 is "
        "unbiased by bin, above 1 compressed, below 1 spread too wide."
    )
    return table


def knee_sentence(knee: Mapping[str, float]) -> str:
    """The article's threshold analysis of the natural model in one sentence."""
    return (
        f"natural model knee: taking the top {fmt_share(knee['share_taken'])} by natural "
        f"probability (p >= {knee['threshold']:.3f}) covers {fmt_share(knee['coverage'])} of "
        f"natural converters at precision {fmt_share(knee['precision'])}."
    )


def training_table(quality: list[dict[str, Any]]) -> TableData:
    """Validation quality of each trained network, before -> after calibration.

    ``quality`` is :meth:`optimizer.models.ConversionModels.validation_quality`.
    """
    table = TableData(
        "Trained models (validation split)",
        [
            Column("model", "left"),
            Column("rows"),
            Column("epochs"),
            Column("AUC"),
            Column("log-loss"),
            Column("calibration error"),
        ],
    )
    for q in quality:
        before, after = q["before_calibration"], q["after_calibration"]
        table.add_row(
            q["model"],
            fmt_count(after["rows"]),
            str(q["epochs"]),
            fmt_metric(after["auc"]),
            f"{fmt_metric(before['log_loss'], 4)} -> {fmt_metric(after['log_loss'], 4)}",
            f"{fmt_metric(before['calibration_error'], 4)} -> "
            f"{fmt_metric(after['calibration_error'], 4)}",
        )
    table.caption = (
        "rows: validation rows (early stopping and calibration). log-loss and calibration error "
        "(mean |observed - predicted| over 10 equal-count bins) before -> after calibration."
    )
    return table


def scores_table(rows: int, mean_scores: Mapping[str, float]) -> TableData:
    """Mean of every score column of a scoring run."""
    table = TableData(f"Scored {rows:,} users", [Column("score", "left"), Column("mean")])
    for name, value in mean_scores.items():
        table.add_row(name, fmt_share(value))
    table.caption = "p_natural: P(buy | no coupon); p_coupon__<d>: P(buy | coupon d)."
    return table


def drift_table_data(drifted: pd.DataFrame, threshold: float) -> TableData:
    """The features whose population stability index exceeds ``threshold``."""
    table = TableData("Feature drift", [Column("feature", "left"), Column("PSI")])
    for _, row in drifted.iterrows():
        table.add_row(row["feature"], f"{row['psi']:.3f}")
    table.caption = (
        f"population stability index > {threshold:g} (0.1-0.2 moderate, > 0.2 "
        "significant): the models were trained on a different population; the article "
        "trains on the same lifecycle stage it targets."
    )
    return table


def schema_table(schema: TableSchema) -> TableData:
    """A table of the data contract: columns, types, units, allowed values, meaning."""
    table = TableData(
        f"{schema.name}: {schema.description}",
        [
            Column("column", "left", one_line=True),
            Column("type", "left"),
            Column("unit", "left"),
            Column("nullable", "left"),
            Column("allowed", "left"),
            Column("meaning", "left"),
        ],
    )
    for spec in schema.columns:
        allowed = ""
        if spec.kind == "flag":
            allowed = "0, 1"
        elif spec.categories:
            allowed = ", ".join(spec.categories)
        elif spec.lower is not None or spec.upper is not None:
            lo = "" if spec.lower is None else f"{spec.lower:g}"
            hi = "" if spec.upper is None else f"{spec.upper:g}"
            allowed = f"[{lo}, {hi}]" if hi else f">= {lo}"
        table.add_row(
            spec.name,
            spec.dtype,
            spec.unit,
            "yes" if spec.nullable else "",
            allowed,
            spec.description,
        )
    if schema.key:
        table.caption = f"key: {', '.join(schema.key)} (unique)"
    return table


def inference_table(columns: pd.DataFrame, rows_read: int) -> TableData:
    """What ``couponopt init`` inferred per column: role, type, distinct values, missing share."""
    table = TableData(
        f"Columns (from the first {rows_read:,} rows)",
        [
            Column("file", "left"),
            Column("column", "left"),
            Column("role", "left"),
            Column("type", "left"),
            Column("distinct"),
            Column("missing"),
        ],
    )
    for row in columns.itertuples(index=False):
        table.add_row(
            row.file, row.column, row.role, row.type, f"{row.distinct:,}", fmt_share(row.missing)
        )
    table.caption = (
        "role: id, arm, outcome, order value, segment (targeting labels), basket (money per "
        "order), feature (the models learn from it), ignored (never a feature) or unused. "
        "Text features with more labels than max_categories keep their most frequent ones."
    )
    return table
