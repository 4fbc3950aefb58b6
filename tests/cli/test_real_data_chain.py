"""Hillstrom and the Starbucks promotion, files to report, as the README walks them.

files -> init (a starting configuration) -> the shipped scenario -> train -> score -> optimize
(plan file) -> report, with the datasets read from ../shared/data. Figures are recounted from
the raw files and the plan file. Skipped, with the reason, when the shared data is absent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from optimizer.io.datasets import data_dir
from optimizer.io.tomlfile import read_toml

ROOT = Path(__file__).resolve().parents[2]
CASES = {
    # name: (data file, scenario, id column or None for row numbers, send cost, budget, arms)
    "hillstrom": (
        "hillstrom/hillstrom.csv.gz",
        "hillstrom_email.toml",
        None,
        0.10,
        2_000.0,
        {"Mens E-Mail", "Womens E-Mail", "No E-Mail"},
    ),
    "starbucks": (
        "starbucks_promotion_ab/training.csv.gz",
        "starbucks_promotion.toml",
        "ID",
        0.15,
        3_000.0,
        {"Yes", "No"},
    ),
}

pytestmark = pytest.mark.skipif(
    not data_dir().is_dir(), reason=f"shared data folder {data_dir()} is absent"
)


def _run(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_files_to_report(name, tmp_path):
    relative, scenario, id_column, send_cost, budget, labels = CASES[name]
    data = data_dir() / relative
    raw = pd.read_csv(data)
    # 1. a starting configuration from the file alone: arms and the control are found.
    _run("init", "--users", data, "--out", tmp_path / "start.toml")
    start = read_toml(tmp_path / "start.toml")
    assert set(start["data"]["log"]["arms"]) == labels
    assert list(start["data"]["log"]["arms"].values()).count("none") == 1
    # 2. the shipped, edited configuration through the chain.
    config = ROOT / "scenarios" / "own_data" / scenario
    _run("train", "--config", config, "--out", tmp_path / "models", "--max-epochs", "2")
    _run("score", "--models", tmp_path / "models", "--users", data, "--out", tmp_path / "s.parquet")
    _run(
        "optimize", "--config", config, "--scores", tmp_path / "s.parquet",
        "--objective", "profit", "--compare", "--out", tmp_path / "plan.csv",
    )  # fmt: skip
    plan = pd.read_csv(tmp_path / "plan.csv")
    ids = raw[id_column] if id_column else pd.Series(range(1, len(raw) + 1))
    assert sorted(plan["user_id"]) == sorted(ids)
    sent = int((plan["denomination"] != "none").sum())
    assert sent * send_cost <= budget + 1e-6  # messages are the only cost of these menus
    _run(
        "report", "--config", config, "--scores", tmp_path / "s.parquet",
        "--models", tmp_path / "models", "--out", tmp_path / "report.html",
    )  # fmt: skip
    page = (tmp_path / "report.html").read_text()
    assert "Model quality" in page and "Against the baselines" in page
