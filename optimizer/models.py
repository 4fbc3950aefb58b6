"""The article's two models: natural conversion and per-denomination coupon conversion.

Both are scikit-learn-style estimators over a feature DataFrame (the user table, or any table of
features): parameters are stored unchanged in ``__init__``, all learning happens in ``fit``
(which returns ``self``), and fitted state ends in ``_``. Both save to and load from a directory:
``weights.pt`` (a ``state_dict`` loaded with ``weights_only=True``) and ``model.json`` (feature
encoder, calibration, menu, parameters, versions and training metrics); no pickle.
"""

from __future__ import annotations

import inspect
import json
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from optimizer.atomic import atomic_path
from optimizer.calibration import CALIBRATIONS, Calibrator
from optimizer.errors import InputError
from optimizer.features import FeatureEncoder
from optimizer.menu import Menu
from optimizer.metrics import auc, expected_calibration_error, log_loss
from optimizer.nets import LogitNet, MonotoneCouponNet, Trunk
from optimizer.training import Progress, fit_logits, predict_logits

__all__ = [
    "NaturalConversionModel",
    "CouponConversionModel",
    "HEADS",
    "enforce_menu_monotonicity",
    "load_model",
]

#: Coupon model heads: one shared monotone head over (face, threshold), or one per denomination.
HEADS: tuple[str, ...] = ("shared", "per_denomination")
_FORMAT = 1


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    try:
        out["couponopt"] = metadata.version("couponopt")
    except metadata.PackageNotFoundError:
        out["couponopt"] = "unknown"
    return out


def _quality(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "rows": int(y.size),
        "positive_rate": float(np.mean(y)) if y.size else float("nan"),
        "auc": auc(y, p),
        "log_loss": log_loss(y, p) if y.size else float("nan"),
        "calibration_error": expected_calibration_error(y, p),
    }


def enforce_menu_monotonicity(p: np.ndarray, menu: Menu) -> np.ndarray:
    """Smallest upward correction of ``p`` that is monotone over the menu.

    Denomination ``j`` is at least as generous as ``i`` when ``f_j >= f_i`` and ``t_j <= t_i``;
    then ``p_j`` must be at least ``p_i``. Each ``p_j`` is raised to the largest ``p_i`` among
    the denominations it dominates (a closure, so the result satisfies every pair).

    Parameters
    ----------
    p : ndarray, shape (n, k)
        Coupon conversion probabilities in menu order.
    menu : Menu
        The k denominations.

    Returns
    -------
    ndarray, shape (n, k)
    """
    f, t = menu.face_values, menu.thresholds
    dominates = (f[:, None] >= f[None, :]) & (t[:, None] <= t[None, :])  # [j, i]: j >= i
    if dominates.sum() == len(menu):  # only the diagonal: nothing to enforce
        return p
    out = np.empty_like(p)
    for j in range(len(menu)):
        out[:, j] = p[:, dominates[j]].max(axis=1)
    return out


class _ConversionModel:
    """Shared machinery: encoder, network, training, calibration, save/load."""

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        max_epochs: int = 60,
        batch_size: int = 1024,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 6,
        validation_fraction: float = 0.2,
        calibration: str = "platt",
        random_state: int = 0,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.calibration = calibration
        self.random_state = random_state
        self.numeric = numeric
        self.categorical = categorical

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def _check_params(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise InputError(
                f"calibration must be one of {', '.join(CALIBRATIONS)}", source="calibration"
            )
        if not 0 <= self.validation_fraction < 1:
            raise InputError("validation_fraction must be in [0, 1)", source="validation_fraction")

    def _encode_fit(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        self.encoder_ = FeatureEncoder(self.numeric, self.categorical).fit(X)
        return self.encoder_.transform(X)

    def _seeded_net(self) -> torch.nn.Module:
        """Build the network with initial weights drawn from ``random_state`` only."""
        with torch.random.fork_rng():
            torch.manual_seed(self.random_state)
            return self._build_net()

    def _trunk(self) -> Trunk:
        return Trunk(
            self.encoder_.n_numeric_,
            self.encoder_.cardinalities_,
            hidden=tuple(self.hidden),
            dropout=self.dropout,
        )

    def _train(
        self, forward, inputs: tuple[np.ndarray, ...], y: np.ndarray, progress: Progress | None
    ) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if y.size == 0:
            raise InputError("no training rows")
        with torch.random.fork_rng():
            history, val_idx = fit_logits(
                self.net_,
                forward,
                inputs,
                y,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                patience=self.patience,
                validation_fraction=self.validation_fraction,
                seed=self.random_state,
                progress=progress,
            )
        self.history_ = [vars(r).copy() for r in history]
        self.n_epochs_ = len(history)
        return val_idx

    def _calibrate(self, logits: np.ndarray, y: np.ndarray, val_idx: np.ndarray) -> None:
        """Fit the calibrator on validation rows and record validation quality."""
        rows = val_idx if val_idx.size else np.arange(y.size)
        raw = 1.0 / (1.0 + np.exp(-logits[rows]))
        self.calibrator_ = Calibrator(self.calibration).fit(logits[rows], y[rows])
        calibrated = self.calibrator_.transform(logits[rows])
        self.validation_metrics_ = {
            "before_calibration": _quality(y[rows], raw),
            "after_calibration": _quality(y[rows], calibrated),
        }

    # ---------------------------------------------------------------- persistence
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | Path) -> None:
        """Write ``weights.pt`` and ``model.json`` into directory ``path`` (atomically)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params()
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        meta = {
            "format": _FORMAT,
            "class": type(self).__name__,
            "params": params,
            "encoder": self.encoder_.to_dict(),
            "calibrator": self.calibrator_.to_dict(),
            "history": self.history_,
            "validation_metrics": self.validation_metrics_,
            "versions": _versions(),
            **self._extra_state(),
        }
        with atomic_path(path / "weights.pt") as tmp:
            torch.save(self.net_.state_dict(), tmp)
        with atomic_path(path / "model.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1, default=float))

    @classmethod
    def _restore(cls, meta: dict[str, Any], path: Path):
        params = dict(meta["params"])
        model = cls(**params)
        model.encoder_ = FeatureEncoder.from_dict(meta["encoder"])
        model.calibrator_ = Calibrator.from_dict(meta["calibrator"])
        model.history_ = meta["history"]
        model.n_epochs_ = len(model.history_)
        model.validation_metrics_ = meta["validation_metrics"]
        model._load_extra(meta)
        model.net_ = model._seeded_net()
        state = torch.load(path / "weights.pt", weights_only=True)
        model.net_.load_state_dict(state)
        model.net_.eval()
        return model

    def _load_extra(self, meta: dict[str, Any]) -> None:
        pass

    def _build_net(self) -> torch.nn.Module:
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path):
        """Load a model saved with :meth:`save`."""
        meta = _read_meta(path)
        if meta["class"] != cls.__name__:
            raise InputError(f"holds a {meta['class']}, not a {cls.__name__}", source=path)
        return cls._restore(meta, Path(path))


def _read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_path = path / "model.json"
    if not meta_path.is_file() or not (path / "weights.pt").is_file():
        raise InputError("not a saved model (model.json and weights.pt expected)", source=path)
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"model.json is not valid JSON ({exc})", source=path) from None
    if meta.get("format") != _FORMAT:
        raise InputError(f"unsupported model format {meta.get('format')!r}", source=path)
    return meta


class NaturalConversionModel(_ConversionModel):
    """P(convert in the campaign window | no coupon, x): the article's natural model.

    Trained on the no-coupon (holdout) arm of a randomized log. Parameters are keyword-only.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths of the shallow network.
    dropout : float
        Dropout rate.
    max_epochs, batch_size, learning_rate, weight_decay : training settings
        Adam on binary cross-entropy.
    patience : int
        Epochs without validation improvement before stopping.
    validation_fraction : float
        Share of rows held out for early stopping and calibration.
    calibration : {"platt", "isotonic", "none"}
        Calibration fitted on the validation rows.
    random_state : int
        Seed; fitting is deterministic for a seed.
    numeric, categorical : sequence of str, optional
        Feature columns (default: inferred from dtypes, ``user_id`` excluded).

    Attributes
    ----------
    encoder_ : FeatureEncoder
    net_ : torch.nn.Module
    calibrator_ : Calibrator
    history_ : list of dict
        Per-epoch losses.
    validation_metrics_ : dict
        AUC, log-loss and calibration error before and after calibration.
    """

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, *, progress: Progress | None = None
    ) -> NaturalConversionModel:
        """Fit on features ``X`` (n, c) and conversions ``y`` (n,) of untreated users."""
        self._check_params()
        y = np.asarray(y, dtype=np.float32)
        numeric, categorical = self._encode_fit(X)
        self.net_ = self._seeded_net()

        def forward(num, cat):
            return self.net_(num, cat)[:, 0]

        val_idx = self._train(forward, (numeric, categorical), y, progress)
        logits = predict_logits(self.net_, (numeric, categorical))[:, 0]
        self._calibrate(logits, y, val_idx)
        return self

    def _build_net(self) -> torch.nn.Module:
        return LogitNet(self._trunk(), 1)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated logits, shape (n,)."""
        numeric, categorical = self.encoder_.transform(X)
        return predict_logits(self.net_, (numeric, categorical))[:, 0]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(convert | no coupon), shape (n,), float32."""
        return self.calibrator_.transform(self.decision_function(X)).astype(np.float32)


class CouponConversionModel(_ConversionModel):
    """P(convert in the campaign window | coupon d, x) for every denomination d of a menu.

    Trained on the coupon arms of a randomized log. With ``head="shared"`` (default) the coupon
    enters as its face value and threshold relative to the user's basket
    (``basket_column``), through a head that is monotone by construction
    (:class:`optimizer.nets.MonotoneCouponNet`): any denomination, including one that was never
    sent, can be scored without retraining. With ``head="per_denomination"`` there is one logit
    per trained denomination and monotonicity over the menu is enforced after prediction by
    :func:`enforce_menu_monotonicity`.

    Parameters
    ----------
    head : {"shared", "per_denomination"}
        Output head (see above).
    n_basis : int
        Monotone basis functions of the shared head.
    basket_column : str or None
        Feature holding the user's typical basket (money) for relative face values and
        thresholds; None uses face values and thresholds as they are (a basket of 1).
    **kwargs
        As for :class:`NaturalConversionModel`.

    Attributes
    ----------
    menu_ : Menu
        The denominations seen in training (the per-denomination heads, in order).
    basket_median_ : float
        Fallback basket (money) for users whose basket is missing or not positive.
    """

    def __init__(
        self,
        *,
        head: str = "shared",
        n_basis: int = 4,
        basket_column: str | None = "avg_order_value",
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        max_epochs: int = 60,
        batch_size: int = 1024,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 6,
        validation_fraction: float = 0.2,
        calibration: str = "platt",
        random_state: int = 0,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            hidden=hidden,
            dropout=dropout,
            max_epochs=max_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            patience=patience,
            validation_fraction=validation_fraction,
            calibration=calibration,
            random_state=random_state,
            numeric=numeric,
            categorical=categorical,
        )
        self.head = head
        self.n_basis = n_basis
        self.basket_column = basket_column

    def _basket(self, X: pd.DataFrame) -> np.ndarray:
        if self.basket_column is None:
            return np.ones(len(X))
        if self.basket_column not in X.columns:
            raise InputError(f"basket column '{self.basket_column}' is missing from the input")
        basket = X[self.basket_column].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(basket) & (basket > 0)
        return np.where(ok, basket, self.basket_median_)

    def _relative(
        self, basket: np.ndarray, faces: np.ndarray, thresholds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log face value and log threshold relative to the basket, each shape (n, k)."""
        log_b = np.log(basket)[:, None]
        log_f = np.log(np.maximum(faces, 1e-6))[None, :] - log_b
        log_t = np.log(np.maximum(thresholds, 1e-6))[None, :] - log_b
        return log_f.astype(np.float32), log_t.astype(np.float32)

    def fit(
        self,
        X: pd.DataFrame,
        coupon: np.ndarray | Sequence[str],
        y: np.ndarray,
        *,
        menu: Menu,
        progress: Progress | None = None,
    ) -> CouponConversionModel:
        """Fit on treated users.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Features of users who were sent a coupon.
        coupon : array of str, shape (n,)
            The denomination each user was sent (names on ``menu``).
        y : ndarray of {0, 1}, shape (n,)
            Conversions in the window.
        menu : Menu
            Face values and thresholds of the denominations in ``coupon``.
        progress : callable, optional
            Called with each epoch's :class:`~optimizer.training.EpochReport`.
        """
        self._check_params()
        if self.head not in HEADS:
            raise InputError(f"head must be one of {', '.join(HEADS)}", source="head")
        coupon = np.asarray(coupon, dtype=object)
        unknown = sorted(set(coupon.tolist()) - set(menu.names))
        if unknown:
            raise InputError(
                f"coupon {unknown[0]!r} is not on the menu ({', '.join(menu.names)})",
                source="coupon",
            )
        self.menu_ = menu
        index = pd.Index(menu.names).get_indexer(coupon).astype(np.int64)
        y = np.asarray(y, dtype=np.float32)
        numeric, categorical = self._encode_fit(X)
        if self.basket_column is not None:
            raw = X[self.basket_column].to_numpy(dtype=np.float64, na_value=np.nan)
            ok = np.isfinite(raw) & (raw > 0)
            self.basket_median_ = float(np.median(raw[ok])) if ok.any() else 1.0
        else:
            self.basket_median_ = 1.0
        self.net_ = self._seeded_net()
        if self.head == "shared":
            # One coupon per row: relative face value and threshold of shape (n, 1).
            log_b = np.log(self._basket(X))
            log_f = (np.log(menu.face_values[index]) - log_b)[:, None].astype(np.float32)
            log_t = (np.log(menu.thresholds[index]) - log_b)[:, None].astype(np.float32)
            inputs = (numeric, categorical, log_f, log_t)

            def forward(num, cat, lf, lt):
                return self.net_(num, cat, lf, lt)[:, 0]

        else:
            inputs = (numeric, categorical, index)

            def forward(num, cat, idx):
                return self.net_(num, cat).gather(1, idx.view(-1, 1))[:, 0]

        val_idx = self._train(forward, inputs, y, progress)
        logits = predict_logits(forward, inputs)
        self._calibrate(logits.reshape(-1), y, val_idx)
        return self

    def _build_net(self) -> torch.nn.Module:
        if self.head == "shared":
            return MonotoneCouponNet(self._trunk(), self.n_basis)
        return LogitNet(self._trunk(), len(self.menu_))

    def decision_function(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray:
        """Uncalibrated logits, shape (n, k), for the denominations of ``menu``."""
        menu = self.menu_ if menu is None else menu
        numeric, categorical = self.encoder_.transform(X)
        if self.head == "shared":
            log_f, log_t = self._relative(self._basket(X), menu.face_values, menu.thresholds)
            return predict_logits(self.net_, (numeric, categorical, log_f, log_t))
        missing = [n for n in menu.names if n not in self.menu_.names]
        if missing:
            raise InputError(
                f"denomination {missing[0]!r} was not in training; per-denomination heads score "
                f"only {', '.join(self.menu_.names)} (use head='shared' for new denominations)"
            )
        cols = [self.menu_.index(n) for n in menu.names]
        return predict_logits(self.net_, (numeric, categorical))[:, cols]

    def predict_proba(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray:
        """Calibrated P(convert | coupon d), shape (n_users, n_denominations), float32.

        Monotone over the menu: at a fixed threshold a larger face value never lowers the
        probability, and at a fixed face value a higher threshold never raises it.
        """
        menu = self.menu_ if menu is None else menu
        p = self.calibrator_.transform(self.decision_function(X, menu))
        if self.head != "shared":
            p = enforce_menu_monotonicity(p, menu)
        return p.astype(np.float32)

    def _extra_state(self) -> dict[str, Any]:
        return {"menu": self.menu_.model_dump(mode="json"), "basket_median": self.basket_median_}

    def _load_extra(self, meta: dict[str, Any]) -> None:
        self.menu_ = Menu.model_validate(meta["menu"])
        self.basket_median_ = meta["basket_median"]


def load_model(path: str | Path) -> _ConversionModel:
    """Load whichever conversion model is saved in directory ``path``."""
    meta = _read_meta(path)
    from optimizer.joint import JointConversionModel

    classes = {
        c.__name__: c for c in (NaturalConversionModel, CouponConversionModel, JointConversionModel)
    }
    if meta["class"] not in classes:
        raise InputError(f"unknown model class {meta['class']!r}", source=path)
    return classes[meta["class"]]._restore(meta, Path(path))
