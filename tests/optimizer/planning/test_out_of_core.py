"""Planning out of core: scores streamed from a file, the plan written as a dataset, recounted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.io import manifest_files
from optimizer.planning.out_of_core import plan_budget_out_of_core
from optimizer.solvers import build_problem, solve_hull
from simulator.scenario import Scenario
from simulator.world.generation import build_world

MENU = Scenario().menu


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ooc")
    world = build_world(Scenario().with_overrides(users=6_000, seed=21))
    truth = world.truth
    columns = ["user_id", "p_natural", *[f"p_coupon__{n}" for n in MENU.names]]
    truth[columns].to_parquet(root / "scores.parquet", index=False)
    world.users.to_parquet(root / "users.parquet", index=False)
    return root, truth[columns], world.users


def _whole(scores, users, objective):
    scores = scores.astype({c: np.float32 for c in scores.columns if c != "user_id"})  # contract
    basket = users["avg_order_value"].to_numpy(np.float64) if objective != "conversions" else None
    return build_problem(
        scores["user_id"].to_numpy(), scores["p_natural"].to_numpy(),
        scores[[f"p_coupon__{n}" for n in MENU.names]].to_numpy(), MENU, objective=objective,
        basket=basket,
    )  # fmt: skip


@pytest.mark.parametrize("objective", ["conversions", "profit"])
def test_the_plan_dataset_matches_the_in_memory_hull(files, tmp_path, objective):
    root, scores, users = files
    whole = _whole(scores, users, objective)
    budget = 0.3 * float(np.where(whole.value > 0, whole.cost, 0).max(axis=1).sum())
    out = tmp_path / "plan"
    found = plan_budget_out_of_core(
        root / "scores.parquet", MENU, budget, out, objective=objective, chunk_rows=700,
        users=root / "users.parquet" if objective != "conversions" else None, sample_users=800,
    )  # fmt: skip
    hull = solve_hull(whole, budget)
    assert found.upper_bound == pytest.approx(hull.upper_bound, rel=1e-9)
    assert found.parts == 9 and found.users == 6_000 and found.passes >= 3
    files_listed = manifest_files(out)
    assert len(files_listed) == 9
    plan = pd.concat([pd.read_parquet(out / name) for name in files_listed], ignore_index=True)
    # Recount from the whole problem: every user once, costs and value of the chosen options.
    assert sorted(plan["user_id"]) == sorted(scores["user_id"])
    plan = plan.set_index("user_id").loc[whole.user_id]
    index = {name: i for i, name in enumerate(MENU.names)}
    choice = plan["denomination"].astype(str).map(lambda d: index.get(d, -1)).to_numpy()
    on = np.flatnonzero(choice >= 0)
    assert found.targeted == on.size
    np.testing.assert_allclose(plan["expected_cost"].to_numpy()[on], whole.cost[on, choice[on]])
    assert float(whole.cost[on, choice[on]].sum()) <= budget + 1e-6
    assert float(whole.value[on, choice[on]].sum()) == pytest.approx(found.value, rel=1e-9)
    assert found.value >= hull.value - 2 * whole.value.max() and 0 <= found.gap < 0.01


def test_misaligned_users_duplicates_and_foreign_folders_are_refused(files, tmp_path):
    root, scores, users = files
    users.sample(frac=1.0, random_state=1).to_parquet(tmp_path / "shuffled.parquet", index=False)
    with pytest.raises(InputError, match="same order"):
        plan_budget_out_of_core(root / "scores.parquet", MENU, 100.0, tmp_path / "a",
                                objective="gmv", users=tmp_path / "shuffled.parquet")  # fmt: skip
    twice = pd.concat([scores.iloc[:1000], scores.iloc[:1000]])
    twice.to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(InputError, match="appears more than once"):
        plan_budget_out_of_core(tmp_path / "twice.parquet", MENU, 100.0, tmp_path / "b",
                                chunk_rows=1000)  # fmt: skip
    assert not (tmp_path / "b").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        plan_budget_out_of_core(root / "scores.parquet", MENU, 100.0, tmp_path / "c")
