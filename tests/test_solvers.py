"""Budget solvers: hull greedy, Lagrangian dual and the exact PuLP MILP, against each other
and against brute force; plan invariants; degenerate inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.dual import solve_dual
from optimizer.errors import InputError
from optimizer.hull import frontier, solve_hull
from optimizer.menu import Denomination, Menu
from optimizer.milp import solve_milp
from optimizer.plan import Plan, PlanError, check_plan
from optimizer.problem import build_problem
from simulator.scenario import Scenario

MENU = Scenario().menu


def _random_problem(rng: np.random.Generator, n: int, objective: str = "conversions"):
    p0 = rng.beta(1, 8, n)
    lift = rng.beta(1, 20, (n, len(MENU))) * rng.choice([1.0, -0.3], (n, len(MENU)), p=[0.9, 0.1])
    p = np.clip(p0[:, None] + lift, 0, 1)
    basket = rng.lognormal(np.log(100), 0.5, n)
    return build_problem(
        np.arange(1, n + 1), p0, p, MENU, objective=objective, sms_cost=0.05, basket=basket
    )


def _brute_force(problem, budget, caps=None, messages=None) -> float:
    n, k = problem.value.shape
    best = 0.0
    for combo in itertools.product(range(-1, k), repeat=n):
        choice = np.array(combo)
        rows = np.flatnonzero(choice >= 0)
        if problem.cost[rows, choice[rows]].sum() > budget + 1e-12:
            continue
        counts = np.bincount(choice[rows], minlength=k)
        if caps and any(counts[problem.menu.index(d)] > c for d, c in caps.items()):
            continue
        if messages is not None and rows.size > messages:
            continue
        best = max(best, problem.value[rows, choice[rows]].sum())
    return best


def test_hand_made_optimum():
    menu = Menu(
        denomination=(
            Denomination(name="small", face_value=5, threshold=50),
            Denomination(name="big", face_value=20, threshold=100),
        )
    )
    # User 1 is a sure thing (no lift), user 2 a persuadable, user 3 reacts only to the big one.
    p0 = np.array([0.9, 0.05, 0.05])
    p = np.array([[0.9, 0.91], [0.25, 0.30], [0.05, 0.35]])
    problem = build_problem(np.array([1, 2, 3]), p0, p, menu, sms_cost=0.1)
    # Costs: user 2 small 1.35, big 6.1; user 3 big 7.1. Budget 8.5: small to 2 and big to 3.
    for solution in (solve_milp(problem, 8.5), solve_dual(problem, 8.5), solve_hull(problem, 8.5)):
        assert solution.choice.tolist() == [-1, 0, 1]
        assert solution.value == pytest.approx(0.20 + 0.30)
    assert solve_milp(problem, 8.5).value == pytest.approx(_brute_force(problem, 8.5))


@pytest.mark.parametrize("seed", range(12))
def test_milp_matches_brute_force_on_tiny_instances(seed):
    rng = np.random.default_rng(seed)
    problem = _random_problem(rng, 6)
    budget = float(rng.uniform(0.2, 1.0) * problem.cost.max(axis=1).sum())
    caps = {"10off99": 1} if seed % 2 else None
    messages = 3 if seed % 3 == 0 else None
    exact = solve_milp(problem, budget, max_per_denomination=caps, max_messages=messages)
    assert exact.value == pytest.approx(_brute_force(problem, budget, caps, messages), abs=1e-9)
    dual = solve_dual(problem, budget, max_per_denomination=caps, max_messages=messages)
    assert dual.upper_bound >= exact.value - 1e-9
    assert dual.value <= exact.value + 1e-9


def test_hull_is_within_a_tenth_of_a_percent_of_the_milp_on_random_instances():
    rng = np.random.default_rng(2026)
    for _ in range(20):
        objective = str(rng.choice(["conversions", "gmv", "profit"]))
        problem = _random_problem(rng, int(rng.integers(1000, 2000)), objective)
        positive = np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum()
        budget = float(rng.uniform(0.05, 0.9) * positive)
        hull = solve_hull(problem, budget)
        exact = solve_milp(problem, budget)
        assert exact.status == "Optimal"
        assert hull.cost <= budget + 1e-6
        assert hull.upper_bound >= exact.value - 1e-6
        assert hull.value >= exact.value * (1 - 1e-3) - 1e-9
        # The certificate is honest: the true gap never exceeds the certified one.
        assert (exact.value - hull.value) / max(exact.value, 1e-12) <= hull.gap + 1e-9


def test_dual_with_caps_and_message_cap_is_feasible_and_certified():
    rng = np.random.default_rng(7)
    for _ in range(15):
        n = int(rng.integers(500, 2000))
        problem = _random_problem(rng, n)
        budget = float(rng.uniform(0.1, 0.8) * problem.cost.max(axis=1).sum())
        caps = {"10off99": int(rng.integers(0, n // 4)), "5off49": int(rng.integers(10, n // 3))}
        messages = int(rng.integers(n // 10, n // 2))
        dual = solve_dual(problem, budget, max_per_denomination=caps, max_messages=messages)
        exact = solve_milp(problem, budget, max_per_denomination=caps, max_messages=messages)
        plan = Plan(problem, dual.choice, "optimal", "dual", budget, dual.upper_bound)
        check_plan(plan, max_per_denomination=caps, max_messages=messages)
        assert dual.upper_bound >= exact.value - 1e-6
        assert dual.value >= exact.value * (1 - 1e-2)


def test_binding_and_non_binding_constraints():
    rng = np.random.default_rng(3)
    problem = _random_problem(rng, 800)
    everything = float(problem.cost.max(axis=1).sum()) * 2
    free = solve_milp(problem, everything)
    # Non-binding budget: every user with a positive option gets their best one.
    best = np.where(problem.value.max(axis=1) > 0, problem.value.argmax(axis=1), -1)
    assert (free.choice == best).all()
    assert solve_hull(problem, everything).choice.tolist() == best.tolist()
    # Binding cap: exactly the cap of that denomination is sent.
    capped = solve_dual(problem, everything, max_per_denomination={"10off99": 25})
    assert int((capped.choice == MENU.index("10off99")).sum()) == 25
    loose = solve_dual(problem, everything, max_per_denomination={"10off99": 10_000})
    assert (loose.choice == best).all()
    # Binding message cap.
    few = solve_dual(problem, everything, max_messages=40)
    assert int((few.choice >= 0).sum()) == 40


def test_frontier_is_monotone_concave_and_matches_the_solver():
    rng = np.random.default_rng(11)
    problem = _random_problem(rng, 3000)
    budgets = np.linspace(0, float(problem.cost.max(axis=1).sum()), 41)
    front = frontier(problem, budgets)
    ub, value = front["upper_bound"], front["value"]
    assert (np.diff(ub) >= -1e-9).all() and (np.diff(value) >= -1e-9).all()
    assert (np.diff(ub, 2) <= 1e-9).all()  # concave
    assert (value <= ub + 1e-9).all() and (front["cost"] <= budgets + 1e-9).all()
    for b, bound in zip(budgets[::8], ub[::8], strict=True):
        assert solve_hull(problem, float(b)).upper_bound == pytest.approx(bound, rel=1e-9, abs=1e-9)


def test_degenerate_inputs():
    rng = np.random.default_rng(5)
    problem = _random_problem(rng, 200)
    cheapest = float(problem.cost.min())
    for solver in (solve_hull, solve_dual, solve_milp):
        for budget in (0.0, cheapest * 0.5):
            sol = solver(problem, budget)
            assert (sol.choice == -1).all() and sol.value == 0.0
    # No uplift anywhere: nobody is worth a coupon.
    flat = build_problem(np.arange(50), np.full(50, 0.2), np.full((50, 4), 0.2), MENU)
    assert (solve_hull(flat, 1e6).choice == -1).all()
    assert (solve_dual(flat, 1e6, max_messages=10).choice == -1).all()
    # An empty user table gives an empty plan.
    empty = build_problem(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4)), MENU)
    for sol in (solve_hull(empty, 100.0), solve_dual(empty, 100.0, max_messages=5)):
        assert sol.choice.size == 0 and sol.value == 0.0
    # A cap of zero removes that denomination.
    zero = solve_dual(problem, 1e6, max_per_denomination={"5off49": 0})
    assert not (zero.choice == 0).any()
    assert not (solve_milp(problem, 1e6, max_per_denomination={"5off49": 0}).choice == 0).any()


def test_excluded_users_get_nothing():
    rng = np.random.default_rng(8)
    base = _random_problem(rng, 500)
    excluded = np.zeros(500, dtype=bool)
    excluded[:250] = True
    problem = build_problem(base.user_id, base.p0, base.p, MENU, sms_cost=0.05, excluded=excluded)
    for sol in (solve_hull(problem, 1e6), solve_dual(problem, 1e6, max_messages=100)):
        assert (sol.choice[:250] == -1).all() and (sol.choice[250:] >= 0).any()


def test_check_plan_catches_broken_plans():
    rng = np.random.default_rng(9)
    problem = _random_problem(rng, 100)
    everyone = np.zeros(100, dtype=np.int16)
    with pytest.raises(PlanError, match="exceeds the budget"):
        check_plan(Plan(problem, everyone, "x", "y", budget=1.0))
    with pytest.raises(PlanError, match="exceed its cap"):
        check_plan(
            Plan(problem, everyone, "x", "y", budget=1e9), max_per_denomination={"5off49": 5}
        )
    with pytest.raises(PlanError, match="messages exceed"):
        check_plan(Plan(problem, everyone, "x", "y", budget=1e9), max_messages=10)
    with pytest.raises(PlanError, match="not on the menu"):
        check_plan(Plan(problem, np.full(100, 7, np.int16), "x", "y", budget=1e9))
    twice = build_problem(np.ones(100, np.int64), problem.p0, problem.p, MENU)
    with pytest.raises(PlanError, match="more than once"):
        check_plan(Plan(twice, np.full(100, -1, np.int16), "x", "y", budget=1.0))


def test_plan_summary_and_file():
    rng = np.random.default_rng(10)
    problem = _random_problem(rng, 300)
    sol = solve_hull(problem, 50.0)
    plan = Plan(problem, sol.choice, "optimal", "hull", 50.0, sol.upper_bound)
    check_plan(plan)
    summary = plan.summary()
    assert summary["users_targeted"] == int((sol.choice >= 0).sum())
    assert summary["expected_cost"] == pytest.approx(sol.cost)
    assert summary["incremental_conversions"] == pytest.approx(sol.value)
    frame = plan.to_frame()
    assert len(frame) == 300 and frame["user_id"].is_unique
    assert set(frame["denomination"].astype(str)) <= {*MENU.names, "none"}
    by = plan.by_denomination()
    assert by["users"].sum() == 300


def test_objective_needs_baskets():
    with pytest.raises(InputError, match="average order value"):
        build_problem(np.arange(3), np.zeros(3), np.zeros((3, 4)), MENU, objective="gmv")
    with pytest.raises(InputError, match="objective must be one of"):
        build_problem(np.arange(3), np.zeros(3), np.zeros((3, 4)), MENU, objective="fun")


def test_minimum_roi_binding_and_non_binding():
    rng = np.random.default_rng(21)
    for _ in range(8):
        problem = _random_problem(rng, int(rng.integers(500, 1200)))
        budget = float(rng.uniform(0.3, 1.0) * problem.cost.max(axis=1).sum())
        free_plan = solve_dual(problem, budget, max_messages=10**9)
        rows = np.flatnonzero(free_plan.choice >= 0)
        roi = problem.gmv_uplift()[rows, free_plan.choice[rows]].sum() / free_plan.cost
        # Non-binding: a target below the unconstrained plan's ROI changes nothing.
        loose = solve_dual(problem, budget, max_messages=10**9, min_roi=0.5 * roi)
        assert loose.value == pytest.approx(free_plan.value, rel=1e-9)
        # Binding: a higher target is met, by the dual and by the exact MILP.
        target = 1.5 * roi
        for sol in (
            solve_dual(problem, budget, min_roi=target),
            solve_milp(problem, budget, min_roi=target),
        ):
            plan = Plan(problem, sol.choice, "optimal", "x", budget)
            check_plan(plan, min_roi=target)
            assert sol.value < free_plan.value
        exact = solve_milp(problem, budget, min_roi=target)
        dual = solve_dual(problem, budget, min_roi=target)
        assert dual.upper_bound >= exact.value - 1e-6
        assert dual.value >= exact.value * (1 - 1e-2)
    with pytest.raises(PlanError, match="below the minimum"):
        everyone = np.zeros(problem.n_users, dtype=np.int16)
        check_plan(Plan(problem, everyone, "x", "y", budget=1e12), min_roi=1e6)
