"""Uplift-model quality and speed: our two models vs gradient-boosting meta-learners.

Datasets (randomized): Hillstrom (visit and conversion, each e-mail arm vs no e-mail), the
Starbucks promotion training split, the Criteo 10k sample (visit), and the synthetic world
(10-off-99 arm vs no coupon, also scored against the world's truth). Every dataset is split by
5-fold stratified cross-validation (fold = seed); every method is fitted on the same training
folds and scored on the same test fold.

Methods: ours (NaturalConversionModel on control rows, CouponConversionModel on treated rows,
uplift = p1 - p0); a T-learner and an S-learner built from scikit-learn's
HistGradientBoostingClassifier; causalml's BaseTClassifier and BaseXClassifier with the same
learners when causalml is installed (``pip install causalml``). Also times training our models
on a 1M-row randomized log.

    .venv/bin/python benchmarks/uplift.py                 # everything (about 15 minutes)
    .venv/bin/python benchmarks/uplift.py --quick         # 2 folds, fewer datasets
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, write_json
from rich.console import Console
from rich.table import Table
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold

from optimizer.evaluation.metrics import auuc, qini_coefficient, uplift_at_k  # noqa: E402
from optimizer.io.campaign_log import training_rows  # noqa: E402
from optimizer.io.contract import coupon_column  # noqa: E402
from optimizer.io.datasets import (  # noqa: E402
    UpliftDataset,
    data_dir,
    load_criteo,
    load_hillstrom,
    load_starbucks,
)
from optimizer.io.menu import Menu  # noqa: E402
from optimizer.models.boosted import LEARNERS
from optimizer.models.conversion import FEATURES, ConversionModels  # noqa: E402
from optimizer.models.coupon import CouponConversionModel  # noqa: E402
from optimizer.models.natural import NaturalConversionModel  # noqa: E402
from simulator.scenario import Scenario  # noqa: E402
from simulator.world.generation import build_world  # noqa: E402

try:  # optional baseline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from causalml.inference.meta import BaseTClassifier, BaseXClassifier
    HAVE_CAUSALML = True
except Exception:  # noqa: BLE001 - any import failure means "not available"
    HAVE_CAUSALML = False

console = Console(width=150)


def _gbm() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.05,
        early_stopping=True,
        categorical_features="from_dtype",
        random_state=0,
    )


def _sk_frame(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype(str).astype("category")
    return X


def _numeric_matrix(X: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    return pd.get_dummies(X, columns=categorical, dtype=float).to_numpy(dtype=np.float64)


def synthetic_dataset(users: int = 200_000) -> tuple[UpliftDataset, np.ndarray, Menu]:
    world = build_world(Scenario().with_overrides(users=users))
    rows = training_rows(world.history, world.users)
    rows = rows[rows["denomination"].isin(["10off99", "none"])].reset_index(drop=True)
    truth = world.truth.set_index("user_id").loc[rows["user_id"]]
    true_lift = (truth[coupon_column("10off99")] - truth["p_natural"]).to_numpy()
    menu = Menu(denomination=(world.scenario.menu.denomination[1],))
    categorical = ["gender", "region", "lifecycle_stage"]
    ds = UpliftDataset(
        name="synthetic-10off99",
        X=rows[list(FEATURES)],
        treatment=(rows["denomination"] == "10off99").to_numpy().astype(np.int8),
        y=rows["converted"].to_numpy().astype(np.int8),
        arm="10off99",
        numeric=[c for c in FEATURES if c not in categorical],
        categorical=categorical,
    )
    return ds, true_lift, menu


#: Our gradient-boosted meta-learners (optimizer.models.boosted), by method name.
BOOSTED_METHODS = {f"ours-{learner}": learner for learner in LEARNERS}


def fit_predict(
    method: str, ds: UpliftDataset, train: np.ndarray, test: np.ndarray, menu: Menu, synthetic: bool
) -> tuple[np.ndarray, float, float]:
    """Fit ``method`` on ``train`` rows and return (uplift on test, fit s, predict s)."""
    X, t, y = ds.X, ds.treatment, ds.y
    start = time.perf_counter()
    if method == "ours-joint":
        from optimizer.models.shared_trunk import SharedTrunkModel

        basket = {} if synthetic else {"basket_column": None}
        joint = SharedTrunkModel(numeric=ds.numeric, categorical=ds.categorical, **basket)
        coupon = np.where(t[train] == 1, ds.arm, "none")
        joint.fit(X.iloc[train], coupon, y[train], menu=menu)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        uplift = joint.predict_proba(X.iloc[test], menu)[:, 0] - joint.predict_natural(X.iloc[test])
    elif method == "ours":
        cols = dict(numeric=ds.numeric, categorical=ds.categorical)
        c, tr = train[t[train] == 0], train[t[train] == 1]
        natural = NaturalConversionModel(**cols).fit(X.iloc[c], y[c])
        coupon_kw = (
            dict(head="shared") if synthetic else dict(head="per_denomination", basket_column=None)
        )
        coupon = CouponConversionModel(**cols, **coupon_kw).fit(
            X.iloc[tr], np.full(tr.size, ds.arm), y[tr], menu=menu
        )
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        uplift = coupon.predict_proba(X.iloc[test], menu)[:, 0] - natural.predict_proba(
            X.iloc[test]
        )
    elif method in BOOSTED_METHODS:
        from optimizer.models.boosted import BoostedConversionModel

        boosted = BoostedConversionModel(
            learner=BOOSTED_METHODS[method], numeric=ds.numeric, categorical=ds.categorical
        )
        boosted.fit(X.iloc[train], np.where(t[train] == 1, ds.arm, "none"), y[train], menu=menu)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        uplift = boosted.predict_proba(X.iloc[test], menu)[:, 0] - boosted.predict_natural(
            X.iloc[test]
        )
    elif method in ("t-learner", "s-learner"):
        Xs = _sk_frame(X, ds.categorical)
        if method == "t-learner":
            m1 = _gbm().fit(Xs.iloc[train[t[train] == 1]], y[train[t[train] == 1]])
            m0 = _gbm().fit(Xs.iloc[train[t[train] == 0]], y[train[t[train] == 0]])
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            uplift = m1.predict_proba(Xs.iloc[test])[:, 1] - m0.predict_proba(Xs.iloc[test])[:, 1]
        else:
            Xt = Xs.assign(_treatment=t)
            m = _gbm().fit(Xt.iloc[train], y[train])
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            uplift = (
                m.predict_proba(Xt.iloc[test].assign(_treatment=1))[:, 1]
                - m.predict_proba(Xt.iloc[test].assign(_treatment=0))[:, 1]
            )
    else:  # causalml
        Xn = _numeric_matrix(X, ds.categorical)
        learner = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
        if method == "causalml-T":
            model = BaseTClassifier(learner=learner, control_name=0)
        else:
            model = BaseXClassifier(
                outcome_learner=learner,
                effect_learner=HistGradientBoostingRegressor(
                    max_iter=200, learning_rate=0.05, random_state=0
                ),
                control_name=0,
            )
        propensity = np.full(train.size, t[train].mean())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "causalml-X":
                model.fit(Xn[train], t[train], y[train], p=propensity)
            else:
                model.fit(Xn[train], t[train], y[train])
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            if method == "causalml-X":
                uplift = model.predict(Xn[test], p=np.full(test.size, t[train].mean()))
            else:
                uplift = model.predict(Xn[test])
        uplift = np.asarray(uplift).reshape(test.size, -1)[:, 0]
    predict_s = time.perf_counter() - start
    return np.asarray(uplift, dtype=np.float64), fit_s, predict_s


def run_dataset(
    ds: UpliftDataset,
    methods: list[str],
    folds: int,
    menu: Menu,
    true_lift: np.ndarray | None = None,
) -> list[dict]:
    strata = ds.treatment.astype(int) * 2 + ds.y.astype(int)
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    records = []
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        if fold >= folds:
            break
        for method in methods:
            uplift, fit_s, predict_s = fit_predict(
                method, ds, train, test, menu, synthetic=true_lift is not None
            )
            y, t = ds.y[test], ds.treatment[test]
            record = {
                "dataset": ds.name,
                "method": method,
                "fold": fold,
                "qini": qini_coefficient(y, uplift, t),
                "auuc": auuc(y, uplift, t),
                "uplift_at_30": uplift_at_k(y, uplift, t, 0.3),
                "fit_s": fit_s,
                "predict_s_per_1m": predict_s / len(test) * 1e6,
            }
            if true_lift is not None:
                lift = true_lift[test]
                top = np.argsort(-uplift, kind="stable")[: int(0.3 * len(test))]
                best = np.sort(lift)[::-1][: len(top)].sum()
                record["true_uplift_at_30_vs_oracle"] = float(lift[top].sum() / best)
            records.append(record)
            console.print(
                f"  {ds.name} fold {fold} {method:11s} qini {record['qini']:+.4f} fit {fit_s:6.1f}s"
            )
    return records


def time_training_1m(users: int) -> dict:
    """Fit the default models on a randomized log of about 1M rows, and the reference.

    The default (CLI defaults: shared trunk, automatic batch size) and, in the same run, the
    reference: the same models with batches of 1,024 rows (the batch size before it grew with
    the log). Validation log-loss of each output for both.
    """
    world = build_world(Scenario().with_overrides(users=users))
    log = world.history[world.history["assignment"] == "randomized"]
    out: dict = {"log_rows": int(len(log))}
    for label, params in (("default", None), ("reference_batch_1024", {"batch_size": 1024})):
        start = time.perf_counter()
        models = ConversionModels(test_share=0.0, coupon_params=params).fit(
            log, world.users, world.scenario.menu
        )
        seconds = time.perf_counter() - start
        quality = models.validation_quality()
        out[label] = {
            "seconds": seconds,
            "architecture": models.architecture,
            "epochs": {q["model"]: q["epochs"] for q in quality},
            "log_loss": {q["model"]: q["after_calibration"]["log_loss"] for q in quality},
        }
    out["seconds"] = out["default"]["seconds"]
    out["ratio_to_reference"] = out["default"]["seconds"] / out["reference_batch_1024"]["seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 folds, Hillstrom visit only")
    parser.add_argument("--skip-1m", action="store_true", help="skip the 1M-row training time")
    parser.add_argument("--methods", nargs="+", help="only these methods")
    parser.add_argument(
        "--only-1m",
        action="store_true",
        help="only the 1M-row training time (replaces training_1m in the existing JSON)",
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "uplift.json"
    )
    args = parser.parse_args()
    if args.only_1m:
        training = time_training_1m(3_340_000)
        payload = json.loads(args.json.read_text()) if args.json.is_file() else {}
        write_json(args.json, payload | {"training_1m": training})
        console.print(json.dumps(training, indent=1))
        console.print(f"wrote {args.json}")
        return
    folds = 2 if args.quick else 5
    methods = ["ours", "ours-joint", "t-learner", "s-learner"]
    if HAVE_CAUSALML:
        methods += ["causalml-T", "causalml-X"]
    else:
        console.print("causalml is not installed: its baselines are skipped")
    if args.methods:
        methods = [m for m in methods if m in args.methods]

    datasets: list[tuple[UpliftDataset, np.ndarray | None, Menu | None]] = []
    if data_dir().is_dir():
        variants = (
            [("mens", "visit")]
            if args.quick
            else [
                ("mens", "visit"),
                ("womens", "visit"),
                ("mens", "conversion"),
                ("womens", "conversion"),
            ]
        )
        for arm, outcome in variants:
            datasets.append((load_hillstrom(arm, outcome), None, None))
        if not args.quick:
            datasets.append((load_starbucks(), None, None))
            datasets.append((load_criteo("visit"), None, None))
    else:
        console.print(f"{data_dir()} not found: real datasets skipped")
    syn, true_lift, syn_menu = synthetic_dataset(60_000 if args.quick else 200_000)
    datasets.append((syn, true_lift, syn_menu))

    records: list[dict] = []
    for ds, truth, menu in datasets:
        console.print(f"[bold]{ds.name}[/] ({len(ds.y):,} rows)")
        records += run_dataset(ds, methods, folds, menu or ds.menu, truth)
    frame = pd.DataFrame(records)
    summary = (
        frame.groupby(["dataset", "method"], sort=False)
        .agg(
            qini=("qini", "mean"),
            qini_sd=("qini", "std"),
            auuc=("auuc", "mean"),
            uplift_at_30=("uplift_at_30", "mean"),
            fit_s=("fit_s", "mean"),
            predict_s_per_1m=("predict_s_per_1m", "mean"),
            **(
                {"truth_at_30": ("true_uplift_at_30_vs_oracle", "mean")}
                if "true_uplift_at_30_vs_oracle" in frame
                else {}
            ),
        )
        .reset_index()
    )
    table = Table(
        title=f"Uplift models, {folds}-fold cross-validation (means)", title_justify="left"
    )
    for col in (
        "dataset",
        "method",
        "Qini",
        "+/- sd",
        "AUUC",
        "uplift@30%",
        "fit s",
        "predict s / 1M",
        "truth@30%",
    ):
        table.add_column(col, justify="left" if col in ("dataset", "method") else "right")
    for dataset, group in summary.groupby("dataset", sort=False):
        best = group["qini"].max()
        for _, r in group.iterrows():
            style = "bold green" if r["qini"] == best else None
            truth = r.get("truth_at_30", float("nan"))
            table.add_row(
                dataset,
                r["method"],
                f"{r['qini']:.4f}",
                f"{r['qini_sd']:.4f}",
                f"{r['auuc']:.4f}",
                f"{100 * r['uplift_at_30']:+.2f} pp",
                f"{r['fit_s']:.1f}",
                f"{r['predict_s_per_1m']:.1f}",
                "" if truth != truth else f"{truth:.3f}",
                style=style,
            )
    table.caption = (
        "Qini, AUUC: normalised areas (0 random, 1 perfect ranking), test folds. uplift@30%: "
        "observed treated-minus-control conversion rate in the top 30%. truth@30%: true uplift "
        "captured in the top 30% as a share of the oracle's (synthetic world only)."
    )
    table.caption_justify = "left"
    console.print(table)

    training = None
    if not args.skip_1m and not args.quick:
        console.print("timing training on a ~1M-row randomized log ...")
        training = time_training_1m(3_340_000)
        ref = training["reference_batch_1024"]
        console.print(
            f"trained the default models ({training['default']['architecture']}) on "
            f"{training['log_rows']:,} log rows in {training['seconds']:.0f} s "
            f"(epochs {training['default']['epochs']}, log-loss "
            f"{ {k: round(v, 5) for k, v in training['default']['log_loss'].items()} }); "
            f"reference (batches of 1,024) {ref['seconds']:.0f} s (epochs {ref['epochs']}, "
            f"log-loss { {k: round(v, 5) for k, v in ref['log_loss'].items()} }): ratio "
            f"{training['ratio_to_reference']:.2f}"
        )
    payload = {
        "benchmark": "uplift",
        "python": platform.python_version(),
        "folds": folds,
        "causalml": HAVE_CAUSALML,
        "summary": summary.to_dict(orient="records"),
        "folds_detail": records,
        "training_1m": training,
    }
    write_json(args.json, payload)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
