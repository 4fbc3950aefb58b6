"""Model and uplift metrics as plain functions of arrays.

Conventions follow scikit-uplift: ``(y_true, uplift, treatment)`` with ``y_true`` the 0/1
outcome, ``uplift`` the score to rank by (higher first) and ``treatment`` 1 for treated rows,
0 for control rows; curves are evaluated at every cut-off of the ranking.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss as _sk_log_loss
from sklearn.metrics import roc_auc_score

__all__ = [
    "classification_quality",
    "auc",
    "log_loss",
    "expected_calibration_error",
    "uplift_curve",
    "qini_curve",
    "perfect_uplift_curve",
    "perfect_qini_curve",
    "auuc",
    "qini_coefficient",
    "uplift_at_k",
    "uplift_calibration",
    "true_uplift_at_k",
    "coverage_curve",
    "coverage_knee",
    "psi",
]


def _arrays(*arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a) for a in arrays]
    n = out[0].shape[0]
    if any(a.shape[0] != n for a in out):
        raise ValueError("arrays must have the same length")
    return out


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present.

    Parameters
    ----------
    y_true : ndarray of {0, 1}, shape (n,)
    score : ndarray, shape (n,)
        Higher means more likely positive.
    """
    y_true, score = _arrays(y_true, score)
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(roc_auc_score(y_true, score))


def log_loss(y_true: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (nats per row)."""
    y_true, p = _arrays(y_true, p)
    return float(_sk_log_loss(y_true, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def expected_calibration_error(y_true: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of ``p``.

    ``sum_b (n_b / n) * |mean(y_b) - mean(p_b)|``, in probability units. Equal-count bins suit
    rare outcomes, where equal-width bins would put nearly every row in the first bin.
    """
    y_true, p = _arrays(y_true, p)
    if y_true.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, y_true.size))
    gaps = [abs(y_true[b].mean() - p[b].mean()) * b.size for b in bins if b.size]
    return float(np.sum(gaps) / y_true.size)


def classification_quality(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The quality figures of probabilities ``p`` for 0/1 outcomes ``y_true``.

    Returns
    -------
    dict
        ``rows``, ``positive_rate`` (share of 1s), ``auc``, ``log_loss`` (nats per row) and
        ``calibration_error`` (:func:`expected_calibration_error`); NaN where undefined (no
        rows, or one class only for the AUC).
    """
    y_true, p = _arrays(y_true, p)
    empty = y_true.size == 0
    return {
        "rows": int(y_true.size),
        "positive_rate": float("nan") if empty else float(np.mean(y_true)),
        "auc": auc(y_true, p),
        "log_loss": float("nan") if empty else log_loss(y_true, p),
        "calibration_error": expected_calibration_error(y_true, p),
    }


def _cumulative(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray):
    y_true, uplift, treatment = _arrays(y_true, uplift, treatment)
    order = np.argsort(-uplift, kind="stable")
    y = y_true[order].astype(np.float64)
    t = treatment[order].astype(np.float64)
    # Evaluate only where the score changes, so tied scores count as one block.
    s = uplift[order]
    last_of_tie = np.append(np.flatnonzero(np.diff(s) != 0), s.size - 1)
    n_t = np.cumsum(t)[last_of_tie]
    n_c = np.cumsum(1 - t)[last_of_tie]
    y_t = np.cumsum(y * t)[last_of_tie]
    y_c = np.cumsum(y * (1 - t))[last_of_tie]
    n = last_of_tie + 1.0
    return n, n_t, n_c, y_t, y_c


def uplift_curve(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: ``(rate_t - rate_c) * n`` over the top-``n`` users, starting at (0, 0).

    Returns
    -------
    x : ndarray, shape (m + 1,)
        Number of users taken.
    y : ndarray, shape (m + 1,)
        Estimated incremental outcomes among them.
    """
    n, n_t, n_c, y_t, y_c = _cumulative(y_true, uplift, treatment)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.nan_to_num(y_t / n_t) - np.nan_to_num(y_c / n_c)
    return np.append(0.0, n), np.append(0.0, gain * n)


def qini_curve(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: ``y_t - y_c * n_t / n_c`` over the top-``n`` users, starting at (0, 0)."""
    n, n_t, n_c, y_t, y_c = _cumulative(y_true, uplift, treatment)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = y_t - np.nan_to_num(y_c * n_t / n_c)
    return np.append(0.0, n), np.append(0.0, q)


def perfect_uplift_curve(y_true, treatment) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve of the reference "perfect" ranking (scikit-uplift's).

    Treated responders and control non-responders first, then the others, with the tie-break
    that fits the counts. It is the usual normaliser of the AUUC, not always the largest
    area: the curve's rates are ratios over the prefix, and on small or unbalanced sets some
    other order can score higher (a brute force finds cases of 7 users), so a normalised AUUC
    above 1 is possible there.
    """
    y_true, treatment = _arrays(y_true, treatment)
    control_responders = np.sum((y_true == 1) & (treatment == 0))
    treated_nonresponders = np.sum((y_true == 0) & (treatment == 1))
    tiebreak = y_true if control_responders > treated_nonresponders else treatment
    score = 2.0 * (y_true == treatment) + tiebreak
    return uplift_curve(y_true, score, treatment)


def perfect_qini_curve(y_true, treatment) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve of the reference "perfect" ranking: treated responders first, control ones last.

    The usual normaliser of the Qini coefficient (scikit-uplift's); as with
    :func:`perfect_uplift_curve`, not always the largest area on small unbalanced sets.
    """
    y_true, treatment = _arrays(y_true, treatment)
    score = y_true * treatment - y_true * (1 - treatment)
    return qini_curve(y_true, score.astype(np.float64), treatment)


def _normalised_area(curve, perfect) -> float:
    x, y = curve
    xp, yp = perfect
    random_area = 0.5 * x[-1] * y[-1]
    model = np.trapezoid(y, x) - random_area
    best = np.trapezoid(yp, xp) - random_area
    if best == 0:
        return float("nan")
    return float(model / best)


def auuc(y_true, uplift, treatment) -> float:
    """Area under the uplift curve, normalised: 0 for random ranking, 1 for the perfect one."""
    return _normalised_area(
        uplift_curve(y_true, uplift, treatment), perfect_uplift_curve(y_true, treatment)
    )


def qini_coefficient(y_true, uplift, treatment) -> float:
    """Area under the Qini curve, normalised: 0 for random ranking, 1 for the perfect one."""
    return _normalised_area(
        qini_curve(y_true, uplift, treatment), perfect_qini_curve(y_true, treatment)
    )


def uplift_at_k(y_true, uplift, treatment, k: float = 0.3) -> float:
    """Observed uplift (treated rate - control rate) among the top ``k`` share by ``uplift``."""
    y_true, uplift, treatment = _arrays(y_true, uplift, treatment)
    if not 0 < k <= 1:
        raise ValueError("k must be in (0, 1]")
    top = np.argsort(-uplift, kind="stable")[: max(1, int(round(k * y_true.size)))]
    y, t = y_true[top], treatment[top]
    if t.sum() == 0 or (1 - t).sum() == 0:
        return float("nan")
    return float(y[t == 1].mean() - y[t == 0].mean())


def uplift_calibration(y_true, uplift, treatment, bins: int = 5) -> dict[str, object]:
    """Observed against predicted uplift by equal-count bins of the prediction.

    Rows are cut into ``bins`` equal-count bins of ``uplift``; per bin the observed uplift is
    the treated rate minus the control rate, with its binomial standard error (from the rates
    smoothed to ``(x + 0.5) / (n + 1)``, so a bin with no conversion is not exact). The slope is the
    weighted least-squares fit of observed on predicted uplift across the bins (weights 1 /
    se^2): 1 when predicted uplift is right on average by bin, above 1 when it is compressed
    (the extremes are more extreme than predicted), below 1 when it is spread too wide.

    Parameters
    ----------
    y_true, treatment : ndarray of {0, 1}, shape (n,)
    uplift : ndarray, shape (n,)
        Predicted uplift (probability).
    bins : int

    Returns
    -------
    dict
        ``slope``, ``slope_se`` (NaN when fewer than two bins have both arms), and ``bins``:
        a list of dicts with ``rows``, ``predicted``, ``observed`` and ``se`` per bin, from the
        lowest predicted uplift to the highest.
    """
    y_true, uplift, treatment = _arrays(y_true, uplift, treatment)
    order = np.argsort(uplift, kind="stable")
    table = []
    parts = np.array_split(order, bins)
    for part in parts:
        y, t = y_true[part].astype(np.float64), treatment[part]
        n1, n0 = int(t.sum()), int((1 - t).sum())
        row = {"rows": int(part.size), "predicted": float(np.mean(uplift[part]))}
        if n1 and n0:
            x1, x0 = y[t == 1].sum(), y[t == 0].sum()
            # The standard error from smoothed rates (x + 0.5) / (n + 1): a bin with no
            # conversion (or all) is uncertain, not exact, and must not take all the weight.
            s1, s0 = (x1 + 0.5) / (n1 + 1), (x0 + 0.5) / (n0 + 1)
            se = float(np.sqrt(s1 * (1 - s1) / n1 + s0 * (1 - s0) / n0))
            row |= {"observed": float(x1 / n1 - x0 / n0), "se": se}
        else:
            row |= {"observed": float("nan"), "se": float("nan")}
        table.append(row)
    x = np.array([r["predicted"] for r in table])
    obs = np.array([r["observed"] for r in table])
    se = np.array([r["se"] for r in table])
    ok = np.isfinite(obs) & np.isfinite(se)
    w = np.where(ok, 1.0 / np.maximum(se, 1e-9) ** 2, 0.0)
    slope = slope_se = float("nan")
    if ok.sum() >= 2:
        xm = np.sum(w * x) / w.sum()
        ym = np.sum(w * np.where(ok, obs, 0.0)) / w.sum()
        sxx = float(np.sum(w * (x - xm) ** 2))
        # One predicted uplift for every row of the bins that count leaves the slope undefined
        # (their means may still differ by rounding: sxx ~ 1e-34, a meaningless slope).
        counted = uplift[np.concatenate([part for part, o in zip(parts, ok, strict=True) if o])]
        if sxx > 0 and np.ptp(counted) > 0:
            slope = float(np.sum(w * (x - xm) * (np.where(ok, obs, 0.0) - ym)) / sxx)
            slope_se = float(1.0 / np.sqrt(sxx))
    return {"slope": slope, "slope_se": slope_se, "bins": table}


def true_uplift_at_k(true_uplift: np.ndarray, score: np.ndarray, k: float = 0.2) -> float:
    """Sum of the *true* uplift of the top ``k`` share of users ranked by ``score``.

    For synthetic data whose truth is known: the incremental conversions a ranking captures.
    """
    true_uplift, score = _arrays(true_uplift, score)
    top = np.argsort(-score, kind="stable")[: max(1, int(round(k * true_uplift.size)))]
    return float(true_uplift[top].sum())


def coverage_curve(y_true: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The article's coverage curve of a natural-conversion model.

    Users are taken in descending predicted probability; coverage is the share of all actual
    converters among those taken.

    Returns
    -------
    share_taken : ndarray, shape (n,)
        Share of users taken, (i + 1) / n.
    coverage : ndarray, shape (n,)
        Share of actual converters covered.
    threshold : ndarray, shape (n,)
        The probability of the last user taken.
    """
    y_true, p = _arrays(y_true, p)
    order = np.argsort(-p, kind="stable")
    y = y_true[order].astype(np.float64)
    total = max(y.sum(), 1.0)
    share = np.arange(1, y.size + 1) / y.size
    return share, np.cumsum(y) / total, p[order]


def coverage_knee(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The knee of the coverage curve: where coverage most exceeds the share taken.

    That is the cut-off past which each extra user taken adds fewer converters than average
    (the Kolmogorov-Smirnov point of the gains chart); the article read its natural-probability
    threshold off this bend of its coverage and precision-recall curves.

    Returns
    -------
    dict
        ``share_taken``, ``coverage`` (recall), ``precision`` and ``threshold`` (probability)
        at the knee.
    """
    share, coverage, threshold = coverage_curve(y_true, p)
    i = int(np.argmax(coverage - share))
    converters = coverage[i] * max(float(np.sum(y_true)), 1.0)
    return {
        "share_taken": float(share[i]),
        "coverage": float(coverage[i]),
        "precision": float(converters / (i + 1)),
        "threshold": float(threshold[i]),
    }


def psi(reference_share: np.ndarray, counts: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of ``counts`` against a reference distribution.

    ``sum (a - e) * ln(a / e)`` over bins, with shares floored at ``eps``. Rules of thumb:
    < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
    """
    e = np.maximum(np.asarray(reference_share, dtype=np.float64), eps)
    counts = np.asarray(counts, dtype=np.float64)
    a = np.maximum(counts / max(counts.sum(), 1.0), eps)
    return float(np.sum((a - e) * np.log(a / e)))
