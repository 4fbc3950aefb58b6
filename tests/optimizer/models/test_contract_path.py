"""The synthetic world through a team's path: its contract is one data configuration.

``generate`` writes ``campaign.toml`` beside the tables; training through that configuration
must give the same models as the strict contract loaders (same rows, same features in the same
order, identical probabilities), so nothing is lost by the own-data path.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.io import load_log, load_users
from optimizer.io.tomlfile import read_toml
from optimizer.models import ConversionModels, train_on_data
from optimizer.planning.config import load_campaign
from simulator.world import write_world

PARAMS = {
    "segment": ["dormant"],
    "natural_params": {"max_epochs": 2},
    "coupon_params": {"max_epochs": 2},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, small_scenario):
    out = tmp_path_factory.mktemp("world")
    write_world(small_scenario.with_overrides(users=12_000), out)
    return out


def test_generate_writes_the_world_as_a_data_configuration(world, small_scenario):
    raw = read_toml(world / "campaign.toml")
    assert raw["data"]["users"]["file"] == "users.parquet"
    assert raw["data"]["log"]["randomized"] == {"column": "assignment", "values": ["randomized"]}
    shares = raw["data"]["log"]["propensity"]["arms"]
    holdout = small_scenario.history.holdout_share
    assert shares["none"] == pytest.approx(holdout)
    k = len(small_scenario.menu)
    assert all(shares[n] == pytest.approx((1 - holdout) / k) for n in small_scenario.menu.names)


def test_the_data_path_trains_the_same_models_as_the_contract_loaders(world):
    campaign = load_campaign(world / "campaign.toml")
    mapped, log = train_on_data(campaign.data, campaign.menu, world, **PARAMS)
    users = load_users(world / "users.parquet")
    strict = ConversionModels(**PARAMS).fit(
        load_log(world / "history.parquet", campaign.menu), users, campaign.menu
    )
    assert mapped.summary_["training_rows"] == strict.summary_["training_rows"]
    assert mapped.encoder.numeric_ == strict.encoder.numeric_
    assert mapped.encoder.categorical_ == strict.encoder.categorical_
    a = mapped.predict(users).drop(columns="user_id").to_numpy()
    b = strict.predict(users).drop(columns="user_id").to_numpy()
    np.testing.assert_array_equal(a, b)
    # The mapped log keeps the stage at campaign time and the design's propensities.
    randomized = log[log["assignment"] == "randomized"]
    assert set(np.round(randomized["propensity"].unique(), 6)) == set(
        np.round(list(campaign.data.log.propensity.arms.values()), 6)
    )
