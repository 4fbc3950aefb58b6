"""The campaign report: one self-contained HTML page for a marketing manager.

Scenario, plan, baselines, frontier, model quality (and, on request, the simulated A/B test).

Everything is inline: the figures are PNGs embedded as base64 ``data:`` URIs and the style sheet
sits in the page, so the file opens anywhere, offline, and can be mailed as it is.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from optimizer.campaign import align_scores, plan_campaign
from optimizer.evaluation import evaluate_models
from optimizer.logdata import training_rows, user_split
from optimizer.plan import ROI_DEFINITION
from optimizer.plots import plot_evaluation, plot_whatif
from optimizer.policies import POLICIES, PolicySettings
from simulator.ab import METRICS, run_experiment
from simulator.pipeline import ScoredScenario
from simulator.scenario import Scenario
from simulator.whatif import Grid, run_whatif

__all__ = ["build_report"]

Progress = Callable[[str], None]

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #1d2733; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.8em; margin-bottom: 0.1em; } h2 { border-bottom: 2px solid #d8dee6;
     padding-bottom: 0.2em; margin-top: 1.8em; }
.lead { color: #4b5a6b; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 0.3em; font-size: 0.92em; }
th, td { border: 1px solid #d8dee6; padding: 0.3em 0.7em; text-align: right; }
th { background: #f1f4f8; } td:first-child, th:first-child { text-align: left; }
td.best { background: #e3f5e6; font-weight: 600; }
.note { color: #5b6878; font-size: 0.85em; max-width: 60em; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
.card { background: #f6f8fb; border: 1px solid #d8dee6; border-radius: 6px; padding: 0.7em 1em;
        min-width: 11em; }
.card b { display: block; font-size: 1.5em; color: #0b5cad; }
img { max-width: 100%; border: 1px solid #e3e7ed; margin: 0.4em 0; }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _fmt(value: object, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        if unit == "share":
            return f"{100 * value:.2f}%"
        if unit == "ratio":
            return f"{value:.2f}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], best: set | None = None) -> str:
    """HTML table; ``best`` holds (row, column) cells to highlight. Cells are escaped."""
    best = best or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="best">{_e(c)}</td>' if (i, j) in best else f"<td>{_e(c)}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _scenario_section(scenario: Scenario, candidates: int, budget: float) -> str:
    menu_rows = [
        (d.name, _fmt(d.face_value), _fmt(d.threshold), _fmt(d.redemption_share, "share"))
        for d in scenario.menu.denomination
    ]
    facts = [
        ("population", f"{scenario.population.users:,} customers"),
        ("targeted stages", ", ".join(scenario.campaign.target_stages)),
        ("candidates", f"{candidates:,}"),
        ("budget", f"{budget:,.0f} {scenario.currency}"),
        ("campaign", f"{scenario.campaign.window_days:g}-day window, coupons valid "
                     f"{scenario.campaign.validity_days:g} days"),
        ("costs", f"SMS {scenario.costs.sms_cost:g} {scenario.currency} per message; margin "
                  f"{100 * scenario.costs.margin_rate:g}% of GMV"),
        ("manual practice", f"{scenario.manual.denomination} to the best RFM scores"),
    ]  # fmt: skip
    return (
        "<h2>Scenario</h2>"
        + _table(["", ""], facts)
        + "<p class='note'>Coupon menu (face value and minimum spend in "
        + _e(scenario.currency)
        + "; planning redemption share used only when no redemption model scores the users):</p>"
        + _table(["denomination", "face value", "threshold", "redemption share"], menu_rows)
    )


def _plans_section(plans: dict, currency: str) -> str:
    summaries = {name: plan.summary() for name, plan in plans.items()}
    opt = summaries.get("optimal") or next(iter(summaries.values()))
    cards = [
        ("users targeted", f"{opt['users_targeted']:,}"),
        ("expected incremental conversions", f"{opt['incremental_conversions']:,.0f}"),
        ("expected cost", f"{opt['expected_cost']:,.0f} {currency}"),
        ("expected ROI", f"{opt['roi']:.2f}"),
        ("expected incremental profit", f"{opt['incremental_profit']:,.0f} {currency}"),
    ]
    card_html = "".join(f"<div class='card'>{_e(k)}<b>{_e(v)}</b></div>" for k, v in cards)
    figures = [
        ("users targeted", "users_targeted", ""),
        ("incremental conversions", "incremental_conversions", ""),
        ("expected cost", "expected_cost", ""),
        ("incremental GMV", "incremental_gmv", ""),
        ("ROI", "roi", "ratio"),
        ("incremental profit", "incremental_profit", ""),
        ("P(spend > budget)", "overrun_probability", "share"),
    ]
    names = list(summaries)
    rows, best = [], set()
    for i, (label, key, unit) in enumerate(figures):
        rows.append([label, *(_fmt(summaries[n][key], unit) for n in names)])
        if key in ("incremental_conversions", "roi", "incremental_profit", "incremental_gmv"):
            top = max(names, key=lambda n, key=key: np.nan_to_num(summaries[n][key], nan=-1e300))
            best.add((i, 1 + names.index(top)))
    by = next(iter(plans.values())).by_denomination()
    by_rows = [
        (r["denomination"], f"{int(r['users']):,}", f"{r['incremental_conversions']:,.1f}",
         f"{r['expected_cost']:,.0f}")
        for _, r in by.iterrows()
    ]  # fmt: skip
    gap = opt.get("gap")
    certificate = (
        f" The optimal plan is certified within {100 * gap:.4f}% of the best possible plan."
        if gap is not None
        else ""
    )
    return (
        "<h2>The plan</h2>"
        + f"<div class='cards'>{card_html}</div>"
        + "<p class='note'>Who gets which coupon, chosen per customer by the optimizer under "
        + "the budget." + _e(certificate) + "</p>"
        + _table(["denomination", "users", "incremental conversions", "expected cost"], by_rows)
        + "<h2>Against the baselines</h2>"
        + "<p class='note'>Every policy plans the same candidates with the same budget. "
        + "manual: operations' RFM ranking with one uniform coupon; v1: top P(buy | coupon); "
        + "v2: drop likely natural buyers, then top P(buy | coupon); uplift: top P(buy | "
        + "coupon) - P(buy | no coupon); random: the uniform coupon in random order.</p>"
        + _table(["figure", *names], rows, best)
        + f"<p class='note'>{_e(ROI_DEFINITION)}. Best value per row highlighted.</p>"
    )  # fmt: skip


def _simulation_section(experiment, currency: str) -> str:
    summary = experiment.summary().set_index(["arm", "metric"])
    arms = list(experiment.arms)
    rows, best = [], set()
    treated = [a for a in arms if a != "holdout"]
    shown = ("sent", "conversions", "incremental_conversions", "campaign_cost", "roi",
             "incremental_profit", "realised_spend")  # fmt: skip
    for key, label, unit in METRICS:
        if key not in shown:
            continue
        cells = []
        for arm in arms:
            r = summary.loc[(arm, key)]
            text = _fmt(r["mean"], unit)
            if np.isfinite(r["low"]):
                text += f" [{_fmt(r['low'], unit)}, {_fmt(r['high'], unit)}]"
            cells.append(text)
        rows.append([label, *cells])
        if key in ("incremental_conversions", "roi", "incremental_profit") and len(treated) > 1:
            top = max(treated, key=lambda a, key=key: np.nan_to_num(summary.loc[(a, key), "mean"],
                                                                    nan=-1e300))  # fmt: skip
            best.add((len(rows) - 1, 1 + arms.index(top)))
    reps = int(experiment.runs["replication"].nunique())
    return (
        "<h2>Simulated A/B test</h2>"
        + "<p class='note'>Every policy played on the scenario's ground-truth world by the "
        + "discrete-event simulator (SMS gateway, coupon validity, purchases, redemptions paid "
        + f"from the budget), paired design, mean [95% CI] over {reps} replications, money in "
        + f"{_e(currency)}. Incremental figures are against the untreated holdout.</p>"
        + _table(["metric", *arms], rows, best)
    )


def _model_section(scored: ScoredScenario, directory: Path) -> str:
    models = scored.models
    if scored.history is None:
        return ""
    rows = training_rows(scored.history, scored.users, segment=models.segment)
    test = user_split(
        rows["user_id"].to_numpy(), models.test_share, models.random_state
    )  # the rows the models never saw
    evaluation = evaluate_models(models, rows[test].reset_index(drop=True))
    images = plot_evaluation(evaluation, directory)
    quality = [
        (q["model"], f"{q['rows']:,}", _fmt(q["auc"], "ratio"), f"{q['log_loss']:.4f}",
         f"{q['calibration_error']:.4f}")
        for q in evaluation.quality.to_dict(orient="records")
    ]  # fmt: skip
    uplift = [
        (u["denomination"], f"{u['qini']:.4f}", f"{100 * u['uplift_at_30']:.2f} pp",
         f"{100 * u['observed_uplift']:.2f} pp", f"{100 * u['predicted_uplift']:.2f} pp")
        for u in evaluation.uplift.to_dict(orient="records")
    ]  # fmt: skip
    knee = evaluation.knee
    return (
        "<h2>Model quality</h2>"
        + "<p class='note'>On held-out randomized customers the models never saw. The natural "
        + "model's coverage curve and precision-recall curve give the article's threshold: "
        + f"customers above P(buy | no coupon) = {knee['threshold']:.3f} "
        + f"({100 * knee['share_taken']:.1f}% of them) hold "
        + f"{100 * knee['coverage']:.1f}% of the natural buyers.</p>"
        + _table(["model", "rows", "AUC", "log-loss", "calibration error"], quality)
        + _table(
            ["coupon", "Qini", "uplift in top 30%", "observed uplift", "predicted uplift"], uplift
        )
        + "<div class='figs'>"
        + "".join(_image(p, p.stem.replace("_", " ")) for p in images)
        + "</div>"
    )


def build_report(
    scenario: Scenario,
    scored: ScoredScenario,
    *,
    budget: float | None = None,
    policies: Sequence[str] = POLICIES,
    sweep_points: int = 8,
    simulate: bool = False,
    replications: int = 3,
    progress: Progress | None = None,
) -> str:
    """The HTML page (a string) for ``scenario`` at ``budget`` (default: the scenario's).

    Parameters
    ----------
    scenario : Scenario
    scored : ScoredScenario
        World, models and scores (:func:`simulator.pipeline.score_scenario`).
    budget : float, optional
        Money.
    policies : sequence of str
        Policies compared (the optimal plan first).
    sweep_points : int
        Budgets of the frontier, from 10% to 200% of ``budget``.
    simulate : bool
        Add the simulated A/B test of the policies (paired design).
    replications : int
        Its replications.
    progress : callable, optional
        Called with a short description of each stage.
    """
    say = progress or (lambda _msg: None)
    budget = scenario.budget.amount if budget is None else float(budget)
    menu = scenario.menu
    inputs = align_scores(scored.scores, scored.users, menu, stages=scenario.campaign.target_stages)
    knee = (scored.models.summary_.get("natural_knee") or {}).get("threshold")
    settings = PolicySettings(
        denomination=scenario.manual.denomination,
        v2_threshold=knee,
        solver="dual",
        constraints=scenario.constraints.to_constraints(),
        overrun_risk=scenario.constraints.overrun_risk,
    )
    policies = ["optimal", *[p for p in policies if p != "optimal"]]
    say("planning every policy")
    plans = plan_campaign(
        inputs,
        budget,
        policies,
        settings,
        sms_cost=scenario.costs.sms_cost,
        margin_rate=scenario.costs.margin_rate,
        segment_column=scenario.constraints.segment_column,
    )
    sections = [
        _scenario_section(scenario, len(inputs.scores), budget),
        _plans_section(plans, scenario.currency),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        say("sweeping the budget")
        grid = Grid(
            budget=np.linspace(0.1 * budget, 2 * budget, sweep_points).tolist(),
            menu=[("scenario", menu)],
            sms_cost=[scenario.costs.sms_cost],
            margin_rate=[scenario.costs.margin_rate],
            stages=[tuple(scenario.campaign.target_stages)],
        )
        frontier = [p for p in ("optimal", "manual", "v2") if p in policies]
        result = run_whatif(scenario, grid, frontier, settings, scored=scored)
        images = plot_whatif(result.frame, Path(tmp) / "whatif", scenario.currency)
        sections.append(
            "<h2>What each budget buys</h2>"
            + "<p class='note'>The efficient frontier: the best expected incremental "
            + "conversions at each budget (optimal) against the baselines at the same budget, "
            + "the ROI along it, and the coupons the optimal plan sends.</p>"
            + "<div class='figs'>"
            + "".join(_image(p, p.stem) for p in images)
            + "</div>"
        )
        if simulate:
            say("simulating the A/B test")
            experiment = run_experiment(
                scenario,
                scored,
                arms=policies,
                budget=budget,
                replications=replications,
                v2_threshold=knee,
                design="paired",
            )
            sections.append(_simulation_section(experiment, scenario.currency))
        say("evaluating the models")
        sections.append(_model_section(scored, Path(tmp) / "models"))
    title = f"Coupon campaign report: {scenario.name}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        + f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        + f"<h1>{_e(title)}</h1><p class='lead'>{_e(scenario.description)}</p>"
        + "".join(sections)
        + "<p class='note'>Made by couponopt. Expected figures are under the models' "
        + "probabilities; simulated figures (when shown) come from the scenario's ground-truth "
        + "world.</p></body></html>"
    )
