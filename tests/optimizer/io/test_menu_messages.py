"""Menus with message treatments: validation, expected costs, spend variance, monotonicity.

Every figure is recomputed by hand, treatment by treatment, from the menu's definitions:
expected cost ``send_k + p_k * (r_k * face_k + conversion_cost_k)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from optimizer.errors import InputError
from optimizer.io.menu import Denomination, Menu
from optimizer.io.tomlfile import validate
from optimizer.models.coupon import enforce_menu_monotonicity
from optimizer.planning.plan import Plan
from optimizer.solvers.problem import build_problem

MIXED = Menu.model_validate(
    {
        "denomination": [
            {"name": "10off99", "face_value": 10.0, "threshold": 99.0, "redemption_share": 0.5},
            {"name": "promo", "kind": "message", "send_cost": 0.15, "conversion_cost": 2.0},
        ]
    }
)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("extra", [{"face_value": 5.0}, {"threshold": 20.0}])
def test_message_with_face_value_or_threshold_is_refused(extra):
    with pytest.raises(ValidationError, match="message has no face value"):
        Denomination(name="promo", kind="message", **extra)
    menu = {"denomination": [{"name": "promo", "kind": "message", **extra}]}
    with pytest.raises(InputError) as excinfo:
        validate(Menu, menu, source="menu.toml")
    assert "menu.toml" in str(excinfo.value)
    assert "denomination[0]" in str(excinfo.value)


def test_coupon_without_face_value_is_refused():
    with pytest.raises(ValidationError, match="face_value > 0"):
        Denomination(name="gift")
    with pytest.raises(ValidationError, match="face_value > 0"):
        Denomination(name="gift", kind="coupon", threshold=10.0)


def test_negative_costs_and_unknown_kind_are_refused():
    with pytest.raises(ValidationError):
        Denomination(name="promo", kind="message", send_cost=-0.1)
    with pytest.raises(ValidationError):
        Denomination(name="promo", kind="message", conversion_cost=-1.0)
    with pytest.raises(ValidationError):
        Denomination(name="promo", kind="sms")


def test_menu_cost_properties():
    menu = Menu.model_validate(
        {
            "denomination": [
                {"name": "5off49", "face_value": 5.0, "threshold": 49.0},
                {"name": "promo", "kind": "message", "send_cost": 0.15, "conversion_cost": 2.0},
                {"name": "mail", "kind": "message"},
                {"name": "10off99", "face_value": 10.0, "threshold": 99.0, "send_cost": 0.0},
            ]
        }
    )
    np.testing.assert_array_equal(menu.send_costs(0.07), [0.07, 0.15, 0.07, 0.0])
    np.testing.assert_array_equal(menu.send_costs(0.0), [0.0, 0.15, 0.0, 0.0])
    np.testing.assert_array_equal(menu.conversion_costs, [0.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(menu.coupons, [True, False, False, True])
    np.testing.assert_array_equal(menu.face_values, [5.0, 0.0, 0.0, 10.0])
    np.testing.assert_array_equal(menu.thresholds, [49.0, 0.0, 0.0, 99.0])
    assert menu.send_costs(0.07).dtype == np.float64
    assert not menu.all_coupons and not menu.plain


def test_all_coupons_and_plain():
    plain = Menu.model_validate(
        {"denomination": [{"name": "5off49", "face_value": 5.0, "threshold": 49.0}]}
    )
    assert plain.all_coupons and plain.plain
    priced = Menu.model_validate(
        {
            "denomination": [
                {"name": "5off49", "face_value": 5.0, "threshold": 49.0, "send_cost": 0.05}
            ]
        }
    )
    assert priced.all_coupons and not priced.plain  # a send cost of its own, even the default's
    fee = Menu.model_validate(
        {
            "denomination": [
                {"name": "5off49", "face_value": 5.0, "threshold": 49.0, "conversion_cost": 1.0}
            ]
        }
    )
    assert fee.all_coupons and not fee.plain
    messages = Menu.model_validate({"denomination": [{"name": "promo", "kind": "message"}]})
    assert not messages.all_coupons and not messages.plain
    np.testing.assert_array_equal(messages.coupons, [False])


# --------------------------------------------------------------------------- the problem


def _scores():
    p0 = np.array([0.10, 0.30, 0.02, 0.55])
    p = np.array(
        [
            [0.25, 0.12],
            [0.35, 0.50],
            [0.02, 0.01],
            [0.90, 0.60],
        ]
    )
    basket = np.array([40.0, 120.0, 99.0, 0.0])
    return p0, p, basket


def test_mixed_menu_cost_matrix_recounted():
    p0, p, basket = _scores()
    sms = 0.05
    problem = build_problem(
        np.arange(1, 5), p0, p, MIXED, objective="profit", basket=basket, sms_cost=sms
    )
    expected = np.empty_like(p)
    for i, k in itertools.product(range(4), range(2)):
        d = MIXED.denomination[k]
        send = sms if d.send_cost is None else d.send_cost
        expected[i, k] = send + p[i, k] * (d.redemption_share * d.face_value + d.conversion_cost)
    np.testing.assert_allclose(problem.cost, expected, rtol=0, atol=1e-12)
    # By hand for user 1: coupon 0.05 + 0.25 * 0.5 * 10, message 0.15 + 0.12 * 2.
    assert problem.cost[0, 0] == pytest.approx(1.3)
    assert problem.cost[0, 1] == pytest.approx(0.39)


def test_mixed_menu_profit_value_recounted():
    p0, p, basket = _scores()
    margin = 0.3
    problem = build_problem(
        np.arange(1, 5),
        p0,
        p,
        MIXED,
        objective="profit",
        basket=basket,
        sms_cost=0.05,
        margin_rate=margin,
    )
    gmv = np.empty_like(p)
    for i, k in itertools.product(range(4), range(2)):
        d = MIXED.denomination[k]
        lift = p[i, k] - p0[i]
        stretch = max(d.threshold - basket[i], 0.0)
        gmv[i, k] = lift * basket[i] + max(lift, 0.0) * stretch
    np.testing.assert_allclose(problem.gmv_uplift(), gmv, atol=1e-12)
    np.testing.assert_allclose(problem.value, margin * gmv - problem.cost, atol=1e-12)
    # The message lifts no order to a threshold: its GMV is the extra buyers' baskets.
    np.testing.assert_allclose(gmv[:, 1], (p[:, 1] - p0) * basket, atol=1e-12)


def test_conversions_and_gmv_objectives_keep_message_costs():
    p0, p, basket = _scores()
    conv = build_problem(np.arange(1, 5), p0, p, MIXED, basket=basket)
    np.testing.assert_allclose(conv.value, p - p0[:, None], atol=1e-12)
    gmv = build_problem(np.arange(1, 5), p0, p, MIXED, objective="gmv", basket=basket)
    np.testing.assert_allclose(gmv.cost, conv.cost)
    assert conv.cost[1, 1] == pytest.approx(0.15 + 0.5 * 2.0)


def test_redemption_model_costs_for_a_mixed_menu():
    p0, p, basket = _scores()
    redeem = np.array([[0.2, 0.9], [0.4, 0.9], [0.6, 0.9], [0.8, 0.9]])
    problem = build_problem(
        np.arange(1, 5), p0, p, MIXED, objective="profit", basket=basket, redeem=redeem
    )
    for i in range(4):
        # The coupon's face is paid per redemption; the message has no face, so its redemption
        # score costs nothing and only the conversion cost counts.
        assert problem.cost[i, 0] == pytest.approx(0.05 + p[i, 0] * redeem[i, 0] * 10.0, abs=1e-6)
        assert problem.cost[i, 1] == pytest.approx(0.15 + p[i, 1] * 2.0, abs=1e-6)


def test_starbucks_net_incremental_revenue():
    menu = Menu.model_validate(
        {"denomination": [{"name": "promotion", "kind": "message", "send_cost": 0.15}]}
    )
    rng = np.random.default_rng(5)
    n = 50
    p0 = rng.uniform(0.0, 0.05, n)
    p1 = np.clip(p0 + rng.normal(0.005, 0.02, n), 0.0, 1.0)
    problem = build_problem(
        np.arange(n),
        p0,
        p1[:, None],
        menu,
        objective="profit",
        basket=np.full(n, 10.0),
        margin_rate=1.0,
        sms_cost=0.99,  # the promotion's own send cost wins
    )
    nir = 10 * (p1 - p0) - 0.15
    np.testing.assert_allclose(problem.value[:, 0], nir, atol=1e-12)
    # With the mixed menu's conversion cost of 2 the exercise's formula pays 2 per buyer more.
    fee = Menu.model_validate(
        {
            "denomination": [
                {"name": "promotion", "kind": "message", "send_cost": 0.15, "conversion_cost": 2}
            ]
        }
    )
    problem = build_problem(
        np.arange(n),
        p0,
        p1[:, None],
        fee,
        objective="profit",
        basket=np.full(n, 10.0),
        margin_rate=1.0,
    )
    np.testing.assert_allclose(problem.value[:, 0], nir - 2 * p1, atol=1e-12)


# --------------------------------------------------------------------------- spend moments


def _exact_moments(choice, p, menu, sms, redeem=None):
    """Mean and variance of the spend by enumerating each user's three outcomes."""
    mean = var = 0.0
    for i, k in enumerate(choice):
        if k < 0:
            continue
        d = menu.denomination[k]
        send = sms if d.send_cost is None else d.send_cost
        r = d.redemption_share if redeem is None else redeem[i, k]
        outcomes = [
            (1 - p[i, k], send),  # no conversion
            (p[i, k] * (1 - r), send + d.conversion_cost),  # converts, does not redeem
            (p[i, k] * r, send + d.conversion_cost + d.face_value),  # converts and redeems
        ]
        m = sum(w * x for w, x in outcomes)
        mean += m
        var += sum(w * (x - m) ** 2 for w, x in outcomes)
    return mean, var


def _three_arm_menu():
    return Menu.model_validate(
        {
            "denomination": [
                {
                    "name": "10off99",
                    "face_value": 10.0,
                    "threshold": 99.0,
                    "redemption_share": 0.5,
                },
                {"name": "promo", "kind": "message", "send_cost": 0.15, "conversion_cost": 2.0},
                {
                    "name": "20off199",
                    "face_value": 20.0,
                    "threshold": 199.0,
                    "redemption_share": 0.7,
                    "conversion_cost": 3.0,
                },
            ]
        }
    )


def test_spend_moments_exact_for_messages_and_coupons():
    menu = _three_arm_menu()
    rng = np.random.default_rng(0)
    n = 30
    p0 = rng.uniform(0.0, 0.3, n)
    p = np.clip(p0[:, None] + rng.uniform(0.0, 0.4, (n, 3)), 0, 1)
    problem = build_problem(np.arange(n), p0, p, menu, sms_cost=0.05)
    choice = np.array([-1, 0, 1, 2, 1] * 6, dtype=np.int16)
    plan = Plan(problem, choice, "test", "none", budget=1e9)
    mean, sd = plan.spend_moments()
    exact_mean, exact_var = _exact_moments(choice, p, menu, 0.05)
    assert mean == pytest.approx(exact_mean, rel=1e-12)
    assert sd == pytest.approx(np.sqrt(exact_var), rel=1e-9)


def test_spend_moments_message_only_plan():
    menu = MIXED
    p0 = np.array([0.1, 0.2, 0.3])
    p = np.array([[0.2, 0.4], [0.3, 0.5], [0.4, 0.25]])
    problem = build_problem(np.arange(3), p0, p, menu, sms_cost=0.05)
    plan = Plan(problem, np.array([1, 1, 1], dtype=np.int16), "test", "none", budget=10.0)
    mean, sd = plan.spend_moments()
    # Spend = 0.15 each for sure + 2 per buyer: variance 4 * sum p (1 - p).
    assert mean == pytest.approx(3 * 0.15 + 2 * (0.4 + 0.5 + 0.25))
    assert sd == pytest.approx(np.sqrt(4 * (0.4 * 0.6 + 0.5 * 0.5 + 0.25 * 0.75)))


def test_spend_moments_with_a_redemption_model_match_a_simulation():
    menu = _three_arm_menu()
    rng = np.random.default_rng(1)
    n = 40
    p0 = rng.uniform(0.0, 0.2, n)
    p = np.clip(p0[:, None] + rng.uniform(0.05, 0.5, (n, 3)), 0, 1)
    redeem = rng.uniform(0.1, 0.9, (n, 3)).astype(np.float32)
    problem = build_problem(np.arange(n), p0, p, menu, redeem=redeem)
    choice = rng.integers(-1, 3, n).astype(np.int16)
    plan = Plan(problem, choice, "test", "none", budget=1e9)
    mean, sd = plan.spend_moments()
    exact_mean, exact_var = _exact_moments(choice, p, menu, 0.05, redeem.astype(np.float64))
    assert mean == pytest.approx(exact_mean, rel=1e-6)
    assert sd == pytest.approx(np.sqrt(exact_var), rel=1e-6)
    # A seeded simulation of the realised spend agrees within sampling error.
    draws = 20_000
    rows = np.flatnonzero(choice >= 0)
    k = choice[rows]
    f, v = menu.face_values[k], menu.conversion_costs[k]
    send = menu.send_costs(0.05)[k]
    pk = p[rows, k]
    rk = redeem[rows, k].astype(np.float64)
    u = rng.random((draws, rows.size))
    converts = u < pk
    redeems = u < pk * rk  # redeeming implies converting
    spend = (send + converts * v + redeems * f).sum(axis=1)
    assert spend.mean() == pytest.approx(mean, abs=4 * sd / np.sqrt(draws))
    assert spend.std() == pytest.approx(sd, rel=0.05)


# --------------------------------------------------------------------------- monotonicity


def test_monotonicity_leaves_two_messages_independent():
    menu = Menu.model_validate(
        {
            "denomination": [
                {"name": "email", "kind": "message"},
                {"name": "sms", "kind": "message", "send_cost": 0.1},
            ]
        }
    )
    p = np.array([[0.1, 0.4], [0.5, 0.2], [0.3, 0.3]])
    out = enforce_menu_monotonicity(p.copy(), menu)
    np.testing.assert_array_equal(out, p)


def test_monotonicity_over_coupons_only_in_a_mixed_menu():
    menu = Menu.model_validate(
        {
            "denomination": [
                {"name": "5off49", "face_value": 5.0, "threshold": 49.0},
                {"name": "email", "kind": "message"},
                {"name": "10off49", "face_value": 10.0, "threshold": 49.0},
                {"name": "sms", "kind": "message"},
            ]
        }
    )
    p = np.array([[0.6, 0.1, 0.3, 0.9], [0.2, 0.8, 0.4, 0.05]])
    out = enforce_menu_monotonicity(p.copy(), menu)
    # Naive closure over coupon pairs: j at least as generous as i -> p_j >= max p_i.
    expected = p.copy()
    coupons = [0, 2]
    for j in coupons:
        for i in coupons:
            d_j, d_i = menu.denomination[j], menu.denomination[i]
            if d_j.face_value >= d_i.face_value and d_j.threshold <= d_i.threshold:
                expected[:, j] = np.maximum(expected[:, j], p[:, i])
    np.testing.assert_array_equal(out, expected)
    assert out[0, 2] == 0.6  # 10off49 raised to 5off49's probability
    np.testing.assert_array_equal(out[:, [1, 3]], p[:, [1, 3]])  # messages untouched


def test_a_treatment_with_its_own_conversion_value():
    """GMV = p * w - p0 * basket for a treatment worth w per conversion (naive recount)."""
    menu = Menu(
        denomination=(
            Denomination(name="promo", kind="message", send_cost=0.15, conversion_value=10.0),
            Denomination(name="c", face_value=5.0, threshold=20.0),
        )
    )
    p0 = np.array([0.01, 0.20])
    p = np.array([[0.03, 0.05], [0.25, 0.30]])
    basket = np.array([4.0, 30.0])
    problem = build_problem(
        np.arange(2), p0, p, menu, objective="gmv", basket=basket, sms_cost=0.05
    )
    expected_promo = p[:, 0] * 10.0 - p0 * basket
    expected_coupon = (p[:, 1] - p0) * basket + np.maximum(p[:, 1] - p0, 0) * np.maximum(
        20.0 - basket, 0
    )
    np.testing.assert_allclose(problem.value[:, 0], expected_promo)
    np.testing.assert_allclose(problem.value[:, 1], expected_coupon)
    assert not menu.plain


def test_spend_moments_add_each_options_level_error():
    """With a relative error e_k on option k's paid level, the variance gains (e_k paid_k)^2:
    recounted here by enumeration, and checked against a simulation that draws each option's
    level once per campaign."""
    menu = _three_arm_menu()
    rng = np.random.default_rng(2)
    n = 60
    p0 = rng.uniform(0.0, 0.2, n)
    p = np.clip(p0[:, None] + rng.uniform(0.05, 0.4, (n, 3)), 0, 1)
    redeem = rng.uniform(0.2, 0.8, (n, 3)).astype(np.float32)
    problem = build_problem(np.arange(n), p0, p, menu, redeem=redeem)
    choice = rng.integers(-1, 3, n).astype(np.int16)
    exact = Plan(problem, choice, "test", "none", budget=1e9).spend_moments()
    problem.spend_error = np.array([0.1, 0.0, 0.3])
    mean, sd = Plan(problem, choice, "test", "none", budget=1e9).spend_moments()
    _, var = _exact_moments(choice, p, menu, 0.05, redeem.astype(np.float64))
    paid = [0.0, 0.0, 0.0]
    for i, k in enumerate(choice):
        if k >= 0:
            d = menu.denomination[k]
            paid[k] += p[i, k] * (redeem[i, k] * d.face_value + d.conversion_cost)
    var += (0.1 * paid[0]) ** 2 + (0.3 * paid[2]) ** 2
    assert mean == pytest.approx(exact[0]) and sd > exact[1]
    assert sd == pytest.approx(np.sqrt(var), rel=1e-6)
    draws = 20_000
    rows = np.flatnonzero(choice >= 0)
    k = choice[rows]
    level = 1 + rng.normal(0, 1, (draws, 1)) * problem.spend_error[k][None, :]
    pk, rk = p[rows, k], redeem[rows, k].astype(np.float64)
    u = rng.random((draws, rows.size))
    converts = u < np.clip(level * pk, 0, 1)  # the level error scales the paid probabilities
    redeems = u < np.clip(level * pk * rk, 0, 1)
    f, v = menu.face_values[k], menu.conversion_costs[k]
    spend = (menu.send_costs(0.05)[k] + converts * v + redeems * f).sum(axis=1)
    assert spend.std() == pytest.approx(sd, rel=0.06)
