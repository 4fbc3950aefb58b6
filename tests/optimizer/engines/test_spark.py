"""The Spark engine's plan equals the single-machine plan (local mode), recounted from its files."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime", allow_module_level=True)

from optimizer.io import manifest_files  # noqa: E402
from optimizer.solvers import solve_hull  # noqa: E402
from optimizer.solvers.instances import random_problem  # noqa: E402
from simulator.scenario import Scenario  # noqa: E402

MENU = Scenario().menu
USERS = 200_000
# PySpark 4.3 warns on import that it does not fully support pandas 3; the engine runs Arrow
# batches end to end (mapInArrow, toArrow), and this test is the compatibility check.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        # The workers run this interpreter (its packages), not the first python3 on the PATH.
        env.setenv("PYSPARK_PYTHON", sys.executable)
        env.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]").appName("couponopt-tests")
            .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
        )  # fmt: skip
        yield session
        session.stop()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A random campaign written as a scores file, as float32 the contract stores."""
    rng = np.random.default_rng(5)
    problem = random_problem(rng, USERS, MENU, "gmv")
    root = tmp_path_factory.mktemp("spark")
    frame = pd.DataFrame({"user_id": problem.user_id, "p_natural": problem.p0.astype(np.float32),
                          "avg_order_value": problem.basket})  # fmt: skip
    for j, name in enumerate(MENU.names):
        frame[f"p_coupon__{name}"] = problem.p[:, j].astype(np.float32)
    frame["segment"] = problem.segment_labels().astype(str)
    frame.to_parquet(root / "scores.parquet", index=False, row_group_size=25_000)
    return root, frame


@pytest.mark.parametrize("objective", ["conversions", "profit"])
def test_spark_plan_equals_the_in_memory_plan_within_the_gap(spark, campaign, tmp_path, objective):
    from optimizer.engines.spark import plan_budget_spark
    from optimizer.solvers import build_problem

    root, frame = campaign
    whole = build_problem(
        frame["user_id"].to_numpy(), frame["p_natural"].to_numpy(np.float64),
        frame[[f"p_coupon__{n}" for n in MENU.names]].to_numpy(np.float64), MENU,
        objective=objective, basket=frame["avg_order_value"].to_numpy(),
    )  # fmt: skip
    budget = 0.2 * float(np.where(whole.value > 0, whole.cost, 0).max(axis=1).sum())
    scores = spark.read.parquet(str(root / "scores.parquet"))
    out = tmp_path / "plan"
    found = plan_budget_spark(
        scores, MENU, budget, out, objective=objective, sample_users=5_000,
        basket_column="avg_order_value" if objective != "conversions" else None,
    )  # fmt: skip
    hull = solve_hull(whole, budget)
    assert found.upper_bound == pytest.approx(hull.upper_bound, rel=1e-9)
    # The same objective as the in-memory plan, within the certified gap of the same bound.
    assert abs(found.value - hull.value) <= found.gap * found.upper_bound + 1e-6
    assert found.gap < 1e-3
    files = manifest_files(out)  # published whole, every file checked
    plan = pd.concat([pd.read_parquet(out / f) for f in files if f.endswith(".parquet")])
    assert plan["user_id"].is_unique and len(plan) == USERS  # every user once
    plan = plan.set_index("user_id").loc[whole.user_id]
    index = {name: i for i, name in enumerate(MENU.names)}
    choice = plan["denomination"].map(lambda d: index.get(d, -1)).to_numpy()
    on = np.flatnonzero(choice >= 0)
    assert found.targeted == on.size
    assert float(whole.cost[on, choice[on]].sum()) <= budget + 1e-6  # never over budget
    assert float(whole.value[on, choice[on]].sum()) == pytest.approx(found.value, rel=1e-9)
    np.testing.assert_allclose(plan["expected_cost"].to_numpy()[on], whole.cost[on, choice[on]])


def test_spark_plan_under_every_constraint_kind_is_feasible_and_certified(spark, campaign,
                                                                          tmp_path):  # fmt: skip
    from optimizer.engines.spark import plan_budget_spark
    from optimizer.solvers import Constraints, SegmentShare, build_problem, solve_dual

    root, frame = campaign
    whole = build_problem(
        frame["user_id"].to_numpy(), frame["p_natural"].to_numpy(np.float64),
        frame[[f"p_coupon__{n}" for n in MENU.names]].to_numpy(np.float64), MENU,
        objective="gmv", basket=frame["avg_order_value"].to_numpy(),
        segment=frame["segment"].to_numpy(),
    )  # fmt: skip
    budget = 0.3 * float(np.where(whole.value > 0, whole.cost, 0).max(axis=1).sum())
    constraints = Constraints(
        max_per_denomination={MENU.names[-1]: 5_000}, max_messages=60_000, min_roi=4.0,
        segment_shares=(SegmentShare("c", 0.3, 1.0),),
    )  # fmt: skip
    out = tmp_path / "plan"
    found = plan_budget_spark(
        spark.read.parquet(str(root / "scores.parquet")), MENU, budget, out, objective="gmv",
        basket_column="avg_order_value", constraints=constraints, segment_column="segment",
        sample_users=20_000,
    )  # fmt: skip
    memory = solve_dual(whole, budget, constraints)
    plan = pd.concat([pd.read_parquet(out / f) for f in manifest_files(out)
                      if f.endswith(".parquet")])  # fmt: skip
    assert plan["user_id"].is_unique and len(plan) == USERS
    plan = plan.set_index("user_id").loc[whole.user_id]
    sent = plan["denomination"].to_numpy().astype(str)
    index = {name: i for i, name in enumerate(MENU.names)}
    choice = np.array([index.get(d, -1) for d in sent])
    on = np.flatnonzero(choice >= 0)
    # Every row recounted from the written files and the raw arrays.
    cost = float(whole.cost[on, choice[on]].sum())
    assert cost <= budget + 1e-6 and on.size <= 60_000
    assert (sent == MENU.names[-1]).sum() <= 5_000
    assert float(whole.gmv_uplift()[on, choice[on]].sum()) >= 4.0 * cost - 1e-6
    assert (frame["segment"].to_numpy()[on] == "c").mean() >= 0.3 - 1e-9
    assert float(whole.value[on, choice[on]].sum()) == pytest.approx(found.value, rel=1e-6)
    assert found.upper_bound >= memory.value * (1 - 1e-9)
    assert memory.upper_bound >= found.value * (1 - 1e-9)
    assert found.gap < 1e-3 and found.targeted == on.size


def test_spark_scores_equal_the_models_predictions_and_bad_rows_fail_in_one_line(
    spark, world, default_models, tmp_path
):
    from optimizer.engines.spark_scoring import score_spark
    from optimizer.errors import InputError

    users = world.users.iloc[:60_000]
    users.to_parquet(tmp_path / "users.parquet", index=False, row_group_size=10_000)
    frame = spark.read.parquet(str(tmp_path / "users.parquet")).repartition(3)
    out = tmp_path / "scores"
    run = score_spark(default_models, frame, out)
    files = manifest_files(out)  # published whole, every file checked
    scores = pd.concat([pd.read_parquet(out / f) for f in files if f.endswith(".parquet")])
    assert run.rows == len(users) and scores["user_id"].is_unique and len(scores) == len(users)
    scores = scores.set_index("user_id").loc[users["user_id"]].reset_index()
    direct = default_models.predict(users)
    assert list(scores.columns) == list(direct.columns)
    np.testing.assert_allclose(scores.iloc[:, 1:].to_numpy(), direct.iloc[:, 1:].to_numpy(),
                               rtol=1e-6, atol=1e-7)  # fmt: skip
    assert run.mean_scores["p_natural"] == pytest.approx(direct["p_natural"].mean(), rel=1e-6)
    assert set(run.drift["feature"]) == set(default_models.encoder.reference())
    # A duplicated id anywhere, or a bad value on an executor: one line, nothing written.
    twice = pd.concat([users.iloc[:100], users.iloc[:1]])
    twice.to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(InputError, match="duplicated user_id"):
        score_spark(default_models, spark.read.parquet(str(tmp_path / "twice.parquet")),
                    tmp_path / "never")  # fmt: skip
    bad = users.iloc[:5_000].copy()
    bad.loc[bad.index[4_321], "days_since_last_order"] = -5
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    import optimizer.engines.spark_scoring as scoring

    for sample in (scoring.DRIFT_SAMPLE, 1):  # found in the driver's sample, or on an executor
        with pytest.MonkeyPatch.context() as patch, pytest.raises(InputError) as caught:
            patch.setattr(scoring, "DRIFT_SAMPLE", sample)
            score_spark(default_models, spark.read.parquet(str(tmp_path / "bad.parquet")),
                        tmp_path / "never")  # fmt: skip
        assert "days_since_last_order" in str(caught.value) and "\n" not in str(caught.value)
        assert not (tmp_path / "never").exists()


def test_the_plan_rows_of_a_log_found_on_spark_equal_reading_the_dataset(spark, tmp_path):
    from optimizer.engines.spark_valuation import plan_rows_spark
    from optimizer.errors import InputError
    from optimizer.planning.valuation import read_plan

    rng = np.random.default_rng(2)
    n = 120_000
    names = np.array([*MENU.names, "none"], dtype=object)
    plan = pd.DataFrame({"user_id": rng.permutation(n) + 1,
                         "denomination": names[rng.integers(0, len(names), n)]})  # fmt: skip
    folder = tmp_path / "plan"
    folder.mkdir()
    for i, lo in enumerate(range(0, n, 40_000)):
        plan.iloc[lo : lo + 40_000].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    logged = np.concatenate([rng.choice(n, 3_000, replace=False) + 1, [n + 5, n + 6]])
    found = plan_rows_spark(spark.read.parquet(str(folder)), logged, MENU)
    local = read_plan(folder, MENU, logged, chunk_rows=25_000)
    expected = plan[plan["user_id"].isin(logged)]  # naive recount
    for frame in (found, local):
        got = frame.sort_values("user_id").reset_index(drop=True)
        assert got["user_id"].tolist() == sorted(expected["user_id"])
        assert got["denomination"].tolist() == expected.sort_values("user_id")[
            "denomination"].tolist()  # fmt: skip
    plan.loc[3, "denomination"] = None
    plan.to_parquet(tmp_path / "null.parquet", index=False)
    with pytest.raises(InputError, match="None is not on the menu"):
        plan_rows_spark(spark.read.parquet(str(tmp_path / "null.parquet")), logged, MENU)
    plan.loc[3, "denomination"] = "none"
    plan.loc[7, "denomination"] = "free lunch"
    plan.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(InputError, match="'free lunch' is not on the menu"):
        plan_rows_spark(spark.read.parquet(str(tmp_path / "bad.parquet")), logged, MENU)


def test_the_command_line_scores_and_plans_on_spark(spark, campaign, world, default_models,
                                                    tmp_path):  # fmt: skip
    from typer.testing import CliRunner

    from cli import app
    from tests.cli import strict_json

    runner = CliRunner()
    root, frame = campaign
    out = tmp_path / "plan"
    result = runner.invoke(app, [
        "optimize", "--engine", "spark", "--scores", str(root / "scores.parquet"),
        "--budget", "3000", "--max-messages", "20000", "--out", str(out), "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    found = strict_json(result.stdout)["plan"]
    plan = pd.concat([pd.read_parquet(out / f) for f in manifest_files(out)
                      if f.endswith(".parquet")])  # fmt: skip
    sent = plan[plan["denomination"] != "none"]
    assert len(plan) == USERS and found["targeted"] == len(sent) <= 20_000
    assert sent["expected_cost"].sum() <= found["planning_budget"] + 1e-6 <= 3000 + 1e-6
    assert found["conversions"] == pytest.approx(sent["expected_uplift"].sum(), rel=1e-5)
    default_models.save(tmp_path / "models")
    world.users.iloc[:20_000].to_parquet(tmp_path / "users.parquet", index=False)
    scored = runner.invoke(app, [
        "score", "--engine", "spark", "--models", str(tmp_path / "models"),
        "--users", str(tmp_path / "users.parquet"), "--out", str(tmp_path / "scores"), "--json",
    ])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert strict_json(scored.stdout)["rows"] == 20_000
    assert len(pd.read_parquet(tmp_path / "scores")) == 20_000
    bad = runner.invoke(app, ["score", "--engine", "spark", "--models", str(tmp_path / "models"),
                              "--users", str(tmp_path / "users.parquet"), "--out",
                              str(tmp_path / "s.parquet")])  # fmt: skip
    assert bad.exit_code == 2 and "give a folder" in bad.stderr


def test_bad_scores_and_user_tables_are_refused_in_one_line_with_nothing_written(
    spark, campaign, tmp_path
):
    from typer.testing import CliRunner

    from cli import app
    from optimizer.engines.spark import plan_budget_spark
    from optimizer.errors import InputError

    root, frame = campaign
    small = frame.iloc[:20_000].copy()
    for column, value, fragment in (
        ("p_coupon__" + MENU.names[0], np.nan, "p_coupon is missing or outside [0, 1]"),
        ("p_natural", 1.5, "p_natural is missing or outside [0, 1]"),
    ):
        bad = small.copy()
        bad.loc[bad.index[12_345], column] = value
        bad.to_parquet(tmp_path / "bad.parquet", index=False)
        with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            plan_budget_spark(spark.read.parquet(str(tmp_path / "bad.parquet")), MENU, 500.0,
                              tmp_path / "never")  # fmt: skip
        assert not (tmp_path / "never").exists()
    twice = pd.concat([small, small.iloc[:1]])
    twice.to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(InputError, match="appears more than once"):
        plan_budget_spark(spark.read.parquet(str(tmp_path / "twice.parquet")), MENU, 500.0,
                          tmp_path / "never")  # fmt: skip
    # The user table joined on the cluster must have every scored user exactly once.
    small.to_parquet(tmp_path / "scores.parquet", index=False)
    users = small[["user_id", "avg_order_value"]]
    runner = CliRunner()
    for name, table, fragment in (
        ("missing", users.iloc[1:], "has no row for the scored user_id"),
        ("doubled", pd.concat([users, users.iloc[:1]]), "appears more than once"),
    ):
        table.to_parquet(tmp_path / f"{name}.parquet", index=False)
        result = runner.invoke(app, [
            "optimize", "--engine", "spark", "--scores", str(tmp_path / "scores.parquet"),
            "--users", str(tmp_path / f"{name}.parquet"), "--objective", "gmv", "--budget",
            "500", "--out", str(tmp_path / "never"),
        ])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()
