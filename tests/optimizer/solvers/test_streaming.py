"""The budget solve streamed over chunks equals the in-memory hull, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.solvers.hull import solve_hull
from optimizer.solvers.instances import random_problem
from optimizer.solvers.streaming import Chunk, solve_budget_streamed
from simulator.scenario import Scenario

MENU = Scenario().menu


def _source(problem, rows: int, shuffle_seed: int | None = None):
    """Chunks of ``rows`` users, in an order fixed once (the same at every pass)."""
    order = np.arange(problem.n_users)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(problem.n_users)

    def chunks():
        for lo in range(0, problem.n_users, rows):
            at = order[lo : lo + rows]
            yield Chunk(problem.user_id[at], problem.value[at], problem.cost[at],
                        problem.eligible[at])  # fmt: skip

    return chunks, order


@pytest.mark.parametrize(("rows", "objective"), [(997, "conversions"), (5_000, "profit")])
def test_streamed_plan_matches_the_full_hull_and_is_recounted(rows, objective):
    rng = np.random.default_rng(7)
    problem = random_problem(rng, 20_000, MENU, objective)
    source, order = _source(problem, rows, shuffle_seed=3)
    for share in (0.05, 0.5, 3.0):
        budget = share * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
        found = solve_budget_streamed(source, budget, n_users=problem.n_users, sample_users=500)
        hull = solve_hull(problem, budget)
        assert found.upper_bound == pytest.approx(hull.upper_bound, rel=1e-9)
        # The plan written chunk by chunk, recounted from the problem's arrays.
        choice = np.full(problem.n_users, -1, dtype=np.int64)
        for chunk in source():
            rows_of = np.searchsorted(problem.user_id, chunk.user_id)
            choice[rows_of] = found.choose(chunk)
        on = np.flatnonzero(choice >= 0)
        cost = float(problem.cost[on, choice[on]].sum())
        value = float(problem.value[on, choice[on]].sum())
        assert cost == pytest.approx(found.cost, rel=1e-9, abs=1e-6) and cost <= budget + 1e-6
        assert value == pytest.approx(found.value, rel=1e-9, abs=1e-9)
        assert value >= hull.value - 2 * problem.value.max()
        assert problem.eligible[on, choice[on]].all()
        assert found.n_users == problem.n_users and found.core_users < problem.n_users


def test_unknown_size_and_kept_choices_agree_with_choose():
    rng = np.random.default_rng(11)
    problem = random_problem(rng, 8_000, MENU, "gmv")
    source, _ = _source(problem, 1_000)
    budget = 0.4 * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
    found = solve_budget_streamed(source, budget, keep=True, sample_users=300)
    assert found.n_users == 8_000 and found.choice is not None
    written = np.concatenate([found.choose(chunk) for chunk in source()])
    np.testing.assert_array_equal(written, found.choice)
    again = solve_budget_streamed(source, budget, keep=True, sample_users=300)
    np.testing.assert_array_equal(again.choice, found.choice)  # seeded: the same plan


def test_an_empty_source_plans_nobody_at_no_cost():
    """No chunk at all: nothing to spend, nothing to bound, every figure 0, the kept plan
    empty; the constrained path refuses it in one line naming the scores."""
    from optimizer.errors import InputError
    from optimizer.solvers import Constraints
    from optimizer.solvers.streamed_dual import solve_dual_streamed

    empty = solve_budget_streamed(lambda: iter(()), 10.0, keep=True)
    assert (empty.n_users, empty.core_users, empty.value, empty.cost) == (0, 0, 0.0, 0.0)
    assert empty.upper_bound == 0.0 and empty.choice.size == 0
    assert empty.core_user_id.dtype == np.int64 and empty.core_choice.dtype == np.int16
    with pytest.raises(InputError, match="^scores: no users to plan$") as error:
        solve_dual_streamed(lambda: iter(()), 10.0, Constraints(max_messages=3))
    assert error.value.key == "scores"


def test_the_bracket_widens_by_doubling_up_and_halving_down():
    """Known answers of :func:`widened`: a high price that still overspends moves the bracket
    up to twice it (at least the floor); a low price that underspends halves (to 0 below
    1e-12); a bracket whose ends straddle the budget holds."""
    from optimizer.solvers.streaming import PassPart, widened

    def part(cost_lo: float, cost_hi: float) -> PassPart:
        empty = Chunk(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2)),
                      np.zeros((0, 2), bool))  # fmt: skip
        return PassPart(np.array([cost_lo, cost_hi]), np.zeros(2), empty, np.zeros(0, np.int64))

    assert widened(part(12.0, 11.0), 10.0, (0.4, 0.8), 0.1) == (0.8, 1.6)
    assert widened(part(12.0, 11.0), 10.0, (0.01, 0.02), 0.5) == (0.02, 0.5)
    assert widened(part(9.0, 8.0), 10.0, (0.4, 0.8), 0.1) == (0.2, 0.4)
    assert widened(part(9.0, 8.0), 10.0, (1e-13, 0.8), 0.1) == (0.0, 1e-13)
    assert widened(part(9.0, 8.0), 10.0, (0.0, 0.8), 0.1) is None  # price 0: all it can spend
    assert widened(part(10.5, 9.5), 10.0, (0.4, 0.8), 0.1) is None


def test_a_chunk_refuses_arrays_that_disagree():
    ok = dict(user_id=np.arange(3), value=np.zeros((3, 2)), cost=np.zeros((3, 2)),
              eligible=np.ones((3, 2), bool))  # fmt: skip
    Chunk(**ok)
    for name, bad in (("user_id", np.arange(4)), ("value", np.zeros((3, 3))),
                      ("cost", np.zeros(3)), ("eligible", np.ones((2, 2), bool))):  # fmt: skip
        with pytest.raises(ValueError, match="a chunk's arrays disagree"):
            Chunk(**{**ok, name: bad})


@pytest.mark.parametrize("sample_users", [0, 1, 2])
def test_a_sample_of_one_user_still_ends_on_the_exact_hull(sample_users):
    """The smallest samples give a poor bracket, which the passes widen until it holds: the
    bound is the hull's all the same."""
    problem = random_problem(np.random.default_rng(13), 3_000, MENU, "conversions")
    source, _ = _source(problem, 700)
    budget = 0.2 * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
    found = solve_budget_streamed(source, budget, sample_users=sample_users, keep=True)
    hull = solve_hull(problem, budget)
    assert found.upper_bound == pytest.approx(hull.upper_bound, rel=1e-9)
    assert found.cost <= budget * (1 + 1e-9) and found.passes >= 2


def test_options_at_each_price_against_a_plain_recount(monkeypatch):
    """Every user's option and each price's totals, recounted user by user; the kernel works
    in blocks of 7 users here, so the totals add up across blocks."""
    import optimizer.solvers.streaming as streaming

    monkeypatch.setattr(streaming, "KERNEL_ROWS", 7)
    rng = np.random.default_rng(9)
    m, k = 50, 4
    value, cost = rng.normal(0.2, 0.5, (m, k)), rng.uniform(0.1, 2.0, (m, k))
    eligible = rng.random((m, k)) < 0.8
    prices = (0.0, 0.3, 2.0)
    choice, total_cost, total_value = streaming.options_at(
        Chunk(np.arange(m), value, cost, eligible), prices
    )
    for side, lam in enumerate(prices):
        spent = gained = 0.0
        for i in range(m):
            scores = [(value[i, j] - lam * cost[i, j], j) for j in range(k)
                      if eligible[i, j] and value[i, j] > 0]  # fmt: skip
            best = max(scores, key=lambda s: s[0], default=(0.0, -1))  # ties: the lower j
            j = best[1] if best[0] > 0 else -1
            assert choice[side, i] == j, (lam, i)
            if j >= 0:
                spent, gained = spent + cost[i, j], gained + value[i, j]
        assert total_cost[side] == pytest.approx(spent)
        assert total_value[side] == pytest.approx(gained)


def test_the_uniform_sample_is_the_users_with_the_smallest_keys():
    """Recounted from the definition: each part's users draw keys from ``(seed, part)``; the
    sample is the ``size`` users of smallest key, however often the kept set was pruned."""
    from optimizer.solvers.streaming import uniform_sample

    parts = [np.arange(lo, lo + 37) for lo in range(0, 37 * 9, 37)]
    for size, seed in ((5, 0), (20, 3), (50, 4)):
        kept, n = uniform_sample(iter(parts), size, seed, len, lambda a, r: a[r], np.concatenate)
        keys = np.concatenate([np.random.default_rng([seed, i]).random(p.size)
                               for i, p in enumerate(parts)])  # fmt: skip
        assert n == 37 * 9
        assert sorted(kept.tolist()) == sorted(np.argsort(keys)[:size].tolist())


def test_a_good_sample_brackets_the_price_at_the_first_pass():
    """A sample of 2,000 of 20,000 users brackets the budget's price: one pass over the source
    after the sample's, whatever the seed, and a core of a minority of the users."""
    problem = random_problem(np.random.default_rng(17), 20_000, MENU, "gmv")
    source, _ = _source(problem, 4_000)
    for share in (0.1, 0.4):
        budget = share * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
        for seed in range(4):
            found = solve_budget_streamed(source, budget, sample_users=2_000, seed=seed)
            assert found.passes == 2, (share, seed)
            assert found.core_users < 0.5 * problem.n_users


def test_the_chunk_error_shows_every_shape():
    with pytest.raises(ValueError) as error:
        Chunk(np.arange(3), np.zeros((3, 2)), np.zeros((3, 2)), np.ones((2, 2), bool))
    assert str(error.value) == (
        "a chunk's arrays disagree: user_id (3,), value (3, 2), cost (3, 2), eligible (2, 2) "
        "(expected (m,) and three of (m, k))"
    )


def test_a_source_that_miscounts_is_refused_in_one_line():
    from optimizer.solvers import Constraints
    from optimizer.solvers.streamed_dual import solve_dual_streamed

    problem = random_problem(np.random.default_rng(2), 300, MENU, "conversions")
    source, _ = _source(problem, 100)
    with pytest.raises(ValueError) as error:
        solve_budget_streamed(source, 5.0, n_users=301)
    assert str(error.value) == "the source yielded 300 users; n_users says 301"

    def problems():
        for lo in range(0, 300, 100):
            yield problem.take(np.arange(lo, lo + 100))

    with pytest.raises(ValueError) as error:
        solve_dual_streamed(problems, 5.0, Constraints(max_messages=9), n_users=299)
    assert str(error.value) == "the source yielded 300 users; n_users says 299"


def test_the_kept_plan_of_an_empty_source_is_int16():
    assert solve_budget_streamed(lambda: iter(()), 1.0, keep=True).choice.dtype == np.int16


def test_the_streamed_plan_keeps_to_the_eligible_options():
    """A third of the options are not sendable: no user of the plan, core included, gets one,
    and the bound is the in-memory hull's."""
    problem = random_problem(np.random.default_rng(27), 6_000, MENU, "gmv")
    problem.eligible = np.random.default_rng(1).random(problem.eligible.shape) < 0.67
    source, _ = _source(problem, 1_000)
    budget = 0.3 * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
    found = solve_budget_streamed(source, budget, sample_users=800, keep=True)
    assert found.core_users > 0
    on = np.flatnonzero(found.choice >= 0)
    assert problem.eligible[on, found.choice[on]].all()
    assert found.upper_bound == pytest.approx(solve_hull(problem, budget).upper_bound, rel=1e-9)
