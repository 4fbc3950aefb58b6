"""The synthetic world checked against its own ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimizer.io.contract import ARCHETYPES, USERS, coupon_column, redeem_column
from optimizer.io.menu import NO_COUPON
from optimizer.segments import STAGE_UPPER_DAYS, STAGES, rfm_score
from simulator.scenario import Scenario
from simulator.world.generation import build_world
from simulator.world.history import MANUAL_CAMPAIGN, RANDOMIZED_CAMPAIGN
from simulator.world.population import BLOCK_USERS, generate_users
from simulator.world.response import true_response


def _within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p)) + 1


def test_archetype_shares_match_the_scenario(world, scenario):
    counts = world.truth["archetype"].value_counts()
    n = len(world.truth)
    for name, share in zip(ARCHETYPES, scenario.population.archetypes.as_tuple(), strict=True):
        assert _within_binomial(int(counts[name]), n, share), (name, counts[name] / n, share)


def test_archetype_shares_are_configurable():
    data = Scenario().model_dump()
    data["population"]["users"] = 50_000
    data["population"]["archetypes"] = {
        "sure_thing": 0.4,
        "persuadable": 0.1,
        "lost_cause": 0.3,
        "sleeping_dog": 0.2,
    }
    world = build_world(Scenario.model_validate(data))
    shares = world.truth["archetype"].value_counts(normalize=True)
    for name, share in data["population"]["archetypes"].items():
        assert abs(shares[name] - share) < 0.01, name


def test_stage_shares_and_stage_follows_recency(world, scenario):
    counts = world.users["lifecycle_stage"].value_counts()
    for stage, share in zip(STAGES, scenario.population.stages.as_tuple(), strict=True):
        assert _within_binomial(int(counts[stage]), len(world.users), share), stage
    days = world.users["days_since_last_order"].to_numpy()
    stage = world.users["lifecycle_stage"].cat.codes.to_numpy()
    bounds = (0, *STAGE_UPPER_DAYS, np.inf)
    for code in range(len(STAGES)):
        sel = days[stage == code]
        assert sel.min() > bounds[code] - (code == 0) and sel.max() <= bounds[code + 1]


def test_users_table_follows_the_contract(world):
    assert tuple(world.users.columns) == USERS.names
    assert world.users["user_id"].is_unique
    assert world.users["age"].isna().mean() == pytest.approx(0.06, abs=0.01)
    received = world.users["coupons_received_365d"].to_numpy()
    share = world.users["coupon_redeem_share"].to_numpy()
    assert np.isnan(share[received == 0]).all() and not np.isnan(share[received > 0]).any()


def _lifts(world) -> pd.DataFrame:
    truth = world.truth
    names = world.scenario.menu.names
    lifts = pd.DataFrame(
        {n: truth[coupon_column(n)] - truth["p_natural"] for n in names}, index=truth.index
    )
    lifts["archetype"] = truth["archetype"]
    return lifts


def test_archetypes_behave_as_their_names_say(world):
    truth = world.truth
    lifts = _lifts(world)
    names = list(world.scenario.menu.names)
    by = lifts.groupby("archetype", observed=True)[names].mean()
    natural = truth.groupby("archetype", observed=True)["p_natural"].mean()
    # Sure things buy anyway: high natural conversion, almost no lift.
    assert natural["sure_thing"] > 0.7
    assert (by.loc["sure_thing"].abs() < 0.01).all()
    # Persuadables carry the lift: the largest mean lift for every denomination.
    assert (by.loc["persuadable"] > 0.03).all()
    assert (by.idxmax() == "persuadable").all()
    # Lost causes: low natural conversion and no lift.
    assert natural["lost_cause"] < 0.03 and (by.loc["lost_cause"].abs() < 0.01).all()
    # Sleeping dogs: every one of them is less likely to buy with a message, whatever the coupon.
    dogs = lifts[lifts["archetype"] == "sleeping_dog"][names]
    assert (dogs < 0).all().all()
    others = lifts[lifts["archetype"] != "sleeping_dog"][names]
    assert (others >= 0).all().all()


def test_true_response_is_monotone_in_face_value_and_threshold():
    rng = np.random.default_rng(0)
    n = 2_000
    h0 = rng.exponential(0.02, n)
    m = np.where(rng.random(n) < 0.1, rng.uniform(0.3, 0.7, n), 1.0)
    s = rng.lognormal(0, 1, n)
    b = rng.lognormal(np.log(100), 0.6, n)
    faces = np.array([2.0, 5, 10, 20, 50, 80])
    fixed_threshold = np.full(faces.size, 199.0)
    up_face = true_response(h0, m, s, b, faces, fixed_threshold, window_days=14, validity_days=7)
    assert (np.diff(up_face.p_coupon, axis=1) >= -1e-12).all()
    thresholds = np.array([20.0, 49, 99, 199, 399, 999])
    up_thr = true_response(
        h0, m, s, b, np.full(thresholds.size, 10.0), thresholds, window_days=14, validity_days=7
    )
    assert (np.diff(up_thr.p_coupon, axis=1) <= 1e-12).all()
    # A threshold far above the basket makes the coupon nearly useless.
    basket = np.full(n, 60.0)
    far, near = (
        true_response(
            h0,
            np.ones(n),
            s,
            basket,
            np.array([10.0]),
            np.array([t]),
            window_days=14,
            validity_days=7,
        )
        for t in (600.0, 59.0)
    )
    far_lift = (far.p_coupon[:, 0] - far.p_natural).mean()
    near_lift = (near.p_coupon[:, 0] - near.p_natural).mean()
    assert 0 < far_lift < 0.1 * near_lift


def test_lift_depends_on_face_value_relative_to_basket(world):
    truth = world.truth
    names = world.scenario.menu.names
    persuadable = truth["archetype"] == "persuadable"
    lifts = np.column_stack([truth[coupon_column(n)] - truth["p_natural"] for n in names])
    best = lifts[persuadable.to_numpy()].argmax(axis=1)
    basket = truth.loc[persuadable, "typical_basket"].to_numpy()
    rho = stats.spearmanr(basket, best).statistic
    assert rho > 0.5  # bigger baskets need bigger coupons
    assert len(np.unique(best)) == len(names)  # every denomination is someone's best


def test_randomized_log_arm_shares(world, scenario):
    log = world.history
    rct = log[log["campaign_id"] == RANDOMIZED_CAMPAIGN]
    assert (rct["assignment"] == "randomized").all()
    n_users = len(world.users)
    assert _within_binomial(len(rct), n_users, scenario.history.randomized_share)
    shares = rct["denomination"].value_counts()
    k = len(scenario.menu)
    holdout = scenario.history.holdout_share
    assert _within_binomial(int(shares[NO_COUPON]), len(rct), holdout)
    for name in scenario.menu.names:
        assert _within_binomial(int(shares[name]), len(rct), (1 - holdout) / k), name
    # Assignment is independent of the users: arms have the same mean natural propensity.
    joined = rct.merge(world.truth[["user_id", "p_natural"]], on="user_id")
    groups = [g["p_natural"].to_numpy() for _, g in joined.groupby("denomination", observed=True)]
    assert stats.kruskal(*groups).pvalue > 1e-4


def _arm_table(world, campaign: int) -> pd.DataFrame:
    log = world.history[world.history["campaign_id"] == campaign]
    truth = world.truth.set_index("user_id")
    names = world.scenario.menu.names
    p_true = truth.loc[log["user_id"], "p_natural"].to_numpy().copy()
    redeem_true = np.zeros(len(log))
    arm = log["denomination"].astype(str).to_numpy()
    for name in names:
        sel = arm == name
        pc = truth.loc[log["user_id"][sel], coupon_column(name)].to_numpy()
        pr = truth.loc[log["user_id"][sel], redeem_column(name)].to_numpy()
        p_true[sel] = pc
        redeem_true[sel] = pc * pr
    return pd.DataFrame(
        {
            "arm": arm,
            "converted": log["converted"].to_numpy(),
            "redeemed": log["redeemed"].to_numpy(),
            "p_true": p_true,
            "redeem_true": redeem_true,
        }
    )


@pytest.mark.parametrize("campaign", [RANDOMIZED_CAMPAIGN, MANUAL_CAMPAIGN])
def test_log_outcomes_match_the_true_probabilities(world, campaign):
    table = _arm_table(world, campaign)
    for arm, g in table.groupby("arm"):
        for observed, expected in (("converted", "p_true"), ("redeemed", "redeem_true")):
            p = g[expected].to_numpy()
            var = (p * (1 - p)).sum()
            if var == 0:
                assert g[observed].sum() == 0
                continue
            z = (g[observed].sum() - p.sum()) / np.sqrt(var)
            assert abs(z) < 4.5, (arm, observed, z)


def test_redeemed_orders_reach_the_threshold(world):
    log = world.history
    menu = world.scenario.menu
    red = log[log["redeemed"] == 1]
    idx = [menu.index(n) for n in red["denomination"].astype(str)]
    assert (red["order_value"].to_numpy() >= menu.thresholds[idx]).all()
    assert np.allclose(red["discount"].to_numpy(), menu.face_values[idx])
    assert (log.loc[log["converted"] == 0, "order_value"] == 0).all()
    assert (log.loc[log["converted"] == 1, "order_value"] > 0).all()
    assert not ((log["redeemed"] == 1) & (log["denomination"] == NO_COUPON)).any()


def test_manual_log_is_biased(world, scenario):
    log = world.history
    manual = log[log["campaign_id"] == MANUAL_CAMPAIGN]
    assert set(manual["lifecycle_stage"].astype(str)) <= set(scenario.target_stages)
    users = world.users.set_index("user_id").loc[manual["user_id"]]
    score = rfm_score(
        users["days_since_last_order"].to_numpy(),
        users["orders_365d"].to_numpy(),
        users["avg_order_value"].to_numpy(),
    )
    got = (manual["denomination"] == scenario.manual.denomination).to_numpy()
    assert (score[got] >= scenario.history.manual_min_rfm).all()
    assert (score[~got] < scenario.history.manual_min_rfm).all()
    truth = world.truth.set_index("user_id").loc[manual["user_id"]]
    name = scenario.manual.denomination
    true_lift = (truth[coupon_column(name)] - truth["p_natural"]).to_numpy()[got].mean()
    naive = manual["converted"].to_numpy()[got].mean() - manual["converted"].to_numpy()[~got].mean()
    # The naive comparison of the biased log overstates the coupon's effect several times over.
    assert naive > 2 * true_lift + 0.03


def test_same_seed_same_world_and_blocks_are_independent(small_scenario):
    a = build_world(small_scenario)
    b = build_world(small_scenario)
    for name in ("users", "history", "truth"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    other = build_world(small_scenario.with_overrides(seed=12))
    assert not a.truth["p_natural"].equals(other.truth["p_natural"])
    # Full blocks do not depend on the population size: a larger world starts with them.
    bigger = build_world(small_scenario.with_overrides(users=BLOCK_USERS + 10))
    biggest = build_world(small_scenario.with_overrides(users=2 * BLOCK_USERS + 3))
    for name in ("users", "truth"):
        pd.testing.assert_frame_equal(
            getattr(bigger, name).iloc[:BLOCK_USERS], getattr(biggest, name).iloc[:BLOCK_USERS]
        )
    # Any block can be regenerated alone.
    block1 = generate_users(small_scenario, 1, 10)
    pd.testing.assert_frame_equal(
        block1.users, bigger.users.iloc[BLOCK_USERS:].reset_index(drop=True)
    )


def test_a_world_folder_is_replaced_whole_and_checked(tmp_path):
    """Regenerating leaves no file of the earlier world; a user's file stops it before work."""
    from optimizer.errors import InputError
    from optimizer.io import verify_manifest
    from simulator.world.generation import write_world

    out = tmp_path / "world"
    write_world(Scenario().with_overrides(users=1_000, seed=3), out, csv=True)
    first = (out / "users.parquet").read_bytes()
    write_world(Scenario().with_overrides(users=1_200, seed=4), out, csv=False)
    assert not (out / "users.csv").exists()  # the earlier run's copy is gone
    assert (out / "users.parquet").read_bytes() != first
    verify_manifest(out, ["users.parquet", "history.parquet", "truth.parquet", "menu.toml"])
    assert len(pd.read_parquet(out / "users.parquet")) == 1_200
    (out / "analysis.ipynb").write_text("{}")
    with pytest.raises(InputError, match="holds 'analysis.ipynb'"):
        write_world(Scenario().with_overrides(users=1_000, seed=5), out)
    assert len(pd.read_parquet(out / "users.parquet")) == 1_200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]
