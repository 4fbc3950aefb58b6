"""The planning request: one campaign configuration plus the overrides of one run, resolved once.

Every caller (the command line, the report, the simulator's experiments, a notebook) turns a
:class:`~optimizer.planning.config.CampaignConfig` and its :class:`Overrides` into a
:class:`PlanningRequest` through :func:`resolve_request`, and plans it with
:func:`optimizer.planning.campaign.plan_campaign`. Errors name the configuration key that holds
the bad value (``constraints.min_roi``) or the argument (``policies``); nothing here knows of
command-line flags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from optimizer.choices import BASELINES, POLICIES, MatchOn, Objective, Policy, Solver
from optimizer.errors import InputError
from optimizer.io.mapping import FeatureSpec, data_path, load_users_mapped
from optimizer.io.menu import Menu
from optimizer.io.tables import load_user_ids, table_columns
from optimizer.planning.candidates import Candidates, campaign_problem, select_candidates
from optimizer.planning.config import OVERRUN_DEFAULT, CampaignConfig
from optimizer.planning.policies import ARTICLE_V2_THRESHOLD, RFM_COLUMNS, PolicySettings
from optimizer.solvers.problem import CampaignProblem

if TYPE_CHECKING:
    from optimizer.models.conversion import ConversionModels

__all__ = ["Overrides", "PlanningRequest", "resolve_request"]


#: Overrides that replace a configuration value, and the configuration key they replace.
_CONFIG_KEYS: dict[str, str] = {
    "budget": "budget.amount",
    "sms_cost": "costs.sms_cost",
    "margin_rate": "costs.margin_rate",
    "denomination": "manual.denomination",
    "target_segments": "targeting.segments",
    "max_per_denomination": "constraints.max_per_denomination",
    "max_messages": "constraints.max_messages",
    "min_roi": "constraints.min_roi",
    "overrun_risk": "constraints.overrun_risk",
    "overrun_tolerance": "constraints.overrun_tolerance",
    "segment_column": "constraints.segment_column",
    "segment_shares": "constraints.segment_shares",
    "engine": "engine.name",
}


@dataclass(frozen=True)
class Overrides:
    """Values that replace the configuration's for one run; ``None`` keeps the configuration's.

    Attributes
    ----------
    menu : Menu, optional
        The coupon menu (``menu``), e.g. the one a scores file was made for.
    budget, sms_cost : float, optional
        Money (``budget.amount``, ``costs.sms_cost``).
    margin_rate : float, optional
        Share of GMV (``costs.margin_rate``).
    denomination : str, optional
        The baselines' uniform coupon (``manual.denomination``).
    target_segments : sequence of str, optional
        Labels of the targeting column to target (``targeting.segments``).
    max_per_denomination : mapping of str to int, optional
        Coupon inventory (``constraints.max_per_denomination``; replaces the whole mapping).
    max_messages : int, optional
    min_roi : float, optional
        Money per money (``constraints.min_roi``).
    overrun_risk : float, optional
        Probability (``constraints.overrun_risk``).
    overrun_tolerance : float, optional
        Share of the budget (``constraints.overrun_tolerance``).
    segment_column : str, optional
        User-table column of the segment-share labels (``constraints.segment_column``).
    segment_shares : mapping of str to (min, max), optional
        Share of messages per segment label (``constraints.segment_shares``).
    exclude : str or Path, optional
        File of opted-out user ids (a table with ``user_id`` or a ``.txt`` list); replaces
        ``constraints.exclude_file``.
    policies : sequence of str, optional
        Policies to plan, the first one the primary plan (default: ``optimal``).
    objective : str, optional
        ``conversions`` (default), ``gmv`` or ``profit``.
    solver : str, optional
        ``auto`` (default), ``pulp`` or ``dual``.
    v2_threshold : float, optional
        v2's natural-probability cut (default: the models' coverage knee, else 0.9).
    screen : bool, optional
        The optimal plan leaves out users above v2's cut.
    match : sequence of str, optional
        Baselines the optimal plan is made like-for-like with.
    match_on : str, optional
        ``value`` (default), ``spend`` or ``spend_conversions``.
    seed : int, optional
        Order of the random policy and the dual solver's subsample.
    marginal_return : float, optional
        A flexible budget instead of ``budget``: spend while one more unit of money still adds
        at least this much to the objective (conversions, or money, per unit of money).
    engine : str, optional
        ``memory``, ``stream`` or ``spark`` (``engine.name``).
    """

    menu: Menu | None = None
    budget: float | None = None
    sms_cost: float | None = None
    margin_rate: float | None = None
    denomination: str | None = None
    target_segments: Sequence[str] | None = None
    max_per_denomination: Mapping[str, int] | None = None
    max_messages: int | None = None
    min_roi: float | None = None
    overrun_risk: float | None = None
    overrun_tolerance: float | None = None
    segment_column: str | None = None
    segment_shares: Mapping[str, tuple[float, float]] | None = None
    exclude: str | Path | None = None
    policies: Sequence[str] | None = None
    objective: str | None = None
    solver: str | None = None
    v2_threshold: float | None = None
    screen: bool | None = None
    match: Sequence[str] | None = None
    match_on: str | None = None
    seed: int | None = None
    marginal_return: float | None = None
    engine: str | None = None

    def given(self) -> dict[str, Any]:
        """The overrides that are set, by name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class PlanningRequest:
    """What a plan needs besides the scores, resolved once.

    Attributes
    ----------
    campaign : CampaignConfig
        The configuration with the overrides applied (budget, costs, manual practice,
        targeting, constraints).
    policies : tuple of Policy
        Policies to plan; the first is the primary plan (written, detailed).
    objective : Objective
    solver : Solver
    v2_threshold : float, optional
        v2's natural-probability cut when given explicitly.
    natural_threshold : float, optional
        The models' coverage knee, v2's cut when none is given (:meth:`with_natural_threshold`).
    screen : bool
        The optimal plan leaves out users above v2's cut.
    match : tuple of Policy
        Baselines the optimal plan is made like-for-like with.
    match_on : MatchOn
    exclude : ndarray of int64, optional
        Ids of users who must get nothing.
    seed : int
    marginal_return : float, optional
        The flexible budget's target return (objective per unit of money); when set, plans
        spend what the optimal LP spends at that marginal return, not ``budget``.
    spend_error : tuple of (str, float), optional
        Relative standard error of each treatment's paid spend level from estimating the
        models (:meth:`with_models`, :meth:`ConversionModels.spend_error`); the overrun rule
        counts it. Treatments not listed get the largest listed error.
    """

    campaign: CampaignConfig
    policies: tuple[Policy, ...] = (Policy.OPTIMAL,)
    objective: Objective = Objective.CONVERSIONS
    solver: Solver = Solver.AUTO
    v2_threshold: float | None = None
    natural_threshold: float | None = None
    screen: bool = False
    match: tuple[Policy, ...] = ()
    match_on: MatchOn = MatchOn.VALUE
    exclude: np.ndarray | None = field(default=None, compare=False)
    seed: int = 0
    marginal_return: float | None = None
    spend_error: tuple[tuple[str, float], ...] | None = None

    @property
    def budget(self) -> float:
        """The budget (money)."""
        return self.campaign.budget.amount

    @property
    def sms_cost(self) -> float:
        """Money per message."""
        return self.campaign.costs.sms_cost

    @property
    def margin_rate(self) -> float:
        """Gross margin share of GMV."""
        return self.campaign.costs.margin_rate

    @property
    def segment_column(self) -> str:
        """User-table column the segment-share constraints refer to."""
        return self.campaign.constraints.segment_column

    @property
    def v2_cut(self) -> float:
        """v2's natural-probability cut: given, else the models' knee, else the article's 0.9."""
        for cut in (self.v2_threshold, self.natural_threshold):
            if cut is not None:
                return float(cut)
        return ARTICLE_V2_THRESHOLD

    def with_natural_threshold(self, threshold: float | None) -> PlanningRequest:
        """The same request knowing the models' coverage knee (v2's default cut)."""
        return replace(self, natural_threshold=threshold)

    def with_models(self, *models: ConversionModels) -> PlanningRequest:
        """The same request knowing the models that scored its users.

        Their coverage knee becomes v2's default cut (the median over several models, e.g.
        the folds of a cross-fit) and their spend errors (the largest over several models, per
        treatment) enter the overrun rule.
        """
        knees = [m.natural_threshold for m in models if m.natural_threshold is not None]
        errors: dict[str, float] = {}
        for m in models:
            for name, error in m.spend_error().items():
                errors[name] = max(errors.get(name, 0.0), error)
        return replace(
            self,
            natural_threshold=float(np.median(knees)) if knees else None,
            spend_error=tuple(sorted(errors.items())) or None,
        )

    def with_budget(self, amount: float) -> PlanningRequest:
        """The same request at another budget (money)."""
        return replace(self, campaign=self.campaign.with_values(**{"budget.amount": amount}))

    def settings(self) -> PolicySettings:
        """The policies' knobs of this request."""
        risk = self.campaign.constraints.overrun_risk
        return PolicySettings(
            denomination=self.campaign.manual.denomination,
            rank_by=self.campaign.manual.rank_by,
            rank_ascending=self.campaign.manual.ascending,
            v2_threshold=self.v2_cut,
            solver=self.solver,
            seed=self.seed,
            constraints=self.campaign.constraints.to_constraints(),
            overrun_risk=None if risk is None or risk >= 1 else risk,
            overrun_tolerance=self.campaign.constraints.overrun_tolerance,
            natural_screen=self.v2_cut if self.screen else None,
        )

    def candidates(self, scores: pd.DataFrame, users: pd.DataFrame) -> Candidates:
        """The targeted scored users, with this request's exclusions marked."""
        targeting = self.campaign.targeting
        return select_candidates(
            scores,
            users,
            self.campaign.menu,
            column=targeting.column,
            segments=targeting.segments,
            exclude=self.exclude,
        )

    def problem(self, candidates: Candidates) -> CampaignProblem:
        """The optimisation problem of ``candidates`` under this request's objective and costs."""
        shares = self.campaign.constraints.segment_shares
        if shares and self.segment_column not in candidates.users.columns:
            raise InputError(
                f"segment column {self.segment_column!r} is not in the user table",
                key="constraints.segment_column",
            )
        problem = campaign_problem(
            candidates,
            objective=self.objective,
            sms_cost=self.sms_cost,
            margin_rate=self.margin_rate,
            segment_column=self.segment_column,
            basket_column=self.basket_column,
            order_value=self.campaign.costs.order_value,
        )
        problem.spend_error = self.spend_error_array(candidates.menu)
        return problem

    def spend_error_array(self, menu: Menu) -> np.ndarray | None:
        """:attr:`spend_error` in ``menu`` order, shape (k,) (unlisted: the largest listed)."""
        if not self.spend_error:
            return None
        known = dict(self.spend_error)
        fallback = max(known.values())
        return np.array([known.get(n, fallback) for n in menu.names], np.float64)

    def read_users(
        self, base: str | Path | None = None, path: str | Path | None = None
    ) -> pd.DataFrame:
        """The customer table of the campaign's ``[data]``, only the columns plans read.

        The id, segment and basket, the targeting and segment-share columns, and manual's
        ranking (``manual.rank_by``, else the RFM columns the file has): planning a table of
        hundreds of features reads a handful of them.

        Returns
        -------
        DataFrame, shape (n, c)
        """
        data = self.campaign.data
        if data is None:
            raise InputError("the campaign maps no customer table", key="data")
        source = Path(path) if path is not None else data_path(data.users.file, base)
        present = set(table_columns(source))
        manual = self.campaign.manual
        ranking = (manual.rank_by,) if manual.rank_by else RFM_COLUMNS
        labels = (self.campaign.targeting.column, self.segment_column)
        mapped = {data.users.id, data.users.segment, data.users.basket}
        spec = FeatureSpec(
            numeric=tuple(c for c in dict.fromkeys(ranking) if c in present and c not in mapped),
            categorical=tuple(c for c in dict.fromkeys(labels) if c in present and c not in mapped),
        )
        return load_users_mapped(data, path=source, features=spec).frame

    @property
    def basket_column(self) -> str | None:
        """User column of money per order: the data configuration's, else the contract's."""
        data = self.campaign.data
        return data.users.basket if data is not None else "avg_order_value"

    def describe(self) -> str:
        """The constraints and the matching, in a few words (empty when there are none)."""
        parts = [f"{k} {v}" for k, v in self.settings().constraints.to_dict().items()]
        rule = self.campaign.constraints
        if (rule.overrun_risk, rule.overrun_tolerance) != OVERRUN_DEFAULT:
            parts.append(
                f"overrun risk {rule.overrun_risk:g} beyond {rule.overrun_tolerance:.0%}"
                if rule.overrun_risk is not None and rule.overrun_risk < 1
                else "no overrun rule"
            )
        if self.screen:
            parts.append(f"optimal screened at natural probability {self.v2_cut:.3f}")
        if self.match:
            what = "expected objective" if self.match_on == MatchOn.VALUE else "expected spend"
            parts.append(f"optimal matched to the {what} of {', '.join(self.match)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the request."""
        return {
            "campaign": self.campaign.name,
            "currency": self.campaign.currency,
            "budget": self.budget,
            "objective": str(self.objective),
            "policies": [str(p) for p in self.policies],
            "solver": str(self.solver),
            "sms_cost": self.sms_cost,
            "margin_rate": self.margin_rate,
            "targeting": self.campaign.targeting.model_dump(mode="json"),
            "constraints": self.settings().constraints.to_dict(),
            "overrun_risk": self.campaign.constraints.overrun_risk,
            "overrun_tolerance": self.campaign.constraints.overrun_tolerance,
            "segment_column": self.segment_column,
            "v2_threshold": self.v2_cut,
            "screen": self.screen,
            "match": {"policies": [str(p) for p in self.match], "on": str(self.match_on)}
            if self.match
            else None,
            "excluded_ids": None if self.exclude is None else int(self.exclude.size),
            "marginal_return": self.marginal_return,
        }


def _choice(value: str, choices: type[StrEnum], key: str) -> Any:
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise InputError(f"unknown value {value!r}; expected one of {allowed}", key=key) from None


def _policies(names: Sequence[str], key: str, allowed: Sequence[str]) -> tuple[Policy, ...]:
    unknown = [p for p in names if p not in allowed]
    if unknown:
        raise InputError(
            f"unknown policy {unknown[0]!r}; expected some of {', '.join(allowed)}", key=key
        )
    return tuple(Policy(p) for p in dict.fromkeys(names))


def resolve_request(
    campaign: CampaignConfig,
    overrides: Overrides | None = None,
    *,
    base: str | Path | None = None,
    natural_threshold: float | None = None,
) -> PlanningRequest:
    """Apply ``overrides`` to ``campaign`` and check everything a plan will need.

    Parameters
    ----------
    campaign : CampaignConfig
        The configuration (a campaign file, or a scenario, which is one).
    overrides : Overrides, optional
        Values of this run that replace the configuration's.
    base : str or Path, optional
        Directory the configuration's relative ``constraints.exclude_file`` is relative to (its
        file's directory); the working directory when None.
    natural_threshold : float, optional
        The models' coverage knee (v2's cut when none is given); can be added later with
        :meth:`PlanningRequest.with_natural_threshold`.

    Raises
    ------
    InputError
        One line naming the configuration key or argument that holds the bad value.
    """
    given = (overrides or Overrides()).given()
    for name in ("policies", "match", "target_segments"):  # one name is a list of one
        if isinstance(given.get(name), str):
            given[name] = (given[name],)
    values = {_CONFIG_KEYS[k]: v for k, v in given.items() if k in _CONFIG_KEYS}
    if "menu" in given:  # with the manual coupon and caps it must hold, in one validation
        values["menu"] = Menu.model_validate(given["menu"]).model_dump()
    if "segment_shares" in given:
        values["constraints.segment_shares"] = {
            name: {"min": low, "max": high} for name, (low, high) in given["segment_shares"].items()
        }
    if "max_per_denomination" in given:
        values["constraints.max_per_denomination"] = dict(given["max_per_denomination"])
    if "target_segments" in given:
        values["targeting.segments"] = tuple(given["target_segments"])
    if values:
        campaign = campaign.with_values(**values)
    policies = _policies(given.get("policies", (Policy.OPTIMAL,)), "policies", POLICIES)
    if not policies:
        raise InputError("give at least one policy", key="policies")
    match = _policies(given.get("match", ()), "match", BASELINES)
    if match and Policy.OPTIMAL not in policies:
        raise InputError("matching makes the optimal plan like-for-like: plan it", key="match")
    target = given.get("marginal_return")
    if target is not None and not target >= 0:
        raise InputError("must be 0 or more (objective per unit of money)", key="marginal_return")
    if target is not None and given.get("budget") is not None:
        raise InputError(
            "a flexible budget replaces the budget: give one of them, not both",
            key="marginal_return",
        )
    threshold = given.get("v2_threshold")
    if threshold is not None and not 0 <= threshold <= 1:
        raise InputError("must be a probability in [0, 1]", key="v2_threshold")
    exclude = None
    path = given.get("exclude")
    if path is None and campaign.constraints.exclude_file is not None:
        path = Path(campaign.constraints.exclude_file)
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
    if path is not None:
        exclude = load_user_ids(path)
    return PlanningRequest(
        campaign=campaign,
        policies=policies,
        objective=_choice(given.get("objective", Objective.CONVERSIONS), Objective, "objective"),
        solver=_choice(given.get("solver", Solver.AUTO), Solver, "solver"),
        v2_threshold=threshold,
        natural_threshold=natural_threshold,
        screen=bool(given.get("screen", False)),
        match=match,
        match_on=_choice(given.get("match_on", MatchOn.VALUE), MatchOn, "match_on"),
        exclude=exclude,
        seed=int(given.get("seed", 0)),
        marginal_return=None if target is None else float(target),
    )
