"""Plans valued on a randomized campaign log: what an A/B test would say, from data in hand.

:func:`value_plans` takes plans (made here by :func:`plan_campaign` or read from plan files)
and a :class:`CampaignLog` and returns the offline estimates of
:func:`optimizer.evaluation.policy_values`: incremental conversions, incremental GMV, campaign
cost, ROI and incremental profit per plan, with intervals, paired differences and diagnostics.

Honesty: rows that trained the models behind a plan flatter it. A :class:`CampaignLog` built
with the models' user split (``held_out``) keeps only the customers the models never trained
on (the same hash split training used), and the result says which rows valued the plans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.choices import Policy
from optimizer.errors import InputError
from optimizer.evaluation import (
    ESTIMATORS,
    LoggedRows,
    OfflineValues,
    OutcomePredictions,
    cross_fit_outcomes,
    fold_of,
    logged_rows,
    plan_actions,
    policy_values,
)
from optimizer.io.campaign_log import user_split
from optimizer.io.mapping import (
    PROPENSITY_PREFIX,
    data_path,
    design_propensities,
    load_log_mapped,
    load_users_mapped,
)
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.io.tables import iter_table, read_table
from optimizer.models.conversion import ConversionModels
from optimizer.models.mapped import data_of, read_customers
from optimizer.planning.campaign import plan_campaign
from optimizer.planning.config import CampaignConfig
from optimizer.planning.plan import Plan
from optimizer.planning.request import PlanningRequest
from optimizer.planning.whatif import Context
from optimizer.progress import Progress, report

__all__ = [
    "CampaignLog",
    "LogValuer",
    "campaign_log_of",
    "value_plans",
    "read_plan",
    "plan_with_models",
    "crossfit_plans",
    "default_differences",
    "expected_and_estimated",
    "grid_values",
    "LOG_FIGURES",
]

#: The figures a what-if grid gets from the log, as ``log_<figure>`` with ``_low``/``_high``.
LOG_FIGURES: tuple[str, ...] = ("incremental_conversions", "campaign_cost", "incremental_profit")


@dataclass(frozen=True)
class CampaignLog:
    """A campaign log and what valuing plans on it needs.

    Attributes
    ----------
    log : DataFrame, shape (m, c)
        The log in the contract's form; a mapped log carries ``propensity`` per row.
    users : DataFrame, shape (n, 1 + f)
        ``user_id`` and the customers' features (and basket), for the outcome models.
    features : tuple of str
        The feature columns the outcome models read.
    source : str
        The log's file, for messages.
    propensity : dict of str to float, optional
        P(arm) by menu name when the design gives every row the same chances.
    held_out : (float, int), optional
        The models' user split ``(test_share, seed)``: only its test customers are valued.
    crossfit : int, optional
        The plans were cross-fitted in this many folds (:func:`crossfit_plans`): every row is
        honest.
    redemption_logged : bool
        False when the log does not say who redeemed: coupon rows are then charged the face
        value at the menu's redemption share of their conversions.
    """

    log: pd.DataFrame
    users: pd.DataFrame
    features: tuple[str, ...]
    source: str
    propensity: dict[str, float] | None = None
    held_out: tuple[float, int] | None = None
    crossfit: int | None = None
    redemption_logged: bool = True

    def with_split(self, models: ConversionModels | None) -> CampaignLog:
        """The same log valued on the customers ``models`` held out (None: every customer)."""
        if models is None:
            return replace(self, held_out=None)
        return replace(self, held_out=(float(models.test_share), int(models.random_state)))

    def note(self, rows: int, customers: int) -> str:
        """Which rows value the plans, in one sentence."""
        if self.crossfit is not None:
            return (
                f"{rows:,} randomized rows of {customers:,} customers, cross-fitted: each "
                f"customer's plan comes from models trained without them ({self.crossfit} folds)"
            )
        if self.held_out is None:
            return (
                f"{rows:,} randomized rows of {customers:,} customers, all of the log: rows the "
                "models trained on flatter their plans"
            )
        share, seed = self.held_out
        return (
            f"{rows:,} randomized rows of {customers:,} customers held out from the models "
            f"(user split {share:.0%}, seed {seed}): none trained the models behind the plans "
            "(the models' coverage knee, v2's default cut, was read on them)"
        )


def campaign_log_of(
    campaign: CampaignConfig,
    base: str | Path | None = None,
    *,
    models: ConversionModels | None = None,
    log_path: str | Path | None = None,
    users_path: str | Path | None = None,
) -> CampaignLog:
    """The campaign log of a configuration's ``[data]``, with its customers' features.

    Parameters
    ----------
    campaign : CampaignConfig
        A configuration mapping a customer table and a log (``[data]``).
    base : str or Path, optional
        Folder the configuration's relative file names start from.
    models : ConversionModels, optional
        Models behind the plans: their features feed the outcome models and only the
        customers they held out are valued.
    log_path, users_path : str or Path, optional
        Other files with the configuration's columns.
    """
    data = campaign.data
    if models is not None and data_of(models) is not None:
        data = data_of(models) if data is None else data
    if data is None or data.log is None:
        raise InputError("the campaign maps no campaign log", key="data.log")
    users = load_users_mapped(data, base, path=users_path)
    log = load_log_mapped(data, campaign.menu, users, base, path=log_path)
    features = tuple(models.features) if models is not None else users.features.names
    source = str(log_path) if log_path is not None else data.log.file
    design = design_propensities(data.log) or _constant_design(log)
    found = CampaignLog(
        log, users.frame, features, source, design, redemption_logged=data.log.redeemed is not None
    )
    return found.with_split(models)


def _constant_design(log: pd.DataFrame) -> dict[str, float] | None:
    """Every arm's propensity when each arm's randomized rows share one that adds up to 1."""
    if any(str(c).startswith(PROPENSITY_PREFIX) for c in log.columns):
        return None  # a per-row design
    rows = log[(log["assignment"].astype(str) == "randomized").to_numpy()]
    per_arm = rows.groupby(rows["denomination"].astype(str), observed=True)["propensity"]
    if rows.empty or (per_arm.nunique() > 1).any():
        return None
    design = {str(k): float(v) for k, v in per_arm.first().items()}
    return design if abs(sum(design.values()) - 1) < 1e-6 else None


def read_plan(
    path: str | Path,
    menu: Menu,
    customers: np.ndarray | None = None,
    *,
    chunk_rows: int = 1_000_000,
) -> pd.DataFrame:
    """A plan file or dataset (``user_id``, ``denomination``), checked as it is read.

    Parameters
    ----------
    path : path
        A Parquet or CSV plan file, or a plan dataset folder (as the out-of-core and Spark
        planners write them).
    menu : Menu
    customers : ndarray of int, optional
        Keep only these customers' rows (a log's): the plan is then read in chunks of
        ``chunk_rows`` and memory is one chunk plus the kept rows, whatever the plan's size.
        Every row's treatment is checked; ids are checked unique among the kept rows.
    chunk_rows : int

    Raises
    ------
    InputError
        A missing column, a customer listed twice, or a treatment that is not on the menu.
    """
    known = [*menu.names, NO_COUPON]
    chunks = (
        [(0, read_table(path))] if customers is None else iter_table(path, chunk_rows)
    )  # fmt: skip
    kept = []
    wanted = None if customers is None else np.unique(np.asarray(customers, dtype=np.int64))
    for _, frame in chunks:
        for column in ("user_id", "denomination"):
            if column not in frame.columns:
                raise InputError(f"missing column {column!r}; not a plan file", source=path)
        names = frame["denomination"].astype(str)
        unknown = ~names.isin(known).to_numpy()
        if unknown.any():
            raise InputError(
                f"treatment {names[unknown].iloc[0]!r} is not on the menu",
                source=path,
                column="denomination",
            )
        if wanted is not None:
            ids = pd.to_numeric(frame["user_id"], errors="coerce").to_numpy()
            frame = frame[np.isin(ids, wanted)]
        kept.append(frame[["user_id", "denomination"]])
    plan = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]
    if plan["user_id"].duplicated().any():
        raise InputError("a customer is listed twice", source=path, column="user_id")
    return plan


def plan_with_models(
    request: PlanningRequest,
    models: ConversionModels,
    base: str | Path | None = None,
    users_path: str | Path | None = None,
) -> dict[str, Plan]:
    """Score the configuration's customers with ``models`` and plan the request's policies."""
    data = request.campaign.data or data_of(models)
    if data is None:
        raise InputError("the campaign maps no customer table", key="data")
    customers = read_customers(models, users_path or data_path(data.users.file, base))
    scores = models.predict(customers.frame, request.campaign.menu)
    request = request.with_models(models)
    users = request.read_users(base, users_path) if request.campaign.data else customers.frame
    return plan_campaign(request.candidates(scores, users), request)


def crossfit_plans(
    request: PlanningRequest,
    models: ConversionModels,
    base: str | Path | None = None,
    *,
    folds: int = 5,
    users_path: str | Path | None = None,
    log_path: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Plan], CampaignLog]:
    """Plans whose every customer was scored by models that never saw them, and their log.

    Customers are split into ``folds`` by a hash of their id; for each fold, models with the
    parameters of ``models`` are trained on the log rows of the other folds' customers and score
    the fold's customers. The request's policies are then planned once on these out-of-fold
    scores (v2's cut: the folds' median coverage knee), so every randomized row of the log can
    value the plans, not only a held-out share of them.

    Parameters
    ----------
    request : PlanningRequest
    models : ConversionModels
        Fitted on a data configuration: its parameters (architecture, epochs, features) are
        reused, its own networks are not.
    base : str or Path, optional
        Folder the configuration's relative file names start from.
    folds : int
        At least 2; training runs this many times.
    users_path, log_path : str or Path, optional
        Other files with the configuration's columns.
    params : mapping, optional
        :class:`ConversionModels` parameters changed in every fold's models (e.g. another
        ``architecture``).
    progress : callable, optional
        Receives a ``"cross-fitting the models"`` :class:`~optimizer.progress.Step` per fold.
    """
    from sklearn.base import clone

    if folds < 2:
        raise InputError("must be at least 2", key="crossfit")
    found = campaign_log_of(
        request.campaign, base, models=models, log_path=log_path, users_path=users_path
    )
    found = replace(found, held_out=None, crossfit=folds)
    menu, users, log = request.campaign.menu, found.users, found.log
    fold = fold_of(users["user_id"].to_numpy(), folds, models.random_state)
    log_fold = fold_of(log["user_id"].to_numpy(), folds, models.random_state)
    parts, fold_models = [], []
    for k in range(folds):
        report(progress, "cross-fitting the models", k, folds, f"fold {k + 1} of {folds}")
        template = clone(models).set_params(**dict(params or {}))
        fitted = template.fit(log[log_fold != k], users, menu, source=found.source)
        parts.append(fitted.predict(users[fold == k], menu))
        fold_models.append(fitted)
    report(progress, "cross-fitting the models", folds, folds)
    scores = pd.concat(parts, ignore_index=True)
    known = request.with_models(*fold_models)
    people = request.read_users(base, users_path) if request.campaign.data else users
    return plan_campaign(known.candidates(scores, people), known), found


def default_differences(names: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs to compare: ``optimal`` against every other plan, else the first against the rest."""
    names = list(names)
    first = str(Policy.OPTIMAL) if str(Policy.OPTIMAL) in names else (names[0] if names else "")
    return [(first, other) for other in names if other != first]


@dataclass
class LogValuer:
    """A log prepared once (rows, propensities, cross-fitted outcome models), to value plans.

    Built by :meth:`prepare`; :meth:`value` values any set of plans on the rows of customers
    every plan covers, so a what-if grid fits the outcome models once.
    """

    request: PlanningRequest
    log: CampaignLog
    rows: LoggedRows
    outcomes: OutcomePredictions | None
    estimators: tuple[str, ...]
    settings: dict[str, Any]

    @classmethod
    def prepare(
        cls,
        request: PlanningRequest,
        log: CampaignLog,
        *,
        estimators: Sequence[str] = ESTIMATORS,
        outcome_model: str = "boosting",
        folds: int = 3,
        seed: int = 0,
        progress: Progress | None = None,
        **settings: Any,
    ) -> LogValuer:
        """Read the randomized (held-out) rows and fit the outcome models of ``dr``.

        ``settings`` are :func:`optimizer.evaluation.policy_values` keywords (``bootstrap``,
        ``clip``, ``unrandomized``).
        """
        frame = log.log
        keep = np.ones(len(frame), dtype=bool)
        if "assignment" in frame.columns:
            keep &= (frame["assignment"].astype(str) == "randomized").to_numpy()
        if log.held_out is not None:
            keep &= user_split(frame["user_id"].to_numpy(), *log.held_out)
        if not keep.any():
            what = "held-out " if log.held_out is not None else ""
            raise InputError(f"no {what}randomized row to value plans on", source=log.source)
        rows_frame = frame[keep].reset_index(drop=True)
        menu = request.campaign.menu
        if not log.redemption_logged and (menu.face_values > 0).any():
            # No redemption column: each coupon conversion pays the face value at the menu's
            # redemption share, as planning assumes.
            index = pd.Index(menu.names).get_indexer(rows_frame["denomination"].astype(str))
            face = np.append(menu.face_values * menu.redemption_shares, 0.0)[index]
            rows_frame["discount"] = np.where(index >= 0, face, 0.0) * rows_frame["converted"]
        where = pd.Index(log.users["user_id"]).get_indexer(rows_frame["user_id"])
        if (where < 0).any():
            raise InputError("a logged customer is not in the customer table", source=log.source)
        basket = None
        if request.basket_column is not None and request.basket_column in log.users.columns:
            column = log.users[request.basket_column]
            basket = column.to_numpy(dtype=np.float64, na_value=np.nan)[where]
        arms = (*request.campaign.menu.names, NO_COUPON)
        per_row = [f"{PROPENSITY_PREFIX}{a}" for a in arms]
        matrix = None
        if all(c in rows_frame.columns for c in per_row):  # a per-row design: all chances
            matrix = rows_frame[per_row].to_numpy(dtype=np.float64)
        rows = logged_rows(
            rows_frame,
            request.campaign.menu,
            sms_cost=request.sms_cost,
            order_value=request.campaign.costs.order_value,
            basket=basket,
            propensity=log.propensity,
            arm_propensity=matrix,
            source=log.source,
        )
        outcomes = None
        if "dr" in estimators:
            features = log.users.iloc[where][list(log.features)].reset_index(drop=True)
            outcomes = cross_fit_outcomes(
                features, rows, model=outcome_model, folds=folds, seed=seed, progress=progress
            )
        return cls(request, log, rows, outcomes, tuple(estimators), {"seed": seed, **settings})

    def value(
        self,
        plans: Mapping[str, pd.DataFrame],
        differences: Sequence[tuple[str, str]] | None = None,
        *,
        sms_cost: float | None = None,
        margin_rate: float | None = None,
    ) -> OfflineValues:
        """Each plan's estimates on the rows of customers every plan covers.

        ``sms_cost`` and ``margin_rate`` re-price the log for a what-if point: each sent row
        costs the point's send cost instead of the campaign's (the outcome models' costs move
        by the same amount), and profit uses the point's margin.
        """
        if not plans:
            raise InputError("no plan to value", key="plans")
        keep = np.ones(self.rows.n_rows, dtype=bool)
        for plan in plans.values():
            keep &= np.isin(self.rows.user_id, plan["user_id"].to_numpy())
        if not keep.any():
            raise InputError(
                "no valued log row of a customer every plan covers", source=self.log.source
            )
        index = np.flatnonzero(keep)
        rows = self.rows.subset(index)
        outcomes = None if self.outcomes is None else self.outcomes.subset(index)
        menu = self.request.campaign.menu
        if sms_cost is not None and sms_cost != self.request.sms_cost:
            shift = np.append(menu.send_costs(sms_cost) - menu.send_costs(self.request.sms_cost), 0)
            rows = replace(rows, cost=rows.cost + shift[rows.arm])
            if outcomes is not None:
                outcomes = replace(outcomes, cost=outcomes.cost + shift[None, :])
        actions = {name: plan_actions(p, rows, name=name) for name, p in plans.items()}
        pairs = default_differences(list(plans)) if differences is None else list(differences)
        values = policy_values(
            rows,
            actions,
            margin_rate=self.request.margin_rate if margin_rate is None else margin_rate,
            estimators=self.estimators,
            outcomes=outcomes,
            customers={name: len(p) for name, p in plans.items()},
            differences=pairs,
            **self.settings,
        )
        values.rows_note = self.log.note(rows.n_rows, values.customers)
        return values


def value_plans(
    request: PlanningRequest,
    plans: Mapping[str, pd.DataFrame],
    log: CampaignLog,
    *,
    estimators: Sequence[str] = ESTIMATORS,
    bootstrap: int = 200,
    clip: float | None = None,
    outcome_model: str = "boosting",
    folds: int = 3,
    unrandomized: str = "refuse",
    differences: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> OfflineValues:
    """Estimate each plan's figures on the randomized rows of ``log``.

    Parameters
    ----------
    request : PlanningRequest
        The campaign: menu, costs (send cost, margin, order value).
    plans : mapping of str to DataFrame
        Per plan, ``user_id`` and ``denomination`` per customer (``Plan.to_frame()`` or a plan
        file). Rows are valued when their customer is in every plan.
    log : CampaignLog
    estimators, bootstrap, clip, unrandomized, seed
        See :func:`optimizer.evaluation.policy_values`.
    outcome_model, folds
        See :func:`optimizer.evaluation.cross_fit_outcomes` (doubly robust estimator).
    differences : sequence of (str, str), optional
        Pairs of plans to compare; default :func:`default_differences`.
    progress : callable, optional
        Receives the outcome models' :class:`~optimizer.progress.Step` reports.

    Raises
    ------
    InputError
        No plan, or no randomized row of a customer every plan covers.
    """
    if not plans:
        raise InputError("no plan to value", key="plans")
    valuer = LogValuer.prepare(
        request, log, estimators=estimators, outcome_model=outcome_model, folds=folds,
        seed=seed, bootstrap=bootstrap, clip=clip, unrandomized=unrandomized, progress=progress,
    )  # fmt: skip
    return valuer.value(plans, differences)


_EXPECTED = {
    "incremental_conversions": "incremental_conversions",
    "incremental_gmv": "incremental_gmv",
    "campaign_cost": "expected_cost",
    "roi": "roi",
    "incremental_profit": "incremental_profit",
}


def expected_and_estimated(
    plans: Mapping[str, Plan], values: OfflineValues, estimator: str = "dr"
) -> pd.DataFrame:
    """The models' expected figures beside the log's estimates, per plan and figure.

    Returns
    -------
    DataFrame
        ``plan``, ``metric``, ``expected`` (the plan's summary, totals over its customers),
        ``estimated``, ``low``, ``high`` (totals; ROI as a ratio) and ``ratio`` (expected /
        estimated: above 1 the models over-promise; NaN when the estimate is not positive).
    """
    table = values.estimates[values.estimates["estimator"] == estimator]
    records = []
    for name, plan in plans.items():
        summary = plan.summary()
        for metric, key in _EXPECTED.items():
            hit = table[(table["plan"] == name) & (table["metric"] == metric)]
            if hit.empty:
                continue
            row = hit.iloc[0]
            expected = float(summary[key])
            estimated = float(row["total"])
            records.append({
                "plan": name, "metric": metric, "expected": expected, "estimated": estimated,
                "low": float(row["total_low"]), "high": float(row["total_high"]),
                "ratio": expected / estimated if estimated > 0 else float("nan"),
            })  # fmt: skip
    return pd.DataFrame.from_records(
        records, columns=["plan", "metric", "expected", "estimated", "low", "high", "ratio"]
    )


def grid_values(
    valuer: LogValuer,
    plans: Mapping[str, Sequence[Plan]],
    context: Context | None = None,
    estimator: str = "dr",
) -> pd.DataFrame:
    """The log's estimates of a what-if point's plans, one row per plan in the grid's order.

    ``context`` (the point's menu, send cost and margin) re-prices the log; a point whose menu
    is not the log's gets NaN: its coupons were never randomized as such, even under the
    same names.

    Returns
    -------
    DataFrame
        ``log_<figure>``, ``log_<figure>_low`` and ``log_<figure>_high`` (totals, 95%
        influence-function interval) for each of :data:`LOG_FIGURES`; NaN for a plan giving
        arms the log never randomized (another menu's coupons).
    """
    flat = [plan for series in plans.values() for plan in series]
    columns = [f"log_{f}{x}" for f in LOG_FIGURES for x in ("", "_low", "_high")]
    if context is not None and context.menu != valuer.request.campaign.menu:
        return pd.DataFrame(np.nan, index=range(len(flat)), columns=columns)
    values = valuer.value(
        {str(i): p.to_frame() for i, p in enumerate(flat)},
        differences=[],
        sms_cost=None if context is None else context.sms_cost,
        margin_rate=None if context is None else context.margin_rate,
    )
    found = values.estimates["estimator"].unique().tolist()
    estimator = estimator if estimator in found else found[-1]
    table = values.estimates[values.estimates["estimator"] == estimator]
    unrandomized = values.plans.set_index("plan")["unrandomized_share"]
    records = []
    for i in range(len(flat)):
        rows = table[table["plan"] == str(i)].set_index("metric")
        record = {}
        for figure in LOG_FIGURES:
            r = rows.loc[figure]
            valid = unrandomized[str(i)] == 0
            for suffix, column in (("", "total"), ("_low", "total_low"), ("_high", "total_high")):
                record[f"log_{figure}{suffix}"] = float(r[column]) if valid else float("nan")
        records.append(record)
    return pd.DataFrame.from_records(records)
