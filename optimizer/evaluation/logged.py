"""A randomized campaign log as arrays: what each row got, how likely it was, what it returned.

Offline evaluation values a plan with the rows of a randomized log only: each row's arm was drawn
with a known probability (its *propensity*), so reweighting the rows whose arm is the one the
plan would have chosen gives an unbiased estimate of what the plan would have returned.

Realised outcomes per row (money in the campaign's currency):

* ``converted``: 1 if the customer ordered in the window;
* ``gmv``: the order's value before discount when the log has order values, else the arm's
  ``conversion_value``, else the customer's basket, else the configuration's ``order_value``
  (0 without an order);
* ``cost``: what the row cost the campaign: the arm's send cost (the menu's ``send_cost``, else
  ``sms_cost``), the face value paid on redemption and the arm's cost per conversion (0 for the
  no-coupon arm).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.io.menu import NO_COUPON, Menu

__all__ = ["LoggedRows", "logged_rows", "plan_actions"]


@dataclass(frozen=True)
class LoggedRows:
    """Randomized log rows ready for offline evaluation.

    Attributes
    ----------
    arms : tuple of str
        The menu's treatments in order, then ``none``; arm indexes point into it.
    user_id : ndarray of int64, shape (m,)
    arm : ndarray of int16, shape (m,)
        Index in ``arms`` of the treatment the row received.
    propensity : ndarray of float64, shape (m,)
        P(the row's arm | the row), in (0, 1].
    converted : ndarray of float64, shape (m,)
        1 if the customer ordered in the window.
    gmv, cost : ndarray of float64, shape (m,)
        Realised GMV and campaign cost of the row (money).
    arm_propensity : ndarray of float64, shape (m, len(arms)), optional
        P(each arm | the row), when the design says it (constant or per-row propensities);
        None when the log only gives the received arm's.
    """

    arms: tuple[str, ...]
    user_id: np.ndarray
    arm: np.ndarray
    propensity: np.ndarray
    converted: np.ndarray
    gmv: np.ndarray
    cost: np.ndarray
    arm_propensity: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.arm.size)

    @property
    def none(self) -> int:
        """Index of the no-treatment arm."""
        return len(self.arms) - 1

    def subset(self, mask: np.ndarray) -> LoggedRows:
        """The rows where ``mask`` (bool, shape (m,)) is True, or at the indexes it lists."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                changes[f.name] = value[mask]
        return replace(self, **changes)

    def arm_counts(self) -> dict[str, int]:
        """Rows per arm."""
        counts = np.bincount(self.arm, minlength=len(self.arms))
        return {name: int(c) for name, c in zip(self.arms, counts, strict=True)}


def _money_per_conversion(
    log: pd.DataFrame,
    menu: Menu,
    arm: np.ndarray,
    basket: np.ndarray | None,
    order_value: float | None,
    source: str | Path,
) -> np.ndarray:
    """GMV of each row's order if it converted (money), shape (m,)."""
    m = len(log)
    value = np.full(m, np.nan)
    if "order_value" in log.columns:
        logged = log["order_value"].to_numpy(dtype=np.float64, na_value=np.nan)
        value = np.where(np.isfinite(logged), logged, np.nan)
    worth = np.append(menu.conversion_values, np.nan)[arm]
    value = np.where(np.isnan(value), worth, value)
    if basket is not None:
        value = np.where(np.isnan(value), np.asarray(basket, dtype=np.float64), value)
    if order_value is not None:
        value = np.where(np.isnan(value), float(order_value), value)
    converted = log["converted"].to_numpy() == 1
    unknown = converted & np.isnan(value)
    if unknown.any():
        raise InputError(
            f"{int(unknown.sum())} converted rows have no order value, basket or "
            "conversion_value; set costs.order_value (money per order)",
            source=source,
            key="costs.order_value",
        )
    return np.where(converted, value, 0.0)


#: How many standard errors an arm's share of the rows may stray from its stated propensity.
DESIGN_TOLERANCE_Z = 5.0


def _check_design(
    arm: np.ndarray,
    p: np.ndarray,
    arms: tuple[str, ...],
    source: str | Path,
    design: np.ndarray | None = None,
) -> None:
    """Refuse propensities the log contradicts: a constant design's shares must match the rows.

    A stated design (one P per arm) must add up to 1.

    Where every row of an arm states the same propensity, the arm's share of the rows estimates
    it; a share more than :data:`DESIGN_TOLERANCE_Z` standard errors away means the stated
    design is not the one that drew this log (a misstated hold-out share, another campaign's
    rows), and every weight built on it would be wrong.
    """
    if design is not None and abs(design.sum() - 1) > 1e-6:
        raise InputError(
            f"the arms' propensities add up to {design.sum():g}; expected 1", key="propensity"
        )
    n = arm.size
    for a, name in enumerate(arms):
        got = p[arm == a]
        if got.size == 0 or np.ptp(got) > 1e-12:
            continue
        stated = float(got[0])
        share = got.size / n
        se = np.sqrt(max(stated * (1 - stated), 1e-12) / n)
        z = abs(share - stated) / se
        if z > DESIGN_TOLERANCE_Z:
            raise InputError(
                f"arm {name!r} has {share:.1%} of the randomized rows but a stated propensity "
                f"of {stated:.1%} ({z:.0f} standard errors apart): the propensities do not "
                "describe this log",
                source=source,
                column="propensity",
            )


def logged_rows(
    log: pd.DataFrame,
    menu: Menu,
    *,
    sms_cost: float,
    order_value: float | None = None,
    basket: np.ndarray | None = None,
    propensity: Mapping[str, float] | None = None,
    arm_propensity: np.ndarray | None = None,
    source: str | Path = "log",
) -> LoggedRows:
    """The randomized rows of a campaign log as :class:`LoggedRows`.

    Parameters
    ----------
    log : DataFrame, shape (m, c)
        A log in the contract's form (``user_id``, ``assignment``, ``denomination``,
        ``converted``, ``redeemed``, ``order_value``, ``discount``; a mapped log also has
        ``propensity``). Rows whose ``assignment`` is not ``randomized`` are dropped.
    menu : Menu
        The treatments the log's ``denomination`` names.
    sms_cost : float
        Money per message of the treatments without a ``send_cost`` of their own.
    order_value : float, optional
        Money of an order where neither the log, the arm nor ``basket`` says.
    basket : ndarray, shape (m,), optional
        The customer's typical order (money), aligned with ``log``.
    propensity : mapping of str to float, optional
        P(arm) per treatment name and ``none`` for a log without a ``propensity`` column (the
        synthetic world's randomized campaign); also gives every arm's propensity.
    arm_propensity : ndarray, shape (m, len(menu) + 1), optional
        P(each arm | row) per row, menu order then ``none``.
    source : str or Path
        The log's name in error messages.

    Raises
    ------
    InputError
        No randomized rows, an unknown treatment, or a propensity that is missing or outside
        (0, 1].
    """
    arms = (*menu.names, NO_COUPON)
    keep = np.ones(len(log), dtype=bool)
    if "assignment" in log.columns:
        keep = (log["assignment"].astype(str) == "randomized").to_numpy()
    if not keep.any():
        raise InputError(
            "no randomized rows: offline evaluation needs a randomized log", source=source
        )
    rows = log[keep]
    if basket is not None:
        basket = np.asarray(basket, dtype=np.float64)[keep]
    if arm_propensity is not None:
        arm_propensity = np.asarray(arm_propensity, dtype=np.float64)[keep]
    per_row = arm_propensity is not None
    arm = pd.Index(arms).get_indexer(rows["denomination"].astype(str))
    if (arm < 0).any():
        bad = rows["denomination"].astype(str).to_numpy()[arm < 0][0]
        raise InputError(
            f"treatment {bad!r} is not on the menu ({', '.join(arms)})",
            source=source,
            column="denomination",
        )
    if propensity is not None:
        unknown = sorted(set(propensity) - set(arms))
        if unknown:
            raise InputError(f"{unknown[0]!r} is not a treatment of the menu", key="propensity")
        design = np.array([float(propensity.get(a, 0.0)) for a in arms])
        if arm_propensity is None:
            arm_propensity = np.broadcast_to(design, (len(rows), len(arms)))
    if "propensity" in rows.columns:
        p = rows["propensity"].to_numpy(dtype=np.float64, na_value=np.nan)
    elif arm_propensity is not None:
        p = arm_propensity[np.arange(len(rows)), arm]
    else:
        raise InputError(
            "the log has no propensity column and no design was given", source=source,
            key="propensity",
        )  # fmt: skip
    bad = ~((p > 0) & (p <= 1))
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} rows have a propensity outside (0, 1] (first: {float(p[bad][0])!r})",
            source=source,
            column="propensity",
        )
    if not per_row:  # a per-row design's arm shares need not match any single propensity
        _check_design(arm, p, arms, source, design=None if propensity is None else design)
    converted = rows["converted"].to_numpy(dtype=np.float64)
    coupon = arm < len(menu)
    send = np.append(menu.send_costs(sms_cost), 0.0)[arm]
    per_conversion = np.append(menu.conversion_costs, 0.0)[arm]
    discount = rows["discount"].to_numpy(dtype=np.float64) if "discount" in rows.columns else 0.0
    cost = np.where(coupon, send + discount + per_conversion * converted, 0.0)
    gmv = _money_per_conversion(rows, menu, arm, basket, order_value, source)
    return LoggedRows(
        arms=arms,
        user_id=rows["user_id"].to_numpy(dtype=np.int64),
        arm=arm.astype(np.int16),
        propensity=p,
        converted=converted,
        gmv=gmv,
        cost=cost,
        arm_propensity=None if arm_propensity is None else np.ascontiguousarray(arm_propensity),
    )


def plan_actions(plan: pd.DataFrame, rows: LoggedRows, *, name: str = "plan") -> np.ndarray:
    """The arm a plan gives each logged row's customer.

    Parameters
    ----------
    plan : DataFrame
        ``user_id`` and ``denomination`` (a treatment name or ``none``), one row per customer
        (a plan file from planning).
    rows : LoggedRows
    name : str
        The plan's name in error messages.

    Returns
    -------
    ndarray of int16, shape (m,)
        Index in ``rows.arms`` per row; -1 for a treatment the log does not know (never
        randomized), -2 for a customer the plan does not cover.
    """
    for column in ("user_id", "denomination"):
        if column not in plan.columns:
            raise InputError(f"plan {name!r} has no {column!r} column", key="plans")
    ids = plan["user_id"].to_numpy()
    if pd.Index(ids).has_duplicates:
        raise InputError(f"plan {name!r} lists a customer twice", key="plans")
    chosen = pd.Index(rows.arms).get_indexer(plan["denomination"].astype(str))
    where = pd.Index(ids).get_indexer(rows.user_id)
    actions = np.where(where >= 0, chosen[where], -2)
    return actions.astype(np.int16)
