"""Designs that are easy to get wrong: several labels for one treatment, per-row propensities.

A log of 6,000 customers is drawn here with a known lift (+5 points of conversion for the
e-mail, whichever of its two variants) and valued through a campaign configuration, as a
team's files would be. Expected figures come from the drawing, not from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.planning import (
    CampaignConfig,
    Overrides,
    campaign_log_of,
    resolve_request,
    value_plans,
)

N = 6_000
LIFT = 0.05


def _campaign(tmp_path: Path, design: str, propensity: object) -> tuple:
    rng = np.random.default_rng(5)
    offered = np.arange(N) % 2 == 0  # per-row design: only even customers may get an e-mail
    if design == "per_row":
        p_a1 = np.where(offered, 0.25, 0.0)
        p_a2 = np.where(offered, 0.25, 0.0)
    else:
        p_a1, p_a2 = np.full(N, 0.2), np.full(N, 0.3)
    u = rng.random(N)
    label = np.where(u < p_a1, "A1", np.where(u < p_a1 + p_a2, "A2", "C"))
    converted = (rng.random(N) < 0.10 + LIFT * (label != "C")).astype(int)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, N + 1),
            "x": rng.normal(size=N),
            "arm": label,
            "bought": converted,
            "p_a1": p_a1,
            "p_a2": p_a2,
            "p_c": 1 - p_a1 - p_a2,
        }
    )
    frame.to_csv(tmp_path / "log.csv", index=False)
    campaign = CampaignConfig.model_validate(
        {
            "name": "designs",
            "menu": {"denomination": [{"name": "email", "kind": "message", "send_cost": 0.1}]},
            "costs": {"sms_cost": 0.1, "margin_rate": 1.0, "order_value": 10.0},
            "manual": {"denomination": "email"},
            "data": {
                "users": {"file": "log.csv", "id": "id", "features": "listed", "numeric": ["x"]},
                "log": {
                    "file": "log.csv",
                    "id": "id",
                    "arm": "arm",
                    "arms": {"A1": "email", "A2": "email", "C": "none"},
                    "outcome": "bought",
                    "propensity": propensity,
                },
            },
        }
    )
    request = resolve_request(campaign, Overrides(), base=tmp_path)
    return request, campaign_log_of(campaign, tmp_path), frame, offered


def _plan(ids: np.ndarray, email: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"user_id": ids, "denomination": np.where(email, "email", "none")})


@pytest.mark.parametrize(
    "propensity", [{"arms": {"A1": 0.2, "A2": 0.3, "C": 0.5}}, "share", "uniform"]
)
def test_labels_of_one_treatment_add_up(tmp_path, propensity):
    request, log, frame, _ = _campaign(tmp_path, "constant", propensity)
    email = log.log["denomination"] == "email"
    if propensity == "uniform":  # two labels of three: the e-mail's chance is 2/3 ...
        assert np.allclose(log.log.loc[email, "propensity"], 2 / 3)
        with pytest.raises(InputError, match="do not describe this log"):  # ... not this log's
            value_plans(request, {"all": _plan(frame["id"], frame["id"] > 0)}, log)
        return
    expected = 0.5 if isinstance(propensity, dict) else (frame["arm"] != "C").mean()
    assert np.allclose(log.log.loc[email, "propensity"], expected)
    plans = {
        "all": _plan(frame["id"], frame["id"] > 0),
        "none": _plan(frame["id"], frame["id"] < 0),
    }
    values = value_plans(request, plans, log, estimators=("ipw", "snipw"), bootstrap=0)
    treated = frame.loc[frame["arm"] != "C", "bought"].mean()
    control = frame.loc[frame["arm"] == "C", "bought"].mean()
    assert values.value("all", "incremental_conversions", "snipw") == pytest.approx(
        treated - control
    )
    row = values.estimates.query(
        "plan == 'all' and estimator == 'ipw' and metric == 'incremental_conversions'"
    ).iloc[0]
    assert row["low"] <= LIFT <= row["high"]


def test_a_per_row_design_refuses_arms_a_customer_could_not_get(tmp_path):
    columns = {"columns": {"A1": "p_a1", "A2": "p_a2", "C": "p_c"}}
    request, log, frame, offered = _campaign(tmp_path, "per_row", columns)
    everyone = {
        "all": _plan(frame["id"], frame["id"] > 0),
        "none": _plan(frame["id"], frame["id"] < 0),
    }
    with pytest.raises(InputError, match="never randomized"):
        value_plans(request, everyone, log, estimators=("ipw",), bootstrap=0)
    flagged = value_plans(
        request, everyone, log, estimators=("ipw",), bootstrap=0, unrandomized="flag"
    )
    assert flagged.plans.set_index("plan").loc["all", "unrandomized_share"] == pytest.approx(0.5)
    # the customers who could get it: accepted, and the lift is found
    plans = {"offered": _plan(frame["id"], offered), "none": _plan(frame["id"], frame["id"] < 0)}
    values = value_plans(request, plans, log, estimators=("ipw", "snipw"), bootstrap=0)
    row = values.estimates.query(
        "plan == 'offered' and estimator == 'ipw' and metric == 'incremental_conversions'"
    ).iloc[0]
    assert row["low"] <= LIFT * offered.mean() <= row["high"]


def test_coupons_without_a_redemption_column_pay_the_menu_share(tmp_path):
    request, log, frame, _ = _campaign(
        tmp_path, "constant", {"arms": {"A1": 0.2, "A2": 0.3, "C": 0.5}}
    )
    coupon = {"name": "email", "face_value": 5.0, "threshold": 30.0, "redemption_share": 0.4}
    menu = {"denomination": [coupon]}
    campaign = request.campaign.model_copy(
        update={"menu": request.campaign.menu.model_validate(menu)}
    )
    request = resolve_request(campaign, Overrides(), base=tmp_path)
    log = campaign_log_of(campaign, tmp_path)
    plans = {
        "all": _plan(frame["id"], frame["id"] > 0),
        "none": _plan(frame["id"], frame["id"] < 0),
    }
    values = value_plans(request, plans, log, estimators=("snipw",), bootstrap=0)
    treated = frame.loc[frame["arm"] != "C", "bought"].mean()
    # every e-mail costs the send, every treated conversion 5.0 at a 40% redemption share
    assert values.value("all", "campaign_cost", "snipw") == pytest.approx(0.1 + 2.0 * treated)
