"""The gradient-boosted meta-learners on a log whose true effects are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.io.menu import Menu
from optimizer.models.boosted import LEARNERS, BoostedConversionModel
from optimizer.models.conversion import load_model

MENU = Menu.model_validate(
    {
        "denomination": [
            {"name": "big", "face_value": 20, "threshold": 100},
            {"name": "small", "face_value": 5, "threshold": 50},
        ]
    }
)
N = 30_000


def _truth(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """True p0 (n,) and p per treatment (n, 2): "big" lifts 0.25 where x2 > 0.5, "small" 0."""
    p0 = 0.10 + 0.20 * (X["x1"].to_numpy() > 0.5) + 0.05 * (X["region"].to_numpy() == "north")
    lift = 0.25 * (X["x2"].to_numpy() > 0.5)
    return p0, np.column_stack([p0 + lift, p0])


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.random(n),
            "x2": rng.random(n),
            "noise": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )


@pytest.fixture(scope="module")
def log():
    X = _features(N, 0)
    rng = np.random.default_rng(1)
    arm = rng.choice(np.array(["none", "big", "small"], dtype=object), N, p=[0.4, 0.3, 0.3])
    p0, p = _truth(X)
    prob = np.select([arm == "big", arm == "small"], [p[:, 0], p[:, 1]], p0)
    y = (rng.random(N) < prob).astype(np.int8)
    return X, arm, y


@pytest.fixture(scope="module", params=LEARNERS)
def fitted(request, log):
    X, arm, y = log
    model = BoostedConversionModel(
        learner=request.param, numeric=["x1", "x2", "noise"], categorical=["region"]
    )
    return model.fit(X, arm, y, menu=MENU)


def test_each_learner_recovers_the_true_effects_by_group(fitted):
    X = _features(20_000, 2)
    p0_true, p_true = _truth(X)
    p0, p = fitted.predict_natural(X), fitted.predict_proba(X, MENU)
    assert p.shape == (len(X), 2) and p.dtype == np.float32
    high = X["x2"].to_numpy() > 0.5
    uplift = p - p0[:, None]
    # Group means of the predicted uplift against the true ones (0.25 / 0 / 0 / 0).
    assert abs(uplift[high, 0].mean() - 0.25) < 0.04
    assert abs(uplift[~high, 0].mean()) < 0.04
    assert abs(uplift[:, 1].mean()) < 0.03
    # The natural probability follows its two true steps.
    assert np.corrcoef(p0, p0_true)[0, 1] > 0.8
    assert abs(p0.mean() - p0_true.mean()) < 0.02
    # Ranked by predicted uplift of "big", the top half holds mostly the truly lifted users.
    top = np.argsort(-uplift[:, 0])[: len(X) // 2]
    assert high[top].mean() > 0.8


def test_menu_subset_and_order_follow_the_menu(fitted):
    X = _features(500, 3)
    both = fitted.predict_proba(X, MENU)
    swapped = Menu.model_validate(
        {"denomination": [MENU.denomination[1].model_dump(), MENU.denomination[0].model_dump()]}
    )
    np.testing.assert_array_equal(fitted.predict_proba(X, swapped), both[:, ::-1])


def test_save_load_round_trip_and_damage_is_refused(fitted, tmp_path):
    X = _features(1_000, 4)
    fitted.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, BoostedConversionModel)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_natural(X), fitted.predict_natural(X))
    assert loaded.get_params() == fitted.get_params()
    # A booster cut short (fewer trees than recorded) or missing is refused, not half-read.
    first = sorted((tmp_path / "m" / "boosters").iterdir())[0]
    text = first.read_text()
    first.write_text(text[: text.index("Tree=1\n")] + "end of trees\n")
    with pytest.raises(InputError, match="damaged|not a saved|Booster"):
        load_model(tmp_path / "m")
    first.unlink()
    with pytest.raises(InputError, match="missing"):
        load_model(tmp_path / "m")


def test_fits_are_deterministic(log):
    X, arm, y = log
    rows = slice(0, 8_000)
    a, b = (
        BoostedConversionModel(learner="x", random_state=5).fit(
            X[rows], arm[rows], y[rows], menu=MENU
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(a.predict_proba(X[:300]), b.predict_proba(X[:300]))


def test_bad_inputs_name_the_problem(log):
    X, arm, y = log
    with pytest.raises(InputError, match="learner"):
        BoostedConversionModel(learner="z").fit(X, arm, y, menu=MENU)
    with pytest.raises(InputError, match="'huge' is not on the menu"):
        BoostedConversionModel().fit(X, np.where(arm == "big", "huge", arm), y, menu=MENU)
    with pytest.raises(InputError, match="no-coupon rows"):
        BoostedConversionModel().fit(X, np.where(arm == "none", "big", arm), y, menu=MENU)
    only_big = np.where(arm == "small", "none", arm)
    model = BoostedConversionModel(learner="t").fit(
        X[:6_000], only_big[:6_000], y[:6_000], menu=MENU
    )
    with pytest.raises(InputError, match="'small' was never sent"):
        model.predict_proba(X[:10], MENU)


def test_x_and_dr_report_the_quality_of_what_they_serve(log):
    """Their coupon quality is p0 + tau_k on rows the effect boosters held out, recounted."""
    from optimizer.evaluation.metrics import classification_quality

    X, arm, y = log
    rows = slice(0, 12_000)
    t = BoostedConversionModel(learner="t").fit(X[rows], arm[rows], y[rows], menu=MENU)
    t_loss = t.validation_metrics_["after_calibration"]["log_loss"]
    for learner in ("x", "dr"):
        model = BoostedConversionModel(learner=learner).fit(X[rows], arm[rows], y[rows], menu=MENU)
        quality = model.validation_metrics_["after_calibration"]
        assert quality["log_loss"] != t_loss
        # Recount on all treated rows: the served probabilities' log-loss is of the same order.
        treated = arm[rows] != "none"
        served = model.predict_proba(X[rows][treated], MENU)
        column = np.where(arm[rows][treated] == "big", 0, 1)
        p = served[np.arange(column.size), column]
        overall = classification_quality(y[rows][treated], p)["log_loss"]
        assert abs(quality["log_loss"] - overall) < 0.05


def test_dr_weighs_rows_by_their_design_and_folds_by_customer(log, monkeypatch):
    import optimizer.models.boosted as boosted

    X, arm, y = log
    rows = slice(0, 9_000)
    Xs, a, ys = X[rows], arm[rows], y[rows]
    plain = BoostedConversionModel(learner="dr").fit(Xs, a, ys, menu=MENU)
    # The arms' shares given per row are the default design: the same model.
    share = pd.Series(a).map(pd.Series(a).value_counts(normalize=True)).to_numpy()
    same = BoostedConversionModel(learner="dr").fit(Xs, a, ys, menu=MENU, propensity=share)
    np.testing.assert_array_equal(same.predict_proba(X[:200]), plain.predict_proba(X[:200]))
    # Another design changes the pseudo-outcomes, hence the model.
    skewed = np.where(a == "big", 0.5, share)
    other = BoostedConversionModel(learner="dr").fit(Xs, a, ys, menu=MENU, propensity=skewed)
    assert not np.array_equal(other.predict_proba(X[:200]), plain.predict_proba(X[:200]))
    with pytest.raises(InputError, match="propensity"):
        BoostedConversionModel(learner="dr").fit(Xs, a, ys, menu=MENU, propensity=share * 0)
    # Customers' rows share a cross-fitting fold: the folds come from their ids.
    seen = {}
    from optimizer.evaluation.outcome_models import fold_of

    def spy(user_id, folds, seed=0):
        seen["ids"] = np.asarray(user_id).copy()
        return fold_of(user_id, folds, seed)

    monkeypatch.setattr(boosted, "fold_of", spy)
    ids = np.arange(9_000) // 3
    BoostedConversionModel(learner="dr").fit(Xs, a, ys, menu=MENU, groups=ids)
    np.testing.assert_array_equal(seen["ids"], ids)
