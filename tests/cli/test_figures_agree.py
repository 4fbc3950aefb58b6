"""What `optimize` prints and writes agrees: the plan file recounted, the JSON, the table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from scipy import stats

from cli import app


def test_optimize_json_table_and_plan_file_tell_the_same_figures(runner, tmp_path):
    out = tmp_path / "plan.parquet"
    args = ["optimize", "--budget", "5000", "--population", "30000", "--out", str(out)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    figures = payload["plans"]["optimal"]
    plan = pd.read_parquet(out)
    # Recounted from the plan file, one row per user.
    targeted = plan["denomination"] != "none"
    assert figures["users"] == len(plan) and figures["users_targeted"] == targeted.sum()
    assert figures["expected_cost"] == pytest.approx(plan["expected_cost"].sum(), rel=1e-9)
    assert figures["incremental_conversions"] == pytest.approx(
        plan["expected_uplift"].astype(float).sum(), rel=1e-5
    )
    assert (plan.loc[~targeted, "expected_cost"] == 0).all()
    assert (plan.loc[~targeted, "p_coupon"] == plan.loc[~targeted, "p_natural"]).all()
    uplift = plan["p_coupon"].astype(float) - plan["p_natural"].astype(float)
    assert (uplift - plan["expected_uplift"]).abs().max() < 1e-6
    by_denomination = plan.groupby("denomination", observed=True).agg(
        users=("user_id", "size"), expected_cost=("expected_cost", "sum")
    )
    for row in payload["by_denomination"]:
        if row["users"]:
            assert by_denomination.loc[row["denomination"], "users"] == row["users"]
            assert by_denomination.loc[row["denomination"], "expected_cost"] == pytest.approx(
                row["expected_cost"], rel=1e-9
            )
    # The definitions printed under the table, applied to the JSON's own figures.
    cost, gmv, margin = figures["expected_cost"], figures["incremental_gmv"], payload["margin_rate"]
    assert figures["roi"] == pytest.approx(gmv / cost, rel=1e-12)
    assert figures["incremental_profit"] == pytest.approx(margin * gmv - cost, rel=1e-12)
    assert figures["objective_value"] == pytest.approx(figures["incremental_conversions"])
    assert figures["gap"] == pytest.approx(
        (figures["upper_bound"] - figures["objective_value"]) / figures["upper_bound"], abs=1e-12
    )
    sd = (figures["spend_95_high"] - cost) / stats.norm.ppf(0.975)
    assert cost - figures["spend_95_low"] == pytest.approx(figures["spend_95_high"] - cost)
    assert figures["overrun_probability"] == pytest.approx(
        stats.norm.sf((payload["budget"] - cost) / sd), rel=1e-6
    )
    # The table prints the same figures, rounded as shown.
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    row = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in table.stdout.splitlines()
        if line.startswith("│")
    }
    assert row["users targeted"] == f"{figures['users_targeted']:,}"
    assert row["incremental conversions"] == f"{figures['incremental_conversions']:,.1f}"
    assert row["expected cost"] == f"{cost:,.0f}"
    assert row["incremental GMV"] == f"{gmv:,.0f}"
    assert row["ROI"] == f"{figures['roi']:.2f}"
    assert row["incremental profit"] == f"{figures['incremental_profit']:,.0f}"
    assert row["P(spend > budget)"] == f"{figures['overrun_probability']:.1%}"
