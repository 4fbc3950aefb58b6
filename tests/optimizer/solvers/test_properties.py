"""Solver invariants on random small campaigns (hypothesis), checked by a naive recount.

The recount below is written for the tests alone, from the definitions: it shares no code with
the solvers, ``check_plan`` or the constraint rows, so a modelling bug cannot agree with itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from optimizer.io import Denomination, Menu
from optimizer.planning import Plan, PlanError, check_plan
from optimizer.solvers import Constraints, SegmentShare, build_problem, solve_dual, solve_milp
from tests.optimizer.solvers import lp_bound

COUPONS = (
    Denomination(name="5off49", face_value=5, threshold=49),
    Denomination(name="10off99", face_value=10, threshold=99, redemption_share=0.6),
    Denomination(name="20off199", face_value=20, threshold=199, redemption_share=0.3),
)
SMS = 0.05
MARGIN = 0.3
TOL = 1e-6


@dataclass
class Case:
    """A campaign from raw arrays, and what every plan of it must keep."""

    p0: np.ndarray
    p: np.ndarray
    basket: np.ndarray
    segment: list[str]
    objective: str
    menu: Menu
    budget: float
    constraints: Constraints

    def problem(self):
        return build_problem(
            np.arange(10, 10 + self.p0.size), self.p0, self.p, self.menu,
            objective=self.objective, sms_cost=SMS, margin_rate=MARGIN, basket=self.basket,
            segment=np.array(self.segment),
        )  # fmt: skip


def _cost(case: Case, i: int, k: int) -> float:
    d = case.menu.denomination[k]
    return SMS + case.p[i, k] * d.redemption_share * d.face_value


def _gmv(case: Case, i: int, k: int) -> float:
    lift = case.p[i, k] - case.p0[i]
    stretch = max(case.menu.denomination[k].threshold - case.basket[i], 0.0)
    return lift * case.basket[i] + max(lift, 0.0) * stretch


def _value(case: Case, i: int, k: int) -> float:
    if case.objective == "conversions":
        return case.p[i, k] - case.p0[i]
    if case.objective == "gmv":
        return _gmv(case, i, k)
    return MARGIN * _gmv(case, i, k) - _cost(case, i, k)


def _recount(case: Case, choice, tol: float = TOL) -> tuple[bool, float]:
    """Whether ``choice`` keeps every rule, and its objective value, by plain loops."""
    sent = [(i, int(k)) for i, k in enumerate(choice) if k >= 0]
    cost = sum(_cost(case, i, k) for i, k in sent)
    ok = cost <= case.budget + tol * max(1.0, case.budget)
    rules = case.constraints
    for name, cap in (rules.max_per_denomination or {}).items():
        k = case.menu.names.index(name)
        ok &= sum(1 for _, j in sent if j == k) <= cap
    if rules.max_messages is not None:
        ok &= len(sent) <= rules.max_messages
    if rules.min_roi is not None and sent:
        ok &= sum(_gmv(case, i, k) for i, k in sent) >= rules.min_roi * cost - tol * max(1, cost)
    for share in rules.segment_shares:
        members = sum(1 for i, _ in sent if case.segment[i] == share.segment)
        ok &= members >= share.min * len(sent) - tol and members <= share.max * len(sent) + tol
    return bool(ok), float(sum(_value(case, i, k) for i, k in sent))


@st.composite
def cases(draw, max_users: int = 6) -> Case:
    n = draw(st.integers(1, max_users))
    k = draw(st.integers(1, len(COUPONS)))
    p0 = draw(arrays(np.float64, n, elements=st.floats(0.0, 0.6)))
    lift = draw(arrays(np.float64, (n, k), elements=st.floats(-0.1, 0.4)))
    basket = draw(arrays(np.float64, n, elements=st.floats(10.0, 400.0)))
    segment = draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n))
    menu = Menu(denomination=COUPONS[:k])
    p = np.clip(p0[:, None] + lift, 0.0, 1.0)
    most = float(sum(SMS + p[i].max() * 20 for i in range(n)))
    budget = draw(st.floats(0.0, most))
    caps = draw(st.none() | st.dictionaries(st.sampled_from(menu.names), st.integers(0, n)))
    messages = draw(st.none() | st.integers(0, n))
    roi = draw(st.none() | st.floats(0.0, 20.0))
    shares = ()
    if draw(st.booleans()) and "a" in segment:
        low = draw(st.floats(0.0, 1.0))
        shares = (SegmentShare("a", low, draw(st.floats(low, 1.0))),)
    rules = Constraints(max_per_denomination=caps or None, max_messages=messages, min_roi=roi,
                        segment_shares=shares)  # fmt: skip
    objective = draw(st.sampled_from(("conversions", "gmv", "profit")))
    return Case(p0, p, basket, segment, objective, menu, budget, rules)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cases())
def test_every_solver_keeps_every_rule_and_its_bound(case):
    problem = case.problem()
    for solution in (
        solve_milp(problem, case.budget, case.constraints),
        solve_dual(problem, case.budget, case.constraints),
    ):
        choice = np.asarray(solution.choice)
        assert choice.shape == (case.p0.size,)  # every input user once, one option each
        assert ((choice >= -1) & (choice < len(case.menu))).all()
        feasible, value = _recount(case, choice)
        assert feasible
        assert abs(value - solution.value) <= 1e-6 * max(1.0, abs(value))
        if solution.upper_bound is not None:
            assert value <= solution.upper_bound + 1e-6 * max(1.0, abs(value))


@FAST
@given(cases())
def test_the_dual_is_within_a_tenth_of_a_percent_of_the_milp(case):
    problem = case.problem()
    exact = solve_milp(problem, case.budget, case.constraints)
    dual = solve_dual(problem, case.budget, case.constraints)
    assert dual.value >= exact.value * (1 - 1e-3) - 1e-9
    assert dual.upper_bound >= exact.value - 1e-6 * max(1.0, abs(exact.value))


@settings(max_examples=40, deadline=None)
@given(cases(max_users=5))
def test_the_milp_is_the_best_plan_a_brute_force_finds(case):
    problem = case.problem()
    best = 0.0  # the empty plan always keeps every rule
    for combo in itertools.product(range(-1, len(case.menu)), repeat=case.p0.size):
        feasible, value = _recount(case, combo)
        if feasible:
            best = max(best, value)
    exact = solve_milp(problem, case.budget, case.constraints)
    assert abs(exact.value - best) <= 1e-6 * max(1.0, abs(best))


@FAST
@given(cases(), st.data())
def test_check_plan_and_the_plan_figures_agree_with_the_recount(case, data):
    """Any plan, not only a solver's: ``check_plan`` refuses exactly the plans the recount finds
    breaking a rule (plans within 1e-4 of a rule's edge may go either way), and every figure
    of the summary equals its plain-loop recount."""
    problem = case.problem()
    n, k = case.p.shape
    choice = np.array(data.draw(st.lists(st.integers(-1, k - 1), min_size=n, max_size=n)),
                      dtype=np.int16)  # fmt: skip
    plan = Plan(problem, choice, "drawn", "none", case.budget)
    try:
        check_plan(plan, case.constraints)
        accepted = True
    except PlanError:
        accepted = False
    if _recount(case, choice, tol=1e-9)[0]:
        assert accepted
    if not _recount(case, choice, tol=1e-4)[0]:
        assert not accepted
    sent = [(i, int(j)) for i, j in enumerate(choice) if j >= 0]
    cost = sum(_cost(case, i, j) for i, j in sent)
    gmv = sum(_gmv(case, i, j) for i, j in sent)
    figures = plan.summary()
    assert figures["users"] == n and figures["users_targeted"] == len(sent)
    expected = {
        "expected_cost": cost,
        "incremental_conversions": sum(case.p[i, j] - case.p0[i] for i, j in sent),
        "incremental_gmv": gmv,
        "incremental_profit": MARGIN * gmv - cost,
        "objective_value": _recount(case, choice)[1],
    }
    for key, want in expected.items():
        assert abs(figures[key] - want) <= 1e-6 * max(1.0, abs(want)), key
    if cost > 0:
        assert abs(figures["roi"] - gmv / cost) <= 1e-6 * max(1.0, abs(gmv / cost))
    else:
        assert np.isnan(figures["roi"])


def test_the_frontier_and_its_marginal_return_equal_an_independent_lp():
    """The budget frontier's LP value and its price of money, against SciPy's HiGHS on the
    relaxation written out here (x_ik in [0, 1], one option a user, cost within the budget):
    its value, and the budget row's dual value (the slope one more unit of money buys)."""
    from scipy.optimize import linprog

    from optimizer.solvers import frontier

    rng = np.random.default_rng(21)
    menu = Menu(denomination=COUPONS)
    for trial in range(12):
        n, k = 9, len(COUPONS)
        p0 = rng.uniform(0.0, 0.4, n)
        p = np.clip(p0[:, None] + rng.uniform(-0.05, 0.3, (n, k)), 0, 1)
        basket = rng.uniform(20.0, 300.0, n)
        objective = ("conversions", "gmv", "profit")[trial % 3]
        case = Case(p0, p, basket, ["a"] * n, objective, menu, 0.0, Constraints())
        problem = case.problem()
        value = np.array([[_value(case, i, j) for j in range(k)] for i in range(n)])
        cost = np.array([[_cost(case, i, j) for j in range(k)] for i in range(n)])
        budgets = np.array([0.0, 0.3, 1.0, 2.5, 6.0, 50.0]) * rng.uniform(0.5, 1.5)
        front = frontier(problem, budgets)
        for b, bound, price in zip(budgets, front["upper_bound"], front["marginal_return"],
                                   strict=True):  # fmt: skip
            one_each = np.kron(np.eye(n), np.ones(k))
            lp = linprog(-value.ravel(), A_ub=np.vstack([cost.ravel(), one_each]),
                         b_ub=np.r_[b, np.ones(n)], bounds=(0, 1), method="highs")  # fmt: skip
            assert lp.status == 0
            assert bound == pytest.approx(-lp.fun, rel=1e-9, abs=1e-9), (trial, b)
            # The budget row's dual (HiGHS: d objective / d rhs, of the minimisation). Where
            # the budget sits exactly on a kink either side's slope is a valid price.
            dual = -lp.ineqlin.marginals[0]
            assert price == pytest.approx(dual, rel=1e-6, abs=1e-9), (trial, b)


def test_the_frontier_at_dense_budgets_and_on_tied_slopes():
    """Two hundred budgets across the whole range (every slope bucket is split by one), and a
    menu where many users share one slope: the frontier equals the LP at each budget, and its
    greedy prefix plan takes tied segments in the users' order."""
    from optimizer.solvers import frontier

    rng = np.random.default_rng(5)
    menu = Menu(denomination=COUPONS)
    n, k = 12, len(COUPONS)
    p0 = rng.uniform(0.0, 0.3, n)
    p = np.clip(p0[:, None] + rng.uniform(-0.05, 0.3, (n, k)), 0, 1)
    case = Case(p0, p, np.full(n, 80.0), ["a"] * n, "conversions", menu, 0.0, Constraints())
    problem = case.problem()
    value = problem.p - problem.p0[:, None]
    cost = np.array([[_cost(case, i, j) for j in range(k)] for i in range(n)])
    budgets = np.linspace(0.0, 1.05 * cost.max(axis=1).sum(), 200)
    front = frontier(problem, budgets, bins=64)
    assert front["budget"].dtype == np.float64
    for b, bound in zip(budgets, front["upper_bound"], strict=True):
        assert bound == pytest.approx(lp_bound(value, cost, b)[0], rel=1e-9, abs=1e-12)
    # Integer budgets come back as money (float64).
    assert frontier(problem, [1, 2])["budget"].dtype == np.float64
    # 40 users, one message each, at two slopes: even users 0.2, odd users 0.1 (value per unit
    # of money); within each slope the costs alternate 1, 2, 1, 2... At 10.5 the prefix of the
    # steeper users taken in their order is 1+2+1+2+1+2+1 = 10 (value 2.0); at 40.5, all the
    # steeper ones (30, value 6) and the same 10 of the others (value 1); 60 buys everything.
    mail = Menu.model_validate({"denomination": [{"name": "mail", "kind": "message",
                                                  "send_cost": 1.0}]})  # fmt: skip
    send = np.where((np.arange(40) // 2) % 2 == 0, 1.0, 2.0)
    slope = np.where(np.arange(40) % 2 == 0, 0.2, 0.1)
    tied = build_problem(np.arange(40), np.zeros(40), np.full((40, 1), 0.5), mail)
    tied.cost = send[:, None].copy()
    tied.value = (send * slope)[:, None].copy()
    front = frontier(tied, np.array([10.5, 40.5, 45.0, 100.0]))
    assert front["cost"].tolist() == [10.0, 40.0, 45.0, 60.0]  # 60: every message
    assert front["value"] == pytest.approx([2.0, 7.0, 7.5, 9.0])
    assert front["upper_bound"] == pytest.approx([2.1, 7.05, 7.5, 9.0])
    assert front["marginal_return"] == pytest.approx([0.2, 0.1, 0.1, 0.0])


def test_the_frontier_of_a_campaign_with_nothing_worth_sending():
    """Every coupon loses value: no hull segment; the frontier is flat at zero and the
    flexible budget is nothing."""
    from optimizer.errors import InputError
    from optimizer.solvers import budget_for_return, frontier

    menu = Menu(denomination=COUPONS)
    problem = build_problem(np.arange(3), np.full(3, 0.5), np.full((3, 3), 0.4), menu)
    front = frontier(problem, np.array([0.0, 10.0]))
    for key in ("upper_bound", "value", "cost", "marginal_return"):
        assert front[key].tolist() == [0.0, 0.0], key
    assert front["budget"].tolist() == [0.0, 10.0]
    assert budget_for_return(problem, 0.0) == 0.0
    with pytest.raises(InputError, match="^marginal_return: must be 0 or more$") as error:
        budget_for_return(problem, -0.1)
    assert error.value.key == "marginal_return"


def _mail(send_cost: float = 1.0) -> Menu:
    return Menu.model_validate({"denomination": [{"name": "mail", "kind": "message",
                                                  "send_cost": send_cost}]})  # fmt: skip


def _messages(value: np.ndarray, cost: np.ndarray, eligible=None):
    """A one-message problem with the given value and cost per user."""
    n = value.size
    problem = build_problem(np.arange(n), np.zeros(n), np.full((n, 1), 0.5), _mail())
    problem.value, problem.cost = value[:, None].astype(float), cost[:, None].astype(float)
    if eligible is not None:
        problem.eligible = eligible[:, None]
    return problem


def test_the_frontier_at_its_kinks_with_free_and_excluded_options():
    """Worked by hand. Slopes 0.3 (cost 1), 0.1 (cost 10); a free message worth 0.5; a
    steeper one (slope 2) the user may not get. One more unit of money at a kink buys the next
    segment's slope (0.1 at 1), nothing at or past the total (11)."""
    from optimizer.solvers import budget_for_return, frontier

    problem = _messages(np.array([0.3, 1.0, 0.5, 4.0]), np.array([1.0, 10.0, 0.0, 2.0]),
                        eligible=np.array([True, True, True, False]))  # fmt: skip
    budgets = np.array([0.0, 0.5, 1.0, 6.0, 11.0, 20.0])
    for bins in (4096, 2, 1):
        front = frontier(problem, budgets, bins=bins)
        assert front["upper_bound"] == pytest.approx([0.5, 0.65, 0.8, 1.3, 1.8, 1.8]), bins
        assert front["value"] == pytest.approx([0.5, 0.5, 0.8, 0.8, 1.8, 1.8]), bins
        assert front["cost"] == pytest.approx([0.0, 0.0, 1.0, 1.0, 11.0, 11.0]), bins
        assert front["marginal_return"] == pytest.approx([0.3, 0.3, 0.1, 0.1, 0.0, 0.0]), bins
    # A budget alone at a kink: one more unit buys the next segment (0.1), not the last (0.3).
    assert frontier(problem, np.array([1.0]))["marginal_return"] == pytest.approx([0.1])
    # Only a free option: no segment to buy, its value at every budget.
    free = frontier(_messages(np.array([0.5]), np.array([0.0])), np.array([0.0, 5.0]))
    assert free["upper_bound"].tolist() == [0.5, 0.5] and free["value"].tolist() == [0.5, 0.5]
    assert free["cost"].tolist() == [0.0, 0.0] and free["marginal_return"].tolist() == [0.0, 0.0]
    # The budget's only bucket is the second of two: its segments start at the first's end.
    front = frontier(problem, np.array([6.0]), bins=2)
    assert front["upper_bound"] == pytest.approx([1.3]) and front["cost"] == pytest.approx([1.0])
    # The flexible budget buys every segment returning at least the asked slope.
    assert budget_for_return(problem, 0.2) == pytest.approx(1.0)
    assert budget_for_return(problem, 0.05) == pytest.approx(11.0)
    assert budget_for_return(problem, 0.5) == 0.0
    one = _messages(np.array([0.3]), np.array([1.0]))
    assert budget_for_return(one, 0.1) == pytest.approx(1.0)  # a single segment counts


def test_the_frontier_when_every_segment_has_the_same_slope():
    """Three identical users (slope 0.1, cost 2 each): one slope, one bucket."""
    from optimizer.solvers import frontier

    problem = _messages(np.full(3, 0.2), np.full(3, 2.0))
    front = frontier(problem, np.array([1.0, 3.0, 6.0, 9.0]))
    assert front["upper_bound"] == pytest.approx([0.1, 0.3, 0.6, 0.6])
    assert front["cost"] == pytest.approx([0.0, 2.0, 6.0, 6.0])
    assert front["marginal_return"] == pytest.approx([0.1, 0.1, 0.0, 0.0])
