"""Training rows from a campaign log: filter, join features, split by user.

The article insists on sample construction: train on the same lifecycle population that will
be targeted. :func:`training_rows` filters the log by assignment (randomized only, by default)
and by the lifecycle stage the user was in at campaign time, then joins the user features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.io.menu import NO_COUPON
from optimizer.segments import STAGES

__all__ = ["training_rows", "user_split", "id_hash", "select_log_rows", "is_coupon", "LOG_COLUMNS"]

#: Log columns carried into training rows besides the user features.
LOG_COLUMNS: tuple[str, ...] = ("campaign_id", "denomination", "converted", "redeemed")


def training_rows(
    log: pd.DataFrame,
    users: pd.DataFrame,
    *,
    segment: Sequence[str] | None = None,
    assignment: str | None = "randomized",
    source: str | Path = "log",
    segment_column: str = "lifecycle_stage",
) -> pd.DataFrame:
    """Log rows joined with user features.

    Parameters
    ----------
    log : DataFrame, shape (m, 9) or (m, 10)
        A validated campaign log (the synthetic contract's or a mapped one, which also carries
        ``propensity``).
    users : DataFrame, shape (n, c)
        A validated user table; every logged user must be in it.
    segment : sequence of str, optional
        Keep only rows whose ``segment_column`` label is one of these: the label at campaign
        time when the log has the column, else the user table's.
    assignment : str or None
        Keep only ``"randomized"`` (default) or ``"manual"`` rows; None keeps both.
    source : str or Path
        Name of the log in error messages.
    segment_column : str
        Column of the segment labels.

    Returns
    -------
    DataFrame, shape (m', c + 4)
        User features (the segment label taken from the log when it has one) plus
        ``campaign_id``, ``denomination`` (str), ``converted`` and ``redeemed`` (and
        ``propensity``, ``order_value`` and ``discount`` when the log has them).
    """
    rows = log
    if assignment is not None:
        rows = rows[rows["assignment"] == assignment]
    in_log = segment_column in log.columns
    if segment:
        if segment_column == "lifecycle_stage":
            unknown = [s for s in segment if s not in STAGES]
            if unknown:
                raise InputError(
                    f"unknown segment {unknown[0]!r}; expected some of {', '.join(STAGES)}",
                    key="segment",
                )
        if not in_log and segment_column not in users.columns:
            raise InputError(
                f"segment column {segment_column!r} is in neither the log nor the user table",
                key="segment_column",
            )
    extra = [c for c in ("propensity", "order_value", "discount") if c in log.columns]
    keep = ["user_id", *([segment_column] if in_log else []), *LOG_COLUMNS, *extra]
    features = users.drop(columns=[segment_column]) if in_log and segment_column in users else users
    joined = rows[keep].merge(features, on="user_id", how="left", indicator=True)
    missing = joined["_merge"].to_numpy() == "left_only"
    if missing.any():
        first = joined.loc[missing, "user_id"].iloc[0]
        raise InputError(
            f"{int(missing.sum())} logged users are not in the user table (first: user_id={first})",
            source=source,
            column="user_id",
        )
    joined = joined.drop(columns=["_merge"])
    if segment:
        labels = joined[segment_column].astype(str)
        unknown = sorted(set(segment) - set(labels.unique()))
        if unknown and segment_column != "lifecycle_stage":
            raise InputError(
                f"no log row has {segment_column} = {unknown[0]!r}", key="segment", source=source
            )
        joined = joined[labels.isin(list(segment)).to_numpy()]
    if joined.empty:
        what = f"assignment={assignment}" if assignment else "any assignment"
        seg = f", segment {', '.join(segment)}" if segment else ""
        raise InputError(f"no log rows with {what}{seg}", source=source)
    joined["denomination"] = joined["denomination"].astype(str)
    return joined.reset_index(drop=True)


def id_hash(user_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """A well-mixed 64-bit hash of each id (splitmix64's finaliser), shape (n,), uint64.

    The same id and seed always give the same hash: user splits and cross-fitting folds
    keep a customer's rows together and stay put from one run to the next.
    """
    with np.errstate(over="ignore"):  # wrapping arithmetic
        x = np.asarray(user_ids).astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def user_split(user_ids: np.ndarray, test_share: float, seed: int = 0) -> np.ndarray:
    """Deterministic train/test assignment by user id (the same user always lands the same way).

    Parameters
    ----------
    user_ids : ndarray of int, shape (n,)
    test_share : float
        Expected share of users in the test split, in [0, 1).
    seed : int
        Changes the split.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for test rows.
    """
    if not 0 <= test_share < 1:
        raise InputError("must be in [0, 1)", key="test_share")
    x = id_hash(user_ids, seed)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) < test_share


def select_log_rows(log: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``log`` whose (campaign_id, user_id) appear in ``rows``, in log order."""
    keys = pd.MultiIndex.from_frame(rows[["campaign_id", "user_id"]])
    mask = pd.MultiIndex.from_frame(log[["campaign_id", "user_id"]]).isin(keys)
    return log[mask].reset_index(drop=True)


def is_coupon(denomination: pd.Series) -> np.ndarray:
    """True where a coupon was sent (denomination is not ``none``), shape (n,)."""
    return (denomination.astype(str) != NO_COUPON).to_numpy()
