"""The offline estimators on a six-row log whose every figure is worked out by hand.

Rows (menu: the default four coupons; only ``5off49`` and no coupon are logged; send cost 0.10;
margin 0.3), propensity per row, so the design check leaves them alone:

====  =======  ===========  =========  ===========  ========
user  arm      propensity   converted  order value  discount
====  =======  ===========  =========  ===========  ========
1     5off49   0.5          1          60           5
2     5off49   0.5          0          0            0
3     none     0.5          1          40           0
4     none     0.5          0          0            0
5     5off49   0.25         1          50           5
6     none     0.75         0          0            0
====  =======  ===========  =========  ===========  ========

Plan "all": everyone gets 5off49. Matched rows 1, 2, 5 weigh 2, 2, 4; the control rows 3, 4, 6
weigh 2, 2, 4/3. IPW per customer: conversions (2 + 4 - 2) / 6, GMV (120 + 200 - 80) / 6,
cost (2 x 5.1 + 2 x 0.1 + 4 x 5.1) / 6. Self-normalised: conversions 6/8 - 2/(16/3), GMV
320/8 - 80/(16/3), cost 30.8/8.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.evaluation import OutcomePredictions, logged_rows, plan_actions, policy_values
from optimizer.io import DEFAULT_MENU

MARGIN = 0.3


def _log(users: list[int] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": users or [1, 2, 3, 4, 5, 6],
            "assignment": "randomized",
            "denomination": ["5off49", "5off49", "none", "none", "5off49", "none"],
            "propensity": [0.5, 0.5, 0.5, 0.5, 0.25, 0.75],
            "converted": [1, 0, 1, 0, 1, 0],
            "redeemed": [1, 0, 0, 0, 1, 0],
            "order_value": [60.0, 0.0, 40.0, 0.0, 50.0, 0.0],
            "discount": [5.0, 0.0, 0.0, 0.0, 5.0, 0.0],
        }
    )


def _rows(log: pd.DataFrame | None = None):
    return logged_rows(_log() if log is None else log, DEFAULT_MENU, sms_cost=0.10)


def _plans(rows) -> dict[str, np.ndarray]:
    return {"all": np.zeros(rows.n_rows, dtype=np.int16), "none": np.full(rows.n_rows, 4)}


def test_hand_worked_ipw_and_self_normalised_figures():
    rows = _rows()
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw", "snipw"), bootstrap=0
    )
    ipw = {"conv": 4 / 6, "gmv": 240 / 6, "cost": 30.8 / 6}
    snipw = {"conv": 6 / 8 - 2 / (16 / 3), "gmv": 320 / 8 - 80 / (16 / 3), "cost": 30.8 / 8}
    for name, want in (("ipw", ipw), ("snipw", snipw)):
        got = {
            "conv": values.value("all", "incremental_conversions", name),
            "gmv": values.value("all", "incremental_gmv", name),
            "cost": values.value("all", "campaign_cost", name),
        }
        assert got == pytest.approx(want, rel=1e-12)
        assert values.value("all", "roi", name) == pytest.approx(want["gmv"] / want["cost"])
        profit = MARGIN * want["gmv"] - want["cost"]
        assert values.value("all", "incremental_profit", name) == pytest.approx(profit)
        assert values.value("none", "incremental_conversions", name) == 0.0
    total = values.estimates.query("plan == 'all' and estimator == 'ipw' and metric == 'roi'")
    assert total["total"].iloc[0] == pytest.approx(values.value("all", "roi", "ipw"))  # unscaled


def test_influence_standard_error_clusters_a_customers_rows():
    rows = _rows(_log([1, 1, 3, 4, 5, 6]))  # customer 1 logged in two campaigns
    values = policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    term = np.array([2.0, 0.0, -2.0, 0.0, 4.0, 0.0])  # w Y under the plan minus under none
    psi = term - term.mean()
    sums = np.array([psi[0] + psi[1], psi[2], psi[3], psi[4], psi[5]])
    se = np.sqrt((sums**2).sum() / 36 * 5 / 4)
    row = values.estimates.query(
        "plan == 'all' and estimator == 'ipw' and metric == 'incremental_conversions'"
    ).iloc[0]
    assert row["se"] == pytest.approx(se, rel=1e-12)
    assert row["low"] == pytest.approx(row["estimate"] - 1.959964 * se, rel=1e-6)
    assert values.customers == 5 and values.rows == 6


def test_clipping_cuts_weights_and_says_how_many():
    rows = _rows()
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0, clip=3.0
    )
    assert values.value("all", "incremental_conversions", "ipw") == pytest.approx((2 + 3 - 2) / 6)
    clipped = values.plans.set_index("plan")["clipped_rows"]
    assert clipped["all"] == 1 and clipped["none"] == 0
    with pytest.raises(InputError, match="at least 1"):
        policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), clip=0.5)


def test_effective_sample_size_and_plan_shares():
    rows = _rows()
    values = policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    d = values.diagnostics.set_index(["plan", "arm"])
    assert d.loc[("all", "5off49"), "ess"] == pytest.approx(64 / 24)  # weights 2, 2, 4
    assert d.loc[("all", "5off49"), "matched_rows"] == 3
    assert d.loc[("all", "5off49"), "plan_share"] == 1.0
    assert d.loc[("none", "none"), "ess"] == pytest.approx((16 / 3) ** 2 / (8 + 16 / 9))


def test_doubly_robust_with_a_zero_outcome_model_is_ipw():
    rows = _rows()
    zero = np.zeros((rows.n_rows, len(rows.arms)))
    outcomes = OutcomePredictions(zero, zero, zero, "none", 2)
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw", "dr"), outcomes=outcomes,
        bootstrap=0,
    )  # fmt: skip
    for metric in ("incremental_conversions", "incremental_gmv", "campaign_cost"):
        assert values.value("all", metric, "dr") == pytest.approx(
            values.value("all", metric, "ipw")
        )
    # a perfect constant model of the control arm moves the estimate to it exactly
    mu = np.zeros((rows.n_rows, len(rows.arms)))
    mu[:, 4] = 0.25
    outcomes = OutcomePredictions(mu, zero, zero, "constant", 2)
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("dr",), outcomes=outcomes, bootstrap=0
    )
    alone = np.array([0, 0, 2, 2, 0, 4 / 3])
    y = np.array([1, 0, 1, 0, 1, 0])
    base = (0.25 + alone * (y - 0.25)).mean()
    assert values.value("all", "incremental_conversions", "dr") == pytest.approx(
        4 / 6 + 2 / 6 - base
    )


def test_bootstrap_is_seeded_and_paired():
    rows = _rows()
    kwargs = {"margin_rate": MARGIN, "estimators": ("ipw",), "differences": [("all", "none")]}
    first = policy_values(rows, _plans(rows), bootstrap=50, seed=3, **kwargs)
    again = policy_values(rows, _plans(rows), bootstrap=50, seed=3, **kwargs)
    other = policy_values(rows, _plans(rows), bootstrap=50, seed=4, **kwargs)
    pd.testing.assert_frame_equal(first.estimates, again.estimates)
    assert not first.estimates["boot_low"].equals(other.estimates["boot_low"])
    # "none" is 0 in every replicate, so the paired difference's replicates are the plan's own
    diff = first.differences.set_index("metric").loc["incremental_conversions"]
    plan = first.estimates.query("plan == 'all'").set_index("metric").loc["incremental_conversions"]
    assert diff["boot_low"] == pytest.approx(plan["boot_low"])


def test_a_plan_arm_the_log_never_randomized():
    rows = _rows()
    plans = {"ten": np.ones(rows.n_rows, dtype=np.int16), "none": np.full(rows.n_rows, 4)}
    with pytest.raises(InputError, match="never randomized"):
        policy_values(rows, plans, margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    flagged = policy_values(
        rows, plans, margin_rate=MARGIN, estimators=("ipw",), bootstrap=0, unrandomized="flag"
    )
    assert flagged.plans.set_index("plan").loc["ten", "unrandomized_share"] == 1.0


def test_plan_files_map_customers_to_arms():
    rows = _rows()
    plan = pd.DataFrame({"user_id": [6, 5, 4, 3, 2, 1], "denomination": ["none", "5off49"] * 3})
    actions = plan_actions(plan, rows)
    assert actions.tolist() == [0, 4, 0, 4, 0, 4]
    partial = plan_actions(plan.head(2), rows)
    assert partial.tolist() == [-2, -2, -2, -2, 0, 4]
    with pytest.raises(InputError, match="does not cover"):
        policy_values(rows, {"p": partial}, margin_rate=MARGIN, estimators=("ipw",))
    with pytest.raises(InputError, match="twice"):
        plan_actions(pd.concat([plan, plan.head(1)]), rows)


def test_bad_logs_are_refused():
    with pytest.raises(InputError, match="not on the menu"):
        _rows(_log().assign(denomination=["5off49", "15off20", "none", "none", "5off49", "none"]))
    with pytest.raises(InputError, match="outside"):
        _rows(_log().assign(propensity=[0.5, 0.5, 0.5, 0.0, 0.25, 0.75]))
    with pytest.raises(InputError, match="no randomized rows"):
        _rows(_log().assign(assignment="manual"))
    with pytest.raises(InputError, match="add up to"):
        logged_rows(_log().drop(columns="propensity"), DEFAULT_MENU, sms_cost=0.1,
                    propensity={"5off49": 0.5, "none": 0.6})  # fmt: skip
    with pytest.raises(InputError, match="do not describe this log"):
        big = pd.concat([_log()] * 50, ignore_index=True).assign(user_id=range(300))
        logged_rows(big.drop(columns="propensity"), DEFAULT_MENU, sms_cost=0.1,
                    propensity={"5off49": 0.1, "none": 0.9})  # fmt: skip


def test_a_difference_of_plans_of_different_sizes_has_no_total():
    rows = _rows()
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0,
        customers={"all": 100, "none": 50}, differences=[("all", "none")],
    )  # fmt: skip
    diff = values.differences.set_index("metric").loc["incremental_conversions"]
    assert diff["estimate"] == pytest.approx(4 / 6) and np.isnan(diff["total"])
    plan = values.estimates.query("plan == 'all' and metric == 'incremental_conversions'")
    assert plan["total"].iloc[0] == pytest.approx(100 * 4 / 6)
