"""Strict JSON from every command that prints figures; fixed choices, --version, completion."""

from __future__ import annotations

import pytest
import typer.main

from cli import app
from tests import ROOT
from tests.cli import flat, strict_json


def test_figures_with_undefined_values_are_strict_json(runner, tmp_path):
    """A zero budget makes every ROI undefined: null, with a note, never NaN."""
    world = ["--population", "20000"]
    for args in (
        ["optimize", "--budget", "0", "--compare", *world],
        ["whatif", "--vary", "budget=0,3000", "--policies", "optimal,manual", *world],
        ["simulate", "--replications", "2", "--policies", "optimal", *world],
        ["generate", "--out", str(tmp_path / "w"), "--population", "2000"],
        ["validate", str(ROOT / "scenarios" / "article.toml")],
        ["validate", str(ROOT / "scenarios" / "menus" / "current.toml")],
        ["schema", "--kind", "log"],
    ):
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, (args, result.output)
        payload = strict_json(result.stdout)
        assert isinstance(payload, dict) and payload, args
        if args[0] in ("optimize", "whatif", "simulate"):
            assert "null stands for a figure that is not defined" in payload["notes"][0], args
    users = strict_json(runner.invoke(app, ["validate", str(tmp_path / "w" / "users.parquet"),
                                            "--json"]).stdout)  # fmt: skip
    assert users["kind"] == "users" and users["rows"] == 2000


def test_fixed_choices_are_usage_errors_listing_the_values(runner):
    for args, values in (
        (["optimize", "--objective", "fun"], "'fun' is not one of 'conversions', 'gmv', 'profit'"),
        (["optimize", "--solver", "fast"], "'auto', 'pulp', 'dual'"),
        (["simulate", "--design", "x"], "'split', 'paired'"),
        (["train", "--log", "a", "--users", "b", "--out", "c", "--head", "x"], "'shared'"),
        (["validate", "x.csv", "--kind", "x"], "'users', 'log'"),
        (["optimize", "--policies", "optimal,best"], "'best' is not a policy"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert values in flat(result.stderr), (args, result.stderr)
    help_text = flat(runner.invoke(app, ["optimize", "--help"], env={"COLUMNS": "200"}).stdout)
    assert "conversions|gmv|profit" in help_text and "auto|pulp|dual" in help_text


def test_version_and_completion(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("couponopt ")
    group = typer.main.get_command(app)
    assert {"--install-completion", "--show-completion"} <= {
        opt for param in group.params for opt in param.opts
    }


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-per-denomination", "10off99=-2"],
        ["--segment-share", "dormant=0.9:0.1"],
        ["--vary", "budget=1:2"],
    ],
)
def test_text_options_are_usage_errors(runner, flags):
    command = "whatif" if flags[0] == "--vary" else "optimize"
    result = runner.invoke(app, [command, *flags])
    assert result.exit_code == 2 and "Invalid value for" in flat(result.stderr)


def test_errors_name_the_flag_the_user_typed(runner, tmp_path):
    scores = ["--scores", str(tmp_path / "s.parquet")]
    for args, start in (
        (["optimize", *scores, "--users", "u.parquet", "--seed", "3"], "error: --seed: "),
        (["optimize", *scores, "--users", "u.parquet", "--population", "9"],
         "error: --population: "),
        (["optimize", *scores], "error: --users: a scores file needs its user table"),
        (["whatif", "--population", "20000", "--vary", "segments=foo"],
         "error: --vary: 'foo' is not a lifecycle stage"),
    ):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.stderr.startswith(start), (args, result.stderr)
    empty = runner.invoke(app, ["optimize", "--segments", ""])
    assert empty.exit_code == 2 and "give at least one name" in flat(empty.stderr)
