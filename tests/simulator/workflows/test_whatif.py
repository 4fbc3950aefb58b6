"""What-if grids on a scenario's world: models trained once, points simulated in workers."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.planning import Vary, build_grid, resolve_request
from simulator.scenario import as_scenario, load_configuration
from simulator.workflows import grid_stages, run_whatif
from tests import ROOT


def test_simulated_points_are_the_same_in_parallel(small_scenario):
    """Worker processes simulate the points; every figure equals the one-process run."""
    grid = build_grid(small_scenario, Vary(budget=[500.0, 1500.0, 3000.0]))
    request = resolve_request(small_scenario, None).with_natural_threshold(None)
    runs = [
        run_whatif(
            small_scenario, request, grid, simulate=True, replications=2, workers=w
        ).frame  # fmt: skip
        for w in (1, 2)
    ]
    sim = [c for c in runs[0].columns if c.startswith("sim_")]
    assert len(sim) == 12
    pd.testing.assert_frame_equal(runs[0][sim], runs[1][sim])
    assert runs[0]["sim_incremental_conversions"].notna().all()


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_every_scenario_file_builds_its_grid(path):
    scenario = as_scenario(load_configuration(path))
    grid = build_grid(scenario, scenario.whatif.vary, base=path.parent)
    assert grid.budget and set(grid_stages(grid)) <= {"active", "cooling", "lapsed", "dormant"}
    assert grid_stages(grid)


def test_simulated_points_play_the_requests_campaign(small_scenario):
    """A message cap from the request holds in the simulated arms as in the planned ones."""
    from optimizer.planning import Overrides

    grid = build_grid(small_scenario, Vary(budget=[3000.0]))
    request = resolve_request(small_scenario, Overrides(max_messages=60, policies=["optimal"]))
    frame = run_whatif(small_scenario, request, grid, simulate=True, replications=2).frame
    row = frame.iloc[0]
    assert row["users_targeted"] <= 60
    # 60 messages at most: their cost and at most 60 redeemed coupons of 50 (money).
    assert row["sim_campaign_cost"] <= 60 * small_scenario.costs.sms_cost + 60 * 50


def test_a_runaway_grid_is_refused_before_any_plan(small_scenario):
    """Axes multiply: 1,000 budgets x 11 SMS costs is over the limit, named in one line."""
    from optimizer.errors import InputError
    from optimizer.planning import MAX_GRID_POINTS

    costs = [0.01 * i for i in range(11)]
    ok = build_grid(
        small_scenario, Vary(budget=[1000.0 * (i + 1) for i in range(900)], sms_cost=costs)
    )
    assert len(ok.budget) * len(ok.sms_cost) == 9_900 <= MAX_GRID_POINTS
    with pytest.raises(InputError, match="11,000 points") as caught:
        build_grid(
            small_scenario, Vary(budget={"start": 1, "stop": 1e6, "points": 1000}, sms_cost=costs)
        )
    assert caught.value.key == "whatif.vary"
