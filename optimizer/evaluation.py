"""Evaluate the two models on held-out randomized log rows.

Model quality: AUC, log-loss and calibration error of the natural model on the no-coupon arm and
of the coupon model on each coupon arm. Uplift quality per denomination: the treated rows of that
denomination against the no-coupon rows, ranked by the predicted uplift ``p_k - p_natural``:
Qini coefficient, AUUC and the observed uplift in the top 30%. And the article's threshold
analysis: the coverage curve and the precision-recall curve of the natural model, with the knee.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from optimizer.bundle import FEATURES, ConversionModels
from optimizer.errors import InputError
from optimizer.menu import NO_COUPON
from optimizer.metrics import (
    auc,
    auuc,
    coverage_curve,
    coverage_knee,
    expected_calibration_error,
    log_loss,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
)

__all__ = ["Evaluation", "evaluate_models", "UPLIFT_TOP_SHARE"]

#: Share of top-ranked users for ``uplift_at_k``.
UPLIFT_TOP_SHARE = 0.3
_CURVE_POINTS = 400


def _thin(*arrays: np.ndarray, points: int = _CURVE_POINTS) -> list[np.ndarray]:
    n = arrays[0].size
    if n <= points:
        return list(arrays)
    idx = np.unique(np.linspace(0, n - 1, points).round().astype(int))
    return [a[idx] for a in arrays]


@dataclass
class Evaluation:
    """Evaluation results: tables for printing, curves for plotting.

    Attributes
    ----------
    quality : DataFrame
        One row per model (``natural`` and ``coupon <name>``): rows, positive rate, AUC,
        log-loss, calibration error.
    uplift : DataFrame
        One row per denomination: treated and control rows, Qini coefficient, AUUC, observed
        uplift in the top 30% and overall.
    knee : dict
        ``share_taken``, ``coverage``, ``precision``, ``threshold`` at the natural model's knee.
    curves : dict
        ``coverage`` (share, coverage), ``pr`` (recall, precision), ``qini`` per denomination.
    """

    quality: pd.DataFrame
    uplift: pd.DataFrame
    knee: dict[str, float]
    curves: dict[str, object] = field(default_factory=dict)


def _quality_row(name: str, y: np.ndarray, p: np.ndarray) -> dict[str, object]:
    return {
        "model": name,
        "rows": int(y.size),
        "positive_rate": float(y.mean()) if y.size else float("nan"),
        "auc": auc(y, p),
        "log_loss": log_loss(y, p) if y.size else float("nan"),
        "calibration_error": expected_calibration_error(y, p),
    }


def evaluate_models(models: ConversionModels, rows: pd.DataFrame) -> Evaluation:
    """Evaluate ``models`` on held-out log rows joined with features.

    Parameters
    ----------
    models : ConversionModels
        Fitted models.
    rows : DataFrame
        Output of :func:`optimizer.logdata.training_rows` (features, ``denomination``,
        ``converted``), typically ``models.holdout_`` or rows of a later randomized campaign.
    """
    denom = rows["denomination"].astype(str).to_numpy()
    control = denom == NO_COUPON
    if not control.any():
        raise InputError("the evaluation rows have no no-coupon (control) arm")
    y = rows["converted"].to_numpy().astype(np.int64)
    features = rows[list(FEATURES)]
    menu = models.menu_
    p0 = models.predict_natural(features).astype(np.float64)
    pk = models.predict_coupon(features, menu).astype(np.float64)

    quality = [_quality_row("natural", y[control], p0[control])]
    uplift_rows = []
    curves: dict[str, object] = {"qini": {}}
    for k, name in enumerate(menu.names):
        treated = denom == name
        if not treated.any():
            continue
        quality.append(_quality_row(f"coupon {name}", y[treated], pk[treated, k]))
        sel = treated | control
        score = pk[sel, k] - p0[sel]
        t = treated[sel].astype(np.int64)
        uplift_rows.append(
            {
                "denomination": name,
                "treated_rows": int(treated.sum()),
                "control_rows": int(control.sum()),
                "qini": qini_coefficient(y[sel], score, t),
                "auuc": auuc(y[sel], score, t),
                "uplift_at_30": uplift_at_k(y[sel], score, t, UPLIFT_TOP_SHARE),
                "observed_uplift": float(y[treated].mean() - y[control].mean()),
                "predicted_uplift": float(score[t == 1].mean()),
            }
        )
        x, q = qini_curve(y[sel], score, t)
        x, q = _thin(x / max(x[-1], 1), q)
        curves["qini"][name] = (x, q)

    share, coverage, _ = coverage_curve(y[control], p0[control])
    curves["coverage"] = tuple(_thin(share, coverage))
    precision, recall, _ = precision_recall_curve(y[control], p0[control])
    curves["pr"] = tuple(_thin(recall[::-1], precision[::-1]))
    knee = coverage_knee(y[control], p0[control])
    return Evaluation(
        quality=pd.DataFrame(quality),
        uplift=pd.DataFrame(uplift_rows),
        knee=knee,
        curves=curves,
    )
