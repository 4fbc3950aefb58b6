"""Offline evaluation speed and memory: ten plans valued on a 1M-row randomized log.

A seeded randomized campaign log in the contract's form (``user_id``, ``assignment``,
``denomination``, ``converted``, ``redeemed``, ``order_value``, ``discount``) on the default
four-coupon menu plus no coupon, each arm drawn with probability 1/5; ten numeric customer
features (correlated through four latent traits, some skewed); conversion from a logistic model
of the features and the arm (coupon effects that grow with one trait); order values from the
customer's basket, nudged up to a coupon's threshold, and the face value paid on redemption.
About 20% of the rows belong to customers logged in two campaigns, so the customer clusters of
the intervals and the bootstrap are exercised. Ten plans give each customer one arm by rules on
their features (everyone one coupon, nobody, by basket, by score, by recency, by tenure, at
random, by the true effect).

Each step runs in a fresh process; the log is built there before the step, the memory freed
meanwhile is handed back to the system (``malloc_trim``) and the kernel's peak-RSS mark is reset
to the current RSS just before it, so the step's peak beyond its inputs is its own:

1. ``logged_rows`` (the log's arrays from the contract frame);
2. ``cross_fit_outcomes``, boosting and linear (3 folds);
3. ``policy_values`` of the ten plans: ipw, snipw and dr (boosting outcomes), 200 bootstrap
   replicates, nine paired differences (plan 0 against each other);
4. the same without the bootstrap (influence-function intervals only).

The reference, in the same run and its own process: a naive pandas evaluation of the ten plans'
IPW point estimates (per plan, the matched rows' weighted outcomes summed by arm with a
groupby); times are reported as ratios to it, and its estimates must agree with
``policy_values``' ipw ones. Peak memory beyond the inputs is also given as a multiple of the
log's arrays (``LoggedRows``). Prints a table and writes ``benchmarks/results/offline_value.json``.

    .venv/bin/python benchmarks/offline_value.py              # 1M rows
    .venv/bin/python benchmarks/offline_value.py --quick      # 50k rows
    .venv/bin/python benchmarks/offline_value.py --rows 200000 --json /tmp/offline_value.json
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, rss_mb, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.io.menu import DEFAULT_MENU, NO_COUPON  # noqa: E402

MENU = DEFAULT_MENU
ARMS = (*MENU.names, NO_COUPON)
PROPENSITY = {arm: 1.0 / len(ARMS) for arm in ARMS}  # uniform randomization
SMS_COST = 0.05
MARGIN_RATE = 0.3
REPEAT_SHARE = 0.2  # share of the rows whose customer is logged in two campaigns
BOOTSTRAP = 200
FOLDS = 3
ESTIMATORS = ("ipw", "snipw", "dr")
IPW_FIGURES = ("incremental_conversions", "incremental_gmv", "campaign_cost")  # the reference's
FEATURES = (
    "recency_days",
    "orders_12m",
    "basket",
    "tenure_days",
    "age",
    "app_sessions",
    "email_opens",
    "discount_share",
    "returns_12m",
    "engagement",
)
# Coupon effects on the logit: a base per arm plus a slope on the third latent trait.
EFFECT = np.array([0.10, 0.20, 0.25, 0.30, 0.0])
SLOPE = np.array([0.00, 0.10, 0.20, 0.35, 0.0])

# One step in a fresh interpreter: inputs built first, the peak-RSS mark reset, then the step.
CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from offline_value import run_step
print(json.dumps(run_step({step!r}, {rows}, {seed}, {folder!r})))
"""


# ---------------------------------------------------------------------------------- the data


def make_log(n_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """A randomized log of ``n_rows`` rows, its customers' features and latent traits.

    Returns the log (contract form), the features (one row per log row) and the traits
    (shape (n_rows, 4)), all aligned.
    """
    rng = np.random.default_rng(seed)
    twice = int(round(n_rows * REPEAT_SHARE / 2))  # customers with two rows
    n_users = n_rows - twice
    ids = 1_000_000 + 7 * rng.permutation(n_users).astype(np.int64)  # unique, unordered
    z = rng.normal(size=(n_users, 4))
    loadings = rng.normal(0, 0.6, (4, len(FEATURES)))
    x = z @ loadings + rng.normal(size=(n_users, len(FEATURES)))
    features = {
        "recency_days": np.round(np.exp(3.0 + 0.7 * x[:, 0])),
        "orders_12m": rng.poisson(np.exp(0.8 + 0.5 * np.clip(x[:, 1], -4, 4))).astype(np.float64),
        "basket": np.round(np.exp(4.6 + 0.5 * x[:, 2] / 1.5), 2),
        "tenure_days": np.round(400 + 250 * x[:, 3]).clip(1, None),
        "age": np.round(40 + 9 * x[:, 4]).clip(18, 90),
        "app_sessions": rng.poisson(np.exp(1.0 + 0.6 * np.clip(x[:, 5], -4, 4))).astype(np.float64),
        "email_opens": rng.poisson(np.exp(0.5 + 0.4 * np.clip(x[:, 6], -4, 4))).astype(np.float64),
        "discount_share": 1 / (1 + np.exp(-x[:, 7])),
        "returns_12m": rng.poisson(np.exp(-1.0 + 0.3 * np.clip(x[:, 8], -4, 4))).astype(np.float64),
        "engagement": x[:, 9],
    }
    # Rows: every customer once, the first `twice` customers again (campaign 2), shuffled.
    user = np.concatenate([np.arange(n_users), np.arange(twice)])
    campaign = np.concatenate([np.ones(n_users, np.int32), np.full(twice, 2, np.int32)])
    shuffle = rng.permutation(n_rows)
    user, campaign = user[shuffle], campaign[shuffle]
    zr = z[user]
    basket = features["basket"][user]
    arm = rng.integers(0, len(ARMS), n_rows)
    logit = -2.4 + 0.5 * zr[:, 0] + 0.3 * zr[:, 1] - 0.2 * (campaign == 2)
    logit += EFFECT[arm] + SLOPE[arm] * zr[:, 2]
    converted = rng.random(n_rows) < 1 / (1 + np.exp(-logit))
    order = np.round(basket * rng.lognormal(0.0, 0.3, n_rows), 2)
    coupon = arm < len(MENU)
    threshold = np.append(MENU.thresholds, np.inf)[arm]
    face = np.append(MENU.face_values, 0.0)[arm]
    near = coupon & (order < threshold) & (order >= 0.8 * threshold)
    order = np.where(near & (rng.random(n_rows) < 0.5), threshold, order)  # topped up
    redeemed = converted & coupon & (order >= threshold) & (rng.random(n_rows) < 0.9)
    log = pd.DataFrame(
        {
            "campaign_id": campaign,
            "user_id": ids[user],
            "assignment": pd.Categorical(np.full(n_rows, "randomized"), ["randomized", "manual"]),
            "denomination": pd.Categorical.from_codes(arm, ARMS),
            "converted": converted.astype(np.int8),
            "redeemed": redeemed.astype(np.int8),
            "order_value": np.where(converted, order, 0.0),
            "discount": np.where(redeemed, face, 0.0),
        }
    )
    frame = pd.DataFrame({name: values[user] for name, values in features.items()})
    return log, frame, zr


def make_plans(features: pd.DataFrame, traits: np.ndarray, user_id: np.ndarray) -> dict:
    """Ten plans: per plan the arm index (into ``ARMS``) of each row's customer, int16 (m,).

    Every rule reads the customer's features (or id), so a customer's rows get the same arm.
    """
    m = len(features)
    none = len(ARMS) - 1
    basket = features["basket"].to_numpy()
    recency = features["recency_days"].to_numpy()
    tenure = features["tenure_days"].to_numpy()
    score = (
        features["orders_12m"].to_numpy()
        + 0.2 * features["app_sessions"].to_numpy()
        + features["engagement"].to_numpy()
    )
    by_basket = np.searchsorted(MENU.thresholds, 1.1 * basket, side="right") - 1
    by_basket = np.where(by_basket < 0, none, by_basket)
    salt = (user_id * 2654435761) % 1_000_003  # a stable pseudo-random draw per customer
    effect = EFFECT[None, :] + SLOPE[None, :] * traits[:, 2:3]  # the true logit effect per arm
    best = effect[:, : len(MENU)].argmax(axis=1)
    plans = {
        "all_10off99": np.full(m, 1),
        "nobody": np.full(m, none),
        "all_5off49": np.full(m, 0),
        "all_50off399": np.full(m, 3),
        "by_basket": by_basket,
        "top30_score_10off99": np.where(score >= np.quantile(score, 0.7), 1, none),
        "lapsed_20off199": np.where(recency > np.quantile(recency, 0.6), 2, none),
        "random_arm": salt % len(ARMS),
        "true_effect_top50": np.where(traits[:, 2] > 0, best, none),
        "tenure_quartile": np.digitize(tenure, np.quantile(tenure, [0.25, 0.5, 0.75])),
    }
    return {name: np.asarray(a, dtype=np.int16) for name, a in plans.items()}


def array_mb(rows) -> float:  # noqa: ANN001 - LoggedRows
    """Memory of a ``LoggedRows``' arrays (MB; a broadcast view counts as materialised)."""
    total = 0
    for value in vars(rows).values():
        if isinstance(value, np.ndarray):
            total += value.size * value.itemsize
    return total / 2**20


# ---------------------------------------------------------------------------- the reference


def naive_ipw(rows, plans: dict) -> dict:  # noqa: ANN001 - LoggedRows
    """Reference: IPW point estimates of the plans with plain pandas.

    Per plan, the rows whose arm is the plan's, weighted by 1/propensity, summed by arm with a
    groupby; the no-coupon rows likewise for the baseline. Per row: incremental conversions,
    incremental GMV, campaign cost (the figures of ``policy_values``' ipw estimator).
    """
    frame = pd.DataFrame(
        {
            "arm": rows.arm,
            "propensity": rows.propensity,
            "converted": rows.converted,
            "gmv": rows.gmv,
            "cost": rows.cost,
        }
    )
    m = len(frame)
    outcomes = ["converted", "gmv", "cost"]
    none_rows = frame[frame["arm"] == rows.none]
    baseline = none_rows[outcomes].div(none_rows["propensity"], axis=0).sum() / m
    out = {}
    for name, act in plans.items():
        frame["plan_arm"] = act
        hit = frame[frame["arm"] == frame["plan_arm"]]
        weighted = hit[outcomes].div(hit["propensity"], axis=0)
        by_arm = weighted.groupby(hit["plan_arm"]).sum()
        value = by_arm.sum() / m
        out[name] = [
            float(value["converted"] - baseline["converted"]),
            float(value["gmv"] - baseline["gmv"]),
            float(value["cost"]),
        ]
    return out


# ------------------------------------------------------------------------------ one step


def _measure(fn):  # noqa: ANN001, ANN202
    """Run ``fn()``: its result, wall seconds, RSS before (MB) and the peak during it (MB).

    Memory freed while the inputs were built is handed back to the system first (glibc keeps it
    otherwise, and the step would reuse it unseen), so the RSS before is the inputs' own.
    """
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark to the current RSS
        f.write("5")
    inputs = rss_mb("VmRSS")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, inputs, rss_mb("VmHWM")


def run_step(step: str, n_rows: int, seed: int, folder: str) -> dict:
    """Build the inputs of ``step``, measure it (fresh process) and return its figures."""
    # Imported before the measurement: the library's lazy modules and scikit-learn's models.
    from sklearn.compose import ColumnTransformer  # noqa: F401
    from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: F401
    from sklearn.linear_model import Ridge  # noqa: F401
    from sklearn.pipeline import make_pipeline  # noqa: F401

    from optimizer.evaluation import (
        OutcomePredictions,
        cross_fit_outcomes,
        logged_rows,
        policy_values,
    )

    log, features, traits = make_log(n_rows, seed)

    def build():  # noqa: ANN202
        return logged_rows(log, MENU, sms_cost=SMS_COST, propensity=PROPENSITY)

    record: dict = {"step": step, "rows": n_rows}
    if step == "logged_rows":
        rows, seconds, inputs, peak = _measure(build)
        record["customers"] = int(np.unique(rows.user_id).size)
        record["log_arrays_mb"] = array_mb(rows)
        record["log_frame_mb"] = log.memory_usage(deep=True).sum() / 2**20
        record["features_mb"] = features.memory_usage(deep=True).sum() / 2**20
    else:
        rows = build()
        plans = make_plans(features, traits, rows.user_id)
        saved = Path(folder) / "outcomes.npz"
        if step == "reference":
            result, seconds, inputs, peak = _measure(lambda: naive_ipw(rows, plans))
            record["ipw"] = result
        elif step.startswith("cross_fit_"):
            model = step.removeprefix("cross_fit_")
            del log
            outcomes, seconds, inputs, peak = _measure(
                lambda: cross_fit_outcomes(features, rows, model=model, folds=FOLDS, seed=seed)
            )
            if model == "boosting":  # the dr estimator's models for the policy_values steps
                np.savez(saved, **{k: outcomes.of(k) for k in ("converted", "gmv", "cost")})
            record["mean_converted_pred"] = float(outcomes.converted.mean())
        else:
            boot = BOOTSTRAP if step == "policy_values_boot" else 0
            data = np.load(saved)
            outcomes = OutcomePredictions(
                data["converted"], data["gmv"], data["cost"], model="boosting", folds=FOLDS
            )
            del log, features
            first = next(iter(plans))
            values, seconds, inputs, peak = _measure(
                lambda: policy_values(
                    rows,
                    plans,
                    margin_rate=MARGIN_RATE,
                    estimators=ESTIMATORS,
                    outcomes=outcomes,
                    differences=[(first, other) for other in plans if other != first],
                    bootstrap=boot,
                    seed=seed,
                )
            )
            ipw = values.estimates[values.estimates["estimator"] == "ipw"]
            ipw = ipw.pivot(index="plan", columns="metric", values="estimate")
            record["ipw"] = {name: ipw.loc[name, list(IPW_FIGURES)].tolist() for name in plans}
            record["bootstrap"] = boot
            record["estimate_rows"] = len(values.estimates)
            record["difference_rows"] = len(values.differences)
    record.update(seconds=seconds, inputs_rss_mb=inputs, peak_rss_mb=peak)
    record["step_extra_mb"] = peak - inputs
    return record


# -------------------------------------------------------------------------------------- main

STEPS = (
    ("reference", "pandas IPW (reference)"),
    ("logged_rows", "logged_rows"),
    ("cross_fit_boosting", "cross_fit boosting"),
    ("cross_fit_linear", "cross_fit linear"),
    ("policy_values_boot", f"policy_values boot {BOOTSTRAP}"),
    ("policy_values", "policy_values boot 0"),
)


def check_ipw(reference: dict, library: dict, rtol: float = 1e-9) -> float:
    """Largest gap between the reference's and the library's IPW estimates.

    Relative to each figure's scale (its largest absolute value over the plans), so that a
    figure near zero (the "nobody" plan's increments) does not blow the ratio up.
    """
    want = np.array([reference[name] for name in reference])
    got = np.array([library[name] for name in reference])
    scale = np.maximum(np.abs(want).max(axis=0), 1e-12)
    worst = float((np.abs(got - want) / scale).max())
    if worst > rtol:
        raise SystemExit(f"policy_values' ipw estimates differ from the reference by {worst:.2e}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="log rows (default 1M)")
    parser.add_argument("--quick", action="store_true", help="50k rows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--json",
        "--out",
        dest="json",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "offline_value.json",
    )
    args = parser.parse_args()
    n = 50_000 if args.quick else args.rows
    console = Console(width=120)
    results = []
    load_before = os.getloadavg()[0]
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="couponopt-offline-") as tmp:
        for step, label in STEPS:
            console.print(f"{label}, {n:,} rows, in a fresh process ...")
            code = CHILD.format(
                root=str(ROOT), bench=str(ROOT / "benchmarks"), step=step, rows=n,
                seed=args.seed, folder=tmp,
            )  # fmt: skip
            record = run_child(code)
            record["label"] = label
            results.append(record)
    total = time.perf_counter() - total
    load_after = os.getloadavg()[0]
    by_step = {r["step"]: r for r in results}
    ref = by_step["reference"]
    built = by_step["logged_rows"]
    log_mb = built["log_arrays_mb"]
    worst = max(
        check_ipw(ref["ipw"], by_step[s]["ipw"]) for s in ("policy_values_boot", "policy_values")
    )
    for r in results:
        r["time_ratio"] = r["seconds"] / ref["seconds"]
        r["extra_vs_log_arrays"] = r["step_extra_mb"] / log_mb
        r["peak_vs_log_arrays"] = r["peak_rss_mb"] / log_mb
        r.pop("ipw", None)

    table = Table(
        title=f"Offline evaluation: ten plans on a {n:,}-row randomized log",
        title_justify="left",
    )
    for col in (
        "step",
        "seconds",
        "vs ref",
        "peak RSS MB",
        "inputs MB",
        "beyond inputs MB",
        "vs log arrays",
    ):
        table.add_column(col, justify="left" if col == "step" else "right")
    for r in results:
        table.add_row(
            r["label"],
            f"{r['seconds']:.2f}",
            f"x{r['time_ratio']:.1f}",
            f"{r['peak_rss_mb']:,.0f}",
            f"{r['inputs_rss_mb']:,.0f}",
            f"{r['step_extra_mb']:,.0f}",
            f"x{r['extra_vs_log_arrays']:.1f}",
        )
    table.caption = (
        f"{n:,} rows, {built['customers']:,} customers ({REPEAT_SHARE:.0%} of rows from "
        f"customers logged twice); {len(ARMS)} arms at 1/{len(ARMS)} each; log arrays "
        f"(LoggedRows) {log_mb:,.1f} MB, log frame {built['log_frame_mb']:,.1f} MB, features "
        f"{built['features_mb']:,.1f} MB. policy_values: 10 plans x {', '.join(ESTIMATORS)} "
        f"(dr on the boosting outcomes), 9 paired differences; cross_fit: {FOLDS} folds. "
        "Reference: pandas IPW point estimates of the 10 plans (policy_values' ipw agrees to "
        f"{worst:.0e}). One process per step; peak = the kernel's high-water mark, reset "
        "before the step; vs log arrays = beyond inputs / log arrays. "
        f"Total {total:.0f} s; "
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} "
        "CPUs)."
    )
    table.caption_justify = "left"
    console.print(table)
    payload = {
        "benchmark": "offline_value",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "rows": n,
        "customers": built["customers"],
        "repeat_share": REPEAT_SHARE,
        "arms": list(ARMS),
        "seed": args.seed,
        "plans": 10,
        "estimators": list(ESTIMATORS),
        "bootstrap": BOOTSTRAP,
        "folds": FOLDS,
        "log_arrays_mb": log_mb,
        "log_frame_mb": built["log_frame_mb"],
        "features_mb": built["features_mb"],
        "ipw_max_relative_gap": worst,
        "total_s": total,
        "load_average_1min": {"before": load_before, "after": load_after},
        "results": results,
    }
    write_json(args.json, payload)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
