"""Policies on the synthetic world: the optimal plan beats every baseline on the truth."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError, Notice
from optimizer.io import Denomination, Menu
from optimizer.io.contract import coupon_column
from optimizer.planning import (
    POLICIES,
    CampaignConfig,
    Overrides,
    check_plan,
    plan_campaign,
    resolve_request,
    select_candidates,
)
from optimizer.planning.policies import (
    ARTICLE_V2_THRESHOLD,
    TARGET_BUDGET_TOLERANCE,
    PolicySettings,
    make_plan,
    ranking,
    screened,
    take_in_order,
)
from optimizer.segments import rfm_score
from optimizer.solvers import Constraints, build_problem


def _plan(candidates, budget, policies, knee=None, **overrides):
    """Plans of ``policies`` at ``budget`` under the default campaign and ``overrides``."""
    request = resolve_request(
        CampaignConfig(),
        Overrides(budget=budget, policies=policies, **overrides),
        natural_threshold=knee,
    )
    return plan_campaign(candidates, request)


@pytest.fixture(scope="module")
def campaign(world, default_models):
    scenario = world.scenario
    models = default_models
    candidates = select_candidates(
        models.predict(world.users), world.users, scenario.menu, segments=["dormant"]
    )
    return candidates, models.natural_threshold


@pytest.fixture(scope="module")
def plans(campaign, world):
    candidates, knee = campaign
    return _plan(candidates, 30_000.0, POLICIES, knee, solver="dual")


def _true_uplift(plan, world) -> float:
    truth = world.truth.set_index("user_id").loc[plan.problem.user_id]
    lifts = np.column_stack(
        [truth[coupon_column(n)] - truth["p_natural"] for n in world.scenario.menu.names]
    )
    rows = np.flatnonzero(plan.choice >= 0)
    return float(lifts[rows, plan.choice[rows]].sum())


def test_optimal_beats_every_baseline_on_true_incremental_conversions(plans, world):
    truth = {name: _true_uplift(plan, world) for name, plan in plans.items()}
    for name in POLICIES[1:]:
        assert truth["optimal"] > truth[name], (name, truth)
    # And on the models' own expectation, at the same budget.
    expected = {name: plan.summary()["incremental_conversions"] for name, plan in plans.items()}
    assert all(expected["optimal"] >= expected[n] for n in POLICIES[1:])


def test_every_plan_keeps_the_budget_and_each_user_once(plans):
    for plan in plans.values():
        check_plan(plan)
        assert plan.expected_cost.sum() <= 30_000.0 + 1e-6
        assert np.unique(plan.problem.user_id).size == plan.choice.size


def test_baselines_send_one_uniform_coupon(plans):
    for name in ("manual", "v1", "v2", "uplift", "random"):
        sent = plans[name].choice[plans[name].choice >= 0]
        assert set(sent.tolist()) == {1}, name  # 10off99 is the menu's second denomination


def test_manual_takes_the_best_rfm_scores_first(plans, campaign):
    candidates, _ = campaign
    users = candidates.users
    score = rfm_score(
        users["days_since_last_order"].to_numpy(),
        users["orders_365d"].to_numpy(),
        users["avg_order_value"].to_numpy(),
    )
    taken = plans["manual"].choice >= 0
    assert score[taken].min() >= score[~taken].max()


def test_v2_drops_likely_natural_buyers(plans, campaign):
    _, knee = campaign
    plan = plans["v2"]
    assert (plan.problem.p0[plan.choice >= 0] <= knee).all()
    assert plan.details["v2_threshold"] == knee


def test_v1_spends_on_sure_things(plans, world):
    """The article's lesson: ranking by coupon conversion alone picks people who buy anyway."""
    truth = world.truth.set_index("user_id")
    share = {}
    for name in ("v1", "uplift"):
        plan = plans[name]
        chosen = plan.problem.user_id[plan.choice >= 0]
        share[name] = (truth.loc[chosen, "archetype"] == "sure_thing").mean()
    assert share["v1"] > 0.5 > share["uplift"]


def test_random_policy_is_seeded(campaign):
    candidates, _ = campaign
    a = _plan(candidates, 5000.0, ["random"], seed=1)["random"]
    b = _plan(candidates, 5000.0, ["random"], seed=1)["random"]
    c = _plan(candidates, 5000.0, ["random"], seed=2)["random"]
    assert (a.choice == b.choice).all() and not (a.choice == c.choice).all()


def test_caps_apply_to_every_policy(campaign):
    candidates, _ = campaign
    caps = {"max_per_denomination": {"10off99": 300}, "max_messages": 500}
    plans = _plan(candidates, 30_000.0, POLICIES, solver="dual", **caps)
    for plan in plans.values():
        assert int((plan.choice == 1).sum()) <= 300 and int((plan.choice >= 0).sum()) <= 500
    with pytest.raises(InputError) as info:
        _plan(candidates, 1.0, ["optimal"], max_per_denomination={"x": 1})
    assert info.value.key == "constraints.max_per_denomination"
    assert "'x' is not on the menu" in str(info.value)
    with pytest.raises(InputError) as info:
        _plan(candidates, 1.0, ["magic"])
    assert info.value.key == "policies" and "unknown policy 'magic'" in str(info.value)


def test_auto_picks_the_exact_solver_on_small_campaigns_and_dual_on_large(campaign):
    candidates, _ = campaign
    small = candidates.subset(np.arange(300))
    assert _plan(small, 100.0, ["optimal"])["optimal"].solver == "pulp"
    large = _plan(candidates, 20_000.0, ["optimal"])["optimal"]
    assert large.solver == "dual" and large.gap is not None and large.gap < 1e-3


def _monte_carlo_spend(plan, draws: int, seed: int) -> np.ndarray:
    """Realised spends of ``plan`` under the models' probabilities (independent redemptions)."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(plan.choice >= 0)
    k = plan.choice[rows]
    faces = plan.problem.menu.face_values[k]
    q = plan.problem.p[rows, k] * plan.problem.redemption_at(rows, k)
    paid = rng.random((draws, q.size)) < q
    return plan.problem.sms_cost * rows.size + paid.astype(np.float64) @ faces


@pytest.mark.parametrize(
    ("overrides", "tolerance", "limit"),
    [
        ({}, 0.02, 0.05),  # the default rule: above 102% of the budget in at most 5%
        ({"overrun_risk": 0.05, "overrun_tolerance": 0.0}, 0.0, 0.05),
        ({"overrun_risk": 0.5, "overrun_tolerance": 0.0}, 0.0, None),  # expected = budget
    ],
)
def test_overrun_rule_bounds_realised_spend(campaign, overrides, tolerance, limit):
    """Monte Carlo of redemptions under the models' probabilities, recounted here."""
    candidates, _ = campaign
    budget = 20_000.0
    plan = _plan(candidates, budget, ["optimal"], solver="dual", **overrides)["optimal"]
    spends = _monte_carlo_spend(plan, 2_000, seed=0)
    overrun = float(np.mean(spends > budget * (1 + tolerance)))
    assert float(plan.expected_cost.sum()) <= budget * (1 + 1e-9)  # never over on average
    if limit is None:
        assert overrun > 0.2  # planning to the expected budget overruns often
        assert float(plan.expected_cost.sum()) == pytest.approx(budget, rel=2e-3)
        return
    assert overrun <= limit + 0.02
    assert plan.details["planning_budget"] < budget
    assert plan.details["overrun_tolerance"] == tolerance
    summary = plan.summary()
    assert summary["spend_95_low"] < summary["expected_cost"] < summary["spend_95_high"]
    assert summary["spend_95_high"] <= budget * (1 + tolerance) * 1.01


def test_ranked_policies_and_budget_sweeps_keep_the_overrun_rule(campaign):
    from optimizer.planning.sweep import sweep_budgets

    candidates, _ = campaign
    request = resolve_request(CampaignConfig(), Overrides(budget=8_000.0, solver="dual"))
    settings = request.settings()
    problem = request.problem(candidates)
    swept = sweep_budgets(
        problem, [5_000.0, 8_000.0], ["optimal", "manual"], settings, users=candidates.users
    )
    for policy, plans in swept.items():
        for plan, budget in zip(plans, (5_000.0, 8_000.0), strict=True):
            spends = _monte_carlo_spend(plan, 2_000, seed=1)
            assert float(np.mean(spends > 1.02 * budget)) <= 0.07, policy
            assert float(plan.expected_cost.sum()) <= budget * (1 + 1e-9)
    # The sweep's plan is the one planning at that budget alone.
    alone = make_plan("manual", problem, 8_000.0, settings, users=candidates.users)
    np.testing.assert_array_equal(alone.choice, swept["manual"][1].choice)


def test_excluded_users_stay_in_every_plan_with_no_coupon(campaign, world, runner, tmp_path):
    candidates, _ = campaign
    excluded = np.zeros(len(candidates), dtype=bool)
    excluded[::2] = True
    marked = replace(candidates, excluded=excluded)
    plans = _plan(marked, 30_000.0, POLICIES, solver="dual")
    for plan in plans.values():
        assert plan.choice.size == len(candidates)
        assert (plan.choice[excluded] == -1).all() and (plan.choice[~excluded] >= 0).any()
    # From the command line: a .txt list of opted-out ids.
    from cli import app

    ids = tmp_path / "optout.txt"
    ids.write_text("\n".join(str(u) for u in world.users["user_id"].iloc[:5000]))
    out = tmp_path / "plan.parquet"
    result = runner.invoke(
        app, ["optimize", "--budget", "3000", "--population", "20000", "--exclude", str(ids),
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import pandas as pd

    plan = pd.read_parquet(out)
    opted = plan["user_id"].isin(world.users["user_id"].iloc[:5000])
    assert opted.any() and (plan.loc[opted, "denomination"] == "none").all()
    # From the scenario file: exclude_file, relative to the scenario's directory.
    (tmp_path / "scen").mkdir()
    (tmp_path / "scen" / "optout.txt").write_text(ids.read_text())
    scenario = tmp_path / "scen" / "s.toml"
    scenario.write_text('[constraints]\nexclude_file = "optout.txt"\n')
    out2 = tmp_path / "plan2.parquet"
    result = runner.invoke(
        app, ["optimize", "--scenario", str(scenario), "--budget", "3000", "--population",
              "20000", "--out", str(out2)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan2 = pd.read_parquet(out2)
    assert (plan2.loc[opted, "denomination"] == "none").all()
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nabc\n")
    result = runner.invoke(app, ["optimize", "--population", "20000", "--exclude", str(bad)])
    assert result.exit_code == 2 and "not a user id: 'abc'" in result.stderr


def test_minimum_roi_applies_to_every_policy(campaign):
    candidates, _ = campaign
    plans = _plan(candidates, 30_000.0, POLICIES, solver="dual", min_roi=8.0)  # each is checked
    for name, plan in plans.items():
        summary = plan.summary()
        if summary["users_targeted"]:
            assert summary["roi"] >= 8.0 - 1e-6, name


def test_segment_shares_apply_to_every_policy(campaign):
    candidates, _ = campaign
    tiers = candidates.users["city_tier"].astype(str).to_numpy()
    shares = {"segment_shares": {"1": (0.4, 1.0), "4": (0.0, 0.05)}, "solver": "dual"}
    plans = _plan(candidates, 30_000.0, POLICIES, segment_column="city_tier", **shares)
    free = _plan(candidates, 30_000.0, ["optimal"], solver="dual")
    for name, plan in plans.items():  # each plan was checked inside; check the shares here too
        sent = tiers[plan.targeted]
        assert sent.size > 0, name
        assert (sent == "1").mean() >= 0.4 - 1e-9 and (sent == "4").mean() <= 0.05 + 1e-9, name
        by = plan.by_segment().set_index("segment")
        assert by.loc["1", "message_share"] == pytest.approx((sent == "1").mean())
    # Without the shares tier 1 gets less than 40% of the optimal plan's messages: they bind.
    assert (tiers[free["optimal"].targeted] == "1").mean() < 0.4
    assert plans["optimal"].value <= free["optimal"].value
    with pytest.raises(InputError, match="segment column 'nope'") as info:
        _plan(candidates, 1.0, ["optimal"], segment_column="nope", **shares)
    assert info.value.key == "constraints.segment_column"


@pytest.mark.parametrize("baseline", ["manual", "v2"])
def test_matched_optimal_plan_dominates_its_baseline(campaign, baseline):
    """Matched on spend: no more expected spend, no less value. Matched on value: no less
    value, and (the baseline's plan being feasible at its own cost) no more spend than the
    baseline needed, up to the bisection's tolerance."""
    candidates, knee = campaign
    budget = 30_000.0
    for on in ("spend", "value"):
        plans = _plan(
            candidates, budget, ["optimal", baseline], knee, solver="dual", match=[baseline],
            match_on=on,
        )  # fmt: skip
        opt, base = plans["optimal"], plans[baseline]
        check_plan(opt)
        cost, base_cost = opt.expected_cost.sum(), base.expected_cost.sum()
        assert opt.details["match"] == {"policies": [baseline], "on": on}
        assert opt.value >= base.value - 1e-6 * abs(base.value) - 1e-9, on
        if on == "spend":
            assert cost <= base_cost + 1e-6
            # The overrun rule is the real budget's, applied once: the matched plan spends
            # what its baseline spends, not a second cut below it.
            assert cost >= base_cost * (1 - 2e-3)
        else:
            assert opt.details["target_reached"]
            assert cost <= base_cost + TARGET_BUDGET_TOLERANCE * budget + 1e-6
            # The bisection's least budget: half a tolerance less would not reach the target.
            spend = opt.details["spend_budget"]
            lower = _plan(
                candidates, spend - TARGET_BUDGET_TOLERANCE * budget, ["optimal"], knee,
                solver="dual",
            )["optimal"]  # fmt: skip
            assert lower.value < base.value


def test_target_beyond_reach_spends_the_whole_budget(campaign):
    candidates, _ = campaign
    request = resolve_request(CampaignConfig(), Overrides(budget=5000.0, solver="dual"))
    full = plan_campaign(candidates, request)["optimal"]
    problem = request.problem(candidates)
    settings = replace(request.settings(), target=full.value * 10)
    far = make_plan("optimal", problem, 5000.0, settings, users=candidates.users)
    assert not far.details["target_reached"]
    np.testing.assert_array_equal(far.choice, full.choice)
    with pytest.raises(InputError, match="unknown policy 'optimal'") as info:
        _plan(candidates, 5_000.0, ["optimal"], match=["optimal"])
    assert info.value.key == "match"
    with pytest.raises(InputError, match="plan it") as info:
        _plan(candidates, 5_000.0, ["v2"], match=["v2"])
    assert info.value.key == "match"


def test_redemption_scores_price_each_coupon_per_user(campaign, tmp_path):
    """With p_redeem columns the expected cost is sms + p * r_ik * f: a coupon rarely redeemed
    (a high threshold) is cheap to send; without them the menu's shares apply."""
    from optimizer.io.contract import redeem_column
    from optimizer.io.tables import load_scores, write_table

    candidates, _ = campaign
    menu = candidates.menu
    names = [redeem_column(n) for n in menu.names]
    assert all(c in candidates.scores.columns for c in names)
    plan = _plan(candidates, 10_000.0, ["optimal"], solver="dual")["optimal"]
    r = candidates.scores[names].to_numpy(dtype=np.float64)
    p = candidates.scores[[coupon_column(n) for n in menu.names]].to_numpy(dtype=np.float64)
    expected = plan.problem.sms_cost + p * r * menu.face_values[None, :]
    np.testing.assert_allclose(plan.problem.cost, expected, rtol=1e-6)
    bare = replace(candidates, scores=candidates.scores.drop(columns=names))
    flat = _plan(bare, 10_000.0, ["optimal"], solver="dual")["optimal"]
    assert flat.problem.redeem is None
    np.testing.assert_allclose(
        flat.problem.cost, plan.problem.sms_cost + p * menu.face_values[None, :], rtol=1e-6
    )
    # A scores file with some but not all p_redeem columns is refused, naming a column.
    path = tmp_path / "scores.parquet"
    write_table(candidates.scores.drop(columns=names[-1]), path)
    with pytest.raises(InputError, match=names[-1]):
        load_scores(path, menu)
    write_table(candidates.scores, path)
    assert list(load_scores(path, menu).columns) == list(candidates.scores.columns)


class _StubPlan:
    """A plan whose spend is a step function of its planning budget (an optimal plan that stops
    at its last profitable user keeps its spend while the planning budget falls)."""

    def __init__(self, planning: float):
        # 0.7 over the rule's limit (1000 - 1.645 x 60) at any planning budget above 300.
        self.mean = 902.0 if planning >= 300.0 else planning
        self.expected_cost = np.array([self.mean])
        self.details: dict = {}

    def spend_moments(self):
        return self.mean, 60.0


def test_fit_overrun_converges_when_the_plan_has_slack():
    from scipy.special import ndtr

    from optimizer.planning.policies import PolicySettings, fit_overrun

    calls = []

    def plan_at(amount):
        calls.append(amount)
        return _StubPlan(amount)

    settings = PolicySettings(denomination="x", overrun_risk=0.05, overrun_tolerance=0.0)
    plan = fit_overrun(plan_at, 1_000.0, settings)
    mean, sd = plan.spend_moments()
    # Recount: P(spend > budget) under the normal approximation holds the 5% limit.
    assert 1.0 - ndtr((1_000.0 - mean) / sd) <= 0.05 + 1e-9
    assert len(calls) < 80  # small steps stall; the bisection finishes
    # The highest planning budget that keeps the rule: just under 300.
    assert (
        299.0 <= plan.details["planning_budget"] < 300.0 and mean == plan.details["planning_budget"]
    )


class _Known:
    """Stands in for fitted models: a coverage knee and per-treatment spend errors."""

    def __init__(self, knee, errors):
        self.natural_threshold, self._errors = knee, errors

    def spend_error(self):
        return dict(self._errors)


def test_spend_error_of_the_models_enters_the_overrun_rule(campaign):
    """with_models: knees are the median, errors the largest per treatment (a treatment the
    models never trained gets the largest); the overrun rule then holds mean + z sd under the
    limit with the wider spread, at a lower planning budget than without it."""
    candidates, knee = campaign
    request = resolve_request(CampaignConfig(), Overrides(budget=20_000.0, solver="dual"))
    names = request.campaign.menu.names
    known = request.with_models(
        _Known(0.2, {names[0]: 0.05, names[1]: 0.12}),
        _Known(0.4, {names[0]: 0.08}),
        _Known(None, {}),
    )
    assert known.natural_threshold == pytest.approx(0.3)
    problem = known.problem(candidates)
    expected = [0.08, 0.12] + [0.12] * (len(names) - 2)
    np.testing.assert_allclose(problem.spend_error, expected)
    assert request.problem(candidates).spend_error is None
    plain = plan_campaign(candidates, request)["optimal"]
    wary = plan_campaign(candidates, known)["optimal"]
    assert wary.details["planning_budget"] < plain.details["planning_budget"]
    mean, sd = wary.spend_moments()
    assert mean + 1.6448536 * sd <= 20_000.0 * 1.02 * (1 + 1e-6)
    # The spread counts the level errors: recounted from the plan's own choices.
    rows = np.flatnonzero(wary.choice >= 0)
    k = wary.choice[rows]
    q = wary.problem.p[rows, k] * wary.problem.redemption_at(rows, k)
    paid = np.array(
        [(q * wary.problem.menu.face_values[k])[k == j].sum() for j in range(len(names))]
    )
    bernoulli = float(np.sqrt((wary.problem.menu.face_values[k] ** 2 * q * (1 - q)).sum()))
    assert sd == pytest.approx(np.sqrt(bernoulli**2 + ((np.array(expected) * paid) ** 2).sum()))
    assert bernoulli < sd


def test_an_exact_solve_stopped_by_its_time_limit_says_so(campaign, monkeypatch):
    """Past the limit the best plan found is kept, with a note; nothing passes as optimal."""
    import optimizer.planning.policies as policies
    from optimizer.errors import Notice
    from optimizer.solvers.milp import solve_milp

    seen = {}

    def limited(problem, budget, constraints=None, *, time_limit=None, gap=1e-7):
        seen["limit"] = time_limit
        found = solve_milp(problem, budget, constraints)
        return replace(found, status="Feasible", upper_bound=None)  # as a stopped run returns

    monkeypatch.setattr(policies, "solve_milp", limited)
    candidates, _ = campaign
    small = candidates.subset(np.arange(300))
    with pytest.warns(Notice, match="stopped at its 600 s limit: the best plan found is kept"):
        plan = _plan(small, 100.0, ["optimal"], solver="pulp")["optimal"]
    assert seen["limit"] == policies.EXACT_TIME_LIMIT and plan.gap is None


# Policies on small hand-made problems: the rankings, the list-taking, the optimal policy's
# solver choice, floor and target, with the solvers stood in for where the arithmetic must be
# exact.

#: Face values 10 and 20, everyone redeems, no send cost: a coupon costs 10 p (or 20 p).
HAND_MENU = Menu(
    denomination=(
        Denomination(name="10off99", face_value=10, threshold=99),
        Denomination(name="20off199", face_value=20, threshold=199),
    )
)
HAND_IDS = np.array([6, 3, 5, 1, 4, 2])
HAND_P0 = np.array([0.25, 0.125, 0.3125, 0.0, 0.0, 0.0])
HAND_P = np.array(
    [[0.5, 0.5], [0.375, 0.5], [0.375, 0.5], [0.0625, 0.5], [0.03125, 0.5], [0.015625, 0.5]]
)


def _hand(objective="conversions", sms=0.0, **kw):
    """Six users, dyadic probabilities (exact ties): 10off99 costs 5, 3.75, 3.75, 0.625,
    0.3125 and 0.15625; its uplift is 0.25, 0.25, 0.0625, 0.0625, 0.03125, 0.015625."""
    return build_problem(
        HAND_IDS, HAND_P0, HAND_P, HAND_MENU, objective=objective, sms_cost=sms,
        basket=np.full(6, 100.0), **kw,
    )  # fmt: skip


def _settings(**kw):
    return PolicySettings(denomination="10off99", **kw)


def _taken(plan) -> list[int]:
    """User ids that get a coupon."""
    return sorted(plan.problem.user_id[plan.choice >= 0].tolist())


def test_rankings_order_by_their_score_ties_by_user_id():
    """v1 by P(buy | coupon), uplift by its difference with P(buy), v2 by P(buy | coupon) after
    dropping P(buy) above its cut (a user at the cut stays); equal scores go lowest id first."""
    problem = _hand()
    order = {p: ranking(p, problem, _settings(), None) for p in ("v1", "uplift", "v2")}
    assert order["v1"][0].tolist() == [0, 1, 2, 3, 4, 5]  # ids 3 before 5 at 0.375
    assert order["uplift"][0].tolist() == [1, 0, 3, 2, 4, 5]  # ids 3 before 6, 1 before 5
    assert order["v2"][0].tolist() == [0, 1, 2, 3, 4, 5]  # the article's 0.9 drops nobody
    for name, (_, k, details) in order.items():
        assert k == 0 and details["denomination"] == "10off99", name
    assert order["v2"][2]["v2_threshold"] == ARTICLE_V2_THRESHOLD == 0.9
    assert "v2_threshold" not in order["v1"][2]
    cut, k, details = ranking("v2", problem, _settings(v2_threshold=0.25), None)
    assert cut.tolist() == [0, 1, 3, 4, 5] and details["v2_threshold"] == 0.25
    second = ranking("v1", problem, PolicySettings(denomination="20off199"), None)
    assert second[1] == 1 and second[0].tolist() == [3, 5, 1, 4, 2, 0]  # all 0.5: by id
    with pytest.raises(InputError) as info:
        ranking("v1", problem, PolicySettings(denomination="50off399"), None)
    assert info.value.key == "manual.denomination"
    assert info.value.message == (
        "uniform denomination '50off399' is not on the menu (10off99, 20off199)"
    )


def test_random_order_is_a_seeded_permutation():
    problem = _hand()
    a = ranking("random", problem, _settings(seed=3), None)[0]
    assert sorted(a.tolist()) == list(range(6))
    np.testing.assert_array_equal(a, ranking("random", problem, _settings(seed=3), None)[0])
    others = [ranking("random", problem, _settings(seed=s), None)[0].tolist() for s in range(4)]
    assert len({tuple(o) for o in others}) > 1


def test_manual_ranks_by_a_column_nan_and_text_last_ties_by_id():
    problem = _hand()
    users = pd.DataFrame({"score": pd.Series([3, "n/a", 5, 3, 1, None], dtype=object)})
    down = ranking("manual", problem, _settings(rank_by="score"), users)[0]
    assert down.tolist() == [2, 3, 0, 4, 5, 1]  # 5; 3 (id 1, id 6); 1; no number (id 2, id 3)
    up = ranking("manual", problem, _settings(rank_by="score", rank_ascending=True), users)[0]
    assert up.tolist() == [4, 3, 0, 2, 5, 1]
    flags = pd.DataFrame({"opted_in": [False, True, False, True, False, True]})
    yes = ranking("manual", problem, _settings(rank_by="opted_in"), flags)[0]
    assert yes.tolist() == [3, 5, 1, 4, 2, 0]  # True first, each by id
    no = ranking("manual", problem, _settings(rank_by="opted_in", rank_ascending=True), flags)
    assert no[0].tolist() == [4, 2, 0, 3, 5, 1]


def test_manual_ranks_by_rfm_ties_by_average_order_value():
    """Recency, frequency and monetary parts of 1 to 5 each, hand-scored from the bins: 5+3+2,
    5+3+2, 3+1+1, 5+5+5, 1+1+1 and 3+3+5 (the monetary part lifts the last above the first
    two)."""
    users = pd.DataFrame(
        {
            "days_since_last_order": [10, 10, 100, 10, 400, 100],
            "orders_365d": [4, 4, 0, 12, 0, 4],
            "avg_order_value": [100.0, 70.0, 50.0, 400.0, np.nan, 400.0],
        }
    )  # scores 10, 10, 5, 15, 3, 11
    order = ranking("manual", _hand(), _settings(), users)[0]
    assert order.tolist() == [3, 5, 0, 1, 2, 4]
    # Order values held as Python objects with a gap (a table read from JSON) rank the same.
    loose = users.assign(avg_order_value=pd.Series([100.0, 70.0, 50.0, 400.0, None, 400.0],
                                                   dtype=object))  # fmt: skip
    assert ranking("manual", _hand(), _settings(), loose)[0].tolist() == [3, 5, 0, 1, 2, 4]


@pytest.mark.parametrize(
    ("users", "settings", "message"),
    [
        (None, {}, "the manual policy needs the user table"),
        (pd.DataFrame({"x": range(6)}), {"rank_by": "score"},
         "'score' is not a column of the user table"),
        (pd.DataFrame({"score": ["a"] * 6}), {"rank_by": "score"},
         "'score' holds no numbers to rank by"),
        (pd.DataFrame({"score": [np.nan] * 6}), {"rank_by": "score"},
         "'score' holds no numbers to rank by"),
        (pd.DataFrame({"days_since_last_order": range(6)}), {},
         "ranking by RFM needs column 'orders_365d'; name the column operations rank by"),
        (pd.DataFrame({"days_since_last_order": range(6), "orders_365d": range(6)}), {},
         "ranking by RFM needs column 'avg_order_value'; name the column operations rank by"),
    ],
)  # fmt: skip
def test_manual_refuses_a_table_it_cannot_rank(users, settings, message):
    with pytest.raises(InputError) as info:
        make_plan("manual", _hand(), 10.0, _settings(**settings), users=users)
    assert info.value.message == message
    assert info.value.key == ("users" if users is None else "manual.rank_by")


def test_a_ranked_list_ends_at_the_first_user_who_does_not_fit():
    """v1 at 9.5: 5 + 3.75 fit, the next 3.75 does not and ends the list, though the 0.625
    after it would fit. Without id 3 (excluded) the list runs 5 + 3.75 + 0.625."""
    plan = make_plan("v1", _hand(), 9.5, _settings())
    assert _taken(plan) == [3, 6]
    assert plan.choice.dtype == np.int16 and set(plan.choice.tolist()) == {-1, 0}
    assert (plan.solver, plan.upper_bound, plan.budget) == ("ranking", None, 9.5)
    assert plan.details == {"denomination": "10off99"}
    assert plan.expected_cost.sum() == 8.75
    assert _taken(make_plan("v1", _hand(excluded=HAND_IDS == 3), 9.5, _settings())) == [1, 5, 6]
    # Exactly the budget fits.
    assert _taken(make_plan("v1", _hand(), 8.75, _settings())) == [3, 6]
    # Straight from the list-taker: int16 choices, menu option 0 for the taken users.
    choice = take_in_order(_hand(), np.arange(6), 0, 9.5, _settings())
    assert choice.dtype == np.int16 and choice.tolist() == [0, 0, -1, -1, -1, -1]


def test_ranked_lists_keep_caps_and_the_message_cap():
    capped = _settings(constraints=Constraints(max_per_denomination={"10off99": 1}))
    assert _taken(make_plan("v1", _hand(), 100.0, capped)) == [6]
    messages = _settings(constraints=Constraints(max_messages=3))
    assert _taken(make_plan("uplift", _hand(), 100.0, messages)) == [1, 3, 6]


def test_a_ranked_list_drops_its_lowest_ranked_users_for_the_minimum_roi_then_refills():
    """Costs 5, 2.5, 1.25 and 0.625 (v1's order), GMV p x max(basket, 99): 49.5, 105, 12.375,
    25. The budget of 8.75 ends the list after the third user; at ROI >= 20 the three fall
    short by 8.125 (20 x cost - GMV), which the lowest-ranked user who adds to the shortfall
    (id 3, 12.625) covers alone, so id 1 (50.5) stays; the list then continues with id 4, who
    keeps the budget and the ROI, id 3 still not."""
    problem = build_problem(
        [1, 2, 3, 4], np.zeros(4), np.column_stack([[0.5, 0.25, 0.125, 0.0625], np.ones(4)]),
        HAND_MENU, objective="gmv", sms_cost=0.0, basket=np.array([99.0, 420.0, 99.0, 400.0]),
    )  # fmt: skip
    settings = _settings(constraints=Constraints(min_roi=20.0))
    plan = make_plan("v1", problem, 8.75, settings)
    assert _taken(plan) == [1, 2, 4]
    sent = np.flatnonzero(plan.choice >= 0)
    gmv = sum(problem.p[i, 0] * max(problem.basket[i], 99.0) for i in sent)
    assert gmv >= 20.0 * sum(10.0 * problem.p[i, 0] for i in sent)


def test_screened_closes_every_option_to_users_above_the_cut():
    problem = _hand(excluded=HAND_IDS == 1)
    cut = screened(problem, 0.125)
    # P(buy) 0.25, 0.125 (at the cut: stays), 0.3125, 0, 0, 0; id 1 (the fourth) was excluded.
    assert cut.eligible[:, 0].tolist() == [False, True, False, False, True, True]
    assert (cut.eligible[:, 1] == cut.eligible[:, 0]).all()
    assert problem.eligible[0].all()  # the original is left as it was


def _brute(problem, budget, constraints=None, **kw):
    """The best plan by trying every one (budget and eligibility), its value as the bound."""
    n, k = problem.p.shape
    best, top = np.full(n, -1), 0.0
    for combo in itertools.product(range(-1, k), repeat=n):
        sent = [(i, j) for i, j in enumerate(combo) if j >= 0]
        if not all(problem.eligible[i, j] for i, j in sent):
            continue
        if sum(problem.cost[i, j] for i, j in sent) > budget * (1 + 1e-12):
            continue
        value = sum(problem.value[i, j] for i, j in sent)
        if value > top:
            best, top = np.array(combo), value
    return SimpleNamespace(
        choice=best, upper_bound=top, status="Optimal", multipliers={"budget": 0.5}, core_users=0
    )


class _Solver:
    """Stands in for a solver: records each call, answers with ``answer`` (default: brute)."""

    def __init__(self, answer=_brute, **changes):
        self.answer, self.changes, self.calls = answer, changes, []

    def __call__(self, problem, budget, constraints=None, **kw):
        assert len(self.calls) < 200, "the policy does not stop solving"
        self.calls.append({"problem": problem, "budget": budget, "constraints": constraints, **kw})
        return SimpleNamespace(**{**vars(self.answer(problem, budget)), **self.changes})


@pytest.fixture
def solvers(monkeypatch):
    """Both solvers stood in for by the brute force, each recording its calls."""
    import optimizer.planning.policies as policies

    stand_ins = {"pulp": _Solver(), "dual": _Solver()}
    monkeypatch.setattr(policies, "solve_milp", stand_ins["pulp"])
    monkeypatch.setattr(policies, "solve_dual", stand_ins["dual"])
    return stand_ins


def _nobody(problem, budget):
    return SimpleNamespace(
        choice=np.full(problem.n_users, -1), upper_bound=0.0, status="Optimal",
        multipliers={}, core_users=0,
    )  # fmt: skip


def test_auto_solver_is_exact_up_to_5000_users_then_dual(solvers):
    for name in solvers:
        solvers[name].answer = _nobody
    rules = Constraints(max_messages=4)
    for n, want in ((5000, "pulp"), (5001, "dual")):
        problem = build_problem(np.arange(n), np.zeros(n), np.zeros((n, 2)), HAND_MENU)
        plan = make_plan("optimal", problem, 1.0, _settings(seed=7, constraints=rules))
        assert plan.solver == want and len(solvers[want].calls) == 1
        assert solvers[want].calls[0]["constraints"] is rules
    assert solvers["pulp"].calls[0]["time_limit"] == 60.0
    assert solvers["dual"].calls[0]["seed"] == 7
    assert solvers["pulp"].calls[0]["budget"] == solvers["dual"].calls[0]["budget"] == 1.0
    named = make_plan("optimal", _hand(), 1.0, _settings(solver="pulp"))
    assert named.solver == "pulp" and solvers["pulp"].calls[-1]["time_limit"] == 600.0
    assert named.details == {"status": "Optimal"}
    dual = make_plan("optimal", _hand(), 1.0, _settings(solver="dual", seed=3))
    assert dual.solver == "dual" and solvers["dual"].calls[-1]["seed"] == 3
    assert dual.details == {"multipliers": {}, "core_users": 0}
    with pytest.raises(InputError) as info:
        make_plan("optimal", _hand(), 1.0, _settings(solver="magic"))
    assert (info.value.key, info.value.message) == ("solver", "must be one of auto, pulp, dual")


@pytest.mark.parametrize(
    ("status", "note"),
    [
        ("Feasible", "the exact solver stopped at its 600 s limit: the best plan found is kept, "
         "not proven optimal; the dual solver certifies a gap at any size"),
        ("Not Solved", "the exact solver ended with status Not Solved (time limit 600 s): no "
         "plan was found, so nobody is targeted"),
        ("Optimal", None),
    ],
)  # fmt: skip
def test_an_exact_solve_that_did_not_prove_optimality_leaves_a_note(solvers, status, note):
    """The note is a Notice, pointing at the policy's call of the solver."""
    import linecache
    import warnings

    solvers["pulp"].changes = {"status": status}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = make_plan("optimal", _hand(), 1.0, _settings(solver="pulp"))
    assert plan.details["status"] == status
    notes = [w for w in caught if issubclass(w.category, Notice)]
    assert [str(w.message) for w in notes] == ([] if note is None else [note])
    assert len(caught) == len(notes)
    for w in notes:
        assert "solve(problem)" in linecache.getline(w.filename, w.lineno)


def test_the_natural_screen_leaves_out_likely_buyers(solvers):
    """Users whose P(buy) exceeds the screen (ids 6 and 5) get nothing; the rest, at a budget
    that pays for everyone, all get a coupon."""
    free = make_plan("optimal", _hand(), 1000.0, _settings(solver="pulp"))
    assert (free.choice >= 0).all()
    plan = make_plan("optimal", _hand(), 1000.0, _settings(solver="pulp", natural_screen=0.125))
    assert _taken(plan) == [1, 2, 3, 4]
    assert plan.details["natural_screen"] == 0.125
    assert plan.problem.eligible.all()  # the plan's problem is the one given


def _floored(values, uplift):
    """One user (P(buy) 0.0625), both options, with the given objective values and uplifts (a
    money objective)."""
    p = 0.0625 + np.asarray(uplift)
    problem = build_problem(
        [1], [0.0625], [p], HAND_MENU, objective="gmv", sms_cost=0.0, basket=[100.0]
    )
    problem.value = np.array([values], dtype=np.float64)
    return problem


def test_a_conversion_floor_prices_conversions_until_the_plan_reaches_it(solvers):
    """Option A is worth 1 for 0.125 conversions, B 0.875 for 0.5: B wins once a conversion is
    worth more than 0.125 / 0.375 = 1/3. The price is bracketed in [0, 2] (the largest value
    per largest uplift) and bisected 24 times; the bound of value + mu x uplift, less mu x the
    floor, bounds the floored problem."""
    problem = _floored([1.0, 0.875], [0.125, 0.5])
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.5))
    assert plan.choice.tolist() == [1]
    price = plan.details["conversion_price"]
    assert 1 / 3 < price <= 1 / 3 + 2 / 2**24
    assert plan.details["conversion_floor"] == 0.5
    assert plan.upper_bound == pytest.approx(0.875, abs=1e-12)
    assert plan.upper_bound >= plan.value - 1e-12
    # A floor the plan already reaches (exactly) costs nothing.
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.125))
    assert plan.choice.tolist() == [0] and plan.details["conversion_price"] == 0.0
    assert plan.upper_bound == 1.0
    assert len(solvers["dual"].calls) == (1 + 1 + 24) + 1  # the first floor's, then one
    # A floor between the two: B again, at the same price.
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.25))
    assert plan.choice.tolist() == [1]
    assert 1 / 3 < plan.details["conversion_price"] <= 1 / 3 + 2 / 2**24


def test_a_conversion_floor_doubles_the_price_until_it_is_reached(solvers):
    """A is worth 10 for 0.25 conversions, B 1 for 0.5: the least price is 36; 20 (10 / 0.5)
    falls short, 40 reaches, and 24 halvings of [20, 40] end within 20 / 2^24 above 36."""
    problem = _floored([10.0, 1.0], [0.25, 0.5])
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.5))
    assert plan.choice.tolist() == [1]
    assert 36.0 < plan.details["conversion_price"] <= 36.0 + 20.0 / 2**24
    assert plan.upper_bound == pytest.approx(1.0, abs=1e-9)
    assert len(solvers["dual"].calls) == 1 + 2 + 24


def test_a_conversion_floor_out_of_reach_returns_the_most_converting_plan(solvers):
    problem = _floored([1.0, 0.875], [0.125, 0.5])
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.75))
    assert plan.choice.tolist() == [1]
    assert plan.details["conversion_price"] is None
    assert plan.details["conversion_floor"] == 0.75
    # The bound of that solve is in conversions, not in the objective's unit: no gap claimed.
    assert plan.upper_bound is None and plan.gap is None


def test_a_conversion_floor_without_a_bound_gives_no_bound(solvers):
    solvers["dual"].changes = {"upper_bound": None}
    problem = _floored([1.0, 0.875], [0.125, 0.5])
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.5))
    assert plan.choice.tolist() == [1] and plan.upper_bound is None and plan.gap is None


def test_a_conversion_floor_is_ignored_when_the_objective_is_conversions(solvers):
    plan = make_plan("optimal", _hand(), 10.0, _settings(solver="dual", min_conversions=100.0))
    assert "conversion_floor" not in plan.details and len(solvers["dual"].calls) == 1


def _three(**kw):
    """Conversions 0.5, 0.25 and 0.125 for 5, 2.5 and 1.25 (one coupon on the menu)."""
    menu = Menu(denomination=(HAND_MENU.denomination[0],))
    return build_problem([1, 2, 3], np.zeros(3), [[0.5], [0.25], [0.125]], menu, sms_cost=0.0, **kw)


def test_a_target_spends_the_least_budget_that_reaches_it(solvers):
    """0.375 conversions: ids 2 and 3 for 3.75, not id 1 alone for 5. Ten halvings of the
    budget of 10 reach 1/1000 of it; 3.75 is on their grid."""
    plan = make_plan("optimal", _three(), 10.0, _settings(solver="pulp", target=0.375))
    assert _taken(plan) == [2, 3]
    assert plan.details == {
        "status": "Optimal", "target": 0.375, "target_reached": True, "spend_budget": 3.75,
        "target_steps": 10,
    }  # fmt: skip
    assert plan.solver == "pulp" and plan.upper_bound == 0.375
    # Everything (0.875 for 8.75) reaches exactly what the whole budget does.
    plan = make_plan("optimal", _three(), 10.0, _settings(solver="pulp", target=0.875))
    assert _taken(plan) == [1, 2, 3]
    assert plan.details["target_reached"] and plan.details["spend_budget"] == 8.75


def test_a_target_out_of_reach_spends_the_whole_budget(solvers):
    plan = make_plan("optimal", _three(), 10.0, _settings(solver="pulp", target=1.0))
    assert _taken(plan) == [1, 2, 3]
    assert plan.details["target_reached"] is False
    assert (plan.details["spend_budget"], plan.details["target_steps"]) == (10.0, 0)
    assert len(solvers["pulp"].calls) == 1
    # No budget, no target: nothing to bisect.
    plan = make_plan("optimal", _three(), 0.0, _settings(solver="pulp", target=0.0))
    assert plan.details["target_reached"] and plan.details["target_steps"] == 0
    # Only the optimal policy has a target.
    plan = make_plan("v1", _three(), 10.0, PolicySettings(denomination="10off99", target=1.0))
    assert "target" not in plan.details


@pytest.mark.parametrize("budget", [-1.0, float("nan"), float("inf")])
def test_make_plan_refuses_a_budget_that_is_not_a_finite_amount(budget):
    with pytest.raises(InputError) as info:
        make_plan("v1", _three(), budget, _settings())
    assert (info.value.key, info.value.message) == ("budget", "must be a finite amount >= 0")


def test_make_plan_refuses_an_unknown_policy_and_broken_constraints():
    with pytest.raises(InputError) as info:
        make_plan("magic", _three(), 1.0, _settings())
    assert info.value.key == "policies"
    assert info.value.message == (
        "unknown policy 'magic'; expected one of optimal, manual, v1, v2, uplift, random"
    )
    with pytest.raises(InputError) as info:
        make_plan("v1", _three(), 1.0, _settings(constraints=Constraints(max_messages=-1)))
    assert info.value.key == "constraints.max_messages"
    assert _taken(make_plan("v1", _three(), 0.0, _settings())) == []


def test_make_plan_solves_once_without_an_overrun_rule(solvers):
    plan = make_plan("optimal", _three(), 10.0, _settings(solver="pulp"))
    assert len(solvers["pulp"].calls) == 1 and "planning_budget" not in plan.details
    assert isinstance(plan.seconds, float) and 0.0 <= plan.seconds < 60.0
    assert (plan.policy, plan.budget, plan.upper_bound) == ("optimal", 10.0, 0.875)
    assert plan.choice.dtype == np.int16


def test_the_overrun_rule_replans_at_a_lowered_budget(solvers):
    """Everyone (spend 8.75, sd sqrt(54.6875) = 7.4) overruns 10 at 5% past any plan but the
    empty one; held to a cap of 20 instead, the planning budget is 20 - 1.645 x 7.4 and buys
    ids 1 and 2."""
    z = NormalDist().inv_cdf(0.95)
    settings = _settings(solver="pulp", overrun_risk=0.05)
    plan = make_plan("optimal", _three(), 10.0, settings)
    assert _taken(plan) == [] and plan.budget == 10.0
    assert plan.details["planning_budget"] == 0.0
    assert (plan.details["overrun_risk"], plan.details["overrun_tolerance"]) == (0.05, 0.0)
    assert [c["budget"] for c in solvers["pulp"].calls] == [10.0, 0.0]
    capped = make_plan("optimal", _three(), 10.0, settings, cap=20.0)
    assert _taken(capped) == [1, 2]
    assert capped.details["planning_budget"] == pytest.approx(20.0 - z * math.sqrt(54.6875))
    assert capped.details["status"] == "Optimal" and capped.budget == 10.0


def _listed(p, p0, basket):
    """Users 1.. with 10off99 at P(buy | coupon) p (cost 10 p), P(buy) p0 and the baskets."""
    n = len(p)
    return build_problem(
        np.arange(1, n + 1), np.asarray(p0, dtype=float),
        np.column_stack([p, np.ones(n)]), HAND_MENU, objective="gmv", sms_cost=0.0,
        basket=np.asarray(basket, dtype=float),
    )  # fmt: skip


def test_the_refill_counts_only_users_not_yet_in_the_plan():
    """Costs 2.5, 2.5, 2.5, 1.25; at ROI >= 40 only id 2 adds to the shortfall (75.25). The
    budget of 8 ends the list at id 4; id 2 leaves, and the refill fits id 4 (1.25) in the 3
    left beside ids 1 and 3, whose coupons it does not count a second time."""
    problem = _listed([0.25, 0.25, 0.25, 0.125], [0, 0, 0, 0], [400, 99, 400, 400])
    plan = make_plan("v1", problem, 8.0, _settings(constraints=Constraints(min_roi=40.0)))
    assert _taken(plan) == [1, 3, 4]


def test_the_refill_gives_up_after_16_users_who_do_not_fit():
    """At ROI >= 10, id 1 (GMV 80 for 5) carries one of the next 16 users (2.5 each, no
    uplift), not two: the 15 lowest-ranked leave. The refill skips them and id 18 (no uplift
    either), 16 users in all, and stops there, before id 19, who would fit."""
    n = 19
    p = [0.5] + [0.25] * 16 + [0.125, 0.0625]
    p0 = [0.0] + [0.25] * 16 + [0.125, 0.0]
    basket = [160.0] + [100.0] * 17 + [400.0]
    settings = _settings(constraints=Constraints(min_roi=10.0))
    plan = make_plan("v1", _listed(p, p0, basket), 45.5, settings)
    assert _taken(plan) == [1, 2]
    assert plan.choice.size == n


def test_a_lowered_manual_plan_still_ranks_by_the_user_table():
    """The overrun rule re-plans the manual list at a lower budget (everyone overruns 10 at
    5%, as in the optimal case above: down to 0), with the same table."""
    users = pd.DataFrame({"score": [5.0, 4.0, 3.0]})
    settings = PolicySettings(denomination="10off99", rank_by="score", overrun_risk=0.05)
    plan = make_plan("manual", _three(), 10.0, settings, users=users)
    assert plan.details["planning_budget"] == 0.0 and _taken(plan) == []
    assert plan.details["denomination"] == "10off99"


def test_make_plan_checks_the_constraints_against_the_problem():
    rules = Constraints(max_per_denomination={"nope": 1})
    with pytest.raises(InputError) as info:
        make_plan("v1", _three(), 1.0, _settings(constraints=rules))
    assert info.value.key == "constraints.max_per_denomination"
    assert info.value.message == "denomination 'nope' is not on the menu (10off99)"


def test_a_conversion_floor_past_2_to_the_40_of_the_scale_is_out_of_reach(solvers):
    """A is worth 3, B -1; B converts 2^-40 more: the least price, 4 x 2^40, is past the 40
    doublings of the scale 6 (3 / 0.5), so the floor counts as out of reach."""
    problem = _floored([3.0, -1.0], [0.5 - 2.0**-40, 0.5])
    plan = make_plan("optimal", problem, 100.0, _settings(solver="dual", min_conversions=0.5))
    assert plan.details["conversion_price"] is None
    assert plan.choice.tolist() == [1]
    assert len(solvers["dual"].calls) == 1 + 40 + 1
