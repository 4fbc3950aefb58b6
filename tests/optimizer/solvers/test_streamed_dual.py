"""Every constraint kind streamed over chunks: feasible, certified, and as good as in memory."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import InputError
from optimizer.solvers.constraints import Constraints, SegmentShare
from optimizer.solvers.dual import solve_dual
from optimizer.solvers.instances import KINDS, random_instance, random_problem
from optimizer.solvers.streamed_dual import solve_dual_streamed
from simulator.scenario import Scenario

MENU = Scenario().menu


def _source(problem, rows: int, order: np.ndarray | None = None):
    """Chunks of ``rows`` users in a fixed order (the same at every pass)."""
    order = np.arange(problem.n_users) if order is None else order

    def chunks():
        for lo in range(0, problem.n_users, rows):
            yield problem.take(order[lo : lo + rows])

    return chunks


def _recount(problem, choice: np.ndarray, budget: float, constraints: Constraints) -> dict:
    """The plan's figures and broken rows, counted from the raw arrays (not the solver's rows)."""
    on = np.flatnonzero(choice >= 0)
    k = choice[on]
    cost = float(problem.cost[on, k].sum())
    value = float(problem.value[on, k].sum())
    broken = []
    if cost > budget * (1 + 1e-9) + 1e-9:
        broken.append("budget")
    counts = np.bincount(k, minlength=len(MENU))
    for name, cap in (constraints.max_per_denomination or {}).items():
        if counts[MENU.names.index(name)] > cap:
            broken.append(f"cap:{name}")
    if constraints.max_messages is not None and on.size > constraints.max_messages:
        broken.append("messages")
    if constraints.min_roi is not None and on.size:
        gmv = float(problem.gmv_uplift()[on, k].sum())
        if gmv < constraints.min_roi * cost - 1e-6 * max(1.0, cost):
            broken.append("min_roi")
    labels = np.asarray(problem.segment_names)[problem.segment]
    for share in constraints.segment_shares:
        members = int((labels[on] == share.segment).sum())
        if members < share.min * on.size - 1e-6 or members > share.max * on.size + 1e-6:
            broken.append(f"segment:{share.segment}")
    return {"cost": cost, "value": value, "broken": broken, "sent": on.size}


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "budget"])
def test_streamed_plan_is_feasible_certified_and_as_good_as_in_memory(kind):
    for seed in (101, 202):
        rng = np.random.default_rng(seed)
        problem, budget, constraints = random_instance(rng, kind, MENU, 30_000, 30_001)
        order = np.random.default_rng(seed).permutation(problem.n_users)
        source = _source(problem, 4_001, order)
        found = solve_dual_streamed(source, budget, constraints, n_users=problem.n_users,
                                    sample_users=6_000, seed=seed)  # fmt: skip
        memory = solve_dual(problem, budget, constraints)
        choice = np.full(problem.n_users, -1, dtype=np.int64)
        for chunk in source():
            choice[np.searchsorted(problem.user_id, chunk.user_id)] = found.choose(chunk)
        counted = _recount(problem, choice, budget, constraints)
        assert counted["broken"] == []
        assert counted["value"] == pytest.approx(found.value, rel=1e-9, abs=1e-9)
        assert counted["cost"] == pytest.approx(found.cost, rel=1e-9, abs=1e-9)
        assert found.usage["budget"] == pytest.approx(counted["cost"], rel=1e-9, abs=1e-9)
        # Both bounds certify: neither plan beats the other's bound.
        assert found.upper_bound >= memory.value - 1e-9 * abs(memory.value)
        assert memory.upper_bound >= found.value - 1e-9 * abs(found.value)
        assert found.gap < 1e-3
        assert 0 < found.core_users < problem.n_users and found.passes >= 2


def test_kept_choices_agree_with_the_rule_and_a_narrow_box_still_certifies():
    rng = np.random.default_rng(5)
    problem, budget, constraints = random_instance(rng, "all", MENU, 20_000, 20_001)
    source = _source(problem, 3_000)
    wide = solve_dual_streamed(source, budget, constraints, sample_users=4_000, keep=True)
    ruled = np.concatenate([wide.choose(chunk) for chunk in source()])
    np.testing.assert_array_equal(wide.choice, ruled)
    narrow = solve_dual_streamed(source, budget, constraints, sample_users=4_000, width=1e-4,
                                 keep=True)  # fmt: skip
    assert narrow.passes > wide.passes  # the box had to grow
    assert _recount(problem, narrow.choice.astype(np.int64), budget, constraints)["broken"] == []
    assert narrow.upper_bound >= wide.value - 1e-9 * wide.value
    assert wide.upper_bound >= narrow.value - 1e-9 * narrow.value


def test_a_segment_only_in_later_chunks_is_known_and_an_unknown_one_is_refused():
    rng = np.random.default_rng(9)
    problem = random_problem(rng, 12_000, MENU, "conversions")
    labels = np.where(np.arange(12_000) >= 11_950, "late", problem.segment_labels())
    problem.segment = np.unique(labels, return_inverse=True)[1].astype(np.int32)
    problem.segment_names = tuple(np.unique(labels))
    budget = 0.3 * float(np.where(problem.value > 0, problem.cost, 0).max(axis=1).sum())
    source = _source(problem, 1_000)
    late = Constraints(segment_shares=(SegmentShare("late", 0.0, 0.001),))
    found = solve_dual_streamed(source, budget, late, sample_users=500, keep=True)
    counted = _recount(problem, found.choice.astype(np.int64), budget, late)
    assert counted["broken"] == [] and counted["sent"] > 0
    with pytest.raises(InputError, match="'nowhere' is not among"):
        solve_dual_streamed(
            source, budget, Constraints(segment_shares=(SegmentShare("nowhere", 0.1, 1.0),))
        )
    with pytest.raises(InputError, match="no users"):
        solve_dual_streamed(lambda: iter(()), budget, late)


def test_the_same_seed_gives_the_same_plan():
    """Seeded determinism of the streamed stages (the exact polish has a wall-clock limit, so
    on a loaded machine it may stop elsewhere: it is left out here)."""
    rng = np.random.default_rng(3)
    problem, budget, constraints = random_instance(rng, "segment", MENU, 15_000, 15_001)
    runs = [
        solve_dual_streamed(
            _source(problem, 2_500),
            budget,
            constraints,
            sample_users=3_000,
            seed=4,
            keep=True,
            polish_gap=np.inf,
        )  # fmt: skip
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].choice, runs[1].choice)
    assert runs[0].upper_bound == runs[1].upper_bound


def test_a_core_past_its_limit_stops_in_one_line_instead_of_filling_memory():
    rng = np.random.default_rng(8)
    problem, budget, constraints = random_instance(rng, "caps", MENU, 8_000, 8_001)
    with pytest.raises(InputError, match="more than 10 users stay undecided"):
        solve_dual_streamed(_source(problem, 1_000), budget, constraints, sample_users=2_000,
                            max_core_users=10)  # fmt: skip


def _best_by_loops(problem, center, budget, constraints) -> list[int]:
    """Each user's best option at the multipliers ``center`` (budget, then messages), by loops:
    value - lam_budget * cost - lam_messages, ties to the lower option, -1 unless positive."""
    assert constraints.max_messages is not None and len(center) == 2
    out = []
    for i in range(problem.n_users):
        best, pick = 0.0, -1
        for k in range(problem.value.shape[1]):
            if not (problem.eligible[i, k] and np.isfinite(problem.value[i, k])):
                continue
            reduced = problem.value[i, k] - center[0] * problem.cost[i, k] - center[1]
            if reduced > best:
                best, pick = reduced, k
        out.append(pick)
    return out


def test_a_core_past_its_limit_names_the_constraints_key():
    from optimizer.solvers.streamed_dual import check_core

    check_core(10, limit=10)
    with pytest.raises(InputError) as info:
        check_core(11, limit=10)
    assert info.value.key == "constraints"
    assert info.value.message == (
        "more than 10 users stay undecided around the sample's multipliers; raise the sample "
        "(sample_users) or check the scores and constraints"
    )


def test_a_box_pass_in_small_kernels_counts_every_fixed_user_once(monkeypatch):
    from optimizer.solvers import streamed_dual

    monkeypatch.setattr(streamed_dual, "KERNEL_ROWS", 3)
    problem = random_problem(np.random.default_rng(21), 8, MENU, "conversions")
    constraints = Constraints(max_messages=4)
    center = np.array([0.02, 0.01])
    box = (center, center * 0.5, center * 1.5)
    part, choice, core = streamed_dual.dual_part(problem, 100.0, constraints, box)
    assert choice.dtype == np.int16
    assert choice.tolist() == _best_by_loops(problem, center, 100.0, constraints)
    fixed = [i for i in range(8) if i not in set(core.tolist()) and choice[i] >= 0]
    assert core.size < 8
    assert part.value == pytest.approx(sum(problem.value[i, choice[i]] for i in fixed))
    assert part.usage[0] == pytest.approx(sum(problem.cost[i, choice[i]] for i in fixed))
    assert part.usage[1] == len(fixed)
    assert (part.core is None) == (core.size == 0)
    if core.size:
        assert part.core.user_id.tolist() == problem.user_id[core].tolist()
    # A box of no width leaves no user undecided (no ties at these multipliers): no core.
    part, _, core = streamed_dual.dual_part(problem, 100.0, constraints, (center,) * 3)
    assert core.size == 0 and part.core is None


def test_the_rule_chooses_in_small_kernels_and_applies_the_core(monkeypatch):
    from optimizer.solvers import streamed_dual

    monkeypatch.setattr(streamed_dual, "KERNEL_ROWS", 3)
    problem = random_problem(np.random.default_rng(22), 8, MENU, "conversions")
    constraints = Constraints(max_messages=4)
    center = np.array([0.02, 0.01])
    rule = streamed_dual.StreamedDual(
        budget=100.0, constraints=constraints, center=center,
        core_user_id=problem.user_id[[2]].astype(np.int64), core_choice=np.array([1], np.int16),
        value=0.0, cost=0.0, upper_bound=0.0, multipliers={}, usage={}, n_users=8,
        core_users=1, passes=2,
    )  # fmt: skip
    expected = _best_by_loops(problem, center, 100.0, constraints)
    expected[2] = 1
    assert rule.choose(problem).tolist() == expected


def _rows_and_part(core=None):
    from optimizer.solvers.constraints import LinearRow
    from optimizer.solvers.streamed_dual import DualPart

    rows = [LinearRow("budget", 10.0), LinearRow("messages", 5.0)]
    return rows, DualPart(3.5, np.array([7.0, 4.0]), core)


def test_a_pass_without_a_core_is_its_fixed_users():
    from optimizer.solvers.streamed_dual import finish_box, solve_dual_core

    rows, part = _rows_and_part()
    choice, value, cost, bound, lam, feasible = solve_dual_core(part, rows, Constraints())
    assert choice.shape == (0,) and choice.dtype == np.int16
    assert (value, cost, bound, feasible) == (3.5, 7.0, 3.5, True)
    assert lam.tolist() == [0.0, 0.0]
    # The multipliers (0) sit on the box's edges: inside, so the box certifies the plan.
    box = (np.array([0.3, 0.0]), np.zeros(2), np.array([0.6, 0.0]))
    plan, box_after, width, choice = finish_box(part, rows, 10.0, Constraints(), box,
                                                np.ones(2), 0.1, 50, 2)  # fmt: skip
    assert plan is not None and box_after is box and width == 0.1 and choice.size == 0
    assert plan.center.tolist() == [0.3, 0.0]
    assert plan.core_user_id.tolist() == [] and plan.core_choice.tolist() == []
    assert (plan.value, plan.cost, plan.upper_bound) == (3.5, 7.0, 3.5)
    assert plan.usage == {"budget": 7.0, "messages": 4.0}
    assert plan.multipliers == {"budget": 0.0, "messages": 0.0}
    assert (plan.n_users, plan.core_users, plan.passes) == (50, 0, 2)


def test_a_pass_with_one_usage_per_row_only():
    from optimizer.solvers.streamed_dual import DualPart, finish_box

    rows, part = _rows_and_part()
    short = DualPart(part.value, np.array([1.0]), None)  # a part of other rows
    box = (np.zeros(2), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError):
        finish_box(short, rows, 10.0, Constraints(), box, np.ones(2), 0.1, 50, 2)


def test_a_streamed_plan_keeps_choices_only_on_request_and_polishes_only_when_asked(
    monkeypatch,
):
    import optimizer.solvers.dual as dual
    from optimizer.solvers import streamed_dual

    def no_polish(*args, **kwargs):
        raise AssertionError("polish_gap=inf must never polish")

    monkeypatch.setattr(dual, "_polish", no_polish)
    seeds = []

    def solve_rows_seen(*args, seed, **kwargs):
        seeds.append(seed)
        return dual.solve_dual_rows(*args, seed=seed, **kwargs)

    monkeypatch.setattr(streamed_dual, "solve_dual_rows", solve_rows_seen)
    # 600 users: the core's gap is above the default polish_gap, so a default would polish.
    rng = np.random.default_rng(6)
    problem, budget, constraints = random_instance(rng, "caps", MENU, 600, 601)
    source = _source(problem, 100)
    plan = solve_dual_streamed(source, budget, constraints, sample_users=100,
                               polish_gap=np.inf, seed=7)  # fmt: skip
    assert plan.choice is None
    assert plan.core_users > 0 and len(seeds) >= 2 and set(seeds) == {7}  # sample and core
    kept = solve_dual_streamed(source, budget, constraints, sample_users=100,
                               polish_gap=np.inf, keep=True)  # fmt: skip
    assert kept.choice.dtype == np.int16 and kept.choice.shape == (problem.n_users,)
    assert _recount(problem, kept.choice.astype(np.int64), budget, constraints)["broken"] == []


def test_the_price_scale_is_the_largest_value_over_the_mean_coefficient():
    from optimizer.solvers.streamed_dual import sample_multipliers

    problem = random_problem(np.random.default_rng(23), 40, MENU, "conversions")
    problem.eligible[::3, 0] = False  # not sendable: left out of both means
    constraints = Constraints(max_messages=10)
    _, unit = sample_multipliers(problem, 1.0, 5.0, constraints, 0)
    sendable = [(i, k) for i in range(40) for k in range(len(MENU))
                if problem.eligible[i, k] and np.isfinite(problem.value[i, k])]  # fmt: skip
    top = max(abs(problem.value[i, k]) for i, k in sendable)
    mean_cost = sum(problem.cost[i, k] for i, k in sendable) / len(sendable)
    assert unit.tolist() == pytest.approx([top / mean_cost, top / 1.0], rel=1e-12)


def test_the_sample_multipliers_are_seeded(monkeypatch):
    import optimizer.solvers.dual as dual
    from optimizer.solvers.streamed_dual import sample_multipliers

    monkeypatch.setattr(dual, "WARM_START_USERS", 5)  # the sampled warm start from 11 users
    problem = random_problem(np.random.default_rng(31), 200, MENU, "conversions")
    constraints = Constraints(max_messages=40)
    runs = [sample_multipliers(problem, 0.5, 10.0, constraints, 1)[0].tolist() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_the_box_around_the_sample_multipliers():
    """Known answers: a half-width relative to each multiplier, and for a multiplier of 0 a
    reach of ``ZERO_REACH`` of its row's price scale (never below 0)."""
    from optimizer.solvers.streamed_dual import ZERO_REACH, box_around

    center = np.array([0.0, 2.0, 0.1])
    unit = np.array([10.0, 10.0, 4.0])
    _, lo, hi = box_around(center, unit, 0.5)
    reach = [0.5 * ZERO_REACH * 10.0, 0.5 * 2.0, 0.5 * max(0.1, ZERO_REACH * 4.0)]
    np.testing.assert_allclose(lo, [0.0, 1.0, 0.0])
    np.testing.assert_allclose(hi, [reach[0], 3.0, 0.1 + reach[2]])
    assert ZERO_REACH * 4.0 > 0.1  # the third row is reached by its scale, not its multiplier


def test_passes_are_the_calls_of_the_source_and_the_rule_gives_int16():
    """The reported passes are the times the source was read (the sample's included), and the
    rule's options are int16 like the kept plan."""
    rng = np.random.default_rng(6)
    problem, budget, constraints = random_instance(rng, "caps", MENU, 6_000, 6_001)
    plain = _source(problem, 1_500)
    calls = []

    def counted():
        calls.append(1)
        return plain()

    found = solve_dual_streamed(counted, budget, constraints, sample_users=1_000, keep=True)
    assert found.passes == len(calls) and found.passes >= 2
    ruled = found.choose(problem)
    assert ruled.dtype == np.int16 and ruled.shape == (problem.n_users,)
    np.testing.assert_array_equal(ruled, found.choice)


def test_the_error_without_a_certified_plan_names_the_passes():
    from optimizer.solvers.streamed_dual import BOX_ROUNDS, no_certified_plan

    error = no_certified_plan()
    assert error.key == "constraints"
    assert str(error) == (
        f"constraints: the streamed solve found no certified plan in {BOX_ROUNDS} passes (the "
        "rows may leave no feasible plan); plan in memory"
    )


def test_nobody_sendable_is_the_empty_plan_without_a_warning():
    """Every option ineligible: the sample has no coefficient to scale a row by, and the solve
    certifies the empty plan without a numpy warning."""
    import warnings

    problem = random_problem(np.random.default_rng(1), 3_000, MENU, "conversions")
    problem.eligible[:] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = solve_dual_streamed(_source(problem, 1_000), 100.0, Constraints(max_messages=50),
                                    sample_users=500, keep=True)  # fmt: skip
    assert (found.value, found.cost, found.upper_bound) == (0.0, 0.0, 0.0)
    assert (found.choice == -1).all()
