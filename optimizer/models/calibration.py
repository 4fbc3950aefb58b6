"""Probability calibration fitted on held-out logits: Platt (temperature and shift) or isotonic.

Both maps are non-decreasing, so they keep every ranking and every monotonicity of the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from optimizer.choices import CALIBRATIONS

__all__ = ["Calibrator", "CALIBRATIONS"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


class Calibrator(BaseEstimator):
    """Map logits to calibrated probabilities.

    Parameters
    ----------
    method : {"platt", "isotonic", "none"}
        ``platt``: ``sigmoid(a * z + b)`` with ``a > 0`` fitted by maximum likelihood (a
        temperature ``1/a`` and a shift); ``isotonic``: a non-decreasing step map of
        ``sigmoid(z)``; ``none``: ``sigmoid(z)``.
    """

    def __init__(self, method: str = "platt") -> None:
        self.method = method

    def fit(self, logits: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on validation ``logits`` (n,) and 0/1 outcomes ``y`` (n,)."""
        if self.method not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}")
        logits = np.asarray(logits, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.a_, self.b_ = 1.0, 0.0
        self.x_, self.y_ = [], []
        if self.method == "platt" and 0 < y.sum() < y.size:
            z = torch.as_tensor(logits)
            t = torch.as_tensor(y)
            log_a = torch.zeros((), dtype=torch.float64, requires_grad=True)
            b = torch.zeros((), dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS([log_a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    torch.exp(log_a) * z + b, t
                )
                loss.backward()
                return loss

            opt.step(closure)
            self.a_, self.b_ = float(torch.exp(log_a).detach()), float(b.detach())
        elif self.method == "isotonic" and y.size:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(_sigmoid(logits), y)
            self.x_ = iso.X_thresholds_.tolist()
            self.y_ = iso.y_thresholds_.tolist()
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, same shape as ``logits``."""
        logits = np.asarray(logits, dtype=np.float64)
        if self.method == "isotonic" and self.x_:
            return np.interp(_sigmoid(logits), self.x_, self.y_)
        return _sigmoid(self.a_ * logits + self.b_)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"method": self.method, "a": self.a_, "b": self.b_, "x": self.x_, "y": self.y_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild from :meth:`to_dict` output."""
        cal = cls(data["method"])
        cal.a_, cal.b_, cal.x_, cal.y_ = data["a"], data["b"], data["x"], data["y"]
        return cal
