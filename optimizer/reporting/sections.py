"""The report's sections about a campaign, built from the optimizer's results.

The campaign, the plan, the baselines, the frontier and model quality, as sections for
:func:`~optimizer.reporting.page.render_page`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from optimizer.evaluation.plots import evaluation_figures
from optimizer.evaluation.quality import Evaluation
from optimizer.planning.plan import Plan
from optimizer.planning.plots import grid_figures
from optimizer.planning.request import PlanningRequest
from optimizer.planning.whatif import GridResult
from optimizer.reporting.page import Cards, Images, Note, Section, figure_png
from optimizer.reporting.table import Column, TableData, fmt_share
from optimizer.reporting.tables import (
    denomination_table,
    knee_sentence,
    plans_table,
    quality_table,
    uplift_table,
)

__all__ = [
    "campaign_section",
    "plan_section",
    "baselines_section",
    "frontier_section",
    "model_section",
]


def campaign_section(
    request: PlanningRequest, candidates: int, facts: Sequence[tuple[str, str]] = ()
) -> Section:
    """What was planned: ``facts`` (e.g. the population), targeting, budget, costs, menu."""
    campaign = request.campaign
    currency = campaign.currency
    targeting = campaign.targeting
    rows = [
        *facts,
        (
            "targeted",
            f"{targeting.column} in {', '.join(targeting.segments)}"
            if targeting.segments
            else "every scored user",
        ),
        ("candidates", f"{candidates:,}"),
        ("budget", f"{request.budget:,.0f} {currency}"),
        (
            "costs",
            f"SMS {request.sms_cost:g} {currency} per message; margin "
            f"{100 * request.margin_rate:g}% of GMV",
        ),
        ("manual practice", f"{campaign.manual.denomination} to the {_ranking(campaign)}"),
    ]
    if campaign.costs.order_value is not None:
        rows.append(("value per order", f"{campaign.costs.order_value:g} {currency}"))
    facts_table = TableData("", [Column("", "left"), Column("", "left")])
    for label, value in rows:
        facts_table.add_row(label, value)
    menu = TableData(
        "",
        [
            Column("treatment", "left"),
            Column("kind", "left"),
            Column("face value"),
            Column("threshold"),
            Column("redemption share"),
            Column("send cost"),
            Column("cost per conversion"),
            Column("value per conversion"),
        ],
    )
    sends = campaign.menu.send_costs(request.sms_cost)
    for d, send in zip(campaign.menu.denomination, sends, strict=True):
        menu.add_row(
            d.name,
            d.kind,
            f"{d.face_value:g}",
            f"{d.threshold:g}",
            fmt_share(d.redemption_share),
            f"{send:g}",
            f"{d.conversion_cost:g}",
            "basket" if d.conversion_value is None else f"{d.conversion_value:g}",
        )
    return Section(
        "Scenario",
        [
            facts_table,
            Note(
                f"Coupon menu (face value and minimum spend in {currency}; planning redemption "
                "share used only when no redemption model scores the users):"
            ),
            menu,
        ],
    )


def plan_section(plan: Plan, currency: str) -> Section:
    """The headline figures of the optimal plan, its certificate and its coupons."""
    s = plan.summary()
    cards = [
        ("users targeted", f"{s['users_targeted']:,}"),
        ("expected incremental conversions", f"{s['incremental_conversions']:,.0f}"),
        ("expected cost", f"{s['expected_cost']:,.0f} {currency}"),
        ("expected ROI", f"{s['roi']:.2f}"),
        ("expected incremental profit", f"{s['incremental_profit']:,.0f} {currency}"),
    ]
    note = "Who gets which coupon, chosen per customer by the optimizer under the budget."
    if s["gap"] is not None:
        note += (
            f" The optimal plan is certified within {100 * s['gap']:.4f}% of the best "
            "possible plan."
        )
    return Section("The plan", [Cards(cards), Note(note), denomination_table(plan)])


def baselines_section(plans: Mapping[str, Plan], request: PlanningRequest) -> Section:
    """Every policy's plan of the same candidates at the same budget, side by side."""
    return Section(
        "Against the baselines",
        [
            Note(
                "Every policy plans the same candidates with the same budget. manual: "
                "operations' RFM ranking with one uniform coupon; v1: top P(buy | coupon); v2: "
                "drop likely natural buyers, then top P(buy | coupon); uplift: top P(buy | "
                "coupon) - P(buy | no coupon); random: the uniform coupon in random order."
            ),
            plans_table(plans, request),
        ],
    )


def frontier_section(result: GridResult, currency: str) -> Section:
    """The efficient frontier, the ROI along it and the optimal plan's coupon mix."""
    figures = grid_figures(result.frame, currency, result.simulated)
    return Section(
        "What each budget buys",
        [
            Note(
                "The efficient frontier: the best expected incremental conversions at each "
                "budget (optimal) against the baselines at the same budget, the ROI along it, "
                "and the coupons the optimal plan sends."
            ),
            Images([(name, figure_png(fig)) for name, fig in figures.items()]),
        ],
    )


def _ranking(campaign) -> str:
    manual = campaign.manual
    if manual.rank_by is None:
        return "best RFM scores"
    return f"{'lowest' if manual.ascending else 'highest'} {manual.rank_by}"


def model_section(evaluation: Evaluation, rows_note: str) -> Section:
    """Model quality on held-out rows: tables, the knee, and the article's curves."""
    figures = evaluation_figures(evaluation)
    return Section(
        "Model quality",
        [
            Note(f"{rows_note} {knee_sentence(evaluation.knee)}"),
            quality_table(evaluation, "held-out rows"),
            uplift_table(evaluation),
            Images([(name.replace("_", " "), figure_png(fig)) for name, fig in figures.items()]),
        ],
    )
