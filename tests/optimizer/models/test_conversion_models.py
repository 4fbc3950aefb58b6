"""The two conversion models against the synthetic world's truth, and their contracts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from optimizer.errors import InputError
from optimizer.evaluation.metrics import true_uplift_at_k
from optimizer.io.campaign_log import training_rows, user_split
from optimizer.io.contract import coupon_column, redeem_column
from optimizer.io.menu import Denomination, Menu
from optimizer.models.boosted import BoostedConversionModel
from optimizer.models.conversion import (
    ARCHITECTURES,
    BOOSTED,
    FEATURES,
    ConversionModels,
    load_model,
)
from optimizer.models.coupon import CouponConversionModel, enforce_menu_monotonicity
from optimizer.models.natural import NaturalConversionModel
from optimizer.models.shared_trunk import SharedTrunkModel


@pytest.fixture(scope="session")
def trained(world) -> dict[str, ConversionModels]:
    """Both architectures trained the article's way: on dormant customers of the randomized log."""
    return {
        architecture: ConversionModels(architecture=architecture, segment=["dormant"]).fit(
            world.history, world.users, world.scenario.menu
        )
        for architecture in ARCHITECTURES
    }


@pytest.fixture(params=ARCHITECTURES)
def dormant_models(trained, request) -> ConversionModels:
    return trained[request.param]


@pytest.fixture(scope="session")
def dormant(world):
    mask = (world.users["lifecycle_stage"] == "dormant").to_numpy()
    return world.users[mask].reset_index(drop=True), world.truth[mask].reset_index(drop=True)


@pytest.fixture(scope="session")
def coupon_rows(world):
    rows = training_rows(world.history, world.users, segment=["dormant"])
    return rows[rows["denomination"] != "none"].reset_index(drop=True)


def test_natural_model_tracks_the_true_natural_probability(dormant_models, dormant):
    users, truth = dormant
    p0 = dormant_models.predict_natural(users)
    assert stats.pearsonr(p0, truth["p_natural"]).statistic > 0.7
    # Calibrated: the mean prediction is close to the mean true probability.
    assert abs(p0.mean() - truth["p_natural"].mean()) < 0.02


def test_uplift_ranking_beats_random_and_v1_on_true_incremental_conversions(
    dormant_models, dormant, world
):
    users, truth = dormant
    scores = dormant_models.predict(users)
    p0 = scores["p_natural"].to_numpy()
    for name in world.scenario.menu.names:
        pk = scores[coupon_column(name)].to_numpy()
        true_lift = (truth[coupon_column(name)] - truth["p_natural"]).to_numpy()
        ours = true_uplift_at_k(true_lift, pk - p0, 0.2)
        v1 = true_uplift_at_k(true_lift, pk, 0.2)  # the article's first version
        random = 0.2 * true_lift.sum()
        assert ours > 1.6 * random, name
        assert ours > 1.4 * v1, name


def test_predictions_are_probabilities_of_the_right_shape(dormant_models, dormant, world):
    users, _ = dormant
    p = dormant_models.predict_coupon(users.iloc[:500])
    assert p.shape == (500, len(world.scenario.menu)) and p.dtype == np.float32
    assert ((p >= 0) & (p <= 1)).all()
    scores = dormant_models.predict(users.iloc[:500])
    names = world.scenario.menu.names
    assert list(scores.columns) == [
        "user_id",
        "p_natural",
        *(coupon_column(n) for n in names),
        *(redeem_column(n) for n in names),
    ]
    redeem = scores[[redeem_column(n) for n in names]].to_numpy()
    assert redeem.dtype == np.float32 and ((redeem >= 0) & (redeem <= 1)).all()


def test_redemption_model_recovers_the_worlds_redemption(dormant_models, dormant, world):
    """P(redeem | converted): a natural buyer redeems only when the basket reaches the
    threshold, so the world's share falls steeply with the threshold; the model must find the
    level per denomination (converter-weighted) and rank users."""
    users, truth = dormant
    scores = dormant_models.predict(users)
    shares, fitted = [], []
    for name in world.scenario.menu.names:
        predicted = scores[redeem_column(name)].to_numpy()
        true = truth[redeem_column(name)].to_numpy()
        weight = truth[coupon_column(name)].to_numpy()
        shares.append(np.average(true, weights=weight))
        fitted.append(np.average(predicted, weights=weight))
        assert abs(fitted[-1] - shares[-1]) < 0.08, name
        assert np.corrcoef(predicted, true)[0, 1] > 0.3, name
    # The menu is ordered by threshold: redemption falls along it, in the world and the model.
    assert shares[0] > shares[-1] + 0.3
    assert (np.diff(fitted) < 0).all()


def _grid_menu(faces, thresholds) -> Menu:
    return Menu(
        denomination=tuple(
            Denomination(name=f"d{i}", face_value=f, threshold=t)
            for i, (f, t) in enumerate(zip(faces, thresholds, strict=True))
        )
    )


def test_shared_head_is_monotone_on_any_denomination(dormant_models, dormant):
    if dormant_models.architecture in BOOSTED:
        pytest.skip("a meta-learner scores only the treatments it was trained on")
    users, _ = dormant
    sample = users.sample(2_000, random_state=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        threshold = float(rng.uniform(30, 600))
        faces = np.sort(rng.uniform(1, threshold, 6))
        up = dormant_models.coupon_.predict_proba(sample, _grid_menu(faces, [threshold] * 6))
        assert (np.diff(up, axis=1) >= -1e-6).all()
        face = float(rng.uniform(1, 50))
        thresholds = np.sort(rng.uniform(face, 800, 6))
        down = dormant_models.coupon_.predict_proba(sample, _grid_menu([face] * 6, thresholds))
        assert (np.diff(down, axis=1) <= 1e-6).all()


def test_new_denomination_is_scored_without_retraining(dormant_models, dormant, world):
    users, _ = dormant
    menu = Menu(
        denomination=(
            *world.scenario.menu.denomination,
            Denomination(name="15off99", face_value=15, threshold=99),
        )
    )
    if dormant_models.architecture in BOOSTED:
        with pytest.raises(InputError, match="'15off99' was never sent"):
            dormant_models.predict(users.iloc[:10], menu)
        return
    menu = Menu(
        denomination=(
            *world.scenario.menu.denomination,
            Denomination(name="15off99", face_value=15, threshold=99),
        )
    )
    p = dormant_models.coupon_.predict_proba(users.iloc[:1000], menu)
    assert p.shape == (1000, 5)
    # 15 off 99 is more generous than 10 off 99: never less likely to convert.
    assert (p[:, 4] >= p[:, menu.index("10off99")] - 1e-6).all()


def test_per_denomination_heads_are_corrected_to_be_monotone(coupon_rows):
    # A menu where one coupon dominates another (same threshold, more off).
    menu = Menu(
        denomination=(
            Denomination(name="10off99", face_value=10, threshold=99),
            Denomination(name="20off99", face_value=20, threshold=99),
        )
    )
    rows = coupon_rows[coupon_rows["denomination"].isin(["10off99", "20off199"])].copy()
    rows["denomination"] = rows["denomination"].replace({"20off199": "20off99"})
    model = CouponConversionModel(head="per_denomination", max_epochs=3).fit(
        rows[list(FEATURES)], rows["denomination"].to_numpy(), rows["converted"], menu=menu
    )
    p = model.predict_proba(rows[list(FEATURES)].iloc[:2000])
    assert (p[:, 1] >= p[:, 0]).all()
    raw = model.calibrator_.transform(model.decision_function(rows[list(FEATURES)].iloc[:2000]))
    assert np.allclose(p[:, 1], np.maximum(raw[:, 0], raw[:, 1]), atol=1e-6)
    with pytest.raises(InputError, match="was not in training"):
        model.predict_proba(
            rows.iloc[:5], Menu(denomination=(Denomination(name="x", face_value=1, threshold=2),))
        )


def test_enforce_menu_monotonicity_closure():
    menu = _grid_menu([5, 10, 10, 20], [49, 99, 49, 99])
    # d2 (10 off 49) dominates d0 (5 off 49) and d1 (10 off 99); d3 dominates d1.
    p = np.array([[0.5, 0.4, 0.1, 0.2]])
    out = enforce_menu_monotonicity(p, menu)
    assert out.tolist() == [[0.5, 0.4, 0.5, 0.4]]


def test_fit_is_deterministic_and_seeded(coupon_rows, world):
    X = coupon_rows[list(FEATURES)].iloc[:4000]
    y = coupon_rows["converted"].iloc[:4000].to_numpy()
    a = NaturalConversionModel(max_epochs=3, random_state=3).fit(X, y).predict_proba(X)
    torch.rand(17)  # whatever else used torch's global generator in between
    b = NaturalConversionModel(max_epochs=3, random_state=3).fit(X, y).predict_proba(X)
    c = NaturalConversionModel(max_epochs=3, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_and_load_round_trip(dormant_models, dormant, tmp_path):
    users, _ = dormant
    dormant_models.save(tmp_path / "m")
    loaded = ConversionModels.load(tmp_path / "m")
    pd.testing.assert_frame_equal(
        loaded.predict(users.iloc[:3000]), dormant_models.predict(users.iloc[:3000])
    )
    if dormant_models.architecture == "shared_trunk":
        assert isinstance(load_model(tmp_path / "m" / "shared_trunk"), SharedTrunkModel)
        return
    if dormant_models.architecture in BOOSTED:
        assert isinstance(load_model(tmp_path / "m" / "boosted"), BoostedConversionModel)
        assert dormant_models.saved_entries()[0] == "boosted/"
        return
    assert isinstance(load_model(tmp_path / "m" / "natural"), NaturalConversionModel)
    assert isinstance(load_model(tmp_path / "m" / "coupon"), CouponConversionModel)
    with pytest.raises(InputError, match="not a saved model"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="holds a CouponConversionModel"):
        NaturalConversionModel.load(tmp_path / "m" / "coupon")


def test_calibration_never_worsens_validation_log_loss(dormant_models):
    """Platt scaling contains the identity, so it cannot worsen the log-loss of the rows it is
    fitted on: each model's own validation rows, or for the shared-trunk model (one map for
    both outputs) the natural and coupon validation rows pooled. (A map the likelihood-ratio
    test rejects is the identity: equal up to the float32 of the raw probabilities.)"""
    qualities = dormant_models.validation_quality()
    shared = dormant_models.architecture == "shared_trunk"
    for quality in qualities:
        if shared and quality["model"] in ("natural", "coupon"):
            continue
        before = quality["before_calibration"]["log_loss"]
        after = quality["after_calibration"]["log_loss"]
        assert after <= before + 1e-7, quality["model"]
    if shared:
        pooled = {
            when: sum(
                q[when]["log_loss"] * q[when]["rows"]
                for q in qualities
                if q["model"] in ("natural", "coupon")
            )
            for when in ("before_calibration", "after_calibration")
        }
        assert pooled["after_calibration"] <= pooled["before_calibration"] + 1e-6


@pytest.mark.parametrize("calibration", ["isotonic", "none"])
def test_other_calibrations(coupon_rows, calibration):
    X = coupon_rows[list(FEATURES)].iloc[:3000]
    y = coupon_rows["converted"].iloc[:3000].to_numpy()
    p = NaturalConversionModel(max_epochs=2, calibration=calibration).fit(X, y).predict_proba(X)
    assert ((p >= 0) & (p <= 1)).all()


def test_missing_values_and_unseen_labels_are_handled(dormant_models, dormant):
    users, _ = dormant
    odd = users.iloc[:50].copy()
    odd["age"] = np.nan
    odd["avg_order_value"] = np.nan
    odd["region"] = pd.Categorical(["atlantis"] * 50)
    p0 = dormant_models.predict_natural(odd)
    p = dormant_models.predict_coupon(odd)
    assert np.isfinite(p0).all() and np.isfinite(p).all()


def test_user_split_is_stable_and_close_to_the_share():
    ids = np.arange(1, 100_001)
    test = user_split(ids, 0.2, seed=0)
    assert abs(test.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(test[:500], user_split(ids[:500], 0.2, seed=0))
    assert not np.array_equal(test, user_split(ids, 0.2, seed=1))


def test_training_needs_both_arms(world):
    log = world.history[world.history["denomination"] != "none"]
    with pytest.raises(InputError, match="no-coupon arm"):
        ConversionModels(test_share=0.0).fit(log, world.users, world.scenario.menu)
    with pytest.raises(InputError, match="unknown segment 'sleepy'"):
        ConversionModels(segment=["sleepy"]).fit(world.history, world.users, world.scenario.menu)


def test_shared_trunk_beats_two_models_on_the_truth(world, dormant, trained):
    """The measured reason for the default architecture (see README)."""
    users, truth = dormant
    captured = {}
    for architecture, models in trained.items():
        scores = models.predict(users)
        total = 0.0
        for name in world.scenario.menu.names:
            lift = (truth[coupon_column(name)] - truth["p_natural"]).to_numpy()
            total += true_uplift_at_k(
                lift, scores[coupon_column(name)].to_numpy() - scores["p_natural"].to_numpy(), 0.2
            )
        captured[architecture] = total
    assert captured["shared_trunk"] > captured["two_models"]


@pytest.mark.parametrize("architecture", ["shared_trunk", "s_learner"])
def test_an_ensemble_averages_its_members_and_round_trips(small_scenario, architecture, tmp_path):
    from simulator.world.generation import build_world

    world = build_world(small_scenario)
    users = world.users.iloc[:500]
    one = ConversionModels(architecture=architecture, coupon_params={"max_epochs": 3})
    three = ConversionModels(architecture=architecture, ensemble=3, coupon_params={"max_epochs": 3})
    one.fit(world.history, world.users, world.scenario.menu)
    three.fit(world.history, world.users, world.scenario.menu)
    # The first member is the single model (same seed, same rows); the others add their seeds.
    assert len(three.members_) == 2
    seeds = [m.random_state for m in (three.coupon_, *three.members_)]
    assert seeds == [0, 1, 2]
    # Recount the average from the members themselves.
    members = [three.coupon_, *three.members_]
    mean_p = np.mean([m.predict_proba(users, world.scenario.menu) for m in members], axis=0)
    np.testing.assert_allclose(three.predict_coupon(users), mean_p, rtol=1e-6)
    np.testing.assert_allclose(
        one.predict_coupon(users), three.coupon_.predict_proba(users, world.scenario.menu)
    )
    assert "ensemble/" in three.saved_entries()
    three.save(tmp_path / "m")
    loaded = ConversionModels.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(users), three.predict(users))
    with pytest.raises(InputError, match="ensemble"):
        ConversionModels(architecture="two_models", ensemble=2).fit(
            world.history, world.users, world.scenario.menu
        )


def test_spend_error_is_the_sampling_error_of_each_arms_rates(trained, world):
    """Recounted from the log: each coupon arm's training rows (the same user split), its
    conversion rate and, among converters, its redemption rate."""
    models = trained["shared_trunk"]
    rows = training_rows(world.history, world.users, segment=["dormant"])
    rows = rows[~user_split(rows["user_id"].to_numpy(), models.test_share, models.random_state)]
    errors = models.spend_error()
    assert set(errors) == set(world.scenario.menu.names)
    for name, error in errors.items():
        arm = rows[rows["denomination"] == name]
        c, m = int(arm["converted"].sum()), int(arm["redeemed"].sum())
        p, r = c / len(arm), m / c
        assert error == pytest.approx(np.sqrt((1 - p) / c + (1 - r) / m)), name
        assert 0.01 < error < 0.5
