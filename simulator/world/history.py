"""The historical campaign log: one randomized campaign and one manual campaign.

The randomized campaign is the models' training data; the manual one assigned coupons by an
operations rule, so it is biased.

* Campaign :data:`RANDOMIZED_CAMPAIGN`: a ``history.randomized_share`` sample of all users;
  each gets no coupon with probability ``history.holdout_share``, otherwise one denomination
  drawn uniformly from the menu. Assignment is independent of everything about the user.
* Campaign :data:`MANUAL_CAMPAIGN`: a ``history.manual_share`` sample of the users in the
  scenario's target stages; operations sent the manual denomination to those with an RFM score
  of at least ``history.manual_min_rfm`` and nothing to the rest. Who got a coupon depends on
  recency, frequency and order value, which also drive natural conversion.

Outcomes are drawn from the world's truth for the coupon each user got: conversion with
probability ``p_coupon`` (``p_natural`` without a coupon), redemption given conversion with
``p_redeem``. The order value is drawn log-normally around the user's typical basket; a
redeemed order is lifted to at least the coupon's threshold (the log keeps this simple
approximation; the event-level simulator draws orders event by event).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.io.contract import ASSIGNMENTS
from optimizer.io.menu import NO_COUPON
from optimizer.segments import STAGES, rfm_score
from simulator.scenario import Scenario
from simulator.world.population import HISTORY_STREAM, UserBlock, WorldParams, block_rng

__all__ = ["RANDOMIZED_CAMPAIGN", "MANUAL_CAMPAIGN", "campaign_log", "draw_outcomes"]

RANDOMIZED_CAMPAIGN = 1
MANUAL_CAMPAIGN = 2


def draw_outcomes(
    rng: np.random.Generator,
    arm: np.ndarray,
    p_natural: np.ndarray,
    p_coupon: np.ndarray,
    p_redeem: np.ndarray,
    basket: np.ndarray,
    face_values: np.ndarray,
    thresholds: np.ndarray,
    basket_sigma: float,
) -> dict[str, np.ndarray]:
    """Draw conversion, redemption, order value and discount for assigned users.

    Parameters
    ----------
    rng : Generator
        Random stream.
    arm : ndarray of int, shape (m,)
        Denomination index per user, -1 for no coupon.
    p_natural : ndarray, shape (m,)
        True natural conversion probability.
    p_coupon, p_redeem : ndarray, shape (m, k)
        True coupon conversion and redemption-given-conversion probabilities.
    basket : ndarray, shape (m,)
        Typical basket (money).
    face_values, thresholds : ndarray, shape (k,)
        Menu (money).
    basket_sigma : float
        Log-normal shape of order values.

    Returns
    -------
    dict of ndarray, each shape (m,)
        ``converted`` and ``redeemed`` (int8 0/1), ``order_value`` and ``discount`` (money).
    """
    m = arm.size
    rows = np.arange(m)
    has_coupon = arm >= 0
    k = np.where(has_coupon, arm, 0)
    p = np.where(has_coupon, p_coupon[rows, k], p_natural)
    converted = rng.random(m) < p
    redeemed = converted & has_coupon & (rng.random(m) < p_redeem[rows, k])
    mu = np.log(basket) - 0.5 * basket_sigma**2
    order = np.exp(mu + basket_sigma * rng.standard_normal(m))
    order = np.where(redeemed, np.maximum(order, thresholds[k]), order)
    return {
        "converted": converted.astype(np.int8),
        "redeemed": redeemed.astype(np.int8),
        "order_value": np.where(converted, np.round(order, 2), 0.0),
        "discount": np.where(redeemed, face_values[k], 0.0),
    }


def campaign_log(
    scenario: Scenario, block: UserBlock, params: WorldParams = WorldParams()
) -> pd.DataFrame:
    """Log rows of both past campaigns for the users of ``block``.

    Returns
    -------
    DataFrame, shape (m, 9)
        Columns of :func:`optimizer.io.contract.log_schema`, randomized campaign rows first.
    """
    hist = scenario.history
    menu = scenario.menu
    k = len(menu)
    n = len(block.users)
    rng = block_rng(scenario.population.seed, block.index, HISTORY_STREAM)

    in_rct = rng.random(n) < hist.randomized_share
    rct_arm = np.where(rng.random(n) < hist.holdout_share, -1, rng.integers(0, k, n))

    target = np.isin(block.stage, [STAGES.index(s) for s in scenario.target_stages])
    in_manual = target & (rng.random(n) < hist.manual_share)
    users = block.users
    score = rfm_score(
        users["days_since_last_order"].to_numpy(),
        users["orders_365d"].to_numpy(),
        users["avg_order_value"].to_numpy(),
    )
    manual_arm = np.where(
        score >= hist.manual_min_rfm, menu.index(scenario.manual.denomination), -1
    )

    idx = np.concatenate([np.flatnonzero(in_rct), np.flatnonzero(in_manual)])
    arm = np.concatenate([rct_arm[in_rct], manual_arm[in_manual]])
    campaign = np.repeat(
        np.array([RANDOMIZED_CAMPAIGN, MANUAL_CAMPAIGN], dtype=np.int32),
        [int(in_rct.sum()), int(in_manual.sum())],
    )
    outcomes = draw_outcomes(
        rng,
        arm,
        block.truth["p_natural"].to_numpy()[idx],
        block.p_coupon[idx],
        block.p_redeem[idx],
        block.basket[idx],
        menu.face_values,
        menu.thresholds,
        params.response.basket_sigma,
    )
    labels = [*menu.names, NO_COUPON]
    return pd.DataFrame(
        {
            "campaign_id": campaign,
            "user_id": users["user_id"].to_numpy()[idx],
            "assignment": pd.Categorical.from_codes(
                (campaign == MANUAL_CAMPAIGN).astype(np.int8), categories=list(ASSIGNMENTS)
            ),
            "lifecycle_stage": pd.Categorical.from_codes(block.stage[idx], categories=list(STAGES)),
            "denomination": pd.Categorical.from_codes(
                np.where(arm >= 0, arm, k).astype(np.int8), categories=labels
            ),
            **outcomes,
        }
    )
