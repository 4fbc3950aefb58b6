"""A plan's figures, spend moments and invariants on hand-worked problems."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from optimizer.errors import InputError
from optimizer.io import Denomination, Menu
from optimizer.planning.plan import Plan, PlanError, check_plan
from optimizer.planning.spend import fit_overrun_rule, spend_moments_of, spend_parts
from optimizer.solvers import Constraints, SegmentShare, build_problem

#: Three treatments: a plain coupon redeemed by half its converters, a coupon with a send cost
#: and a cost per conversion of its own, and one the plans below never send.
MENU = Menu(
    denomination=(
        Denomination(name="5off49", face_value=5, threshold=49, redemption_share=0.5),
        Denomination(
            name="10off99", face_value=10, threshold=99, redemption_share=0.8,
            send_cost=0.2, conversion_cost=3.0,
        ),
        Denomination(name="20off199", face_value=20, threshold=199),
    )
)  # fmt: skip
SMS = 0.05
MARGIN = 0.3
IDS = np.array([11, 12, 13, 14, 15])
P0 = np.array([0.1, 0.2, 0.05, 0.3, 0.4])
P = np.array(
    [
        [0.3, 0.5, 0.6],
        [0.25, 0.45, 0.5],
        [0.2, 0.1, 0.4],
        [0.35, 0.6, 0.7],
        [0.5, 0.55, 0.9],
    ]
)
BASKET = np.array([40.0, 120.0, 80.0, 60.0, 250.0])
SEGMENT = np.array(["a", "b", "a", "b", "c"])
CHOICE = np.array([0, 1, -1, 1, 0], dtype=np.int16)


def _problem(redeem=None, segment=SEGMENT, objective="gmv", sms=SMS):
    return build_problem(
        IDS, P0, P, MENU, objective=objective, sms_cost=sms, margin_rate=MARGIN,
        basket=BASKET, segment=segment, redeem=redeem,
    )  # fmt: skip


def _plan(choice=CHOICE, budget=20.0, **kw):
    return Plan(_problem(**kw), np.asarray(choice, dtype=np.int16), "hand", "none", budget)


# The recount: each treatment's spend and GMV from the menu's definitions, by plain loops.


def _send(k: int) -> float:
    d = MENU.denomination[k]
    return SMS if d.send_cost is None else d.send_cost


def _outcomes(i: int, k: int, redeem=None) -> list[tuple[float, float]]:
    """(probability, money paid) of each outcome of treatment k to user i, besides the send."""
    d = MENU.denomination[k]
    p = P[i, k]
    r = d.redemption_share if redeem is None else float(np.float32(redeem[i, k]))
    return [
        (p * r, d.face_value + d.conversion_cost),  # converts and redeems
        (p * (1 - r), d.conversion_cost),  # converts, keeps the coupon
        (1 - p, 0.0),  # does not convert
    ]


def _spend_recount(choice, redeem=None, errors=None) -> tuple[float, float]:
    mean, variance = 0.0, 0.0
    paid = [0.0] * len(MENU)
    for i, k in enumerate(choice):
        if k < 0:
            continue
        outcomes = _outcomes(i, int(k), redeem)
        m = sum(prob * money for prob, money in outcomes)
        mean += _send(int(k)) + m
        variance += sum(prob * money**2 for prob, money in outcomes) - m**2
        paid[int(k)] += m
    if errors is not None:
        variance += sum((e * s) ** 2 for e, s in zip(errors, paid, strict=True))
    return mean, math.sqrt(variance)


def _gmv(i: int, k: int) -> float:
    lift = P[i, k] - P0[i]
    stretch = max(MENU.denomination[k].threshold - BASKET[i], 0.0)
    return lift * BASKET[i] + max(lift, 0.0) * stretch


def _normal_tail(x: float) -> float:
    """P(Z > x) for a standard normal Z."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def test_spend_moments_recount_faces_conversion_costs_and_level_errors():
    """Mean and spread of the realised spend, with and without the level errors, equal the
    recount over each treatment's three outcomes; the errors add per option, not per user."""
    plan = _plan()
    mean, sd = plan.spend_moments()
    want_mean, want_sd = _spend_recount(CHOICE)
    assert mean == pytest.approx(want_mean, rel=1e-12)
    assert sd == pytest.approx(want_sd, rel=1e-12)
    errors = np.array([0.1, 0.3, 0.7])
    plan.problem.spend_error = errors
    mean, sd = plan.spend_moments()
    want_mean, want_sd = _spend_recount(CHOICE, errors=errors)
    assert mean == pytest.approx(want_mean, rel=1e-12)
    assert sd == pytest.approx(want_sd, rel=1e-12)
    # Hand-worked: users 12 and 14 get 10off99, paying 0.8 * 10 * p + 3 * p = 11 p on average
    # (4.95 + 6.6), users 11 and 15 get 5off49, paying 0.5 * 5 * p (0.75 + 1.25).
    added = want_sd**2 - _spend_recount(CHOICE)[1] ** 2
    assert added == pytest.approx((0.1 * 2.0) ** 2 + (0.3 * 11.55) ** 2)


def test_spend_parts_add_up_by_option_with_a_redemption_model():
    """The parts: expected spend, the variance of independent outcomes and each option's paid
    level, with per-user redemption scores; an option nobody gets has level 0."""
    redeem = np.array(
        [[0.9, 0.4, 0.5], [0.3, 0.6, 0.5], [0.5, 0.5, 0.5], [0.7, 0.25, 0.5], [0.1, 0.2, 0.5]]
    )
    problem = _problem(redeem=redeem)
    parts = spend_parts(problem, CHOICE)
    assert parts.shape == (2 + len(MENU),)
    mean, sd = _spend_recount(CHOICE, redeem=redeem)
    assert parts[0] == pytest.approx(mean, rel=1e-9)
    assert parts[1] == pytest.approx(sd**2, rel=1e-9)
    level = [0.0, 0.0, 0.0]
    for i, k in enumerate(CHOICE):
        if k >= 0:
            level[k] += sum(prob * money for prob, money in _outcomes(i, int(k), redeem))
    np.testing.assert_allclose(parts[2:], level, rtol=1e-9)
    assert parts[4] == 0.0
    # Only the first option chosen: the levels still have one entry per option.
    only = spend_parts(problem, np.array([0, -1, -1, -1, -1]))
    assert only.shape == (5,) and only[3] == only[4] == 0.0
    # Nobody targeted: nothing at all.
    np.testing.assert_array_equal(spend_parts(problem, np.full(5, -1)), np.zeros(5))


def test_spend_moments_of_a_sum_clips_a_rounding_negative_variance():
    """A variance summed from chunks may round below zero: the spread is then 0, not NaN; a
    tiny positive variance keeps its own root."""
    assert spend_moments_of(np.array([3.0, -1e-12, 0.0]), None) == (3.0, 0.0)
    assert spend_moments_of(np.array([3.0, 0.25, 0.0]), None) == (3.0, 0.5)
    mean, sd = spend_moments_of(np.array([2.0, 0.09, 1.0, 2.0]), np.array([0.3, 0.2]))
    assert (mean, sd) == (2.0, pytest.approx(math.sqrt(0.09 + 0.09 + 0.16)))


def test_overrun_probability_is_the_normal_tail_and_a_sure_spend_is_zero_or_one():
    plan = _plan()
    mean, sd = _spend_recount(CHOICE)
    for budget in (mean - 2.0, mean + 0.5, mean + 3.0):
        plan.budget = budget
        assert plan.overrun_probability() == pytest.approx(
            _normal_tail((budget - mean) / sd), rel=1e-9
        )
    # Users whose coupon never converts spend their send cost for sure.
    sure = Plan(
        build_problem(IDS[:2], np.zeros(2), np.zeros((2, 3)), MENU), np.array([0, 2]), "h", "n",
        0.1,
    )  # fmt: skip
    assert sure.spend_moments() == (pytest.approx(0.1), 0.0)
    for budget, want in ((0.09, 1.0), (0.1, 0.0), (0.2, 0.0)):
        sure.budget = budget
        assert sure.overrun_probability() == want
    sure.budget = 0.1 - 1e-15  # below the exact sum 0.05 + 0.05
    assert sure.overrun_probability() == 1.0


def test_gap_to_the_upper_bound():
    """None without a bound, 0 for a bound at or below zero, else the relative shortfall,
    never negative."""
    plan = _plan()
    value = sum(_gmv(i, int(k)) for i, k in enumerate(CHOICE) if k >= 0)
    assert plan.value == pytest.approx(value)
    assert plan.gap is None
    plan.upper_bound = 2 * value
    assert plan.gap == pytest.approx(0.5)
    plan.upper_bound = 0.5 * value
    assert plan.gap == 0.0
    for bound in (0.0, -1.0):
        plan.upper_bound = bound
        assert plan.gap == 0.0


def test_summary_figures_equal_the_recount():
    """Every figure of the summary, recounted from the definitions."""
    choice = np.array([2, 1, -1, 2, 2], dtype=np.int16)
    plan = Plan(
        _problem(), choice, "hand", "brute", 40.0, upper_bound=1000.0, seconds=1.5,
        details={"marginal_return": 2.5},
    )  # fmt: skip
    mean, sd = _spend_recount(choice)
    sent = [(i, int(k)) for i, k in enumerate(choice) if k >= 0]
    gmv = sum(_gmv(i, k) for i, k in sent)
    assert mean - 1.959964 * sd > 0  # the interval's low end is not clipped here
    want = {
        "policy": "hand",
        "solver": "brute",
        "objective": "gmv",
        "budget": 40.0,
        "users": 5,
        "users_targeted": 4,
        "incremental_conversions": sum(P[i, k] - P0[i] for i, k in sent),
        "expected_cost": mean,
        "spend_95_low": mean - 1.959964 * sd,
        "spend_95_high": mean + 1.959964 * sd,
        "overrun_probability": _normal_tail((40.0 - mean) / sd),
        "incremental_gmv": gmv,
        "roi": gmv / mean,
        "incremental_profit": MARGIN * gmv - mean,
        "objective_value": gmv,
        "upper_bound": 1000.0,
        "gap": (1000.0 - gmv) / 1000.0,
        "seconds": 1.5,
        "marginal_return": 2.5,
    }
    figures = plan.summary()
    assert list(figures) == list(want)
    for key, value in want.items():
        if isinstance(value, str):
            assert figures[key] == value, key
        else:
            assert figures[key] == pytest.approx(value, rel=1e-9), key
    assert isinstance(figures["users_targeted"], int)


def test_summary_of_a_wide_or_an_empty_plan():
    """A wide spread clips the interval's low end at zero; an empty plan costs nothing and has
    no ROI; without a marginal return in the details the summary says None."""
    one = np.array([-1, -1, 0, -1, -1])  # 5off49 to user 13: mean 0.3, sd 1.56
    figures = _plan(one).summary()
    mean, sd = _spend_recount(one)
    assert mean - 1.959964 * sd < 0
    assert figures["spend_95_low"] == 0.0
    assert figures["spend_95_high"] == pytest.approx(mean + 1.959964 * sd)
    assert figures["roi"] == pytest.approx(_gmv(2, 0) / mean)  # a cost under 1 still divides
    empty = _plan(np.full(5, -1)).summary()
    assert empty["expected_cost"] == 0.0 and empty["incremental_gmv"] == 0.0
    assert math.isnan(empty["roi"])
    assert empty["spend_95_low"] == empty["spend_95_high"] == 0.0
    assert empty["overrun_probability"] == 0.0 and empty["users_targeted"] == 0
    assert empty["marginal_return"] is None and empty["gap"] is None


def test_by_denomination_counts_users_uplift_and_cost_per_option_in_menu_order():
    frame = _plan().by_denomination()
    assert list(frame.columns) == [
        "denomination", "users", "incremental_conversions", "expected_cost",
    ]  # fmt: skip
    assert frame["denomination"].tolist() == ["5off49", "10off99", "20off199", "none"]
    assert frame["users"].tolist() == [2, 2, 0, 1]
    cost = {k: 0.0 for k in range(3)}
    uplift = {k: 0.0 for k in range(3)}
    for i, k in enumerate(CHOICE):
        if k >= 0:
            cost[k] += _send(int(k)) + sum(pr * m for pr, m in _outcomes(i, int(k)))
            uplift[k] += P[i, k] - P0[i]
    np.testing.assert_allclose(frame["expected_cost"], [cost[0], cost[1], 0.0, 0.0])
    np.testing.assert_allclose(frame["incremental_conversions"], [uplift[0], uplift[1], 0, 0])


def test_by_segment_counts_candidates_messages_and_shares():
    frame = _plan().by_segment()
    assert list(frame.columns) == [
        "segment", "users", "users_targeted", "message_share", "incremental_conversions",
        "expected_cost",
    ]  # fmt: skip
    assert frame["segment"].tolist() == ["a", "b", "c"]
    assert frame["users"].tolist() == [2, 2, 1]
    assert frame["users_targeted"].tolist() == [1, 2, 1]
    assert frame["users_targeted"].dtype == np.int64
    np.testing.assert_allclose(frame["message_share"], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(frame["incremental_conversions"], [0.2, 0.25 + 0.3, 0.1], rtol=1e-12)
    cost = [0.0, 0.0, 0.0]
    for i, k in enumerate(CHOICE):
        if k >= 0:
            cost["abc".index(SEGMENT[i])] += _send(int(k)) + sum(
                pr * m for pr, m in _outcomes(i, int(k))
            )
    np.testing.assert_allclose(frame["expected_cost"], cost, rtol=1e-12)


def test_by_segment_of_one_message_a_chunk_missing_a_segment_and_no_segments():
    """One message is all of its segment's share; a chunk of the users keeps every segment of
    the campaign, those it lacks at zero; without segments the frame is empty."""
    plan = _plan(np.array([-1, -1, -1, 1, -1]))
    np.testing.assert_allclose(plan.by_segment()["message_share"], [0.0, 1.0, 0.0])
    empty = _plan(np.full(5, -1)).by_segment()
    np.testing.assert_allclose(empty["message_share"], [0.0, 0.0, 0.0])
    chunk = Plan(_problem().take(np.arange(4)), CHOICE[:4], "hand", "none", 10.0)
    frame = chunk.by_segment()
    assert frame["segment"].tolist() == ["a", "b", "c"]
    assert frame["users"].tolist() == [2, 2, 0]
    assert frame["users_targeted"].tolist() == [1, 2, 0]
    assert frame["expected_cost"].iloc[2] == 0.0
    assert frame["incremental_conversions"].iloc[2] == 0.0
    bare = _plan(segment=None).by_segment()
    assert bare.empty and list(bare.columns) == [
        "segment", "users", "users_targeted", "message_share", "incremental_conversions",
        "expected_cost",
    ]  # fmt: skip


def test_to_frame_is_one_row_per_user_in_input_order():
    frame = _plan().to_frame()
    assert list(frame.columns) == [
        "user_id", "denomination", "p_natural", "p_coupon", "expected_uplift", "expected_cost",
    ]  # fmt: skip
    assert frame["user_id"].tolist() == IDS.tolist()
    assert frame["denomination"].tolist() == ["5off49", "10off99", "none", "10off99", "5off49"]
    assert list(frame["denomination"].cat.categories) == ["5off49", "10off99", "20off199", "none"]
    assert frame["p_natural"].dtype == np.float32
    assert frame["p_coupon"].dtype == np.float32
    assert frame["expected_uplift"].dtype == np.float32
    np.testing.assert_allclose(frame["p_natural"], P0, rtol=1e-6)
    np.testing.assert_allclose(frame["p_coupon"], [0.3, 0.45, 0.05, 0.6, 0.5], rtol=1e-6)
    np.testing.assert_allclose(frame["expected_uplift"], [0.2, 0.25, 0.0, 0.3, 0.1], rtol=1e-6)
    cost = [
        0.0 if k < 0 else _send(int(k)) + sum(pr * m for pr, m in _outcomes(i, int(k)))
        for i, k in enumerate(CHOICE)
    ]
    np.testing.assert_allclose(frame["expected_cost"], cost, rtol=1e-12)


# check_plan: the first broken invariant, in one line.


def _refused(plan: Plan, constraints: Constraints | None = None, **kw) -> str:
    with pytest.raises(PlanError) as info:
        check_plan(plan, constraints, **kw)
    assert isinstance(info.value, InputError)
    return str(info.value)


def test_check_plan_accepts_a_plan_that_keeps_every_rule():
    rules = Constraints(
        max_per_denomination={"10off99": 2}, max_messages=4, min_roi=1.0,
        segment_shares=(SegmentShare("b", 0.5, 0.5), SegmentShare("a", 0.0, 0.25)),
    )  # fmt: skip
    check_plan(_plan(), rules)
    check_plan(_plan(np.full(5, -1), budget=0.0), rules)
    check_plan(_plan(np.array([2, 2, 2, 2, 2]), budget=100.0))


def test_check_plan_refuses_broken_rows_of_users():
    """Wrong length, a user twice, an option off the menu, an excluded user."""
    assert _refused(_plan(CHOICE[:4])) == "plan has 4 rows for 5 users"
    twice = _problem()
    for ids in ([11, 12, 13, 11, 15], [11, 12, 13, 14, 14], [12, 11, 12, 14, 15]):
        twice.user_id = np.array(ids)
        assert (
            _refused(Plan(twice, CHOICE, "h", "n", 10.0))
            == "a user appears more than once in the plan"
        )
    for bad in (3, -2):
        choice = CHOICE.copy()
        choice[2] = bad
        assert _refused(_plan(choice)) == "a plan row names a denomination that is not on the menu"
    plan = _plan()
    plan.problem.eligible[3, 1] = False
    assert _refused(plan) == "the plan sends a coupon to an excluded user or a capped-out coupon"
    plan.problem.eligible[3, 1] = True
    plan.problem.eligible[4, 0] = False  # user 15's 5off49, the menu's first option
    assert _refused(plan) == "the plan sends a coupon to an excluded user or a capped-out coupon"
    plan.problem.eligible[4, 0] = True
    plan.problem.eligible[2, :] = False  # user 13 gets nothing: no harm
    check_plan(plan)


def test_check_plan_names_the_first_broken_constraint():
    plan = _plan()
    cost = _spend_recount(CHOICE)[0]
    plan.budget = 2.0
    assert _refused(plan) == f"expected cost {cost:,.2f} exceeds the budget 2.00"
    big = _plan(np.array([2, 2, 2, 2, 2]), budget=1234.0)
    check_plan(big)
    big.budget = 20.0
    assert _refused(big) == "expected cost 62.25 exceeds the budget 20.00"
    caps = Constraints(max_per_denomination={"5off49": 1, "10off99": 1})
    assert _refused(_plan(), caps) == "2 coupons of 5off49 exceed its cap of 1"
    caps = Constraints(max_per_denomination={"10off99": 1})
    assert _refused(_plan(), caps) == "2 coupons of 10off99 exceed its cap of 1"
    assert _refused(_plan(), Constraints(max_messages=3)) == "4 messages exceed the cap of 3"
    sent = [(i, int(k)) for i, k in enumerate(CHOICE) if k >= 0]
    roi = sum(_gmv(i, k) for i, k in sent) / cost
    assert _refused(_plan(), Constraints(min_roi=10.0)) == f"ROI {roi:.3f} is below the minimum 10"
    # The tolerance is relative to the row's scale: 5% over a budget of 100 passes at 10%.
    plan = _plan(np.array([2, 2, 2, 2, 2]), budget=62.25 / 1.05)
    check_plan(plan, tolerance=0.1)
    assert _refused(plan).startswith("expected cost 62.25 exceeds")  # by default, 1e-6
    check_plan(_plan(np.array([2, 2, 2, 2, 2]), budget=62.25 / (1 + 5e-7)))
    assert _refused(plan, tolerance=0.01).startswith("expected cost 62.25 exceeds")


def test_check_plan_reports_a_free_plan_below_the_minimum_roi():
    """No cost and a negative GMV: the ROI is undefined and reads nan."""
    problem = build_problem(
        IDS[:2], np.array([0.5, 0.5]), np.zeros((2, 3)), MENU, objective="gmv", sms_cost=0.0,
        basket=np.array([50.0, 50.0]),
    )  # fmt: skip
    plan = Plan(problem, np.array([0, -1], dtype=np.int16), "h", "n", 10.0)
    assert float(plan.expected_cost.sum()) == 0.0
    assert _refused(plan, Constraints(min_roi=2.0)) == "ROI nan is below the minimum 2"
    # A cost under 1 divides as any other: GMV (0.2 - 0.5) x 50 for 0.2 x 0.5 x 5.
    problem.p[0, 0] = 0.2
    problem.cost[0, 0] = 0.5
    assert _refused(plan, Constraints(min_roi=2.0)) == "ROI -30.000 is below the minimum 2"


def test_check_plan_reports_segment_shares():
    """The share the segment got and the bound it broke; with two shares, each its own."""
    shares = (SegmentShare("a", 0.5, 1.0), SegmentShare("b", 0.1, 0.4))
    assert (
        _refused(_plan(), Constraints(segment_shares=shares))
        == "segment a gets 25.0% of the messages, below its minimum 50.0%"
    )
    shares = (SegmentShare("a", 0.0, 1.0), SegmentShare("b", 0.1, 0.4))
    assert (
        _refused(_plan(), Constraints(segment_shares=shares))
        == "segment b gets 50.0% of the messages, above its maximum 40.0%"
    )
    # A label with a colon in it is named whole.
    plan = _plan(segment=np.array(["x:1", "y", "x:1", "y", "y"]))
    shares = (SegmentShare("x:1", 0.0, 0.2),)
    assert (
        _refused(plan, Constraints(segment_shares=shares))
        == "segment x:1 gets 25.0% of the messages, above its maximum 20.0%"
    )
    # A check stricter than exact (a negative tolerance) refuses even the empty plan, whose
    # segment gets no share of no messages.
    shares = (SegmentShare("a", 0.5, 1.0),)
    empty = _plan(np.full(5, -1))
    assert (
        _refused(empty, Constraints(segment_shares=shares), tolerance=-0.5)
        == "segment a gets 0.0% of the messages, below its minimum 50.0%"
    )


# The overrun rule, on plans whose spend is a known function of their planning budget.


class _Rule:
    """``plan_at`` of a plan spending ``mean(b)`` with spread ``sd(b)`` at planning budget b;
    records every planning budget it is asked for."""

    def __init__(self, mean, sd=lambda b: 0.0):
        self.mean, self.sd, self.calls = mean, sd, []

    def __call__(self, planning: float) -> tuple[float, float, float]:
        self.calls.append(planning)
        return planning, self.mean(planning), self.sd(planning)

    def fit(self, budget, risk=0.5, tolerance=0.0, **kw):
        return fit_overrun_rule(self, lambda p: (p[1], p[2]), budget, risk, tolerance, **kw)


Z95 = NormalDist().inv_cdf(0.95)  # the one-sided 5% point, 1.6449


def test_overrun_rule_without_a_risk_plans_once_at_the_budget():
    rule = _Rule(lambda b: 2 * b)
    assert rule.fit(100.0, risk=None) == ((100.0, 200.0, 0.0), 100.0)
    assert rule.calls == [100.0]


@pytest.mark.parametrize(
    ("risk", "tolerance", "key", "message"),
    [
        (0.0, 0.0, "constraints.overrun_risk", "must be in (0, 1)"),
        (1.0, 0.0, "constraints.overrun_risk", "must be in (0, 1)"),
        (-0.1, 0.0, "constraints.overrun_risk", "must be in (0, 1)"),
        (0.05, 1.0, "constraints.overrun_tolerance", "must be in [0, 1)"),
        (0.05, -0.01, "constraints.overrun_tolerance", "must be in [0, 1)"),
    ],
)
def test_overrun_rule_refuses_a_risk_or_tolerance_out_of_range(risk, tolerance, key, message):
    with pytest.raises(InputError) as info:
        _Rule(lambda b: b).fit(100.0, risk, tolerance)
    assert (info.value.key, info.value.message) == (key, message)


def test_overrun_rule_lowers_the_budget_by_the_excess_of_mean_plus_z_sd():
    """One step: a plan spending its planning budget b with spread 10 overruns 100 with 5%
    risk until b + 1.645 x 10 <= 100."""
    rule = _Rule(lambda b: b, lambda b: 10.0)
    plan, planning = rule.fit(100.0, risk=0.05)
    assert planning == pytest.approx(100.0 - Z95 * 10.0, rel=1e-12)
    assert plan[0] == planning and rule.calls == [100.0, planning]
    # Risk one half: z = 0, the mean alone must fit.
    rule = _Rule(lambda b: b + 50.0)
    assert rule.fit(100.0)[1] == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("cap", "tolerance", "limit"),
    [(None, 0.0, 100.0), (None, 0.1, 110.0), (120.0, 0.1, 132.0), (80.0, 0.1, 110.0)],
)
def test_overrun_rule_holds_spend_under_the_larger_of_cap_and_budget_plus_tolerance(
    cap, tolerance, limit
):
    """Spend 50 above the planning budget, no spread: the planning budget is the limit less
    50, the limit being (1 + tolerance) x max(cap, budget)."""
    rule = _Rule(lambda b: b + 50.0)
    plan, planning = rule.fit(100.0, tolerance=tolerance, cap=cap)
    assert planning == pytest.approx(limit - 50.0, rel=1e-12)
    assert plan[1] == pytest.approx(limit, rel=1e-12)
    assert len(rule.calls) == 2


def test_overrun_rule_steps_at_least_a_millionth_of_the_budget():
    """An excess of 1e-7 of the budget (beyond the 1e-9 slack) lowers the planning budget by
    1e-6 of it, not by the excess alone."""
    rule = _Rule(lambda b: 1000.0001 if b > 999.9995 else b)
    plan, planning = rule.fit(1000.0)
    assert planning == pytest.approx(999.999, abs=1e-9)
    assert rule.calls == [1000.0, planning]


def test_overrun_rule_slack_is_a_billionth_of_the_budget():
    """Within 1e-9 of the budget (at least 1e-9) the plan stands: 1e-9 at a budget of 0 and
    5e-7 at 1000 stand, 1.5e-9 at 0 and 2e-6 at 1000 do not."""
    for budget, excess in ((0.0, 1e-9), (1000.0, 5e-7)):
        rule = _Rule(lambda b, e=excess: b + e)
        assert rule.fit(budget) == ((budget, budget + excess, 0.0), budget)
        assert rule.calls == [budget]
    rule = _Rule(lambda b: b + 2e-6)
    assert rule.fit(1000.0)[1] == pytest.approx(999.999, abs=1e-9)
    # At a budget of 0 nothing can be lowered: the steps stall, the bisection ends at 0.
    rule = _Rule(lambda b: b + 1.5e-9)
    plan, planning = rule.fit(0.0)
    assert planning == 0.0 and plan == (0.0, 1.5e-9, 0.0)
    assert rule.calls == [0.0] * 23  # the first, 20 steps, the bisection's floor and middle


def test_overrun_rule_never_plans_below_zero():
    """Spend 500 above any planning budget never fits 100: the planning budget stops at 0."""
    rule = _Rule(lambda b: b + 500.0)
    plan, planning = rule.fit(100.0)
    assert planning == 0.0 and plan[0] == 0.0
    assert rule.calls[:3] == [100.0, 0.0, 0.0]


@pytest.mark.parametrize("scale", [1.0, 0.001])
def test_overrun_rule_bisects_when_the_steps_stall(scale):
    """A plan that spends 902 at any planning budget from 300 up (and its planning budget
    below) overruns 1000 at 5% by 0.69: 20 steps of 0.69 stall, then a bisection from 0 finds
    the highest planning budget that fits, within 1e-6 of the budget (of 1 below a budget of
    1). The same a thousand times smaller."""
    rule = _Rule(lambda b: 902.0 * scale if b >= 300.0 * scale else b, lambda b: 60.0 * scale)
    plan, planning = rule.fit(1000.0 * scale, risk=0.05)
    over = (902.0 + Z95 * 60.0 - 1000.0) * scale
    steps = [1000.0 * scale] + [902.0 * scale - n * over for n in range(1, 21)]
    np.testing.assert_allclose(rule.calls[:21], steps, rtol=1e-12)
    assert rule.calls[21] == 0.0  # the bisection's floor
    assert rule.calls[22] == pytest.approx(steps[-1] / 2, rel=1e-12)
    # 20 halvings bring the bracket from 888 to under 1e-3 (0.888 to under 1e-6).
    assert len(rule.calls) == 22 + 20
    assert (300.0 - 1e-3) * scale <= planning < 300.0 * scale
    assert plan == (planning, planning, 60.0 * scale)


def test_overrun_rule_bounds_are_inclusive():
    """An excess of exactly the slack (1 at a budget of 1e9) fits, in the steps as in the
    bisection; and the bisection stops once its bracket is exactly 1e-6 of the budget.

    First: spend 1e9 + 2 above a planning budget of 6e8 stalls the steps (1000 each), then
    the bisection keeps every planning budget up to 6e8, where the excess is exactly 1.
    Second: a first step to 524592 then 19 steps of 16 leave 524288 = 2^19, whose halvings
    reach a bracket of 1 = 1e-6 x 1e6 after 19 halvings, before trying 0.5, which would fit."""
    rule = _Rule(lambda b: 1e9 + (2.0 if b > 6e8 else 1.0))
    plan, planning = rule.fit(1e9)
    assert 6e8 - 1e3 <= planning <= 6e8 and plan[1] == 1e9 + 1.0
    rule = _Rule(lambda b: 1e9 + 1.0)
    assert rule.fit(1e9) == ((1e9, 1e9 + 1.0, 0.0), 1e9)

    def spend(b: float) -> float:
        if b == 1e6:
            return 2e6 - 524592.0  # over by 475408: the step lands on 524592
        return 1e6 + 16.0 if b > 0.75 else b

    rule = _Rule(spend)
    plan, planning = rule.fit(1e6)
    assert rule.calls[:21] == [1e6] + [524592.0 - 16.0 * n for n in range(20)]
    assert rule.calls[21:] == [0.0] + [2.0**e for e in range(18, -1, -1)]
    assert planning == 0.0 and plan == (0.0, 0.0, 0.0)
