"""One shared-trunk network for natural and coupon conversion (the alternative to two models).

:class:`SharedTrunkModel` is trained on every randomized row at once, the no-coupon arm and
the coupon arms, with a treatment input (:class:`optimizer.models.nets.SharedTrunkNet`). It
answers both questions of the article's two models: ``predict_natural`` and ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from optimizer.errors import InputError
from optimizer.evaluation.metrics import classification_quality
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.models.calibration import Calibrator
from optimizer.models.coupon import CouponConversionModel
from optimizer.models.features import basket_median
from optimizer.models.nets import SharedTrunkArmNet, SharedTrunkNet
from optimizer.models.training import predict_logits
from optimizer.progress import Progress

__all__ = ["SharedTrunkModel"]


class SharedTrunkModel(CouponConversionModel):
    """P(convert | no coupon, x) and P(convert | coupon d, x) from one network.

    Parameters are those of :class:`~optimizer.models.coupon.CouponConversionModel`. With
    ``head="shared"`` (default) the treatment effect is a message term plus the monotone coupon
    term of face value and threshold (:class:`~optimizer.models.nets.SharedTrunkNet`); with
    ``head="per_denomination"`` each treatment has its own effect
    (:class:`~optimizer.models.nets.SharedTrunkArmNet`), which menus with messages need.

    Attributes
    ----------
    calibrator_ : Calibrator
        Calibration of both outputs, fitted on every validation row (one map, so the uplift
        ``p_k - p0`` is the network's, not the difference of two noisy level fits).
    natural_calibrator_ : Calibrator
        The same map (kept as its own attribute for the saved-model format).
    natural_metrics_, validation_metrics_ : dict
        Validation quality of the natural and the coupon outputs.
    """

    _task = "shared-trunk model"

    def fit(
        self,
        X: pd.DataFrame,
        coupon: np.ndarray | Sequence[str],
        y: np.ndarray,
        *,
        menu: Menu,
        progress: Progress | None = None,
    ) -> SharedTrunkModel:
        """Fit on randomized rows of every arm.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Features.
        coupon : array of str, shape (n,)
            The denomination each user was sent, or ``"none"``.
        y : ndarray of {0, 1}, shape (n,)
            Conversions in the window.
        menu : Menu
            Face values and thresholds of the denominations.
        """
        self._check_params()
        if self.head == "shared" and not menu.all_coupons:
            raise InputError(
                "a menu with messages needs head='per_denomination' (a message has no face "
                "value or threshold)",
                key="head",
            )
        coupon = np.asarray(coupon, dtype=object)
        unknown = sorted(set(coupon.tolist()) - {*menu.names, NO_COUPON})
        if unknown:
            raise InputError(f"{unknown[0]!r} is not on the menu", key="coupon")
        treated = coupon != NO_COUPON
        if treated.all() or not treated.any():
            raise InputError("the shared-trunk model needs no-coupon rows and coupon rows")
        self.menu_ = menu
        y = np.asarray(y, dtype=np.float32)
        numeric, categorical = self._encode_fit(X)
        self.basket_median_ = basket_median(X, self.basket_column)
        index = np.maximum(pd.Index(menu.names).get_indexer(coupon), 0)
        self.net_ = self._seeded_net()
        if self.head == "shared":
            log_b = np.log(self._basket(X))
            log_f = np.where(treated, np.log(menu.face_values[index]) - log_b, 0.0)
            log_t = np.where(treated, np.log(menu.thresholds[index]) - log_b, 0.0)
            inputs = (
                numeric,
                categorical,
                log_f[:, None].astype(np.float32),
                log_t[:, None].astype(np.float32),
                treated.astype(np.float32),
            )

            def forward(num, cat, lf, lt, tr):
                return self.net_(num, cat, lf, lt, tr)[:, 0]

        else:
            inputs = (numeric, categorical, index.astype(np.int64), treated.astype(np.float32))

            def forward(num, cat, arm, tr):
                return self.net_(num, cat, arm, tr)[:, 0]

        val_idx = self._train(forward, inputs, y, progress)
        logits = predict_logits(forward, inputs).reshape(-1)
        rows = val_idx if val_idx.size else np.arange(y.size)
        # One calibration map for both outputs, fitted on every validation row: the network
        # learned the gap between the arms from all training rows, and separate maps fitted on
        # the few validation rows of each arm would shift the two levels independently (the
        # no-coupon arm is a fifth of the rows), which is noise in every uplift p_k - p0.
        self.calibrator_ = Calibrator(self.calibration).fit(logits[rows], y[rows])
        self.natural_calibrator_ = self.calibrator_
        control, coupon_rows = rows[~treated[rows]], rows[treated[rows]]
        for name, part in (("validation_metrics_", coupon_rows), ("natural_metrics_", control)):
            raw = 1.0 / (1.0 + np.exp(-logits[part]))
            setattr(
                self,
                name,
                {
                    "before_calibration": classification_quality(y[part], raw),
                    "after_calibration": classification_quality(
                        y[part], self.calibrator_.transform(logits[part])
                    ),
                },
            )
        return self

    def _build_net(self) -> torch.nn.Module:
        if self.head == "shared":
            return SharedTrunkNet(self._trunk(), self.n_basis)
        return SharedTrunkArmNet(self._trunk(), len(self.menu_))

    def predict_natural(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(convert | no coupon), shape (n,), float32."""
        numeric, categorical = self.encoder_.transform(X)
        net = self.net_

        def natural(num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
            # Untreated rows' logit is the base alone (both heads): no coupon terms to compute.
            return net.base(net.trunk(num, cat))

        logits = predict_logits(natural, (numeric, categorical))[:, 0]
        return self.natural_calibrator_.transform(logits).astype(np.float32)

    def _extra_state(self) -> dict[str, Any]:
        return super()._extra_state() | {
            "natural_calibrator": self.natural_calibrator_.to_dict(),
            "natural_metrics": self.natural_metrics_,
        }

    def _load_extra(self, meta: dict[str, Any]) -> None:
        super()._load_extra(meta)
        self.natural_calibrator_ = Calibrator.from_dict(meta["natural_calibrator"])
        self.natural_metrics_ = meta["natural_metrics"]
