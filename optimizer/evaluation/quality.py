"""Evaluate conversion scores on held-out randomized log rows.

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

from optimizer.errors import InputError
from optimizer.evaluation.metrics import (
    auuc,
    classification_quality,
    coverage_curve,
    coverage_knee,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_calibration,
)
from optimizer.io.contract import coupon_column
from optimizer.io.menu import NO_COUPON, Menu

__all__ = ["Evaluation", "evaluate_scores", "UPLIFT_TOP_SHARE"]

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
        uplift in the top 30% and overall, and the calibration slope of observed on predicted
        uplift over five bins of the prediction with its standard error
        (:func:`~optimizer.evaluation.metrics.uplift_calibration`).
    knee : dict
        ``share_taken``, ``coverage``, ``precision``, ``threshold`` at the natural model's knee.
    curves : dict
        ``coverage`` (share, coverage), ``pr`` (recall, precision), ``qini`` per denomination.
    """

    quality: pd.DataFrame
    uplift: pd.DataFrame
    knee: dict[str, float]
    curves: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The tables and the knee as JSON-ready data (the curves are left out)."""
        return {
            "quality": self.quality.to_dict(orient="records"),
            "uplift": self.uplift.to_dict(orient="records"),
            "natural_knee": dict(self.knee),
        }


def evaluate_scores(rows: pd.DataFrame, scores: pd.DataFrame, menu: Menu) -> Evaluation:
    """Evaluate conversion scores against the outcomes of randomized log rows.

    Parameters
    ----------
    rows : DataFrame, shape (n, c)
        Log rows with ``denomination`` (a menu name or ``none``) and ``converted`` (0/1),
        typically the models' held-out rows (:func:`optimizer.io.campaign_log.training_rows`).
    scores : DataFrame, shape (n, 1 + k)
        The same rows' ``p_natural`` and ``p_coupon__<name>`` (a scores table, aligned row by
        row with ``rows``, e.g. :meth:`~optimizer.models.ConversionModels.predict` of them).
    menu : Menu
        The denominations to evaluate (those with no treated row are skipped).
    """
    if len(scores) != len(rows):
        raise InputError(f"{len(scores)} score rows for {len(rows)} log rows", key="scores")
    denom = rows["denomination"].astype(str).to_numpy()
    control = denom == NO_COUPON
    if not control.any():
        raise InputError("the evaluation rows have no no-coupon (control) arm")
    y = rows["converted"].to_numpy().astype(np.int64)
    p0 = scores["p_natural"].to_numpy(dtype=np.float64)
    pk = scores[[coupon_column(n) for n in menu.names]].to_numpy(dtype=np.float64)

    quality = [{"model": "natural", **classification_quality(y[control], p0[control])}]
    uplift_rows = []
    curves: dict[str, object] = {"qini": {}}
    for k, name in enumerate(menu.names):
        treated = denom == name
        if not treated.any():
            continue
        figures = classification_quality(y[treated], pk[treated, k])
        quality.append({"model": f"coupon {name}", **figures})
        sel = treated | control
        score = pk[sel, k] - p0[sel]
        t = treated[sel].astype(np.int64)
        slope = uplift_calibration(y[sel], score, t)
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
                "calibration_slope": slope["slope"],
                "calibration_slope_se": slope["slope_se"],
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
