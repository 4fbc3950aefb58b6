"""The discrete-event campaign engine against the world's truth, its gateway and its budget."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimizer.io import Denomination, Menu
from optimizer.io.contract import coupon_column, redeem_column
from simulator.experiment.engine import EngineSettings, simulate_campaign, traits_of
from simulator.experiment.reference import simulate_per_user
from simulator.world.response import ResponseParams


@pytest.fixture(scope="module")
def population(world):
    truth = world.truth
    rng = np.random.default_rng(5)
    k = len(world.scenario.menu)
    choice = rng.integers(-1, k, len(truth))  # a quarter get nothing
    return truth, choice


def _run(truth, choice, menu, settings, seed=1, order=None):
    return simulate_campaign(
        *traits_of(truth),
        choice,
        menu,
        settings,
        np.random.default_rng(seed),
        order=order,
    )


def test_unlimited_campaign_reproduces_the_true_probabilities(population, world):
    """No capacity limit, no failures, delivery at the start: each group's simulated conversion
    and redemption rates match the world's exact probabilities (z-tests, |z| < 4)."""
    truth, choice = population
    menu = world.scenario.menu
    camp = world.scenario.campaign
    settings = EngineSettings(
        window_days=camp.window_days, validity_days=camp.validity_days, instant_delivery=True
    )
    out = _run(truth, choice, menu, settings)
    for j in range(-1, len(menu)):
        group = choice == j
        if j < 0:
            p = truth["p_natural"].to_numpy()[group]
            assert not out.redeemed[group].any() and not out.sent[group].any()
        else:
            p = truth[coupon_column(menu.names[j])].to_numpy()[group]
            q = p * truth[redeem_column(menu.names[j])].to_numpy()[group]
            z = (out.redeemed[group].sum() - q.sum()) / np.sqrt((q * (1 - q)).sum())
            assert abs(z) < 4, (menu.names[j], z)
        z = (out.converted[group].sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
        assert abs(z) < 4, (j, z)
    # Redemptions pay the face value; coupon-driven orders reach the threshold.
    red = out.redeemed
    assert np.allclose(out.discount[red], menu.face_values[choice[red]])
    driven = out.coupon_driven
    assert (out.order_value[driven] >= menu.thresholds[choice[driven]] - 1e-9).all()
    assert out.spend == pytest.approx(0.05 * (choice >= 0).sum() + out.discount.sum())


def test_gateway_capacity_failures_and_views(population, world):
    truth, choice = population
    menu = world.scenario.menu
    base = EngineSettings(instant_delivery=True)
    fast = _run(truth, choice, menu, base)
    slow_settings = EngineSettings(sms_per_hour=500, failure_rate=0.2, view_rate=0.5)
    queue = np.flatnonzero(choice >= 0)
    slow = _run(truth, choice, menu, slow_settings)
    hours = int(14 * 24)
    assert slow.sent.sum() == min(queue.size, 500 * hours)
    # Delivered in priority order (index order here), never more than 500 an hour.
    sent_hour = np.floor(slow.delivered_at[slow.delivered] * 24)
    assert np.bincount(sent_hour.astype(int)).max() <= 500
    assert (np.diff(slow.delivered_at[queue][slow.delivered[queue]]) >= -1 / 24).all()
    share = slow.delivered[slow.sent].mean()
    assert share == pytest.approx(0.8, abs=0.01)
    assert slow.viewed[slow.delivered].mean() == pytest.approx(0.5, abs=0.01)
    assert not slow.viewed[~slow.delivered].any()
    # Late and lost coupons convert less than coupons delivered at the start.
    assert slow.converted[queue].mean() < fast.converted[queue].mean()
    assert slow.redeemed.sum() < fast.redeemed.sum()


@pytest.mark.parametrize("mode", ["continue", "stop_issuing", "stop_honouring"])
def test_budget_monitor(population, world, mode):
    truth, choice = population
    menu = world.scenario.menu
    free = _run(truth, choice, menu, EngineSettings(sms_per_hour=600))
    budget = 0.3 * free.spend
    out = _run(truth, choice, menu, EngineSettings(sms_per_hour=600, budget=budget,
                                                   on_budget_spent=mode))  # fmt: skip
    assert out.exhausted_at is not None and 0 < out.exhausted_at < 14
    if mode == "continue":
        assert out.spend == pytest.approx(free.spend)
    elif mode == "stop_issuing":
        assert out.sent.sum() < free.sent.sum()
        assert budget < out.spend < free.spend  # held coupons are still honoured
    else:
        assert out.sent.sum() < free.sent.sum()
        assert out.spend <= budget + 0.05 * 600 + 1e-9
        paid_late = out.redeemed & (out.purchase_at > out.exhausted_at + 1 / 24)
        assert not paid_late.any()
    assert np.cumsum(out.spend_by_hour)[-1] == pytest.approx(out.spend)


def test_seeded_determinism(population, world):
    truth, choice = population
    menu = world.scenario.menu
    settings = EngineSettings(sms_per_hour=3000, failure_rate=0.05)
    a = _run(truth[:20000], choice[:20000], menu, settings, seed=3)
    b = _run(truth[:20000], choice[:20000], menu, settings, seed=3)
    c = _run(truth[:20000], choice[:20000], menu, settings, seed=4)
    assert np.array_equal(a.converted, b.converted) and np.array_equal(a.discount, b.discount)
    assert not np.array_equal(a.converted, c.converted)


def test_vectorised_engine_matches_the_per_user_simpy_model(world):
    """Same campaign (400 messages an hour, 10% failures), per-user processes vs the batched
    engine on 30k users: conversion and redemption counts agree (two-proportion z-tests) and
    conversions per sending-hour bucket follow the same distribution (chi-square)."""
    truth = world.truth.iloc[:30_000].reset_index(drop=True)
    menu = world.scenario.menu
    choice = np.random.default_rng(9).integers(-1, len(menu), len(truth))
    settings = EngineSettings(sms_per_hour=400, failure_rate=0.1)
    fast = _run(truth, choice, menu, settings, seed=11)
    conv, red = simulate_per_user(
        *traits_of(truth), choice, menu, settings, np.random.default_rng(12)
    )
    for a, b in ((fast.converted, conv), (fast.redeemed, red)):
        pooled = (a.sum() + b.sum()) / (2 * a.size)
        z = (a.sum() - b.sum()) / np.sqrt(2 * a.size * pooled * (1 - pooled))
        assert abs(z) < 4, z
    # Conversions by position in the sending queue (deciles): same shape.
    queue = np.flatnonzero(choice >= 0)
    bucket = np.arange(queue.size) * 10 // queue.size
    table = np.array([np.bincount(bucket, fast.converted[queue]), np.bincount(bucket, conv[queue])])
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_planning_gmv_matches_the_simulated_incremental_gmv(world):
    """The planner's incremental GMV, fed the world's true conversion and redemption
    probabilities, is the GMV the simulated campaign adds over the same users untreated (same
    draws), per denomination, within 8%. The reading without redemption data (only the extra
    buyers lift their order) misses by more on at least one denomination."""
    from optimizer.solvers.problem import build_problem

    menu = world.scenario.menu
    users = world.users.set_index("user_id").loc[world.truth["user_id"]]
    truth = world.truth
    settings = EngineSettings(sms_per_hour=float("inf"), instant_delivery=True, failure_rate=0.0)
    n = len(truth)
    p = truth[[coupon_column(x) for x in menu.names]].to_numpy()
    r = truth[[redeem_column(x) for x in menu.names]].to_numpy()
    basket = users["avg_order_value"].to_numpy()
    args = (truth["user_id"].to_numpy(), truth["p_natural"].to_numpy(), p, menu)
    planned = build_problem(*args, objective="gmv", basket=basket, redeem=r).gmv_uplift()
    naive = build_problem(*args, objective="gmv", basket=basket).gmv_uplift()
    rows = np.random.default_rng(3).random(n) < 0.5
    misses_naive = []
    for k in range(len(menu)):
        choice = np.where(rows, k, -1)
        simulated = np.mean(
            [
                _run(truth, choice, menu, settings, seed=s).order_value[rows].sum()
                - _run(truth, np.full(n, -1), menu, settings, seed=s).order_value[rows].sum()
                for s in range(3)
            ]
        )
        assert planned[rows, k].sum() == pytest.approx(simulated, rel=0.08), menu.names[k]
        misses_naive.append(abs(naive[rows, k].sum() / simulated - 1))
    assert max(misses_naive) > 0.08


# Hand-worked campaigns. Users with no natural purchase rate (h0 = 0) and a huge price
# sensitivity buy within minutes of delivery, always coupon-driven, and always redeem: every
# figure below follows from the gateway's and the monitor's rules by hand, with no randomness
# left but the order of purchases within an hour.
HAND_MENU = Menu(denomination=(Denomination(name="9off10", face_value=9, threshold=10),))


def _hand_run(n: int, settings: EngineSettings, order=None, h0: float = 0.0, seed: int = 0):
    return simulate_campaign(
        np.full(n, h0), np.ones(n), np.full(n, 1e6), np.full(n, 50.0), np.zeros(n, np.int64),
        HAND_MENU, settings, np.random.default_rng(seed), order=order,
    )  # fmt: skip


def test_a_saturated_gateway_sends_exactly_its_capacity_every_hour():
    """Seven messages an hour for two days, 336 + 5 queued: exactly seven leave in every one of
    the 48 hours, in priority order, and the last five are never sent."""
    hours, per_hour = 48, 7
    n = hours * per_hour + 5
    order = np.random.default_rng(3).permutation(n)
    settings = EngineSettings(window_days=2, validity_days=1, sms_per_hour=per_hour,
                              instant_delivery=True, sms_cost=1.0)  # fmt: skip
    out = simulate_campaign(
        np.zeros(n), np.ones(n), np.zeros(n), np.full(n, 50.0), np.zeros(n, np.int64),
        HAND_MENU, settings, np.random.default_rng(0), order=order,
    )  # fmt: skip
    assert out.sent.sum() == hours * per_hour
    assert out.sent[order[: hours * per_hour]].all() and not out.sent[order[-5:]].any()
    hour_sent = np.rint(out.delivered_at[order[: hours * per_hour]] * 24).astype(int)
    assert (hour_sent == np.repeat(np.arange(hours), per_hour)).all()
    # Nobody buys (no natural rate, no sensitivity): the spend is the messages, 7 an hour.
    assert not out.converted.any()
    assert np.array_equal(out.spend_by_hour, np.full(hours, 7.0))


@pytest.mark.parametrize(
    ("mode", "sent", "converted", "spend", "hour_1"),
    [
        # Hour 0 sends 10 (10 money). At hour 1 the monitor settles hour 0's redemptions
        # before the gateway sends again: 10 + 9 k <= 95 pays k = 9; the tenth crosses it.
        ("stop_honouring", 10, 9, 10 + 9 * 9, 0),  # the tenth is declined: no order, no pay
        ("stop_issuing", 10, 10, 10 + 9 * 10, 0),  # the tenth is honoured: 5 over the budget
        ("continue", 30, 30, 30 + 9 * 30, 10 + 90),  # all three hours sent and honoured
    ],
)
def test_each_budget_mode_declines_or_honours_orders_as_worked_by_hand(
    mode, sent, converted, spend, hour_1
):
    settings = EngineSettings(window_days=1, validity_days=1, sms_per_hour=10,
                              instant_delivery=True, sms_cost=1.0, budget=95.0,
                              on_budget_spent=mode)  # fmt: skip
    out = _hand_run(30, settings)
    assert out.sent.sum() == sent and out.delivered.sum() == sent
    assert out.converted.sum() == converted
    # Without a natural rate, every order is coupon-driven: an order exists iff it was paid.
    assert np.array_equal(out.converted, out.redeemed)
    assert np.array_equal(out.converted, out.coupon_driven)
    assert np.array_equal(out.discount, np.where(out.redeemed, 9.0, 0.0))
    assert np.array_equal(out.order_value > 0, out.converted)
    assert out.spend == pytest.approx(spend)
    # Each hour's money: its messages and the redemptions of its purchases.
    assert out.spend_by_hour[0] == pytest.approx(min(spend, 100.0))
    assert out.spend_by_hour[1] == pytest.approx(hour_1)
    # The budget ran out at hour 0's tenth purchase (recorded under "continue" too).
    assert out.exhausted_at is not None and out.exhausted_at < 1 / 24
    if mode == "stop_honouring":
        # The declined order is the last of hour 0's purchases (the same draws, no budget).
        free = _hand_run(30, EngineSettings(window_days=1, validity_days=1, sms_per_hour=10,
                                            instant_delivery=True, sms_cost=1.0))  # fmt: skip
        first = np.flatnonzero(out.sent)
        last = first[np.argmax(free.purchase_at[first])]
        assert np.array_equal(np.flatnonzero(out.converted), np.setdiff1d(first, [last]))
        assert np.isnan(out.purchase_at[last]) and out.order_value[last] == 0


def test_a_declined_coupon_leaves_a_natural_order_at_full_price():
    """Under stop_honouring a natural buyer holding a declined coupon still buys, at full price
    and without the discount; under stop_issuing the same coupon is redeemed."""
    settings = dict(window_days=1, validity_days=1, sms_per_hour=np.inf, instant_delivery=True,
                    sms_cost=1.0, budget=5.0)  # fmt: skip
    n = 400
    # Natural buyers (h0 large) with no coupon sensitivity, baskets above the threshold.
    args = (np.full(n, 50.0), np.ones(n), np.zeros(n), np.full(n, 200.0), np.zeros(n, np.int64))
    honour, decline = (
        simulate_campaign(*args, HAND_MENU, EngineSettings(**settings, on_budget_spent=mode),
                          np.random.default_rng(1))
        for mode in ("stop_issuing", "stop_honouring")
    )  # fmt: skip
    assert honour.converted.all() and decline.converted.all()  # natural orders go through
    assert not honour.coupon_driven.any()
    assert honour.redeemed.mean() > 0.9  # orders of 200 reach the threshold of 10
    assert not decline.redeemed.any() and not decline.discount.any()
    assert np.array_equal(honour.order_value, decline.order_value)  # full price either way
    assert decline.spend == pytest.approx(n * 1.0)  # only the messages: nothing fits 5 - 400
    assert honour.spend == pytest.approx(n + 9.0 * honour.redeemed.sum())


# A menu and response constants under which the coupon-driven rate is worked by hand: a coupon
# of 10 on a typical basket of 100 sits at the discount midpoint (g = 1/2) and its threshold of
# 50 is under the basket (no penalty), so u = coupon_rate * s * g = 2 * s / 2 = s a day.
UNIT_MENU = Menu(denomination=(Denomination(name="10off50", face_value=10, threshold=50),))
UNIT_PARAMS = ResponseParams(coupon_rate=2.0, discount_midpoint=0.1)


def _unit_run(h0, m, s, choice, settings: EngineSettings, seed: int = 0, order=None):
    """Users of typical basket 100 on :data:`UNIT_MENU` (u = s a day with :data:`UNIT_PARAMS`)."""
    n = len(choice)
    return simulate_campaign(
        np.broadcast_to(h0, n), np.broadcast_to(m, n), np.broadcast_to(s, n), np.full(n, 100.0),
        np.asarray(choice), UNIT_MENU, settings, np.random.default_rng(seed), order=order,
    )  # fmt: skip


def _within(count: float, p: np.ndarray | float, n: int | None = None) -> bool:
    """``count`` within 4 standard deviations of a sum of Bernoulli(p) (``n`` of them if p is
    a scalar)."""
    p = np.full(n, p) if n is not None else np.asarray(p)
    return abs(count - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())


def test_an_unknown_budget_mode_is_refused_with_the_modes_listed():
    with pytest.raises(ValueError) as error:
        _hand_run(3, EngineSettings(on_budget_spent="pause"))
    assert (
        str(error.value) == "on_budget_spent must be one of continue, stop_issuing, stop_honouring"
    )


def test_outcome_arrays_have_their_documented_types_and_an_hourly_spend_over_the_window():
    """Five users, a day and a half (36 hours), one message an hour, priority 3, 1, 0: user 1
    has no coupon and user 2 is not in the priority list, so user 3 is sent at hour 0 and user 0
    at hour 1; both buy within a minute (no natural rate, a huge sensitivity) and redeem 9."""
    settings = EngineSettings(window_days=1.5, validity_days=1, sms_per_hour=1,
                              instant_delivery=True, sms_cost=1.0)  # fmt: skip
    choice, order = np.array([0, -1, 0, 0, -1]), np.array([3, 1, 0])
    args = (np.zeros(5), np.ones(5), np.full(5, 1e6), np.full(5, 50.0))
    out = simulate_campaign(*args, choice, HAND_MENU, settings, np.random.default_rng(0),
                            order=order)  # fmt: skip
    for name in ("sent", "delivered", "viewed", "converted", "redeemed", "coupon_driven"):
        assert getattr(out, name).dtype == bool and getattr(out, name).shape == (5,), name
    for name in ("delivered_at", "purchase_at", "order_value", "discount"):
        assert getattr(out, name).dtype == np.float64 and getattr(out, name).shape == (5,), name
    assert out.spend_by_hour.dtype == np.float64 and out.spend_by_hour.shape == (36,)
    assert out.sent.tolist() == [True, False, False, True, False]
    assert np.array_equal(out.delivered_at, [1 / 24, np.nan, np.nan, 0.0, np.nan], equal_nan=True)
    assert np.array_equal(out.converted, out.sent) and np.array_equal(out.redeemed, out.sent)
    wait = out.purchase_at[out.sent] - out.delivered_at[out.sent]
    assert ((wait >= 0) & (wait < 1 / 1440)).all()
    assert np.isnan(out.purchase_at[~out.sent]).all()
    assert np.array_equal(out.discount, [9.0, 0, 0, 9.0, 0])
    assert np.array_equal(out.spend_by_hour, np.r_[10.0, 10.0, np.zeros(34)])
    assert out.spend == 20.0 and out.exhausted_at is None
    # Choices and priorities given as floats (a table's column) are read as positions.
    again = simulate_campaign(*args, choice.astype(float), HAND_MENU, settings,
                              np.random.default_rng(0), order=order.astype(float))  # fmt: skip
    assert np.array_equal(again.purchase_at, out.purchase_at, equal_nan=True)


def test_traits_are_read_as_floats_in_the_engines_argument_order():
    truth = pd.DataFrame({"typical_basket": [50, 80], "price_sensitivity": [1, 2],
                          "user_id": [7, 8], "message_effect": [1, 0],
                          "natural_hazard": [0, 3]})  # fmt: skip
    traits = traits_of(truth)
    assert [t.tolist() for t in traits] == [[0.0, 3.0], [1.0, 0.0], [1.0, 2.0], [50.0, 80.0]]
    assert all(t.dtype == np.float64 for t in traits)


def test_natural_purchases_follow_the_natural_rate_and_orders_are_log_normal():
    """No message: a user buys at the natural rate h0 (exponential times, cut at the window),
    and an order of typical basket b is log-normal of mean b: log(order / b) ~ N(-s^2/2, s^2)."""
    n, h0, window, sigma = 20_000, 0.25, 8.0, ResponseParams().basket_sigma
    out = _unit_run(h0, 1.0, 1.0, np.full(n, -1), EngineSettings(window_days=window), seed=2)
    assert _within(out.converted.sum(), 1 - np.exp(-h0 * window), n)
    buyers = out.converted
    times = out.purchase_at[buyers]
    assert stats.kstest(times, stats.truncexpon(b=h0 * window, scale=1 / h0).cdf).pvalue > 1e-3
    assert np.isnan(out.purchase_at[~buyers]).all() and not out.order_value[~buyers].any()
    log_ratio = np.log(out.order_value[buyers] / 100.0)
    assert log_ratio.mean() == pytest.approx(-(sigma**2) / 2, abs=4 * sigma / np.sqrt(times.size))
    assert log_ratio.std() == pytest.approx(sigma, rel=0.02)
    assert not (out.sent.any() or out.redeemed.any() or out.coupon_driven.any())
    assert out.spend == 0 and out.exhausted_at is None


def test_a_coupon_delivered_at_the_start_follows_the_response_model():
    """h0 = 0.5 a day, m = 0.4 and u = 1 a day, a coupon valid 1 day of a 14-day window, every
    user reached at time 0. While the coupon is valid the purchase rate is m h0 + u = 1.2 and a
    purchase is coupon-driven with probability u / 1.2; after, the rate is m h0 = 0.2 and
    nothing redeems. Coupon-driven orders are lifted to the threshold of 50; other orders
    redeem while valid when they reach it. Each redemption is paid in the hour of its purchase."""
    n, sigma = 20_000, ResponseParams().basket_sigma
    settings = EngineSettings(window_days=14, validity_days=1, instant_delivery=True,
                              params=UNIT_PARAMS, sms_cost=0.05)  # fmt: skip
    out = _unit_run(0.5, 0.4, 1.0, np.zeros(n, np.int64), settings, seed=4)
    assert out.delivered.all() and not out.delivered_at.any()
    t, value, driven = out.purchase_at, out.order_value, out.coupon_driven
    assert (t[out.converted] < 14).all()
    valid = out.converted & (t < 1)
    later = out.converted & (t >= 1)
    assert _within(valid.sum(), 1 - np.exp(-1.2), n)
    assert _within(later.sum(), np.exp(-1.2) * (1 - np.exp(-0.2 * 13)), n)
    assert stats.kstest(t[valid], stats.truncexpon(b=1.2, scale=1 / 1.2).cdf).pvalue > 1e-3
    assert stats.kstest(t[later] - 1, stats.truncexpon(b=0.2 * 13, scale=5).cdf).pvalue > 1e-3
    assert not driven[~valid].any() and _within(driven.sum(), 1 / 1.2, valid.sum())
    # Lifted: a driven order below the threshold becomes exactly 50, P(order < 50) = 0.094.
    assert (value[driven] >= 50).all()
    below = stats.norm.cdf((np.log(0.5) + sigma**2 / 2) / sigma)
    assert _within((value[driven] == 50).sum(), below, driven.sum())
    assert np.array_equal(out.redeemed, valid & (driven | (value >= 50)))
    assert np.array_equal(out.discount, np.where(out.redeemed, 10.0, 0.0))
    assert (value[out.converted] > 0).all() and (value[~out.converted] == 0).all()
    # Spend: every message at hour 0, each redemption in the hour of its purchase.
    hour = np.floor(t[out.redeemed] * 24).astype(int)
    expected = np.bincount(hour, minlength=14 * 24) * 10.0
    expected[0] += 0.05 * n
    assert np.allclose(out.spend_by_hour, expected)


def test_a_coupon_delivered_late_is_valid_only_until_the_window_closes():
    """A one-day window, coupons valid 7 days: 12,000 users who never buy take the gateway's
    first 12 hours (1,000 an hour), the last 1,000 (u = 1 a day, no natural rate) get theirs at
    hour 12, so they buy with probability 1 - exp(-0.5), and never after the window."""
    n, idle = 13_000, 12_000
    s = np.r_[np.zeros(idle), np.ones(n - idle)]
    settings = EngineSettings(window_days=1, validity_days=7, sms_per_hour=1000,
                              instant_delivery=True, params=UNIT_PARAMS)  # fmt: skip
    out = _unit_run(0.0, 1.0, s, np.zeros(n, np.int64), settings, seed=5)
    assert not out.converted[:idle].any() and (out.delivered_at[idle:] == 0.5).all()
    assert _within(out.converted.sum(), 1 - np.exp(-0.5), n - idle)
    assert (out.purchase_at[out.converted] < 1).all()
    assert np.array_equal(out.redeemed, out.converted)  # no natural rate: all coupon-driven


def test_a_slow_gateway_delivers_within_the_sending_hour_and_earlier_natural_orders_stand():
    """100 messages an hour to 2,000 users who buy naturally at h0 = 3 a day (m = 1, no pull of
    the coupon): each delivery falls at a uniform moment of its sending hour; a user who bought
    before the coupon arrived keeps that order, unredeemed; the others buy at rate m h0 after
    delivery and redeem while the coupon is valid when the order reaches 50."""
    n, h0 = 2000, 3.0
    out = _unit_run(h0, 1.0, 0.0, np.zeros(n, np.int64), EngineSettings(sms_per_hour=100), seed=6)
    d, t = out.delivered_at, out.purchase_at
    assert out.delivered.all()
    assert np.array_equal(np.floor(d * 24), np.arange(n) // 100)
    assert stats.kstest(d * 24 % 1, "uniform").pvalue > 1e-3
    before = t < d
    assert _within(before.sum(), 1 - np.exp(-h0 * d))
    fresh = out.converted & ~before
    assert stats.kstest(t[fresh] - d[fresh], "expon", args=(0, 1 / h0)).pvalue > 1e-3
    assert not out.coupon_driven.any()
    assert np.array_equal(out.redeemed, fresh & (t < d + 7) & (out.order_value >= 50))


@pytest.mark.parametrize(
    ("mode", "sent"), [("stop_issuing", 30), ("stop_honouring", 30), ("continue", 60)]
)
def test_messages_alone_spend_the_budget_in_the_hour_that_reaches_it(mode, sent):
    """Ten messages an hour at 1 each to 60 users who never buy, budget 30: the third hour's
    messages reach it exactly (30 >= 30), so it is spent at hour 2; the stopping modes send
    nothing more, "continue" sends all six hours and keeps the first moment."""
    settings = EngineSettings(window_days=1, sms_per_hour=10, sms_cost=1.0, budget=30.0,
                              on_budget_spent=mode)  # fmt: skip
    out = simulate_campaign(np.zeros(60), np.ones(60), np.zeros(60), np.full(60, 50.0),
                            np.zeros(60, np.int64), HAND_MENU, settings,
                            np.random.default_rng(0))  # fmt: skip
    assert out.sent.sum() == sent and out.sent[:sent].all()
    assert out.exhausted_at == 2 / 24
    assert np.array_equal(
        out.spend_by_hour, np.r_[np.full(sent // 10, 10.0), np.zeros(24 - sent // 10)]
    )


def test_a_campaign_that_sends_nothing_spends_nothing_even_of_a_zero_budget():
    settings = EngineSettings(window_days=1, budget=0.0, on_budget_spent="stop_issuing")
    out = _hand_run(0, settings)
    assert out.exhausted_at is None and out.spend == 0
    nobody = simulate_campaign(np.zeros(4), np.ones(4), np.ones(4), np.full(4, 50.0),
                               np.full(4, -1), HAND_MENU, settings,
                               np.random.default_rng(0))  # fmt: skip
    assert nobody.exhausted_at is None and not nobody.sent.any() and nobody.spend == 0


def test_a_redemption_that_lands_exactly_on_the_budget_is_paid():
    """Budget 91 = 10 messages + 9 redemptions of 9: the ninth purchase reaches the budget
    exactly and is paid; the tenth is declined (stop_honouring), and the budget ran out at its
    moment (the same draws without a budget give the moment)."""
    base = dict(window_days=1, validity_days=1, sms_per_hour=10, instant_delivery=True,
                sms_cost=1.0)  # fmt: skip
    out = _hand_run(10, EngineSettings(**base, budget=91.0, on_budget_spent="stop_honouring"))
    free = _hand_run(10, EngineSettings(**base))
    last = int(np.argmax(free.purchase_at))
    assert out.converted.sum() == 9 and not out.converted[last]
    assert out.spend == 91.0 and out.spend_by_hour[0] == 91.0
    assert out.exhausted_at == pytest.approx(free.purchase_at[last], rel=1e-12)
    assert out.exhausted_at != pytest.approx(np.sort(free.purchase_at)[-2], rel=1e-12)


def test_every_hour_of_the_window_is_sent_and_settled():
    """One message an hour for a day to 24 quick buyers: each hour pays its message and the
    redemption of its purchase, the last hour's too."""
    settings = EngineSettings(window_days=1, validity_days=1, sms_per_hour=1,
                              instant_delivery=True, sms_cost=1.0)  # fmt: skip
    out = _hand_run(24, settings)
    assert out.converted.all() and out.redeemed.all()
    assert np.array_equal(np.floor(out.purchase_at * 24), np.arange(24))
    assert np.array_equal(out.spend_by_hour, np.full(24, 10.0))


def test_simultaneous_purchases_are_paid_in_sending_order():
    """Users 0-19 (who never buy) are sent at hour 0, users 20-39 at hour 1; the even ones of
    those are so keen (sensitivity 1e300) that they buy at the very moment of delivery, 1/24
    exactly, the odd ones seconds later. The budget (40 messages + 5 redemptions) pays the first
    five even users in sending order; every other order is declined (stop_honouring). The
    purchases at the start of hour 1 are paid in hour 1."""
    n = 40
    s = np.zeros(n)
    s[20::2], s[21::2] = 1e300, 1e6
    settings = EngineSettings(window_days=1, validity_days=1, sms_per_hour=20,
                              instant_delivery=True, sms_cost=1.0, budget=40.0 + 5 * 9,
                              on_budget_spent="stop_honouring")  # fmt: skip
    out = simulate_campaign(np.zeros(n), np.ones(n), s, np.full(n, 50.0), np.zeros(n, np.int64),
                            HAND_MENU, settings, np.random.default_rng(0))  # fmt: skip
    assert np.array_equal(np.flatnonzero(out.converted), [20, 22, 24, 26, 28])
    assert out.exhausted_at == 1 / 24
    assert np.array_equal(out.spend_by_hour[:3], [20.0, 65.0, 0.0])


def test_users_without_a_natural_rate_or_a_message_effect_raise_no_warnings():
    """Rates of zero (no natural purchase, no purchase after the coupon) are infinite waits, not
    floating-point warnings."""
    n = 200
    h0, m = np.r_[np.zeros(100), np.full(100, 2.0)], np.r_[np.ones(100), np.zeros(100)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _unit_run(h0, m, 0.0, np.zeros(n, np.int64),
                        EngineSettings(validity_days=1, params=UNIT_PARAMS))  # fmt: skip
    assert not out.converted[:100].any()  # no rate at all
    # m = 0: only natural purchases before the coupon arrived (within the first hour).
    assert (out.purchase_at[out.converted] < out.delivered_at[out.converted]).all()


def test_lost_messages_and_views_on_a_gateway_spreading_deliveries_over_the_hour():
    """Half the messages fail (never delivered, never viewed); a delivered coupon is viewed
    with probability 0.3; deliveries fall within their sending hour (200 an hour)."""
    n = 4000
    settings = EngineSettings(sms_per_hour=200, failure_rate=0.5, view_rate=0.3)
    out = _unit_run(0.0, 1.0, 0.0, np.zeros(n, np.int64), settings, seed=9)
    assert out.sent.all() and _within(out.delivered.sum(), 0.5, n)
    d = out.delivered_at
    assert np.isnan(d[~out.delivered]).all()
    assert np.array_equal(np.floor(d[out.delivered] * 24), np.flatnonzero(out.delivered) // 200)
    assert not out.viewed[~out.delivered].any()
    assert _within(out.viewed.sum(), 0.3, out.delivered.sum())


def test_after_the_coupon_expires_users_buy_at_the_messaged_rate_until_the_window_closes():
    """A window of 2.5 days, coupons valid a day: 24,000 idle users fill the first 12 hours
    (2,000 an hour), then 2,000 users with no coupon pull, h0 = 1 and m = 0.5, get theirs at
    hour 12: they buy at rate 1 before it, at 0.5 while it is valid (day 0.5 to 1.5) and after
    it (day 1.5 to 2.5), never later."""
    idle, n = 24_000, 26_000
    h0 = np.r_[np.zeros(idle), np.ones(n - idle)]
    settings = EngineSettings(window_days=2.5, validity_days=1, sms_per_hour=2000,
                              instant_delivery=True, params=UNIT_PARAMS)  # fmt: skip
    out = _unit_run(h0, 0.5, 0.0, np.zeros(n, np.int64), settings, seed=10)
    users, t = slice(idle, n), out.purchase_at[idle:]
    assert (out.delivered_at[users] == 0.5).all()
    assert _within((t < 0.5).sum(), 1 - np.exp(-0.5), n - idle)  # natural, before delivery
    valid = (t >= 0.5) & (t < 1.5)
    assert _within(valid.sum(), np.exp(-0.5) * (1 - np.exp(-0.5)), n - idle)
    assert _within((t >= 1.5).sum(), np.exp(-1.0) * (1 - np.exp(-0.5)), n - idle)
    assert (t[out.converted[users]] < 2.5).all()


def test_an_infinite_natural_rate_buys_at_once_without_warnings():
    """h0 = inf: the user buys at time 0, the very moment the coupon arrives (instant delivery),
    so not before it: the order is made holding the coupon and redeems when it reaches the
    threshold of 50 (baskets of 55: about half do). No floating-point warnings."""
    n = 40
    settings = EngineSettings(instant_delivery=True, params=UNIT_PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = simulate_campaign(np.full(n, np.inf), np.ones(n), np.ones(n), np.full(n, 55.0),
                                np.zeros(n, np.int64), UNIT_MENU, settings,
                                np.random.default_rng(13))  # fmt: skip
    assert out.converted.all() and (out.purchase_at == 0).all()
    reaches = out.order_value >= 50
    assert reaches.any() and not reaches.all()
    assert np.array_equal(out.redeemed, reaches)


def test_a_natural_order_exactly_at_the_threshold_redeems():
    """Orders of exactly the basket (no spread, sigma = 0) of 50, the threshold: a natural
    purchase while the coupon is valid redeems, one after the validity does not."""
    n = 400
    params = ResponseParams(coupon_rate=2.0, discount_midpoint=0.1, basket_sigma=0.0)
    settings = EngineSettings(validity_days=1, instant_delivery=True, params=params)
    out = simulate_campaign(np.full(n, 0.5), np.ones(n), np.zeros(n), np.full(n, 50.0),
                            np.zeros(n, np.int64), UNIT_MENU, settings,
                            np.random.default_rng(11))  # fmt: skip
    assert (out.order_value[out.converted] == 50).all()
    valid = out.converted & (out.purchase_at < 1)
    assert valid.sum() > 100 and (out.converted & ~valid).sum() > 100
    assert np.array_equal(out.redeemed, valid)


def test_a_redemption_days_after_delivery_is_paid_in_its_hour():
    """Five users (u = 1 a day, no natural rate) redeem hours or days after delivery at hour 0,
    hours apart: each redemption of 10 is paid in the hour of its purchase."""
    settings = EngineSettings(validity_days=7, instant_delivery=True, params=UNIT_PARAMS,
                              sms_cost=1.0)  # fmt: skip
    out = _unit_run(0.0, 1.0, 1.0, np.zeros(5, np.int64), settings, seed=12)
    assert out.redeemed.sum() >= 3
    hour = np.floor(out.purchase_at[out.redeemed] * 24).astype(int)
    assert len(set(hour)) == hour.size and hour.min() > 0
    expected = np.bincount(hour, minlength=14 * 24) * 10.0
    expected[0] += 5.0
    assert np.array_equal(out.spend_by_hour, expected)


def test_the_budget_counts_every_hour_of_spend():
    """Ten quick buyers an hour for three hours, budget 255: hours 0-2 send 30 money of
    messages and hours 0-1 redeem 20 x 9; at hour 2's purchases 210 are spent, so five more
    fit (255) and the other five are declined (stop_honouring)."""
    settings = EngineSettings(window_days=1, validity_days=1, sms_per_hour=10,
                              instant_delivery=True, sms_cost=1.0, budget=255.0,
                              on_budget_spent="stop_honouring")  # fmt: skip
    out = _hand_run(30, settings)
    assert out.converted[:20].all() and out.converted[20:].sum() == 5
    assert out.spend == 255.0
    assert np.array_equal(out.spend_by_hour[:4], [100.0, 100.0, 55.0, 0.0])
