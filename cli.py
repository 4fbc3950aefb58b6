"""`couponopt`: the command-line face of the coupon-campaign optimizer.

A thin typer app over the library: every command reads files and flags, calls library functions
that return data, and renders that data as rich tables. Bad input ends with one line on stderr
and exit code 2; nothing half-written is left behind.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optimizer.data import count_rows, load_log, load_scores, load_truth, load_users
from optimizer.errors import InputError
from optimizer.menu import Menu, load_menu
from optimizer.plan import ROI_DEFINITION
from optimizer.schema import USERS, TableSchema, log_schema, scores_schema, truth_schema
from optimizer.tomlio import validation_error_line
from simulator.generate import WorldSummary, write_world
from simulator.scenario import Scenario, load_scenario

app = typer.Typer(
    name="couponopt",
    help=(
        "Coupon-campaign optimizer: who gets which coupon under a budget, what it returns, "
        "and how that compares with manual targeting. Money is in the scenario's currency "
        "units, probabilities in [0, 1], time in days."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _friendly(command: F) -> F:
    """Turn library input errors into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[bold red]interrupted:[/] no output was written", highlight=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


ScenarioOption = Annotated[
    Path | None,
    typer.Option(
        "--scenario",
        help="Scenario TOML (population, menu, costs, campaign, budget). "
        "Default: the embedded default scenario (scenarios/default.toml).",
        dir_okay=False,
    ),
]
UsersOption = Annotated[
    int | None,
    typer.Option(
        "--users", min=1, help="Number of customers to generate (overrides the scenario)."
    ),
]
PopulationOption = Annotated[
    int | None,
    typer.Option("--population", min=1, help="Synthetic world size (overrides the scenario)."),
]
SeedOption = Annotated[
    int | None,
    typer.Option("--seed", min=0, help="Random seed of the world (overrides the scenario)."),
]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def _summary_tables(summary: WorldSummary, scenario: Scenario) -> list[Table]:
    stages = summary.stage_frame()
    window = f"{scenario.campaign.window_days:g}-day window"
    table = Table(title=f"Synthetic population: {summary.users:,} users", title_justify="left")
    table.add_column("stage")
    table.add_column("users", justify="right")
    table.add_column("share", justify="right")
    table.add_column("natural", justify="right")
    for name in summary.menu_names:
        table.add_column(f"lift {name}", justify="right")
    for stage, row in stages.iterrows():
        table.add_row(
            str(stage),
            f"{row['users']:,}",
            _pct(row["share"]),
            _pct(row["natural_rate"]),
            *(_pp(row[f"lift__{name}"]) for name in summary.menu_names),
            style="bold" if stage in ("target", "all") else ("cyan" if row["targeted"] else None),
        )
    table.caption = (
        f"natural: mean true P(buy in the {window} | no coupon). "
        "lift: mean true P(buy | coupon) - natural, in percentage points. "
        f"target = {', '.join(scenario.campaign.target_stages)} (highlighted)."
    )
    table.caption_justify = "left"

    arche = Table(title="Uplift archetypes (ground truth)", title_justify="left")
    arche.add_column("archetype")
    arche.add_column("users", justify="right")
    arche.add_column("share", justify="right")
    for name, row in summary.archetype_frame().iterrows():
        arche.add_row(str(name), f"{int(row['users']):,}", _pct(row["share"]))

    logs = Table(title="Campaign log (history)", title_justify="left")
    for col in ("assignment", "denomination", "rows", "conversion", "redemption"):
        logs.add_column(col, justify="left" if col in ("assignment", "denomination") else "right")
    for _, row in summary.log_frame().iterrows():
        logs.add_row(
            row["assignment"],
            row["denomination"],
            f"{row['rows']:,}",
            _pct(row["conversion_rate"]),
            _pct(row["redemption_rate"]),
        )
    logs.caption = (
        "randomized: arms drawn at random (training data); manual: coupon sent by RFM rule "
        "(biased). conversion and redemption: observed shares of logged users."
    )
    logs.caption_justify = "left"
    return [table, arche, logs]


def _scenario(path: Path | None, users: int | None, seed: int | None) -> Scenario:
    scenario = load_scenario(path)
    try:
        return scenario.with_overrides(users=users, seed=seed)
    except Exception as exc:  # pydantic.ValidationError on an override
        raise InputError(str(exc).splitlines()[0], source="command line") from None


@app.command()
@_friendly
def generate(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Directory to write users/history/truth tables and menu.toml.",
            file_okay=False,
        ),
    ],
    users: UsersOption = None,
    seed: SeedOption = None,
    scenario: ScenarioOption = None,
    csv: Annotated[
        bool, typer.Option("--csv", help="Also write .csv copies of the three tables.")
    ] = False,
) -> None:
    """Generate a synthetic customer world with known ground truth.

    Writes users.parquet (features), history.parquet (randomized and manual campaign log),
    truth.parquet (true natural and per-coupon conversion probabilities; for tests and
    benchmarks only), menu.toml and scenario.toml. Memory stays bounded at any size.
    """
    scen = _scenario(scenario, users, seed)
    total = scen.population.users
    with _progress() as bar:
        task = bar.add_task("generating users", total=total)
        summary = write_world(
            scen, out_dir, csv=csv, progress=lambda done, _total: bar.update(task, completed=done)
        )
    for table in _summary_tables(summary, scen):
        out.print(table)
    out.print(f"wrote {out_dir}/{{users,history,truth}}.parquet, menu.toml, scenario.toml")


def _plan_tables(
    plans: dict, currency: str, constraints: str = "", segment_column: str = "segment"
) -> list[Table]:
    summaries = {name: plan.summary() for name, plan in plans.items()}
    table = Table(title=f"Campaign plans ({currency})", title_justify="left")
    table.add_column("figure")
    for name in summaries:
        table.add_column(name, justify="right")
    rows = [
        ("users (candidates)", lambda s: f"{s['users']:,}"),
        ("users targeted", lambda s: f"{s['users_targeted']:,}"),
        ("incremental conversions", lambda s: f"{s['incremental_conversions']:,.1f}"),
        ("expected cost", lambda s: f"{s['expected_cost']:,.0f}"),
        (
            "spend 95% interval",
            lambda s: f"{s['spend_95_low']:,.0f}-{s['spend_95_high']:,.0f}",
        ),
        ("P(spend > budget)", lambda s: f"{100 * s['overrun_probability']:.1f}%"),
        ("incremental GMV", lambda s: f"{s['incremental_gmv']:,.0f}"),
        ("ROI", lambda s: f"{s['roi']:.2f}"),
        ("incremental profit", lambda s: f"{s['incremental_profit']:,.0f}"),
        ("solver", lambda s: s["solver"]),
        ("certified gap", lambda s: "" if s["gap"] is None else f"{100 * s['gap']:.4f}%"),
        ("time (s)", lambda s: f"{s['seconds']:.2f}"),
    ]
    best_rows = {
        "incremental conversions": "incremental_conversions",
        "ROI": "roi",
        "incremental profit": "incremental_profit",
    }
    for label, fmt in rows:
        cells = [fmt(s) for s in summaries.values()]
        key = best_rows.get(label)
        if key and len(summaries) > 1:
            best = max(summaries, key=lambda n, key=key: summaries[n][key])
            cells = [
                f"[bold green]{c}[/]" if n == best else c
                for n, c in zip(summaries, cells, strict=True)
            ]
        table.add_row(label, *cells)
    table.caption = (
        "Expected figures under the models' probabilities; spend interval and overrun "
        "probability by the normal approximation of independent redemptions. "
        + ROI_DEFINITION
        + ". Best value per row in green."
        + (f" Constraints: {constraints}." if constraints else "")
    )
    table.caption_justify = "left"
    tables = [table]
    first = next(iter(plans.values()))
    by = Table(title=f"{first.policy} plan by denomination", title_justify="left")
    for col in ("denomination", "users", "incremental conversions", "expected cost"):
        by.add_column(col, justify="left" if col == "denomination" else "right")
    for _, r in first.by_denomination().iterrows():
        by.add_row(
            r["denomination"],
            f"{int(r['users']):,}",
            f"{r['incremental_conversions']:,.1f}",
            f"{r['expected_cost']:,.0f}",
        )
    tables.append(by)
    segments = first.by_segment()
    if len(segments):
        seg = Table(title=f"{first.policy} plan by {segment_column}", title_justify="left")
        for col in ("segment", "candidates", "targeted", "share of messages"):
            seg.add_column(col, justify="left" if col == "segment" else "right")
        seg.add_column("incremental conversions", justify="right")
        seg.add_column("expected cost", justify="right")
        for _, r in segments.iterrows():
            seg.add_row(
                str(r["segment"]),
                f"{int(r['users']):,}",
                f"{int(r['users_targeted']):,}",
                f"{100 * r['message_share']:.1f}%",
                f"{r['incremental_conversions']:,.1f}",
                f"{r['expected_cost']:,.0f}",
            )
        tables.append(seg)
    return tables


MatchOption = Annotated[
    str | None,
    typer.Option(
        "--match",
        help="Baseline policies the optimal plan is made like-for-like with, comma-separated "
        "(e.g. v2 or manual,v2); see --match-on.",
    ),
]
MatchOnOption = Annotated[
    str,
    typer.Option(
        "--match-on",
        help="value: spend only the least budget at which the optimal plan's expected "
        "objective reaches the best matched plan's; spend: give it the matched plans' "
        "expected spend as its budget; spend_conversions: that budget and at least their "
        "expected incremental conversions (with --objective gmv: the highest ROI at no more "
        "spend and no fewer conversions).",
    ),
]


def _policy_list(text: str | None, source: str) -> tuple[str, ...]:
    """Comma-separated policy names, checked against the optimizer's policies."""
    from optimizer.policies import POLICIES

    names = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES or p == "optimal"]
    if unknown:
        raise InputError(
            f"unknown policy {unknown[0]!r}; expected some of {', '.join(POLICIES[1:])}",
            source=source,
        )
    return names


def _match_text(plan, matched: tuple[str, ...], match_on: str) -> str:
    """One phrase saying what the optimal plan was matched to, and the budget it used."""
    what = "expected objective" if match_on == "value" else "expected spend"
    text = f"optimal matched to the {what} of {', '.join(matched)}"
    if plan is not None and "spend_budget" in plan.details:
        text += f" (least budget reaching it: {plan.details['spend_budget']:,.0f})"
    return text


@app.command()
@_friendly
def optimize(
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget", min=0, help="Campaign budget in currency units (default: the scenario's)."
        ),
    ] = None,
    scenario: ScenarioOption = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            "--scores",
            help="Scores file from `couponopt score` (default: the "
            "scenario's synthetic world, scored end to end).",
            dir_okay=False,
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            "--users", help="User table for --scores (features, lifecycle stages).", dir_okay=False
        ),
    ] = None,
    menu: Annotated[
        Path | None,
        typer.Option(
            "--menu",
            help="Coupon menu TOML for --scores (default: the scenario's).",
            dir_okay=False,
        ),
    ] = None,
    objective: Annotated[
        str, typer.Option("--objective", help="conversions, gmv or profit (money).")
    ] = "conversions",
    solver: Annotated[
        str, typer.Option("--solver", help="auto (exact up to 5,000 users), pulp or dual.")
    ] = "auto",
    policy: Annotated[
        str,
        typer.Option("--policy", help="optimal, manual, v1, v2, uplift or random."),
    ] = "optimal",
    compare: Annotated[
        bool, typer.Option("--compare", help="Also plan every baseline policy at this budget.")
    ] = False,
    denomination: Annotated[
        str | None,
        typer.Option(
            "--denomination",
            help="Uniform coupon of the baseline policies "
            "(default: the scenario's manual practice).",
        ),
    ] = None,
    v2_threshold: Annotated[
        float | None,
        typer.Option(
            "--v2-threshold",
            min=0.0,
            max=1.0,
            help="Natural-probability cut of v2 "
            "(default: the natural model's coverage knee, else 0.9).",
        ),
    ] = None,
    match: MatchOption = None,
    match_on: MatchOnOption = "value",
    screen: Annotated[
        bool,
        typer.Option(
            "--screen",
            help="The optimal plan leaves out users above v2's natural-probability cut "
            "(--v2-threshold, else the natural model's coverage knee, else 0.9).",
        ),
    ] = False,
    max_per_denomination: Annotated[
        str | None,
        typer.Option(
            "--max-per-denomination", help="Coupon inventory, e.g. 10off99=20000,5off49=500."
        ),
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=0, help="At most this many messages.")
    ] = None,
    min_roi: Annotated[
        float | None,
        typer.Option(
            "--min-roi",
            min=0.0,
            help="Minimum ROI: expected incremental GMV / "
            "expected campaign cost (money per money).",
        ),
    ] = None,
    segment_share: Annotated[
        str | None,
        typer.Option(
            "--segment-share",
            help="Share of messages per segment, e.g. dormant=0.5:,lapsed=:0.2 "
            "(min:max, either side may be empty).",
        ),
    ] = None,
    segment_column: Annotated[
        str | None,
        typer.Option(
            "--segment-column",
            help="User-table column the segments come from (default: the scenario's, "
            "lifecycle_stage).",
        ),
    ] = None,
    exclude: Annotated[
        Path | None,
        typer.Option(
            "--exclude",
            help="Users who must get nothing (opted out): a table with a "
            "user_id column, or a .txt file with one id per line.",
            dir_okay=False,
        ),
    ] = None,
    overrun_risk: Annotated[
        float | None,
        typer.Option(
            "--overrun-risk",
            min=0.0,
            max=1.0,
            help="Plan so that P(realised spend > budget) is at most this probability (normal "
            "approximation of the sum of independent redemptions).",
        ),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option(
            "--population",
            min=1,
            help="Synthetic world size without --scores "
            "(overrides the scenario's population.users).",
        ),
    ] = None,
    seed: SeedOption = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the plan (.parquet or .csv): user_id, denomination, "
            "p_natural, p_coupon, expected_uplift, expected_cost.",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the figures, nothing else.")
    ] = False,
) -> None:
    """Plan a campaign under a budget: who gets which coupon, and what it is expected to return.

    Without --scores it runs the scenario end to end: synthetic world, randomized log, models
    (trained on the target stages and cached), scores of the target users, then the plan.
    """
    import json as jsonlib

    from optimizer.campaign import align_scores, plan_campaign
    from optimizer.constraints import Constraints, parse_caps, parse_segment_shares
    from optimizer.data import load_user_ids, write_table
    from optimizer.policies import ARTICLE_V2_THRESHOLD, POLICIES, PolicySettings
    from simulator.pipeline import score_scenario

    scen = _scenario(scenario, population, seed)
    amount = scen.budget.amount if budget is None else budget
    if exclude is None and scen.constraints.exclude_file is not None:
        # A relative path in a scenario file is relative to that file.
        exclude = Path(scen.constraints.exclude_file)
        if not exclude.is_absolute() and scenario is not None:
            exclude = scenario.parent / exclude
    excluded = load_user_ids(exclude) if exclude is not None else None
    knee = None
    if scores is None:
        if users is not None or menu is not None:
            raise InputError("--users and --menu go with --scores", source="--scores")
        with err.status("scoring the scenario's users ...") as status:
            scored = score_scenario(scen, progress=lambda msg: status.update(msg))
        the_menu = scen.menu
        inputs = align_scores(
            scored.scores,
            scored.users,
            the_menu,
            stages=scen.campaign.target_stages,
            exclude=excluded,
        )
        knee = (scored.models.summary_.get("natural_knee") or {}).get("threshold")
    else:
        if users is None:
            raise InputError("--scores needs --users (the user table)", source="--users")
        the_menu = load_menu(menu) if menu is not None else scen.menu
        inputs = align_scores(
            load_scores(scores, the_menu), load_users(users), the_menu, exclude=excluded
        )
    if len(inputs.scores) == 0:
        raise InputError("no candidate users to plan for", source="--scores")
    given = scen.constraints.to_constraints()
    caps = parse_caps(max_per_denomination)
    shares = parse_segment_shares(segment_share)
    settings = PolicySettings(
        denomination=denomination or scen.manual.denomination,
        v2_threshold=v2_threshold if v2_threshold is not None else knee,
        solver=solver,
        constraints=Constraints(
            max_per_denomination=given.max_per_denomination if caps is None else caps,
            max_messages=given.max_messages if max_messages is None else max_messages,
            min_roi=given.min_roi if min_roi is None else min_roi,
            segment_shares=shares or given.segment_shares,
        ),
        overrun_risk=scen.constraints.overrun_risk if overrun_risk is None else overrun_risk,
    )
    if screen:
        cut = settings.v2_threshold
        settings = replace(settings, natural_screen=ARTICLE_V2_THRESHOLD if cut is None else cut)
    policies = [policy] + ([p for p in POLICIES if p != policy] if compare else [])
    seg_column = segment_column or scen.constraints.segment_column
    matched = _policy_list(match, "--match")
    if matched and "optimal" not in policies:
        raise InputError(
            "--match compares the optimal plan: use --policy optimal", source="--match"
        )
    plans = plan_campaign(
        inputs,
        amount,
        policies,
        settings,
        objective=objective,
        sms_cost=scen.costs.sms_cost,
        margin_rate=scen.costs.margin_rate,
        segment_column=seg_column,
        match=matched,
        match_on=match_on,
    )
    if out_path is not None:
        write_table(plans[policy].to_frame(), out_path)
    if as_json:
        payload = {
            "currency": scen.currency,
            "budget": amount,
            "objective": objective,
            "definitions": ROI_DEFINITION,
            "constraints": settings.constraints.to_dict(),
            "segment_column": seg_column,
            "match": {"policies": list(matched), "on": match_on} if matched else None,
            "plans": {name: plan.summary() for name, plan in plans.items()},
            "by_denomination": plans[policy].by_denomination().to_dict(orient="records"),
            "by_segment": plans[policy].by_segment().to_dict(orient="records"),
        }
        sys.stdout.write(jsonlib.dumps(payload, default=float) + "\n")
        return
    described = ", ".join(f"{k} {v}" for k, v in settings.constraints.to_dict().items())
    if matched:
        described += (", " if described else "") + _match_text(plans.get("optimal"), matched,
                                                                 match_on)  # fmt: skip
    for table in _plan_tables(plans, scen.currency, described, seg_column):
        out.print(table)
    if out_path is not None:
        out.print(f"wrote {out_path}")


#: Metrics whose best arm is highlighted in the simulation table (higher is better).
_SIM_BEST = ("conversion_rate", "incremental_conversions", "incremental_gmv", "roi",
             "incremental_profit")  # fmt: skip


def _cell(mean: float, low: float, high: float, unit: str) -> str:
    def fmt(x: float) -> str:
        if x != x:  # NaN
            return "n/a"
        if unit == "share":
            return f"{100 * x:.2f}%"
        if unit == "ratio":
            return f"{x:.2f}"
        return f"{x:,.0f}" if abs(x) >= 100 or unit == "count" else f"{x:,.1f}"

    if low != low:
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def _simulation_tables(experiment, currency: str, reference: str) -> list[Table]:
    from simulator.ab import METRICS

    summary = experiment.summary().set_index(["arm", "metric"])
    reps = int(experiment.runs["replication"].nunique())
    table = Table(
        title=f"Simulated A/B test ({currency}; mean [95% CI] over {reps} replications)",
        title_justify="left",
    )
    table.add_column("metric", overflow="fold", min_width=12)
    for arm in experiment.arms:
        table.add_column(arm, justify="right")
    for key, label, unit in METRICS:
        cells = []
        treated = [a for a in experiment.arms if a != "holdout"]
        best = None
        if key in _SIM_BEST and len(treated) > 1:
            best = max(treated, key=lambda a, key=key: np.nan_to_num(summary.loc[(a, key), "mean"],
                                                                      nan=-np.inf))  # fmt: skip
        for arm in experiment.arms:
            r = summary.loc[(arm, key)]
            text = _cell(r["mean"], r["low"], r["high"], unit)
            cells.append(f"[bold green]{text}[/]" if arm == best else text)
        table.add_row(label, *cells)
    table.caption = (
        "Incremental figures are against the untreated holdout (rate difference x users). "
        "campaign cost = face value of redeemed coupons + message cost; ROI = incremental GMV "
        "/ campaign cost; incremental profit = margin x incremental GMV - campaign cost. "
        "Best treated arm per row in green."
    )
    table.caption_justify = "left"
    tables = [table]
    if reference in experiment.arms and len(experiment.arms) > 2:
        versus = experiment.versus(reference).set_index(["arm", "metric"])
        diff = Table(
            title=f"Difference from {reference} (paired by replication, mean [95% CI])",
            title_justify="left",
        )
        diff.add_column("metric", overflow="fold", min_width=12)
        others = [a for a in experiment.arms if a not in (reference, "holdout")]
        for arm in others:
            diff.add_column(arm, justify="right")
        shown = ("conversion_rate", "targeted_conversion_rate", "incremental_conversions",
                 "incremental_gmv", "campaign_cost", "roi", "incremental_profit")  # fmt: skip
        for key, label, unit in METRICS:
            if key not in shown:
                continue
            row = [label]
            for arm in others:
                r = versus.loc[(arm, key)]
                row.append(_cell(r["mean"], r["low"], r["high"], unit))
            diff.add_row(*row)
        tables.append(diff)
    return tables


@app.command()
@_friendly
def simulate(
    scenario: ScenarioOption = None,
    arms: Annotated[
        str | None,
        typer.Option(
            "--arms",
            help="Policy arms, comma-separated: optimal, manual, v1, v2, uplift, random "
            "(default: the scenario's; an untreated holdout is always added).",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            min=0,
            help="Total budget in currency units, shared by the policy arms in proportion to "
            "their users (default: the scenario's).",
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option("--replications", min=2, help="Independent repetitions (default: 5)."),
    ] = None,
    reference: Annotated[
        str, typer.Option("--reference", help="Arm the others are compared with.")
    ] = "manual",
    match: Annotated[
        str | None,
        typer.Option(
            "--match",
            help="Baseline policies the optimal arm is made like-for-like with "
            "(default: the scenario's simulation.match; 'none' for none).",
        ),
    ] = None,
    match_on: Annotated[
        str | None,
        typer.Option(
            "--match-on",
            help="value, spend or spend_conversions (default: the scenario's simulation.match_on).",
        ),
    ] = None,
    screen: Annotated[
        bool | None,
        typer.Option(
            "--screen/--no-screen",
            help="The optimal arm leaves out users above v2's natural-probability cut "
            "(default: the scenario's simulation.screen).",
        ),
    ] = None,
    design: Annotated[
        str,
        typer.Option(
            "--design",
            help="split: users randomised into arms (a real A/B test); paired: every policy "
            "on the whole population with the same per-user draws (common random numbers).",
        ),
    ] = "split",
    population: PopulationOption = None,
    seed: SeedOption = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write every replication's metrics per arm (.parquet or .csv).",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the results, nothing else.")
    ] = False,
) -> None:
    """Run a simulated A/B test: policy arms and a holdout on the scenario's ground-truth world.

    Users of the target stages are randomised into arms; each policy arm plans its users with
    its share of the budget; a discrete-event simulation (SMS gateway, coupon validity,
    purchases, redemptions paid from the real budget) measures what happens, replicated with
    independent seeds.
    """
    import json as jsonlib

    from optimizer.campaign import MATCH_ON
    from optimizer.data import write_table
    from simulator.ab import run_experiment
    from simulator.pipeline import score_scenario
    from simulator.scenario import Simulation

    scen = _scenario(scenario, population, seed)
    if design not in ("split", "paired"):
        raise InputError("design must be split or paired", source="--design")
    chosen = tuple(a.strip() for a in arms.split(",") if a.strip()) if arms else None
    if chosen is not None:
        try:
            Simulation(arms=chosen)
        except Exception as exc:  # pydantic.ValidationError
            raise InputError(validation_error_line(exc, Simulation), source="--arms") from None
    matched = None
    if match is not None:
        matched = () if match.strip() == "none" else _policy_list(match, "--match")
    if match_on is not None and match_on not in MATCH_ON:
        raise InputError(f"match-on must be one of {', '.join(MATCH_ON)}", source="--match-on")
    with err.status("scoring the scenario's users ...") as status:
        scored = score_scenario(scen, progress=lambda msg: status.update(msg))
    with _progress() as bar:
        task = bar.add_task("simulating arms x replications", total=None)
        experiment = run_experiment(
            scen,
            scored,
            arms=chosen,
            budget=budget,
            replications=replications,
            design=design,
            match=matched,
            match_on=match_on,
            screen=screen,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if out_path is not None:
        write_table(experiment.runs, out_path)
    if as_json:
        payload = {
            "scenario": scen.name,
            "currency": scen.currency,
            "budget": experiment.budget,
            "replications": int(experiment.runs["replication"].nunique()),
            "design": design,
            "arms": list(experiment.arms),
            "definitions": ROI_DEFINITION,
            "summary": experiment.summary().to_dict(orient="records"),
            "versus": (
                experiment.versus(reference).to_dict(orient="records")
                if reference in experiment.arms
                else []
            ),
        }
        sys.stdout.write(jsonlib.dumps(payload, default=float) + "\n")
        return
    for table in _simulation_tables(experiment, scen.currency, reference):
        out.print(table)
    if out_path is not None:
        out.print(f"wrote {out_path}")


def _whatif_tables(result, currency: str, width: int) -> list[Table]:
    from simulator.whatif import FIGURES, marginal_value, profit_peaks

    frame = result.frame
    policies = list(result.policies)
    varied = [a for a in result.grid.varied if a != "budget"]
    short = {"incremental_conversions": "conv", "expected_cost": "cost", "roi": "ROI",
             "incremental_profit": "profit"}  # fmt: skip
    # Wide (a column per policy and figure) when the console has room, else one row per
    # point and policy, so that nothing is cut in an 80-column terminal or a file.
    wide = width >= 12 + 36 * len(policies) + (16 if varied else 0)
    table = Table(
        title=f"What-if grid ({currency}; expected figures per policy)", title_justify="left"
    )
    if varied:
        table.add_column("context")
    table.add_column("budget", justify="right")
    if wide:
        for policy in policies:
            for key, _ in FIGURES:
                table.add_column(f"{policy}\n{short[key]}", justify="right")
    else:
        table.add_column("policy")
        for key, _ in FIGURES:
            table.add_column(short[key], justify="right")

    def compact(value: float, key: str) -> str:
        if key == "roi":
            return f"{value:.2f}"
        if key == "incremental_conversions" or abs(value) < 10_000:
            return f"{value:,.0f}"
        return f"{value / 1000:,.1f}k"

    def cell(part: pd.DataFrame, policy: str, key: str) -> str:
        value = part.loc[policy, key]
        text = compact(value, key)
        if result.simulated and key in ("incremental_conversions", "roi"):
            text += f" ({compact(part.loc[policy, f'sim_{key}'], key)})"
        better = key != "expected_cost" and len(policies) > 1
        if better and value >= part[key].max() - 1e-12:
            text = f"[bold green]{text}[/]"
        return text

    for (context, budget), part in frame.groupby(["context", "budget"], sort=False):
        part = part.set_index("policy")
        head = ([context] if varied else []) + [compact(budget, "budget")]
        if wide:
            table.add_row(*head, *(cell(part, p, k) for p in policies for k, _ in FIGURES))
            continue
        for i, policy in enumerate(policies):
            blank = [""] * len(head)
            table.add_row(
                *(head if i == 0 else blank),
                policy,
                *(cell(part, policy, k) for k, _ in FIGURES),
                end_section=i == len(policies) - 1,
            )
    table.caption = (
        "conv: incremental conversions; cost: expected face value of redeemed coupons + "
        "message cost; ROI = incremental GMV / cost; profit: margin x incremental GMV - cost. "
        "Expected under the models' probabilities"
        + ("; in parentheses the simulated mean (paired design)" if result.simulated else "")
        + ". Best policy per point in green."
    )
    table.caption_justify = "left"
    tables = [table]
    marginal = marginal_value(frame)
    if len(marginal):
        extra = Table(
            title="Marginal value of budget: extra incremental conversions per 1,000 "
            f"{currency} between consecutive budgets",
            title_justify="left",
        )
        if varied:
            extra.add_column("context")
        extra.add_column("budgets", justify="right")
        for policy in policies:
            extra.add_column(policy, justify="right")
        for (context, lo, hi), part in marginal.groupby(
            ["context", "from_budget", "to_budget"], sort=False
        ):
            part = part.set_index("policy")
            row = ([context] if varied else []) + [f"{lo:,.0f} -> {hi:,.0f}"]
            row += [f"{1000 * part.loc[p, 'per_money']:.2f}" for p in policies]
            extra.add_row(*row)
        tables.append(extra)
    peaks = profit_peaks(frame)
    peak = Table(title="Where expected incremental profit peaks on the grid", title_justify="left")
    for col in (["context"] if varied else []) + ["policy", "budget", "spends", "profit"]:
        peak.add_column(col, justify="left" if col in ("context", "policy") else "right")
    for _, r in peaks.iterrows():
        peak.add_row(
            *([r["context"]] if varied else []),
            r["policy"],
            f"{r['budget']:,.0f}",
            f"{r['expected_cost']:,.0f}",
            f"{r['incremental_profit']:,.0f}",
        )
    peak.caption = (
        "spends: the plan's expected cost at that budget (below it when more money buys "
        "nothing the objective values)."
    )
    peak.caption_justify = "left"
    tables.append(peak)
    return tables


@app.command()
@_friendly
def whatif(
    scenario: ScenarioOption = None,
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary",
            help="An axis and its values, repeatable: budget=10000:200000:10 (start:stop:"
            "points) or budget=20000,50000; menu=menus/a.toml,menus/b.toml; "
            "sms_cost=0.03,0.06; margin_rate=0.2,0.3; stages=dormant,dormant+lapsed.",
        ),
    ] = None,
    policies: Annotated[
        str | None,
        typer.Option(
            "--policies",
            help="Policies to compare, comma-separated (default: the scenario's "
            "whatif.policies, optimal,manual,v2).",
        ),
    ] = None,
    objective: Annotated[
        str, typer.Option("--objective", help="conversions, gmv or profit (money).")
    ] = "conversions",
    simulate_points: Annotated[
        bool,
        typer.Option(
            "--simulate", help="Also play every point on the scenario's world (paired design)."
        ),
    ] = False,
    replications: Annotated[
        int, typer.Option("--replications", min=2, help="Simulated replications per point.")
    ] = 3,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes simulating points in parallel (default: one per CPU).",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write frontier.png, roi.png and mix.png here.", file_okay=False
        ),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            "--scores",
            help="Scores file instead of the scenario's world (budget, sms_cost and "
            "margin_rate axes only).",
            dir_okay=False,
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option("--users", help="User table for --scores.", dir_okay=False),
    ] = None,
    menu: Annotated[
        Path | None,
        typer.Option("--menu", help="Coupon menu TOML for --scores.", dir_okay=False),
    ] = None,
    solver: Annotated[
        str, typer.Option("--solver", help="auto (exact up to 5,000 users), pulp or dual.")
    ] = "auto",
    population: PopulationOption = None,
    seed: SeedOption = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write every point's row per policy (.parquet or .csv).", dir_okay=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the results, nothing else.")
    ] = False,
) -> None:
    """Answer what-if questions: the plans (and simulated outcomes) across a grid.

    Vary the budget, the coupon menu, the SMS cost, the margin or the targeted stages (--vary, or
    the scenario's [whatif] section); the models are trained once, each menu/cost/stage
    combination builds its problem once and the budget axis is swept on it.
    """
    import json as jsonlib

    from optimizer.campaign import align_scores
    from optimizer.data import write_table
    from optimizer.lifecycle import STAGES
    from optimizer.plots import plot_whatif
    from optimizer.policies import POLICIES, PolicySettings
    from simulator.pipeline import score_scenario
    from simulator.whatif import marginal_value, parse_vary, profit_peaks, run_whatif

    scen = _scenario(scenario, population, seed)
    names = scen.whatif.policies
    if policies is not None:
        names = tuple(p.strip() for p in policies.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown or not names:
        raise InputError(
            f"unknown policy {unknown[0] if unknown else policies!r}; expected some of "
            f"{', '.join(POLICIES)}",
            source="--policies",
        )
    if vary:
        grid = parse_vary(vary, scen)
    else:  # the scenario's grid; its menu files are relative to the scenario file
        grid = parse_vary(scen.whatif.vary, scen, base=scenario.parent if scenario else None)
    inputs = scored = None
    knee = None
    if scores is not None:
        if users is None:
            raise InputError("--scores needs --users (the user table)", source="--users")
        if len(grid.menu) > 1 or len(grid.stages) > 1:
            raise InputError(
                "with --scores only budget, sms_cost and margin_rate can vary (a menu or a "
                "stage set needs the scenario's models and world)",
                source="--vary",
            )
        the_menu = load_menu(menu) if menu is not None else scen.menu
        inputs = align_scores(load_scores(scores, the_menu), load_users(users), the_menu)
        grid.menu = [("scores", the_menu)]
    else:
        stages = sorted({s for st in grid.stages for s in st}, key=STAGES.index)
        trained = scen.model_copy(
            update={"campaign": scen.campaign.model_copy(update={"target_stages": tuple(stages)})}
        )
        with err.status("scoring the scenario's users ...") as status:
            scored = score_scenario(trained, progress=lambda msg: status.update(msg))
        knee = (scored.models.summary_.get("natural_knee") or {}).get("threshold")
    settings = PolicySettings(
        denomination=scen.manual.denomination,
        v2_threshold=knee,
        solver=solver,
        constraints=scen.constraints.to_constraints(),
        overrun_risk=scen.constraints.overrun_risk,
    )
    with _progress() as bar:
        task = bar.add_task("planning the grid", total=None)
        result = run_whatif(
            scen,
            grid,
            names,
            settings,
            scored=scored,
            inputs=inputs,
            objective=objective,
            simulate=simulate_points,
            replications=replications,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    written = plot_whatif(result.frame, plot, scen.currency, result.simulated) if plot else []
    if out_path is not None:
        write_table(result.frame, out_path)
    if as_json:
        payload = {
            "scenario": scen.name,
            "currency": scen.currency,
            "objective": objective,
            "policies": list(names),
            "varied": result.grid.varied,
            "simulated": result.simulated,
            "definitions": ROI_DEFINITION,
            "points": result.frame.to_dict(orient="records"),
            "marginal_value": marginal_value(result.frame).to_dict(orient="records"),
            "profit_peaks": profit_peaks(result.frame).to_dict(orient="records"),
            "plots": [str(p) for p in written],
        }
        sys.stdout.write(jsonlib.dumps(payload, default=float) + "\n")
        return
    for table in _whatif_tables(result, scen.currency, out.width):
        out.print(table)
    for path in written:
        out.print(f"wrote {path}")
    if out_path is not None:
        out.print(f"wrote {out_path}")


@app.command()
@_friendly
def report(
    out_path: Annotated[
        Path,
        typer.Option("--out", help="The HTML file to write (self-contained).", dir_okay=False),
    ],
    scenario: ScenarioOption = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget", min=0, help="Budget in currency units (default: the scenario's)."),
    ] = None,
    simulate_arms: Annotated[
        bool,
        typer.Option("--simulate", help="Add the simulated A/B test of every policy."),
    ] = False,
    replications: Annotated[
        int, typer.Option("--replications", min=2, help="Replications of --simulate.")
    ] = 3,
    population: PopulationOption = None,
    seed: SeedOption = None,
) -> None:
    """Write one self-contained HTML report: scenario, plan, baselines, frontier, model quality.

    The page embeds its figures (PNG) and style, so it opens anywhere offline.
    """
    from optimizer.atomic import atomic_path
    from simulator.pipeline import score_scenario
    from simulator.report import build_report

    if out_path.suffix.lower() not in (".html", ".htm"):
        raise InputError("the report is HTML: give --out a .html name", source="--out")
    scen = _scenario(scenario, population, seed)
    with err.status("scoring the scenario's users ...") as status:
        scored = score_scenario(scen, progress=lambda msg: status.update(msg))
        page = build_report(
            scen,
            scored,
            budget=budget,
            simulate=simulate_arms,
            replications=replications,
            progress=lambda msg: status.update(msg),
        )
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    out.print(f"wrote {out_path} ({len(page) / 1e6:.1f} MB)")


def _stages(segment: list[str] | None) -> list[str] | None:
    """Accept ``--segment dormant --segment lapsed`` and ``--segment dormant,lapsed``."""
    if not segment:
        return None
    return [s.strip() for item in segment for s in item.split(",") if s.strip()]


def _metric(x: float, digits: int = 3) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"  # NaN-safe


@app.command()
@_friendly
def train(
    log: Annotated[
        Path, typer.Option("--log", help="Campaign log (history.parquet or .csv).", dir_okay=False)
    ],
    users: Annotated[
        Path, typer.Option("--users", help="User table (users.parquet or .csv).", dir_okay=False)
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory to write the trained models into.")
    ],
    menu: Annotated[
        Path | None,
        typer.Option(
            "--menu",
            help="Coupon menu TOML (default: menu.toml beside the log, else the default menu).",
            dir_okay=False,
        ),
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="Train only on log rows of these lifecycle stages at campaign time "
            "(active, cooling, lapsed, dormant; repeat or comma-separate). Default: all.",
        ),
    ] = None,
    test_share: Annotated[
        float,
        typer.Option(
            "--test-share", min=0.0, max=0.9, help="Share of users held out for `evaluate`."
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the split and models.")] = 0,
    max_epochs: Annotated[
        int, typer.Option("--max-epochs", min=1, help="Upper bound on training epochs per model.")
    ] = 60,
    head: Annotated[
        str,
        typer.Option(
            "--head",
            help="Coupon model head: shared (monotone in face value and threshold, scores new "
            "denominations) or per_denomination.",
        ),
    ] = "shared",
    calibration: Annotated[
        str, typer.Option("--calibration", help="platt, isotonic or none.")
    ] = "platt",
    architecture: Annotated[
        str,
        typer.Option(
            "--architecture",
            help="shared_trunk (one network with a treatment input; measured better) or "
            "two_models (the article's: one network per question).",
        ),
    ] = "shared_trunk",
) -> None:
    """Train the natural and coupon conversion models on the randomized campaign log.

    Manual-campaign rows are ignored (their assignment is biased). A share of users is held
    out (written as holdout.parquet in the models directory) for `couponopt evaluate`.
    """
    from optimizer.bundle import ConversionModels
    from optimizer.logdata import select_log_rows

    the_menu = _menu_for(log, menu)
    users_df = load_users(users)
    log_df = load_log(log, the_menu)
    models = ConversionModels(
        architecture=architecture,
        segment=_stages(segment),
        test_share=test_share,
        random_state=seed,
        natural_params={"max_epochs": max_epochs, "calibration": calibration},
        coupon_params={"max_epochs": max_epochs, "calibration": calibration, "head": head},
    )
    with _progress() as bar:
        tasks = {
            name: bar.add_task(f"{name} model", total=max_epochs) for name in models.model_names
        }

        def on_epoch(name: str, report) -> None:
            bar.update(
                tasks[name],
                completed=report.epoch,
                description=f"{name} model (val loss {report.validation_loss:.4f})",
            )

        models.fit(log_df, users_df, the_menu, progress=on_epoch, source=log)
        models.summary_["users_path"] = str(users.resolve())
        for task in tasks.values():
            bar.update(task, completed=max_epochs)
    from optimizer.atomic import atomic_directory
    from optimizer.data import write_table

    with atomic_directory(out_dir) as staging:
        models.save(staging)
        write_table(select_log_rows(log_df, models.holdout_), staging / "holdout.parquet")
    table = Table(title="Trained models (validation split)", title_justify="left")
    for col in ("model", "rows", "epochs", "AUC", "log-loss", "calibration error"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for quality in models.validation_quality():
        before = quality["before_calibration"]
        after = quality["after_calibration"]
        table.add_row(
            quality["model"],
            f"{after['rows']:,}",
            str(quality["epochs"]),
            _metric(after["auc"]),
            f"{_metric(before['log_loss'], 4)} -> {_metric(after['log_loss'], 4)}",
            f"{_metric(before['calibration_error'], 4)} -> "
            f"{_metric(after['calibration_error'], 4)}",
        )
    table.caption = (
        "rows: validation rows (early stopping and calibration). log-loss and calibration error "
        "(mean |observed - predicted| over 10 equal-count bins) before -> after calibration."
    )
    table.caption_justify = "left"
    out.print(table)
    out.print(f"wrote {out_dir}/ (natural/, coupon/, models.json, holdout.parquet)")


@app.command()
@_friendly
def score(
    models_dir: Annotated[
        Path, typer.Option("--models", help="Models directory written by `couponopt train`.")
    ],
    users: Annotated[
        Path, typer.Option("--users", help="User table to score (Parquet or CSV).", dir_okay=False)
    ],
    out_path: Annotated[
        Path,
        typer.Option("--out", help="Scores file to write (.parquet or .csv).", dir_okay=False),
    ],
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1000, help="Users per chunk (bounds memory).")
    ] = 500_000,
    psi_threshold: Annotated[
        float,
        typer.Option(
            "--psi-threshold",
            min=0.0,
            help="Warn about features whose population stability index exceeds this.",
        ),
    ] = 0.2,
) -> None:
    """Score users: natural and per-denomination coupon conversion probabilities.

    Writes one row per user with p_natural and p_coupon__<denomination> (probabilities), in
    chunks of bounded memory, and warns when the scored population drifts from the training
    population (population stability index per feature).
    """
    from optimizer.bundle import ConversionModels
    from optimizer.scoring import score_file

    models = ConversionModels.load(models_dir)
    with _progress() as bar:
        task = bar.add_task("scoring users", total=count_rows(users))
        run = score_file(
            models,
            users,
            out_path,
            chunk_rows=chunk_rows,
            progress=lambda done: bar.update(task, completed=done),
        )
    table = Table(title=f"Scored {run.rows:,} users", title_justify="left")
    table.add_column("score")
    table.add_column("mean", justify="right")
    for name, value in run.mean_scores.items():
        table.add_row(name, _pct(value))
    table.caption = "p_natural: P(buy | no coupon); p_coupon__<d>: P(buy | coupon d)."
    table.caption_justify = "left"
    out.print(table)
    drifted = run.drift[run.drift["psi"] > psi_threshold]
    if len(drifted):
        err.print(
            f"[bold yellow]warning:[/] {len(drifted)} features drifted from the training "
            f"population (PSI > {psi_threshold:g}): " + ", ".join(drifted["feature"].tolist()),
            soft_wrap=True,
            highlight=False,
        )
        warn = Table(title="Feature drift", title_justify="left")
        warn.add_column("feature")
        warn.add_column("PSI", justify="right")
        for _, row in drifted.iterrows():
            warn.add_row(row["feature"], f"{row['psi']:.3f}")
        warn.caption = (
            f"population stability index > {psi_threshold:g} (0.1-0.2 moderate, > 0.2 "
            "significant): the models were trained on a different population; the article "
            "trains on the same lifecycle stage it targets (train --segment)."
        )
        warn.caption_justify = "left"
        err.print(warn)
    out.print(f"wrote {out_path}")


@app.command()
@_friendly
def evaluate(
    models_dir: Annotated[
        Path, typer.Option("--models", help="Models directory written by `couponopt train`.")
    ],
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help="Randomized log to evaluate on (default: the models' holdout.parquet).",
            dir_okay=False,
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            "--users",
            help="User table with the logged users' features (default: the one used in train).",
            dir_okay=False,
        ),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots", help="Directory for coverage.png, precision_recall.png and qini.png."
        ),
    ] = None,
) -> None:
    """Evaluate the models: AUC and calibration, uplift (Qini, AUUC, uplift@30%) per coupon.

    Also reports the article's threshold analysis of the natural model: the knee of the
    coverage curve (share of users taken, share of natural converters covered, precision and
    probability threshold there).
    """
    from optimizer.bundle import ConversionModels
    from optimizer.evaluation import evaluate_models
    from optimizer.logdata import training_rows

    models = ConversionModels.load(models_dir)
    log_path = log if log is not None else models_dir / "holdout.parquet"
    users_path = users if users is not None else models.summary_.get("users_path")
    if users_path is None:
        raise InputError("which user table? pass --users", source="--users")
    log_df = load_log(log_path, models.menu_)
    rows = training_rows(log_df, load_users(users_path), segment=models.segment, source=log_path)
    ev = evaluate_models(models, rows)
    quality = Table(title=f"Model quality on {log_path}", title_justify="left")
    for col in ("model", "rows", "conversion", "AUC", "log-loss", "calibration error"):
        quality.add_column(col, justify="left" if col == "model" else "right")
    for _, r in ev.quality.iterrows():
        quality.add_row(
            r["model"],
            f"{r['rows']:,}",
            _pct(r["positive_rate"]),
            _metric(r["auc"]),
            _metric(r["log_loss"], 4),
            _metric(r["calibration_error"], 4),
        )
    quality.caption = (
        "natural: no-coupon rows; coupon <d>: rows sent d. calibration error: mean "
        "|observed - predicted| rate over 10 equal-count bins (probability)."
    )
    quality.caption_justify = "left"
    out.print(quality)
    uplift = Table(title="Uplift ranking per denomination (vs no coupon)", title_justify="left")
    for col in (
        "denomination",
        "treated",
        "control",
        "Qini",
        "AUUC",
        "uplift@30%",
        "observed",
        "predicted",
    ):
        uplift.add_column(col, justify="left" if col == "denomination" else "right")
    for _, r in ev.uplift.iterrows():
        uplift.add_row(
            r["denomination"],
            f"{r['treated_rows']:,}",
            f"{r['control_rows']:,}",
            _metric(r["qini"]),
            _metric(r["auuc"]),
            _pp(r["uplift_at_30"]),
            _pp(r["observed_uplift"]),
            _pp(r["predicted_uplift"]),
        )
    uplift.caption = (
        "Ranking by predicted uplift p_coupon - p_natural. Qini, AUUC: area over random, as a "
        "share of the perfect ranking's (0 random, 1 perfect). uplift@30%: observed conversion "
        "rate difference (percentage points) among the top 30%; observed/predicted: overall."
    )
    uplift.caption_justify = "left"
    out.print(uplift)
    k = ev.knee
    out.print(
        f"natural model knee: taking the top {_pct(k['share_taken'])} by natural probability "
        f"(p >= {k['threshold']:.3f}) covers {_pct(k['coverage'])} of natural converters at "
        f"precision {_pct(k['precision'])}."
    )
    if plots is not None:
        from optimizer.plots import plot_evaluation

        for path in plot_evaluation(ev, plots):
            out.print(f"wrote {path}")


_KINDS = ("users", "log", "truth", "scores", "menu", "scenario")


def _guess_kind(path: Path) -> str:
    name = path.name.lower()
    for kind, stems in (
        ("users", ("users",)),
        ("log", ("history", "log")),
        ("truth", ("truth",)),
        ("scores", ("scores",)),
        ("menu", ("menu",)),
    ):
        if any(name.startswith(stem) for stem in stems):
            return kind
    if name.endswith(".toml"):
        return "scenario"
    raise InputError(
        f"cannot tell what table this is from its name; pass --kind ({', '.join(_KINDS)})",
        source=path,
    )


def _menu_for(path: Path, menu_path: Path | None) -> Menu:
    if menu_path is not None:
        return load_menu(menu_path)
    beside = path.parent / "menu.toml"
    return load_menu(beside) if beside.is_file() else Scenario().menu


@app.command()
@_friendly
def validate(
    path: Annotated[Path, typer.Argument(help="Parquet/CSV table or TOML file to check.")],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help=f"What the file holds: {', '.join(_KINDS)} (default: guessed from the name).",
        ),
    ] = None,
    menu: Annotated[
        Path | None,
        typer.Option(
            "--menu",
            help="Coupon menu TOML for log/truth/scores (default: menu.toml beside the file, "
            "else the default menu).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check a file against the data contract; exit code 2 with one line if it breaks it."""
    if not path.exists():
        raise InputError("file not found", source=path)
    kind = kind or _guess_kind(path)
    if kind not in _KINDS:
        raise InputError(
            f"unknown kind {kind!r}; expected one of {', '.join(_KINDS)}", source="--kind"
        )
    if kind == "scenario":
        scen = load_scenario(path)
        out.print(
            f"[green]ok[/] {path}: scenario '{scen.name}', {scen.population.users:,} users, "
            f"{len(scen.menu)} denominations, budget {scen.budget.amount:,.2f} {scen.currency}"
        )
        return
    if kind == "menu":
        loaded = load_menu(path)
        out.print(f"[green]ok[/] {path}: {len(loaded)} denominations ({', '.join(loaded.names)})")
        return
    loaders: dict[str, Callable[[], pd.DataFrame]] = {
        "users": lambda: load_users(path),
        "log": lambda: load_log(path, _menu_for(path, menu)),
        "truth": lambda: load_truth(path, _menu_for(path, menu)),
        "scores": lambda: load_scores(path, _menu_for(path, menu)),
    }
    frame = loaders[kind]()
    out.print(f"[green]ok[/] {path}: {len(frame):,} {kind} rows, {frame.shape[1]} columns")


def _schema_table(schema: TableSchema) -> Table:
    table = Table(title=f"{schema.name}: {schema.description}", title_justify="left")
    table.add_column("column", no_wrap=True)
    for col in ("type", "unit", "nullable", "allowed", "meaning"):
        table.add_column(col)
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
        table.caption_justify = "left"
    return table


@app.command()
@_friendly
def schema(
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="One table: users, log, truth or scores (default: all)."),
    ] = None,
    menu: Annotated[
        Path | None,
        typer.Option(
            "--menu", help="Coupon menu TOML for the per-denomination columns.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Print the data contract: columns, types, units and allowed values of every table."""
    the_menu = load_menu(menu) if menu else Scenario().menu
    schemas = {
        "users": USERS,
        "log": log_schema(the_menu),
        "truth": truth_schema(the_menu),
        "scores": scores_schema(the_menu),
    }
    if kind is not None and kind not in schemas:
        raise InputError(
            f"unknown kind {kind!r}; expected one of {', '.join(schemas)}", source="--kind"
        )
    for name, sch in schemas.items():
        if kind is None or kind == name:
            out.print(_schema_table(sch))


def main() -> None:
    """Entry point of the ``couponopt`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
