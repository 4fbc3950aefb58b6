"""The decomposition's branches: the bracketed budget solve of large problems, nothing worth
sending, the polish's report, ties broken by input order, and the MILP's wiring."""

from __future__ import annotations

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
        found = solve_dual(problem, budget, seed=seed)
        args, kwargs = asked[-1]
        assert args[0] is problem and args[1:] == (budget,) and kwargs == {"seed": seed}
        direct = solve_budget(problem, budget, seed=seed)
        np.testing.assert_array_equal(found.choice, direct.choice)
        assert (found.value, found.cost, found.upper_bound) == (
            direct.value, direct.cost, direct.upper_bound
        )  # fmt: skip
        assert found.multipliers == {"budget": direct.price} and found.core_users == 0
        assert found.cost <= budget * (1 + 1e-9) and found.seconds > 0
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
