"""What-if grids in the planning room: budget sweeps, the frontier's shape, grids of axes."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import InputError
from optimizer.planning import (
    CampaignConfig,
    PolicySettings,
    Vary,
    build_grid,
    campaign_problem,
    make_plan,
    plan_grid,
    resolve_request,
    select_candidates,
    sweep_budgets,
)
from optimizer.solvers import Constraints, solve_milp
from simulator.workflows import score_scenario


@pytest.fixture(scope="module")
def scored(small_scenario):
    return score_scenario(small_scenario)


@pytest.fixture(scope="module")
def small(scored, small_scenario):
    candidates = select_candidates(
        scored.scores, scored.users, small_scenario.menu, segments=["dormant"]
    )
    return campaign_problem(candidates), candidates


def test_sweep_equals_one_plan_per_budget(small):
    problem, candidates = small
    budgets = [500.0, 1500.0, 4000.0]
    settings = PolicySettings(denomination="10off99", v2_threshold=0.3, solver="dual")
    swept = sweep_budgets(problem, budgets, ["optimal", "manual", "v2"], settings,
                          users=candidates.users)  # fmt: skip
    for policy, plans in swept.items():
        for budget, plan in zip(budgets, plans, strict=True):
            alone = make_plan(policy, problem, budget, settings, users=candidates.users)
            np.testing.assert_array_equal(plan.choice, alone.choice)
            assert plan.expected_cost.sum() <= budget + 1e-6


def test_dual_frontier_is_monotone_concave_and_matches_pulp(small):
    """Point for point against the exact MILP; monotone in the budget; concave up to the
    certified gap (the LP bound, exactly concave, is never below the plan)."""
    problem, _ = small
    budgets = np.linspace(200.0, 6000.0, 8)
    settings = PolicySettings(denomination="10off99", solver="dual")
    plans = sweep_budgets(problem, budgets, ["optimal"], settings)["optimal"]
    values = np.array([p.value for p in plans])
    bounds = np.array([p.upper_bound for p in plans])
    gaps = np.array([p.gap for p in plans])
    assert (np.diff(values) >= -1e-9).all()
    assert (bounds >= values - 1e-9).all()
    middle = values[1:-1]
    chord = 0.5 * (values[:-2] + values[2:])
    assert (middle >= chord - gaps[2:] * bounds[2:] - 1e-9).all()
    assert (np.diff(bounds, 2) <= 1e-9).all()  # the LP frontier is concave
    for budget, plan in zip(budgets, plans, strict=True):
        exact = solve_milp(problem, budget, Constraints(), gap=1e-7)
        assert plan.value == pytest.approx(exact.value, rel=1e-3)
        assert plan.upper_bound >= exact.value - 1e-9


def test_build_grid_reads_every_axis_and_keeps_the_rest(tmp_path):
    menu = tmp_path / "menu.toml"
    menu.write_text(
        '[[denomination]]\nname = "10off99"\nface_value = 10\nthreshold = 99\n'
        '[[denomination]]\nname = "30off299"\nface_value = 30\nthreshold = 299\n'
    )
    campaign = CampaignConfig()
    vary = Vary(
        budget={"start": 1000, "stop": 5000, "points": 5},
        menu=["menu.toml"],
        sms_cost=[0.03, 0.06],
        segments=[("dormant",), ("dormant", "lapsed")],
    )
    grid = build_grid(campaign, vary, base=tmp_path)
    assert grid.budget == [1000.0, 2000.0, 3000.0, 4000.0, 5000.0]
    assert grid.menu[0][0] == "menu" and grid.menu[0][1].names == ("10off99", "30off299")
    assert grid.margin_rate == [campaign.costs.margin_rate]  # not varied: the campaign's
    assert grid.segments == [("dormant",), ("dormant", "lapsed")]
    contexts = grid.contexts()
    assert len(contexts) == 4 and grid.varied == ["budget", "sms_cost", "segments"]
    assert {c.label for c in contexts} >= {"sms 0.03, dormant", "sms 0.06, dormant+lapsed"}
    plain = build_grid(campaign, Vary())
    assert plain.budget == [campaign.budget.amount] and plain.contexts()[0].label == "campaign"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[denomination]]\nname = "5off49"\nface_value = 5\nthreshold = 49\n')
    with pytest.raises(InputError) as info:
        build_grid(campaign, Vary(menu=[str(bad)]))
    assert info.value.key == "whatif.vary.menu" and "no '10off99'" in str(info.value)


@pytest.mark.parametrize(
    "axis, values, message",
    [
        ("budget", {"start": 5000, "stop": 1000, "points": 3}, "stop 1000 must exceed start 5000"),
        ("budget", [1, -2], "budgets must be finite, >= 0"),
        ("sms_cost", [-1], "SMS costs must be finite, >= 0"),
        ("sms_cost", [2e12], r"<= 1e\+12"),  # a trillion: larger money is a typo
        ("margin_rate", [1.5], "margin rates must be in [0, 1]"),
        ("segments", [()], "every segment set needs at least one non-empty label"),
    ],
)
def test_vary_refuses_bad_values(axis, values, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        Vary.model_validate({axis: values})


def test_plan_grid_segments_axis_on_scores(scored, small_scenario):
    """Segments vary on a scores table alone: each context plans its own candidates."""
    campaign = CampaignConfig()
    request = resolve_request(campaign, None)
    grid = build_grid(campaign, Vary(budget=[800.0], segments=[("dormant",), ("lapsed",)]))

    def candidates_for(context):
        return select_candidates(
            scored.scores, scored.users, context.menu, segments=context.segments
        )

    result = plan_grid(request, grid, candidates_for, policies=["optimal", "manual"])
    frame = result.frame
    assert list(frame["segments"].unique()) == ["dormant", "lapsed"]
    stages = scored.users["lifecycle_stage"].astype(str)
    for label, count in frame.groupby("segments")["users"].first().items():
        assert count == (stages == label).sum()
    assert (frame["expected_cost"] <= 800 + 1e-6).all()
    assert len(result.to_dict()["points"]) == 4


def test_contexts_have_unique_labels(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "menu.toml").write_text(
            '[[denomination]]\nname = "10off99"\nface_value = 10\nthreshold = 99\n'
        )
    grid = build_grid(CampaignConfig(), Vary(menu=["a/menu.toml", "b/menu.toml"]), base=tmp_path)
    labels = [c.label for c in grid.contexts()]
    assert labels == ["menu a/menu.toml", "menu b/menu.toml"]
    with pytest.raises(ValueError, match="a value is listed twice"):
        Vary(sms_cost=[0.05, 0.05])
