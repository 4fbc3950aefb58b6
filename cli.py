"""`couponopt`: the command-line face of the coupon-campaign optimizer.

A thin typer app over the library: every command reads files and flags, calls library functions
that return data, and renders that data as rich tables. Bad input ends with one line on stderr
and exit code 2; nothing half-written is left behind.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optimizer.data import load_log, load_scores, load_truth, load_users
from optimizer.errors import InputError
from optimizer.menu import Menu, load_menu
from optimizer.schema import USERS, TableSchema, log_schema, scores_schema, truth_schema
from simulator.generate import WorldSummary, build_world, write_world
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
    users: UsersOption = None,
    seed: SeedOption = None,
) -> None:
    """Plan a campaign under a budget: who gets which coupon.

    This version builds the scenario's synthetic population and reports it; the conversion
    models and the budget solver are not part of this version yet, so no plan is produced.
    """
    scen = _scenario(scenario, users, seed)
    amount = scen.budget.amount if budget is None else budget
    with _progress() as bar:
        task = bar.add_task("building population", total=scen.population.users)
        world = build_world(scen, progress=lambda done, _t: bar.update(task, completed=done))
    for table in _summary_tables(world.summary, scen):
        out.print(table)
    status = Table(
        title=f"Plan at budget {amount:,.2f} {scen.currency}: no models yet", title_justify="left"
    )
    status.add_column("component")
    status.add_column("status")
    status.add_column("needed for")
    status.add_row("natural conversion model P(buy | no coupon)", "not built yet", "uplift, v2")
    status.add_row("coupon conversion model P(buy | coupon k)", "not built yet", "v1, v2, optimal")
    status.add_row("budget solver (users x denominations)", "not built yet", "optimal plan")
    status.caption = "No plan was produced: this version generates and validates data only."
    status.caption_justify = "left"
    out.print(status)


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
