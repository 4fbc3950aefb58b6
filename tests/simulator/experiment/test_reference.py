"""The per-user SimPy reference model of a campaign, on hand-made users.

One user's run makes its draws in a fixed order: the natural purchase time Exp(h0) (only when
h0 > 0), the moment of delivery within the sending hour, the failure draw, the wait for a
purchase while the coupon is valid, Exp(m h0 + u), then the order's normal and the draw that
decides whether it was coupon-driven, or, after the validity, the wait Exp(m h0). Replaying the
same generator gives each draw, so a test can set a user's rates to put a draw on either side
of a boundary (the window, the validity, the threshold) and know the outcome by hand.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from optimizer.io import Denomination, Menu
from simulator.experiment.engine import EngineSettings
from simulator.experiment.reference import simulate_per_user
from simulator.world.response import ResponseParams

# A coupon of 10 on a basket of 100 sits at the discount midpoint (g = 1/2) and its threshold of
# 50 is under the basket (no penalty): the coupon-driven rate is u = 2 * s * 1/2 = s a day. One
# of 20 has g = 0.04 / (0.04 + 0.01) = 0.8: u = 1.6 s.
MENU = Menu(denomination=(Denomination(name="10off50", face_value=10, threshold=50),
                          Denomination(name="20off50", face_value=20, threshold=50)))  # fmt: skip
PARAMS = ResponseParams(coupon_rate=2.0, discount_midpoint=0.1)
SIGMA = PARAMS.basket_sigma


def _run(h0, m, s, basket, choice, seed: int = 0, **settings):
    """Flags of users with these traits (scalars or arrays) on :data:`MENU`."""
    n = len(choice)
    traits = [np.broadcast_to(np.asarray(x, dtype=np.float64), n) for x in (h0, m, s, basket)]
    return simulate_per_user(*traits, np.asarray(choice), MENU,
                             EngineSettings(params=PARAMS, **settings),
                             np.random.default_rng(seed))  # fmt: skip


def _one(h0, m, s, basket, choice, seed, **settings) -> tuple[bool, bool]:
    """(converted, redeemed) of a single user."""
    converted, redeemed = _run(h0, m, s, basket, [choice], seed, **settings)
    return bool(converted[0]), bool(redeemed[0])


def _draws(seed: int, natural: bool) -> tuple[float, float, float, float, float]:
    """A user's draws in the model's order, as unit variates: the natural time Exp(1) (inf
    without a natural rate), the moment of delivery (hours), the failure draw, the wait Exp(1)
    and the order's normal."""
    rng = np.random.default_rng(seed)
    natural_time = rng.standard_exponential() if natural else np.inf
    moment, fail = rng.random(), rng.random()
    return natural_time, moment, fail, rng.standard_exponential(), rng.standard_normal()


def test_the_flags_are_boolean_per_user():
    converted, redeemed = _run(0.0, 1.0, 0.0, 100.0, [0, -1, 0])
    assert converted.dtype == bool and redeemed.dtype == bool
    assert converted.shape == redeemed.shape == (3,)
    assert not converted.any() and not redeemed.any()  # no rate of any kind


def test_without_a_coupon_the_natural_time_in_hours_decides_against_the_window():
    """Seed 1's natural draw e, h0 = 24 e / 71.5 a day (under 1): the user buys after 71.5
    hours, inside a 3-day window, outside a 71-hour one."""
    e = _draws(1, natural=True)[0]
    h0 = 24 * e / 71.5
    assert 0 < h0 < 1
    assert _one(h0, 1.0, 1e6, 100.0, -1, seed=1, window_days=3) == (True, False)
    assert _one(h0, 1.0, 1e6, 100.0, -1, seed=1, window_days=71 / 24) == (False, False)


def test_a_coupon_purchase_counts_only_within_the_validity():
    """No natural rate, u = s a day; s is set so that seed 2's wait is 24.5 hours: a coupon
    valid 24 hours is not used (and nothing is bought after it), one valid 25.5 hours is."""
    e = _draws(2, natural=False)[3]
    s = 24 * e / 24.5
    assert _one(0.0, 1.0, s, 100.0, 0, seed=2, validity_days=1) == (False, False)
    assert _one(0.0, 1.0, s, 100.0, 0, seed=2, validity_days=25.5 / 24) == (True, True)
    # The coupon of 20 pulls at 1.6 s: the same wait with s / 1.6.
    assert _one(0.0, 1.0, s / 1.6, 100.0, 1, seed=2, validity_days=1) == (False, False)
    assert _one(0.0, 1.0, s / 1.6, 100.0, 1, seed=2, validity_days=25.5 / 24) == (True, True)


def test_after_delivery_the_natural_rate_is_scaled_by_the_message_effect():
    """h0 = 2 a day, no coupon pull, a basket far above the threshold: the user bought nothing
    before delivery and, at rate m h0, buys 23.5 hours after it (m set from seed 7's wait):
    within a coupon valid a day, so the order redeems; a coupon valid 23 hours has expired."""
    natural, moment, _, e, _ = _draws(7, natural=True)
    assert natural * 12 > moment  # the natural time (hours) falls after delivery
    m = 12 * e / 23.5
    assert 0 < m < 1
    assert _one(2.0, m, 0.0, 1e6, 0, seed=7, validity_days=1) == (True, True)
    assert not _one(2.0, m, 0.0, 1e6, 0, seed=7, validity_days=23 / 24)[1]


@pytest.mark.parametrize(("share", "redeemed"), [(0.97, False), (1.03, True)])
def test_a_natural_order_redeems_when_its_log_normal_value_reaches_the_threshold(share, redeemed):
    """h0 = 2 a day, m = 1, no coupon pull: seed 4's user buys within the validity at natural
    rate; the basket is set so that the order b exp(sigma z - sigma^2 / 2) is 97% or 103% of
    the threshold of 50."""
    natural, moment, _, e, z = _draws(4, natural=True)
    assert natural * 12 > moment and e * 12 < 24 * 7  # delivered first, bought while valid
    basket = share * 50 / np.exp(SIGMA * z - SIGMA**2 / 2)
    assert _one(2.0, 1.0, 0.0, basket, 0, seed=4) == (True, redeemed)


def test_a_natural_purchase_before_delivery_stands_and_a_failed_message_is_never_delivered():
    """Seed 5: the natural time is put at half the delivery moment (bought before the coupon:
    converted, never redeemed, however keen) or at twice it (the coupon arrives first and the
    keen user redeems). Without a natural rate, a failure rate just above the failure draw
    loses the message, one just below it delivers."""
    natural, moment, fail, _, _ = _draws(5, natural=True)
    keen = 1e6  # buys within seconds of delivery
    for at, expected in ((moment / 2, (True, False)), (moment * 2, (True, True))):
        h0 = 24 * natural / at
        assert _one(h0, 1.0, keen, 100.0, 0, seed=5) == expected
    _, _, fail, _, _ = _draws(5, natural=False)
    assert _one(0.0, 1.0, keen, 100.0, 0, seed=5, failure_rate=fail + 1e-9) == (False, False)
    assert _one(0.0, 1.0, keen, 100.0, 0, seed=5, failure_rate=fail - 1e-9) == (True, True)


@pytest.mark.parametrize(("per_hour", "users", "converted"), [(1.5, 30, 24), (2, 10, 10)])
def test_the_gateway_sends_its_whole_throughput_every_hour(per_hour, users, converted):
    """Keen users (no natural rate) buy within seconds of delivery. 1.5 messages an hour send
    one an hour: in a one-day window only the first 24 users (in index order) get a coupon in
    time. Two an hour serve 10 users in five hours; the gateway then idles to the end."""
    got = _run(0.0, 1.0, 1e6, 100.0, np.zeros(users, np.int64), seed=6, window_days=1,
               sms_per_hour=per_hour)  # fmt: skip
    expected = np.arange(users) < converted
    assert np.array_equal(got[0], expected) and np.array_equal(got[1], expected)


def test_users_without_a_rate_raise_no_warnings():
    """No natural rate, no coupon pull, no message effect: infinite waits, not floating-point
    warnings; nobody buys."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converted, redeemed = _run([0.0, 0.0, 3.0], [1.0, 1.0, 0.0], 0.0, 100.0, [-1, 0, 0],
                                   validity_days=1)  # fmt: skip
    assert not converted[:2].any() and not redeemed.any()


def test_the_source_of_a_purchase_while_the_coupon_is_valid():
    """h0 = 1 and u = 3 a day (m = 1): a purchase while the coupon (valid a day) is valid is
    coupon-driven with probability u / (m h0 + u) = 3/4 and redeems; a natural one redeems when
    the order reaches 50 (probability 0.906 for baskets of 100). Users who buy naturally before
    delivery (within the first hour) or after the validity never redeem."""
    n = 1000
    _, redeemed = _run(1.0, 1.0, 3.0, 100.0, np.zeros(n, np.int64), seed=7, validity_days=1)
    reach = stats.norm.sf((np.log(0.5) + SIGMA**2 / 2) / SIGMA)
    delivered_first = (1 - np.exp(-1 / 24)) * 24  # E[exp(-h0 U)], U uniform on the first hour
    p = delivered_first * (1 - np.exp(-4.0)) * (0.75 + 0.25 * reach)
    assert abs(redeemed.sum() - n * p) < 4 * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize(("margin", "converted"), [(0.2, True), (-0.2, False)])
def test_after_the_validity_the_user_buys_at_the_messaged_rate_until_the_window_closes(
    margin, converted
):
    """h0 = 2 and m = 1/4 (m h0 = 1/48 an hour), no coupon pull, a coupon valid half an hour:
    seed 8's user outwaits the coupon, then buys after a second wait Exp(m h0) (the draw after
    the first wait); the window is set to end 0.2 hours after that purchase or before it."""
    rng = np.random.default_rng(8)
    natural, moment = rng.standard_exponential() * 12, rng.random()
    rng.random()
    first, second = rng.standard_exponential() * 48, rng.standard_exponential() * 48
    assert natural > moment and first > 0.5 and moment > 0.3
    window = moment + 0.5 + second + margin  # hours
    assert _one(2.0, 0.25, 0.0, 100.0, 0, seed=8, validity_days=0.5 / 24,
                window_days=window / 24) == (converted, False)  # fmt: skip


def test_users_the_gateway_never_reaches_still_buy_at_the_natural_rate():
    """One message an hour for a day to 300 users with h0 = 1 and no coupon pull: the 275 left
    in the gateway's queue at the end buy at their natural rate, 1 - exp(-1) of them."""
    n = 300
    converted, redeemed = _run(1.0, 1.0, 0.0, 100.0, np.zeros(n, np.int64), seed=9,
                               window_days=1, sms_per_hour=1)  # fmt: skip
    p = 1 - np.exp(-1.0)
    assert abs(converted[25:].sum() - 275 * p) < 4 * np.sqrt(275 * p * (1 - p))
    assert not redeemed[25:].any()


def test_a_natural_order_exactly_at_the_threshold_redeems():
    """Orders of exactly the basket (sigma = 0) of 50, the threshold: seed 10's natural purchase
    while the coupon is valid redeems."""
    natural, moment, _, e, _ = _draws(10, natural=True)
    assert natural * 12 > moment and e * 12 < 24 * 7  # delivered first, bought while valid
    params = ResponseParams(coupon_rate=2.0, discount_midpoint=0.1, basket_sigma=0.0)
    converted, redeemed = simulate_per_user(np.array([2.0]), np.ones(1), np.zeros(1),
                                            np.array([50.0]), np.zeros(1, np.int64), MENU,
                                            EngineSettings(params=params),
                                            np.random.default_rng(10))  # fmt: skip
    assert converted[0] and redeemed[0]
