"""Options of the `couponopt` command line: text parsers, the help glossary, typed options.

Every flag means the same wherever it appears: its help text lives once in :data:`HELP`, and
the options shared by several commands are declared once here as ``Annotated`` types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from optimizer.choices import (
    ARCHITECTURES,
    BASELINES,
    POLICIES,
    EngineName,  # noqa: I001
    MatchOn,
    Objective,
    Solver,
)

__all__ = ["HELP", "Kind", "Rows", "OutcomeModel", "opt", "names_opt"]


def _listed(choices: Sequence[str] | None, what: str) -> Callable[[Any], tuple[str, ...]]:
    """A parser of comma-separated names (among ``choices``: a bad one is a usage error)."""

    def parse(text: Any) -> tuple[str, ...]:
        if isinstance(text, tuple):
            return text
        items = tuple(dict.fromkeys(v.strip() for v in str(text).split(",") if v.strip()))
        bad = [v for v in items if choices is not None and v not in choices]
        if not items or bad:
            raise typer.BadParameter(
                f"{bad[0]!r} is not a {what}; expected some of {', '.join(choices or ())}"
                if bad
                else "give at least one name, comma-separated"
            )
        return items

    return parse


def _completion(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        head, _, last = incomplete.rpartition(",")
        return [f"{head},{c}" if head else c for c in choices if c.startswith(last)]

    return complete


def _pairs(text: Any, what: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    """``NAME=VALUE,NAME=VALUE`` into a dict, each value through ``convert``."""
    if isinstance(text, dict):
        return text
    items: dict[str, Any] = {}
    for part in str(text).split(","):
        name, sep, raw = (s.strip() for s in part.partition("="))
        try:
            if not sep or not name or name in items:
                raise ValueError
            items[name] = convert(raw)
        except ValueError:
            raise typer.BadParameter(f"expected {what}; got {part!r}") from None
    return items


def _count(raw: str) -> int:
    if int(raw) < 0:
        raise ValueError
    return int(raw)


def _bounds(raw: str) -> tuple[float, float]:
    low, colon, high = raw.partition(":")
    lo, hi = float(low) if low.strip() else 0.0, float(high) if high.strip() else 1.0
    if not colon or not 0 <= lo <= hi <= 1:
        raise ValueError
    return lo, hi


def parse_caps(text: Any) -> dict[str, int]:
    return _pairs(text, "DENOMINATION=COUNT items (count >= 0)", _count)


def parse_shares(text: Any) -> dict[str, tuple[float, float]]:
    what = "SEGMENT=MIN:MAX items (shares in [0, 1], either side may be empty)"
    return _pairs(text, what, _bounds)


def parse_vary(items: Sequence[str]) -> Any:
    """``--vary AXIS=VALUES`` items as the library's :class:`~optimizer.planning.Vary`."""
    from optimizer.io.tomlfile import validation_error_parts
    from optimizer.planning.config import Vary

    data: dict[str, Any] = {}
    for item in items:
        axis, sep, text = (s.strip() for s in item.partition("="))
        if not sep or axis not in Vary.model_fields or axis in data:
            raise typer.BadParameter(
                f"{item!r}: expected AXIS=VALUES once per axis, AXIS one of "
                f"{', '.join(Vary.model_fields)}",
                param_hint="--vary",
            )
        values = [v.strip() for v in text.split(",") if v.strip()]
        if axis == "budget" and ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise typer.BadParameter(
                    f"{item!r}: expected budget=START:STOP:POINTS", param_hint="--vary"
                )
            data[axis] = dict(zip(("start", "stop", "points"), parts, strict=True))
        elif axis == "segments":
            data[axis] = [tuple(s.strip() for s in v.split("+")) for v in values]
        else:
            data[axis] = values
    try:
        return Vary.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError
        key, text = validation_error_parts(exc, Vary)
        raise typer.BadParameter(f"{key}: {text}", param_hint="--vary") from None


# ------------------------------------------------------------------------------ options


class Rows(StrEnum):
    """Which log rows value the plans."""

    HELD_OUT = "held-out"
    ALL = "all"


class OutcomeModel(StrEnum):
    """Outcome model family of the doubly robust estimator."""

    BOOSTING = "boosting"
    LINEAR = "linear"


class Kind(StrEnum):
    """What a file holds."""

    USERS = "users"
    LOG = "log"
    TRUTH = "truth"
    SCORES = "scores"
    MENU = "menu"
    SCENARIO = "scenario"


#: What each flag means wherever it appears; "command --flag" keys say more for one command.
HELP: dict[str, str] = {
    "--scenario": "Scenario or campaign TOML (default: the embedded scenarios/default.toml); "
    "--config is the same flag.",
    "--population": "Synthetic world size (customers).",
    "--seed": "Seed of the synthetic world.",
    "--budget": "Campaign budget, currency units (default: the file's).",
    "--scores": "Scores file or dataset folder from `couponopt score` instead of the world.",
    "--users": "User table of the scored users (with --scores; default: the file's [data]).",
    "--menu": "Coupon menu TOML (default: the scenario's).",
    "--objective": "What plans maximise: incremental conversions, GMV or profit (money).",
    "--solver": "auto (exact up to 5,000 users), pulp (exact MILP) or dual.",
    "--policies": "Policies to plan (default: the file's).",
    "--match": "Baselines the optimal plan is made like-for-like with ('none': none).",
    "--match-on": "value: least budget reaching the matched plans' expected objective; spend: "
    "their expected spend; spend_conversions: that and at least their conversions.",
    "--segments": "Target only users with these labels of the targeting column (stages).",
    "--replications": "Independent simulated repetitions.",
    "--plots": "Directory to write the figures (PNG) into.",
    "--models": "Models directory written by `couponopt train`.",
    "--json": "Print one strict JSON object with the figures, nothing else.",
    "--compare": "Also plan every other policy.",
    "--denomination": "Uniform coupon of the baselines (default: the manual practice's).",
    "--v2-threshold": "Natural-probability cut of v2 (default: the models' knee, else 0.9).",
    "--screen": "The optimal plan leaves out users above v2's natural-probability cut.",
    "--max-per-denomination": "Coupon inventory, e.g. 10off99=20000,5off49=500.",
    "--max-messages": "At most this many messages.",
    "--min-roi": "Minimum ROI: expected incremental GMV / expected cost (money per money).",
    "--segment-share": "Share of messages per segment, e.g. dormant=0.5:,lapsed=:0.2.",
    "--segment-column": "User-table column of the --segment-share labels (lifecycle_stage).",
    "--exclude": "Users who get nothing: a table with user_id, or a .txt list of ids.",
    "--overrun-risk": "At most this P(realised spend > budget) (normal approximation), in (0, 1];"
    " 1 turns the rule off.",
    "--marginal-return": "A flexible budget instead of --budget: spend while one more unit of "
    "money adds at least this much to the objective (per unit of money).",
    "--reference": "Arm the others are compared with (default: manual, else the first arm).",
    "--design": "split: users randomised into arms; paired: every policy on everyone, same draws.",
    "--vary": "AXIS=VALUES, repeatable: budget=10000:200000:10 (start:stop:points) or "
    "budget=2e4,5e4; menu=a.toml,b.toml; sms_cost=0.03,0.06; margin_rate=0.2,0.3; "
    "segments=dormant,dormant+lapsed. Default: the file's whatif.vary.",
    "--simulate": "Also play every point on the scenario's world (paired design).",
    "--workers": "Processes simulating points in parallel (default: one per CPU).",
    "--csv": "Also write .csv copies of the tables.",
    "--log": "Campaign log (history.parquet or .csv).",
    "--test-share": "Share of users held out for `evaluate`.",
    "--max-epochs": "Upper bound on training epochs per model.",
    "--head": "Coupon model head: shared (monotone, scores new coupons) or per_denomination.",
    "--calibration": "Probability calibration on the validation rows.",
    "--architecture": "shared_trunk (one network), two_models (the article's), or a boosted "
    "meta-learner: t_learner, s_learner, x_learner, dr_learner (LightGBM).",
    "--chunk-rows": "Users per chunk (bounds memory; default: 10 million feature cells, "
    "500,000 users at 15 features, 50,000 at 200).",
    "--psi-threshold": "Warn about features whose population stability index exceeds this.",
    "--kind": "What the file holds (default: guessed from its name).",
    "--version": "Show the version and exit.",
    "optimize --out": "Write the first policy's plan (.parquet or .csv).",
    "optimize --policies": "Policies to plan; the first one's plan is shown and written.",
    "simulate --policies": "Policy arms; a holdout is always added (default: the scenario's).",
    "simulate --budget": "Total budget, shared by the arms in proportion to their users.",
    "simulate --out": "Write every replication's metrics per arm (.parquet or .csv).",
    "whatif --out": "Write every point's row per policy (.parquet or .csv).",
    "data --menu": "Coupon menu TOML (default: menu.toml beside the file, else the default).",
    "train --segments": "Train only on log rows with these segment labels (default: all).",
    "train --log": "Campaign log (default: the configuration's data.log.file).",
    "train --users": "Customer table (default: the configuration's data.users.file).",
    "init --users": "Your customer table (Parquet or CSV).",
    "init --log": "Your campaign log (default: the customer table, when it holds the arms).",
    "init --out": "The campaign configuration (TOML) to write.",
    "report --scores": "Scores file from `couponopt score`: report on your own customers.",
    "report --models": "Models directory: adds model quality and the plans valued on the "
    "randomized log, on the customers the models held out.",
    "evaluate --log": "Randomized log to evaluate on (default: the models' holdout.parquet).",
    "evaluate --users": "User table of the logged users (default: the one used in train).",
    "--plan": "A plan file from `couponopt optimize --out`, or a plan dataset folder, "
    "repeatable (named by its stem).",
    "--engine": "memory: every user in memory; stream: chunks streamed from Parquet, bounded "
    "memory; spark: Spark jobs (engine.master in the configuration, or spark-submit's).",
    "--rows": "held-out: only customers the models never trained on; all: every randomized row.",
    "--crossfit": "Train the models' parameters once per fold of customers and plan on "
    "out-of-fold scores: every randomized row values the plans honestly.",
    "--architectures": "Compare these model architectures on your data: each one's optimal "
    "plan, cross-fitted, valued on the log (paired differences against the first).",
    "--estimators": "Offline estimators: inverse propensity weighting, self-normalised, "
    "doubly robust.",
    "--bootstrap": "Customer-level bootstrap replicates (0: influence-function intervals only).",
    "--clip": "Largest weight 1/propensity allowed (default: none; stated in the output).",
    "--outcome-model": "Outcome models of the doubly robust estimator (cross-fitted).",
    "--allow-unrandomized": "Value plans giving arms the log never randomized (a lower bound).",
    "--value": "Also value every plan on the randomized log, beside its expected figures (the "
    "world's: customers its models held out; your own data: every randomized row).",
    "value --policies": "Policies to plan and value (default: every policy without --plan).",
    "value --log": "Randomized log with the configuration's columns (default: its data.log).",
    "value --models": "Models behind the plans (own data): plan with them, value on their "
    "held-out customers.",
    "value --out": "Write the estimates, one row per plan, estimator and figure (.csv/.parquet).",
}


def opt(flag: str, help: str | None = None, **kwargs: Any) -> Any:  # noqa: A002
    """A typer option with its help text.

    ``help`` is the text, or names the command whose entry of :data:`HELP` to use; without
    it, the flag's own entry.
    """
    name = flag.split("/")[0]
    return typer.Option(flag, help=HELP.get(f"{help} {name}", help) or HELP[name], **kwargs)


def flag(name: str, help: str | None = None, **kwargs: Any) -> Any:  # noqa: A002
    """A flag that takes no value (shown without a type in the help)."""
    return opt(name, help, metavar=" ", **kwargs)


def names_opt(
    flag: str,
    choices: Sequence[str],
    help: str | None = None,
    what: str = "policy",  # noqa: A002
) -> Any:
    """An option of comma-separated names, completed and checked against ``choices``."""
    text = f"{HELP.get(f'{help} {flag}', help) or HELP[flag]} Some of {', '.join(choices)}."
    return typer.Option(
        flag, parser=_listed(choices, what), autocompletion=_completion(choices),
        metavar="NAME,...", help=text,
    )  # fmt: skip


File = {"dir_okay": False}
Dir = {"file_okay": False}
ScenarioOpt = Annotated[
    Path | None, typer.Option("--scenario", "--config", help=HELP["--scenario"], **File)
]
PopulationOpt = Annotated[int | None, opt("--population", min=1)]
SeedOpt = Annotated[int | None, opt("--seed", min=0)]
BudgetOpt = Annotated[float | None, opt("--budget", min=0)]
ScoresOpt = Annotated[Path | None, opt("--scores")]  # a file or a dataset folder
UsersOpt = Annotated[Path | None, opt("--users")]
EngineOpt = Annotated[EngineName | None, opt("--engine")]
MenuOpt = Annotated[Path | None, opt("--menu", **File)]
ObjectiveOpt = Annotated[Objective, opt("--objective")]
SolverOpt = Annotated[Solver, opt("--solver")]
PoliciesOpt = Annotated[str | None, names_opt("--policies", POLICIES)]
MatchOpt = Annotated[str | None, names_opt("--match", (*BASELINES, "none"))]
MatchOnOpt = Annotated[MatchOn | None, opt("--match-on")]
ArchitecturesOpt = Annotated[str | None, names_opt("--architectures", ARCHITECTURES, what="model")]
SegmentsOpt = Annotated[str | None, opt("--segments", parser=_listed(None, ""), metavar="L,...")]
PlotsOpt = Annotated[Path | None, opt("--plots", **Dir)]
ModelsOpt = Annotated[Path, opt("--models", **Dir)]
JsonOpt = Annotated[bool, flag("--json")]
