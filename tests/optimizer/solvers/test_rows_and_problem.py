"""The campaign problem as assembled from scores, and the constraint rows: every refusal with
its key and text, the rows' coefficients against a plain double loop, and the repair."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import InputError
from optimizer.io.menu import Denomination, Menu
from optimizer.solvers.constraints import (
    Constraints,
    LinearRow,
    SegmentShare,
    linear_rows,
    repair_plan,
    violations,
)
from optimizer.solvers.problem import build_problem
from simulator.scenario import Scenario

MENU = Scenario().menu


def _problem(n: int = 4, segment: bool = True, **kwargs):
    rng = np.random.default_rng(3)
    p0 = rng.uniform(0.01, 0.1, n)
    p = p0[:, None] + rng.uniform(0.0, 0.2, (n, len(MENU)))
    labels = np.array(["a", "b"] * n)[:n] if segment else None
    return build_problem(np.arange(n), p0, p, MENU, segment=labels, **kwargs)


@pytest.mark.parametrize(
    ("constraints", "segment", "line"),
    [
        (Constraints(max_per_denomination={"50off": 3}), True,
         "constraints.max_per_denomination: denomination '50off' is not on the menu ("
         + ", ".join(MENU.names) + ")"),
        (Constraints(max_per_denomination={MENU.names[0]: -1}), True,
         f"constraints.max_per_denomination: cap of {MENU.names[0]} must be >= 0"),
        (Constraints(max_messages=-2), True, "constraints.max_messages: must be >= 0"),
        (Constraints(min_roi=-0.5), True,
         "constraints.min_roi: must be a finite number >= 0"),
        (Constraints(min_roi=float("inf")), True,
         "constraints.min_roi: must be a finite number >= 0"),
        (Constraints(segment_shares=(SegmentShare("a", 0.1),)), False,
         "constraints.segment_shares: segment shares need a segment column in the user table"),
        (Constraints(segment_shares=(SegmentShare("z", 0.1),)), True,
         "constraints.segment_shares: segment 'z' is not among the candidates' segments (a, b)"),
        (Constraints(segment_shares=(SegmentShare("a", 0.1), SegmentShare("a", 0.2))), True,
         "constraints.segment_shares: segment 'a' is given twice"),
        (Constraints(segment_shares=(SegmentShare("a", 0.6), SegmentShare("b", 0.5))), True,
         "constraints.segment_shares: segment minimum shares add up to more than 1"),
    ],
)  # fmt: skip
def test_each_refusal_names_its_key_and_the_problem(constraints, segment, line):
    with pytest.raises(InputError) as error:
        constraints.validate(_problem(segment=segment))
    assert str(error.value) == line
    assert error.value.key == line.split(":")[0]


def test_valid_constraints_pass_and_shares_may_add_up_to_exactly_one():
    Constraints(
        max_per_denomination={MENU.names[0]: 0}, max_messages=0, min_roi=0.0,
        segment_shares=(SegmentShare("a", 0.4), SegmentShare("b", 0.6)),
    ).validate(_problem())  # fmt: skip


def test_the_description_lists_only_what_is_set():
    assert Constraints().to_dict() == {}
    assert Constraints(min_roi=0.0).to_dict() == {"min_roi": 0.0}
    full = Constraints(
        max_per_denomination={"a": 3}, max_messages=0, min_roi=2.5,
        segment_shares=(SegmentShare("s", 0.1, 0.9),),
    )  # fmt: skip
    assert full.to_dict() == {
        "max_per_denomination": {"a": 3},
        "max_messages": 0,
        "min_roi": 2.5,
        "segment_shares": {"s": {"min": 0.1, "max": 0.9}},
    }


def test_a_row_with_user_and_option_factors_against_a_double_loop():
    """``a_ik = entry_ik + user_i * option_k``: every operation of the row agrees with the
    coefficients written out one by one."""
    rng = np.random.default_rng(5)
    n, k = 5, 3
    entry, user, option = rng.normal(size=(n, k)), rng.normal(size=n), rng.normal(size=k)
    a = np.array([[entry[i, j] + user[i] * option[j] for j in range(k)] for i in range(n)])
    for row, coeffs in (
        (LinearRow("r", 1.0, entry=entry, user=user, option=option), a),
        (LinearRow("r", 1.0, user=user, option=option), a - entry),
        (LinearRow("r", 1.0, user=user), np.repeat(user[:, None], k, axis=1)),
        (LinearRow("r", 1.0, option=option), np.repeat(option[None, :], n, axis=0)),
    ):
        np.testing.assert_allclose(row.matrix(n, k), coeffs)
        for multiplier in (0.0, 0.5, 1.0):
            reduced = np.ones((n, k))
            row.subtract(reduced, multiplier)
            np.testing.assert_allclose(reduced, 1.0 - multiplier * coeffs)
        rows, cols = np.array([4, 0, 2]), np.array([1, 2, 0])
        np.testing.assert_allclose(row.at(rows, cols), [coeffs[4, 1], coeffs[0, 2], coeffs[2, 0]])
        weights = rng.uniform(size=(n, k))
        assert row.weighted_sum(weights) == pytest.approx(float((weights * coeffs).sum()))
        choice = np.array([0, -1, 2, 1, -1])
        assert row.usage(choice) == pytest.approx(coeffs[0, 0] + coeffs[2, 2] + coeffs[3, 1])


def test_repair_of_two_rows_broken_by_amounts_of_different_scales():
    """Twenty users at cost 0.1: the budget (1.9) is over by 0.1 and the message cap (19) by 1.
    Dropping the one lowest-priority user mends both rows; nobody else goes."""
    n = 20
    rows = [LinearRow("budget", 1.9, entry=np.full((n, 2), 0.1)),
            LinearRow("messages", 19.0, option=np.ones(2))]  # fmt: skip
    priority = np.arange(n, 0, -1).astype(float)  # the last user has the lowest
    kept = repair_plan(np.zeros(n, dtype=np.int64), rows, priority)
    assert kept.tolist() == [0] * (n - 1) + [-1]


def test_the_assembled_problem_keeps_ids_costs_and_exclusions():
    """Integer ids of any width become int64; the message cost is stored and is in every
    option's expected cost; an excluded user may get nothing, the others anything."""
    n, k = 4, len(MENU)
    p0 = np.array([0.01, 0.05, 0.1, 0.2])
    p = np.clip(p0[:, None] + np.linspace(0.01, 0.05, k)[None, :], 0, 1)
    excluded = np.array([False, True, False, True])
    problem = build_problem(
        np.array([7, 3, 9, 1], dtype=np.int32), p0, p, MENU, sms_cost=0.07, excluded=excluded
    )
    assert problem.user_id.dtype == np.int64 and problem.user_id.tolist() == [7, 3, 9, 1]
    assert problem.sms_cost == 0.07 and isinstance(problem.sms_cost, float)
    expected_cost = np.array([
        [0.07 + p[i, j] * MENU.denomination[j].redemption_share * MENU.denomination[j].face_value
         for j in range(k)] for i in range(n)
    ])  # fmt: skip
    np.testing.assert_allclose(problem.cost, expected_cost)
    assert problem.eligible.shape == (n, k)
    assert problem.eligible.tolist() == [[not e] * k for e in excluded]


def test_incremental_gmv_of_chosen_entries_with_a_treatment_worth_its_own_value():
    """``gmv_uplift_at`` on index pairs: ``p w - p0 b`` for a treatment worth ``w`` per
    conversion, ``(p - p0) b + max(p - p0, 0) max(t - b, 0)`` for a coupon (naive recount)."""
    menu = Menu(
        denomination=(
            Denomination(name="promo", kind="message", send_cost=0.15, conversion_value=10.0),
            Denomination(name="c", face_value=5.0, threshold=20.0),
        )
    )
    p0 = np.array([0.01, 0.20, 0.10])
    p = np.array([[0.03, 0.05], [0.25, 0.30], [0.12, 0.08]])
    basket = np.array([4.0, 30.0, 12.0])
    problem = build_problem(np.arange(3), p0, p, menu, objective="gmv", basket=basket)
    rows, options = np.array([0, 1, 2, 2, 0]), np.array([0, 1, 0, 1, 1])
    expected = []
    for i, j in zip(rows, options, strict=True):
        if j == 0:
            expected.append(p[i, 0] * 10.0 - p0[i] * basket[i])
        else:
            lift = p[i, 1] - p0[i]
            expected.append(lift * basket[i] + max(lift, 0.0) * max(20.0 - basket[i], 0.0))
    np.testing.assert_allclose(problem.gmv_uplift_at(rows, options), expected)


def test_only_the_bounds_that_restrict_get_a_row():
    """A minimum share of 0 and a maximum of 1 restrict nothing: no row for them."""
    problem = _problem()
    shares = (SegmentShare("a", 0.0, 0.5), SegmentShare("b", 0.2, 1.0))
    rows = linear_rows(problem, 5.0, Constraints(segment_shares=shares))
    assert [r.name for r in rows] == ["budget", "segment_max:a", "segment_min:b"]


def test_a_row_no_plan_can_keep_repairs_to_the_empty_plan():
    """A row broken by the empty plan too (rhs < 0, as a core's share row may be): every user
    is dropped, and the plan is the empty one (-1 each), never another value."""
    rows = [LinearRow("segment_min:a", -1.0, option=np.ones(2))]
    kept = repair_plan(np.array([0, 1, 1, 0]), rows, np.arange(4.0))
    assert kept.tolist() == [-1, -1, -1, -1]


def test_a_share_rows_tolerance_grows_with_its_terms():
    """A homogeneous row (rhs 0) sums terms of both signs over many users: it is broken only
    beyond 1e-6 of the terms' total size, not 1e-6 in absolute terms."""
    n = 1000
    user = np.where(np.arange(n) % 2 == 0, 0.5, -0.5)
    choice = np.zeros(n, dtype=np.int64)
    for excess, broken in ((1e-5, False), (1e-2, True)):
        row = LinearRow("segment_min:a", 0.0, user=user + np.r_[excess, np.zeros(n - 1)])
        assert bool(violations(choice, [row])) is broken, excess


def test_probabilities_of_any_float_width_become_float64():
    p0 = np.array([0.1, 0.2], dtype=np.float32)
    p = np.full((2, len(MENU)), 0.3, dtype=np.float32)
    problem = build_problem([1, 2], p0, p, MENU)
    assert problem.p0.dtype == np.float64 and problem.p.dtype == np.float64
    assert problem.value.dtype == np.float64


def test_a_rows_tolerance_is_relative_to_its_rhs():
    """A budget of ten million broken by one unit is within rounding (1e-6 of the rhs); by a
    hundred it is broken."""
    choice = np.zeros(2, dtype=np.int64)
    for over, broken in ((1.0, False), (100.0, True)):
        row = LinearRow("budget", 1e7, entry=np.array([[5e6], [5e6 + over]]))
        assert bool(violations(choice, [row])) is broken, over


def test_a_bad_segment_share_names_its_key():
    with pytest.raises(InputError) as error:
        SegmentShare("a", 0.6, 0.4)
    assert error.value.key == "constraints.segment_shares"
    assert str(error.value) == (
        "constraints.segment_shares: segment share of 'a' needs 0 <= min <= max <= 1 "
        "(got min 0.6, max 0.4)"
    )


def test_the_expected_cost_with_a_redemption_model():
    """``sms + p r f + p c`` per option, recounted entry by entry (f face value, c the cost per
    conversion); baskets of any float width become float64."""
    menu = Menu(
        denomination=(
            Denomination(name="a", face_value=5.0, threshold=20.0),
            Denomination(name="b", face_value=10.0, threshold=50.0, conversion_cost=0.5),
        )
    )
    p0 = np.array([0.05, 0.1])
    p = np.array([[0.1, 0.2], [0.3, 0.15]])
    redeem = np.array([[0.5, 0.9], [0.2, 1.0]])
    basket = np.array([30.0, 60.0], dtype=np.float32)
    problem = build_problem(np.arange(2), p0, p, menu, objective="gmv", basket=basket,
                            sms_cost=0.04, redeem=redeem)  # fmt: skip
    faces, per_conversion = (5.0, 10.0), (0.0, 0.5)
    expected = [[0.04 + p[i, j] * redeem[i, j] * faces[j] + p[i, j] * per_conversion[j]
                 for j in range(2)] for i in range(2)]  # fmt: skip
    np.testing.assert_allclose(problem.cost, expected, rtol=1e-6)
    assert problem.basket.dtype == np.float64
