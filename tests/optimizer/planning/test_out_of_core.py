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


def test_constraints_out_of_core_hold_in_the_written_plan_and_match_memory(files, tmp_path):
    from optimizer.solvers import Constraints, SegmentShare, solve_dual

    root, scores, users = files
    whole = _whole(scores, users, "gmv")
    stage = users["lifecycle_stage"].to_numpy()
    whole = build_problem(whole.user_id, whole.p0, whole.p, MENU, objective="gmv",
                          basket=whole.basket, segment=stage)  # fmt: skip
    budget = 0.4 * float(np.where(whole.value > 0, whole.cost, 0).max(axis=1).sum())
    labels = sorted(set(users["lifecycle_stage"]))
    constraints = Constraints(
        max_per_denomination={MENU.names[-1]: 150}, max_messages=2_000, min_roi=3.0,
        segment_shares=(SegmentShare(labels[0], 0.2, 0.7),),
    )  # fmt: skip
    out = tmp_path / "plan"
    found = plan_budget_out_of_core(
        root / "scores.parquet", MENU, budget, out, objective="gmv", users=root / "users.parquet",
        constraints=constraints, chunk_rows=900, sample_users=1_500,
    )  # fmt: skip
    memory = solve_dual(whole, budget, constraints)
    plan = pd.concat([pd.read_parquet(out / n) for n in manifest_files(out)], ignore_index=True)
    assert sorted(plan["user_id"]) == sorted(scores["user_id"])
    plan = plan.set_index("user_id").loc[whole.user_id]
    sent = plan["denomination"].astype(str).to_numpy()
    index = {name: i for i, name in enumerate(MENU.names)}
    choice = np.array([index.get(d, -1) for d in sent])
    on = np.flatnonzero(choice >= 0)
    # Every constraint recounted from the written plan and the raw arrays.
    cost = float(whole.cost[on, choice[on]].sum())
    assert cost <= budget + 1e-6 and on.size <= 2_000
    assert (sent == MENU.names[-1]).sum() <= 150
    assert float(whole.gmv_uplift()[on, choice[on]].sum()) >= 3.0 * cost - 1e-6
    share = (users["lifecycle_stage"].to_numpy()[on] == labels[0]).mean()
    assert 0.2 - 1e-9 <= share <= 0.7 + 1e-9
    value = float(whole.value[on, choice[on]].sum())
    assert value == pytest.approx(found.value, rel=1e-6)
    assert found.upper_bound >= memory.value * (1 - 1e-9)
    assert memory.upper_bound >= found.value * (1 - 1e-9)
    assert set(found.multipliers) >= {"budget", "messages", "min_roi"}
    with pytest.raises(InputError, match="need the user table"):
        plan_budget_out_of_core(root / "scores.parquet", MENU, budget, tmp_path / "x",
                                constraints=constraints)  # fmt: skip
