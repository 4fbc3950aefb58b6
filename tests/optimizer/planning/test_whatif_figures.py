"""The what-if grid's derived figures on hand-worked frames: marginal values and profit peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.planning import marginal_value, profit_peaks


def _frame() -> pd.DataFrame:
    """Two contexts, two policies, budgets given out of order."""
    rows = [
        # context, policy, budget, incremental conversions, incremental profit, expected cost
        ("a", "optimal", 3000.0, 40.0, 150.0, 2900.0),
        ("a", "optimal", 1000.0, 10.0, 100.0, 1000.0),
        ("a", "optimal", 2000.0, 30.0, 400.0, 1990.0),
        ("a", "manual", 1000.0, 5.0, -50.0, 1000.0),
        ("a", "manual", 3000.0, 9.0, -20.0, 3000.0),
        ("b", "optimal", 500.0, 2.0, 7.0, 450.0),
        ("b", "optimal", 4500.0, 42.0, 3.0, 4400.0),
    ]
    columns = ["context", "policy", "budget", "incremental_conversions", "incremental_profit",
               "expected_cost"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def test_marginal_value_is_the_step_in_conversions_over_the_step_in_budget():
    got = marginal_value(_frame())
    assert list(got.columns) == ["context", "policy", "from_budget", "to_budget", "per_money"]
    want = [
        ("a", "optimal", 1000.0, 2000.0, 20 / 1000),
        ("a", "optimal", 2000.0, 3000.0, 10 / 1000),
        ("a", "manual", 1000.0, 3000.0, 4 / 2000),
        ("b", "optimal", 500.0, 4500.0, 40 / 4000),
    ]
    assert len(got) == len(want)
    for row, (context, policy, low, high, per_money) in zip(got.itertuples(), want, strict=True):
        assert (row.context, row.policy) == (context, policy)
        assert (row.from_budget, row.to_budget) == (low, high)
        assert row.per_money == pytest.approx(per_money, rel=1e-12)


def test_marginal_value_of_a_repeated_budget_is_undefined_and_one_point_has_none():
    frame = _frame()
    twice = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)  # budget 1000 twice
    got = marginal_value(twice)
    optimal_a = got[(got["context"] == "a") & (got["policy"] == "optimal")]
    assert np.isnan(optimal_a["per_money"]).sum() == 1 and len(optimal_a) == 3
    assert marginal_value(frame.iloc[[0]]).empty


def test_profit_peaks_are_the_grid_point_of_highest_profit():
    got = profit_peaks(_frame()).set_index(["context", "policy"])
    assert got.loc[("a", "optimal"), "budget"] == 2000.0
    assert got.loc[("a", "optimal"), "incremental_profit"] == 400.0
    assert got.loc[("a", "optimal"), "expected_cost"] == 1990.0  # what the plan spends there
    assert got.loc[("a", "manual"), "budget"] == 3000.0  # the least negative
    assert got.loc[("b", "optimal"), "budget"] == 500.0
    assert len(got) == 3
