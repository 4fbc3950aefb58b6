"""What a plan would have returned, estimated on a randomized campaign log, with intervals.

A plan gives each customer one arm (a treatment or none). On a randomized log the rows whose
received arm is the plan's arm for that customer are a random sample of what the plan would
have produced, each standing for ``1 / propensity`` customers. Per plan, per valued row (per
customer when each customer has one randomized row, as in a one-campaign test; a customer
logged in several campaigns weighs as many rows, and the intervals count them as one cluster):

* incremental conversions ``E[Y(plan)] - E[Y(none)]``, incremental GMV likewise, campaign cost
  ``E[C(plan)]`` (nothing is spent on customers left alone), ROI = incremental GMV / campaign
  cost, incremental profit = margin x incremental GMV - campaign cost.

Estimators, for an outcome ``Y`` and weights ``w_i = 1[A_i = plan(i)] / e_i``:

* ``ipw``: ``mean(w Y)`` (unbiased; Horvitz-Thompson);
* ``snipw``: ``sum(w Y) / sum(w)`` (self-normalised: a little bias, often far less variance; a
  plan that treats everyone with one arm gets that arm's mean exactly);
* ``dr``: ``mean(mu(plan(i)) + w (Y - mu(A_i)))`` with cross-fitted outcome models ``mu``
  (:func:`~optimizer.evaluation.outcome_models.cross_fit_outcomes`): unbiased when either the
  propensities or the outcome models are right, and tighter when the models are good.

Intervals at 95%: by the influence function (a normal interval; customers are the clusters, so
a customer's several rows count once) and by a customer-level Poisson bootstrap (each customer
weighted Poisson(1) times per replicate; percentile interval; outcome models held fixed).
Differences between two plans are paired: the same rows and the same bootstrap replicates.

Every step is vectorised; the bootstrap runs over chunks of customers, so its memory is bounded
by the chunk, not by the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.evaluation.logged import LoggedRows
from optimizer.evaluation.outcome_models import OutcomePredictions

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_NAMES",
    "METRICS",
    "OFFLINE_DEFINITION",
    "OfflineValues",
    "policy_values",
]

#: Offline estimators.
ESTIMATORS: tuple[str, ...] = ("ipw", "snipw", "dr")
#: Each estimator's name in words.
ESTIMATOR_NAMES: dict[str, str] = {
    "ipw": "IPW",
    "snipw": "self-normalised IPW",
    "dr": "doubly robust",
}
#: Figures estimated per plan (per customer; ROI is a ratio).
METRICS: tuple[str, ...] = (
    "incremental_conversions",
    "incremental_gmv",
    "campaign_cost",
    "roi",
    "incremental_profit",
)
OFFLINE_DEFINITION = (
    "estimated on randomized log rows: each row whose arm is the plan's arm for that customer "
    "counts 1/propensity times; incremental = plan minus no treatment on the same rows; "
    "campaign cost = send costs + face value redeemed (+ costs per conversion); "
    "ROI = incremental GMV / campaign cost; incremental profit = margin x incremental GMV - "
    "campaign cost; 95% intervals by influence function and by customer-level bootstrap"
)
_Z = 1.959963984540054
_BOOT_CHUNK_CELLS = 20_000_000  # bootstrap weights drawn per chunk (replicates x customers)


@dataclass
class OfflineValues:
    """Offline estimates of several plans on one log.

    Attributes
    ----------
    estimates : DataFrame
        One row per (plan, estimator, metric): ``estimate`` per customer, ``se``, ``low`` and
        ``high`` (influence-function 95% interval), ``boot_low`` and ``boot_high`` (bootstrap
        percentile interval; NaN without a bootstrap), and ``total``, ``total_low``,
        ``total_high``, ``total_boot_low``, ``total_boot_high`` scaled to the plan's customers
        (ROI is not scaled).
    differences : DataFrame
        The same columns for each requested pair, ``plan`` named ``"a - b"``.
    diagnostics : DataFrame
        One row per (plan, arm): ``plan_share`` (share of valued rows the plan gives the arm),
        ``matched_rows`` (rows that received it where the plan gives it) and ``ess`` (effective
        sample size of their weights, ``(sum w)^2 / sum w^2``).
    plans : DataFrame
        One row per plan: ``customers`` (the plan's), ``valued_rows``, ``unrandomized_share``
        (share of valued rows whose plan arm the log never randomized), ``clipped_rows`` and
        ``max_weight``.
    rows, customers : int
        Valued log rows and their distinct customers.
    bootstrap : int
        Bootstrap replicates (0: none).
    clip : float or None
        Largest weight allowed (weights above it were cut to it).
    outcome_model : str or None
        Outcome model family of the doubly robust estimator, with its folds.
    rows_note : str
        Which rows valued the plans (held out from the models, or not).
    """

    estimates: pd.DataFrame
    differences: pd.DataFrame
    diagnostics: pd.DataFrame
    plans: pd.DataFrame
    rows: int
    customers: int
    bootstrap: int
    clip: float | None
    outcome_model: str | None
    rows_note: str = ""

    def value(self, plan: str, metric: str, estimator: str = "dr") -> float:
        """The per-customer estimate of one figure."""
        table = self.estimates
        hit = table[
            (table["plan"] == plan)
            & (table["metric"] == metric)
            & (table["estimator"] == estimator)
        ]
        if hit.empty:
            raise KeyError((plan, metric, estimator))
        return float(hit["estimate"].iloc[0])

    def table(self) -> pd.DataFrame:
        """Estimates then paired differences, one row per (plan or pair, estimator, figure)."""
        parts = [self.estimates.assign(kind="plan")]
        if not self.differences.empty:
            parts.append(self.differences.assign(kind="difference"))
        return pd.concat(parts, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite numbers become None through the strict JSON writer)."""
        return {
            "rows": self.rows,
            "customers": self.customers,
            "rows_note": self.rows_note,
            "bootstrap": self.bootstrap,
            "clip": self.clip,
            "outcome_model": self.outcome_model,
            "definitions": OFFLINE_DEFINITION,
            "plans": self.plans.to_dict(orient="records"),
            "estimates": self.estimates.to_dict(orient="records"),
            "differences": self.differences.to_dict(orient="records"),
            "diagnostics": self.diagnostics.to_dict(orient="records"),
        }


# ----------------------------------------------------------------------------- per-row terms


@dataclass(frozen=True)
class _Rows:
    """The valued rows sorted by customer, with everything the estimators read."""

    arm: np.ndarray
    weight: np.ndarray
    y: np.ndarray  # (m, 3): converted, gmv, cost
    mu: np.ndarray | None  # (m, arms, 3)
    none: int
    starts: np.ndarray  # first row of each customer
    per_customer: np.ndarray  # rows of each customer

    def take(self, lo: int, hi: int) -> _Rows:
        """Rows ``lo:hi`` (customer boundaries), with customer starts relative to ``lo``."""
        first = np.searchsorted(self.starts, lo)
        last = np.searchsorted(self.starts, hi)
        return _Rows(
            self.arm[lo:hi],
            self.weight[lo:hi],
            self.y[lo:hi],
            None if self.mu is None else self.mu[lo:hi],
            self.none,
            self.starts[first:last] - lo,
            self.per_customer[first:last],
        )


def _components(rows: _Rows, actions: np.ndarray, estimator: str) -> np.ndarray:
    """Per-row terms whose means give the estimate, shape (m, q).

    ``ipw`` and ``dr``: (incremental conversions, incremental GMV, cost) terms (q = 3);
    ``snipw``: ``w Y`` under the plan (3), ``w``, ``w Y`` under none (conversions, GMV), ``w``
    under none (q = 7; cost under none is 0).
    """
    matched = np.where(rows.arm == actions, rows.weight, 0.0)
    alone = np.where(rows.arm == rows.none, rows.weight, 0.0)
    y = rows.y
    if estimator == "ipw":
        out = matched[:, None] * y
        out[:, :2] -= alone[:, None] * y[:, :2]
        return out
    if estimator == "snipw":
        return np.column_stack([matched[:, None] * y, matched, alone[:, None] * y[:, :2], alone])
    if rows.mu is None:
        raise InputError("the doubly robust estimate needs outcome models", key="estimators")
    m = rows.arm.size
    idx = np.arange(m)
    treated = np.where(actions >= 0, actions, rows.none)  # unknown arms carry no model value
    known = actions >= 0
    mu_plan = np.where(known[:, None], rows.mu[idx, treated], 0.0)
    mu_got = rows.mu[idx, rows.arm]
    mu_none = rows.mu[:, rows.none]
    plan = mu_plan + matched[:, None] * (y - mu_got)
    base = mu_none + alone[:, None] * (y - mu_none)
    base[:, 2] = 0.0
    return plan - base


def _base(means: np.ndarray, estimator: str) -> np.ndarray:
    """(incremental conversions, incremental GMV, cost) from component means, shape (..., 3)."""
    if estimator != "snipw":
        return means[..., :3]
    with np.errstate(divide="ignore", invalid="ignore"):
        plan = means[..., :3] / means[..., 3:4]
        none = means[..., 4:6] / means[..., 6:7]
    out = plan.copy()
    out[..., :2] -= none
    return out


def _influence(
    comps: np.ndarray, means: np.ndarray, base: np.ndarray, estimator: str
) -> np.ndarray:
    """Per-row influence of (incremental conversions, incremental GMV, cost), shape (m, 3)."""
    if estimator != "snipw":
        return comps - means
    with np.errstate(divide="ignore", invalid="ignore"):
        plan_value = means[:3] / means[3]
        none_value = means[4:6] / means[6]
        psi = (comps[:, :3] - comps[:, 3:4] * plan_value) / means[3]
        psi[:, :2] -= (comps[:, 4:6] - comps[:, 6:7] * none_value) / means[6]
    return psi


def _metrics(base: np.ndarray, margin: float) -> np.ndarray:
    """The five figures of :data:`METRICS` from (conversions, GMV, cost), shape (..., 5)."""
    conversions, gmv, cost = base[..., 0], base[..., 1], base[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(cost > 0, gmv / cost, np.nan)
    return np.stack([conversions, gmv, cost, roi, margin * gmv - cost], axis=-1)


def _metric_influence(base: np.ndarray, psi: np.ndarray, margin: float) -> np.ndarray:
    """Influence of the five figures (delta method for ROI), shape (m, 5)."""
    gmv, cost = base[1], base[2]
    roi_psi = (
        (psi[:, 1] - (gmv / cost) * psi[:, 2]) / cost if cost > 0 else np.full(len(psi), np.nan)
    )
    return np.column_stack(
        [psi[:, 0], psi[:, 1], psi[:, 2], roi_psi, margin * psi[:, 1] - psi[:, 2]]
    )


def _cluster_se(psi: np.ndarray, rows: _Rows) -> np.ndarray:
    """Standard error of a mean whose rows have influence ``psi`` (m, q), customers as clusters."""
    m = psi.shape[0]
    sums = np.add.reduceat(psi, rows.starts, axis=0) if rows.starts.size < m else psi
    g = sums.shape[0]
    with np.errstate(invalid="ignore"):
        var = (sums**2).sum(axis=0) / m**2 * (g / max(g - 1, 1))
    return np.sqrt(var)


# ----------------------------------------------------------------------------- the estimate


def _sorted_rows(
    rows: LoggedRows, outcomes: OutcomePredictions | None, clip: float | None
) -> tuple[_Rows, np.ndarray]:
    order = np.argsort(rows.user_id, kind="stable")
    ids = rows.user_id[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    per_customer = np.diff(np.r_[starts, ids.size])
    raw = 1.0 / rows.propensity[order]
    weight = raw if clip is None else np.minimum(raw, clip)
    mu = None
    if outcomes is not None:
        mu = np.stack(
            [outcomes.converted[order], outcomes.gmv[order], outcomes.cost[order]], axis=-1
        )
    y = np.column_stack([rows.converted[order], rows.gmv[order], rows.cost[order]])
    prepared = _Rows(rows.arm[order], weight, y, mu, rows.none, starts, per_customer)
    return prepared, order


def _unrandomized(rows: LoggedRows, actions: np.ndarray) -> np.ndarray:
    """True for rows whose plan arm the log never randomized (or does not know), shape (m,)."""
    out = actions == -1
    known = actions >= 0
    if rows.arm_propensity is not None:
        p = rows.arm_propensity[np.flatnonzero(known), actions[known]]
        out[np.flatnonzero(known)[p <= 0]] = True
    else:
        seen = np.bincount(rows.arm, minlength=len(rows.arms)) > 0
        out |= known & ~seen[np.where(known, actions, 0)]
    return out


def _frame(
    names: list[tuple[str, str]], values: np.ndarray, se: np.ndarray, boot: np.ndarray | None,
    scale: Mapping[str, float],
) -> pd.DataFrame:  # fmt: skip
    """Long table of estimates: one row per (label, estimator) x metric."""
    records = []
    for (label, estimator), v, s, b in zip(
        names, values, se, boot if boot is not None else [None] * len(names), strict=True
    ):
        for j, metric in enumerate(METRICS):
            factor = 1.0 if metric == "roi" else scale.get(label, np.nan)
            low, high = v[j] - _Z * s[j], v[j] + _Z * s[j]
            if b is not None:
                reps = b[:, j]
                finite = reps[np.isfinite(reps)]
                bl, bh = np.quantile(finite, [0.025, 0.975]) if finite.size else (np.nan, np.nan)
            else:
                bl = bh = np.nan
            records.append({
                "plan": label, "estimator": estimator, "metric": metric,
                "estimate": v[j], "se": s[j], "low": low, "high": high,
                "boot_low": bl, "boot_high": bh,
                "total": v[j] * factor, "total_low": low * factor, "total_high": high * factor,
                "total_boot_low": bl * factor, "total_boot_high": bh * factor,
            })  # fmt: skip
    return pd.DataFrame.from_records(records)


def _bootstrap(
    rows: _Rows,
    actions: Mapping[str, np.ndarray],
    estimators: Sequence[str],
    margin: float,
    replicates: int,
    seed: int,
) -> dict[tuple[str, str], np.ndarray]:
    """Bootstrap replicates of the five figures per (plan, estimator), each (replicates, 5)."""
    n_customers = rows.starts.size
    widths = {e: 7 if e == "snipw" else 3 for e in estimators}
    acc = {(p, e): np.zeros((replicates, widths[e])) for p in actions for e in estimators}
    count = np.zeros(replicates)
    rng = np.random.default_rng(seed)
    step = max(1, _BOOT_CHUNK_CELLS // max(replicates, 1))
    bounds = np.r_[rows.starts, rows.arm.size]
    keys = list(acc)
    edges = np.cumsum([0, *(acc[k].shape[1] for k in keys)])
    for first in range(0, n_customers, step):
        last = min(first + step, n_customers)
        lo, hi = int(bounds[first]), int(bounds[last])
        part = rows.take(lo, hi)
        draws = rng.poisson(1.0, size=(replicates, last - first)).astype(np.float64)
        # Every plan's per-customer sums side by side, rows last: one product per chunk.
        sums = np.empty((last - first, edges[-1] + 1))
        sums[:, -1] = part.per_customer
        for i, (plan, estimator) in enumerate(keys):
            comps = _components(part, actions[plan][lo:hi], estimator)
            sums[:, edges[i] : edges[i + 1]] = np.add.reduceat(comps, part.starts, axis=0)
        weighted = draws @ sums
        count += weighted[:, -1]
        for i, key in enumerate(keys):
            acc[key] += weighted[:, edges[i] : edges[i + 1]]
    out = {}
    for key, total in acc.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            means = total / count[:, None]
        out[key] = _metrics(_base(means, key[1]), margin)
    return out


def policy_values(
    rows: LoggedRows,
    plans: Mapping[str, np.ndarray],
    *,
    margin_rate: float,
    estimators: Sequence[str] = ESTIMATORS,
    outcomes: OutcomePredictions | None = None,
    customers: Mapping[str, int] | None = None,
    differences: Sequence[tuple[str, str]] = (),
    bootstrap: int = 200,
    clip: float | None = None,
    unrandomized: str = "refuse",
    seed: int = 0,
    rows_note: str = "",
) -> OfflineValues:
    """Estimate each plan's figures on the logged rows, with 95% intervals.

    Parameters
    ----------
    rows : LoggedRows
        The valued rows (randomized, held out from the models that made the plans).
    plans : mapping of str to ndarray of int, each shape (m,)
        Per plan, the arm (index in ``rows.arms``) it gives each row's customer, -1 for an arm
        the log does not know (:func:`~optimizer.evaluation.logged.plan_actions`). Every plan
        must cover every row.
    margin_rate : float
        Gross margin share of GMV, for the incremental profit.
    estimators : sequence of str
        Some of :data:`ESTIMATORS`; ``dr`` needs ``outcomes``.
    outcomes : OutcomePredictions, optional
        Cross-fitted outcome predictions for the rows (doubly robust estimator).
    customers : mapping of str to int, optional
        Customers each plan covers: totals are the per-customer estimates times this (default
        the valued customers).
    differences : sequence of (str, str)
        Pairs of plans ``(a, b)`` whose difference ``a - b`` is estimated on the same rows.
    bootstrap : int
        Customer-level bootstrap replicates (0 for none).
    clip : float, optional
        Largest weight ``1 / propensity`` allowed; larger weights are cut to it (a bias traded
        for variance, stated in the output).
    unrandomized : {"refuse", "flag"}
        What to do when a plan gives some rows an arm the log never randomized for them:
        refuse (raise) or value those rows without a logged outcome and report the share: the
        weighted estimators count nothing for them, DR its outcome model's prediction (which
        :func:`cross_fit_outcomes` makes 0 for an arm with no logged rows).
    seed : int
        Seeds the bootstrap.
    rows_note : str
        Which rows these are (held out or not), carried into the result.

    Raises
    ------
    InputError
        Unknown estimator or plan in a pair, a plan not covering the rows, an unrandomized arm
        (with ``unrandomized="refuse"``), or no rows.
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise InputError(
            f"unknown estimator {unknown[0]!r}" if unknown else "no estimator chosen",
            key="estimators",
        )
    if "dr" in estimators and outcomes is None:
        raise InputError("the doubly robust estimate needs outcome models", key="estimators")
    if unrandomized not in ("refuse", "flag"):
        raise InputError("must be 'refuse' or 'flag'", key="unrandomized")
    if clip is not None and clip < 1:
        raise InputError("must be at least 1 (a weight is 1 / propensity)", key="clip")
    if bootstrap < 0:
        raise InputError("must be 0 or more", key="bootstrap")
    if rows.n_rows == 0:
        raise InputError("no log rows to value the plans on", key="log")
    for a, b in differences:
        for name in (a, b):
            if name not in plans:
                raise InputError(f"no plan named {name!r} to compare", key="differences")
    prepared, order = _sorted_rows(rows, outcomes, clip)
    customers = dict(customers or {})
    actions, summary, diagnostics = {}, [], []
    for name, act in plans.items():
        act = np.asarray(act)
        if act.shape != (rows.n_rows,):
            raise InputError(
                f"plan {name!r} has {act.size} actions for {rows.n_rows} rows", key="plans"
            )
        if (act == -2).any() or (act < -2).any() or (act >= len(rows.arms)).any():
            raise InputError(f"plan {name!r} does not cover every valued row", key="plans")
        never = _unrandomized(rows, act)
        if never.any() and unrandomized == "refuse":
            arm = act[never][0]
            label = rows.arms[arm] if arm >= 0 else "an arm the log does not know"
            raise InputError(
                f"plan {name!r} gives {never.mean():.1%} of the valued rows an arm the log "
                f"never randomized for them (first: {label}); the log cannot value it",
                key="plans",
            )
        actions[name] = act[order]
        matched = rows.arm == act
        summary.append({
            "plan": name, "customers": customers.get(name, prepared.starts.size),
            "valued_rows": rows.n_rows, "unrandomized_share": float(never.mean()),
            "clipped_rows": int((matched & (1.0 / rows.propensity > clip)).sum()) if clip else 0,
            "max_weight": float(np.minimum(1.0 / rows.propensity[matched], clip or np.inf).max())
            if matched.any()
            else 0.0,
        })  # fmt: skip
        for a, arm in enumerate(rows.arms):
            hit = matched & (act == a)
            w = np.minimum(1.0 / rows.propensity[hit], clip or np.inf)
            diagnostics.append({
                "plan": name, "arm": arm, "plan_share": float((act == a).mean()),
                "matched_rows": int(hit.sum()),
                "ess": float(w.sum() ** 2 / (w**2).sum()) if hit.any() else 0.0,
            })  # fmt: skip
        customers.setdefault(name, prepared.starts.size)
    labels, values, ses, influence, pair_se = [], [], [], {}, {}
    # A plan's per-row influence is kept only until the last pair that needs it is done.
    position = {name: i for i, name in enumerate(actions)}
    needed_until: dict[str, int] = {}
    for pair in differences:
        done = max(position[pair[0]], position[pair[1]])
        for name in pair:
            needed_until[name] = max(needed_until.get(name, -1), done)
    for pos, (name, act) in enumerate(actions.items()):
        for estimator in estimators:
            comps = _components(prepared, act, estimator)
            means = comps.mean(axis=0)
            base = _base(means, estimator)
            psi = _metric_influence(base, _influence(comps, means, base, estimator), margin_rate)
            if name in needed_until:
                influence[name, estimator] = psi
            labels.append((name, estimator))
            values.append(_metrics(base, margin_rate))
            ses.append(_cluster_se(psi, prepared))
        for a, b in differences:
            if max(position[a], position[b]) == pos:
                for estimator in estimators:
                    paired = influence[a, estimator] - influence[b, estimator]
                    pair_se[a, b, estimator] = _cluster_se(paired, prepared)
        for key in [k for k in influence if needed_until[k[0]] <= pos]:
            del influence[key]
    boot = None
    if bootstrap:
        boot = _bootstrap(prepared, actions, estimators, margin_rate, bootstrap, seed)
    estimates = _frame(labels, np.array(values), np.array(ses),
                       None if boot is None else [boot[k] for k in labels], customers)  # fmt: skip
    diff_labels, diff_values, diff_se, diff_boot = [], [], [], []
    for a, b in differences:
        for estimator in estimators:
            label = f"{a} - {b}"
            diff_labels.append((label, estimator))
            i, j = labels.index((a, estimator)), labels.index((b, estimator))
            diff_values.append(values[i] - values[j])
            diff_se.append(pair_se[a, b, estimator])
            if boot is not None:
                diff_boot.append(boot[a, estimator] - boot[b, estimator])
    # A difference's total needs one customer count: plans of different sizes get none.
    scale = {
        f"{a} - {b}": customers[a] if customers[a] == customers[b] else np.nan
        for a, b in differences
    }
    if diff_labels:
        diffs = _frame(diff_labels, np.array(diff_values), np.array(diff_se),
                       diff_boot if boot is not None else None, scale)  # fmt: skip
    else:
        diffs = pd.DataFrame(columns=estimates.columns)
    return OfflineValues(
        estimates=estimates,
        differences=diffs,
        diagnostics=pd.DataFrame.from_records(diagnostics),
        plans=pd.DataFrame.from_records(summary),
        rows=rows.n_rows,
        customers=int(prepared.starts.size),
        bootstrap=bootstrap,
        clip=clip,
        outcome_model=None if outcomes is None else f"{outcomes.model}, {outcomes.folds} folds",
        rows_note=rows_note,
    )
