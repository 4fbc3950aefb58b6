"""Lifecycle stages derived from recency (days since the last order)."""

from __future__ import annotations

import numpy as np

__all__ = ["STAGES", "STAGE_UPPER_DAYS", "stage_codes", "stage_names"]

#: Lifecycle stages, in order of growing recency.
STAGES: tuple[str, ...] = ("active", "cooling", "lapsed", "dormant")

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
