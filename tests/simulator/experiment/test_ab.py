"""Replicated A/B experiments on the simulated world, and `couponopt simulate`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli import app
from optimizer.planning import Overrides
from simulator.experiment import experiment_request, interval, run_experiment
from simulator.experiment.ab import METRICS
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


# Hand-made worlds, played through the whole chain (planning, gateway, engine, metrics) in well
# under a second. One coupon, 50 off orders of 100, on typical baskets of 10. A keen user (no
# natural rate, a huge price sensitivity) buys within seconds of delivery, coupon-driven: an
# order lifted to exactly 100 that redeems 50. A natural user (h0 = 0.5 a day, no pull of the
# coupon) buys an order of about 10 at the natural rate, never reaching the threshold. A dead
# user never buys. Every figure of a policy arm follows by hand.
KEEN, NATURAL, DEAD = (0.0, 1e9), (0.5, 0.0), (0.0, 0.0)
HAND_MENU = {"denomination": [{"name": "50off100", "face_value": 50, "threshold": 100}]}


def _hand_scenario(**values):
    """A one-day campaign on :data:`HAND_MENU`, no failures, 1,000 messages an hour, a budget
    of a million, messages at 0.1, optimal and uplift arms, two replications."""
    from simulator.scenario import Scenario

    base = {"menu": HAND_MENU, "manual.denomination": "50off100", "campaign.window_days": 1,
            "campaign.validity_days": 1, "costs.sms_cost": 0.1, "budget.amount": 1e6,
            "simulation.failure_rate": 0.0, "simulation.sms_per_hour": 1000,
            "simulation.replications": 2, "simulation.holdout_share": 0.2,
            "simulation.on_budget_spent": "continue",
            "simulation.policies": ["optimal", "uplift"]}  # fmt: skip
    return Scenario().with_values(**(base | values))


def _hand_world(kinds, scores, menu=None):
    """Candidates (user ids from 100, in this order) and the truth (in reverse order).

    ``kinds``: (h0, sensitivity) per user; ``scores``: (p_natural, p_coupon) per user.
    """
    from optimizer.planning.candidates import Candidates
    from simulator.scenario import Scenario

    kinds, scores = np.asarray(kinds, float), np.asarray(scores, float)
    ids = np.arange(100, 100 + len(kinds))
    table = pd.DataFrame({"user_id": ids, "p_natural": scores[:, 0],
                          "p_coupon__50off100": scores[:, 1]})  # fmt: skip
    users = pd.DataFrame({"user_id": ids, "avg_order_value": 10.0, "lifecycle_stage": "dormant"})
    truth = pd.DataFrame({"user_id": ids, "natural_hazard": kinds[:, 0], "message_effect": 1.0,
                          "price_sensitivity": kinds[:, 1], "typical_basket": 10.0})  # fmt: skip
    menu = (
        menu or Scenario().with_values(menu=HAND_MENU, **{"manual.denomination": "50off100"}).menu
    )
    return Candidates(table, users, menu), truth.iloc[::-1]


def _hand_run(scenario, kinds, scores, **kwargs):
    candidates, truth = _hand_world(kinds, scores)
    return run_experiment(scenario, candidates, truth, experiment_request(scenario), **kwargs)


# The gateway's test: one message an hour for a day, so 24 coupons leave. The 30 users the plans
# value most (p_coupon 0.9, last in the candidate order) are 24 keen and 6 dead; 30 dead users
# the plans value little (0.01) come first; 40 natural users no plan targets (no uplift).
GATEWAY_KINDS = [DEAD] * 30 + [NATURAL] * 40 + [KEEN] * 24 + [DEAD] * 6
GATEWAY_SCORES = [(0.0, 0.01)] * 30 + [(0.4, 0.4)] * 40 + [(0.0, 0.9)] * 30


def test_a_paired_experiment_of_hand_made_users_is_worked_by_hand():
    """Paired design (the scenario's), its replications and seed: every arm plays all 100 users
    with the same draws. The gateway sends the most valuable coupons first, ties in candidate
    order: the 24 keen users, who all buy and redeem. The natural users buy alike in every arm,
    so each arm adds exactly 24 conversions and 24 orders of 100 over the holdout; its cost is
    24 x 50 + 24 x 0.1 = 1202.4."""
    from optimizer.progress import Step

    steps: list[Step] = []
    scenario = _hand_scenario(**{"simulation.design": "paired", "simulation.sms_per_hour": 1})
    experiment = _hand_run(scenario, GATEWAY_KINDS, GATEWAY_SCORES, progress=steps.append)
    assert [(s.task, s.done, s.total) for s in steps] == [("simulating", i, 6) for i in range(1, 7)]
    assert experiment.arms == ("optimal", "uplift", "holdout") and experiment.budget == 1e6
    assert experiment.design == "paired" and experiment.replications == 2
    runs = experiment.runs
    assert list(runs.columns) == ["replication", "arm", "arm_budget", *(m[0] for m in METRICS)]
    assert runs["arm"].tolist() == ["optimal", "uplift", "holdout"] * 2
    assert runs["replication"].tolist() == [0, 0, 0, 1, 1, 1] and (runs["users"] == 100).all()
    arms, hold = runs[runs["arm"] != "holdout"], runs[runs["arm"] == "holdout"]
    assert (arms["arm_budget"] == 1e6).all() and (hold["arm_budget"] == 0).all()
    exact = {"sent": 24, "delivered": 24, "redemptions": 24, "coupon_cost": 1200.0,
             "targeted_conversion_rate": 1.0}  # fmt: skip
    for key, value in exact.items():
        assert (arms[key] == value).all(), key
    assert np.allclose(arms["incremental_conversions"], 24)
    assert np.allclose(arms["message_cost"], 2.4) and np.allclose(arms["campaign_cost"], 1202.4)
    assert np.allclose(arms["realised_spend"], 1202.4)
    assert np.allclose(arms["incremental_gmv"], 2400.0)
    assert np.allclose(arms["roi"], 2400 / 1202.4)
    assert np.allclose(arms["incremental_profit"], 0.3 * 2400 - 1202.4)
    assert (arms["planned_spend"] > 0).all() and (hold["planned_spend"] == 0).all()
    by_rep = runs.set_index(["replication", "arm"])
    for rep in (0, 1):
        natural = by_rep.loc[(rep, "holdout"), "conversions"]
        assert 0 < natural < 40 and by_rep.loc[(rep, "holdout"), "gmv"] > 0
        for arm in ("optimal", "uplift"):
            assert by_rep.loc[(rep, arm), "conversions"] == natural + 24
            assert by_rep.loc[(rep, arm), "gmv"] == pytest.approx(
                by_rep.loc[(rep, "holdout"), "gmv"] + 2400
            )
            assert by_rep.loc[(rep, arm), "conversion_rate"] == (natural + 24) / 100
    assert (hold[["sent", "delivered", "redemptions", "campaign_cost"]] == 0).all(axis=None)
    assert hold["roi"].isna().all() and hold["targeted_conversion_rate"].isna().all()
    assert (hold["incremental_conversions"] == 0).all() and (hold["incremental_gmv"] == 0).all()


def test_the_campaign_timing_and_the_gateway_of_the_scenario_are_played():
    """100 users (no natural rate) with a coupon-driven rate of 2 a day, a coupon valid a
    quarter of a day of a one-day window, half the messages lost, beside 100 natural users
    (h0 = 0.5 a day) and 100 dead ones, paired: the optimal arm sends the 100 coupon users; half
    are delivered; a delivered coupon is used with probability 1 - exp(-0.5); the holdout's
    natural users buy with probability 1 - exp(-0.5) within the day."""
    # u = coupon_rate * s * g(f / b) * exp(-penalty * (t / b - 1)), f / b = 5, t / b = 10
    s = 2 / (0.045 * 25 / (25 + 0.08**2) * np.exp(-0.9 * 9))
    kinds = [(0.0, s)] * 100 + [NATURAL] * 100 + [DEAD] * 100
    scores = [(0.0, 0.9)] * 100 + [(0.4, 0.4)] * 100 + [(0.0, 0.0)] * 100
    scenario = _hand_scenario(**{"simulation.design": "paired", "simulation.policies": ["optimal"],
                                 "campaign.validity_days": 0.25, "simulation.failure_rate": 0.5,
                                 "simulation.replications": 3})  # fmt: skip
    runs = _hand_run(scenario, kinds, scores).runs
    arm, hold = runs[runs["arm"] == "optimal"], runs[runs["arm"] == "holdout"]
    p = 1 - np.exp(-0.5)
    assert (arm["sent"] == 100).all()
    delivered, used, natural = arm["delivered"].sum(), arm["redemptions"].sum(), hold["conversions"]
    assert abs(delivered - 150) < 4 * np.sqrt(300 * 0.25)
    assert abs(used - delivered * p) < 4 * np.sqrt(delivered * p * (1 - p))
    assert abs(natural.sum() - 300 * p) < 4 * np.sqrt(300 * p * (1 - p))
    # Common draws: the arm's natural users buy as the holdout's; the keen ones all redeem.
    assert np.array_equal(arm["conversions"] - natural.to_numpy(), arm["redemptions"])
    assert np.allclose(arm["campaign_cost"], 50 * arm["redemptions"] + 0.1 * 100)
    assert np.allclose(arm["realised_spend"], arm["campaign_cost"])


def test_a_split_experiment_shares_users_and_budget_and_recounts_every_figure():
    """Split design, 40 keen users the plans value at 0.9, a budget of 500 (200 for each arm of
    16): each arm's plan stays within its share; the arms and the holdout partition the users;
    every run figure follows from its definition against the same replication's holdout."""
    kinds = [KEEN] * 20 + [NATURAL] * 20
    scores = [(0.0, 0.9)] * 20 + [(0.4, 0.45)] * 20
    scenario = _hand_scenario(**{"budget.amount": 500.0, "simulation.replications": 3})
    experiment = _hand_run(scenario, kinds, scores, seed=5)
    runs = experiment.runs
    assert experiment.design == "split" and experiment.replications == 3
    assert runs.groupby("replication")["users"].sum().eq(40).all()
    assert runs.loc[runs["arm"] == "holdout", "users"].eq(8).all()
    arms = runs[runs["arm"] != "holdout"]
    assert arms["users"].eq(16).all() and np.allclose(arms["arm_budget"], 500 * 16 / 40)
    assert (arms["planned_spend"] > 0).all() and (arms["planned_spend"] <= 200 + 1e-9).all()
    for _, run in runs.iterrows():
        hold = runs[(runs["replication"] == run["replication"]) & (runs["arm"] == "holdout")]
        rate = hold["conversions"].item() / hold["users"].item()
        gmv_rate = hold["gmv"].item() / hold["users"].item()
        cost = run["coupon_cost"] + 0.1 * run["sent"]
        gmv = run["gmv"] - gmv_rate * run["users"]
        assert run["conversion_rate"] == run["conversions"] / run["users"]
        assert run["coupon_cost"] == 50 * run["redemptions"]
        assert run["campaign_cost"] == pytest.approx(cost) == run["realised_spend"]
        assert run["incremental_conversions"] == pytest.approx(
            run["conversions"] - rate * run["users"]
        )
        assert run["incremental_gmv"] == pytest.approx(gmv)
        assert run["incremental_profit"] == pytest.approx(0.3 * gmv - cost)
        if cost > 0:
            assert run["roi"] == pytest.approx(gmv / cost)
        else:
            assert np.isnan(run["roi"])
    assert runs.loc[runs["arm"] == "holdout", "conversions"].gt(0).any()  # natural buyers
    # Seeded: the same seed gives the same runs, another seed another randomisation.
    pd.testing.assert_frame_equal(_hand_run(scenario, kinds, scores, seed=5).runs, runs)
    other = _hand_run(scenario, kinds, scores, seed=6).runs
    assert not other["gmv"].equals(runs["gmv"])


def test_a_cheap_arm_has_its_return_on_its_own_cost():
    """Eight messages at 0.1 to natural users, who never redeem: a campaign cost of 0.8, and
    the ROI is the arm's incremental GMV over it (the messaged users are redrawn at delivery,
    so their orders differ from the holdout's)."""
    scenario = _hand_scenario(**{"budget.amount": 100.0, "simulation.policies": ["optimal"],
                                 "simulation.design": "paired"})  # fmt: skip
    runs = _hand_run(scenario, [NATURAL] * 8, [(0.0, 0.01)] * 8).runs
    arm = runs[runs["arm"] == "optimal"]
    assert np.allclose(arm["campaign_cost"], 0.8) and arm["incremental_gmv"].ne(0).all()
    assert np.allclose(arm["roi"], arm["incremental_gmv"] / 0.8)


def test_each_split_arm_plays_its_own_draws():
    """Identical natural users and no budget (nothing is sent): the two arms of 16 buy
    differently in each replication (their own draws), not the same orders."""
    scenario = _hand_scenario(**{"budget.amount": 0.0})
    runs = _hand_run(scenario, [NATURAL] * 40, [(0.4, 0.4)] * 40).runs
    assert (runs["sent"] == 0).all()
    by_rep = runs.set_index(["replication", "arm"])["gmv"]
    for rep in (0, 1):
        assert by_rep.loc[(rep, "optimal")] != by_rep.loc[(rep, "uplift")]


def test_an_arm_over_its_budget_declines_coupons_as_the_scenario_says():
    """Split, a budget of 500 shared by two arms of 40 (200 each) and a holdout of 20, keen
    users the plans rate at 0.3 (planned cost 15.1 each): a plan sends at least four coupons,
    all are used, and at 50 each only three fit the arm's 200 (stop_honouring): the rest are
    declined and lost. The arm spends within its share; with "continue" it would not."""
    scenario = _hand_scenario(**{"budget.amount": 500.0,
                                 "simulation.on_budget_spent": "stop_honouring"})  # fmt: skip
    runs = _hand_run(scenario, [KEEN] * 100, [(0.0, 0.3)] * 100).runs
    arms = runs[runs["arm"] != "holdout"]
    assert (arms["sent"] >= 4).all() and (arms["planned_spend"] <= 200 + 1e-9).all()
    assert (arms["conversions"] == 3).all() and (arms["redemptions"] == 3).all()
    assert np.allclose(arms["realised_spend"], 150 + 0.1 * arms["sent"])
    honoured = _hand_run(_hand_scenario(**{"budget.amount": 500.0}), [KEEN] * 100,
                         [(0.0, 0.3)] * 100).runs  # fmt: skip
    policy = honoured[honoured["arm"] != "holdout"]
    assert (policy["conversions"] == policy["sent"]).all()


def test_a_menu_with_costs_of_its_own_is_refused():
    from optimizer.errors import InputError
    from optimizer.io import Denomination, Menu

    menu = Menu(denomination=(Denomination(name="50off100", face_value=50, threshold=100,
                                           conversion_cost=1.0),))  # fmt: skip
    candidates, truth = _hand_world([KEEN] * 4, [(0.0, 0.9)] * 4, menu=menu)
    scenario = _hand_scenario()
    with pytest.raises(InputError) as error:
        run_experiment(scenario, candidates, truth, experiment_request(scenario))
    assert error.value.key == "menu"
    assert str(error.value) == (
        "menu: the synthetic world plays coupons with no costs of their own; this menu has "
        "messages or per-treatment costs"
    )


def test_a_what_if_point_reports_each_policys_paired_figures_at_its_budget():
    """The gateway's world at a budget of 100,000 (the request's is a million), the scenario's
    design split: a point is always paired, so each policy adds 24 conversions and 2,400 of GMV
    at 1,202.4; one replication has no interval."""
    from simulator.experiment.ab import POINT_METRICS, PointJob, simulate_point

    scenario = _hand_scenario(**{"simulation.sms_per_hour": 1})
    candidates, truth = _hand_world(GATEWAY_KINDS, GATEWAY_SCORES)
    job = PointJob(scenario, candidates, truth, experiment_request(scenario), replications=1)
    rows = simulate_point(job, 1e5)
    assert [r["policy"] for r in rows] == ["optimal", "uplift"]
    expected = {"incremental_conversions": 24.0, "campaign_cost": 1202.4,
                "roi": 2400 / 1202.4, "incremental_profit": 0.3 * 2400 - 1202.4}  # fmt: skip
    assert set(expected) == set(POINT_METRICS)
    for row in rows:
        assert set(row) == {"policy", "budget"} | {
            f"sim_{m}{end}" for m in POINT_METRICS for end in ("", "_low", "_high")
        }
        assert row["budget"] == 1e5
        for metric, value in expected.items():
            assert row[f"sim_{metric}"] == pytest.approx(value), metric
            assert np.isnan(row[f"sim_{metric}_low"]) and np.isnan(row[f"sim_{metric}_high"])


def test_the_experiment_request_takes_the_simulation_section_unless_overridden():
    from optimizer.choices import Solver

    scenario = _hand_scenario(**{"simulation.policies": ["optimal", "v2"],
                                 "simulation.objective": "gmv", "simulation.match": ["v2"],
                                 "simulation.match_on": "spend",
                                 "simulation.screen": True})  # fmt: skip
    request = experiment_request(scenario, natural_threshold=0.35)
    assert [str(p) for p in request.policies] == ["optimal", "v2"]
    assert request.objective == "gmv" and [str(p) for p in request.match] == ["v2"]
    assert request.match_on == "spend" and request.screen
    assert request.solver == Solver.DUAL and request.natural_threshold == 0.35
    told = experiment_request(scenario, Overrides(policies=["optimal", "v1"], objective="profit",
                                                  match=["v1"], screen=False))  # fmt: skip
    assert [str(p) for p in told.policies] == ["optimal", "v1"] and told.objective == "profit"
    assert [str(p) for p in told.match] == ["v1"] and not told.screen
    assert told.match_on == "spend" and told.solver == Solver.DUAL


def test_interval_reads_missing_values_given_as_none():
    assert interval([1.0, None, 3.0]) == interval(np.array([1.0, 3.0]))


def test_versus_reports_every_other_arm_whatever_the_reference():
    """Three arms over two replications; against the first arm, the two after it are reported,
    each with its mean paired difference."""
    from simulator.experiment import Experiment

    keys = [m[0] for m in METRICS]
    values = {"optimal": (3.0, 5.0), "manual": (2.0, 6.0), "holdout": (1.0, 1.0)}
    rows = [{"replication": rep, "arm": arm, "arm_budget": 0.0, **dict.fromkeys(keys, v[rep])}
            for rep in (0, 1) for arm, v in values.items()]  # fmt: skip
    experiment = Experiment(pd.DataFrame(rows), tuple(values), budget=10.0)
    versus = experiment.versus("optimal").set_index(["arm", "metric"])
    assert list(dict.fromkeys(versus.index.get_level_values("arm"))) == ["manual", "holdout"]
    assert versus.loc[("manual", "gmv"), "mean"] == 0.0  # differences -1 and +1
    assert versus.loc[("holdout", "gmv"), "mean"] == -3.0  # differences -2 and -4


def test_metrics_of_an_arm_that_sends_nothing_raise_no_warnings():
    """No message sent: the conversion rate of the targeted is undefined (NaN), quietly."""
    import warnings

    from simulator.experiment.ab import _metrics
    from simulator.experiment.engine import Outcome

    f = np.zeros(3, bool)
    outcome = Outcome(f, f, f, np.array([True, False, False]), f, f, *(np.zeros(3),) * 4,
                      np.zeros(24), None)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _metrics(outcome, 3, planned=0.0, sms_cost=0.1)
    assert np.isnan(got["targeted_conversion_rate"]) and got["conversion_rate"] == 1 / 3


@pytest.mark.parametrize("design", ["paired", "split"])
def test_each_arm_plays_the_engine_with_its_documented_seed(design):
    """Identical natural users (h0 = 0.5 a day, a one-day window) and no budget, so nothing is
    sent: a user buys iff the engine's first draw for them, Exp(1) / h0, falls in the window.
    The draws of replication r come from the seed [seed, r, 1] in a paired design (every arm
    alike) and [seed, r, the arm's position, 1] in a split one."""
    n, seed = 40, 3
    scenario = _hand_scenario(**{"budget.amount": 0.0, "simulation.design": design})
    runs = _hand_run(scenario, [NATURAL] * n, [(0.4, 0.4)] * n, seed=seed).runs
    assert (runs["sent"] == 0).all()
    for _, run in runs.iterrows():
        position = ("optimal", "uplift", "holdout").index(run["arm"])
        key = [seed, run["replication"], 1] if design == "paired" else [
            seed, run["replication"], position, 1
        ]  # fmt: skip
        natural = np.random.default_rng(key).standard_exponential(run["users"]) / 0.5
        assert run["conversions"] == (natural < 1).sum()
