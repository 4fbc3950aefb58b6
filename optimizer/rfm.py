"""RFM scoring as operations teams do it: fixed business cut points, no model.

The score is chunk-independent (fixed bins, not population quantiles), so it can be computed
block by block on tables of any size and gives the same answer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RECENCY_BINS_DAYS", "FREQUENCY_BINS", "MONETARY_BINS", "rfm_score"]

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
