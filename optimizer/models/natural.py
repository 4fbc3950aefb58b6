"""The article's natural model: P(convert in the campaign window | no coupon, x)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from optimizer.models.base import BaseConversionModel
from optimizer.models.nets import LogitNet
from optimizer.models.training import predict_logits
from optimizer.progress import Progress

__all__ = ["NaturalConversionModel"]


class NaturalConversionModel(BaseConversionModel):
    """P(convert in the campaign window | no coupon, x): the article's natural model.

    Trained on the no-coupon (holdout) arm of a randomized log. Parameters are keyword-only.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths of the shallow network.
    dropout : float
        Dropout rate.
    max_epochs, batch_size, learning_rate, weight_decay : training settings
        Adam on binary cross-entropy. ``batch_size=None`` (default) sizes the batch to the
        training rows (:func:`~optimizer.models.training.auto_batch`: 1,024 below 100,000 rows,
        doubled per doubling of the rows, at most 16,384) and scales the learning rate by the
        square root of the batch's growth.
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

    _task = "natural model"

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
