"""`couponopt`: the command-line face of the coupon-campaign optimizer.

A thin typer app over the library: each command turns its flags into library arguments, calls
the library and renders what comes back; errors and exit codes live in :mod:`cli_shell`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from cli_options import (
    ArchitecturesOpt,
    BudgetOpt,
    Dir,
    EngineOpt,
    File,
    JsonOpt,
    Kind,
    MatchOnOpt,
    MatchOpt,
    MenuOpt,
    ModelsOpt,
    ObjectiveOpt,
    OutcomeModel,
    PlotsOpt,
    PoliciesOpt,
    PopulationOpt,
    Rows,
    ScenarioOpt,
    ScoresOpt,
    SeedOpt,
    SegmentsOpt,
    SolverOpt,
    UsersOpt,
    flag,
    names_opt,
    opt,
    parse_caps,
    parse_shares,
    parse_vary,
)
from cli_shell import OneLineErrors, emit, err, friendly, out, say, show
from optimizer.choices import POLICIES, Architecture, Calibration, Head, Objective, Policy, Solver
from optimizer.errors import InputError
from optimizer.reporting.terminal import progress_bars
from simulator.choices import Design

app = typer.Typer(
    name="couponopt",
    help="Coupon-campaign optimizer: who gets which coupon under a budget, what it returns, "
    "and how that compares with manual targeting. Money is in the scenario's currency units, "
    "probabilities in [0, 1], time in days.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    cls=OneLineErrors,
)


def _version(value: bool) -> None:
    if value:
        try:
            say(f"couponopt {metadata.version('couponopt')}")
        except metadata.PackageNotFoundError:
            say("couponopt (not installed)")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, flag("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """Coupon-campaign optimizer."""


def _config(path: Path | None, population: int | None, seed: int | None, world: bool) -> Any:
    """The file's campaign, played on a synthetic world when ``world``.

    A plain campaign file gets the default world. Without a file: the embedded default
    scenario, or for a scores file the default campaign (every scored user is a candidate).
    """
    from optimizer.planning.config import CampaignConfig
    from simulator.scenario import Scenario, as_scenario, load_configuration

    if not world and (population is not None or seed is not None):
        key = "population.users" if population is not None else "population.seed"
        raise InputError("sizes and seeds the synthetic world, not a scores file", key=key)
    config = load_configuration(path) if path else Scenario() if world else CampaignConfig()
    if world and config.data is not None:
        raise InputError(
            "maps your own data ([data]): plan its scores with --scores (from `couponopt score`)",
            source=path,
        )
    config = as_scenario(config) if world else config
    return config.with_overrides(users=population, seed=seed) if world else config


def _scored(scenario: Any) -> Any:
    """The scenario's world scored by its (cached) models."""
    from simulator.workflows.model_cache import score_scenario

    with progress_bars(err) as progress:
        return score_scenario(scenario, progress=progress)


def _load_scores(request: Any, scores: Path, users: Path | None, base: Path | None) -> Any:
    """The scores and their customers (read with the file's [data] mapping when it has one)."""
    from optimizer.io import load_scores, load_users

    data = request.campaign.data
    if users is None and data is None:
        raise InputError("a scores file needs its user table", key="users")
    table = load_scores(scores, request.campaign.menu)
    if data is None:
        return table, load_users(users)
    return table, request.read_users(base, users)


def _writable(path: Path | None, suffixes: Sequence[str] | None = None, folder: Any = ()) -> None:
    """Refuse, before any work, an output file (or ``folder``: writer, names) not writable."""
    from optimizer.io import check_replaceable, check_writable

    if folder and path:
        return check_replaceable(path, folder[1], folder[0])
    check_writable(path, suffixes)


# ----------------------------------------------------------------------------- commands


@app.command()
@friendly
def generate(
    ctx: typer.Context,
    out_dir: Annotated[Path, opt("--out", "Directory for the users/history/truth tables.", **Dir)],
    population: PopulationOpt = None,
    seed: SeedOpt = None,
    scenario: ScenarioOpt = None,
    csv: Annotated[bool, flag("--csv")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate a synthetic customer world with known ground truth.

    Writes users.parquet (features), history.parquet (randomized and manual campaign log),
    truth.parquet (true natural and per-coupon conversion probabilities; for tests and
    benchmarks only), menu.toml, scenario.toml and campaign.toml (the tables mapped as a
    team's own data, for `train --config`). Memory stays bounded at any size.
    """
    from simulator.tables import world_tables
    from simulator.world.generation import write_world

    scen = _config(scenario, population, seed, world=True)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("is a file; expected a directory", source=out_dir)
    with progress_bars(err) as progress:
        summary = write_world(scen, out_dir, csv=csv, progress=progress)
    if as_json:
        return emit({"scenario": scen.name, "out": out_dir, **summary.to_dict()})
    show(world_tables(summary, scen))
    say(f"wrote {out_dir}/{{users,history,truth}}.parquet, menu.toml, scenario.toml, campaign.toml")


@app.command()
@friendly
def optimize(
    ctx: typer.Context,
    budget: BudgetOpt = None,
    scenario: ScenarioOpt = None,
    scores: ScoresOpt = None,
    users: UsersOpt = None,
    menu: MenuOpt = None,
    objective: ObjectiveOpt = Objective.CONVERSIONS,
    solver: SolverOpt = Solver.AUTO,
    policies: Annotated[str | None, names_opt("--policies", POLICIES, "optimize")] = None,
    compare: Annotated[bool, flag("--compare")] = False,
    denomination: Annotated[str | None, opt("--denomination")] = None,
    v2_threshold: Annotated[float | None, opt("--v2-threshold", min=0.0, max=1.0)] = None,
    match: MatchOpt = None,
    match_on: MatchOnOpt = None,
    screen: Annotated[bool, flag("--screen")] = False,
    max_per_denomination: Annotated[
        str | None, opt("--max-per-denomination", parser=parse_caps, metavar="NAME=COUNT,...")
    ] = None,
    max_messages: Annotated[int | None, opt("--max-messages", min=0)] = None,
    min_roi: Annotated[float | None, opt("--min-roi", min=0.0)] = None,
    segment_share: Annotated[
        str | None, opt("--segment-share", parser=parse_shares, metavar="LABEL=MIN:MAX,...")
    ] = None,
    segment_column: Annotated[str | None, opt("--segment-column")] = None,
    segments: SegmentsOpt = None,
    exclude: Annotated[Path | None, opt("--exclude", **File)] = None,
    overrun_risk: Annotated[float | None, opt("--overrun-risk", metavar="RISK")] = None,
    marginal_return: Annotated[float | None, opt("--marginal-return", min=0.0)] = None,
    value_log: Annotated[bool, flag("--value")] = False,
    population: PopulationOpt = None,
    seed: SeedOpt = None,
    engine: EngineOpt = None,
    out_path: Annotated[Path | None, opt("--out", "optimize")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan a campaign under a budget: who gets which coupon, and what it is expected to return.

    Without --scores it runs the scenario end to end: synthetic world, randomized log, models
    (trained on the target stages and cached), scores of the target users, then the plan. With
    --scores every scored user is a candidate, unless the file's targeting or --segments says
    otherwise.
    """
    from optimizer.io.menu import load_menu
    from optimizer.io.tables import write_table
    from optimizer.planning import ROI_DEFINITION, Overrides, plan_campaign, resolve_request
    from optimizer.reporting import expected_table
    from optimizer.reporting.tables import plan_tables
    from simulator.workflows import log_values

    config = _config(scenario, population, seed, world=scores is None)
    if menu is not None and scores is None:
        raise InputError("a menu goes with a scores file (the world has its own)", key="menu")
    chosen = (*(policies or (Policy.OPTIMAL,)),)
    chosen += tuple(p for p in POLICIES if p not in chosen) if compare else ()
    request = resolve_request(config, Overrides(
        menu=load_menu(menu) if menu else None, budget=budget, objective=objective,
        solver=solver, policies=chosen, screen=screen,
        denomination=denomination, v2_threshold=v2_threshold, match=_matched(match),
        match_on=match_on, max_per_denomination=max_per_denomination, max_messages=max_messages,
        min_roi=min_roi, segment_shares=segment_share, segment_column=segment_column,
        target_segments=segments, exclude=exclude, overrun_risk=overrun_risk,
        marginal_return=marginal_return, engine=engine,
    ), base=scenario.parent if scenario else None)  # fmt: skip
    if request.campaign.engine.name != "memory":
        return _at_scale(request, scores, users, out_path, as_json)
    _writable(out_path)
    if scores is None:
        if users is not None:
            raise InputError("a user table goes with a scores file", key="users")
        scored = _scored(request.campaign)  # models trained on the stages the plan targets
        request = request.with_models(scored.models)
        candidates = request.candidates(scored.scores, scored.users)
    else:
        base = scenario.parent if scenario else None
        candidates = request.candidates(*_load_scores(request, scores, users, base))
    plans = plan_campaign(candidates, request)
    first = next(iter(plans.values()))
    if out_path is not None:
        write_table(first.to_frame(), out_path)
    valued = log_values(request, plans, scored if scores is None else None,
                        scenario.parent if scenario else None) if value_log else None  # fmt: skip
    if as_json:
        return emit({
            **request.to_dict(), "definitions": ROI_DEFINITION,
            "plans": {name: plan.summary() for name, plan in plans.items()},
            "by_denomination": first.by_denomination().to_dict(orient="records"),
            "by_segment": first.by_segment().to_dict(orient="records"),
            **({} if valued is None else {"on_the_log": valued[0].to_dict(),
               "expected_vs_estimated": valued[1].to_dict(orient="records")}),
        })  # fmt: skip
    show(plan_tables(plans, request))
    if valued is not None:
        show([expected_table(valued[1], request.campaign.currency, "dr", valued[0].rows_note)])
    if out_path is not None:
        say(f"wrote {out_path}")


def _at_scale(request: Any, scores: Path | None, users: Path | None, out_path: Path | None,
              as_json: bool) -> None:  # fmt: skip
    """Optimize on the stream or spark engine: the optimal plan written as a dataset folder."""
    from optimizer.engines.runs import plan_at_scale
    from optimizer.planning import ROI_DEFINITION
    from optimizer.reporting.scale import scale_plan_table

    if scores is None or out_path is None:
        raise InputError("plans at scale need --scores and --out (a folder)", key="engine.name")
    _writable(out_path, folder=("plan", ("part-*",)))
    with progress_bars(err) as progress:
        plan = plan_at_scale(request, scores, out_path, users=users, progress=progress)
    if as_json:
        return emit({**request.to_dict(), "definitions": ROI_DEFINITION, "plan": plan.to_dict()})
    show([scale_plan_table(plan, request)])
    say(f"wrote {out_path}")


def _matched(match: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return () if match == ("none",) else match


@app.command()
@friendly
def simulate(
    ctx: typer.Context,
    scenario: ScenarioOpt = None,
    policies: Annotated[str | None, names_opt("--policies", POLICIES, "simulate")] = None,
    budget: Annotated[float | None, opt("--budget", "simulate", min=0)] = None,
    replications: Annotated[int | None, opt("--replications", min=2)] = None,
    reference: Annotated[Policy | None, opt("--reference")] = None,
    objective: Annotated[Objective | None, opt("--objective")] = None,
    match: MatchOpt = None,
    match_on: MatchOnOpt = None,
    screen: Annotated[bool | None, opt("--screen/--no-screen")] = None,
    design: Annotated[Design | None, opt("--design")] = None,
    population: PopulationOpt = None,
    seed: SeedOpt = None,
    out_path: Annotated[Path | None, opt("--out", "simulate", **File)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a simulated A/B test: policy arms and a holdout on the scenario's ground-truth world.

    Users of the target stages are randomised into arms; each policy arm plans its users with
    its share of the budget; a discrete-event simulation (SMS gateway, coupon validity,
    purchases, redemptions paid from the real budget) measures what happens, replicated with
    independent seeds.
    """
    from optimizer.io.tables import write_table
    from optimizer.planning import ROI_DEFINITION, Overrides
    from simulator.experiment import experiment_request, run_experiment
    from simulator.tables import experiment_tables

    scen = _config(scenario, population, seed, world=True)
    request = experiment_request(scen, Overrides(
        policies=policies, budget=budget, objective=objective, match=_matched(match),
        match_on=match_on, screen=screen,
    ), base=scenario.parent if scenario else None)  # fmt: skip
    arms = [str(p) for p in request.policies]
    if reference is not None and reference not in arms:
        raise InputError(f"{reference} is not an arm ({', '.join(arms)})", key="reference")
    versus = str(reference or (Policy.MANUAL if Policy.MANUAL in arms else arms[0]))
    _writable(out_path)
    scored = _scored(scen)
    request = request.with_models(scored.models)
    candidates = request.candidates(scored.scores, scored.users)
    with progress_bars(err) as progress:
        experiment = run_experiment(
            scen, candidates, scored.truth, request, replications=replications, design=design,
            progress=progress,
        )  # fmt: skip
    if out_path is not None:
        write_table(experiment.runs, out_path)
    if as_json:
        return emit({"scenario": scen.name, "currency": scen.currency,
                     "definitions": ROI_DEFINITION, **experiment.to_dict(versus)})  # fmt: skip
    show(experiment_tables(experiment, scen.currency, versus))
    if out_path is not None:
        say(f"wrote {out_path}")


def _grid_valuer(request: Any, base: Path | None) -> Any:
    """Values each what-if point's plans on the campaign's own randomized log (every row)."""
    from optimizer.planning import LogValuer, campaign_log_of, grid_values

    found = campaign_log_of(request.campaign, base)
    valuer = LogValuer.prepare(request, found, bootstrap=0, unrandomized="flag")
    return functools.partial(grid_values, valuer)


@app.command()
@friendly
def whatif(
    ctx: typer.Context,
    scenario: ScenarioOpt = None,
    vary: Annotated[list[str] | None, opt("--vary")] = None,
    policies: PoliciesOpt = None,
    objective: ObjectiveOpt = Objective.CONVERSIONS,
    simulate_points: Annotated[bool, flag("--simulate")] = False,
    replications: Annotated[int, opt("--replications", min=2)] = 3,
    workers: Annotated[int | None, opt("--workers", min=1)] = None,
    plots: PlotsOpt = None,
    scores: ScoresOpt = None,
    users: UsersOpt = None,
    menu: MenuOpt = None,
    solver: SolverOpt = Solver.AUTO,
    value_log: Annotated[bool, flag("--value")] = False,
    population: PopulationOpt = None,
    seed: SeedOpt = None,
    out_path: Annotated[Path | None, opt("--out", "whatif", **File)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer what-if questions: the plans (and simulated outcomes) across a grid.

    Vary the budget, menu, SMS cost, margin or targeted segments (--vary, or the file's [whatif]
    section); models are trained once, the budget axis swept on each combination's problem.
    """
    from optimizer.io import figure_files, load_menu, write_figures, write_table
    from optimizer.planning import (
        GRID_FIGURES,
        ROI_DEFINITION,
        Overrides,
        build_grid,
        grid_figures,
        plan_grid,
        resolve_request,
    )
    from optimizer.planning import select_candidates as select
    from optimizer.reporting import grid_log_table
    from optimizer.reporting.tables import grid_tables
    from simulator.workflows import run_whatif

    config = _config(scenario, population, seed, world=scores is None)
    request = resolve_request(config, Overrides(
        menu=load_menu(menu) if menu else None, objective=objective, solver=solver,
        policies=policies or config.whatif.policies,
    ), base=scenario.parent if scenario else None)  # fmt: skip
    config = request.campaign
    base = None if vary else scenario.parent if scenario else None
    grid = build_grid(config, parse_vary(vary) if vary else config.whatif.vary, base)
    _writable(out_path), _writable(plots, folder=("what-if figures", figure_files(GRID_FIGURES)))
    with progress_bars(err) as progress:
        if scores is None:
            result = run_whatif(
                config, request, grid, simulate=simulate_points,
                replications=replications, workers=workers, progress=progress, value=value_log,
            )  # fmt: skip
        elif simulate_points:
            raise InputError(
                "simulating needs the scenario's world, not a scores file", key="scores"
            )
        else:
            base = scenario.parent if scenario else None
            table, people = _load_scores(request, scores, users, base)
            column, exclude = config.targeting.column, request.exclude
            valued = _grid_valuer(request, base) if value_log else None
            result = plan_grid(request, grid, lambda c: select(
                table, people, c.menu, column=column, segments=c.segments, exclude=exclude
            ), progress=progress, value=valued)  # fmt: skip
    figures = grid_figures(result.frame, config.currency, result.simulated) if plots else {}
    written = write_figures(figures, plots, writer="what-if figures") if plots else []
    if out_path is not None:
        write_table(result.frame, out_path)
    if as_json:
        return emit({"scenario": config.name, "currency": config.currency,
                     "objective": request.objective, "definitions": ROI_DEFINITION,
                     **result.to_dict(), "plots": written})  # fmt: skip
    show([*grid_tables(result, config.currency, out.width),
          grid_log_table(result.frame, config.currency)])  # fmt: skip
    for path in [*written, *([out_path] if out_path else [])]:
        say(f"wrote {path}")


@app.command()
@friendly
def report(
    ctx: typer.Context,
    out_path: Annotated[Path, opt("--out", "The HTML file to write (self-contained).", **File)],
    scenario: ScenarioOpt = None,
    budget: BudgetOpt = None,
    objective: ObjectiveOpt = Objective.CONVERSIONS,
    scores: Annotated[Path | None, opt("--scores", "report", **File)] = None,
    users: UsersOpt = None,
    models_dir: Annotated[Path | None, opt("--models", "report", **Dir)] = None,
    simulate_arms: Annotated[bool, flag("--simulate", "Add the simulated A/B test.")] = False,
    replications: Annotated[int, opt("--replications", min=2)] = 3,
    population: PopulationOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Write one self-contained HTML report: scenario, plan, baselines, frontier, model quality.

    On the scenario's world by default; with --scores, on your own scored customers (add
    --models for the models' quality on their held-out rows). The page embeds its figures
    (PNG) and style, so it opens anywhere offline.
    """
    from optimizer.evaluation import evaluate_scores
    from optimizer.io import atomic_path
    from optimizer.models import ConversionModels, evaluation_rows
    from optimizer.planning import Overrides, campaign_log_of, resolve_request
    from optimizer.reporting import campaign_report
    from simulator.workflows import build_report

    _writable(out_path, (".html", ".htm"))
    if scores is None and (users or models_dir):
        raise InputError("a user table and models go with a scores file", key="scores")
    config = _config(scenario, population, seed, world=scores is None)
    base = scenario.parent if scenario else None
    request = resolve_request(config, Overrides(budget=budget, objective=objective), base=base)
    with progress_bars(err) as progress:
        if scores is None:
            page = build_report(config, _scored(config), request, simulate=simulate_arms,
                                replications=replications, progress=progress)  # fmt: skip
        else:
            if simulate_arms:
                raise InputError("simulating needs the scenario's world", key="scores")
            models = ConversionModels.load(models_dir) if models_dir else None
            evaluation = log = None
            if models is not None:
                rows = evaluation_rows(models, models_dir / "holdout.parquet", users)
                evaluation = evaluate_scores(rows, models.predict(rows), models.menu_)
                request = request.with_models(models)
                if config.data is not None and config.data.log is not None:
                    log = campaign_log_of(config, base, models=models, users_path=users)
            candidates = request.candidates(*_load_scores(request, scores, users, base))
            page = campaign_report(request, candidates, evaluation=evaluation, log=log,
                                   facts=[("scores", str(scores))], progress=progress)  # fmt: skip
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    say(f"wrote {out_path} ({len(page) / 1e6:.1f} MB)")


@app.command()
@friendly
def init(
    ctx: typer.Context,
    users: Annotated[Path, opt("--users", "init", **File)],
    out_path: Annotated[Path, opt("--out", "init", **File)],
    log: Annotated[Path | None, opt("--log", "init", **File)] = None,
    force: Annotated[bool, flag("--force", "Overwrite an existing --out file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a starting campaign configuration for your own customer table and campaign log.

    Guesses each column's role (id, treatment arm and its control label, 0/1 outcome, order
    value, segment, features and their types) from names and contents, prints what it
    inferred (types, distinct values, missing shares) and the guesses to check, and writes a
    campaign TOML with a [data] section to edit, then `couponopt train --config` it.
    """
    from optimizer.io import atomic_path
    from optimizer.planning import campaign_toml, infer_campaign
    from optimizer.reporting import inference_table

    _writable(out_path, (".toml",))
    if out_path.exists() and not force:
        raise InputError("exists; pass --force to overwrite it", source=out_path)
    found = infer_campaign(users, log, out_path)
    with atomic_path(out_path) as tmp:
        tmp.write_text(campaign_toml(found.campaign), encoding="utf-8")
    if as_json:
        columns = found.columns.to_dict(orient="records")
        campaign = found.campaign.model_dump(mode="json", exclude_none=True)
        return emit({"out": out_path, "rows_read": found.rows_read, "notes": found.notes,
                     "columns": columns, "campaign": campaign})  # fmt: skip
    show([inference_table(found.columns, found.rows_read)])
    for note in found.notes:
        say(f"check: {note}", style="yellow")
    say(f"wrote {out_path}")


@app.command()
@friendly
def train(
    ctx: typer.Context,
    out_dir: Annotated[Path, opt("--out", "Directory to write the trained models into.", **Dir)],
    log: Annotated[Path | None, opt("--log", "train", **File)] = None,
    users: Annotated[Path | None, opt("--users", "train", **File)] = None,
    scenario: ScenarioOpt = None,
    menu: Annotated[Path | None, opt("--menu", "data", **File)] = None,
    segments: SegmentsOpt = None,
    test_share: Annotated[float, opt("--test-share", min=0.0, max=0.9)] = 0.2,
    seed: Annotated[int, opt("--seed", "Seed of the split and models.", min=0)] = 0,
    max_epochs: Annotated[int, opt("--max-epochs", min=1)] = 60,
    head: Annotated[Head, opt("--head")] = Head.SHARED,
    calibration: Annotated[Calibration, opt("--calibration")] = Calibration.PLATT,
    architecture: Annotated[Architecture, opt("--architecture")] = Architecture.SHARED_TRUNK,
    as_json: JsonOpt = False,
) -> None:
    """Train the natural and coupon conversion models on the randomized campaign log.

    With a campaign file that maps your own data (--config with a [data] section) the customer
    table and the log come from it; otherwise --log and --users are the synthetic contract's
    tables. Non-randomized rows are ignored (their assignment is biased). A share of users is
    held out (written as holdout.parquet in the models directory) for `couponopt evaluate`.
    """
    from optimizer.io import (
        atomic_directory,
        load_log,
        load_menu,
        load_users,
        menu_beside,
        select_log_rows,
        write_table,
    )  # fmt: skip
    from optimizer.models import ConversionModels, train_on_data
    from optimizer.reporting.tables import training_table

    entries = (*ConversionModels.ENTRIES, "holdout.parquet")
    _writable(out_dir, folder=("models", entries))
    config = _config(scenario, None, None, world=False) if scenario else None
    settings = {"max_epochs": max_epochs, "calibration": str(calibration)}
    params = dict(
        architecture=str(architecture), segment=list(segments) if segments else None,
        test_share=test_share, random_state=seed, natural_params=settings,
        coupon_params=settings | {"head": str(head)},
    )  # fmt: skip
    with progress_bars(err) as progress:
        if config is not None and config.data is not None:
            the_menu = load_menu(menu) if menu else config.menu
            models, log_df = train_on_data(
                config.data, the_menu, scenario.parent, users_path=users, log_path=log,
                progress=progress, **params,
            )  # fmt: skip
        else:
            if log is None or users is None:
                raise InputError("give --log and --users, or a --config that maps your data")
            the_menu = menu_beside(log, menu) if menu or not config else config.menu
            users_df, log_df = load_users(users), load_log(log, the_menu)
            models = ConversionModels(**params)
            models.fit(log_df, users_df, the_menu, progress=progress, source=log)
            models.summary_["users_path"] = str(users.resolve())
    with atomic_directory(out_dir, whole=True, writes=entries, writer="models") as staging:
        write_table(select_log_rows(log_df, models.holdout_), staging / "holdout.parquet")
        models.save(staging)  # last: its manifest lists every file, the holdout too
    if as_json:
        return emit({"models": out_dir, "quality": models.validation_quality(),
                     "summary": models.summary_})  # fmt: skip
    show([training_table(models.validation_quality())])
    say(f"wrote {out_dir}/ ({', '.join(models.saved_entries())}, holdout.parquet)")


@app.command()
@friendly
def score(
    ctx: typer.Context,
    models_dir: ModelsOpt,
    users: Annotated[Path, opt("--users", "User table to score: a file or a dataset folder.")],
    out_path: Annotated[Path, opt("--out", "Scores: .parquet, .csv or a dataset folder.")],
    chunk_rows: Annotated[int | None, opt("--chunk-rows", min=1000)] = None,
    psi_threshold: Annotated[float, opt("--psi-threshold", min=0.0)] = 0.2,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score users: natural and per-denomination coupon conversion probabilities.

    Writes one row per user with p_natural and p_coupon__<denomination> (probabilities), in
    chunks of bounded memory, and warns when the scored population drifts from the training
    population (population stability index per feature).
    """
    from optimizer.engines.runs import score_at_scale
    from optimizer.evaluation import drifted
    from optimizer.models import ConversionModels
    from optimizer.planning.config import Engine
    from optimizer.reporting.tables import drift_table_data, scores_table

    models = ConversionModels.load(models_dir)
    dataset = () if out_path.suffix else ("scores", ("part-*.parquet",))  # a folder of parts
    _writable(out_path, (".parquet", ".pq", ".csv"), dataset)
    with progress_bars(err) as progress:
        run = score_at_scale(models, users, out_path, Engine(name=engine or "memory"),
                             chunk_rows=chunk_rows, progress=progress)  # fmt: skip
    moved = drifted(run.drift, psi_threshold)
    if as_json:
        return emit({"out": out_path, **run.to_dict(), "drifted": moved["feature"].tolist()})
    show([scores_table(run.rows, run.mean_scores)])
    if len(moved):
        say(f"warning: {len(moved)} features drifted from the training population (PSI > "
            f"{psi_threshold:g}): {', '.join(moved['feature'])}", err, "bold yellow")  # fmt: skip
        show([drift_table_data(moved, psi_threshold)], err)
    say(f"wrote {out_path}")


@app.command()
@friendly
def evaluate(
    ctx: typer.Context,
    models_dir: ModelsOpt,
    log: Annotated[Path | None, opt("--log", "evaluate", **File)] = None,
    users: Annotated[Path | None, opt("--users", "evaluate", **File)] = None,
    plots: PlotsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the models: AUC and calibration, uplift (Qini, AUUC, uplift@30%) per coupon.

    Also reports the article's threshold analysis of the natural model: the knee of the
    coverage curve (share of users taken, share of natural converters covered, precision and
    probability threshold there).
    """
    from optimizer.evaluation import EVALUATION_FIGURES, evaluate_scores, evaluation_figures
    from optimizer.io import figure_files, write_figures
    from optimizer.models import ConversionModels, evaluation_rows
    from optimizer.reporting.tables import knee_sentence, quality_table, uplift_table

    models = ConversionModels.load(models_dir)
    _writable(plots, folder=("evaluation figures", figure_files(EVALUATION_FIGURES)))
    log_path = log or models_dir / "holdout.parquet"
    rows = evaluation_rows(models, log_path, users, held_out=log is None)
    evaluation = evaluate_scores(rows, models.predict(rows), models.menu_)
    figures = evaluation_figures(evaluation) if plots else {}
    written = write_figures(figures, plots, writer="evaluation figures") if plots else []
    if as_json:
        return emit({"log": log_path, **evaluation.to_dict(), "plots": written})
    show([quality_table(evaluation, str(log_path)), uplift_table(evaluation)])
    say(knee_sentence(evaluation.knee))
    for path in written:
        say(f"wrote {path}")


@app.command()
@friendly
def value(
    ctx: typer.Context,
    scenario: ScenarioOpt = None,
    models_dir: Annotated[Path | None, opt("--models", "value", **Dir)] = None,
    plan_files: Annotated[list[Path] | None, opt("--plan", metavar="PATH")] = None,
    policies: Annotated[str | None, names_opt("--policies", POLICIES, "value")] = None,
    budget: BudgetOpt = None,
    objective: ObjectiveOpt = Objective.CONVERSIONS,
    log: Annotated[Path | None, opt("--log", "value", **File)] = None,
    users: Annotated[Path | None, opt("--users", "train", **File)] = None,
    rows: Annotated[Rows, opt("--rows")] = Rows.HELD_OUT,
    crossfit: Annotated[int | None, opt("--crossfit", min=2)] = None,
    architectures: ArchitecturesOpt = None,
    estimators: Annotated[
        str | None, names_opt("--estimators", ("ipw", "snipw", "dr"), what="known estimator")
    ] = None,
    bootstrap: Annotated[int, opt("--bootstrap", min=0)] = 200,
    clip: Annotated[float | None, opt("--clip", min=1.0)] = None,
    outcome_model: Annotated[OutcomeModel, opt("--outcome-model")] = OutcomeModel.BOOSTING,
    allow_unrandomized: Annotated[bool, flag("--allow-unrandomized")] = False,
    population: PopulationOpt = None,
    seed: SeedOpt = None,
    engine: EngineOpt = None,
    out_path: Annotated[Path | None, opt("--out", "value", **File)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Value plans on a randomized campaign log: what an A/B test would say, with 95% intervals.

    The plans are the policies planned here (on the scenario's world, or on your own data with
    --models) and plan files (--plan). Each is estimated on the randomized rows of customers
    the models never trained on (every row with --rows all, or cross-fitted with --crossfit):
    incremental conversions, GMV, campaign cost, ROI and profit by IPW, self-normalised IPW and
    doubly robust, with influence-function and bootstrap intervals, and paired differences
    against the optimal plan. With --architectures, the optimal plan of each architecture
    (cross-fitted, --crossfit folds, default 5) instead: the model to train for this campaign.
    """
    from optimizer.engines.runs import plan_rows_at_scale
    from optimizer.io import write_table
    from optimizer.planning import Overrides, resolve_request, value_plans
    from optimizer.reporting import offline_tables
    from simulator.scenario import load_configuration
    from simulator.workflows import architecture_values, plans_and_log

    if (crossfit or architectures) and plan_files:
        raise InputError("plan files were not cross-fitted; value them apart", key="crossfit")
    own = scenario is not None and load_configuration(scenario).data is not None
    config = _config(scenario, population, seed, world=not own)
    plan = bool(policies) or not plan_files
    base = scenario.parent if scenario else None
    request = resolve_request(config, Overrides(
        budget=budget, objective=objective, policies=policies or (POLICIES if plan else None),
        engine=engine,
    ), base=base)  # fmt: skip
    _writable(out_path)
    valuing = dict(bootstrap=bootstrap, clip=clip, outcome_model=str(outcome_model),
                   unrandomized="flag" if allow_unrandomized else "refuse")  # fmt: skip
    with progress_bars(err) as progress:
        if architectures:  # the first estimator chooses
            choice = architecture_values(
                request, architectures, models_dir=models_dir, base=base, folds=crossfit or 5,
                log=log, users=users, estimators=estimators or ("dr",), progress=progress,
                **valuing)  # fmt: skip
        plans, found = ({}, None) if architectures else plans_and_log(
            request, base=base, models_dir=models_dir, plan=plan, log=log, users=users,
            crossfit=crossfit, progress=progress)  # fmt: skip
        frames = {name: p.to_frame() for name, p in plans.items()}
        for path in plan_files or ():
            # Only the log's customers are kept: a plan of any size is streamed past them.
            frames[path.stem] = plan_rows_at_scale(
                path, request.campaign.menu, found.log["user_id"], request.campaign.engine
            )
        values = choice.values if architectures else value_plans(
            request, frames, found if rows == Rows.HELD_OUT else found.with_split(None),
            estimators=estimators or ("ipw", "snipw", "dr"), progress=progress, **valuing,
        )  # fmt: skip
    if out_path is not None:
        write_table(values.table(), out_path)
    best = {"architectures": choice.to_dict()} if architectures else {}
    if as_json:
        return emit({**request.to_dict(), **values.to_dict(), **best})
    show(offline_tables(values, request.campaign.currency))
    if architectures:
        say(f"{choice.summary()}: train it with --architecture {choice.best}")
    if out_path is not None:
        say(f"wrote {out_path}")


@app.command()
@friendly
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Table, TOML file, or a folder with a manifest.")],
    kind: Annotated[Kind | None, opt("--kind")] = None,
    menu: Annotated[Path | None, opt("--menu", "data", **File)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a file against the data contract (a folder: against its manifest); exit 2 if not.

    A campaign file with a [data] section also has its customer table and log read and
    checked as training would read them.
    """
    from optimizer.io import check_data, guess_kind, load_menu, load_table, menu_beside
    from optimizer.io.atomic import manifest_files
    from simulator.scenario import Scenario, load_configuration

    if path.is_dir():  # a world, models or figures folder: every file against its manifest
        kind, facts = "folder", {"files": len(manifest_files(path))}  # type: ignore[assignment]
        text = f"{facts['files']} files, whole"
    elif not path.is_file():
        raise InputError("file not found", source=path)
    elif (kind := Kind(kind or guess_kind(path))) == Kind.SCENARIO:
        config = load_configuration(path)
        which = "scenario" if isinstance(config, Scenario) else "campaign"
        facts = {"name": config.name, "denominations": list(config.menu.names)}
        text = f"{which} '{config.name}', {len(config.menu)} denominations, budget "
        text += f"{config.budget.amount:,.2f} {config.currency}"
        if config.data is not None:  # its files, read and checked as training would
            facts["data"] = check_data(config.data, config.menu, path.parent)
            text += f"; data: {facts['data']['customers']:,} customers"
            text += f", {facts['data'].get('randomized_rows', 0):,} randomized log rows"
    elif kind == Kind.MENU:
        facts = {"denominations": list(load_menu(path).names)}
        text = f"{len(facts['denominations'])} denominations ({', '.join(facts['denominations'])})"
    else:
        frame = load_table(path, kind, menu_beside(path, menu))
        facts = {"rows": len(frame), "columns": frame.shape[1]}
        text = f"{len(frame):,} {kind} rows, {frame.shape[1]} columns"
    if as_json:
        return emit({"ok": True, "path": path, "kind": kind, **facts})
    out.print(Text("ok ", "green") + Text(f"{path}: {text}"))


@app.command()
@friendly
def schema(
    ctx: typer.Context,
    kind: Annotated[Kind | None, opt("--kind", "One table: users, log, truth or scores.")] = None,
    menu: Annotated[Path | None, opt("--menu", "Menu TOML of the coupon columns.", **File)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the data contract: columns, types, units and allowed values of every table."""
    from optimizer.io import DEFAULT_MENU, USERS, load_menu, log_schema, scores_schema, truth_schema
    from optimizer.reporting.tables import schema_table

    the_menu = load_menu(menu) if menu else DEFAULT_MENU
    schemas = {"users": USERS, "log": log_schema(the_menu), "truth": truth_schema(the_menu),
               "scores": scores_schema(the_menu)}  # fmt: skip
    if kind is not None and kind not in schemas:
        raise InputError(f"no table schema for {kind}; expected one of {', '.join(schemas)}",
                         key="kind")  # fmt: skip
    chosen = [schemas[kind]] if kind else list(schemas.values())
    if as_json:
        return emit({s.name: schema_table(s).to_dict() for s in chosen})
    show([schema_table(s) for s in chosen])


def main() -> None:
    """Entry point of the ``couponopt`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
