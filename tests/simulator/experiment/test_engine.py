"""The discrete-event campaign engine against the world's truth, its gateway and its budget."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from optimizer.io import Denomination, Menu
from optimizer.io.contract import coupon_column, redeem_column
from simulator.experiment.engine import EngineSettings, simulate_campaign, traits_of
from simulator.experiment.reference import simulate_per_user


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
