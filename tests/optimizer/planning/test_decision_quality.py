"""Decision quality at a small size: plans recounted against the world's truth, vs an oracle.

The small world's models plan; the truth (natural, per-coupon conversion and redemption
probabilities) is recounted here with plain numpy, and the same solver fed the truth (the
oracle) bounds every plan's true value at the plan's own true spend
(``benchmarks/decision_quality.py`` measures the shares at larger sizes).
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.choices import Policy
from optimizer.io.contract import coupon_column, redeem_column
from optimizer.planning import Overrides, plan_campaign, resolve_request
from optimizer.planning.policies import make_plan
from simulator.workflows import score_scenario


@pytest.fixture(scope="module")
def scored(small_scenario):
    return score_scenario(small_scenario)


def _recount(truth, ids, menu, sms_cost, choice):
    """True incremental conversions and true expected spend of ``choice`` (-1 for none)."""
    t = truth.set_index("user_id").loc[ids]
    p0 = t["p_natural"].to_numpy()
    p = t[[coupon_column(n) for n in menu.names]].to_numpy()
    r = t[[redeem_column(n) for n in menu.names]].to_numpy()
    rows = np.flatnonzero(choice >= 0)
    k = choice[rows]
    uplift = float((p[rows, k] - p0[rows]).sum())
    spend = float(sms_cost * rows.size + (p[rows, k] * r[rows, k] * menu.face_values[k]).sum())
    return uplift, spend


def test_every_plan_stays_under_the_oracle_at_its_true_spend(small_scenario, scored):
    base = resolve_request(small_scenario).with_natural_threshold(scored.natural_threshold)
    candidates = base.candidates(scored.scores, scored.users)
    ids = candidates.scores["user_id"].to_numpy()
    budget = 0.72 * len(ids)
    request = resolve_request(
        small_scenario, Overrides(budget=budget, policies=("optimal", "random", "manual"))
    ).with_natural_threshold(scored.natural_threshold)
    plans = plan_campaign(candidates, request)
    menu = small_scenario.menu
    columns = [*map(coupon_column, menu.names), *map(redeem_column, menu.names)]
    oracle_candidates = base.candidates(
        scored.truth[["user_id", "p_natural", *columns]], scored.users
    )
    assert np.array_equal(oracle_candidates.scores["user_id"].to_numpy(), ids)
    truth_problem = request.problem(oracle_candidates)
    # The planner's formulas on the truth agree with the recount, option by option.
    for k in range(len(menu)):
        choice = np.full(len(ids), k)
        uplift, spend = _recount(scored.truth, ids, menu, request.sms_cost, choice)
        assert truth_problem.value[:, k].sum() == pytest.approx(uplift, rel=1e-6)
        assert truth_problem.cost[:, k].sum() == pytest.approx(spend, rel=1e-6)
    settings = request.settings()
    for name, plan in plans.items():
        uplift, spend = _recount(scored.truth, ids, menu, request.sms_cost, plan.choice)
        oracle = make_plan(Policy.OPTIMAL, truth_problem, spend, settings)
        bound = oracle.upper_bound if oracle.upper_bound is not None else oracle.value
        assert uplift <= bound + 1e-6 * max(abs(bound), 1.0), name
        # The oracle's own plan, recounted, spends within its budget and earns its value.
        o_uplift, o_spend = _recount(scored.truth, ids, menu, request.sms_cost, oracle.choice)
        assert o_spend <= spend * (1 + 1e-6) and o_uplift == pytest.approx(oracle.value, rel=1e-6)
