"""The article's coupon model: P(convert in the campaign window | coupon d, x) for a menu."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from optimizer.choices import HEADS
from optimizer.errors import InputError
from optimizer.io.menu import Menu
from optimizer.models.base import BaseConversionModel
from optimizer.models.features import basket_median, basket_values, log_relative
from optimizer.models.nets import LogitNet, MonotoneCouponNet
from optimizer.models.training import predict_logits
from optimizer.progress import Progress

__all__ = ["CouponConversionModel", "HEADS", "check_on_menu", "enforce_menu_monotonicity"]


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
    f, t, coupon = menu.face_values, menu.thresholds, menu.coupons
    dominates = (f[:, None] >= f[None, :]) & (t[:, None] <= t[None, :])  # [j, i]: j >= i
    # Only coupons are ordered by face value and threshold; messages stand alone.
    dominates &= (coupon[:, None] & coupon[None, :]) | np.eye(len(menu), dtype=bool)
    if dominates.sum() == len(menu):  # only the diagonal: nothing to enforce
        return p
    out = np.empty_like(p)
    for j in range(len(menu)):
        out[:, j] = p[:, dominates[j]].max(axis=1)
    return out


def check_on_menu(coupon: np.ndarray | Sequence[str], menu: Menu) -> np.ndarray:
    """``coupon`` as an object array, shape (n,), each a denomination of ``menu``.

    Raises
    ------
    InputError
        Naming the first denomination (in text order) that is not on the menu.
    """
    coupon = np.asarray(coupon, dtype=object)
    unknown = sorted(set(coupon.tolist()) - set(menu.names))
    if unknown:
        raise InputError(
            f"coupon {unknown[0]!r} is not on the menu ({', '.join(menu.names)})", key="coupon"
        )
    return coupon


class CouponConversionModel(BaseConversionModel):
    """P(convert in the campaign window | coupon d, x) for every denomination d of a menu.

    Trained on the coupon arms of a randomized log. With ``head="shared"`` (default) the coupon
    enters as its face value and threshold relative to the user's basket
    (``basket_column``), through a head that is monotone by construction
    (:class:`~optimizer.models.nets.MonotoneCouponNet`): any denomination, including one that was
    never sent, can be scored without retraining. With ``head="per_denomination"`` there is one
    logit per trained denomination and monotonicity over the menu is enforced after prediction
    by :func:`enforce_menu_monotonicity`.

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
        batch_size: int | None = None,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 6,
        validation_fraction: float = 0.2,
        calibration: str = "platt",
        random_state: int = 0,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        max_categories: int | None = None,
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
            max_categories=max_categories,
        )
        self.head = head
        self.n_basis = n_basis
        self.basket_column = basket_column

    def _basket(self, X: pd.DataFrame) -> np.ndarray:
        return basket_values(X, self.basket_column, self.basket_median_)

    def _relative(
        self, basket: np.ndarray, faces: np.ndarray, thresholds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log face value and log threshold relative to the basket, each shape (n, k)."""
        b = np.asarray(basket)[:, None]
        log_f = log_relative(np.asarray(faces)[None, :], b)
        log_t = log_relative(np.asarray(thresholds)[None, :], b)
        return log_f.astype(np.float32), log_t.astype(np.float32)

    _task = "coupon model"

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
            Receives a :class:`~optimizer.progress.Step` after every epoch.
        """
        self._check_params()
        if self.head not in HEADS:
            raise InputError(f"must be one of {', '.join(HEADS)}", key="head")
        coupon = check_on_menu(coupon, menu)
        self.menu_ = menu
        index = pd.Index(menu.names).get_indexer(coupon).astype(np.int64)
        y = np.asarray(y, dtype=np.float32)
        numeric, categorical = self._encode_fit(X)
        self.basket_median_ = basket_median(X, self.basket_column)
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
