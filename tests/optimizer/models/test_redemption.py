"""The redemption model on data whose redemption law is known, and its saved form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.io.menu import Denomination, Menu
from optimizer.models import RedemptionModel
from optimizer.models.conversion import load_redemption

MENU = Menu(
    denomination=(
        Denomination(name="5off49", face_value=5, threshold=49),
        Denomination(name="10off99", face_value=10, threshold=99),
        Denomination(name="20off199", face_value=20, threshold=199),
        Denomination(name="50off399", face_value=50, threshold=399),
    )
)
NEW = Menu(denomination=(Denomination(name="15off149", face_value=15, threshold=149),))


def _users(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.arange(n),
            "avg_order_value": np.exp(rng.normal(np.log(110), 0.5, n)).round(2),
            "loyalty": rng.normal(0, 1, n),
            "tier": rng.choice(["a", "b", "c"], n),
        }
    )


def _true_redemption(users: pd.DataFrame, menu: Menu) -> np.ndarray:
    """The law the data follow: sigmoid(0.5 - 2 log(threshold / basket) + 0.6 loyalty + tier)."""
    lt = np.log(menu.thresholds[None, :] / users["avg_order_value"].to_numpy()[:, None])
    tier = users["tier"].map({"a": 0.0, "b": 0.4, "c": -0.4}).to_numpy()[:, None]
    z = 0.5 - 2.0 * lt + 0.6 * users["loyalty"].to_numpy()[:, None] + tier
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    users = _users(rng, 2_500)  # a small log's converters
    k = rng.integers(0, len(MENU), len(users))
    p = _true_redemption(users, MENU)[np.arange(len(users)), k]
    y = (rng.random(len(users)) < p).astype(np.int8)
    coupon = np.array(MENU.names, dtype=object)[k]
    model = RedemptionModel(random_state=0).fit(users, coupon, y, menu=MENU)
    return model, _users(np.random.default_rng(8), 20_000)


def test_recovers_each_coupons_redemption_and_ranks_users(fitted):
    model, fresh = fitted
    predicted, true = model.predict_proba(fresh), _true_redemption(fresh, MENU)
    assert predicted.shape == (len(fresh), len(MENU)) and predicted.dtype == np.float32
    for k, name in enumerate(MENU.names):
        assert abs(predicted[:, k].mean() - true[:, k].mean()) < 0.03, name
        assert np.corrcoef(predicted[:, k], true[:, k])[0, 1] > 0.9, name
    # Monotone over the menu as the law is (a higher threshold, a lower redemption).
    assert (np.diff(predicted, axis=1) <= 1e-7).all()
    assert model.validation_metrics_["after_calibration"]["auc"] > 0.75
    assert model.C_ in {float(c) for c in model.Cs}


def test_scores_a_denomination_never_sent(fitted):
    model, fresh = fitted
    predicted, true = model.predict_proba(fresh, NEW)[:, 0], _true_redemption(fresh, NEW)[:, 0]
    assert abs(predicted.mean() - true.mean()) < 0.04
    assert np.corrcoef(predicted, true)[0, 1] > 0.9


def test_saved_model_round_trips_and_damage_is_refused(fitted, tmp_path):
    model, fresh = fitted
    model.save(tmp_path / "r")
    again = load_redemption(tmp_path / "r")
    assert isinstance(again, RedemptionModel)
    np.testing.assert_array_equal(
        again.predict_proba(fresh[:200]), model.predict_proba(fresh[:200])
    )
    meta_path = tmp_path / "r" / "model.json"
    meta = json.loads(meta_path.read_text())
    for damage in ({"coef": meta["coef"][:-1]}, {"intercept": float("nan")}, {"class": "X"}):
        meta_path.write_text(json.dumps(meta | damage))
        with pytest.raises(InputError, match="model.json"):
            RedemptionModel.load(tmp_path / "r")
    meta_path.write_text('{"format": 1, "cla')
    with pytest.raises(InputError, match="not valid JSON"):
        RedemptionModel.load(tmp_path / "r")


def test_refuses_one_outcome_and_unknown_coupons():
    users = _users(np.random.default_rng(1), 50)
    coupon = np.array(["5off49"] * 50, dtype=object)
    with pytest.raises(InputError, match="redeemed and rows that did not"):
        RedemptionModel().fit(users, coupon, np.ones(50), menu=MENU)
    with pytest.raises(InputError, match="not on the menu"):
        RedemptionModel().fit(users, np.array(["9off9"] * 50), np.r_[np.ones(25), np.zeros(25)],
                              menu=MENU)  # fmt: skip
