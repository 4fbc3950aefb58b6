"""Replicated A/B experiments on the simulated world, and `couponopt simulate`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli import app
from optimizer.planning import Overrides
from simulator.experiment import experiment_request, interval, run_experiment
from simulator.scenario import load_scenario
from simulator.workflows import ScoredScenario, score_scenario
from tests import ROOT


def _run(scenario, scored, policies=None, **kwargs):
    """The experiment of ``policies`` on ``scored`` (the scenario's simulation settings)."""
    request = experiment_request(
        scenario, Overrides(policies=policies), natural_threshold=scored.natural_threshold
    )
    candidates = request.candidates(scored.scores, scored.users)
    return run_experiment(scenario, candidates, scored.truth, request, **kwargs)


@pytest.fixture(scope="module")
def scored(world) -> ScoredScenario:
    return score_scenario(world.scenario)


@pytest.fixture(scope="module")
def experiment(world, scored):
    return _run(world.scenario, scored, ["optimal", "manual", "v1", "v2"], replications=4)


def test_arms_partition_the_target_users(experiment, scored, world):
    runs = experiment.runs
    target = scored.users["lifecycle_stage"].isin(world.scenario.target_stages).sum()
    per_rep = runs.groupby("replication")["users"].sum()
    assert (per_rep == target).all()
    hold = runs[runs["arm"] == "holdout"]["users"]
    assert (hold == round(world.scenario.simulation.holdout_share * target)).all()
    assert set(runs["arm"]) == {"optimal", "manual", "v1", "v2", "holdout"}
    holdout = runs[runs["arm"] == "holdout"]
    assert (holdout["sent"] == 0).all() and (holdout["campaign_cost"] == 0).all()
    assert np.allclose(holdout["incremental_conversions"], 0)
    treated = runs[runs["arm"] != "holdout"]
    # Each arm's budget share: realised spend within it (stop_issuing may overrun only
    # through coupons already held), planned spend within it always.
    share = experiment.budget * treated["users"] / target
    assert (treated["planned_spend"] <= share + 1e-6).all()
    assert (treated["realised_spend"] == treated["campaign_cost"]).all()
    assert (treated["delivered"] <= treated["sent"]).all()


def test_article_shape_on_the_default_world(experiment):
    """v1 converts its selection best but buys little; v2 and optimal beat manual on
    incremental conversions (95% intervals of the paired differences)."""
    versus = experiment.versus("manual").set_index(["arm", "metric"])
    assert versus.loc[("v1", "targeted_conversion_rate"), "low"] > 0
    assert versus.loc[("v2", "incremental_conversions"), "low"] > 0
    assert versus.loc[("optimal", "incremental_conversions"), "low"] > 0
    summary = experiment.summary().set_index(["arm", "metric"])
    assert summary.loc[("v1", "roi"), "mean"] < summary.loc[("manual", "roi"), "mean"]
    for arm in ("optimal", "v2"):
        assert summary.loc[(arm, "roi"), "mean"] > summary.loc[("manual", "roi"), "mean"]


def test_experiment_is_seeded(world, scored):
    a = _run(world.scenario, scored, ["manual"], replications=2, seed=3)
    b = _run(world.scenario, scored, ["manual"], replications=2, seed=3)
    c = _run(world.scenario, scored, ["manual"], replications=2, seed=4)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    assert not a.runs["conversions"].equals(c.runs["conversions"])


def test_paired_design_uses_common_random_numbers(world, scored, experiment):
    paired = _run(world.scenario, scored, ["optimal", "manual"], replications=4, design="paired")
    runs = paired.runs
    target = runs["users"].iloc[0]
    assert (runs["users"] == target).all()  # every arm plays the whole population
    # Same draws everywhere: an arm's non-targeted users behave exactly as in the holdout, so
    # the paired difference in incremental conversions is far tighter than the split test's.
    split = experiment.versus("manual").set_index(["arm", "metric"])
    pair = paired.versus("manual").set_index(["arm", "metric"])
    key = ("optimal", "incremental_conversions")
    split_width = (split.loc[key, "high"] - split.loc[key, "low"]) / split.loc[key, "mean"]
    pair_width = (pair.loc[key, "high"] - pair.loc[key, "low"]) / pair.loc[key, "mean"]
    assert pair.loc[key, "low"] > 0 and pair_width < split_width / 3
    with pytest.raises(ValueError, match="'x' is not a valid Design"):
        _run(world.scenario, scored, ["manual"], replications=2, design="x")


def _flat(text: str) -> str:
    """A usage error's text without the box and line breaks typer draws around it."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_interval_covers_the_mean_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        _, low, high = interval(rng.normal(3.0, 2.0, 6))
        hits += low <= 3.0 <= high
    assert hits / 2000 == pytest.approx(0.95, abs=0.015)
    mean, low, high = interval(np.array([1.0, np.nan, 3.0]))
    assert mean == 2.0 and low < 2.0 < high


def test_simulate_command(runner, tmp_path, monkeypatch):
    out = tmp_path / "runs.parquet"
    args = [
        "simulate", "--population", "30000", "--replications", "2", "--policies", "optimal,manual"
    ]  # fmt: skip
    result = runner.invoke(app, [*args, "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["arms"] == ["optimal", "manual", "holdout"] and payload["replications"] == 2
    assert payload["design"] == "split"
    assert {r["metric"] for r in payload["summary"]} >= {"roi", "incremental_conversions"}
    assert payload["reference"] == "manual" and {r["arm"] for r in payload["versus"]} == {
        "optimal", "holdout"
    }  # fmt: skip
    assert "ROI = " in payload["definitions"]
    runs = pd.read_parquet(out)
    assert len(runs) == 6 and set(runs["arm"]) == {"optimal", "manual", "holdout"}
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "Simulated A/B test" in table.stdout
    bad = runner.invoke(app, [*args[:-1], "optimal,magic"])
    assert bad.exit_code == 2 and "'magic' is not a policy" in _flat(bad.stderr)
    bad = runner.invoke(app, [*args, "--match", "v3"])
    assert bad.exit_code == 2 and "'v3' is not a policy" in _flat(bad.stderr)
    bad = runner.invoke(app, [*args, "--match-on", "luck"])
    assert bad.exit_code == 2 and "'luck' is not one of" in _flat(bad.stderr)
    bad = runner.invoke(app, [*args, "--reference", "v2"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: --reference: v2 is not an arm (optimal, manual)"
    # Ctrl-C during the run: exit 130 and no results file.
    import simulator.experiment as experiment

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run_experiment", interrupted)
    stopped = tmp_path / "stopped.parquet"
    result = runner.invoke(app, [*args, "--out", str(stopped)])
    assert result.exit_code == 130 and not stopped.exists()


@pytest.fixture(scope="module")
def article():
    """scenarios/article.toml at half size (200k users, budget halved), seeded, paired design:
    manual, v1, v2 and the optimal arm personalising v2's spend on the users v2's screen keeps
    (the scenario's match and screen)."""
    scenario = load_scenario(ROOT / "scenarios" / "article.toml")
    users = 200_000
    scenario = scenario.with_overrides(
        users=users, budget=scenario.budget.amount * users / scenario.population.users
    )
    sim = scenario.simulation
    assert sim.match == ("v2",) and sim.match_on == "spend" and sim.screen
    return _run(scenario, score_scenario(scenario), replications=8, design="paired")


def test_article_shape_on_a_seeded_article_scenario(article):
    """The article's three rounds, each claim by a 95% interval of a paired difference.

    Round 1: v1 (top coupon-conversion users) converts its selection better than manual but
    returns a lower ROI (it pays sure things). Round 2: v2 converts at least as many as manual
    (incremental) at a higher ROI. Round 3: the optimal plan (v2's screen, a personalised
    coupon per user, v2's spend) has the highest ROI of all arms with more incremental
    conversions than any.
    """
    vs_manual = article.versus("manual").set_index(["arm", "metric"])
    vs_v2 = article.versus("v2").set_index(["arm", "metric"])
    assert vs_manual.loc[("v1", "targeted_conversion_rate"), "low"] > 0
    assert vs_manual.loc[("v1", "roi"), "high"] < 0
    assert vs_manual.loc[("v2", "incremental_conversions"), "low"] > 0
    assert vs_manual.loc[("v2", "roi"), "low"] > 0
    for versus in (vs_manual, vs_v2):
        assert versus.loc[("optimal", "incremental_conversions"), "low"] > 0
        assert versus.loc[("optimal", "roi"), "low"] > 0
    summary = article.summary().set_index(["arm", "metric"])
    planned = {a: summary.loc[(a, "planned_spend"), "mean"] for a in ("v2", "optimal")}
    assert planned["optimal"] <= planned["v2"] + 1e-6


def test_experiment_request_keeps_the_scenario_unless_told_and_always_plans_with_the_dual(
    tmp_path,
):
    from optimizer.choices import Solver
    from simulator.scenario import Scenario

    scenario = Scenario()
    request = experiment_request(scenario, Overrides(solver="pulp", policies=["v2"]))
    assert request.solver == Solver.DUAL and [str(p) for p in request.policies] == ["v2"]
    assert request.objective == scenario.simulation.objective
    # A relative exclusion list is read beside the scenario file.
    (tmp_path / "out.txt").write_text("5\n6\n")
    excluding = scenario.with_values(**{"constraints.exclude_file": "out.txt"})
    assert experiment_request(excluding, base=tmp_path).exclude.tolist() == [5, 6]


def test_simulate_reads_the_exclusions_beside_the_scenario(runner, tmp_path, world):
    folder = tmp_path / "scen"
    folder.mkdir()
    dormant = world.users[world.users["lifecycle_stage"] == "dormant"]["user_id"]
    (folder / "opted_out.txt").write_text("\n".join(map(str, dormant.iloc[:50])))
    (folder / "s.toml").write_text('[constraints]\nexclude_file = "opted_out.txt"\n')
    args = ["simulate", "--scenario", str(folder / "s.toml"), "--population", "20000",
            "--replications", "2", "--policies", "optimal", "--json"]  # fmt: skip
    result = runner.invoke(app, args)  # run from another directory than the scenario's
    assert result.exit_code == 0, result.output


def test_every_run_figure_follows_its_definition(experiment, world, scored):
    """Recounted by hand from each run's raw counts and the scenario's prices: campaign cost =
    redeemed face value + messages; incremental conversions and GMV against the same
    replication's holdout rates; ROI = incremental GMV / campaign cost (not total GMV);
    incremental profit = margin x incremental GMV - campaign cost."""
    request = experiment_request(world.scenario, natural_threshold=scored.natural_threshold)
    sms, margin = request.sms_cost, request.margin_rate
    assert 0 < margin < 1 and sms > 0
    runs = experiment.runs
    for _, run in runs.iterrows():
        hold = runs[(runs["replication"] == run["replication"]) & (runs["arm"] == "holdout")]
        hold_rate = hold["conversions"].item() / hold["users"].item()
        hold_gmv = hold["gmv"].item() / hold["users"].item()
        cost = run["coupon_cost"] + sms * run["sent"]
        gmv = run["gmv"] - hold_gmv * run["users"]
        assert run["message_cost"] == pytest.approx(sms * run["sent"])
        assert run["campaign_cost"] == pytest.approx(cost)
        assert run["conversion_rate"] == pytest.approx(run["conversions"] / run["users"])
        assert run["incremental_conversions"] == pytest.approx(
            run["conversions"] - hold_rate * run["users"], abs=1e-6
        )
        assert run["incremental_gmv"] == pytest.approx(gmv, abs=1e-6)
        assert run["incremental_profit"] == pytest.approx(margin * gmv - cost, abs=1e-6)
        if cost > 0:
            assert run["roi"] == pytest.approx(gmv / cost)
        else:
            assert np.isnan(run["roi"])
    # The summary is the plain mean over replications; each paired difference is the mean of
    # the per-replication differences.
    summary = experiment.summary().set_index(["arm", "metric"])
    versus = experiment.versus("manual").set_index(["arm", "metric"])
    by_arm = runs.set_index(["arm", "replication"])
    for arm in ("optimal", "v1"):
        for metric in ("roi", "incremental_profit", "campaign_cost"):
            assert summary.loc[(arm, metric), "mean"] == pytest.approx(
                runs.loc[runs["arm"] == arm, metric].mean()
            )
            diff = by_arm.loc[arm, metric] - by_arm.loc["manual", metric]
            assert versus.loc[(arm, metric), "mean"] == pytest.approx(diff.mean())
            assert (
                versus.loc[(arm, metric), "low"] < diff.mean() < versus.loc[(arm, metric), "high"]
            )


def test_interval_width_is_the_t_quantile_over_root_n():
    """Worked by hand: values 1, 2, 3, 4 have sd sqrt(5/3); the 95% t quantile with 3 degrees
    of freedom is 3.182446; half-width = 3.182446 * sqrt(5/3) / 2 = 2.054260."""
    mean, low, high = interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5
    assert high - mean == pytest.approx(2.054260, abs=1e-6)
    assert mean - low == pytest.approx(2.054260, abs=1e-6)
    _, low90, high90 = interval(np.array([1.0, 2.0, 3.0, 4.0]), level=0.9)
    assert high90 - 2.5 == pytest.approx(2.353363 * np.sqrt(5 / 3) / 2, abs=1e-6)
    assert np.isnan(interval(np.array([7.0]))[1]) and interval(np.array([7.0]))[0] == 7.0
    assert all(np.isnan(interval(np.array([np.nan]))))


def test_run_metrics_of_a_hand_made_outcome():
    """Five users, three messaged (one undelivered), two buyers, one redemption of 10."""
    from simulator.experiment.ab import _metrics
    from simulator.experiment.engine import Outcome

    f, t = False, True
    outcome = Outcome(
        sent=np.array([t, t, t, f, f]), delivered=np.array([t, f, t, f, f]),
        viewed=np.array([t, f, f, f, f]), converted=np.array([t, f, f, t, f]),
        redeemed=np.array([t, f, f, f, f]), coupon_driven=np.array([t, f, f, f, f]),
        delivered_at=np.zeros(5), purchase_at=np.zeros(5),
        order_value=np.array([120.0, 0, 0, 80.0, 0]), discount=np.array([10.0, 0, 0, 0, 0]),
        spend_by_hour=np.array([0.15, 10.0]), exhausted_at=None,
    )  # fmt: skip
    got = _metrics(outcome, 5, planned=12.5, sms_cost=0.05)
    assert got == {
        "users": 5, "sent": 3, "delivered": 2, "conversions": 2, "conversion_rate": 0.4,
        "targeted_conversion_rate": pytest.approx(1 / 3), "gmv": 200.0, "redemptions": 1,
        "coupon_cost": 10.0, "message_cost": pytest.approx(0.15),
        "campaign_cost": pytest.approx(10.15), "planned_spend": 12.5,
        "realised_spend": pytest.approx(10.15),
    }  # fmt: skip
    nobody = _metrics(Outcome(*(np.zeros(0, bool),) * 6, *(np.zeros(0),) * 4, np.zeros(1), None),
                      0, planned=0.0, sms_cost=0.05)  # fmt: skip
    assert np.isnan(nobody["conversion_rate"]) and np.isnan(nobody["targeted_conversion_rate"])


def test_summary_versus_and_json_of_hand_made_runs():
    """Two replications of one arm and the holdout: means, paired differences and their
    t-intervals worked by hand (t at 97.5% with 1 degree of freedom is 12.7062)."""
    from simulator.experiment import Experiment
    from simulator.experiment.ab import METRICS

    keys = [m[0] for m in METRICS]
    rows = []
    for rep, (a, h) in enumerate(((3.0, 1.0), (5.0, 2.0))):
        rows.append({"replication": rep, "arm": "optimal", "arm_budget": 10.0,
                     **dict.fromkeys(keys, a)})  # fmt: skip
        rows.append({"replication": rep, "arm": "holdout", "arm_budget": 0.0,
                     **dict.fromkeys(keys, h)})  # fmt: skip
    experiment = Experiment(pd.DataFrame(rows), ("optimal", "holdout"), budget=20.0)
    assert experiment.replications == 2 and experiment.policies == ("optimal",)
    summary = experiment.summary().set_index(["arm", "metric"])
    assert len(summary) == 2 * len(keys)
    half = 12.7062047 * np.std([3.0, 5.0], ddof=1) / np.sqrt(2)  # = 12.7062
    row = summary.loc[("optimal", "roi")]
    assert (row["mean"], row["low"], row["high"]) == pytest.approx((4.0, 4 - half, 4 + half))
    versus = experiment.versus("holdout").set_index(["arm", "metric"])
    assert set(versus.index.get_level_values("arm")) == {"optimal"}
    diff = versus.loc[("optimal", "gmv")]  # differences 2 and 3
    half = 12.7062047 * np.std([2.0, 3.0], ddof=1) / np.sqrt(2)
    assert (diff["mean"], diff["low"], diff["high"]) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    payload = json.loads(json.dumps(experiment.to_dict("holdout")))
    assert payload["budget"] == 20.0 and payload["design"] == "split"
    assert payload["replications"] == 2 and payload["arms"] == ["optimal", "holdout"]
    assert payload["reference"] == "holdout" and len(payload["versus"]) == len(keys)
    assert len(payload["summary"]) == 2 * len(keys)
    assert experiment.to_dict()["versus"] == [] and experiment.to_dict()["reference"] is None
