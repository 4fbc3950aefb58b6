"""What-if grids: budget sweeps, the frontier's shape, and `couponopt whatif`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import app
from optimizer.campaign import align_scores, campaign_problem
from optimizer.constraints import Constraints
from optimizer.errors import InputError
from optimizer.milp import solve_milp
from optimizer.policies import PolicySettings, make_plan
from optimizer.sweep import sweep_budgets
from simulator.pipeline import score_scenario
from simulator.whatif import parse_vary

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(small_scenario):
    scored = score_scenario(small_scenario)
    inputs = align_scores(scored.scores, scored.users, small_scenario.menu, stages=["dormant"])
    return campaign_problem(inputs), inputs


def test_sweep_equals_one_plan_per_budget(small):
    problem, inputs = small
    budgets = [500.0, 1500.0, 4000.0]
    settings = PolicySettings(denomination="10off99", v2_threshold=0.3, solver="dual")
    swept = sweep_budgets(problem, budgets, ["optimal", "manual", "v2"], settings,
                          users=inputs.users)  # fmt: skip
    for policy, plans in swept.items():
        for budget, plan in zip(budgets, plans, strict=True):
            alone = make_plan(policy, problem, budget, settings, users=inputs.users)
            np.testing.assert_array_equal(plan.choice, alone.choice)
            assert plan.expected_cost.sum() <= budget + 1e-6


def test_dual_frontier_is_monotone_concave_and_matches_pulp(small):
    """Point for point against the exact MILP; monotone in the budget; concave up to the
    certified gap (the LP bound, exactly concave, is never below the plan)."""
    problem, inputs = small
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


def test_parse_vary_reads_every_axis_and_refuses_bad_values(small_scenario, tmp_path):
    menu = tmp_path / "menu.toml"
    menu.write_text(
        '[[denomination]]\nname = "10off99"\nface_value = 10\nthreshold = 99\n'
        '[[denomination]]\nname = "30off299"\nface_value = 30\nthreshold = 299\n'
    )
    grid = parse_vary(
        [
            "budget=1000:5000:5",
            f"menu={menu}",
            "sms_cost=0.03,0.06",
            "stages=dormant,dormant+lapsed",
        ],
        small_scenario,
    )
    assert grid.budget == [1000.0, 2000.0, 3000.0, 4000.0, 5000.0]
    assert grid.menu[0][1].names == ("10off99", "30off299")
    assert grid.stages == [("dormant",), ("dormant", "lapsed")]
    assert len(grid.contexts()) == 4
    for item, message in (
        ("budget=5000:1000:3", "stop > start"),
        ("budget=1:2", "start:stop:points"),
        ("sms_cost=-1", ">= 0"),
        ("margin_rate=1.5", "<= 1"),
        ("stages=asleep", "unknown stage 'asleep'"),
        ("colour=red", "axis one of budget"),
    ):
        with pytest.raises(InputError, match=message):
            parse_vary([item], small_scenario)
    bad_menu = tmp_path / "bad.toml"
    bad_menu.write_text('[[denomination]]\nname = "5off49"\nface_value = 5\nthreshold = 49\n')
    with pytest.raises(InputError, match="no '10off99'"):
        parse_vary([f"menu={bad_menu}"], small_scenario)


def test_whatif_command(runner, tmp_path):
    out = tmp_path / "grid.parquet"
    plots = tmp_path / "plots"
    args = ["whatif", "--population", "20000", "--vary", "budget=2000:8000:4",
            "--vary", "sms_cost=0.05,0.10", "--policies", "optimal,manual,v2"]  # fmt: skip
    result = runner.invoke(app, [*args, "--json", "--out", str(out), "--plot", str(plots)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    points = pd.DataFrame(payload["points"])
    assert len(points) == 2 * 4 * 3
    assert payload["varied"] == ["budget", "sms_cost"]
    for (_, policy), part in points.groupby(["context", "policy"]):
        part = part.sort_values("budget")
        assert (part["expected_cost"] <= part["budget"] + 1e-6).all()
        if policy == "optimal":
            assert (np.diff(part["incremental_conversions"]) >= -1e-9).all()
    # Messages cost more, the same money buys fewer conversions.
    optimal = points[points["policy"] == "optimal"].pivot(
        index="budget", columns="sms_cost", values="incremental_conversions"
    )
    assert (optimal[0.05] >= optimal[0.10] - 1e-9).all()
    assert len(payload["marginal_value"]) == 2 * 3 * 3
    assert len(payload["profit_peaks"]) == 2 * 3
    assert len(pd.read_parquet(out)) == len(points)
    for name in ("frontier.png", "roi.png", "mix.png"):
        assert (plots / name).stat().st_size > 10_000
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "What-if grid" in table.stdout
    # 80 columns: one row per point and policy, nothing cut short.
    grid_part = table.stdout.split("Marginal value")[0]
    assert "…" not in grid_part and "optimal" in grid_part
    assert "Marginal value of budget" in table.stdout
    bad = runner.invoke(app, [*args, "--vary", "budget=9:1:2"])
    assert bad.exit_code == 2 and "varied twice" in bad.stderr
    bad = runner.invoke(app, ["whatif", "--vary", "budget=abc"])
    assert bad.exit_code == 2 and "budget values must be numbers" in bad.stderr


def test_whatif_simulates_with_intervals(runner):
    args = ["whatif", "--population", "20000", "--vary", "budget=2000,6000", "--policies",
            "optimal,manual", "--simulate", "--replications", "2", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    points = pd.DataFrame(json.loads(result.stdout)["points"])
    sim = "sim_incremental_conversions"
    assert (points[f"{sim}_low"] <= points[sim]).all()
    assert (points[sim] <= points[f"{sim}_high"]).all()
    assert (points["sim_campaign_cost"] > 0).all()


def test_worked_scenarios_run_their_grid(runner):
    """scenarios/menu_comparison.toml: its [whatif] grid, menu files relative to it."""
    path = ROOT / "scenarios" / "menu_comparison.toml"
    args = ["whatif", "--scenario", str(path), "--population", "20000", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    points = pd.DataFrame(payload["points"])
    assert payload["varied"] == ["budget", "menu"]
    assert set(points["menu"]) == {"current", "plus_20off199"}
    assert len(points) == 2 * 3 * 3
    # A menu with one more coupon can only help the optimal plan (up to its certified gap).
    optimal = points[points["policy"] == "optimal"].pivot(
        index="budget", columns="menu", values="upper_bound"
    )
    assert (optimal["plus_20off199"] >= optimal["current"] - 1e-6).all()
    assert "users__20off199" in points and points["users__20off199"].notna().any()


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_every_scenario_file_is_valid(path):
    from simulator.scenario import load_scenario

    scenario = load_scenario(path)
    if scenario.whatif.vary:
        parse_vary(scenario.whatif.vary, scenario, base=path.parent)


def test_whatif_on_a_scores_file(runner, small_scenario, tmp_path):
    from optimizer.data import write_table

    scored = score_scenario(small_scenario)
    write_table(scored.scores, tmp_path / "scores.parquet")
    write_table(scored.users, tmp_path / "users.parquet")
    files = ["--scores", str(tmp_path / "scores.parquet"), "--users",
             str(tmp_path / "users.parquet")]  # fmt: skip
    args = ["whatif", *files, "--vary", "budget=500,1000,2000", "--policies", "optimal,random"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    points = pd.DataFrame(json.loads(result.stdout)["points"])
    assert len(points) == 3 * 2
    assert (points["users"] == len(scored.scores)).all()  # every scored user is a candidate
    bad = runner.invoke(app, [*args, "--vary", "stages=dormant,lapsed"])
    assert bad.exit_code == 2 and "with --scores only budget" in bad.stderr


def test_simulated_points_are_the_same_in_parallel(small_scenario):
    """Forked workers simulate the points; every figure equals the one-process run."""
    from simulator.whatif import run_whatif

    grid = parse_vary(["budget=500,1500,3000"], small_scenario)
    settings = PolicySettings(denomination="10off99", solver="dual")
    runs = [
        run_whatif(
            small_scenario,
            grid,
            ["optimal", "manual"],
            settings,
            simulate=True,
            replications=2,
            workers=w,
        ).frame  # fmt: skip
        for w in (1, 2)
    ]
    sim = [c for c in runs[0].columns if c.startswith("sim_")]
    assert len(sim) == 12
    pd.testing.assert_frame_equal(runs[0][sim], runs[1][sim])
