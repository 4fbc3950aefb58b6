"""The synthetic customer world: a seeded population with known ground truth.

Users are generated in fixed blocks of :data:`BLOCK_USERS`; block ``j`` draws from its own
random stream ``SeedSequence([seed, j, stream])``. The world is therefore the same for a seed
whatever the chunking, the number of workers or the order in which blocks are made, and any
block can be regenerated alone.

Latent traits drive everything: the uplift archetype (drawn with the scenario's shares) sets a
natural purchase probability, a price sensitivity and, for sleeping dogs, a message effect < 1;
a typical basket depends on the city tier. The observed features are noisy functions of these
traits and of the lifecycle stage, so they reveal the truth only in part:

* static: gender, age (6% missing), region, city tier, days since registration;
* behaviour: orders in 365 days, recency, average order value, sessions (7 and 30 days),
  cart adds;
* coupon behaviour: coupons received and viewed, share redeemed (missing when none received).
  Sure things redeem the coupons they get because they buy anyway: the trap of the article's
  first model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.io.contract import ARCHETYPES, GENDERS, USERS, coupon_column, redeem_column
from optimizer.segments import STAGES
from simulator.scenario import Scenario
from simulator.world.response import ResponseParams, true_response

__all__ = [
    "BLOCK_USERS",
    "REGIONS",
    "WorldParams",
    "UserBlock",
    "block_count",
    "block_rng",
    "generate_users",
]

#: Users per generation block (the unit of determinism).
BLOCK_USERS = 65_536
REGIONS: tuple[str, ...] = ("north", "east", "south", "west", "central")

# Random streams per block.
USERS_STREAM = 0
HISTORY_STREAM = 1


@dataclass(frozen=True)
class WorldParams:
    """Constants of the population generator (everything not in the scenario file).

    Natural purchase probabilities are set on a 14-day reference window and turned into a
    per-day rate, so a scenario's campaign window rescales them consistently.
    """

    reference_window_days: float = 14.0
    #: logit of the 14-day natural purchase probability by archetype: (mean, sd)
    natural_logit: tuple[tuple[float, float], ...] = (
        (1.7, 0.7),  # sure_thing
        (-3.0, 0.7),  # persuadable
        (-4.6, 0.6),  # lost_cause
        (-1.6, 0.5),  # sleeping_dog
    )
    #: log of the price sensitivity by archetype: (mean, sd)
    log_sensitivity: tuple[tuple[float, float], ...] = (
        (np.log(0.25), 0.5),
        (np.log(1.0), 0.5),
        (np.log(0.03), 0.5),
        (np.log(0.003), 0.3),
    )
    #: factor on the natural rate by lifecycle stage (recent buyers buy more)
    stage_rate_factor: tuple[float, ...] = (2.0, 1.4, 1.0, 0.75)
    #: message effect range of sleeping dogs (uniform)
    sleeping_dog_effect: tuple[float, float] = (0.3, 0.7)
    basket_median: float = 100.0
    basket_log_sd: float = 0.5
    tier_shares: tuple[float, ...] = (0.2, 0.3, 0.3, 0.2)
    tier_basket_factor: tuple[float, ...] = (1.25, 1.1, 0.95, 0.85)
    tier_sensitivity_factor: tuple[float, ...] = (0.8, 0.95, 1.1, 1.2)
    region_shares: tuple[float, ...] = (0.2, 0.3, 0.25, 0.1, 0.15)
    gender_shares: tuple[float, ...] = (0.55, 0.40, 0.05)
    age_missing_share: float = 0.06
    response: ResponseParams = ResponseParams()


@dataclass
class UserBlock:
    """One block of users: observed features, latent truth, and the block's position.

    Attributes
    ----------
    users : DataFrame, shape (n, 16)
        Columns of :data:`optimizer.io.contract.USERS`.
    truth : DataFrame, shape (n, 7 + 2k)
        Columns of :func:`optimizer.io.contract.truth_schema`.
    p_coupon, p_redeem : ndarray, shape (n, k)
        The truth's per-denomination probabilities as arrays (same values as in ``truth``).
    stage : ndarray of int8, shape (n,)
        Lifecycle stage index into :data:`optimizer.segments.STAGES`.
    basket : ndarray, shape (n,)
        Typical basket (money).
    index : int
        Block number.
    """

    users: pd.DataFrame
    truth: pd.DataFrame
    p_coupon: np.ndarray
    p_redeem: np.ndarray
    stage: np.ndarray
    basket: np.ndarray
    index: int


def block_count(n_users: int) -> int:
    """Number of blocks for ``n_users`` users."""
    return -(-int(n_users) // BLOCK_USERS)


def block_rng(seed: int, block: int, stream: int) -> np.random.Generator:
    """The random generator of ``block`` for ``stream`` (users or history)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, block, stream])))


def _categorical(codes: np.ndarray, labels: tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(labels))


def _recency(rng: np.random.Generator, stage: np.ndarray) -> np.ndarray:
    """Days since the last order, drawn inside each stage's range."""
    n = stage.size
    lows = np.array([1, 31, 91, 181])[stage]
    highs = np.array([30, 90, 180, 181])[stage]
    days = rng.integers(lows, highs + 1)
    dormant = stage == 3
    # Dormant recency: 181 days plus an exponential tail (mean 200 days), capped at 3 years.
    tail = np.minimum(rng.exponential(200.0, n), 3 * 365 - 181).astype(np.int64)
    return np.where(dormant, 181 + tail, days).astype(np.int32)


def generate_users(
    scenario: Scenario, block: int, n: int, params: WorldParams = WorldParams()
) -> UserBlock:
    """Generate block ``block`` of ``n`` users for ``scenario``.

    Parameters
    ----------
    scenario : Scenario
        Population shares, seed, menu and campaign timing.
    block : int
        Block number; user ids are ``block * BLOCK_USERS + 1 ...``.
    n : int
        Users in this block (``BLOCK_USERS`` except for the last block).
    params : WorldParams
        Generator constants.
    """
    pop = scenario.population
    rng = block_rng(pop.seed, block, USERS_STREAM)
    user_id = block * BLOCK_USERS + 1 + np.arange(n, dtype=np.int64)

    # Latent traits.
    archetype = rng.choice(len(ARCHETYPES), size=n, p=np.asarray(pop.archetypes.as_tuple()))
    stage = rng.choice(len(STAGES), size=n, p=np.asarray(pop.stages.as_tuple())).astype(np.int8)
    tier = rng.choice(4, size=n, p=np.asarray(params.tier_shares))
    nat = np.asarray(params.natural_logit)[archetype]
    natural_logit = nat[:, 0] + nat[:, 1] * rng.standard_normal(n)
    p_ref = 1.0 / (1.0 + np.exp(-natural_logit))  # 14-day natural probability, active-neutral
    stage_factor = np.asarray(params.stage_rate_factor)[stage]
    natural_hazard = -np.log1p(-p_ref) / params.reference_window_days * stage_factor

    gender = rng.choice(len(GENDERS), size=n, p=np.asarray(params.gender_shares))
    age = np.clip(rng.normal(35.0, 10.0, n), 18, 75).round()
    sens_par = np.asarray(params.log_sensitivity)[archetype]
    sensitivity = np.exp(sens_par[:, 0] + sens_par[:, 1] * rng.standard_normal(n))
    sensitivity *= np.asarray(params.tier_sensitivity_factor)[tier]
    sensitivity *= np.exp(-0.01 * (age - 35.0))  # younger customers react more to money off
    message_effect = np.ones(n)
    dogs = archetype == ARCHETYPES.index("sleeping_dog")
    lo, hi = params.sleeping_dog_effect
    message_effect[dogs] = rng.uniform(lo, hi, int(dogs.sum()))
    basket = params.basket_median * np.asarray(params.tier_basket_factor)[tier]
    basket = basket * np.exp(params.basket_log_sd * rng.standard_normal(n))
    basket = np.clip(basket, 15.0, 3000.0)

    # Observed features: noisy views of the traits.
    activity = p_ref**0.7 * np.exp(0.5 * rng.standard_normal(n))
    recency = _recency(rng, stage)
    order_factor = np.array([1.0, 0.7, 0.45, 0.25])[stage]
    orders = 1 + rng.poisson(
        11.0 * p_ref**0.8 * order_factor * np.exp(0.4 * rng.standard_normal(n))
    )
    orders = np.where(recency > 365, 0, orders).astype(np.int32)
    session_factor = np.array([1.0, 0.5, 0.3, 0.15])[stage]
    sessions_30d = rng.poisson(12.0 * activity * session_factor).astype(np.int32)
    sessions_7d = rng.binomial(sessions_30d, 0.23).astype(np.int32)
    cart_adds = rng.poisson(0.3 * sessions_30d + 0.4 * sensitivity * session_factor).astype(
        np.int32
    )
    avg_order_value = np.round(basket * np.exp(0.2 * rng.standard_normal(n)), 2)
    registered = recency + 30 + rng.exponential(700.0, n).astype(np.int64)
    received = rng.poisson(4.0, n).astype(np.int32)
    view_prob = sensitivity / (sensitivity + 0.5)
    views = rng.binomial(received, np.clip(0.2 + 0.7 * view_prob, 0, 1)).astype(np.int32)
    redeem_prob = np.clip(0.6 * p_ref + 0.3 * sensitivity / (sensitivity + 1.0), 0.0, 1.0)
    redeemed = rng.binomial(received, redeem_prob)
    with np.errstate(invalid="ignore", divide="ignore"):
        redeem_share = np.where(received > 0, redeemed / np.maximum(received, 1), np.nan)
    age_missing = rng.random(n) < params.age_missing_share
    region = rng.choice(len(REGIONS), size=n, p=np.asarray(params.region_shares))

    users = pd.DataFrame(
        {
            "user_id": user_id,
            "gender": _categorical(gender, GENDERS),
            "age": np.where(age_missing, np.nan, age).astype(np.float32),
            "region": _categorical(region, REGIONS),
            "city_tier": (tier + 1).astype(np.int8),
            "days_since_registration": registered.astype(np.int32),
            "orders_365d": orders,
            "days_since_last_order": recency,
            "avg_order_value": avg_order_value,
            "sessions_7d": sessions_7d,
            "sessions_30d": sessions_30d,
            "cart_adds_30d": cart_adds,
            "coupons_received_365d": received,
            "coupon_views_365d": views,
            "coupon_redeem_share": redeem_share.astype(np.float32),
            "lifecycle_stage": _categorical(stage, STAGES),
        }
    )
    assert tuple(users.columns) == USERS.names

    menu = scenario.menu
    truth_arrays = true_response(
        natural_hazard,
        message_effect,
        sensitivity,
        basket,
        menu.face_values,
        menu.thresholds,
        window_days=scenario.campaign.window_days,
        validity_days=scenario.campaign.validity_days,
        params=params.response,
    )
    truth = pd.DataFrame(
        {
            "user_id": user_id,
            "archetype": _categorical(archetype, ARCHETYPES),
            "natural_hazard": natural_hazard,
            "price_sensitivity": sensitivity,
            "message_effect": message_effect,
            "typical_basket": basket,
            "p_natural": truth_arrays.p_natural,
        }
    )
    for k, name in enumerate(menu.names):
        truth[coupon_column(name)] = truth_arrays.p_coupon[:, k]
    for k, name in enumerate(menu.names):
        truth[redeem_column(name)] = truth_arrays.p_redeem[:, k]
    return UserBlock(
        users=users,
        truth=truth,
        p_coupon=truth_arrays.p_coupon,
        p_redeem=truth_arrays.p_redeem,
        stage=stage,
        basket=basket,
        index=block,
    )
