"""Cross-fitted outcome models for the doubly robust estimator.

For each arm and each outcome (conversion, GMV, cost) a regression of the outcome on the
customer's features is fitted on the rows that received the arm; every row's predictions come
from models that never saw that row's customer (customers are split into folds by a hash of
their id, the models of fold ``f`` are fitted on the other folds). The doubly robust estimate
stays unbiased when these models are wrong, and its variance shrinks as they get better.

Models: scikit-learn's histogram gradient boosting (``"boosting"``, native categorical
support, fast on millions of rows) or a ridge regression on standardised features
(``"linear"``). An outcome that is constant on an arm's rows is predicted as that constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from optimizer.errors import InputError
from optimizer.evaluation.logged import LoggedRows
from optimizer.io.campaign_log import id_hash
from optimizer.progress import Progress, report

__all__ = ["OutcomePredictions", "OUTCOME_MODELS", "cross_fit_outcomes", "fold_of"]

#: Outcome model families.
OUTCOME_MODELS: tuple[str, ...] = ("boosting", "linear")
_OUTCOMES = ("converted", "gmv", "cost")
_MAX_CATEGORIES = 255  # histogram gradient boosting's limit per categorical feature


@dataclass(frozen=True)
class OutcomePredictions:
    """Cross-fitted predictions of each outcome under each arm, for every logged row.

    Attributes
    ----------
    converted, gmv, cost : ndarray of float64, shape (m, len(arms))
        Predicted conversion probability, GMV and campaign cost (money) per row and arm.
    model : str
        The model family.
    folds : int
        Number of cross-fitting folds.
    """

    converted: np.ndarray
    gmv: np.ndarray
    cost: np.ndarray
    model: str
    folds: int

    def of(self, outcome: str) -> np.ndarray:
        """The prediction matrix of ``outcome`` (``converted``, ``gmv`` or ``cost``)."""
        return getattr(self, outcome)

    def subset(self, index: np.ndarray) -> OutcomePredictions:
        """The predictions of the rows at ``index``."""
        return OutcomePredictions(
            self.converted[index], self.gmv[index], self.cost[index], self.model, self.folds
        )


def fold_of(user_id: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Cross-fitting fold of each customer (a hash of the id, so a customer's rows stay together).

    Returns
    -------
    ndarray of int, shape (m,)
        Values in ``[0, folds)``.
    """
    x = id_hash(user_id, seed + 1)
    return (x % np.uint64(folds)).astype(np.int64)


def _design(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A float matrix of the features and a mask of its categorical columns.

    Text and categorical columns become integer codes (missing: NaN); those with at most 255
    distinct values are marked categorical, the others are kept as ordinal codes.
    """
    columns, categorical = [], []
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            columns.append(values)
            categorical.append(False)
            continue
        codes, uniques = pd.factorize(column.astype("string"), sort=True)
        values = codes.astype(np.float64)
        values[codes < 0] = np.nan
        columns.append(values)
        categorical.append(len(uniques) <= _MAX_CATEGORIES)
    if not columns:
        raise InputError("no feature columns to fit outcome models on", key="features")
    return np.column_stack(columns), np.array(categorical, dtype=bool)


def _regressor(model: str, categorical: np.ndarray, seed: int):  # noqa: ANN202
    if model == "boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=60,  # small trees, few rounds: 4-6x faster than the defaults, and an
            max_leaf_nodes=15,  # outcome model only needs to be decent (the weights correct it)
            learning_rate=0.15,
            min_samples_leaf=100,
            categorical_features=categorical if categorical.any() else None,
            early_stopping=False,
            random_state=seed,
        )
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    codes = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    encode = ColumnTransformer(
        [("numeric", numeric, ~categorical), ("categorical", codes, categorical)]
    )
    return make_pipeline(encode, Ridge(alpha=1.0))


def cross_fit_outcomes(
    features: pd.DataFrame,
    rows: LoggedRows,
    *,
    model: str = "boosting",
    folds: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
) -> OutcomePredictions:
    """Fit the outcome models fold by fold and predict every row under every arm.

    Parameters
    ----------
    features : DataFrame, shape (m, c)
        The customers' features, one row per logged row (numeric, boolean, categorical or text
        columns).
    rows : LoggedRows
        The logged rows, aligned with ``features``.
    model : {"boosting", "linear"}
        Outcome model family.
    folds : int
        Cross-fitting folds (at least 2): a row's predictions come from models fitted on the
        other folds' customers.
    seed : int
        Seeds the fold assignment and the models.
    progress : callable, optional
        Receives an ``"outcome models"`` :class:`~optimizer.progress.Step` per fold and arm.

    Returns
    -------
    OutcomePredictions
        Conversion probabilities are clipped to [0, 1], GMV and cost to >= 0.
    """
    if model not in OUTCOME_MODELS:
        raise InputError(f"must be one of {', '.join(OUTCOME_MODELS)}", key="outcome_model")
    if folds < 2:
        raise InputError("must be at least 2", key="folds")
    if len(features) != rows.n_rows:
        raise InputError(f"{len(features)} feature rows for {rows.n_rows} log rows", key="features")
    x, categorical = _design(features.reset_index(drop=True))
    # One OpenMP thread per fit: after the solvers or torch have run, their OpenMP runtime's
    # spinning threads made the boosting's parallel splits up to 100x slower (measured: 148 s
    # against 1.4 s for the same Hillstrom fits); a single thread is as fast on these sizes.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _cross_fit(x, categorical, rows, model, folds, seed, progress)


def _cross_fit(
    x: np.ndarray,
    categorical: np.ndarray,
    rows: LoggedRows,
    model: str,
    folds: int,
    seed: int,
    progress: Progress | None,
) -> OutcomePredictions:
    """The fold loop of :func:`cross_fit_outcomes`."""
    fold = fold_of(rows.user_id, folds, seed)
    k = len(rows.arms)
    out = {name: np.zeros((rows.n_rows, k)) for name in _OUTCOMES}
    targets = {"converted": rows.converted, "gmv": rows.gmv, "cost": rows.cost}
    for f in range(folds):
        test = fold == f
        if not test.any():
            continue
        for a in range(k):
            report(
                progress, "outcome models", f * k + a, folds * k, f"fold {f + 1}, {rows.arms[a]}"
            )
            train = (fold != f) & (rows.arm == a)
            for name in _OUTCOMES:
                y = targets[name][train]
                if y.size == 0:  # an arm absent from the other folds: its overall mean
                    pooled = targets[name][rows.arm == a]
                    out[name][test, a] = pooled.mean() if pooled.size else 0.0
                    continue
                if np.ptp(y) == 0:
                    out[name][test, a] = y[0]
                    continue
                fitted = _regressor(model, categorical, seed).fit(x[train], y)
                out[name][test, a] = fitted.predict(x[test])
    np.clip(out["converted"], 0.0, 1.0, out=out["converted"])
    np.maximum(out["gmv"], 0.0, out=out["gmv"])
    np.maximum(out["cost"], 0.0, out=out["cost"])
    return OutcomePredictions(**out, model=model, folds=folds)
