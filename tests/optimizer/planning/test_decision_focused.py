"""Decision-focused fine-tuning: exact value and cost terms, a copy of the models, refusals."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from optimizer.choices import Objective
from optimizer.errors import InputError
from optimizer.io.campaign_log import training_rows, user_split
from optimizer.io.contract import coupon_column, redeem_column
from optimizer.models import ConversionModels
from optimizer.planning import (
    CampaignConfig,
    Candidates,
    Overrides,
    decision_focused_models,
    resolve_request,
    select_candidates,
)
from optimizer.planning.decision_focused import _terms


@pytest.fixture(scope="module")
def setting(world, default_models):
    candidates = select_candidates(
        default_models.predict(world.users), world.users, world.scenario.menu, segments=["dormant"]
    )
    request = resolve_request(CampaignConfig(), Overrides(budget=0.72 * len(candidates)))
    return candidates, request.with_models(default_models)


@pytest.mark.parametrize("objective", ["conversions", "gmv", "profit"])
def test_terms_reproduce_the_planners_value_and_cost(world, objective):
    """value = a + b p_k + c p0 and cost = d + e p_k, exactly, at probabilities never used to
    derive the terms (with a redemption model every objective is affine in them)."""
    rng = np.random.default_rng(3)
    menu = world.scenario.menu
    users = world.users.iloc[:200].reset_index(drop=True)
    request = resolve_request(CampaignConfig(), Overrides(objective=objective))
    scores = pd.DataFrame({"user_id": users["user_id"], "p_natural": rng.uniform(0, 0.3, 200)})
    for name in menu.names:
        scores[coupon_column(name)] = rng.uniform(0, 0.6, 200)
        scores[redeem_column(name)] = rng.uniform(0.1, 0.9, 200).astype(np.float32)
    terms = _terms(request, scores, users, menu)
    problem = request.problem(Candidates(scores=scores, users=users, menu=menu))
    p0, p = problem.p0[:, None], problem.p
    np.testing.assert_allclose(terms.a + terms.b * p + terms.c * p0, problem.value, atol=1e-9)
    np.testing.assert_allclose(terms.d + terms.e * p, problem.cost, atol=1e-9)
    # Independent recount of the conversions objective: value p_k - p0, cost s + p_k r_k f_k.
    if objective == "conversions":
        np.testing.assert_allclose(terms.b, 1.0)
        np.testing.assert_allclose(terms.c, -1.0)
        redeem = scores[[redeem_column(n) for n in menu.names]].to_numpy(np.float64)
        np.testing.assert_allclose(terms.e, redeem * menu.face_values[None, :], rtol=1e-6)


def test_fine_tuning_returns_changed_copies_and_leaves_the_models(
    world, default_models, setting, monkeypatch
):
    """With no held-out customers the last epoch is kept: the network changes, the models
    passed in do not, and the same call gives the same network."""
    import optimizer.planning.decision_focused as module

    candidates, request = setting
    users = world.users.iloc[:2_000]
    before = default_models.predict(users)
    monkeypatch.setattr(module, "user_split", lambda ids, share, seed: np.zeros(len(ids), bool))
    tuned = decision_focused_models(
        default_models, world.history, world.users, candidates, request, weight=5.0, epochs=2
    )
    pd.testing.assert_frame_equal(default_models.predict(users), before)
    after = tuned.predict(users)
    assert list(after.columns) == list(before.columns)
    assert not np.allclose(after["p_natural"], before["p_natural"])
    info = tuned.summary_["decision_focused"]
    assert info["price"] > 0 and len(info["history"]["policy_value"]) == 2
    assert info["best_epoch"] == 2 and info["history"]["validation_value"] == []
    assert info["held_out_rows"] == 0 and "decision_focused" not in default_models.summary_
    again = decision_focused_models(
        default_models, world.history, world.users, candidates, request, weight=5.0, epochs=2
    )
    pd.testing.assert_frame_equal(again.predict(users), after)


def test_the_models_held_out_customers_pick_the_epoch(world, default_models, setting):
    """The epoch kept is the best decision value on the models' own holdout (recounted: the
    customers user_split holds out of the training rows), the two-stage network competing."""
    candidates, request = setting
    users = world.users.iloc[:2_000]
    held = decision_focused_models(
        default_models, world.history, world.users, candidates, request, weight=5.0, epochs=3
    )
    info = held.summary_["decision_focused"]
    rows = training_rows(world.history, world.users, segment=["dormant"])
    holdout = user_split(rows["user_id"].to_numpy(), default_models.test_share, 0)
    assert info["held_out_rows"] == int(holdout.sum()) > 0
    assert info["rows"] == int((~holdout).sum())
    values = info["history"]["validation_value"]
    assert len(values) == 4 and info["best_epoch"] == int(np.argmax(values))
    same = np.allclose(held.predict(users)["p_natural"], default_models.predict(users)["p_natural"])
    assert same == (info["best_epoch"] == 0)
    # The price is the plan's marginal return at its planning budget (below the budget).
    assert info["planning_budget"] < info["budget"]


def test_fine_tuning_refuses_what_it_cannot_do(world, default_models, setting):
    candidates, request = setting
    with pytest.raises(InputError, match="'discount'"):
        decision_focused_models(
            default_models, world.history.drop(columns=["discount"]), world.users, candidates,
            request,
        )  # fmt: skip
    other = ConversionModels(architecture="two_models")
    with pytest.raises(InputError, match="shared_trunk"):
        decision_focused_models(other, world.history, world.users, candidates, request)
    with pytest.raises(InputError, match="epochs"):
        decision_focused_models(
            default_models, world.history, world.users, candidates, request, epochs=0
        )
    ensemble = copy.copy(default_models)
    ensemble.ensemble = 3
    with pytest.raises(InputError, match="one network"):
        decision_focused_models(ensemble, world.history, world.users, candidates, request)
    no_redemption = copy.copy(default_models)
    no_redemption.redemption_ = None
    profit = replace(request, objective=Objective.PROFIT)
    with pytest.raises(InputError, match="needs a redemption model"):
        decision_focused_models(no_redemption, world.history, world.users, candidates, profit)
