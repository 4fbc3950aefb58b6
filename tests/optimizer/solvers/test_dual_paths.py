"""The decomposition's branches: the bracketed budget solve of large problems, nothing worth
sending, the polish's report, ties broken by input order, and the MILP's wiring."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import optimizer.solvers.dual as dual
import optimizer.solvers.milp as milp
from optimizer.errors import InputError
from optimizer.solvers.budget import solve_budget
from optimizer.solvers.constraints import Constraints
from optimizer.solvers.dual import solve_dual
from optimizer.solvers.instances import random_instance, random_problem
from optimizer.solvers.milp import milp_solver, solve_milp
from optimizer.solvers.problem import build_problem
from simulator.scenario import Scenario
from tests.optimizer.solvers import lp_bound

MENU = Scenario().menu


def test_large_budget_only_problems_take_the_bracketed_budget_solve(monkeypatch):
    """Above ``BRACKET_MIN_USERS`` a budget-only solve is the bracketed budget solve, asked for
    this budget and this seed, and reports its plan, bound and price as they are."""
    monkeypatch.setattr(dual, "BRACKET_MIN_USERS", 100)
    problem = random_problem(np.random.default_rng(21), 600, MENU, "gmv")
    budget = 0.3 * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
    asked = []

    def spy(*args, **kwargs):
        asked.append((args, kwargs))
        return solve_budget(*args, **kwargs)

    monkeypatch.setattr(dual, "solve_budget", spy)
    for seed in (0, 5):
        start = time.perf_counter()
        found = solve_dual(problem, budget, seed=seed)
        wall = time.perf_counter() - start
        args, kwargs = asked[-1]
        assert args[0] is problem and args[1:] == (budget,) and kwargs == {"seed": seed}
        direct = solve_budget(problem, budget, seed=seed)
        np.testing.assert_array_equal(found.choice, direct.choice)
        assert (found.value, found.cost, found.upper_bound) == (
            direct.value, direct.cost, direct.upper_bound
        )  # fmt: skip
        assert found.multipliers == {"budget": direct.price} and found.core_users == 0
        assert found.cost <= budget * (1 + 1e-9) and 0 < found.seconds <= wall
        # Recounted from the problem's arrays.
        on = np.flatnonzero(found.choice >= 0)
        assert float(problem.value[on, found.choice[on]].sum()) == pytest.approx(found.value)


@pytest.mark.parametrize(
    ("constraints", "rows"),
    [
        (None, ["budget"]),
        (Constraints(max_messages=3), ["budget", "messages"]),
        (Constraints(min_roi=1.0), ["budget", "min_roi"]),
    ],
)
def test_nothing_worth_sending_is_the_empty_plan_with_every_row_priced_at_zero(constraints, rows):
    """Every uplift <= 0 (some exactly 0): the empty plan, certified optimal (bound 0), each of
    the campaign's rows priced at 0, and the time it took reported."""
    n = 6
    p0 = np.full(n, 0.2)
    p = np.full((n, len(MENU)), 0.1)
    p[::2, 0] = 0.2  # an uplift of exactly 0
    problem = build_problem(np.arange(n), p0, p, MENU)
    found = solve_dual(problem, 100.0, constraints)
    assert found.choice.tolist() == [-1] * n and found.choice.dtype == np.int16
    assert (found.value, found.cost, found.upper_bound, found.gap) == (0.0, 0.0, 0.0, 0.0)
    assert found.multipliers == dict.fromkeys(rows, 0.0)
    assert found.seconds > 0 and found.core_users == 0


def test_no_users_is_the_empty_plan():
    problem = build_problem(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, len(MENU))), MENU)
    found = solve_dual(problem, 10.0, Constraints(max_messages=2))
    assert found.choice.size == 0 and (found.value, found.upper_bound) == (0.0, 0.0)
    assert found.multipliers == {"budget": 0.0, "messages": 0.0}


def test_polished_users_are_counted_and_none_without_the_polish():
    problem, budget, constraints = random_instance(np.random.default_rng(4), "caps", MENU, 500, 501)
    unpolished = solve_dual(problem, budget, constraints, polish_gap=np.inf)
    assert unpolished.core_users == 0 and isinstance(unpolished.core_users, int)
    polished = solve_dual(problem, budget, constraints, polish_gap=0.0, core_users=40)
    assert polished.core_users == 40
    assert polished.value >= unpolished.value - 1e-12


def _runs_at_an_end(served: np.ndarray) -> bool:
    """True when the served users of a group form one run at its start or at its end."""
    count = int(served.sum())
    return bool(served[:count].all() or served[served.size - count :].all())


def test_tied_users_are_served_in_input_order():
    """Three kinds of identical users, interleaved, under binding caps: of each kind, those
    served are one run of them in input order (the fill serves the earliest first, the repair
    drops the earliest first), whatever the sort algorithm does with ties."""
    rng = np.random.default_rng(0)
    n = 200
    kind = rng.integers(0, 3, n)
    lift = np.array([0.05, 0.08, 0.12])[kind]
    p0 = np.full(n, 0.05)
    p = p0[:, None] + lift[:, None] * np.linspace(0.5, 1.0, len(MENU))[None, :]
    problem = build_problem(np.arange(n), p0, p, MENU)
    first, last = MENU.names[0], MENU.names[-1]
    cases = [
        Constraints(max_messages=n // 2),
        Constraints(max_per_denomination={first: n // 5}, max_messages=n // 2 + 3),
        Constraints(max_per_denomination={last: n // 5, MENU.names[-2]: n // 7},
                    max_messages=n // 2 + 3),
    ]  # fmt: skip
    partial = 0
    for constraints in cases:
        for budget in (1e6, 0.3 * n):
            found = solve_dual(problem, budget, constraints, polish_gap=np.inf)
            for k in range(3):
                served = found.choice[kind == k] >= 0
                assert _runs_at_an_end(served), (constraints, budget, k)
                partial += 0 < served.sum() < served.size
    assert partial >= 6  # the ties are really split in most cases


def test_the_milp_is_asked_for_the_gap_given():
    problem = random_problem(np.random.default_rng(8), 30, MENU)
    asked = []
    real = milp.solve_rows

    def spy(*args, **kwargs):
        asked.append(kwargs)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(milp, "solve_rows", spy)
        sol = solve_milp(problem, 3.0, gap=0.02, time_limit=30)
    assert asked == [{"time_limit": 30, "gap": 0.02}]
    assert sol.status == "Optimal" and sol.upper_bound >= sol.value / 0.98 - 1e-12


def test_without_a_milp_solver_the_error_says_what_to_install(monkeypatch):
    import pulp

    monkeypatch.setattr(pulp, "listSolvers", lambda onlyAvailable=False: [])
    with pytest.raises(InputError) as error:
        milp_solver()
    assert str(error.value) == "no MILP solver for PuLP: install highspy (pip install highspy)"


def test_the_solvers_raise_no_warning():
    """A plan with every kind of row, solved without a single warning (a misspelt optimiser
    option or an unguarded 0/0 would print one to the user)."""
    problem, budget, constraints = random_instance(np.random.default_rng(2), "all", MENU, 800, 801)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = solve_dual(problem, budget, constraints)
        exact = solve_milp(problem, budget, constraints, gap=1e-3, time_limit=30)
    assert found.upper_bound >= exact.value - 1e-9 * abs(exact.value)


def test_the_milp_solver_is_highs_when_installed_with_its_limits(monkeypatch):
    import pulp

    solver = milp_solver(time_limit=7.0, gap=0.03)
    assert "HiGHS" in pulp.listSolvers(onlyAvailable=True)  # highspy is a dependency
    assert isinstance(solver, pulp.HiGHS) and solver.threads == 1
    assert solver.timeLimit == 7.0 and solver.gapRel == 0.03 and not solver.msg
    # Without HiGHS, PuLP's bundled CBC with the same limits.
    monkeypatch.setattr(pulp, "listSolvers", lambda onlyAvailable=False: ["PULP_CBC_CMD"])
    with warnings.catch_warnings():  # PuLP 3 deprecates its bundled CBC for 4.0
        warnings.simplefilter("ignore", DeprecationWarning)
        cbc = milp_solver(time_limit=7.0, gap=0.03)
    assert isinstance(cbc, pulp.PULP_CBC_CMD) and cbc.timeLimit == 7.0
    assert cbc.optionsDict["gapRel"] == 0.03 and not cbc.msg


def test_nothing_eligible_is_proven_optimal_at_zero():
    n = 5
    problem = random_problem(np.random.default_rng(3), n, MENU)
    problem.eligible[:] = False
    sol = solve_milp(problem, 10.0)
    assert sol.status == "Optimal" and sol.choice.tolist() == [-1] * n
    assert (sol.value, sol.cost, sol.upper_bound) == (0.0, 0.0, 0.0)


def test_the_budget_solve_reads_the_problem_in_chunks(monkeypatch):
    """Chunks of 97 users: the same plan and bound as the in-memory hull."""
    import optimizer.solvers.budget as budget_module
    from optimizer.solvers.hull import solve_hull

    monkeypatch.setattr(budget_module, "CHUNK_ROWS", 97)
    problem = random_problem(np.random.default_rng(19), 1_000, MENU, "profit")
    budget = 0.3 * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
    found = solve_budget(problem, budget, sample_users=200)
    hull = solve_hull(problem, budget)
    assert found.upper_bound == pytest.approx(hull.upper_bound, rel=1e-9)
    assert found.choice.shape == (1_000,) and found.cost <= budget * (1 + 1e-9)
    on = np.flatnonzero(found.choice >= 0)
    assert float(problem.value[on, found.choice[on]].sum()) == pytest.approx(found.value)


def test_the_polish_re_optimises_the_least_decided_users(monkeypatch):
    """The core is the users whose two best reduced values (nothing counts as 0) are closest:
    here users 4 and 1 (margins 0.05 and 0.5), sent to the MILP in input order."""
    from optimizer.solvers.constraints import LinearRow
    from optimizer.solvers.dual import _polish

    value = np.array([[3.0, 0.5], [1.1, 0.6], [0.2, 2.9], [-1.0, 4.0], [0.55, 0.5], [2.0, -1.0]])
    cost = np.ones((6, 2))
    rows = [LinearRow("budget", 3.0, entry=cost)]
    # Reduced at lam 0.5: [2.5, 0], [0.6, 0.1], [-0.3, 2.4], [-1.5, 3.5], [0.05, 0], [1.5, -1.5]
    # -> margins 2.5, 0.5, 2.4, 3.5, 0.05, 1.5: the two least decided are users 4 and 1.
    seen = []
    real = milp.solve_rows

    def spy(sub_value, *args, **kwargs):
        seen.append(sub_value.copy())
        return real(sub_value, *args, **kwargs)

    monkeypatch.setattr(milp, "solve_rows", spy)
    choice = np.array([0, -1, 1, 1, -1, -1])
    _, size = _polish(value, rows, np.array([0.5]), choice, 2, 5.0, 1e-9)
    assert size == 2
    np.testing.assert_array_equal(seen[0], value[[1, 4]])


def test_the_fill_offers_each_user_their_best_option_of_positive_value():
    """User 0's best reduced option is worth nothing (value 0); the fill still offers them
    their best option of positive value (1, worth 0.1 at cost 1.1), which fits the budget
    the repaired plan leaves. Found by a search over small instances (seed 51)."""
    from optimizer.solvers.constraints import LinearRow
    from optimizer.solvers.dual import solve_dual_rows

    value = np.array([[0.0, 0.1, 0.1], [1.5, 0.0, 1.5], [0.0, 0.0, 0.0], [1.8, 0.0, 0.0],
                      [1.4, 0.5, 2.0]])  # fmt: skip
    cost = np.array([[0.7, 1.1, 1.3], [1.7, 0.1, 1.5], [0.7, 0.5, 0.2], [1.1, 1.4, 2.0],
                     [0.6, 2.0, 1.1]])  # fmt: skip
    rows = [LinearRow("budget", 3.632178788680736, entry=cost),
            LinearRow("messages", 4.0, option=np.ones(3))]  # fmt: skip
    found = solve_dual_rows(value, rows, polish_gap=np.inf)
    assert found.choice.tolist() == [1, -1, -1, 0, 2]
    assert found.value == pytest.approx(3.9) and found.cost == pytest.approx(1.1 + 1.1 + 1.1)


def test_options_worth_nothing_are_not_sent_even_when_free_of_any_price():
    """No row binds (price 0): each user gets their best option of positive value; a user
    whose best is worth exactly 0 gets nothing (it would cost a message for no gain)."""
    from optimizer.solvers.constraints import LinearRow
    from optimizer.solvers.dual import solve_dual_rows

    value = np.array([[0.0, -0.5], [0.4, 0.0], [0.0, 0.0]])
    rows = [LinearRow("budget", 100.0, entry=np.ones((3, 2)))]
    found = solve_dual_rows(value, rows, polish_gap=np.inf)
    assert found.choice.tolist() == [-1, 0, -1] and found.choice.dtype == np.int16
    assert found.cost == 1.0 and found.value == pytest.approx(0.4)


def test_the_budgets_price_is_the_lp_shadow_price():
    """Budget only: the reported multiplier is the LP relaxation's shadow price of the
    budget, from SciPy's HiGHS on the LP written out in the tests."""
    problem = random_problem(np.random.default_rng(23), 300, MENU, "gmv")
    for share in (0.1, 0.35):
        budget = share * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
        bound, price = lp_bound(problem.value, problem.cost, budget)
        start = time.perf_counter()
        found = solve_dual(problem, budget)
        wall = time.perf_counter() - start
        assert found.multipliers["budget"] == pytest.approx(price, rel=1e-6)
        assert found.upper_bound == pytest.approx(bound, rel=1e-9)
        assert 0 < found.seconds <= wall


def test_the_smoothed_duals_gradient_is_its_derivative():
    """The gradient of the smoothed dual against central differences, on rows of very
    different scales (money in the hundreds, a message count, a share row)."""
    from scipy.optimize import approx_fprime

    from optimizer.solvers.constraints import linear_rows
    from optimizer.solvers.dual import _masked_values, _SmoothedDual

    problem = random_problem(np.random.default_rng(29), 120, MENU, "profit")
    problem.cost *= 100.0
    constraints = Constraints(max_messages=30, min_roi=0.5)
    rows = linear_rows(problem, 800.0, constraints)
    dual = _SmoothedDual(_masked_values(problem, constraints), rows)
    assert dual.ascale.max() / dual.ascale.min() > 50  # the scales really differ
    for y in (np.array([0.2, 0.1, 0.05]), np.array([0.01, 0.5, 0.3])):
        _, grad = dual(y, 0.03)
        numeric = approx_fprime(y, lambda x: dual(x, 0.03)[0], 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_the_value_scale_of_small_values_is_the_largest_value():
    from optimizer.solvers.constraints import LinearRow
    from optimizer.solvers.dual import _SmoothedDual

    value = np.array([[0.3, -0.1], [0.05, 0.2]])
    dual = _SmoothedDual(value, [LinearRow("budget", 1.0, entry=np.ones((2, 2)))])
    assert dual.vscale == 0.3


def test_a_run_stopped_with_an_incumbent_is_feasible_without_a_bound(monkeypatch):
    """When the solver stops at its time limit holding an integer plan (PuLP: status optimal,
    solution integer-feasible), the plan is kept, called feasible, and claims no bound."""
    import pulp

    real = pulp.LpProblem.solve

    def stopped(self, *args, **kwargs):
        code = real(self, *args, **kwargs)
        self.sol_status = pulp.LpSolutionIntegerFeasible
        return code

    monkeypatch.setattr(pulp.LpProblem, "solve", stopped)
    problem = random_problem(np.random.default_rng(5), 12, MENU)
    sol = solve_milp(problem, 2.0)
    assert sol.status == "Feasible" and sol.upper_bound is None
    assert (sol.choice >= 0).any() and sol.cost <= 2.0 + 1e-9
