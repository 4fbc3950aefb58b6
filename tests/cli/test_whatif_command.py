"""`couponopt whatif`: the grid from flags or the file, tables, JSON, plots, scores files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cli import app
from simulator.workflows import score_scenario
from tests import ROOT
from tests.cli import flat


def test_whatif_command(runner, tmp_path):
    out = tmp_path / "grid.parquet"
    plots = tmp_path / "plots"
    args = ["whatif", "--population", "20000", "--vary", "budget=2000:8000:4",
            "--vary", "sms_cost=0.05,0.10", "--policies", "optimal,manual,v2"]  # fmt: skip
    result = runner.invoke(app, [*args, "--json", "--out", str(out), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    points = pd.DataFrame(payload["points"])
    assert len(points) == 2 * 4 * 3
    assert payload["varied"] == ["budget", "sms_cost"]
    for (_, policy), part in points.groupby(["context", "policy"]):
        part = part.sort_values("budget")
        assert (part["expected_cost"] <= part["budget"] + 1e-6).all()
        if policy == "optimal":
            assert (np.diff(part["incremental_conversions"]) >= -1e-9).all()
    # Messages cost more, the same money buys fewer conversions.
    optimal = points[points["policy"] == "optimal"].pivot(
        index="budget", columns="sms_cost", values="incremental_conversions"
    )
    assert (optimal[0.05] >= optimal[0.10] - 1e-9).all()
    assert len(payload["marginal_value"]) == 2 * 3 * 3
    assert len(payload["profit_peaks"]) == 2 * 3
    assert len(pd.read_parquet(out)) == len(points)
    for name in ("frontier.png", "roi.png", "mix.png"):
        assert (plots / name).stat().st_size > 10_000
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "What-if grid" in table.stdout
    # 80 columns: one row per point and policy, nothing cut short.
    grid_part = table.stdout.split("Marginal value")[0]
    assert "…" not in grid_part and "optimal" in grid_part
    assert "Marginal value of budget" in table.stdout


def test_vary_text_errors_are_usage_errors(runner):
    for item, message in (
        ("budget=5000:1000:3", "budget: stop 1000 must exceed start 5000"),
        ("budget=1:2", "expected budget=START:STOP:POINTS"),
        ("budget=abc", "Input should be a valid number"),
        ("sms_cost=-1", "SMS costs must be finite, >= 0"),
        ("margin_rate=1.5", "margin rates must be in [0, 1]"),
        ("colour=red", "AXIS one of budget, menu, sms_cost, margin_rate, segments"),
    ):
        result = runner.invoke(app, ["whatif", "--vary", item])
        assert result.exit_code == 2, item
        assert message in flat(result.stderr), (item, result.stderr)
    twice = runner.invoke(app, ["whatif", "--vary", "budget=1,2", "--vary", "budget=3"])
    assert twice.exit_code == 2 and "once per axis" in flat(twice.stderr)


def test_whatif_simulates_with_intervals(runner):
    args = ["whatif", "--population", "20000", "--vary", "budget=2000,6000", "--policies",
            "optimal,manual", "--simulate", "--replications", "2", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    points = pd.DataFrame(payload["points"])
    sim = "sim_incremental_conversions"
    assert payload["simulated"] and points[sim].notna().all()
    assert (points[f"{sim}_low"] < points[f"{sim}_high"]).all()
    assert (points["sim_campaign_cost"] > 0).all()


def test_worked_scenarios_run_their_grid(runner):
    """scenarios/menu_comparison.toml: its [whatif] grid, menu files relative to it."""
    path = ROOT / "scenarios" / "menu_comparison.toml"
    args = ["whatif", "--scenario", str(path), "--population", "20000", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    points = pd.DataFrame(payload["points"])
    assert payload["varied"] == ["budget", "menu"]
    assert set(points["menu"]) == {"current", "plus_20off199"}
    assert len(points) == 2 * 3 * 3
    # A menu with one more coupon can only help the optimal plan (up to its certified gap).
    optimal = points[points["policy"] == "optimal"].pivot(
        index="budget", columns="menu", values="upper_bound"
    )
    assert (optimal["plus_20off199"] >= optimal["current"] - 1e-6).all()
    assert "users__20off199" in points and points["users__20off199"].notna().any()


def test_whatif_on_a_scores_file(runner, small_scenario, tmp_path):
    from optimizer.io import write_table

    scored = score_scenario(small_scenario)
    write_table(scored.scores, tmp_path / "scores.parquet")
    write_table(scored.users, tmp_path / "users.parquet")
    files = ["--scores", str(tmp_path / "scores.parquet"), "--users",
             str(tmp_path / "users.parquet")]  # fmt: skip
    args = ["whatif", *files, "--vary", "budget=500,1000,2000", "--policies", "optimal,random"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    points = pd.DataFrame(json.loads(result.stdout)["points"])
    assert len(points) == 3 * 2
    assert (points["users"] == len(scored.scores)).all()  # every scored user is a candidate
    # Segments vary on a scores file too: each set plans its own users.
    staged = runner.invoke(app, [*args, "--vary", "segments=dormant,lapsed", "--json"])
    assert staged.exit_code == 0, staged.output
    points = pd.DataFrame(json.loads(staged.stdout)["points"])
    stages = scored.users["lifecycle_stage"].astype(str)
    for label, part in points.groupby("segments"):
        assert (part["users"] == (stages == label).sum()).all()
    # A menu axis works when the scores carry its coupons (here: a subset of the scored menu).
    current = ROOT / "scenarios" / "menus" / "current.toml"
    menus = runner.invoke(app, [*args, "--vary", f"menu={current}", "--json"])
    assert menus.exit_code == 0, menus.output
    points = pd.DataFrame(json.loads(menus.stdout)["points"])
    assert set(points["menu"]) == {"current"} and "users__20off199" not in points
    extra = tmp_path / "extra.toml"
    extra.write_text(current.read_text() + '[[denomination]]\nname = "30off299"\n'
                     "face_value = 30.0\nthreshold = 299.0\n")  # fmt: skip
    bad = runner.invoke(app, [*args, "--vary", f"menu={extra}"])
    assert bad.exit_code == 2
    assert "no column p_coupon__30off299: the scores were made for another menu" in bad.stderr
    bad = runner.invoke(app, [*args, "--simulate"])
    assert bad.exit_code == 2 and "simulating needs the scenario's world" in bad.stderr
