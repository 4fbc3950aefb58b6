"""Uplift shrinkage by half-sample variance: recounted with numpy, saved whole, refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optimizer.errors import InputError
from optimizer.io.atomic import write_manifest
from optimizer.io.campaign_log import training_rows, user_split
from optimizer.models import ConversionModels
from simulator.world.generation import build_world


@pytest.fixture(scope="module")
def small_world(small_scenario):
    return build_world(small_scenario.with_overrides(users=20_000))


@pytest.fixture(scope="module")
def shrunk(small_world):
    w = small_world
    return ConversionModels(uncertainty=3, max_categories=20).fit(
        w.history, w.users, w.scenario.menu
    )


def test_shrunk_uplift_is_the_empirical_bayes_posterior_mean(shrunk, small_world):
    """Recount: v = variance of the half-sample uplifts (ddof 1), s2 and m from the training
    customers, shrunk = m + s2 / (s2 + v) (raw - m); never farther from m than the raw one."""
    users = small_world.users.iloc[:3_000]
    menu = small_world.scenario.menu
    p0 = shrunk.predict_natural(users).astype(np.float64)
    raw = shrunk.coupon_.predict_proba(users, menu).astype(np.float64) - p0[:, None]
    halves = np.stack(
        [h.predict_proba(users, menu) - h.predict_natural(users)[:, None] for h in shrunk.halves_]
    ).astype(np.float64)
    assert halves.shape[0] == 3
    v = halves.var(axis=0, ddof=1)
    m = np.array(shrunk.shrinkage_["mean"])[None, :]
    s2 = np.array(shrunk.shrinkage_["signal_variance"])[None, :]
    expected = np.clip(p0[:, None] + m + s2 / (s2 + v) * (raw - m), 0, 1)
    got = shrunk.predict_coupon(users, menu).astype(np.float64)
    # The menu's monotone closure only raises; where it did not act the recount is exact.
    untouched = np.isclose(got, expected, atol=2e-6)
    assert untouched.mean() > 0.9 and (got >= expected - 2e-6).all()
    shrunk_uplift, m_b = got - p0[:, None], np.broadcast_to(m, got.shape)
    rows = untouched
    assert (np.abs(shrunk_uplift - m_b)[rows] <= np.abs(raw - m_b)[rows] + 2e-6).all()
    assert (got >= 0).all() and (got <= 1).all()
    # The shrinkage is real: users with more variance move further toward the mean.
    moved = np.abs(raw - shrunk_uplift)[rows]
    assert np.corrcoef(moved, (v / (s2 + v) * np.abs(raw - m))[rows])[0, 1] > 0.95


def test_the_prior_is_recounted_from_the_training_customers(shrunk, small_world):
    """m: mean raw uplift over the training customers (the same user split); s2: the raw
    uplifts' variance less the mean half-sample variance, per coupon."""
    w = small_world
    menu = w.scenario.menu
    rows = training_rows(w.history, w.users, segment=None)
    rows = rows[~user_split(rows["user_id"].to_numpy(), shrunk.test_share, 0)]
    people = rows.drop_duplicates("user_id")[list(shrunk.features)]
    model = shrunk.coupon_
    raw = model.predict_proba(people, menu).astype(np.float64)
    raw -= model.predict_natural(people).astype(np.float64)[:, None]
    halves = np.stack(
        [h.predict_proba(people, menu) - h.predict_natural(people)[:, None] for h in shrunk.halves_]
    ).astype(np.float64)
    v = halves.var(axis=0, ddof=1)
    np.testing.assert_allclose(shrunk.shrinkage_["mean"], raw.mean(axis=0), rtol=1e-5, atol=1e-7)
    s2 = np.maximum(raw.var(axis=0) - v.mean(axis=0), 1e-12)
    np.testing.assert_allclose(shrunk.shrinkage_["signal_variance"], s2, rtol=1e-4, atol=1e-9)
    assert shrunk.shrinkage_["names"] == list(menu.names)


def test_saved_shrinkage_round_trips_and_a_missing_prior_is_refused(shrunk, small_world, tmp_path):
    users = small_world.users.iloc[:500]
    shrunk.save(tmp_path / "m")
    assert (tmp_path / "m" / "halves" / "3").is_dir() and "halves/" in shrunk.saved_entries()
    again = ConversionModels.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_coupon(users), shrunk.predict_coupon(users))
    meta = json.loads((tmp_path / "m" / "models.json").read_text())
    meta["shrinkage"] = None
    (tmp_path / "m" / "models.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="changed"):  # the manifest catches the edit
        ConversionModels.load(tmp_path / "m")
    write_manifest(tmp_path / "m")  # a consistent folder that still lacks the prior
    with pytest.raises(InputError, match="no shrinkage"):
        ConversionModels.load(tmp_path / "m")


def test_uncertainty_needs_two_halves_and_a_single_model(small_world):
    w = small_world
    for params in (
        {"uncertainty": 1},
        {"uncertainty": 2, "architecture": "two_models"},
        {"uncertainty": 2, "ensemble": 2},
    ):
        with pytest.raises(InputError, match="uncertainty"):
            ConversionModels(**params).fit(w.history, w.users, w.scenario.menu)
