"""Gradient-boosted meta-learners: P(buy | no coupon) and P(buy | treatment k) from LightGBM.

The alternative to the PyTorch networks when the log is small or the signal is in a few
features (trees find thresholds and interactions without tuning). One estimator,
:class:`BoostedConversionModel`, with the usual meta-learners for several arms, each arm against
the no-coupon arm:

* ``t``: one classifier per arm; ``p0 = mu_0(x)``, ``p_k = mu_k(x)``.
* ``s``: one classifier on every row with the arm as a categorical feature.
* ``x`` (Kuenzel et al., 2019): per-arm classifiers impute each row's effect (``y - mu_0(x)``
  on arm k, ``mu_k(x) - y`` on the no-coupon arm); two regressors learn them and are blended by
  the arm shares; ``p_k = p0 + tau_k(x)``.
* ``dr`` (Kennedy, 2023): the doubly robust pseudo-outcome
  ``mu_k - mu_0 + 1[a=k] (y - mu_k) / e_k - 1[a=0] (y - mu_0) / e_0`` with cross-fitted
  ``mu``, regressed on the features; ``p_k = p0 + tau_k(x)``.

``e`` are the arms' shares in the training rows (a completely randomized design). Every tree
model stops early on a seeded validation share of its rows. A saved model is a directory:
``model.json`` (parameters, encoder, arms, metrics) and one LightGBM text model per booster in
``boosters/``; no pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from optimizer.errors import InputError
from optimizer.evaluation.metrics import classification_quality
from optimizer.evaluation.outcome_models import fold_of
from optimizer.io.atomic import atomic_path
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.models.features import FeatureEncoder
from optimizer.progress import Progress, Step

__all__ = ["BoostedConversionModel", "LEARNERS"]

#: The meta-learners of :class:`BoostedConversionModel`.
LEARNERS: tuple[str, ...] = ("t", "s", "x", "dr")
#: Layout version of a saved boosted model.
BOOSTED_FORMAT = 1
#: Probabilities are kept in [EPS, 1 - EPS].
EPS = 1e-4


def _lightgbm():
    import lightgbm

    return lightgbm


class BoostedConversionModel(BaseEstimator):
    """Natural and per-treatment conversion from gradient-boosted trees (LightGBM).

    Parameters
    ----------
    learner : {"t", "s", "x", "dr"}
        The meta-learner (module docstring).
    n_estimators : int
        Most boosting rounds per tree model (early stopping picks fewer).
    learning_rate : float
    num_leaves : int
        Leaves per tree.
    min_child_samples : int
        Fewest rows in a leaf: large values keep the small arms' effects smooth.
    subsample, colsample : float
        Row and feature shares drawn per tree (bagging).
    reg_lambda : float
        L2 penalty on leaf values.
    early_stopping : int
        Rounds without validation improvement before stopping.
    validation_fraction : float
        Share of each tree model's rows held out for early stopping and validation metrics.
    crossfit : int
        Folds of the cross-fitted outcome models of the ``dr`` learner.
    random_state : int
    numeric, categorical : sequence of str, optional
        Feature columns (types inferred when both are None).
    max_categories : int or None
        Frequency cap of categorical features.
    n_jobs : int
        Threads per tree model (LightGBM's ``num_threads``; 0 lets OpenMP choose).

    Attributes
    ----------
    encoder_ : FeatureEncoder
    arms_ : list of str
        ``"none"`` then the treatments, in the order of the boosters.
    shares_ : ndarray, shape (1 + k,)
        Share of training rows per arm.
    boosters_ : dict of str to lightgbm.Booster
        ``outcome__<arm>``, ``effect__<arm>`` (x: ``effect1__``/``effect0__``) or ``outcome``.
    rounds_ : dict of str to int
        Boosting rounds kept per booster.
    natural_metrics_, validation_metrics_ : dict
        Quality of p0 on no-coupon validation rows and of p_k on treated validation rows (the
        ``before_calibration``/``after_calibration`` pair of the networks, equal here: trees are
        fitted on log-loss and not recalibrated).
    n_epochs_ : int
        Most boosting rounds of any booster (the networks' "epochs" column).
    """

    def __init__(
        self,
        *,
        learner: str = "t",
        n_estimators: int = 1000,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        subsample: float = 0.8,
        colsample: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping: int = 50,
        validation_fraction: float = 0.2,
        crossfit: int = 3,
        random_state: int = 0,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        max_categories: int | None = None,
        n_jobs: int = 0,
    ) -> None:
        self.learner = learner
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample = colsample
        self.reg_lambda = reg_lambda
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.crossfit = crossfit
        self.random_state = random_state
        self.numeric = numeric
        self.categorical = categorical
        self.max_categories = max_categories
        self.n_jobs = n_jobs

    # ---------------------------------------------------------------- features and trees
    def _check_params(self) -> None:
        if self.learner not in LEARNERS:
            raise InputError(f"must be one of {', '.join(LEARNERS)}", key="learner")
        if not 0 < self.validation_fraction < 1:
            raise InputError("must be in (0, 1)", key="validation_fraction")
        if self.crossfit < 2:
            raise InputError("must be at least 2", key="crossfit")

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """Encoded features, shape (n, n_numeric + n_categorical), float64 (codes as numbers)."""
        numeric, categorical = self.encoder_.transform(X)
        return np.hstack([numeric.astype(np.float64), categorical.astype(np.float64)])

    def _categorical_index(self, extra: int = 0) -> list[int]:
        start = self.encoder_.n_numeric_
        return list(range(start, start + len(self.encoder_.categorical_) + extra))

    def _params(self, objective: str, seed: int) -> dict[str, Any]:
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.n_jobs,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def _grow(
        self, X: np.ndarray, y: np.ndarray, *, classify: bool, seed: int, extra_categorical: int = 0
    ) -> tuple[Any, np.ndarray]:
        """One early-stopped booster; returns it and the indices of its validation rows."""
        lgb = _lightgbm()
        rng = np.random.default_rng(seed)
        valid = rng.random(y.size) < self.validation_fraction
        if valid.all() or not valid.any():
            valid = np.zeros(y.size, dtype=bool)
        if classify and (np.unique(y[~valid]).size < 2):
            raise InputError("an arm's training rows have a single outcome", key="log")
        cats = self._categorical_index(extra_categorical)
        train = lgb.Dataset(X[~valid], y[~valid], categorical_feature=cats, free_raw_data=True)
        sets, callbacks = [], []
        if valid.any():
            sets = [lgb.Dataset(X[valid], y[valid], categorical_feature=cats, reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping, verbose=False)]
        booster = lgb.train(
            self._params("binary" if classify else "regression", seed),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=sets,
            callbacks=callbacks,
        )
        if valid.any() and booster.best_iteration > 0:
            best = booster.model_to_string(num_iteration=booster.best_iteration)
            booster = lgb.Booster(model_str=best)
        return booster, np.flatnonzero(valid)

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        X: pd.DataFrame,
        coupon: np.ndarray | Sequence[str],
        y: np.ndarray,
        *,
        menu: Menu,
        propensity: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> BoostedConversionModel:
        """Fit on randomized rows of every arm.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Features.
        coupon : array of str, shape (n,)
            The treatment each user was sent, or ``"none"``.
        y : ndarray of {0, 1}, shape (n,)
            Conversions in the window.
        menu : Menu
            The treatments; those never sent in the rows cannot be scored.
        propensity : ndarray, shape (n,), optional
            P(the row's own arm) by design (a log pooled from campaigns that randomized at
            different rates); the DR learner weighs each row by it. Default: the arms' shares.
        groups : ndarray, shape (n,), optional
            Customer ids: the DR learner's cross-fitting folds keep a customer's rows together.
        progress : callable, optional
            Receives a :class:`~optimizer.progress.Step` per booster.
        """
        self._check_params()
        coupon = np.asarray(coupon, dtype=object)
        unknown = sorted(set(coupon.tolist()) - {*menu.names, NO_COUPON})
        if unknown:
            raise InputError(f"{unknown[0]!r} is not on the menu", key="coupon")
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0:
            raise InputError("no training rows")
        if propensity is not None:
            propensity = np.asarray(propensity, dtype=np.float64)
            if propensity.shape != y.shape or not np.all((propensity > 0) & (propensity <= 1)):
                raise InputError("must be one probability in (0, 1] per row", key="propensity")
        self.arms_ = [NO_COUPON, *[n for n in menu.names if (coupon == n).any()]]
        if len(self.arms_) < 2 or not (coupon == NO_COUPON).any():
            raise InputError("the boosted model needs no-coupon rows and coupon rows")
        self.menu_ = menu
        self.encoder_ = FeatureEncoder(
            self.numeric, self.categorical, max_categories=self.max_categories, drop_constant=None
        ).fit(X)
        matrix = self._matrix(X)
        arm = pd.Index(self.arms_).get_indexer(coupon)
        self.shares_ = np.bincount(arm, minlength=len(self.arms_)) / arm.size
        self.boosters_: dict[str, Any] = {}
        self.rounds_: dict[str, int] = {}
        steps = self._plan_steps()
        done = 0

        def grow(name: str, rows: np.ndarray, target: np.ndarray, classify: bool, extra: int = 0):
            nonlocal done
            if progress is not None:
                progress(Step("boosted model", done, len(steps), name))
            seed = self.random_state + 7919 * done
            booster, valid = self._grow(
                rows, target, classify=classify, seed=seed, extra_categorical=extra
            )
            self.boosters_[name] = booster
            self.rounds_[name] = int(booster.num_trees())
            done += 1
            return booster, valid

        if self.learner == "s":
            booster, valid = grow("outcome", self._with_arm(matrix, arm), y, True, extra=1)
            fitted = booster.predict(self._with_arm(matrix, arm))
            self._metrics(y[valid], fitted[valid], arm[valid])
        else:
            fitted = np.empty(y.size)
            for j, name in enumerate(self.arms_):
                rows = np.flatnonzero(arm == j)
                booster, valid = grow(f"outcome__{name}", matrix[rows], y[rows], True)
                fitted[rows[valid]] = booster.predict(matrix[rows[valid]])
                fitted[np.setdiff1d(rows, rows[valid])] = np.nan
            if self.learner == "x":
                held = self._fit_x(matrix, arm, y, grow)
            elif self.learner == "dr":
                held = self._fit_dr(matrix, arm, y, grow, propensity, groups)
            if self.learner in ("x", "dr"):
                # The coupon quality of what is served, p0 + tau_k, on the treated rows the
                # effect boosters held out (not the outcome boosters' mu_k).
                treated = np.flatnonzero(arm > 0)
                fitted[treated] = np.nan
                for j, rows in held.items():
                    fitted[rows] = self._served(matrix[rows], [j])[:, 0]
            seen = np.isfinite(fitted)
            self._metrics(y[seen], fitted[seen], arm[seen])
        if progress is not None:
            progress(Step("boosted model", len(steps), len(steps)))
        self.n_epochs_ = max(self.rounds_.values())
        return self

    def _plan_steps(self) -> list[str]:
        k = len(self.arms_) - 1
        if self.learner == "s":
            return ["outcome"]
        extra = {"t": 0, "x": 2 * k, "dr": k}[self.learner]
        return ["outcome"] * (k + 1) + ["effect"] * extra

    @staticmethod
    def _with_arm(matrix: np.ndarray, arm: np.ndarray | int) -> np.ndarray:
        column = np.broadcast_to(np.asarray(arm, dtype=np.float64), (matrix.shape[0],))
        return np.hstack([matrix, column[:, None]])

    def _metrics(self, y: np.ndarray, p: np.ndarray, arm: np.ndarray) -> None:
        control = arm == 0
        for name, rows in (("natural_metrics_", control), ("validation_metrics_", ~control)):
            quality = classification_quality(y[rows], np.clip(p[rows], EPS, 1 - EPS))
            setattr(self, name, {"before_calibration": quality, "after_calibration": quality})

    def _fit_x(self, matrix, arm, y, grow) -> dict[int, np.ndarray]:
        """Fit the effect regressors; return per arm its rows ``effect1`` held out."""
        mu0 = self.boosters_[f"outcome__{NO_COUPON}"]
        control = np.flatnonzero(arm == 0)
        held = {}
        for j, name in enumerate(self.arms_[1:], start=1):
            treated = np.flatnonzero(arm == j)
            mu_k = self.boosters_[f"outcome__{name}"]
            imputed1 = y[treated] - mu0.predict(matrix[treated])
            imputed0 = mu_k.predict(matrix[control]) - y[control]
            _, valid = grow(f"effect1__{name}", matrix[treated], imputed1, False)
            grow(f"effect0__{name}", matrix[control], imputed0, False)
            held[j] = treated[valid]
        return held

    def _fit_dr(self, matrix, arm, y, grow, propensity, groups) -> dict[int, np.ndarray]:
        """Fit the effect regressors; return per arm its rows the effect booster held out."""
        if groups is not None:
            fold = fold_of(np.asarray(groups), self.crossfit, self.random_state)
        else:
            fold = np.random.default_rng(self.random_state + 1).integers(0, self.crossfit, y.size)
        mu = np.empty((y.size, len(self.arms_)))
        for f in range(self.crossfit):
            for j in range(len(self.arms_)):
                rows = np.flatnonzero((fold != f) & (arm == j))
                booster, _ = self._grow(
                    matrix[rows], y[rows], classify=True, seed=self.random_state + 31 * f + j
                )
                mu[fold == f, j] = booster.predict(matrix[fold == f])
        mu = np.clip(mu, EPS, 1 - EPS)
        # Each row's chance of its own arm (the indicators zero the other arms' terms).
        e = self.shares_[arm] if propensity is None else propensity
        base = (arm == 0) * (y - mu[:, 0]) / e
        held = {}
        for j, name in enumerate(self.arms_[1:], start=1):
            psi = mu[:, j] - mu[:, 0] + (arm == j) * (y - mu[:, j]) / e - base
            _, valid = grow(f"effect__{name}", matrix, psi, False)
            held[j] = valid[arm[valid] == j]
        return held

    # ---------------------------------------------------------------- prediction
    def _columns(self, menu: Menu) -> list[int]:
        missing = [n for n in menu.names if n not in self.arms_]
        if missing:
            raise InputError(
                f"treatment {missing[0]!r} was never sent in the training log: the boosted "
                "model scores only the treatments it was trained on",
                key="menu",
            )
        return [self.arms_.index(n) for n in menu.names]

    def predict_natural(self, X: pd.DataFrame) -> np.ndarray:
        """P(convert | no coupon), shape (n,), float32."""
        matrix = self._matrix(X)
        if self.learner == "s":
            p0 = self.boosters_["outcome"].predict(self._with_arm(matrix, 0))
        else:
            p0 = self.boosters_[f"outcome__{NO_COUPON}"].predict(matrix)
        return np.clip(p0, EPS, 1 - EPS).astype(np.float32)

    def predict_proba(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray:
        """P(convert | treatment k), shape (n, k), float32, for the treatments of ``menu``."""
        menu = self.menu_ if menu is None else menu
        return self._served(self._matrix(X), self._columns(menu)).astype(np.float32)

    def _served(self, matrix: np.ndarray, columns: list[int]) -> np.ndarray:
        """P(convert | arm j) for the arm indices ``columns``, shape (n, len(columns))."""
        out = np.empty((matrix.shape[0], len(columns)))
        if self.learner in ("x", "dr"):
            p0 = np.clip(self.boosters_[f"outcome__{NO_COUPON}"].predict(matrix), EPS, 1 - EPS)
        for c, j in enumerate(columns):
            name = self.arms_[j]
            if self.learner == "s":
                out[:, c] = self.boosters_["outcome"].predict(self._with_arm(matrix, j))
            elif self.learner == "t":
                out[:, c] = self.boosters_[f"outcome__{name}"].predict(matrix)
            elif self.learner == "dr":
                out[:, c] = p0 + self.boosters_[f"effect__{name}"].predict(matrix)
            else:
                e0, e1 = self.shares_[0], self.shares_[j]
                g = e1 / (e0 + e1)  # weight of the effect learned on the no-coupon rows
                tau = g * self.boosters_[f"effect0__{name}"].predict(matrix) + (
                    1 - g
                ) * self.boosters_[f"effect1__{name}"].predict(matrix)
                out[:, c] = p0 + tau
        return np.clip(out, EPS, 1 - EPS)

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write ``model.json`` and ``boosters/<name>.txt`` into directory ``path``."""
        path = Path(path)
        (path / "boosters").mkdir(parents=True, exist_ok=True)
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        digests = {}
        for name, booster in self.boosters_.items():
            text = booster.model_to_string()
            digests[name] = hashlib.sha256(text.encode()).hexdigest()
            with atomic_path(path / "boosters" / f"{name}.txt") as tmp:
                tmp.write_text(text)
        meta = {
            "format": BOOSTED_FORMAT,
            "class": type(self).__name__,
            "params": params,
            "encoder": self.encoder_.to_dict(),
            "menu": self.menu_.model_dump(mode="json"),
            "arms": self.arms_,
            "shares": self.shares_.tolist(),
            "rounds": self.rounds_,
            "sha256": digests,
            "natural_metrics": self.natural_metrics_,
            "validation_metrics": self.validation_metrics_,
            "lightgbm": _lightgbm().__version__,
        }
        with atomic_path(path / "model.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1, default=float))

    @classmethod
    def load(cls, path: str | Path) -> BoostedConversionModel:
        """Load a model saved with :meth:`save`; every booster is checked against its digest.

        LightGBM aborts the process on a malformed model text, so a booster file is parsed only
        once its SHA-256 matches the one ``model.json`` recorded.
        """
        path = Path(path)
        try:
            meta = json.loads((path / "model.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"not a saved boosted model ({exc})", source=path) from None
        if meta.get("format") != BOOSTED_FORMAT or meta.get("class") != cls.__name__:
            raise InputError("not a saved boosted model of this version", source=path)
        model = cls(**meta["params"])
        model.encoder_ = FeatureEncoder.from_dict(meta["encoder"])
        model.menu_ = Menu.model_validate(meta["menu"])
        model.arms_ = list(meta["arms"])
        model.shares_ = np.asarray(meta["shares"], dtype=np.float64)
        model.rounds_ = {k: int(v) for k, v in meta["rounds"].items()}
        model.natural_metrics_ = meta["natural_metrics"]
        model.validation_metrics_ = meta["validation_metrics"]
        lgb = _lightgbm()
        model.boosters_ = {}
        digests = meta.get("sha256", {})
        for name, rounds in model.rounds_.items():
            file = path / "boosters" / f"{name}.txt"
            if not file.is_file():
                raise InputError(f"booster {name!r} is missing", source=path)
            text = file.read_text()
            if hashlib.sha256(text.encode()).hexdigest() != digests.get(name):
                raise InputError(f"booster {name!r} is damaged (checksum mismatch)", source=path)
            try:
                booster = lgb.Booster(model_str=text)
            except lgb.basic.LightGBMError as exc:
                raise InputError(f"booster {name!r} is damaged ({exc})", source=path) from None
            if booster.num_trees() != rounds:
                raise InputError(f"booster {name!r} is damaged (tree count)", source=path)
            model.boosters_[name] = booster
        model.n_epochs_ = max(model.rounds_.values())
        return model
