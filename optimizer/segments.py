"""Customer segments from behaviour: lifecycle stages by recency, and operations' RFM score.

Both are fixed business rules, not models: lifecycle stages cut recency (days since the last
order) at fixed days; the RFM score adds fixed-bin recency, frequency and monetary parts. Both
are chunk-independent (fixed cut points, not population quantiles), so they can be computed
block by block on tables of any size and give the same answer.
"""

from __future__ import annotations

import numpy as np

from optimizer.choices import STAGES

__all__ = [
    "STAGES",
    "STAGE_UPPER_DAYS",
    "stage_codes",
    "stage_names",
    "RECENCY_BINS_DAYS",
    "FREQUENCY_BINS",
    "MONETARY_BINS",
    "rfm_score",
]

#: Inclusive upper bound of each stage in days since the last order; dormant is unbounded.
STAGE_UPPER_DAYS: tuple[int, ...] = (30, 90, 180)


def stage_codes(days_since_last_order: np.ndarray) -> np.ndarray:
    """Index into :data:`STAGES` for each user.

    Parameters
    ----------
    days_since_last_order : ndarray, shape (n,)
        Recency in days (integers >= 0).

    Returns
    -------
    ndarray of int8, shape (n,)
        0 active (<= 30 days), 1 cooling (31-90), 2 lapsed (91-180), 3 dormant (> 180).
    """
    days = np.asarray(days_since_last_order)
    return np.searchsorted(np.asarray(STAGE_UPPER_DAYS), days, side="left").astype(np.int8)


def stage_names(days_since_last_order: np.ndarray) -> np.ndarray:
    """Stage name for each user, shape (n,), as an object array of str."""
    return np.asarray(STAGES, dtype=object)[stage_codes(days_since_last_order)]


#: Recency cut points, days since the last order: <= 30 scores 5, <= 90 4, <= 180 3, <= 365 2.
RECENCY_BINS_DAYS: tuple[int, ...] = (30, 90, 180, 365)
#: Frequency cut points, orders in the last 365 days: >= 10 scores 5, >= 5 4, >= 3 3, >= 1 2.
FREQUENCY_BINS: tuple[int, ...] = (1, 3, 5, 10)
#: Monetary cut points, average order value (money): >= 300 scores 5, >= 180 4, >= 110 3, >= 60 2.
MONETARY_BINS: tuple[float, ...] = (60.0, 110.0, 180.0, 300.0)


def rfm_score(
    days_since_last_order: np.ndarray,
    orders_365d: np.ndarray,
    avg_order_value: np.ndarray,
) -> np.ndarray:
    """Recency + frequency + monetary score, each part 1-5, total 3-15.

    Parameters
    ----------
    days_since_last_order : ndarray, shape (n,)
        Recency in days.
    orders_365d : ndarray, shape (n,)
        Orders in the last 365 days.
    avg_order_value : ndarray, shape (n,)
        Average order value in currency units; NaN scores 1.

    Returns
    -------
    ndarray of int8, shape (n,)
        The RFM score, higher is a more valuable customer.
    """
    r = 5 - np.searchsorted(np.asarray(RECENCY_BINS_DAYS), days_since_last_order, side="left")
    f = 1 + np.searchsorted(np.asarray(FREQUENCY_BINS), orders_365d, side="right")
    aov = np.nan_to_num(np.asarray(avg_order_value, dtype=np.float64), nan=0.0)
    m = 1 + np.searchsorted(np.asarray(MONETARY_BINS), aov, side="right")
    return (r + f + m).astype(np.int8)
