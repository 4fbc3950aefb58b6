"""Policy value on real randomized data: our uplift models vs scikit-learn meta-learners.

Issue 14's target: on Hillstrom (conversion and visit, 5-fold cross-fitting) the default model's
policy value at 10/30/50% targeted is at least the best of the T- and S-learners (and causalml's
X-learner when installed); on the Starbucks promotion training split, the break-even policy's
net incremental revenue (NIR) scaled to 41,650 customers.

Datasets (randomized, read from ``../shared/data`` by :mod:`optimizer.io.datasets`): Hillstrom
(each e-mail arm, mens and womens, against no e-mail; outcomes visit and conversion) and the
Starbucks promotion training split (promotion against none; outcome purchase).

Learners, fitted by ``benchmarks/uplift.py``'s ``fit_predict`` (the same settings as that
benchmark): ``ours-joint`` (the shared-trunk network, ``ConversionModels``' default
architecture), ``ours`` (the two-model architecture: natural model on control rows, coupon
model on treated rows), ``ours-t``, ``ours-s``, ``ours-x``, ``ours-dr`` (our LightGBM
meta-learners, :class:`optimizer.models.boosted.BoostedConversionModel`, the architectures
``t_learner`` ... ``dr_learner``), a T-learner and an S-learner of scikit-learn's
HistGradientBoostingClassifier, and causalml's X-learner when causalml is installed. Our models
train with their default epochs (early stopping), no shortcut.

Per dataset and learner:

1. 5-fold cross-fitting by customer (stratified by treatment x outcome, seed 0): fit on four
   folds, predict the uplift of the held-out fold; every customer gets an out-of-fold uplift.
2. Policy "treat the top q% by predicted uplift" (q = 10, 30, 50), valued offline with the
   project's estimator (``logged_rows`` + ``policy_values``) on the contract-form log of the
   arm's and the control's rows, with the arms' shares in the data as propensities and a
   one-message menu: incremental conversions per customer (the policy value) by ``snipw`` and
   ``ipw``, with 95% influence-function intervals. "treat all" is given for reference.
3. Starbucks: the break-even policy "promote when uplift x 10 > 0.15" (order value 10, send cost
   0.15, margin 1), so incremental profit per customer is NIR = 10 x incremental purchases -
   0.15 x promotions; scaled to 41,650 customers.

Prints one table and writes ``benchmarks/results/policy_value_real.json`` (about 2 minutes on
two cores)::

    .venv/bin/python benchmarks/policy_value_real.py
    .venv/bin/python benchmarks/policy_value_real.py --methods ours-joint t-learner s-learner
    .venv/bin/python benchmarks/policy_value_real.py --datasets hillstrom --json /tmp/pv.json
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, write_json
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import StratifiedKFold
from uplift import BOOSTED_METHODS, HAVE_CAUSALML, fit_predict

from optimizer.evaluation import logged_rows, policy_values  # noqa: E402
from optimizer.io.datasets import UpliftDataset, load_hillstrom, load_starbucks  # noqa: E402
from optimizer.io.menu import NO_COUPON, Menu  # noqa: E402

console = Console(width=150)

QUANTILES = (0.10, 0.30, 0.50)
ESTIMATORS = ("snipw", "ipw")
FOLDS = 5
#: Our learners that nested selection chooses from, its inner folds and its method name.
SELECTABLE = ("ours-joint", "ours-t", "ours-s", "ours-x", "ours-dr")
INNER_FOLDS = 3
SELECTED = "ours-selected"
DEFAULT_LEARNER = "ours-joint"
BASELINES = ("t-learner", "s-learner", "causalml-X")
STARBUCKS_CUSTOMERS = 41_650
STARBUCKS_ORDER_VALUE = 10.0
STARBUCKS_SEND_COST = 0.15


def out_of_fold_uplift(ds: UpliftDataset, method: str, folds: int) -> tuple[np.ndarray, float]:
    """Cross-fitted uplift per row (each row predicted by the model not trained on it)."""
    strata = ds.treatment.astype(int) * 2 + ds.y.astype(int)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    uplift = np.full(len(ds.y), np.nan)
    fit_total = 0.0
    for train, test in splitter.split(np.zeros(len(strata)), strata):
        pred, fit_s, _ = fit_predict(method, ds, train, test, ds.menu, synthetic=False)
        uplift[test] = pred
        fit_total += fit_s
    assert np.isfinite(uplift).all()
    return uplift, fit_total


def _subset(ds: UpliftDataset, rows: np.ndarray) -> UpliftDataset:
    return replace(
        ds, X=ds.X.iloc[rows].reset_index(drop=True), treatment=ds.treatment[rows], y=ds.y[rows]
    )


def _criterion(ds: UpliftDataset, uplift: np.ndarray) -> float:
    """What selection maximises: Starbucks' break-even NIR, else the mean top-q value (snipw)."""
    starbucks = ds.name.startswith("starbucks")
    if starbucks:
        plans = {"break-even": _break_even(uplift)}
    else:
        plans = {f"top{round(100 * q)}": top_share(uplift, q) for q in QUANTILES}
    estimates = value_plans(
        ds,
        plans,
        send_cost=STARBUCKS_SEND_COST if starbucks else 0.0,
        order_value=STARBUCKS_ORDER_VALUE if starbucks else 1.0,
    )
    metric = "incremental_profit" if starbucks else "incremental_conversions"
    return float(np.mean([_pick(estimates, p, "snipw", metric)["estimate"] for p in plans]))


def selected_uplift(ds: UpliftDataset, folds: int) -> tuple[np.ndarray, float, list[str]]:
    """Out-of-fold uplift of the learner chosen inside each training fold (nested selection).

    In each outer training fold, every candidate of :data:`SELECTABLE` is cross-fitted on
    :data:`INNER_FOLDS` inner folds and its out-of-fold uplift valued by :func:`_criterion`
    (the policy value of the dataset's own decision); the best one is refitted on the whole
    training fold and predicts the held-out fold. The held-out fold never takes part in the
    choice, so the value is the selection procedure's, not the luckiest learner's.
    """
    strata = ds.treatment.astype(int) * 2 + ds.y.astype(int)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    uplift = np.full(len(ds.y), np.nan)
    picks, fit_total = [], 0.0
    for train, test in splitter.split(np.zeros(len(strata)), strata):
        inner = _subset(ds, train)
        scores = {m: _criterion(inner, out_of_fold_uplift(inner, m, INNER_FOLDS)[0])
                  for m in SELECTABLE}  # fmt: skip
        best = max(SELECTABLE, key=lambda m: scores[m])
        pred, fit_s, _ = fit_predict(best, ds, train, test, ds.menu, synthetic=False)
        uplift[test] = pred
        picks.append(best)
        fit_total += fit_s
    return uplift, fit_total, picks


def contract_log(ds: UpliftDataset, order_value: float) -> pd.DataFrame:
    """The dataset as a randomized campaign log in the contract's form."""
    return pd.DataFrame({
        "user_id": np.arange(1, len(ds.y) + 1, dtype=np.int64),
        "assignment": "randomized",
        "denomination": np.where(ds.treatment == 1, ds.arm, NO_COUPON),
        "converted": ds.y.astype(np.int8),
        "redeemed": np.zeros(len(ds.y), dtype=np.int8),
        "order_value": np.full(len(ds.y), order_value),
        "discount": 0.0,
    })  # fmt: skip


def _break_even(uplift: np.ndarray) -> np.ndarray:
    """Starbucks' rule: promote (arm 0) when uplift x order value > send cost, else none (1)."""
    return np.where(uplift * STARBUCKS_ORDER_VALUE > STARBUCKS_SEND_COST, 0, 1).astype(np.int16)


def top_share(uplift: np.ndarray, q: float) -> np.ndarray:
    """Actions treating the top ``q`` share by uplift (arm 0), the rest none (arm 1)."""
    n = uplift.size
    chosen = np.argsort(-uplift, kind="stable")[: int(round(q * n))]
    act = np.ones(n, dtype=np.int16)
    act[chosen] = 0
    return act


def value_plans(
    ds: UpliftDataset,
    plans: dict[str, np.ndarray],
    *,
    send_cost: float,
    order_value: float,
    customers: int | None = None,
) -> pd.DataFrame:
    """Offline estimates (``policy_values``) of the plans on the dataset's rows."""
    menu = Menu.model_validate(
        {"denomination": [{"name": ds.arm, "kind": "message", "send_cost": send_cost}]}
    )
    share = float(ds.treatment.mean())
    rows = logged_rows(
        contract_log(ds, order_value),
        menu,
        sms_cost=0.0,
        order_value=order_value,
        propensity={ds.arm: share, NO_COUPON: 1.0 - share},
    )
    values = policy_values(
        rows,
        plans,
        margin_rate=1.0,
        estimators=ESTIMATORS,
        bootstrap=0,
        customers=None if customers is None else dict.fromkeys(plans, customers),
    )
    return values.estimates


def _pick(estimates: pd.DataFrame, plan: str, estimator: str, metric: str) -> pd.Series:
    hit = estimates[
        (estimates["plan"] == plan)
        & (estimates["estimator"] == estimator)
        & (estimates["metric"] == metric)
    ]
    return hit.iloc[0]


def run_dataset(ds: UpliftDataset, outcome: str, methods: list[str], folds: int) -> list[dict]:
    """Policy values of every learner's top-q% plans (and Starbucks' break-even plan)."""
    starbucks = ds.name.startswith("starbucks")
    send_cost = STARBUCKS_SEND_COST if starbucks else 0.0
    order_value = STARBUCKS_ORDER_VALUE if starbucks else 1.0
    customers = STARBUCKS_CUSTOMERS if starbucks else None
    records: list[dict] = []

    def add(learner: str, plan: str, q: str, estimates: pd.DataFrame, extra: dict) -> None:
        for estimator in ESTIMATORS:
            conv = _pick(estimates, plan, estimator, "incremental_conversions")
            record = {
                "dataset": ds.name,
                "outcome": outcome,
                "learner": learner,
                "q": q,
                "estimator": estimator,
                "value": float(conv["estimate"]),
                "low": float(conv["low"]),
                "high": float(conv["high"]),
                **extra,
            }
            if starbucks:
                nir = _pick(estimates, plan, estimator, "incremental_profit")
                record |= {
                    "nir_per_customer": float(nir["estimate"]),
                    "nir_total": float(nir["total"]),
                    "nir_total_low": float(nir["total_low"]),
                    "nir_total_high": float(nir["total_high"]),
                }
            records.append(record)

    everyone = {"all": np.zeros(len(ds.y), dtype=np.int16)}
    add("(treat all)", "all", "100%", value_plans(ds, everyone, send_cost=send_cost,
        order_value=order_value, customers=customers), {"share_treated": 1.0})  # fmt: skip
    for method in methods:
        start = time.perf_counter()
        picks: list[str] = []
        if method == SELECTED:
            uplift, fit_s, picks = selected_uplift(ds, folds)
        else:
            uplift, fit_s = out_of_fold_uplift(ds, method, folds)
        plans = {f"top{round(100 * q)}": top_share(uplift, q) for q in QUANTILES}
        if starbucks:
            plans["break-even"] = _break_even(uplift)
        estimates = value_plans(
            ds, plans, send_cost=send_cost, order_value=order_value, customers=customers
        )
        seconds = time.perf_counter() - start
        for plan, act in plans.items():
            q = f"{plan[3:]}%" if plan.startswith("top") else plan
            extra = {"share_treated": float((act == 0).mean()), "fit_s": fit_s, "seconds": seconds}
            if picks:
                extra["picks"] = picks
            add(method, plan, q, estimates, extra)
        console.print(f"  {ds.name} {method:11s} cross-fitted in {seconds:5.1f} s")
    return records


def verdicts(frame: pd.DataFrame) -> list[dict]:
    """Per dataset and plan: do the default learner and nested selection match the best baseline?

    Hillstrom: incremental conversions of each top-q plan; Starbucks: the break-even plan's NIR
    (snipw).
    """
    out = []
    rows = frame[frame["estimator"] == "snipw"].copy()
    starbucks = rows["dataset"].str.startswith("starbucks")
    rows = rows[~starbucks | (rows["q"] == "break-even")]
    rows["score"] = np.where(starbucks[rows.index], rows.get("nir_total"), rows["value"])
    for (dataset, q), group in rows.groupby(["dataset", "q"], sort=False):
        base = group[group["learner"].isin(BASELINES)]
        if base.empty:
            continue
        best = base.loc[base["score"].idxmax()]
        for learner in (DEFAULT_LEARNER, SELECTED):
            ours = group[group["learner"] == learner]
            if ours.empty:
                continue
            out.append({
                "dataset": dataset, "q": q, "learner": learner,
                "value": float(ours["score"].iloc[0]), "best_baseline": str(best["learner"]),
                "best_baseline_value": float(best["score"]),
                "at_least_best": bool(ours["score"].iloc[0] >= best["score"]),
            })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", help="only these learners")
    parser.add_argument(
        "--datasets", nargs="+", choices=["hillstrom", "starbucks"], default=None,
        help="only these datasets",
    )  # fmt: skip
    parser.add_argument("--folds", type=int, default=FOLDS, help="cross-fitting folds")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "policy_value_real.json"
    )
    args = parser.parse_args()
    methods = [DEFAULT_LEARNER, SELECTED, "ours", *BOOSTED_METHODS, "t-learner", "s-learner"]
    if HAVE_CAUSALML:
        methods.append("causalml-X")
    else:
        console.print("causalml is not installed: its X-learner is skipped")
    if args.methods:
        methods = [m for m in methods if m in args.methods]
    wanted = set(args.datasets or ["hillstrom", "starbucks"])
    datasets: list[tuple[UpliftDataset, str]] = []
    if "hillstrom" in wanted:
        for outcome in ("conversion", "visit"):
            for arm in ("mens", "womens"):
                datasets.append((load_hillstrom(arm, outcome), outcome))
    if "starbucks" in wanted:
        datasets.append((load_starbucks(), "purchase"))

    started = time.perf_counter()
    records: list[dict] = []
    for ds, outcome in datasets:
        console.print(f"[bold]{ds.name}[/] ({len(ds.y):,} rows, {ds.treatment.mean():.1%} treated)")
        records += run_dataset(ds, outcome, methods, args.folds)
    runtime = time.perf_counter() - started
    frame = pd.DataFrame(records)

    table = Table(
        title=f"Policy value on real randomized data, {args.folds}-fold cross-fitting (snipw; "
        "ipw in brackets)",
        title_justify="left",
    )
    for col in ("dataset", "outcome", "learner", "q", "treated", "value [95% low, high]", "ipw"):
        table.add_column(
            col, justify="left" if col in ("dataset", "outcome", "learner") else "right"
        )
    snipw = frame[frame["estimator"] == "snipw"].reset_index(drop=True)
    ipw = frame[frame["estimator"] == "ipw"].reset_index(drop=True)
    # The best learner of a row group: by incremental conversions, by NIR for break-even.
    score = snipw["nir_total"] if "nir_total" in snipw else snipw["value"]
    snipw["score"] = np.where(snipw["q"] == "break-even", score, snipw["value"])
    snipw.loc[snipw["learner"] == "(treat all)", "score"] = np.nan
    for _, group in snipw.groupby(["dataset", "q"], sort=False):
        best = group["score"].max()
        for i, r in group.iterrows():
            w = ipw.loc[i]
            if r["q"] == "break-even":
                value = (
                    f"NIR {r['nir_total']:,.0f} [{r['nir_total_low']:,.0f}, "
                    f"{r['nir_total_high']:,.0f}]"
                )
                other = f"({w['nir_total']:,.0f})"
            else:
                value = f"{r['value']:+.5f} [{r['low']:+.5f}, {r['high']:+.5f}]"
                other = f"({w['value']:+.5f})"
            table.add_row(
                r["dataset"],
                r["outcome"],
                r["learner"] + (" (default)" if r["learner"] == DEFAULT_LEARNER else ""),
                r["q"],
                f"{r['share_treated']:.1%}",
                value,
                other,
                style="bold green"
                if r["value"] == best and r["learner"] != "(treat all)"
                else None,
            )
    table.caption = (
        "value: incremental conversions (visits, purchases) per customer of the arm's and the "
        "control's rows, offline (policy_values, influence 95% interval). break-even: Starbucks "
        f"'promote when uplift x {STARBUCKS_ORDER_VALUE:g} > {STARBUCKS_SEND_COST}', NIR = "
        f"{STARBUCKS_ORDER_VALUE:g} x incremental purchases - {STARBUCKS_SEND_COST} x promotions "
        f"scaled to {STARBUCKS_CUSTOMERS:,} customers. Bold: best learner of the row group."
    )
    table.caption_justify = "left"
    console.print(table)
    verdict = verdicts(frame)
    for v in verdict:
        mark = "yes" if v["at_least_best"] else "NO"
        console.print(
            f"{v['dataset']:28s} {v['q']:>10s} {v['learner']:13s} {v['value']:+.5g} vs best "
            f"baseline {v['best_baseline']} {v['best_baseline_value']:+.5g} -> {mark}"
        )
    picks = frame[frame["learner"] == SELECTED].groupby("dataset")["picks"].first()
    for dataset, chosen in picks.items():
        console.print(f"{dataset:28s} nested selection picked: {', '.join(chosen)}")
    console.print(f"runtime {runtime:.0f} s")
    payload = {
        "benchmark": "policy_value_real",
        "python": platform.python_version(),
        "folds": args.folds,
        "causalml": HAVE_CAUSALML,
        "default_learner": DEFAULT_LEARNER,
        "selection": {"candidates": list(SELECTABLE), "inner_folds": INNER_FOLDS},
        "estimators": list(ESTIMATORS),
        "starbucks": {
            "customers": STARBUCKS_CUSTOMERS,
            "order_value": STARBUCKS_ORDER_VALUE,
            "send_cost": STARBUCKS_SEND_COST,
        },
        "runtime_s": runtime,
        "verdicts": verdict,
        "results": records,
    }
    write_json(args.json, payload)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
