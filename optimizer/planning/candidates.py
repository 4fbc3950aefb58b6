"""Candidates: the scored users a campaign may send coupons to, and their optimisation problem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.io.contract import coupon_column, redeem_column
from optimizer.io.menu import Menu
from optimizer.solvers.problem import CampaignProblem, Objective, build_problem

__all__ = ["Candidates", "select_candidates", "campaign_problem", "redemption_matrix"]


@dataclass
class Candidates:
    """The users of one campaign, aligned row by row.

    Attributes
    ----------
    scores : DataFrame, shape (n, 2 + k) or (n, 2 + 2k)
        ``user_id``, ``p_natural``, ``p_coupon__<name>`` in menu order, and the optional
        ``p_redeem__<name>`` of a redemption model.
    users : DataFrame, shape (n, c)
        The same users' rows of the user table (features for the manual ranking, baskets,
        segment labels).
    menu : Menu
    excluded : ndarray of bool, shape (n,), optional
        Users who must get nothing (opted out); they stay in every plan with no coupon.
    """

    scores: pd.DataFrame
    users: pd.DataFrame
    menu: Menu
    excluded: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def subset(self, rows: np.ndarray) -> Candidates:
        """The candidates at positions ``rows`` (int array, shape (m,)), in that order."""
        return Candidates(
            scores=self.scores.iloc[rows].reset_index(drop=True),
            users=self.users.iloc[rows].reset_index(drop=True),
            menu=self.menu,
            excluded=None if self.excluded is None else self.excluded[rows],
        )


def select_candidates(
    scores: pd.DataFrame,
    users: pd.DataFrame,
    menu: Menu,
    *,
    column: str = "lifecycle_stage",
    segments: Sequence[str] | None = None,
    exclude: np.ndarray | None = None,
) -> Candidates:
    """Join scores with user rows; keep the targeted segments; mark excluded ids.

    Parameters
    ----------
    scores : DataFrame
        A scores table (``user_id``, ``p_natural``, ``p_coupon__<name>``...).
    users : DataFrame
        The user table; every scored user must be in it.
    menu : Menu
    column : str
        User-table column of the segment labels ``segments`` refers to.
    segments : sequence of str, optional
        Keep only users whose label is one of these; None or empty keeps every scored user.
    exclude : ndarray of int64, optional
        User ids who must get nothing.

    Raises
    ------
    InputError
        The scores lack a denomination of ``menu``, a scored user is missing from the user
        table, the segment column is missing, or a targeted label never occurs in it.
    """
    missing_columns = [
        c for c in ("user_id", "p_natural", *map(coupon_column, menu.names)) if c not in scores
    ]
    if missing_columns:
        raise InputError(
            f"no column {missing_columns[0]}: the scores were made for another menu",
            key="scores",
        )
    merged = scores.merge(users, on="user_id", how="left", indicator=True, validate="one_to_one")
    missing = merged["_merge"].to_numpy() == "left_only"
    if missing.any():
        first = merged.loc[missing, "user_id"].iloc[0]
        raise InputError(
            f"{int(missing.sum())} scored users are not in the user table (first: {first})",
            key="users",
        )
    keep = np.ones(len(merged), dtype=bool)
    if segments:
        if column not in merged.columns:
            raise InputError(
                f"segment column {column!r} is not in the user table", key="targeting.column"
            )
        labels = merged[column].astype(str)
        unknown = sorted(set(segments) - set(labels.unique()))
        if unknown:
            raise InputError(
                f"no scored user has {column} = {unknown[0]!r}", key="targeting.segments"
            )
        keep &= labels.isin(list(segments)).to_numpy()
    merged = merged[keep].reset_index(drop=True)
    excluded = None
    if exclude is not None:
        excluded = merged["user_id"].isin(exclude).to_numpy()
    score_cols = ["user_id", "p_natural", *(coupon_column(n) for n in menu.names)]
    redeem_cols = [redeem_column(n) for n in menu.names]
    if all(c in scores.columns for c in redeem_cols):
        score_cols += redeem_cols
    return Candidates(
        scores=merged[score_cols],
        users=merged[list(users.columns)],
        menu=menu,
        excluded=excluded,
    )


def redemption_matrix(scores: pd.DataFrame, menu: Menu) -> np.ndarray | None:
    """The scores' ``p_redeem__<name>`` columns as an (n, k) float32 matrix, or None."""
    cols = [redeem_column(n) for n in menu.names]
    if not all(c in scores.columns for c in cols):
        return None
    return scores[cols].to_numpy(dtype=np.float32)


def _segment_labels(users: pd.DataFrame, column: str) -> np.ndarray | None:
    """Segment label per candidate (text), from a column of the user table (None without it)."""
    if column not in users.columns:
        return None
    labels = users[column]
    return labels.astype(str).where(labels.notna(), "missing").to_numpy()


def campaign_problem(
    candidates: Candidates,
    *,
    objective: Objective | str = Objective.CONVERSIONS,
    sms_cost: float = 0.05,
    margin_rate: float = 0.3,
    segment_column: str = "lifecycle_stage",
    basket_column: str | None = "avg_order_value",
    order_value: float | None = None,
) -> CampaignProblem:
    """The optimisation problem of ``candidates``.

    Values, costs (priced with the redemption model when the scores carry it), baskets
    (the ``basket_column`` of the user table; ``order_value`` money per order where it is
    missing or when there is no such column), exclusions and the segment labels of
    ``segment_column``.
    """
    menu = candidates.menu
    scores = candidates.scores
    users = candidates.users
    basket = None
    if basket_column is not None and basket_column in users.columns:
        basket = users[basket_column].to_numpy(dtype=np.float64, na_value=np.nan)
        if order_value is not None:
            basket = np.where(np.isfinite(basket), basket, order_value)
    elif order_value is not None:
        basket = np.full(len(users), float(order_value))
    return build_problem(
        scores["user_id"].to_numpy(),
        scores["p_natural"].to_numpy(),
        scores[[coupon_column(n) for n in menu.names]].to_numpy(),
        menu,
        objective=objective,
        sms_cost=sms_cost,
        margin_rate=margin_rate,
        basket=basket,
        excluded=candidates.excluded,
        segment=_segment_labels(users, segment_column),
        redeem=redemption_matrix(scores, menu),
    )
