"""The data configuration: a team's own customer table and campaign log mapped onto the contract.

Figures are checked against naive recounts of the hand-built input rows; every bad input must be
one InputError naming the file, the column (or configuration key) and the 1-based data rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.api import types as ptypes
from pydantic import ValidationError

from optimizer.errors import InputError
from optimizer.io.mapping import (
    DataConfig,
    FeatureSpec,
    check_features,
    iter_users_mapped,
    load_log_mapped,
    load_users_mapped,
)
from optimizer.io.menu import Menu
from optimizer.io.tomlfile import validate
from optimizer.planning.config import CampaignConfig

LOG_COLUMNS = [
    "campaign_id",
    "user_id",
    "assignment",
    "denomination",
    "converted",
    "redeemed",
    "order_value",
    "discount",
    "propensity",
]

MENU = Menu.model_validate(
    {
        "denomination": [
            {"name": "10off99", "face_value": 10.0, "threshold": 99.0},
            {"name": "promo", "kind": "message", "send_cost": 0.15, "conversion_cost": 2.0},
        ]
    }
)
ARMS = {"A": "10off99", "B": "promo", "control": "none"}


# --------------------------------------------------------------------------- fixtures


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [101, 102, 103, 104, 105],
            "age": [23, 35, 41, 58, 30],
            "income": [1200.5, np.nan, 3100.0, 2500.25, 1800.0],
            "store": ["north", "south", "north", "east", "south"],
            "zip": [75001, 75002, 75001, 75003, 75002],
            "email": ["a@x", "b@x", "c@x", "d@x", "e@x"],
            "tier": ["gold", "silver", None, "gold", "bronze"],
            "avg_order_value": [55.0, 80.0, 120.0, 40.0, 95.0],
        }
    )


def _log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [101, 102, 103, 104, 105, 101],
            "variant": ["A", "B", "control", "A", "B", "control"],
            "bought": [1, 0, 1, 0, 1, 0],
            "used_coupon": [1, 0, 0, 0, 0, 0],
            "revenue": [120.0, 0.0, 50.0, np.nan, 80.0, 0.0],
            "p": [0.4, 0.3, 0.3, 0.4, 0.3, 0.3],
            "p_a": [0.4, 0.2, 0.5, 0.6, 0.1, 0.25],
            "p_b": [0.3, 0.5, 0.25, 0.2, 0.8, 0.25],
            "p_c": [0.3, 0.3, 0.25, 0.2, 0.1, 0.5],
            "wave": ["2024-02", "2024-02", "2024-02", "2024-02", "2024-02", "2024-01"],
            "design": ["rct", "rct", "rct", "rct", "rct", "manual"],
        }
    )


def _config(**log_changes) -> dict:
    data = {
        "users": {
            "file": "customers.csv",
            "id": "customer_id",
            "categorical": ["zip"],
            "ignore": ["email"],
            "segment": "tier",
            "basket": "avg_order_value",
        },
        "log": {
            "file": "log.csv",
            "id": "customer_id",
            "arm": "variant",
            "arms": dict(ARMS),
            "outcome": "bought",
            "redeemed": "used_coupon",
            "order_value": "revenue",
            "campaign": "wave",
        },
    }
    data["log"].update(log_changes)
    return data


def _write(tmp_path: Path, customers: pd.DataFrame | None = None, log: pd.DataFrame | None = None):
    (customers if customers is not None else _customers()).to_csv(
        tmp_path / "customers.csv", index=False
    )
    (log if log is not None else _log()).to_csv(tmp_path / "log.csv", index=False)


def _load(tmp_path: Path, data: dict, menu: Menu = MENU):
    cfg = DataConfig.model_validate(data)
    users = load_users_mapped(cfg, base=tmp_path)
    return users, load_log_mapped(cfg, menu, users, base=tmp_path)


def _error(excinfo, *fragments: str) -> str:
    text = str(excinfo.value)
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- separate files


def test_users_contract_columns_features_and_dtypes(tmp_path):
    _write(tmp_path)
    users, _ = _load(tmp_path, _config())
    frame = users.frame
    raw = _customers()
    assert users.source == tmp_path / "customers.csv"
    assert frame.columns[0] == "user_id"
    assert frame["user_id"].dtype == np.int64
    assert frame["user_id"].tolist() == raw["customer_id"].tolist()
    # Numeric by dtype; zip is an integer column forced to labels; email is ignored; the id
    # is never a feature.
    assert users.features.numeric == ("age", "income", "avg_order_value")
    assert users.features.categorical == ("store", "zip", "tier")
    assert "email" not in frame.columns and "customer_id" not in frame.columns
    assert users.extra == ()
    for name in users.features.numeric:
        assert frame[name].dtype == np.float64
    np.testing.assert_array_equal(frame["age"].to_numpy(), raw["age"].to_numpy(dtype=float))
    assert np.isnan(frame["income"].iloc[1])
    assert not ptypes.is_numeric_dtype(frame["zip"].dtype)
    assert frame["zip"].tolist() == [str(z) for z in raw["zip"]]
    assert frame["store"].tolist() == raw["store"].tolist()
    assert len(frame) == len(raw)


def test_listed_features_and_extra_columns(tmp_path):
    _write(tmp_path)
    data = _config()
    data["users"] = {
        "file": "customers.csv",
        "id": "customer_id",
        "features": "listed",
        "numeric": ["age"],
        "categorical": ["store"],
        "ignore": ["email"],
    }
    users, _ = _load(tmp_path, data)
    assert users.features == FeatureSpec(("age",), ("store",))
    assert list(users.frame.columns) == ["user_id", "age", "store"]
    assert set(users.extra) == {"income", "zip", "tier", "avg_order_value"}


def test_log_mapping_recounted_row_by_row(tmp_path):
    _write(tmp_path)
    _, log = _load(tmp_path, _config())
    raw = _log()
    assert list(log.columns) == LOG_COLUMNS
    assert len(log) == len(raw)  # every input row once
    assert log["user_id"].dtype == np.int64
    assert log["campaign_id"].dtype == np.int32
    assert log["converted"].dtype == np.int8 and log["redeemed"].dtype == np.int8
    assert log["user_id"].tolist() == raw["customer_id"].tolist()
    waves = sorted(set(raw["wave"]))
    for i, row in raw.iterrows():
        out = log.iloc[i]
        assert out["denomination"] == ARMS[row["variant"]]
        assert out["converted"] == row["bought"]
        assert out["redeemed"] == row["used_coupon"]
        expected_value = 0.0 if pd.isna(row["revenue"]) else row["revenue"]
        assert out["order_value"] == expected_value
        face = 10.0 if ARMS[row["variant"]] == "10off99" else 0.0
        assert out["discount"] == (face if row["used_coupon"] == 1 else 0.0)
        assert out["campaign_id"] == waves.index(row["wave"])
        assert out["assignment"] == "randomized"
        assert out["propensity"] == pytest.approx(1 / 3)  # uniform over three arm labels


def test_randomized_column_marks_rows(tmp_path):
    _write(tmp_path)
    _, log = _load(tmp_path, _config(randomized={"column": "design", "values": ["rct"]}))
    expected = ["randomized" if d == "rct" else "manual" for d in _log()["design"]]
    assert log["assignment"].tolist() == expected


def test_integer_arm_labels_map_from_toml_string_keys(tmp_path):
    users = pd.DataFrame({"id": [1, 2, 3, 4], "x": [0.5, 1.5, 2.5, 3.5]})
    log = pd.DataFrame({"id": [1, 2, 3, 4], "treated": [0, 1, 1, 0], "y": [0, 1, 0, 1]})
    users.to_csv(tmp_path / "u.csv", index=False)
    log.to_csv(tmp_path / "l.csv", index=False)
    menu = Menu.model_validate({"denomination": [{"name": "promo", "kind": "message"}]})
    data = {
        "users": {"file": "u.csv", "id": "id"},
        "log": {
            "file": "l.csv",
            "id": "id",
            "arm": "treated",
            "arms": {"0": "none", "1": "promo"},
            "outcome": "y",
        },
    }
    _, out = _load(tmp_path, data, menu)
    assert out["denomination"].tolist() == ["none", "promo", "promo", "none"]
    assert out["converted"].tolist() == [0, 1, 0, 1]
    assert np.allclose(out["propensity"], 0.5)


def test_propensity_constant_per_arm(tmp_path):
    _write(tmp_path)
    table = {"A": 0.25, "B": 0.25, "control": 0.5}
    _, log = _load(tmp_path, _config(propensity={"arms": table}))
    expected = [table[a] for a in _log()["variant"]]
    np.testing.assert_allclose(log["propensity"].to_numpy(), expected)


def test_propensity_column(tmp_path):
    _write(tmp_path)
    _, log = _load(tmp_path, _config(propensity={"column": "p"}))
    np.testing.assert_allclose(log["propensity"].to_numpy(), _log()["p"].to_numpy())


def test_propensity_per_arm_columns_pick_the_received_arm(tmp_path):
    _write(tmp_path)
    # Deliberately listed in another order than data.log.arms.
    columns = {"control": "p_c", "A": "p_a", "B": "p_b"}
    _, log = _load(tmp_path, _config(propensity={"columns": columns}))
    raw = _log()
    expected = []
    for _, row in raw.iterrows():
        expected.append(row[columns[row["variant"]]])
    np.testing.assert_allclose(log["propensity"].to_numpy(), expected)


def test_two_campaigns_may_hold_the_same_customer(tmp_path):
    _write(tmp_path)
    _, log = _load(tmp_path, _config())
    assert (log["user_id"] == 101).sum() == 2
    assert log.loc[log["user_id"] == 101, "campaign_id"].nunique() == 2


# --------------------------------------------------------------------------- shared file


def _shared() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "V1": [1, 0, 2, 1, 0, 2],
            "V2": [0.3, -1.2, 2.5, 0.0, 1.1, -0.4],
            "V3": ["x", "y", "x", "z", "y", "x"],
            "Promotion": ["Yes", "No", "Yes", "No", "Yes", "No"],
            "purchase": [1, 0, 0, 1, 0, 0],
            "spend": [10.0, 0.0, 0.0, 12.5, 0.0, 0.0],
            "p_yes": [0.5, 0.5, 0.6, 0.4, 0.5, 0.5],
            "p_no": [0.5, 0.5, 0.4, 0.6, 0.5, 0.5],
            "design": ["rct", "rct", "rct", "rct", "other", "rct"],
        }
    )


def _shared_config(**users_changes) -> dict:
    users = {"file": "shared.csv", "categorical": ["V1"]}
    users.update(users_changes)
    return {
        "users": users,
        "log": {
            "file": "shared.csv",
            "arm": "Promotion",
            "arms": {"Yes": "promotion", "No": "none"},
            "outcome": "purchase",
            "order_value": "spend",
            "propensity": {"columns": {"Yes": "p_yes", "No": "p_no"}},
            "randomized": {"column": "design", "values": ["rct"]},
        },
    }


STARBUCKS = Menu.model_validate(
    {"denomination": [{"name": "promotion", "kind": "message", "send_cost": 0.15}]}
)


def test_shared_file_without_ids(tmp_path):
    raw = _shared()
    raw.to_csv(tmp_path / "shared.csv", index=False)
    users, log = _load(tmp_path, _shared_config(), STARBUCKS)
    n = len(raw)
    assert users.frame["user_id"].tolist() == list(range(1, n + 1))
    assert log["user_id"].tolist() == list(range(1, n + 1))
    # The log's columns are never features; V1 is forced to labels.
    assert users.features == FeatureSpec(("V2",), ("V1", "V3"))
    assert list(users.frame.columns) == ["user_id", "V2", "V1", "V3"]
    assert users.frame["V1"].tolist() == [str(v) for v in raw["V1"]]
    assert users.extra == ()
    assert log["denomination"].tolist() == [
        "promotion" if a == "Yes" else "none" for a in raw["Promotion"]
    ]
    assert log["converted"].tolist() == raw["purchase"].tolist()
    assert log["order_value"].tolist() == raw["spend"].tolist()
    picked = [r["p_yes"] if r["Promotion"] == "Yes" else r["p_no"] for _, r in raw.iterrows()]
    np.testing.assert_allclose(log["propensity"].to_numpy(), picked)
    assert log["assignment"].tolist() == [
        "randomized" if d == "rct" else "manual" for d in raw["design"]
    ]


def test_shared_file_all_features_ignore(tmp_path):
    _shared().to_csv(tmp_path / "shared.csv", index=False)
    users, _ = _load(tmp_path, _shared_config(categorical=[], ignore=["V3"]), STARBUCKS)
    # V1 is an integer column: numeric by dtype once the override is gone.
    assert users.features == FeatureSpec(("V1", "V2"), ())
    assert users.frame["V1"].dtype == np.float64


@pytest.mark.parametrize("side", ["users", "log"])
def test_shared_file_with_an_id_on_one_side_only(tmp_path, side):
    frame = pd.DataFrame(
        {"ID": [3, 1, 2], "x": [1.0, 2.0, 3.0], "arm": ["A", "B", "A"], "y": [1, 0, 0]}
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    data = {
        "users": {"file": "s.csv"},
        "log": {
            "file": "s.csv",
            "arm": "arm",
            "arms": {"A": "promotion", "B": "none"},
            "outcome": "y",
        },
    }
    data[side]["id"] = "ID"
    try:
        users, log = _load(tmp_path, data, STARBUCKS)
    except (InputError, ValidationError):
        return  # refusing the configuration is a fine answer
    # Otherwise each log row must be joined to the customer of the same file row.
    assert log["user_id"].tolist() == users.frame["user_id"].tolist()


# --------------------------------------------------------------------------- configuration


def test_separate_files_need_ids():
    data = _config()
    del data["log"]["id"]
    with pytest.raises(ValidationError):
        DataConfig.model_validate(data)
    with pytest.raises(InputError) as excinfo:
        validate(DataConfig, data, source="campaign.toml")
    _error(excinfo, "campaign.toml", "users.id and log.id")
    data = _config()
    del data["users"]["id"]
    with pytest.raises(ValidationError):
        DataConfig.model_validate(data)


def test_arms_need_a_control():
    data = _config()
    data["log"]["arms"] = {"A": "10off99", "B": "promo"}
    with pytest.raises(InputError) as excinfo:
        validate(DataConfig, data, source="campaign.toml")
    _error(excinfo, "campaign.toml", "log.arms", "'none'")


def test_propensity_arms_outside_unit_interval_named():
    data = _config(propensity={"arms": {"A": 1.5, "B": 0.25, "control": 0.25}})
    with pytest.raises(ValidationError):
        DataConfig.model_validate(data)
    with pytest.raises(InputError) as excinfo:
        validate(DataConfig, data, source="campaign.toml")
    _error(excinfo, "campaign.toml", "log.propensity", "1.5")


def test_propensity_needs_exactly_one_form():
    data = _config(propensity={"column": "p", "arms": {"A": 0.5, "B": 0.25, "control": 0.25}})
    with pytest.raises(ValidationError):
        DataConfig.model_validate(data)


def test_arm_mapped_off_the_menu(tmp_path):
    _write(tmp_path)
    data = _config(arms={"A": "10off99", "B": "promo", "control": "none", "D": "bogus"})
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, data)
    assert excinfo.value.key == "data.log.arms"
    _error(excinfo, "data.log.arms", "'D'", "'bogus'")


def test_arm_mapped_off_the_menu_in_a_campaign_file():
    campaign = {
        "menu": MENU.model_dump(mode="json", exclude_none=True),
        "manual": {"denomination": "promo"},
        "data": _config(arms={"A": "10off99", "B": "bogus", "control": "none"}),
    }
    with pytest.raises(ValidationError):
        CampaignConfig.model_validate(campaign)
    with pytest.raises(InputError) as excinfo:
        validate(CampaignConfig, campaign, source="campaign.toml")
    assert excinfo.value.key == "data.log.arms"
    _error(excinfo, "campaign.toml", "data.log.arms", "'bogus'")
    # The same section with arms on the menu is accepted.
    campaign["data"] = _config()
    assert validate(CampaignConfig, campaign).data.log.arms == ARMS


def test_menu_treatment_without_an_arm(tmp_path):
    _write(tmp_path)
    menu = Menu.model_validate(
        {
            "denomination": [
                *MENU.model_dump(mode="json", exclude_none=True)["denomination"],
                {"name": "20off199", "face_value": 20.0, "threshold": 199.0},
            ]
        }
    )
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(), menu)
    assert excinfo.value.key == "data.log.arms"
    _error(excinfo, "'20off199'")


# --------------------------------------------------------------------------- bad files


def test_misspelt_log_column_suggests_the_close_name(tmp_path):
    _write(tmp_path)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(outcome="bougth"))
    _error(excinfo, str(tmp_path / "log.csv"), "'bougth'", "did you mean 'bought'")


def test_misspelt_users_column_suggests_the_close_name(tmp_path):
    _write(tmp_path)
    data = _config()
    data["users"]["segment"] = "teir"
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, data)
    _error(excinfo, str(tmp_path / "customers.csv"), "'teir'", "did you mean 'tier'")


def test_misspelt_listed_feature_suggests_the_close_name(tmp_path):
    _write(tmp_path)
    data = _config()
    data["users"] = {"file": "customers.csv", "id": "customer_id", "features": "listed"}
    data["users"]["numeric"] = ["agee"]
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, data)
    _error(excinfo, str(tmp_path / "customers.csv"), "'agee'", "did you mean 'age'")


@pytest.mark.parametrize("key,name", [("categorical", "zpi"), ("ignore", "emial")])
def test_misspelt_names_in_feature_lists_are_refused(tmp_path, key, name):
    _write(tmp_path)
    data = _config()
    data["users"][key] = [name]
    with pytest.raises(InputError) as excinfo:
        load_users_mapped(DataConfig.model_validate(data), base=tmp_path)
    _error(excinfo, f"'{name}'")


def test_arm_label_not_in_arms(tmp_path):
    log = _log()
    log.loc[3, "variant"] = "D"
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    _error(excinfo, str(tmp_path / "log.csv"), "column 'variant'", "'D'", "row 4")


def test_outcome_not_binary(tmp_path):
    log = _log()
    log.loc[2, "bought"] = 2
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    text = _error(excinfo, str(tmp_path / "log.csv"), "column 'bought'", "row 3", "2")
    assert "rows" not in text


@pytest.mark.parametrize("value,row", [(0.0, 2), (1.5, 5)])
def test_propensity_column_outside_unit_interval(tmp_path, value, row):
    log = _log()
    log.loc[row - 1, "p"] = value
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(propensity={"column": "p"}))
    _error(excinfo, str(tmp_path / "log.csv"), "column 'p'", f"row {row}", f"{value!r}")


@pytest.mark.parametrize("case", ["outcome", "propensity", "constant"])
def test_messages_show_plain_numbers(tmp_path, case):
    log = _log()
    data = _config()
    if case == "outcome":
        log.loc[2, "bought"] = 2
    elif case == "propensity":
        log.loc[1, "p"] = 0.0
        data = _config(propensity={"column": "p"})
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        if case == "constant":
            frame = pd.DataFrame({"flat": [3.0, 3.0]})
            check_features(frame, FeatureSpec(("flat",), ()), "c.csv")
        else:
            _load(tmp_path, data)
    assert "np." not in excinfo.value.message, excinfo.value.message


def test_propensity_columns_must_sum_to_one(tmp_path):
    log = _log()
    log.loc[1, "p_a"] = 0.1  # row 2 sums to 0.9
    log.loc[4, "p_c"] = 0.3  # row 5 sums to 1.2
    _write(tmp_path, log=log)
    columns = {"A": "p_a", "B": "p_b", "control": "p_c"}
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(propensity={"columns": columns}))
    text = _error(excinfo, str(tmp_path / "log.csv"), "p_a", "p_b", "p_c", "rows 2, 5")
    assert "0.9" in text


def test_received_arm_with_zero_propensity(tmp_path):
    log = _log()
    log.loc[0, ["p_a", "p_b", "p_c"]] = [0.0, 0.5, 0.5]  # row 1 got A
    _write(tmp_path, log=log)
    columns = {"A": "p_a", "B": "p_b", "control": "p_c"}
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(propensity={"columns": columns}))
    _error(excinfo, str(tmp_path / "log.csv"), "column 'p_a'", "row 1")


def test_duplicated_ids_in_the_users_file(tmp_path):
    customers = _customers()
    customers["customer_id"] = [101, 102, 103, 102, 101]
    _write(tmp_path, customers=customers)
    with pytest.raises(InputError) as excinfo:
        load_users_mapped(DataConfig.model_validate(_config()), base=tmp_path)
    _error(excinfo, str(tmp_path / "customers.csv"), "column 'customer_id'", "rows 4, 5")


def test_duplicated_campaign_customer_rows(tmp_path):
    log = _log()
    log.loc[5, "wave"] = "2024-02"  # customer 101 twice in campaign 2024-02: rows 1 and 6
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    _error(excinfo, str(tmp_path / "log.csv"), "column 'customer_id'", "101", "row 6")


def test_duplicated_customer_without_campaign_column(tmp_path):
    _write(tmp_path)
    data = _config()
    del data["log"]["campaign"]
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, data)
    _error(excinfo, str(tmp_path / "log.csv"), "101", "row 6")


def test_logged_customers_missing_from_users(tmp_path):
    log = _log()
    log.loc[2, "customer_id"] = 999
    log.loc[4, "customer_id"] = 998
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    _error(
        excinfo,
        str(tmp_path / "log.csv"),
        str(tmp_path / "customers.csv"),
        "2 logged customers",
        "999",
        "rows 3, 5",
    )


@pytest.mark.parametrize("value,fragment", [(102.5, "non-integer"), ("abc", "'abc'")])
def test_non_integer_user_ids(tmp_path, value, fragment):
    customers = _customers()
    customers["customer_id"] = customers["customer_id"].astype(object)
    customers.loc[1, "customer_id"] = value
    _write(tmp_path, customers=customers)
    with pytest.raises(InputError) as excinfo:
        load_users_mapped(DataConfig.model_validate(_config()), base=tmp_path)
    _error(excinfo, str(tmp_path / "customers.csv"), "column 'customer_id'", "row 2", fragment)


def test_non_integer_log_ids(tmp_path):
    log = _log()
    log["customer_id"] = log["customer_id"].astype(float)
    log.loc[4, "customer_id"] = np.nan
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    _error(excinfo, str(tmp_path / "log.csv"), "column 'customer_id'", "row 5")


def test_numeric_feature_holding_text(tmp_path):
    customers = _customers()
    customers["age"] = customers["age"].astype(object)
    customers.loc[2, "age"] = "abc"
    _write(tmp_path, customers=customers)
    data = _config()
    data["users"]["numeric"] = ["age"]
    with pytest.raises(InputError) as excinfo:
        load_users_mapped(DataConfig.model_validate(data), base=tmp_path)
    _error(excinfo, str(tmp_path / "customers.csv"), "column 'age'", "'abc'", "row 3")


def test_text_column_inferred_as_label_when_not_listed(tmp_path):
    customers = _customers()
    customers["age"] = customers["age"].astype(object)
    customers.loc[2, "age"] = "abc"
    _write(tmp_path, customers=customers)
    users = load_users_mapped(DataConfig.model_validate(_config()), base=tmp_path)
    assert "age" in users.features.categorical


def test_check_features_refuses_constant_and_missing(tmp_path):
    frame = pd.DataFrame(
        {
            "ok": [1.0, 2.0, np.nan],
            "flat": [3.0, np.nan, 3.0],
            "void": [np.nan, np.nan, np.nan],
            "label": ["a", "a", "a"],
        }
    )
    check_features(frame, FeatureSpec(("ok",), ()), "c.csv")
    for spec, name, fragment in (
        (FeatureSpec(("ok", "flat"), ()), "flat", "constant"),
        (FeatureSpec(("ok", "void"), ()), "void", "missing"),
        (FeatureSpec(("ok",), ("label",)), "label", "constant"),
    ):
        with pytest.raises(InputError) as excinfo:
            check_features(frame, spec, tmp_path / "c.csv")
        _error(excinfo, str(tmp_path / "c.csv"), f"column '{name}'", fragment, "data.users.ignore")


def test_no_randomized_rows(tmp_path):
    _write(tmp_path)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(randomized={"column": "design", "values": ["experiment"]}))
    _error(excinfo, str(tmp_path / "log.csv"), "column 'design'", "'experiment'")


def test_arm_without_randomized_rows(tmp_path):
    log = _log()
    log.loc[[1, 4], "design"] = "manual"  # every B row manual
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config(randomized={"column": "design", "values": ["rct"]}))
    _error(excinfo, str(tmp_path / "log.csv"), "column 'variant'", "'promo'")


def test_redeemed_without_coupon(tmp_path):
    log = _log()
    log.loc[2, "used_coupon"] = 1  # row 3: control, converted
    log.loc[3, "used_coupon"] = 1  # row 4: coupon A, not converted
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    _error(excinfo, str(tmp_path / "log.csv"), "column 'used_coupon'", "rows 3, 4")


def test_redeemed_message_is_refused(tmp_path):
    log = _log()
    log.loc[1, ["bought", "used_coupon"]] = [1, 1]  # row 2 got the message B and bought
    _write(tmp_path, log=log)
    with pytest.raises(InputError) as excinfo:
        _load(tmp_path, _config())
    _error(excinfo, str(tmp_path / "log.csv"), "column 'used_coupon'", "row 2")


# --------------------------------------------------------------------------- chunked reading


def _parquet_users(tmp_path: Path, ids=None) -> tuple[Path, DataConfig]:
    n = 11
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1001, 1001 + n) if ids is None else ids,
            "age": rng.integers(18, 80, n),
            "income": np.where(np.arange(n) % 4 == 0, np.nan, rng.normal(2000, 300, n)),
            "store": rng.choice(["north", "south", "east"], n),
            "zip": rng.integers(75001, 75005, n),
            "email": [f"u{i}@x" for i in range(n)],
        }
    )
    path = tmp_path / "customers.parquet"
    frame.to_parquet(path, index=False)
    cfg = DataConfig.model_validate(
        {
            "users": {
                "file": "customers.parquet",
                "id": "customer_id",
                "categorical": ["zip"],
                "ignore": ["email"],
            }
        }
    )
    return path, cfg


def test_chunks_equal_the_one_shot_load(tmp_path):
    path, cfg = _parquet_users(tmp_path)
    whole = load_users_mapped(cfg, base=tmp_path)
    chunks = list(iter_users_mapped(cfg, path, whole.features, chunk_rows=4))
    assert [len(c) for c in chunks] == [4, 4, 3]
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole.frame)
    # strict_extra accepts a file whose every column is mapped.
    list(iter_users_mapped(cfg, path, whole.features, chunk_rows=4, strict_extra=True))


def test_chunks_duplicated_id_across_chunks(tmp_path):
    ids = np.arange(1001, 1012)
    ids[9] = 1002  # row 10 repeats row 2, in another chunk
    path, cfg = _parquet_users(tmp_path, ids)
    spec = FeatureSpec(("age", "income"), ("store", "zip"))
    chunks = iter_users_mapped(cfg, path, spec, chunk_rows=4)
    with pytest.raises(InputError) as excinfo:
        list(chunks)
    _error(excinfo, str(path), "column 'customer_id'", "1002", "row 10")


def test_chunks_row_numbers_count_from_the_file_start(tmp_path):
    path, cfg = _parquet_users(tmp_path)
    frame = pd.read_parquet(path)
    frame["age"] = frame["age"].astype(str)  # numbers as text parse; one text does not
    frame.loc[6, "age"] = "abc"
    frame.to_parquet(path, index=False)
    spec = FeatureSpec(("age", "income"), ("store", "zip"))
    with pytest.raises(InputError) as excinfo:
        list(iter_users_mapped(cfg, path, spec, chunk_rows=4))
    _error(excinfo, str(path), "column 'age'", "row 7")


def test_chunks_strict_extra_names_the_column(tmp_path):
    path, cfg = _parquet_users(tmp_path)
    spec = load_users_mapped(cfg, base=tmp_path).features
    frame = pd.read_parquet(path)
    frame["loyalty_points"] = np.arange(len(frame))
    frame.to_parquet(path, index=False)
    # Without strict_extra the new column is read past.
    assert sum(len(c) for c in iter_users_mapped(cfg, path, spec, chunk_rows=4)) == len(frame)
    with pytest.raises(InputError) as excinfo:
        list(iter_users_mapped(cfg, path, spec, chunk_rows=4, strict_extra=True))
    _error(excinfo, str(path), "column 'loyalty_points'")


def test_chunks_label_float_categories_like_the_one_shot_load(tmp_path):
    frame = pd.DataFrame(
        {"id": [1, 2, 3, 4], "tier": [1.0, 2.0, 1.0, 2.5], "x": [1.0, 2.0, 3.0, 4.0]}
    )
    path = tmp_path / "c.parquet"
    frame.to_parquet(path, index=False)
    cfg = DataConfig.model_validate(
        {"users": {"file": "c.parquet", "id": "id", "categorical": ["tier"]}}
    )
    whole = load_users_mapped(cfg, base=tmp_path)
    joined = pd.concat(
        iter_users_mapped(cfg, path, whole.features, chunk_rows=2), ignore_index=True
    )
    assert joined["tier"].tolist() == whole.frame["tier"].tolist()


def test_large_integer_ids_stay_exact(tmp_path):
    big = 2**62 + np.arange(3, dtype=np.int64)  # beyond float64's exact integers
    frame = pd.DataFrame({"cid": big, "x": [1.0, 2.0, 3.0], "g": ["a", "b", "a"]})
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    config = DataConfig.model_validate({"users": {"file": "c.parquet", "id": "cid"}})
    users = load_users_mapped(config, base=tmp_path)
    assert users.frame["user_id"].tolist() == big.tolist()
