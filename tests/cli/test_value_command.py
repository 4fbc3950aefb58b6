"""`couponopt value`: plans valued on a randomized log from the command line.

Hillstrom (read from ../shared/data with the shipped configuration): models trained briefly,
the policies planned and valued on the customers the models held out, strict JSON out; figures
of treat-all plan files recounted from the raw CSV. Bad input: one line, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from optimizer.io.campaign_log import user_split
from optimizer.io.datasets import data_dir

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "scenarios" / "own_data" / "hillstrom_email.toml"

pytestmark = pytest.mark.skipif(
    not data_dir().is_dir(), reason=f"shared data folder {data_dir()} is absent"
)


def _run(*args: object, code: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hillstrom") / "models"
    _run("train", "--config", CONFIG, "--out", out, "--max-epochs", "2")
    return out


def test_policies_valued_on_held_out_customers(models):
    result = _run(
        "value", "--config", CONFIG, "--models", models, "--policies", "optimal,v2,manual",
        "--objective", "profit", "--bootstrap", "20", "--json",
    )  # fmt: skip
    payload = json.loads(result.stdout)
    raw = pd.read_csv(data_dir() / "hillstrom" / "hillstrom.csv.gz")
    held_out = int(user_split(pd.RangeIndex(1, len(raw) + 1).to_numpy(), 0.2, 0).sum())
    assert payload["rows"] == held_out and "held out" in payload["rows_note"]
    plans = {e["plan"] for e in payload["estimates"]}
    assert plans == {"optimal", "v2", "manual"}
    pairs = {e["plan"] for e in payload["differences"]}
    assert pairs == {"optimal - v2", "optimal - manual"}
    for e in payload["estimates"]:
        if e["metric"] != "roi":
            assert e["low"] <= e["estimate"] <= e["high"]
            assert e["total"] == pytest.approx(e["estimate"] * len(raw))
    for d in payload["diagnostics"]:
        assert d["matched_rows"] <= held_out


def test_plan_files_treat_all_and_none(tmp_path):
    raw = pd.read_csv(data_dir() / "hillstrom" / "hillstrom.csv.gz")
    ids = pd.RangeIndex(1, len(raw) + 1)
    pd.DataFrame({"user_id": ids, "denomination": "womens"}).to_csv(tmp_path / "all.csv")
    pd.DataFrame({"user_id": ids, "denomination": "none"}).to_csv(tmp_path / "none.csv")
    result = _run(
        "value", "--config", CONFIG, "--plan", tmp_path / "all.csv", "--plan",
        tmp_path / "none.csv", "--estimators", "snipw", "--bootstrap", "0", "--json",
        "--out", tmp_path / "estimates.csv",
    )  # fmt: skip
    payload = json.loads(result.stdout)
    womens = raw[raw["segment"] == "Womens E-Mail"]["conversion"].mean()
    control = raw[raw["segment"] == "No E-Mail"]["conversion"].mean()
    got = {(e["plan"], e["metric"]): e["estimate"] for e in payload["estimates"]}
    assert got["all", "incremental_conversions"] == pytest.approx(womens - control, rel=1e-9)
    assert got["none", "incremental_conversions"] == 0.0
    assert "all of the log" in payload["rows_note"]
    written = pd.read_csv(tmp_path / "estimates.csv")
    assert set(written["kind"]) == {"plan", "difference"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", CONFIG], "needs their models"),
        (["--log", CONFIG], "synthetic world has its own log"),
        (["--config", CONFIG, "--plan", "missing.csv"], "missing.csv"),
        (["--config", CONFIG, "--estimators", "naive"], "not a known estimator"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = _run("value", *args, code=2)
    assert message in result.output
    assert "Traceback" not in result.output
