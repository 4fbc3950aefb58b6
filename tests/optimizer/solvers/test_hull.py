"""The hull segments and the hull greedy on hand-worked cases and against a plain-loop hull."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.solvers import hull
from optimizer.solvers.hull import greedy_choice, hull_of, solve_hull
from optimizer.solvers.problem import build_problem
from simulator.scenario import Scenario


def _segments(seg) -> list[tuple[int, int, float, float]]:
    """(user, option, cost step, value step) of every segment, in the segments' order."""
    return [
        (int(u), int(o), round(float(c), 9), round(float(v), 9))
        for u, o, c, v in zip(seg.user, seg.to_option, seg.d_cost, seg.d_value, strict=True)
    ]


def _plain_hull(value, cost, eligible) -> list[tuple[int, int, float, float]]:
    """Every user's upper hull from its best free point, by plain loops (ties: the costliest)."""
    out = []
    for i in range(value.shape[0]):
        options = [j for j in range(value.shape[1]) if eligible[i, j] and value[i, j] > 0]
        free = [j for j in options if cost[i, j] <= 0]
        at_cost = 0.0
        at_value = max((value[i, j] for j in free), default=0.0)
        while True:
            best, pick = -np.inf, None
            for j in options:
                dc, dv = cost[i, j] - at_cost, value[i, j] - at_value
                if dc <= 0 or dv <= 0:
                    continue
                slope = dv / dc
                if slope > best * (1 + 1e-9) or (
                    slope >= best * (1 - 1e-9) and cost[i, j] > cost[i, pick]
                ):
                    best, pick = slope, j
            if pick is None:
                break
            dc, dv = cost[i, pick] - at_cost, value[i, pick] - at_value
            out.append((i, pick, round(float(dc), 9), round(float(dv), 9)))
            at_cost, at_value = cost[i, pick], value[i, pick]
    return out


def test_free_options_are_taken_and_the_hull_starts_from_them():
    # User 0: free 0.1, then from (0, 0.1) option 2 (slope 0.225) beats option 1 (0.2).
    # User 1: free 0.2, then option 1 at cost 0.5 (slope 0.4); option 2 is worth less.
    value = np.array([[0.1, 0.3, 0.55], [0.2, 0.4, 0.1]])
    cost = np.array([[0.0, 1.0, 2.0], [0.0, 0.5, 3.0]])
    seg = hull_of(value, cost)
    assert _segments(seg) == [(1, 1, 0.5, 0.2), (0, 2, 2.0, 0.45)]
    assert seg.free_value == pytest.approx(0.3)
    assert seg.free_choice.tolist() == [0, 0]


def test_collinear_options_make_one_segment_to_the_costliest():
    seg = hull_of(np.array([[1.0, 2.0, 2.5]]), np.array([[1.0, 2.0, 4.0]]))
    # (1, 1) and (2, 2) lie on one line from the origin: one step to (2, 2), then to (4, 2.5).
    assert _segments(seg) == [(0, 1, 2.0, 2.0), (0, 2, 2.0, 0.5)]


def test_blocks_of_users_give_every_user_its_own_hull(monkeypatch):
    rng = np.random.default_rng(7)
    n, k = 9, 3
    value = rng.uniform(-0.2, 1.0, (n, k))
    cost = rng.uniform(0.5, 3.0, (n, k))
    cost[2, 0] = cost[5, 1] = 0.0
    eligible = rng.random((n, k)) < 0.7
    expected = sorted(_plain_hull(value, cost, eligible))
    monkeypatch.setattr(hull, "HULL_BLOCK", 2)  # fewer users per block than options
    seg = hull_of(value, cost, eligible)
    assert sorted(_segments(seg)) == expected
    free = [max((value[i, j] for j in range(k) if eligible[i, j] and cost[i, j] <= 0
                 and value[i, j] > 0), default=0.0) for i in range(n)]  # fmt: skip
    assert seg.free_value == pytest.approx(sum(free))


def test_greedy_fills_a_leftover_below_one_money():
    # Slopes 1.5, 1, 0.5. Budget 1: the prefix takes user 0 (0.6); user 1 (0.5) does not fit
    # the 0.4 left, user 2 (0.3) does.
    seg = hull_of(np.array([[0.9], [0.5], [0.15]]), np.array([[0.6], [0.5], [0.3]]))
    assert greedy_choice(seg, 3, 1.0).tolist() == [0, -1, 0]


def test_greedy_adds_nothing_once_the_budget_is_spent():
    # The prefix spends the budget exactly; a segment of 1e-12 would break it.
    value, cost = np.array([[1.0], [1e-14]]), np.array([[1.0], [1e-12]])
    choice = greedy_choice(hull_of(value, cost), 2, 1.0)
    assert choice.tolist() == [0, -1]
    assert sum(cost[i, c] for i, c in enumerate(choice) if c >= 0) <= 1.0


def test_solve_hull_uses_the_segments_it_is_given():
    menu = Scenario().menu
    rng = np.random.default_rng(3)
    n, k = 6, len(menu)
    p0 = rng.uniform(0.0, 0.2, n)
    problem = build_problem(np.arange(n), p0, p0[:, None] + rng.uniform(0.0, 0.3, (n, k)), menu)
    only_first = np.zeros((n, k), dtype=bool)
    only_first[:, 0] = True
    seg = hull_of(problem.value, problem.cost, only_first)
    sol = solve_hull(problem, 1e9, seg)
    assert sol.choice.tolist() == [0] * n  # every user, but only the option the segments allow


def test_greedy_skips_for_good_a_segment_that_breaks_the_budget_by_rounding():
    # Large money amounts: y = budget - x exactly in floats, yet x + y rounds above the budget.
    budget, x = 113404169.7, 29626294.4
    y = budget - x
    assert x + y > budget
    # The steepest segment (cost 2 budgets) never fits; then x, then y in slope order.
    cost = np.array([[2 * budget], [x], [y]])
    value = np.array([[4 * budget], [1.5 * x], [1.2 * y]])
    choice = greedy_choice(hull_of(value, cost), 3, budget)
    assert choice.tolist() == [-1, 0, -1]
    assert sum(cost[i, c] for i, c in enumerate(choice) if c >= 0) <= budget


def _two_option_problem(value: np.ndarray, cost: np.ndarray):
    """A problem with the given (n, 2) value and cost (the menu is only a carrier)."""
    n = value.shape[0]
    menu = Scenario().menu
    problem = build_problem(np.arange(n), np.zeros(n), np.full((n, len(menu)), 0.5), menu)
    problem.value = np.full((n, len(menu)), -1.0)
    problem.cost = np.full((n, len(menu)), 1.0)
    problem.value[:, :2], problem.cost[:, :2] = value, cost
    problem.eligible = np.ones_like(problem.value, dtype=bool)
    return problem


def test_the_fill_continues_a_users_hull_and_takes_an_exact_fit():
    """Worked by hand. User 0's hull: option 0 (cost 1, value 3), then option 1 (cost 2,
    value 4: +1 for +1). User 1: option 0 (cost 2, value 4: slope 2). Slope order: u0's first
    step (3), u1 (2), u0's second step (1). At a budget of 2 the prefix takes u0's first step,
    u1 (2) breaks it, and the fill takes u0's second step: its cost 1 fits the leftover 1
    exactly."""
    problem = _two_option_problem(np.array([[3.0, 4.0], [4.0, -1.0]]),
                                  np.array([[1.0, 2.0], [2.0, 9.0]]))  # fmt: skip
    seg = hull.hull_segments(problem)
    assert _segments(seg) == [(0, 0, 1.0, 3.0), (1, 0, 2.0, 4.0), (0, 1, 1.0, 1.0)]
    assert greedy_choice(seg, 2, 2.0).tolist() == [1, -1]
    assert greedy_choice(seg, 2, 3.0).tolist() == [0, 0]  # the prefix: u0's step 1 and u1


def test_a_block_of_users_with_nothing_worth_sending(monkeypatch):
    """Blocks of two users; the first block has no positive option: its (empty) segments join
    the others' as integer user numbers."""
    monkeypatch.setattr(hull, "HULL_BLOCK", 2)
    value = np.array([[-1.0, -2.0], [-0.5, -1.0], [3.0, 4.0], [4.0, -1.0]])
    cost = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [2.0, 9.0]])
    seg = hull_of(value, cost)
    assert seg.user.dtype == np.int64 and seg.to_option.dtype == np.int16
    assert seg.rank.dtype == np.int8  # one byte a segment at millions of users
    assert _segments(seg) == [(2, 0, 1.0, 3.0), (3, 0, 2.0, 4.0), (2, 1, 1.0, 1.0)]
    assert greedy_choice(seg, 4, 2.0).tolist() == [-1, -1, 1, -1]


def test_the_fill_takes_a_users_next_segment_in_the_next_round():
    """User 0's only segment (cost 3) does not fit 2.5, so the prefix is empty. The fill takes
    user 1's first segment (cost 1) in round one and its second (cost 1 more) in round two."""
    value = np.array([[9.0, -1.0], [2.0, 3.0]])
    cost = np.array([[3.0, 100.0], [1.0, 2.0]])
    seg = hull_of(value, cost)
    assert _segments(seg) == [(0, 0, 3.0, 9.0), (1, 0, 1.0, 2.0), (1, 1, 1.0, 1.0)]
    assert greedy_choice(seg, 2, 2.5).tolist() == [-1, 1]
    assert greedy_choice(seg, 2, 1.5).tolist() == [-1, 0]


def test_a_free_first_option_starts_the_users_hull():
    """Option 0 costs nothing and is worth 0.5: it is the user's start (free value), and the
    only segment goes from it to option 1."""
    seg = hull_of(np.array([[0.5, 1.0]]), np.array([[0.0, 2.0]]))
    assert seg.free_value == 0.5 and seg.free_choice.tolist() == [0]
    assert _segments(seg) == [(0, 1, 2.0, 0.5)]
    assert greedy_choice(seg, 1, 0.0).tolist() == [0]
    assert greedy_choice(seg, 1, 2.0).tolist() == [1]
