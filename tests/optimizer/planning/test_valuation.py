"""Plans valued on real randomized logs: treat-all and treat-none reproduce the arm means.

On Hillstrom, the Starbucks promotion set and the Criteo sample (read from ../shared/data with
the shipped configurations), a plan that gives every customer arm ``a`` must be valued at
exactly what the log's arm ``a`` returned against its control arm, and the plan that treats no
one at exactly zero. The expected figures are recounted here from the raw CSV with pandas,
never through the code under test:

* self-normalised IPW: the difference of the two arms' means;
* IPW: ``sum over arm a of y / (n p_a) - sum over control of y / (n p_0)`` with the design's
  propensities (the arms' shares for Criteo, whose configuration says ``share``: then IPW also
  equals the difference of means).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.io.datasets import data_dir
from optimizer.planning import (
    Overrides,
    campaign_log_of,
    load_campaign,
    read_plan,
    resolve_request,
    value_plans,
)

ROOT = Path(__file__).resolve().parents[3]
CASES = {
    # name: (file, config, arm column, {label: arm}, outcome, GMV per row, send cost, margin)
    "hillstrom": (
        "hillstrom/hillstrom.csv.gz",
        "hillstrom_email.toml",
        "segment",
        {"Mens E-Mail": "mens", "Womens E-Mail": "womens", "No E-Mail": "none"},
        "conversion",
        lambda raw: raw["spend"].where(raw["conversion"] == 1, 0.0),
        0.10,
        0.30,
    ),
    "starbucks": (
        "starbucks_promotion_ab/training.csv.gz",
        "starbucks_promotion.toml",
        "Promotion",
        {"Yes": "promotion", "No": "none"},
        "purchase",
        lambda raw: 10.0 * raw["purchase"],
        0.15,
        1.0,
    ),
    "criteo": (
        "criteo_uplift_sample/criteo-uplift-sample-v2.1.csv.gz",
        "criteo_visit.toml",
        "treatment",
        {1: "ads", 0: "none"},
        "visit",
        lambda raw: 1.0 * raw["visit"],
        0.02,
        1.0,
    ),
}

pytestmark = pytest.mark.skipif(
    not data_dir().is_dir(), reason=f"shared data folder {data_dir()} is absent"
)


def _setup(name: str):
    relative, config, arm_column, arms, outcome, gmv, send, margin = CASES[name]
    path = ROOT / "scenarios" / "own_data" / config
    campaign = load_campaign(path)
    request = resolve_request(campaign, Overrides(), base=path.parent)
    log = campaign_log_of(campaign, path.parent)
    raw = pd.read_csv(data_dir() / relative)
    raw["_arm"] = raw[arm_column].map(arms)
    raw["_gmv"] = gmv(raw)
    return request, log, raw, outcome, send, margin


def _everyone(log, arm: str) -> pd.DataFrame:
    ids = log.users["user_id"].to_numpy()
    return pd.DataFrame({"user_id": ids, "denomination": arm})


@pytest.mark.parametrize("name", list(CASES))
def test_treat_all_and_none_reproduce_the_arm_means(name):
    request, log, raw, outcome, send, margin = _setup(name)
    treatments = [a for a in raw["_arm"].unique() if a != "none"]
    plans = {f"all {a}": _everyone(log, a) for a in treatments}
    plans["no one"] = _everyone(log, "none")
    values = value_plans(
        request, plans, log, estimators=("ipw", "snipw"), bootstrap=0, differences=[]
    )
    n = len(raw)
    control = raw[raw["_arm"] == "none"]
    shares = raw["_arm"].value_counts(normalize=True)
    design = log.propensity
    assert design is not None
    for a in treatments:
        arm = raw[raw["_arm"] == a]
        uplift = arm[outcome].mean() - control[outcome].mean()
        gmv = arm["_gmv"].mean() - control["_gmv"].mean()
        expected = {
            "incremental_conversions": uplift,
            "incremental_gmv": gmv,
            "campaign_cost": send,
            "roi": gmv / send,
            "incremental_profit": margin * gmv - send,
        }
        for metric, value in expected.items():
            got = values.value(f"all {a}", metric, "snipw")
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (name, a, metric)
        # IPW with the design's propensities: a recount of its own definition.
        p_a, p_0 = design[a], design["none"]
        ipw = arm[outcome].sum() / (n * p_a) - control[outcome].sum() / (n * p_0)
        assert values.value(f"all {a}", "incremental_conversions", "ipw") == pytest.approx(ipw)
        ipw_cost = send * len(arm) / (n * p_a)
        assert values.value(f"all {a}", "campaign_cost", "ipw") == pytest.approx(ipw_cost)
        if abs(shares[a] - p_a) < 1e-9:  # share propensities: IPW is the difference of means
            assert values.value(f"all {a}", "incremental_conversions", "ipw") == pytest.approx(
                uplift, rel=1e-9
            )
    for estimator in ("ipw", "snipw"):
        for metric in ("incremental_conversions", "incremental_gmv", "campaign_cost"):
            assert values.value("no one", metric, estimator) == 0.0
    # Totals scale the per-customer figure to the plan's customers.
    row = values.estimates.query("plan == 'no one' and metric == 'campaign_cost'")
    assert (row["total"] == 0).all()
    assert set(values.plans["customers"]) == {n}


def test_doubly_robust_treat_all_agrees_with_the_arm_means_within_its_interval():
    request, log, raw, outcome, send, margin = _setup("criteo")
    values = value_plans(
        request,
        {"all ads": _everyone(log, "ads"), "no one": _everyone(log, "none")},
        log,
        estimators=("snipw", "dr"),
        bootstrap=50,
        outcome_model="linear",
    )
    snipw = values.value("all ads", "incremental_conversions", "snipw")
    row = values.estimates.query(
        "plan == 'all ads' and estimator == 'dr' and metric == 'incremental_conversions'"
    ).iloc[0]
    assert row["low"] <= snipw <= row["high"]
    assert row["boot_low"] <= row["estimate"] <= row["boot_high"]
    diff = values.differences.query("estimator == 'dr' and metric == 'campaign_cost'")
    assert diff["estimate"].iloc[0] == pytest.approx(send, rel=1e-9)


def test_a_plan_file_is_checked_as_it_is_read(tmp_path):
    request, log, raw, *_ = _setup("starbucks")
    bad = _everyone(log, "promotion")
    bad.loc[3, "denomination"] = "coupon"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="'coupon' is not on the menu"):
        read_plan(tmp_path / "bad.csv", request.campaign.menu)
    twice = pd.concat([_everyone(log, "none").head(3)] * 2)
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(InputError, match="listed twice"):
        read_plan(tmp_path / "twice.csv", request.campaign.menu)


def test_held_out_rows_are_the_models_test_customers():
    from optimizer.io.campaign_log import user_split

    request, log, raw, *_ = _setup("starbucks")
    split = log.__class__(**{**log.__dict__, "held_out": (0.25, 3)})
    plans = {"all": _everyone(log, "promotion"), "none": _everyone(log, "none")}
    values = value_plans(request, plans, split, estimators=("snipw",), bootstrap=0)
    ids = log.users["user_id"].to_numpy()
    assert values.rows == int(user_split(ids, 0.25, 3).sum())
    assert "held out" in values.rows_note
    everything = value_plans(request, plans, log, estimators=("snipw",), bootstrap=0)
    assert everything.rows == len(raw) and "all of the log" in everything.rows_note


def test_an_arm_the_log_never_randomized_is_refused_or_flagged():
    request, log, raw, *_ = _setup("starbucks")
    design = dict(log.propensity)
    design["promotion"], design["none"] = 0.0, 1.0  # pretend the promotion was never drawn
    never = log.__class__(**{**log.__dict__, "propensity": design})
    frame = log.log.copy()
    frame.loc[frame["denomination"] == "promotion", "assignment"] = "manual"
    frame.loc[frame["denomination"] == "none", "propensity"] = 1.0  # the design it claims
    never = never.__class__(**{**never.__dict__, "log": frame})
    plans = {"all": _everyone(log, "promotion"), "none": _everyone(log, "none")}
    with pytest.raises(InputError, match="never randomized"):
        value_plans(request, plans, never, estimators=("ipw",), bootstrap=0)
    flagged = value_plans(
        request, plans, never, estimators=("ipw",), bootstrap=0, unrandomized="flag"
    )
    share = flagged.plans.set_index("plan")["unrandomized_share"]
    assert share["all"] == 1.0 and share["none"] == 0.0
    assert np.isfinite(flagged.value("all", "incremental_conversions", "ipw"))
