"""The table of a plan made at scale (streamed or on Spark), as :class:`TableData`."""

from __future__ import annotations

from optimizer.planning.out_of_core import OutOfCorePlan
from optimizer.planning.plan import ROI_DEFINITION
from optimizer.planning.request import PlanningRequest
from optimizer.reporting.table import (
    Column,
    TableData,
    fmt_count,
    fmt_metric,
    fmt_money,
    fmt_ratio,
)

__all__ = ["scale_plan_table"]


def scale_plan_table(plan: OutOfCorePlan, request: PlanningRequest) -> TableData:
    """The figures of a plan made at scale (streamed or on Spark) and the work it took."""
    engine = request.campaign.engine.name
    table = TableData(
        f"Optimal plan, {engine} engine ({request.campaign.currency})",
        [Column("figure", "left"), Column("value")],
    )
    gmv = plan.gmv
    roi = gmv / plan.cost if plan.cost > 0 else float("nan")
    profit = request.margin_rate * gmv - plan.cost
    for label, text in (
        ("users", fmt_count(plan.users)),
        ("users sent a coupon", fmt_count(plan.targeted)),
        ("incremental conversions", fmt_metric(plan.conversions, 1)),
        ("incremental GMV", fmt_money(gmv)),
        ("campaign cost", fmt_money(plan.cost)),
        ("budget", fmt_money(plan.budget)),
        ("planning budget (overrun rule)", fmt_money(plan.planning_budget)),
        ("spend standard deviation", fmt_money(plan.spend_sd)),
        ("ROI", fmt_ratio(roi)),
        ("incremental profit", fmt_money(profit)),
        (f"objective ({request.objective})", fmt_metric(plan.value, 3)),
        ("upper bound (certified)", fmt_metric(plan.upper_bound, 3)),
        ("certified gap", f"{plan.gap:.2e}"),
        ("users solved exactly", fmt_count(plan.core_users)),
        ("passes over the scores", fmt_count(plan.passes)),
        ("files written", fmt_count(plan.parts)),
    ):
        table.add_row(label, text)
    described = request.describe()
    table.caption = (
        "Expected figures under the models' probabilities (GMV, ROI and profit need the users' "
        "baskets: the user table). "
        + ROI_DEFINITION
        + ". Certified gap: 1 - objective / upper bound, "
        "the most any plan could add." + (f" Constraints: {described}." if described else "")
    )
    return table
