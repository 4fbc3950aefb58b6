"""P(redeem | converted holding coupon d, x): a regularised logistic model of the coupon's terms.

A buyer holding a coupon redeems it when the order reaches the threshold, so redemption is
mostly a matter of the threshold (and the face value) relative to the customer's usual basket.
The model is a logistic regression on

* the user features (the shared :class:`~optimizer.models.features.FeatureEncoder`: robust-scaled
  numbers with missing indicators, one-hot categories),
* the coupon's log face value and log threshold relative to the user's basket, ``lf`` and
  ``lt``, with ``lf**2``, ``lt**2`` and ``lf * lt``,
* ``lt`` times each numeric feature (how far a threshold is depends on the customer),

with an L2 penalty chosen by cross-validated log-loss (the coupon terms nearly unpenalised).
Redemption is fitted on the converters of the coupon arms only (a few hundred rows on a small
log), where a network stops after a few epochs and predicts nearly one redemption share for
every coupon; the logistic model
needs few rows, is calibrated by its likelihood, and scores any denomination (new ones too)
from its face value and threshold. Over the menu its probabilities are made monotone like the
coupon model's (a more generous coupon never redeems less often;
:func:`~optimizer.models.coupon.enforce_menu_monotonicity`).

A saved model is one ``model.json`` (coefficients, encoder, parameters); no pickle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold

from optimizer.errors import InputError
from optimizer.evaluation.metrics import classification_quality
from optimizer.io.atomic import atomic_path
from optimizer.io.menu import Menu
from optimizer.models.coupon import check_on_menu, enforce_menu_monotonicity
from optimizer.models.features import FeatureEncoder, basket_median, basket_values, log_relative
from optimizer.progress import Progress, Step

__all__ = ["RedemptionModel", "REDEMPTION_FORMAT", "REDEMPTION_MODELS"]

#: The kinds of redemption model :class:`~optimizer.models.ConversionModels` can fit.
REDEMPTION_MODELS: tuple[str, ...] = ("logistic", "network")

#: Version of the saved layout (``model.json`` with ``class: RedemptionModel``).
REDEMPTION_FORMAT = 1
#: The coupon terms, in coefficient order (after the user features).
COUPON_TERMS = ("lf", "lt", "lf^2", "lt^2", "lf*lt")
#: The coupon terms enter scaled up, so the L2 penalty barely shrinks them (by 1 / scale^2):
#: each coupon's redemption level prices it, and the few terms need no shrinkage.
TERM_SCALE = 10.0


class RedemptionModel(BaseEstimator):
    """P(redeem | converted holding coupon d, x) for every denomination d of a menu.

    Parameters
    ----------
    basket_column : str or None
        Feature holding the user's typical basket (money); None uses the face values and
        thresholds as they are (a basket of 1).
    Cs : sequence of float
        Inverse L2 penalties tried; the one with the best cross-validated log-loss is refitted
        on every row.
    cv : int
        Folds of the cross-validation (grouped by customer when ``groups`` is given).
    max_cv_rows : int
        Rows the penalty is chosen on (a seeded sample above it); the final fit uses all.
    random_state : int
        Seed of the folds and the sample.
    numeric, categorical : sequence of str, optional
        Feature columns (defaults as :class:`~optimizer.models.features.FeatureEncoder`).
    max_categories : int or None
        Most labels a categorical column keeps.

    Attributes
    ----------
    encoder_ : FeatureEncoder
    coef_ : ndarray, shape (n_features,)
        User features (numeric, one-hot), coupon terms, then ``lt`` x numeric features.
    intercept_ : float
    C_ : float
        The chosen inverse penalty.
    cv_log_loss_ : dict of str to float
        Mean held-out log-loss (nats per row) of every C tried.
    menu_ : Menu
        The denominations seen in training (the default menu of :meth:`predict_proba`).
    basket_median_ : float
        Fallback basket (money) for users whose basket is missing or not positive.
    validation_metrics_ : dict
        ``before_calibration`` / ``after_calibration`` (equal: the likelihood calibrates) of the
        out-of-fold predictions at the chosen C.
    n_epochs_ : int
        Solver iterations of the final fit (the networks' "epochs" column).
    """

    def __init__(
        self,
        *,
        basket_column: str | None = "avg_order_value",
        Cs: Sequence[float] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
        cv: int = 5,
        max_cv_rows: int = 50_000,
        random_state: int = 0,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        max_categories: int | None = None,
    ) -> None:
        self.basket_column = basket_column
        self.Cs = Cs
        self.cv = cv
        self.max_cv_rows = max_cv_rows
        self.random_state = random_state
        self.numeric = numeric
        self.categorical = categorical
        self.max_categories = max_categories

    # ------------------------------------------------------------------ design
    def _basket(self, X: pd.DataFrame) -> np.ndarray:
        return basket_values(X, self.basket_column, self.basket_median_)

    def _users(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """User block (numeric, one-hot), shape (n, u), and the numeric block, shape (n, m)."""
        numeric, codes = self.encoder_.transform(X)
        blocks = [numeric.astype(np.float64)]
        for j, size in enumerate(self.encoder_.cardinalities_):
            blocks.append(np.eye(size)[codes[:, j]])
        return np.hstack(blocks), numeric.astype(np.float64)

    @staticmethod
    def _terms(lf: np.ndarray, lt: np.ndarray) -> np.ndarray:
        """Coupon terms of :data:`COUPON_TERMS`, shape (*lf.shape, 5), times :data:`TERM_SCALE`."""
        return TERM_SCALE * np.stack([lf, lt, lf * lf, lt * lt, lf * lt], axis=-1)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: pd.DataFrame,
        coupon: np.ndarray | Sequence[str],
        y: np.ndarray,
        *,
        menu: Menu,
        groups: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> RedemptionModel:
        """Fit on converters holding a coupon.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Features of buyers who were sent a coupon.
        coupon : array of str, shape (n,)
            The denomination each buyer held (names on ``menu``).
        y : ndarray of {0, 1}, shape (n,)
            Whether the buyer redeemed it.
        menu : Menu
            Face values and thresholds of the denominations in ``coupon``.
        groups : ndarray, shape (n,), optional
            Customer of each row: the folds keep a customer's rows together.
        progress : callable, optional
            Receives one :class:`~optimizer.progress.Step` per fold and one for the final fit.
        """
        coupon = check_on_menu(coupon, menu)
        y = np.asarray(y, dtype=np.float64)
        if y.size < 2 or not 0 < y.sum() < y.size:
            raise InputError("redemption needs rows that redeemed and rows that did not")
        if self.cv < 2 or not self.Cs or min(self.Cs) <= 0:
            raise InputError("cv must be at least 2 and every C positive", key="redemption")
        self.menu_ = menu
        self.encoder_ = FeatureEncoder(
            self.numeric, self.categorical, max_categories=self.max_categories, drop_constant=None
        ).fit(X)
        self.basket_median_ = basket_median(X, self.basket_column)
        index = pd.Index(menu.names).get_indexer(coupon)
        design = self._design(X, menu.face_values[index], menu.thresholds[index])
        total = self.cv + 1
        oof, losses = self._choose_penalty(design, y, groups, progress, total)
        self.cv_log_loss_ = losses
        self.C_ = float(min(losses, key=lambda c: (losses[c], -float(c))))
        final = self._logistic(self.C_).fit(design, y)
        self.coef_ = final.coef_[0].astype(np.float64)
        self.intercept_ = float(final.intercept_[0])
        self.n_epochs_ = int(np.max(final.n_iter_))
        quality = classification_quality(y[oof[0]], oof[1][self.C_])
        self.validation_metrics_ = {"before_calibration": quality, "after_calibration": quality}
        if progress is not None:
            progress(Step("redemption model", total, total, f"C {self.C_:g}"))
        return self

    def _design(self, X: pd.DataFrame, faces: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Rows' design matrix for one coupon each: shape (n, n_features)."""
        users, numeric = self._users(X)
        basket = self._basket(X)
        lf, lt = log_relative(faces, basket), log_relative(thresholds, basket)
        return np.hstack([users, self._terms(lf, lt), lt[:, None] * numeric])

    def _logistic(self, C: float) -> LogisticRegression:
        return LogisticRegression(C=C, max_iter=10_000, tol=1e-5)

    def _choose_penalty(self, design, y, groups, progress, total):
        """Out-of-fold predictions per C on at most ``max_cv_rows`` rows, and their log-loss."""
        rng = np.random.default_rng(self.random_state)
        rows = np.arange(y.size)
        if y.size > self.max_cv_rows:
            rows = np.sort(rng.choice(y.size, self.max_cv_rows, replace=False))
        Xs, ys = design[rows], y[rows]
        folds = min(self.cv, int(min(ys.sum(), ys.size - ys.sum())))
        if folds < 2:
            raise InputError("redemption needs at least two redeeming and two other rows")
        if groups is not None:
            splitter = GroupKFold(n_splits=folds)
            splits = splitter.split(Xs, ys, np.asarray(groups)[rows])
        else:
            splits = KFold(folds, shuffle=True, random_state=self.random_state).split(Xs)
        oof = {float(c): np.empty(ys.size) for c in self.Cs}
        for f, (train, test) in enumerate(splits, start=1):
            for c in oof:
                if np.unique(ys[train]).size < 2:
                    oof[c][test] = ys[train].mean()
                    continue
                model = self._logistic(c).fit(Xs[train], ys[train])
                oof[c][test] = model.predict_proba(Xs[test])[:, 1]
            if progress is not None:
                progress(Step("redemption model", f, total, "choosing the penalty"))
        eps = 1e-12
        losses = {
            c: float(-np.mean(ys * np.log(p + eps) + (1 - ys) * np.log(1 - p + eps)))
            for c, p in oof.items()
        }
        return (rows, oof), losses

    # ------------------------------------------------------------------ scoring
    def predict_proba(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray:
        """P(redeem | converted holding coupon d), shape (n_users, n_denominations), float32.

        Any denomination is scored from its face value and threshold; the result is monotone
        over the menu (a more generous coupon never redeems less often).
        """
        menu = self.menu_ if menu is None else menu
        numeric, codes = self.encoder_.transform(X)
        numeric = numeric.astype(np.float64)
        basket = self._basket(X)[:, None]
        lf = log_relative(menu.face_values[None, :], basket)
        lt = log_relative(menu.thresholds[None, :], basket)
        m = numeric.shape[1]
        base = numeric @ self.coef_[:m] + self.intercept_
        offset = m
        for j, size in enumerate(self.encoder_.cardinalities_):  # one-hot as a lookup
            base += self.coef_[offset : offset + size][codes[:, j]]
            offset += size
        w_terms = self.coef_[offset : offset + len(COUPON_TERMS)]
        w_inter = self.coef_[offset + len(COUPON_TERMS) :]
        w = TERM_SCALE * w_terms  # the terms of _terms, summed without an (n, k, 5) array
        coupon = w[0] * lf + w[1] * lt + w[2] * lf * lf + w[3] * lt * lt + w[4] * lf * lt
        logits = base[:, None] + coupon + lt * (numeric @ w_inter)[:, None]
        p = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        return enforce_menu_monotonicity(p, menu).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``model.json`` into directory ``path`` (atomically)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        meta = {
            "format": REDEMPTION_FORMAT,
            "class": type(self).__name__,
            "params": params,
            "encoder": self.encoder_.to_dict(),
            "menu": self.menu_.model_dump(mode="json"),
            "basket_median": self.basket_median_,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "C": self.C_,
            "cv_log_loss": {repr(c): v for c, v in self.cv_log_loss_.items()},
            "n_epochs": self.n_epochs_,
            "validation_metrics": self.validation_metrics_,
        }
        with atomic_path(path / "model.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1, default=float))

    @classmethod
    def load(cls, path: str | Path) -> RedemptionModel:
        """Load a model saved with :meth:`save`, checked for its layout and its coefficients."""
        path = Path(path)
        meta_path = path / "model.json"
        if not meta_path.is_file():
            raise InputError("not a saved redemption model (model.json missing)", source=path)
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"model.json is not valid JSON ({exc})", source=path) from None
        if meta.get("class") != cls.__name__ or meta.get("format") != REDEMPTION_FORMAT:
            raise InputError("model.json does not hold a redemption model", source=path)
        model = cls(**meta["params"])
        model.encoder_ = FeatureEncoder.from_dict(meta["encoder"])
        model.menu_ = Menu.model_validate(meta["menu"])
        model.basket_median_ = float(meta["basket_median"])
        model.coef_ = np.asarray(meta["coef"], dtype=np.float64)
        model.intercept_ = float(meta["intercept"])
        model.C_ = float(meta["C"])
        model.cv_log_loss_ = {float(c): v for c, v in meta["cv_log_loss"].items()}
        model.n_epochs_ = int(meta["n_epochs"])
        model.validation_metrics_ = meta["validation_metrics"]
        n_users = model.encoder_.n_numeric_ + sum(model.encoder_.cardinalities_)
        expected = n_users + len(COUPON_TERMS) + model.encoder_.n_numeric_
        values = [model.intercept_, model.basket_median_, *model.coef_.tolist()]
        if model.coef_.shape != (expected,) or not all(map(math.isfinite, values)):
            raise InputError(
                f"model.json holds {model.coef_.size} coefficients, {expected} expected "
                "(or a non-finite one)",
                source=path,
            )
        return model
