"""The tables of plans valued on a randomized log: estimates, paired differences, diagnostics.

Built from :class:`~optimizer.evaluation.OfflineValues` (and, beside a plan comparison, from
:func:`~optimizer.planning.valuation.expected_and_estimated`); the command line and the HTML
report render the same objects.
"""

from __future__ import annotations

import pandas as pd

from optimizer.evaluation.offline import (
    ESTIMATOR_NAMES,
    METRICS,
    OFFLINE_DEFINITION,
    OfflineValues,
)
from optimizer.reporting.table import (
    Column,
    TableData,
    fmt_count,
    fmt_interval,
    fmt_ratio,
    fmt_share,
)

__all__ = [
    "offline_tables",
    "estimates_table",
    "differences_table",
    "expected_table",
    "grid_log_table",
]

_LABELS = {
    "incremental_conversions": "incremental conversions",
    "incremental_gmv": "incremental GMV",
    "campaign_cost": "campaign cost",
    "roi": "ROI",
    "incremental_profit": "incremental profit",
}
_UNITS = {
    "incremental_conversions": "count",
    "incremental_gmv": "money",
    "campaign_cost": "money",
    "roi": "ratio",
    "incremental_profit": "money",
}


def _main(values: OfflineValues) -> str:
    found = values.estimates["estimator"].unique().tolist()
    return next((e for e in ("dr", "snipw", "ipw") if e in found), found[0])


def _caption(values: OfflineValues, extra: str = "") -> str:
    clip = (
        f"weights cut at {values.clip:g}"
        if values.clip is not None
        else "weights not clipped (1/propensity)"
    )
    model = f"; outcome models: {values.outcome_model}" if values.outcome_model else ""
    return (
        f"Valued on {values.rows_note}. {OFFLINE_DEFINITION}; {clip}{model}. "
        "Totals scale the per-customer estimates to each plan's customers." + extra
    )


def _figures_table(frame: pd.DataFrame, title: str, first: str) -> TableData:
    """One row per plan (or pair) of ``frame``: each figure's total with its 95% interval."""
    table = TableData(
        title, [Column(first, "left", one_line=True), *(Column(_LABELS[m]) for m in METRICS)]
    )
    for label in dict.fromkeys(frame["plan"]):
        rows = frame[frame["plan"] == label].set_index("metric")
        cells = []
        for metric in METRICS:
            r = rows.loc[metric]
            cells.append(fmt_interval(r["total"], r["total_low"], r["total_high"], _UNITS[metric]))
        table.add_row(label, *cells)
    return table


def estimates_table(
    values: OfflineValues, currency: str, estimator: str | None = None
) -> TableData:
    """Each plan's estimated totals with their 95% influence-function intervals."""
    estimator = estimator or _main(values)
    frame = values.estimates[values.estimates["estimator"] == estimator]
    title = f"Plans valued on the log: {ESTIMATOR_NAMES[estimator]} ({currency})"
    table = _figures_table(frame, title, "plan")
    table.caption = _caption(values)
    return table


def differences_table(
    values: OfflineValues, currency: str, estimator: str | None = None
) -> TableData | None:
    """Paired differences between plans (same rows, same replicates); None without pairs."""
    if values.differences.empty:
        return None
    estimator = estimator or _main(values)
    frame = values.differences[values.differences["estimator"] == estimator]
    title = f"Paired differences: {ESTIMATOR_NAMES[estimator]} ({currency})"
    table = _figures_table(frame, title, "plans")
    table.caption = (
        "a - b on the same rows: an interval that excludes 0 says the log tells the plans "
        "apart. " + _caption(values)
    )
    return table


def _estimator_table(values: OfflineValues, currency: str) -> TableData:
    """Incremental conversions and profit by every estimator, both kinds of interval."""
    table = TableData(
        f"Estimators and intervals ({currency}, totals)",
        [
            Column("plan", "left", one_line=True),
            Column("estimator", "left"),
            Column("incremental conversions"),
            Column("bootstrap"),
            Column("incremental profit"),
            Column("bootstrap"),
        ],
    )
    frame = pd.concat([values.estimates, values.differences], ignore_index=True)
    for (label, estimator), rows in frame.groupby(["plan", "estimator"], sort=False):
        rows = rows.set_index("metric")
        cells = []
        for metric in ("incremental_conversions", "incremental_profit"):
            r = rows.loc[metric]
            unit = _UNITS[metric]
            cells.append(fmt_interval(r["total"], r["total_low"], r["total_high"], unit))
            cells.append(
                fmt_interval(r["total"], r["total_boot_low"], r["total_boot_high"], unit)
                if values.bootstrap
                else "n/a"
            )
        table.add_row(label, estimator, *cells)
    table.caption = (
        "IPW: inverse propensity weighting; self-normalised IPW divides by the weights' sum; "
        "doubly robust adds cross-fitted outcome models. Intervals at 95%: by influence "
        f"function, and by a customer-level bootstrap ({values.bootstrap} replicates)."
    )
    return table


def _diagnostics_table(values: OfflineValues) -> TableData:
    """Rows per arm each plan is valued on, their effective sample size, unrandomized share."""
    table = TableData(
        "Diagnostics",
        [
            Column("plan", "left", one_line=True),
            Column("arm", "left"),
            Column("plan share"),
            Column("matched rows"),
            Column("effective size"),
        ],
    )
    for _, r in values.diagnostics.iterrows():
        if r["plan_share"] == 0:
            continue
        table.add_row(
            r["plan"],
            r["arm"],
            fmt_share(r["plan_share"], 1),
            fmt_count(r["matched_rows"]),
            fmt_count(r["ess"]),
        )
    notes = []
    for _, r in values.plans.iterrows():
        if r["unrandomized_share"] > 0:
            notes.append(
                f"{r['plan']}: {r['unrandomized_share']:.1%} of its rows get an arm the log "
                "never randomized for them, valued as returning nothing and costing nothing "
                "(IPW and doubly robust conversions and GMV understate the plan; cost, ROI, "
                "profit and the self-normalised figures are not bounds)"
            )
        if r["clipped_rows"]:
            notes.append(f"{r['plan']}: {int(r['clipped_rows']):,} weights clipped")
    table.caption = (
        "plan share: share of valued rows the plan gives the arm; matched rows: rows that got "
        "it where the plan gives it; effective size: (sum of weights)^2 / sum of squared "
        "weights. " + ("; ".join(notes) + "." if notes else "Every plan arm was randomized.")
    )
    return table


def offline_tables(values: OfflineValues, currency: str) -> list[TableData]:
    """Estimates, paired differences, estimators with both intervals, diagnostics."""
    tables = [estimates_table(values, currency), differences_table(values, currency)]
    tables += [_estimator_table(values, currency), _diagnostics_table(values)]
    return [t for t in tables if t is not None]


def expected_table(frame: pd.DataFrame, currency: str, estimator: str, note: str) -> TableData:
    """The models' expected figures beside the log's estimates, per plan.

    ``note`` says which rows valued the plans (:attr:`OfflineValues.rows_note`).
    """
    table = TableData(
        f"Expected by the models vs estimated on the log ({currency})",
        [
            Column("plan", "left", one_line=True),
            Column("figure", "left"),
            Column("expected"),
            Column(f"estimated ({ESTIMATOR_NAMES.get(estimator, estimator)})"),
            Column("expected / estimated"),
        ],
    )
    for _, r in frame.iterrows():
        unit = _UNITS[r["metric"]]
        table.add_row(
            r["plan"],
            _LABELS[r["metric"]],
            fmt_interval(r["expected"], None, None, unit),
            fmt_interval(r["estimated"], r["low"], r["high"], unit),
            fmt_ratio(r["ratio"]),
        )
    table.caption = (
        "expected: the plan's figures under the models' probabilities; estimated: on the "
        f"randomized log with a 95% interval, valued on {note}. A ratio above 1: the models "
        "expect more than the log confirms (for the cost: they expect to spend more). "
        + OFFLINE_DEFINITION
        + "."
    )
    return table


def grid_log_table(frame: pd.DataFrame, currency: str) -> TableData | None:
    """A what-if grid's expected figures beside the log's estimates; None when not valued."""
    if "log_incremental_profit" not in frame.columns:
        return None
    table = TableData(
        f"What-if points valued on the log ({currency})",
        [
            Column("point", "left"),
            Column("budget"),
            Column("policy", "left", one_line=True),
            Column("conversions expected"),
            Column("on the log"),
            Column("profit expected"),
            Column("on the log"),
        ],
    )
    for _, r in frame.iterrows():
        table.add_row(
            r["context"],
            fmt_interval(r["budget"], None, None, "money"),
            r["policy"],
            fmt_interval(r["incremental_conversions"], None, None, "count"),
            fmt_interval(
                r["log_incremental_conversions"],
                r["log_incremental_conversions_low"],
                r["log_incremental_conversions_high"],
                "count",
            ),
            fmt_interval(r["incremental_profit"], None, None, "money"),
            fmt_interval(
                r["log_incremental_profit"],
                r["log_incremental_profit_low"],
                r["log_incremental_profit_high"],
                "money",
            ),
        )
    table.caption = (
        "expected: under the models' probabilities; on the log: estimated on the randomized "
        "rows (held out from the models when they are known) with a 95% influence-function "
        "interval; n/a: the point's menu has coupons the log never randomized. "
        + OFFLINE_DEFINITION
        + "."
    )
    return table
