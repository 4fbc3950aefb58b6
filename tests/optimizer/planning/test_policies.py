"""Policies on the synthetic world: the optimal plan beats every baseline on the truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from optimizer.errors import InputError
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
from optimizer.planning.policies import TARGET_BUDGET_TOLERANCE, make_plan
from optimizer.segments import rfm_score


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
