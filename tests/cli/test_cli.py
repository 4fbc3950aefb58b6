"""The couponopt command line: help with units, the main job, generate, atomic outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer.main

from cli import app
from optimizer.io import load_log, load_menu, load_truth, load_users
from simulator.scenario import load_scenario
from simulator.world import generation as generate_module
from tests import ROOT  # noqa: E402
from tests.cli import flat, strict_json

COMMANDS = sorted(typer.main.get_command(app).commands)


def test_every_option_has_help():
    group = typer.main.get_command(app)
    assert {"generate", "optimize", "validate", "schema"} <= set(COMMANDS)
    for name, command in group.commands.items():
        assert command.help, name
        for param in command.params:
            if param.name == "help":
                continue
            assert getattr(param, "help", None), (name, param.name)


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(runner, command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_help_states_units(runner):
    assert "currency units" in runner.invoke(app, ["optimize", "--help"]).stdout
    top = runner.invoke(app, ["--help"]).stdout
    assert "currency units" in top and "days" in top


def test_optimize_main_job_plans_the_embedded_scenario(runner, tmp_path):
    out = tmp_path / "plan.parquet"
    args = ["optimize", "--budget", "5000", "--population", "30000", "--out", str(out)]
    result = runner.invoke(app, [*args, "--compare"])
    assert result.exit_code == 0, result.output
    for fragment in (
        "Campaign plans (CNY)",
        "optimal",
        "manual",
        "v1",
        "v2",
        "uplift",
        "ROI = expected incremental GMV / campaign cost",
        "plan by denomination",
    ):
        assert fragment in " ".join(result.stdout.split())
    plan = pd.read_parquet(out)
    assert plan["user_id"].is_unique
    assert plan["expected_cost"].sum() <= 5000 + 1e-6
    # Second run: the trained models come from the cache, and --json prints only JSON.
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    payload = json.loads(again.stdout)
    assert payload["plans"]["optimal"]["expected_cost"] <= 5000 + 1e-6
    assert payload["plans"]["optimal"]["users_targeted"] == int(
        (plan["denomination"] != "none").sum()
    )


def test_optimize_takes_constraints_from_the_scenario_and_the_command_line(runner, tmp_path):
    scenario = tmp_path / "tight.toml"
    text = (ROOT / "scenarios" / "default.toml").read_text()
    text = text.replace(
        'segment_column = "lifecycle_stage"',
        'segment_column = "city_tier"\nmax_messages = 900\n'
        'max_per_denomination = { "5off49" = 100 }\n'
        "[constraints.segment_shares.1]\nmin = 0.4\n",
    )
    scenario.write_text(text)
    out = tmp_path / "plan.csv"
    args = ["optimize", "--scenario", str(scenario), "--population", "30000", "--budget", "5000"]
    result = runner.invoke(app, [*args, "--json", "--compare", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["constraints"] == {
        "max_per_denomination": {"5off49": 100},
        "max_messages": 900,
        "segment_shares": {"1": {"min": 0.4, "max": 1.0}},
    }
    assert payload["segment_column"] == "city_tier"
    for summary in payload["plans"].values():
        assert summary["users_targeted"] <= 900 and summary["expected_cost"] <= 5000 + 1e-6
    tier_one = next(r for r in payload["by_segment"] if r["segment"] == "1")
    assert tier_one["message_share"] >= 0.4 - 1e-9
    plan = pd.read_csv(out)
    assert (plan["denomination"] == "5off49").sum() <= 100
    # The command line overrides the scenario; a table names the segment column.
    wider = runner.invoke(app, [*args, "--max-messages", "2000", "--segment-share", "1=:0.3"])
    assert wider.exit_code == 0, wider.output
    shown = " ".join(wider.stdout.split())
    assert "optimal plan by city_tier" in shown and "max_messages 2000" in shown
    bad = runner.invoke(app, [*args, "--segment-share", "1=0.9:0.1"])
    assert bad.exit_code == 2 and "expected SEGMENT=MIN:MAX items" in flat(bad.stderr)
    unknown = runner.invoke(app, [*args, "--segment-share", "9=0.1:"])
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: --segment-share: segment '9' is not among")
    # A value from the file is named by its key, a value from a flag by the flag.
    scenario.write_text(text.replace("min = 0.4", "min = 0.4\n[constraints.segment_shares.9]"))
    from_file = runner.invoke(app, args)
    assert from_file.exit_code == 2
    assert from_file.stderr.startswith("error: constraints.segment_shares: segment '9'")


def test_optimize_degenerate_inputs_give_empty_plans_or_one_line(runner):
    base = ["optimize", "--population", "30000", "--json", "--compare"]
    for extra in (["--budget", "0.01"], ["--budget", "5000", "--max-messages", "0"]):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 0, result.output
        for name, summary in json.loads(result.stdout)["plans"].items():
            assert summary["users_targeted"] == 0, name
    caps = ",".join(f"{d}=0" for d in load_scenario(None).menu.names)
    none = runner.invoke(app, [*base, "--budget", "5000", "--max-per-denomination", caps])
    assert (
        none.exit_code == 0 and json.loads(none.stdout)["plans"]["optimal"]["users_targeted"] == 0
    )
    too_much = runner.invoke(
        app, [*base, "--budget", "5000", "--segment-column", "city_tier", "--segment-share",
              "1=0.7:,2=0.7:"],
    )  # fmt: skip
    assert too_much.exit_code == 2
    assert too_much.stderr.strip() == (
        "error: --segment-share: the minimum shares add up to more than 1"
    )


def test_generate_writes_every_table(runner, tmp_path, small_scenario):
    out = tmp_path / "world"
    result = runner.invoke(
        app, ["generate", "--population", "3000", "--seed", "5", "--out", str(out), "--csv"]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert names == {
        "users.parquet",
        "history.parquet",
        "truth.parquet",
        "users.csv",
        "history.csv",
        "truth.csv",
        "menu.toml",
        "scenario.toml",
        "campaign.toml",
        "_manifest.json",
    }
    scenario = load_scenario(out / "scenario.toml")
    assert scenario.population.users == 3000 and scenario.population.seed == 5
    menu = load_menu(out / "menu.toml")
    assert menu == scenario.menu
    assert len(load_users(out / "users.parquet")) == 3000
    assert len(load_truth(out / "truth.csv", menu)) == 3000
    assert len(load_log(out / "history.parquet", menu)) > 0
    for fragment in ("Synthetic population: 3,000 users", "Uplift archetypes", "Campaign log"):
        assert fragment in result.stdout
    # No staging directories left beside the output.
    assert [p.name for p in tmp_path.iterdir()] == ["world"]


def test_interrupted_generate_leaves_nothing(runner, tmp_path, monkeypatch):
    out = tmp_path / "world"
    real = generate_module.generate_users

    def failing(scenario, block, n, params):
        if block == 1:
            raise KeyboardInterrupt
        return real(scenario, block, n, params)

    monkeypatch.setattr(generate_module, "generate_users", failing)
    result = runner.invoke(app, ["generate", "--population", "70000", "--out", str(out)])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert not out.exists() or not any(out.iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name != "world"] == []


def test_existing_outputs_survive_a_failed_run(runner, tmp_path, monkeypatch):
    out = tmp_path / "world"
    assert (
        runner.invoke(app, ["generate", "--population", "1000", "--out", str(out)]).exit_code == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def failing(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate_module, "generate_users", failing)
    result = runner.invoke(app, ["generate", "--population", "2000", "--out", str(out)])
    assert result.exit_code == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_full_disk_is_one_line_exit_1_and_leaves_nothing(runner, tmp_path, monkeypatch):
    """The system refusing a write (ENOSPC here) ends in one line naming the file, exit 1."""
    import errno

    out = tmp_path / "world"

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "users.parquet"))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    monkeypatch.setattr("pyarrow.parquet.ParquetWriter.write_table", full)
    result = runner.invoke(app, ["generate", "--population", "1000", "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "No space left" in lines[0]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no world, no staging folder


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["optimize", "--budget", "nan"], "Invalid value for '--budget'"),
        (["optimize", "--bugdet", "5"], "No such option: --bugdet"),
        (["optimize", "--menu", "."], "'.' is a directory"),
        (["whatif", "--vary", "budget="], "give at least one budget"),
        (["optimize", "--objective", "fame"], "'fame'"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(runner, args, fragment):
    """click's usage errors print as one line (not typer's box), naming the flag, exit 2."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "╭" not in result.output and "Traceback" not in result.output


def test_validate_checks_a_folder_against_its_manifest(runner, tmp_path):
    out = tmp_path / "world"
    assert (
        runner.invoke(app, ["generate", "--population", "1000", "--out", str(out)]).exit_code == 0
    )
    result = runner.invoke(app, ["validate", str(out), "--json"])
    assert result.exit_code == 0 and strict_json(result.stdout)["files"] == 6, result.output
    (out / "notes.txt").write_text("added")
    result = runner.invoke(app, ["validate", str(out)])
    assert result.exit_code == 2 and "notes.txt: not in _manifest.json" in result.stderr
    (out / "notes.txt").unlink()
    data = (out / "users.parquet").read_bytes()
    (out / "users.parquet").write_bytes(data[: len(data) // 2])
    result = runner.invoke(app, ["validate", str(out)])
    assert (
        result.exit_code == 2 and "users.parquet" in result.stderr and "truncated" in result.stderr
    )


def test_schema_command_lists_the_contract(runner):
    result = runner.invoke(app, ["schema", "--kind", "scores"])
    assert result.exit_code == 0
    assert "p_coupon__10off99" in result.stdout
    bad = runner.invoke(app, ["schema", "--kind", "nope"])
    assert bad.exit_code == 2 and "'nope' is not one of" in flat(bad.stderr)
    menu = runner.invoke(app, ["schema", "--kind", "menu"])
    assert menu.exit_code == 2 and "no table schema for menu" in menu.stderr


def test_python_cli_py_works_from_the_root():
    result = subprocess.run(
        [sys.executable, "cli.py", "validate", "scenarios/article.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "scenario 'article'" in result.stdout


def test_console_script_is_installed():
    exe = shutil.which("couponopt", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("couponopt console script not installed in this environment (pip install -e .)")
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "generate" in result.stdout


def test_optimize_matched_and_screened(runner, tmp_path):
    """--match v2 --match-on spend: the optimal plan spends no more than v2 would and expects
    at least its conversions; --screen: nobody above the natural-probability cut is sent a
    coupon."""
    out = tmp_path / "plan.csv"
    base = ["optimize", "--population", "30000", "--budget", "3000", "--json", "--compare"]
    cut = ["--v2-threshold", "0.3"]
    v2 = json.loads(runner.invoke(app, [*base, *cut]).stdout)["plans"]["v2"]
    args = [*base, *cut, "--match", "v2", "--match-on", "spend", "--screen"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["match"] == {"policies": ["v2"], "on": "spend"}
    optimal = payload["plans"]["optimal"]
    assert optimal["expected_cost"] <= v2["expected_cost"] + 1e-6
    # v2's plan keeps the screen and fits v2's spend, so the optimal plan expects no fewer.
    assert optimal["incremental_conversions"] >= v2["incremental_conversions"] - 1e-6
    plan = pd.read_csv(out)
    sent = plan[plan["denomination"] != "none"]
    assert len(sent) and (sent["p_natural"] <= 0.3 + 1e-6).all()
    bad = runner.invoke(app, [*base, "--match", "optimal"])
    assert bad.exit_code == 2 and "'optimal' is not a policy" in flat(bad.stderr)


def test_optimize_segments_plans_and_trains_on_those_stages(runner):
    import os

    from optimizer.models import ConversionModels

    args = ["optimize", "--population", "20000", "--budget", "500", "--segments", "lapsed"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["targeting"]["segments"] == ["lapsed"]
    assert payload["by_segment"][0]["segment"] == "lapsed" and len(payload["by_segment"]) == 1
    cache = Path(os.environ["COUPONOPT_CACHE"])
    trained = [ConversionModels.load(d).segment for d in cache.glob("models-*")]
    assert ["lapsed"] in trained
    bad = runner.invoke(app, [*args[:-1], "sleepy"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --segments: ")


def test_a_flexible_budget_plans_every_policy_at_the_money_worth_its_return(runner):
    args = ["optimize", "--population", "30000", "--marginal-return", "0.01", "--json"]
    payload = strict_json(runner.invoke(app, [*args, "--compare"]).stdout)
    budgets = {round(p["budget"], 6) for p in payload["plans"].values()}
    assert len(budgets) == 1 and payload["marginal_return"] == 0.01
    optimal = payload["plans"]["optimal"]
    assert optimal["expected_cost"] <= optimal["budget"] + 1e-6
    assert optimal["marginal_return"] == pytest.approx(0.01, rel=0.05)
    # one more unit of money at a given budget returns that budget's marginal return
    more = ["optimize", "--population", "30000", "--budget", str(optimal["budget"] * 1.5)]
    fixed = strict_json(runner.invoke(app, [*more, "--json"]).stdout)
    assert fixed["plans"]["optimal"]["marginal_return"] < optimal["marginal_return"]
    both = runner.invoke(app, [*more, "--marginal-return", "0.01"])  # never one silently ignored
    assert both.exit_code == 2 and both.stderr.startswith("error: --marginal-return: a flexible")
